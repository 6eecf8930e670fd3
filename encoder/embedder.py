"""The one encode path: service, evaluation harness and CLI all encode through here.

``load_encoder(folder, precision=..., device=...)`` loads a model folder offline (never
running code from it) and returns an ``Embedder`` whose ``encode`` gives float32,
L2-normalised rows at any precision (see precision.py for what each one runs on).
"""
from __future__ import annotations

import contextlib
import copy
import os
import threading
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ranksearch.errors import InvalidArgument  # noqa: E402

from .config import EncoderConfig  # noqa: E402
from . import precision as precisions  # noqa: E402
from .cost import cost_report, size_on_disk  # noqa: E402
from .long_text import check_long_text, encode_windowed  # noqa: E402
from .st_module import RankedEncoderModule, load_sentence_transformer  # noqa: E402

DESCRIBE_SEQ_LEN = 128  # sequence length at which describe() states FLOPs per token


ROLES = ("query", "document")
#: sentence-transformers prompt names read as the document prompt, first found wins
#: (the order sentence-transformers' encode_document uses)
DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus")


def model_prompts(saved: dict[str, str] | None) -> dict[str, str]:
    """{"query": ..., "document": ...} from a folder's sentence-transformers prompts
    (config_sentence_transformers.json); a missing prompt is the empty string."""
    saved = saved or {}
    document = next((saved[n] for n in DOCUMENT_PROMPT_NAMES if n in saved), "")
    return {"query": saved.get("query", ""), "document": document}


class Embedder:
    """Wraps a loaded SentenceTransformer; safe to call from several threads. Forward
    passes of concurrent calls run at once (the service's encoder workers run one
    single-threaded pass per core, service/batcher.py); tokenising is serialised."""

    def __init__(self, model, source: str, precision: str = "fp32", engine: str = "torch",
                 device: str = "cpu", autocast: bool = True, long_text: str = "truncate"):
        self.model = model.eval()
        self.long_text = check_long_text(long_text)  # documents only; see long_text.py
        self.source = source
        self.precision = precision  # effective precision (after any fallback)
        self.engine = engine        # "torch" or "onnxruntime"
        self.device = device
        self.autocast = autocast and precision == "bf16"  # False: the weights are bf16 already
        self.dim = int(model.get_embedding_dimension())
        self.prompts = model_prompts(model.prompts)
        # A fast tokenizer is not thread-safe (a call may set its padding/truncation
        # state while another call reads it): every tokenisation of encode() holds this
        # lock, the forward passes do not. Reentrant: the windowed path holds it around
        # its own tokenising and encoding.
        self._tokenize_lock = threading.RLock()
        preprocess = model.preprocess

        def locked_preprocess(*args, **kwargs):
            with self._tokenize_lock:
                return preprocess(*args, **kwargs)

        model.preprocess = locked_preprocess  # sentence-transformers tokenises through it
        # token_counts() runs on callers' threads while encode() tokenises: a fast
        # tokenizer is not thread-safe (each call sets its padding/truncation state),
        # so measuring uses its own copy, one call at a time.
        self._measure_tokenizer = copy.deepcopy(model.tokenizer)
        self._measure_lock = threading.Lock()

    def _autocast(self):
        """bf16 of a model whose weights stay float32 (a plain BERT folder): matrix
        products in bfloat16, the rest in float32 (torch autocast)."""
        if self.autocast:
            return torch.autocast(self.device, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def encode(self, texts: Sequence[str], batch_size: int = 64,
               show_progress: bool = False, *, role: str) -> np.ndarray:
        """(n, dim) float32, each row of unit L2 norm.

        ``role`` is "query" (search text) or "document" (stored text): the model
        folder's prompt for that role (e.g. E5's "query: " / "passage: ") is prepended;
        models without prompts encode both roles alike. Documents longer than
        ``max_seq_length`` tokens are truncated or windowed (``long_text``); queries are
        truncated."""
        if role not in ROLES:
            raise InvalidArgument("role", f"must be one of {', '.join(ROLES)}, got {role!r}")
        if isinstance(texts, str):
            raise InvalidArgument("texts", "must be a sequence of strings, not one string")
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise InvalidArgument(f"texts[{i}]", f"must be a string, got {type(text).__name__}")
        if batch_size < 1:
            raise InvalidArgument("batch_size", f"must be >= 1, got {batch_size}")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        prompt = self.prompts[role]

        def encode(batch: list[str]) -> np.ndarray:  # (len(batch), dim) unit rows
            return self.model.encode(batch, prompt=prompt, batch_size=batch_size,
                                     show_progress_bar=show_progress,
                                     convert_to_numpy=True, normalize_embeddings=True)

        with torch.inference_mode(), self._autocast():
            if role == "document" and self.long_text == "window":
                with self._tokenize_lock:  # text_windows tokenises with the model's tokenizer
                    vectors = encode_windowed(encode, self.model.tokenizer, texts, prompt,
                                              self.model.max_seq_length)
            else:
                vectors = encode(texts)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text as the encoder will see them (truncated to max_seq_length):
        what a forward pass costs, for batching by padded-token budget."""
        with self._measure_lock:
            ids = self._measure_tokenizer(list(texts), truncation=True, max_length=self.model.max_seq_length,
                                          add_special_tokens=True)["input_ids"]
        return [len(x) for x in ids]

    def encoder_config(self) -> EncoderConfig | None:
        """The ranked-encoder config, or the equivalent of a plain BERT folder's."""
        first = self.model[0]
        if isinstance(first, RankedEncoderModule):
            return first.encoder_config
        hf_config = getattr(getattr(first, "auto_model", None), "config", None)
        if getattr(hf_config, "model_type", None) == "bert":
            from .convert import config_from_bert
            return config_from_bert(hf_config)
        return None

    def describe(self) -> dict:
        info = {
            "source": self.source,
            "dim": self.dim,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "size_bytes": size_on_disk(self.source),
            "max_seq_length": self.model.max_seq_length,
            "prompts": dict(self.prompts),
            "long_text": self.long_text,
            "precision": self.precision,
            "engine": self.engine,
            "device": self.device,
        }
        c = self.encoder_config()
        if c is not None:
            cost = cost_report(c, DESCRIBE_SEQ_LEN)
            info.update(layers=c.layers, heads=c.heads, rank=c.ranks, value_dim=c.value_dim,
                        d_model=c.d_model, flops_per_token=cost["flops_per_token"]["total"],
                        flops_seq_len=DESCRIBE_SEQ_LEN)
        return info


def load_encoder(folder: str | Path, device: str = "cpu", precision: str = "fp32",
                 engine: str = "auto", strict: bool = False, long_text: str = "truncate") -> Embedder:
    """Load a model folder (ranked encoder, or any sentence-transformers folder built
    from sentence-transformers' own modules) fully offline.

    ``precision``: fp32 | bf16 | int8 (precision.py); bf16 on a CPU without native bf16
    falls back to fp32 with a WARNING (``strict=True`` raises ConfigError instead).
    ``engine``: "auto" runs int8 through ONNX Runtime and everything else through
    PyTorch (whose padded-batch path amortises micro-batches: measured in the service,
    ONNX Runtime fp32 gained nothing from batching); "torch" forces eager PyTorch
    (fp32/bf16); "onnxruntime" serves a ranked encoder at fp32 through ONNX Runtime.
    ``long_text``: truncate | window, how documents longer than the model's
    max_seq_length are encoded (long_text.py)."""
    check_long_text(long_text)
    if engine not in ("auto", "torch", "onnxruntime"):
        raise InvalidArgument("engine", f"must be auto, torch or onnxruntime, got {engine!r}")
    effective = precisions.resolve(precision, device, strict=strict)
    folder = Path(folder).resolve()
    model = load_sentence_transformer(folder, device=device)
    first = model[0]
    ranked = isinstance(first, RankedEncoderModule)
    use_ort = effective == "int8" or engine == "onnxruntime"
    bf16_weights = effective == "bf16" and ranked and not use_ort
    if bf16_weights:
        # The ranked encoder in bfloat16 weights rather than under autocast: no cast of
        # every weight on every call, and the elementwise ops between the products run
        # in bf16 too (LayerNorm and softmax still accumulate in float32 inside the
        # kernels; the module returns float32 token embeddings). Measured faster than
        # autocast with min cosine 0.9999 against fp32 (docs/PERFORMANCE.md).
        first.encoder.to(torch.bfloat16)
    if ranked and not use_ort and device == "cpu":
        # fp32 and bf16: weights reordered once for oneDNN, not on every call (a lone
        # fp32 query ~0.7x the CPU time of eager F.linear, a 32-query pass ~0.9x;
        # outputs equal eager within float rounding; docs/PERFORMANCE.md)
        from .packed import pack
        pack(first.encoder)
    if use_ort:
        if not ranked or device != "cpu" or effective == "bf16":
            raise InvalidArgument("precision", f"{effective} through ONNX Runtime needs a "
                                  "ranked-encoder folder on cpu (and fp32 or int8)")
        from .onnx_engine import OrtEncoder
        first.engine = OrtEncoder(first.encoder.eval(), effective)
    return Embedder(model, str(folder), effective, "onnxruntime" if use_ort else "torch", device,
                    autocast=not bf16_weights, long_text=long_text)

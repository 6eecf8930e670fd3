"""The ranked encoder as a sentence-transformers module, and the model folder format.

A model folder is a normal sentence-transformers folder::

    modules.json                   [RankedEncoderModule, Pooling, Normalize]
    config_sentence_transformers.json
    ranked_encoder.json            {"encoder": EncoderConfig.to_dict(), "max_seq_length": n}
    model.safetensors              RankedEncoder weights
    tokenizer.json, tokenizer_config.json, ...   (transformers.AutoTokenizer loads them)
    1_Pooling/config.json          mean or CLS pooling
    2_Normalize/                   L2 normalisation

sentence-transformers 6 refuses to import a module class from outside its own package
unless ``trust_remote_code=True``, because importing it runs code chosen by the folder.
The product therefore never sets that flag: ``load_sentence_transformer`` hands the
already-imported class over explicitly (``module_classes``). A third party with
ranksearch installed can do the same, or pass ``trust_remote_code=True`` knowingly::

    from sentence_transformers import SentenceTransformer
    from ranksearch.encoder.st_module import MODULE_CLASSES
    model = SentenceTransformer._load_with_module_classes(folder, MODULE_CLASSES,
                                                          local_files_only=True)
    # or: SentenceTransformer(folder, trust_remote_code=True, local_files_only=True)

(In sentence-transformers 6.2 the mapping is accepted by the classmethod above, which
the library's own trainer uses to reload checkpoints; the constructor itself has no
``module_classes`` argument.)
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402
from sentence_transformers.base.modules import InputModule  # noqa: E402
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling  # noqa: E402
from transformers import AutoTokenizer, PreTrainedTokenizerBase  # noqa: E402

from ranksearch.errors import InvalidArgument, NotFound  # noqa: E402

from .config import EncoderConfig  # noqa: E402
from .model import RankedEncoder  # noqa: E402

CONFIG_FILE = "ranked_encoder.json"
WEIGHTS_FILE = "model.safetensors"


class RankedEncoderModule(InputModule):
    """Tokenizer + RankedEncoder; emits ``token_embeddings`` for the Pooling module."""

    config_file_name = CONFIG_FILE
    save_in_root = True

    def __init__(self, config: EncoderConfig | dict, tokenizer: PreTrainedTokenizerBase,
                 max_seq_length: int | None = None):
        super().__init__()
        self.encoder_config = config if isinstance(config, EncoderConfig) else EncoderConfig.from_dict(config)
        self.encoder = RankedEncoder(self.encoder_config)
        self.tokenizer = tokenizer
        self.engine = None  # set by the Embedder to serve through another runtime
        self.max_seq_length = max_seq_length or self.encoder_config.max_len

    @property
    def max_seq_length(self) -> int:
        return self._max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        if not 1 <= int(value) <= self.encoder_config.max_len:
            raise InvalidArgument("max_seq_length", f"must be in [1, {self.encoder_config.max_len}]"
                                  f" (the encoder's max_len), got {value}")
        self._max_seq_length = int(value)

    def get_embedding_dimension(self) -> int:
        return self.encoder_config.d_model

    def get_config_dict(self) -> dict[str, Any]:
        return {"encoder": self.encoder_config.to_dict(), "max_seq_length": self.max_seq_length}

    def preprocess(self, inputs, prompt: str | None = None, **kwargs) -> dict[str, torch.Tensor]:
        texts = list(inputs)
        if prompt:
            texts = self._prepend_prompt(texts, prompt)
        if texts and isinstance(texts[0], (tuple, list)):  # (text_a, text_b) pairs
            batch = self.tokenizer([a for a, _ in texts], [b for _, b in texts], padding=True,
                                   truncation="longest_first", max_length=self.max_seq_length,
                                   return_tensors="pt")
        else:
            batch = self.tokenizer(texts, padding=True, truncation="longest_first",
                                   max_length=self.max_seq_length, return_tensors="pt")
        keep = ["input_ids", "attention_mask"]
        if self.encoder_config.type_vocab_size and "token_type_ids" in batch:
            keep.append("token_type_ids")
        return {k: batch[k] for k in keep}

    def forward(self, features: dict[str, torch.Tensor], **kwargs) -> dict[str, torch.Tensor]:
        run = self.engine or self.encoder  # engine: e.g. an OrtEncoder (inference only)
        tokens = run(features["input_ids"], features["attention_mask"], features.get("token_type_ids"))
        features["token_embeddings"] = tokens.float()  # (b, t, d); bf16 weights give bf16
        return features

    def save(self, output_path: str, *args, safe_serialization: bool = True, **kwargs) -> None:
        out = Path(output_path)
        out.mkdir(parents=True, exist_ok=True)
        # contiguous copies: safetensors refuses views and shared storage
        save_file({k: v.detach().contiguous() for k, v in self.encoder.state_dict().items()},
                  str(out / WEIGHTS_FILE))
        self.save_config(str(out))
        self.tokenizer.save_pretrained(str(out))

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs) -> "RankedEncoderModule":
        folder = Path(model_name_or_path) / subfolder
        if not (folder / CONFIG_FILE).is_file():
            raise NotFound("model", f"{folder} has no {CONFIG_FILE}; not a ranked-encoder folder")
        saved = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        module = cls(EncoderConfig.from_dict(saved["encoder"]), tokenizer, saved.get("max_seq_length"))
        module.encoder.load_state_dict(load_file(str(folder / WEIGHTS_FILE)), strict=True)
        return module


#: the mapping to pass to sentence-transformers so it never imports code from a folder
MODULE_CLASSES = {f"{RankedEncoderModule.__module__}.{RankedEncoderModule.__qualname__}":
                  RankedEncoderModule}


def new_sentence_transformer(config: EncoderConfig, tokenizer: PreTrainedTokenizerBase,
                             pooling: str | None = None, max_seq_length: int | None = None,
                             device: str = "cpu") -> SentenceTransformer:
    """A freshly initialised model: RankedEncoderModule -> Pooling -> Normalize."""
    pooling = pooling or config.pooling
    if pooling not in ("mean", "cls"):
        raise InvalidArgument("pooling", f"must be 'mean' or 'cls', got {pooling!r}")
    if len(tokenizer) > config.vocab_size:
        raise InvalidArgument("vocab_size", f"is {config.vocab_size} but the tokenizer has "
                              f"{len(tokenizer)} tokens")
    module = RankedEncoderModule(config, tokenizer, max_seq_length)
    return SentenceTransformer(modules=[module, Pooling(config.d_model, pooling), Normalize()],
                               device=device)


def load_sentence_transformer(folder: str | Path, device: str = "cpu") -> SentenceTransformer:
    """Load a model folder offline without ever executing code from it."""
    folder = Path(folder)
    if not (folder / "modules.json").is_file():
        raise NotFound("model", f"{folder} is not a sentence-transformers folder (no modules.json)")
    return SentenceTransformer._load_with_module_classes(
        str(folder), MODULE_CLASSES, device=device, local_files_only=True)

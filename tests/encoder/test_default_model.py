import numpy as np

from ranksearch.encoder.default_model import ensure_default_model, source_dir
from ranksearch.encoder.embedder import load_encoder


# ~8 s on 2 shared cores; kept in the default run because the product's default
# encoder must stay an exact conversion.
def test_default_model_matches_all_minilm(tmp_path, sentences):
    from sentence_transformers import SentenceTransformer

    dest = ensure_default_model(tmp_path / "default")
    mtime = (dest / "model.safetensors").stat().st_mtime_ns
    assert ensure_default_model(dest) == dest  # idempotent: not converted again
    assert (dest / "model.safetensors").stat().st_mtime_ns == mtime
    texts = sentences + ["Where is the nearest train station?", "東京は日本の首都です。"]
    want = SentenceTransformer(str(source_dir()), device="cpu", local_files_only=True).encode(texts)
    emb = load_encoder(dest)
    got = emb.encode(texts, role="document")
    assert np.abs(got - want).max() <= 1e-5
    info = emb.describe()
    assert info["rank"] == [32] * 6 and info["heads"] == 12 and info["d_model"] == 384

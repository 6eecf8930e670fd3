"""Search results against brute-force numpy: exact on flat, measured recall on HNSW/IVF."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ixhelpers import SPECS, brute, clustered, docs, one_variant, unit
from ranksearch.indexer import Document, Indexer, IndexerConfig, IndexSpec, SearchRequest, VariantSpec


def _check_against_brute(res, scores, rows, ids_of):
    for qi, hits in enumerate(res):
        got = np.array([h.score for h in hits], dtype=np.float32)
        np.testing.assert_allclose(got, scores[qi], atol=1e-5)
        # ids must match wherever the ranking is not a near-tie
        s = scores[qi]
        for j, hit in enumerate(hits):
            gap_prev = abs(s[j] - s[j - 1]) if j else 1.0
            gap_next = abs(s[j] - s[j + 1]) if j + 1 < len(s) else 1.0
            if min(gap_prev, gap_next) > 1e-5:
                assert hit.id == ids_of[rows[qi][j]]


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    d=st.sampled_from([2, 8, 33]),
    n=st.integers(1, 300),
    k=st.integers(1, 20),
    seed=st.integers(0, 2**16),
)
def test_flat_nearest_and_farthest_equal_brute_force(tmp_path_factory, d, n, k, seed):
    rng = np.random.default_rng(seed)
    x = unit(rng, n, d)
    q = unit(rng, 5, d)
    with Indexer(tmp_path_factory.mktemp("flat"), IndexerConfig(snapshot_interval_s=0)) as ix:
        one_variant(ix, "flat", d)
        ix.upsert("c", docs(n), {"v": x})
        ids_of = [f"d{i}" for i in range(n)]
        for farthest in (False, True):
            res = ix.search("c", SearchRequest(variant="v", k=k, mode="farthest" if farthest else "nearest"), q)
            scores, rows = brute(q, x, min(k, n), farthest)
            assert [len(r) for r in res] == [min(k, n)] * 5
            _check_against_brute(res, scores, rows, ids_of)


def test_unnormalised_input_is_normalised_and_scores_are_cosines(ix):
    one_variant(ix, "flat", 4)
    ix.upsert("c", [Document("a"), Document("b")], {"v": np.array([[3, 0, 0, 0], [1, 1, 0, 0]], np.float32)})
    near = ix.search("c", SearchRequest(k=2), np.array([10.0, 0, 0, 0]))[0]
    assert [h.id for h in near] == ["a", "b"]
    assert near[0].score == pytest.approx(1.0, abs=1e-6)
    assert near[1].score == pytest.approx(1 / np.sqrt(2), abs=1e-6)
    far = ix.search("c", SearchRequest(k=2, mode="farthest"), np.array([10.0, 0, 0, 0]))[0]
    # farthest reports the true cosine (smallest first), not the negated value
    assert [h.id for h in far] == ["b", "a"]
    assert far[0].score == pytest.approx(1 / np.sqrt(2), abs=1e-6)


def test_offset_min_score_and_include_text(ix):
    rng = np.random.default_rng(3)
    x = unit(rng, 50, 8)
    one_variant(ix, "flat", 8)
    ix.upsert("c", docs(50), {"v": x})
    q = x[:1]
    full = ix.search("c", SearchRequest(k=20), q)[0]
    page = ix.search("c", SearchRequest(k=5, offset=10), q)[0]
    assert [h.id for h in page] == [h.id for h in full[10:15]]
    cut = full[7].score
    kept = ix.search("c", SearchRequest(k=20, min_score=cut), q)[0]
    assert [h.id for h in kept] == [h.id for h in full[:8]]
    far = ix.search("c", SearchRequest(k=20, mode="farthest"), q)[0]
    far_cut = ix.search("c", SearchRequest(k=20, mode="farthest", min_score=far[4].score), q)[0]
    assert [h.id for h in far_cut] == [h.id for h in far[:5]]
    assert full[0].text == "text d0"
    lean = ix.search("c", SearchRequest(k=3, include_text=False), q)[0]
    assert [h.text for h in lean] == ["", "", ""] and [h.id for h in lean] == [h.id for h in full[:3]]


def _recall(res, truth) -> float:
    return float(np.mean([len({int(h.id[1:]) for h in row} & set(t.tolist())) / truth.shape[1] for row, t in zip(res, truth)]))


# Thresholds (2000 clustered vectors, d=32, 50 queries, recall@10 vs exact numpy;
# measured on this data: HNSW 0.98, IVF 0.936):
# - nearest HNSW (default M=32, efConstruction 80; efSearch 64): assert >= 0.95, the
#   level FIELD_NOTES reports for efSearch 64 (M=16/efConstruction 40 gave 0.97 at
#   efSearch 64 and 0.99 at 128 on this data: efSearch is the knob to turn).
# - nearest IVF (nlist 32, nprobe 8 = a quarter of the lists): assert >= 0.90; the
#   misses are points near cluster borders whose list was not probed.
# - farthest: exact by design on every index type (flat scan with -q), so >= 0.99
#   (1.0 up to float ties); the issue's bar is 0.95.
@pytest.mark.parametrize(
    "spec, params, near_min",
    [
        (IndexSpec("hnsw"), {"efSearch": 64}, 0.95),
        (IndexSpec("ivf", {"nlist": 32}), {"nprobe": 8}, 0.90),
    ],
    ids=["hnsw", "ivf"],
)
def test_approximate_recall_at_10(ix, spec, params, near_min):
    rng = np.random.default_rng(7)
    x = clustered(rng, 2000, 32, noise=1.0)
    q = clustered(rng, 50, 32, noise=1.0)
    ix.create_collection("c", [VariantSpec("v", 32, spec)])
    ix.upsert("c", docs(2000), {"v": x})
    assert "untrained" not in ix.stats()["collections"]["c"]["variants"]["v"]["index_type"]
    near = _recall(ix.search("c", SearchRequest(k=10, params=params, include_text=False), q), brute(q, x, 10)[1])
    far = _recall(ix.search("c", SearchRequest(k=10, mode="farthest", params=params, include_text=False), q), brute(q, x, 10, True)[1])
    print(f"{spec.kind}: nearest recall@10 {near:.3f}, farthest recall@10 {far:.3f}")
    assert near >= near_min
    assert far >= 0.99


def test_untrained_ivf_answers_exactly(ix):
    rng = np.random.default_rng(1)
    x = unit(rng, 30, 8)
    ix.create_collection("c", [VariantSpec("v", 8, IndexSpec("ivf", {"nlist": 16}))])
    ix.upsert("c", docs(30), {"v": x})
    assert ix.stats()["collections"]["c"]["variants"]["v"]["index_type"].startswith("ivf (untrained")
    res = ix.search("c", SearchRequest(k=5), x[:3])
    _check_against_brute(res, *brute(x[:3], x, 5), [f"d{i}" for i in range(30)])


def test_factory_string_index(ix):
    rng = np.random.default_rng(2)
    x = clustered(rng, 600, 16)
    ix.create_collection("c", [VariantSpec("v", 16, IndexSpec("IVF4,SQ8", {"train_min": 400, "nprobe": 4}))])
    ix.upsert("c", docs(600), {"v": x})
    st_ = ix.stats()["collections"]["c"]["variants"]["v"]
    assert st_["index_type"] == "IVF4,SQ8" and st_["vectors"] == 600
    near = _recall(ix.search("c", SearchRequest(k=10, include_text=False), x[:20]), brute(x[:20], x, 10)[1])
    assert near >= 0.8  # SQ8 codes are lossy; all lists probed
    ix.delete("c", ["d0"])
    assert "d0" not in [h.id for h in ix.search("c", SearchRequest(k=5), x[:1])[0]]


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_filters_return_k_matches_per_index_type(make_indexer, kind):
    """A filtered search returns k hits whenever k documents match, on every index
    type, for a selective filter (exact subset scan), a broad one (approximate search
    with an IDSelector) and one the graph/IVF search answers short (exact fallback)."""
    rng = np.random.default_rng(11)
    n, d = 800, 16
    x = clustered(rng, n, d)
    colour = lambda i: {"colour": ["red", "green", "blue", "grey"][i % 4], "rare": "yes" if i % 97 == 0 else "no"}
    for exact_filter_max in (0, 4096):  # 0 forces the approximate path with a selector
        ix = make_indexer(f"{kind}-{exact_filter_max}", exact_filter_max=exact_filter_max)
        ix.create_collection("c", [VariantSpec("v", d, SPECS[kind] if kind != "ivf" else IndexSpec("ivf", {"nlist": 8, "nprobe": 1}))])
        ix.upsert("c", docs(n, meta=colour), {"v": x})
        q = x[:5]
        for flt in ({"colour": "red"}, {"colour": "red", "rare": "no"}, {"rare": "yes"}):
            match = np.array([i for i in range(n) if all(colour(i)[k_] == v_ for k_, v_ in flt.items())])
            k = 10
            res = ix.search("c", SearchRequest(k=k, filter=flt), q)
            for qi, hits in enumerate(res):
                assert len(hits) == min(k, len(match)), (flt, exact_filter_max)
                assert all(all(h.metadata[k_] == v_ for k_, v_ in flt.items()) for h in hits)
            far = ix.search("c", SearchRequest(k=k, mode="farthest", filter=flt), q)
            truth = brute(q, x[match], min(k, len(match)), True)[1]
            assert [[h.id for h in row] for row in far] == [[f"d{match[j]}" for j in t] for t in truth]
        assert ix.search("c", SearchRequest(k=5, filter={"no-such-key": "x"}), q) == [[]] * 5
        assert ix.search("c", SearchRequest(k=5, filter={"colour": "purple"}), q) == [[]] * 5

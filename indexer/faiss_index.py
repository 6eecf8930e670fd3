"""The FAISS side of one (collection, variant): a derived, rebuildable cache of the
vectors stored in SQLite. FAISS ids are document seqs (unique forever, so a replaced
document gets a fresh id and its old one can simply be removed or tombstoned).

Two indexes per variant:
- ``exact``: ``IndexIDMap2(IndexFlatIP)``, always present. It answers farthest
  queries, selective filters, filtered searches whose approximate answer came up
  short, and every query while an IVF index is not trained yet. On a flat variant it
  is the only index; on HNSW/IVF it is a flat shadow (memory: one more copy of the
  vectors) -- the price of exact farthest search, see `search`.
- ``main``: the index built for nearest search (HNSW, IVF or a factory string); None
  on flat variants and on IVF variants until enough vectors exist to train.

Axes: q queries, n indexed vectors, m vectors matching a filter, k results, d width.

Not thread-safe on its own: the owner mutates it only under its write lock and
searches it under its read lock. Search knobs (efSearch, nprobe) travel in per-call
SearchParameters and never mutate a shared index.
"""
from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Any

import faiss
import numpy as np

from ranksearch.errors import InvalidArgument
from ranksearch.indexer.index_rules import check_index
from ranksearch.indexer.types import VariantSpec
from ranksearch.indexer.validation import check_name

PRESETS = ("flat", "hnsw", "ivf")
#: IVF training wants about this many points per centroid (FAISS warns below 39)
POINTS_PER_CENTROID = 40


def _kind_of(kind: str) -> str:
    """"flat", "hnsw", "ivf", or "factory" for a (supported, see index_rules) factory string."""
    return kind if kind in PRESETS else "factory"


def _new_exact(dim: int) -> faiss.Index:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def _is_ivf(index: faiss.Index) -> bool:
    try:
        faiss.extract_index_ivf(index)
        return True
    except RuntimeError:
        return False


def _is_hnsw(index: faiss.Index) -> bool:
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else index
    return isinstance(inner, faiss.IndexHNSW)


class VariantIndex:
    def __init__(self, spec: VariantSpec, exact: faiss.Index | None = None, main: Any = "new"):
        """A new, empty variant index; or one around loaded `exact` and `main`
        indexes (main=None: none yet)."""
        self.spec = spec
        self.dim = spec.dim
        self.kind = _kind_of(spec.index.kind)
        self.params = dict(spec.index.params)
        self.exact = exact if exact is not None else _new_exact(self.dim)
        self.main = self._new_main(trained_on=None) if isinstance(main, str) else main
        #: ids still in `main` whose documents are gone (HNSW cannot remove)
        self.tombstones: set[int] = set()
        #: vectors `main` held when it was last built in one pass (see with_main);
        #: a loaded snapshot passes the value it recorded
        self.built_count = 0 if self.main is None else int(self.main.ntotal)
        self._tomb_sel: Any = None  # cached IDSelectorNot over the tombstones
        self._tomb_inner: Any = None
        if self.main is not None and self.removable is False:
            main_ids = set(self._main_ids().tolist())
            self.tombstones = main_ids - set(self.ids().tolist())
            self._refresh_tomb_sel()

    # -- construction ---------------------------------------------------------------------
    def _new_main(self, trained_on: np.ndarray | None) -> faiss.Index | None:
        """A fresh main index, trained on `trained_on` (n, d) when it needs training.
        None when no main index is wanted (flat) or training data is lacking."""
        d = self.dim
        if self.kind == "flat":
            return None
        if self.kind == "hnsw":
            inner = faiss.IndexHNSWFlat(d, self.params.get("M", 32), faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = self.params.get("efConstruction", 80)
            return faiss.IndexIDMap2(inner)
        if self.kind == "ivf":
            if trained_on is None:
                return None
            n = len(trained_on)
            nlist = self.params.get("nlist") or self.auto_nlist(n)
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(trained_on)
            return index
        index = faiss.index_factory(d, self.spec.index.kind, faiss.METRIC_INNER_PRODUCT)
        if not index.is_trained:
            if trained_on is None:
                return None
            index.train(trained_on)
        return index if _is_ivf(index) else faiss.IndexIDMap2(index)

    def train_min(self) -> int:
        """Vectors needed before the main index can be trained (0: no training)."""
        if self.kind == "ivf":
            return self.params.get("train_min", POINTS_PER_CENTROID * self.params.get("nlist", 25))
        if self.kind == "factory":
            probe = faiss.index_factory(self.dim, self.spec.index.kind, faiss.METRIC_INNER_PRODUCT)
            if probe.is_trained:
                return 0
            nlist = faiss.extract_index_ivf(probe).nlist if _is_ivf(probe) else 25
            return self.params.get("train_min", max(256, POINTS_PER_CENTROID * nlist))
        return 0

    @property
    def main(self) -> faiss.Index | None:
        return self._main

    @main.setter
    def main(self, index: faiss.Index | None) -> None:
        self._main = index
        self._main_hnsw = index is not None and _is_hnsw(index)
        self._main_ivf = index is not None and not self._main_hnsw and _is_ivf(index)

    @property
    def removable(self) -> bool | None:
        """Whether `main` supports remove_ids (None: there is no main)."""
        if self.main is None:
            return None
        return not self._main_hnsw

    def rebuilt(self) -> "VariantIndex":
        """A new VariantIndex over the same vectors with a freshly built (and, if
        needed, trained) main index and no tombstones. Writer mutex held."""
        ids = self.ids()
        return self._around(self.build_main(ids, self.vectors()), len(ids))

    def build_main(self, ids: np.ndarray, vecs: np.ndarray) -> faiss.Index | None:
        """A fresh main index over ids (n,) / vecs (n, d), trained on vecs when it
        needs training. Touches no shared state, so it runs without any lock (the
        slow part of training and compaction). None for flat, or too few vectors."""
        if self.kind == "flat":
            return None
        need = self.train_min()
        if need and len(ids) < need:
            return None
        main = self._new_main(trained_on=vecs if need or self.kind == "ivf" else None)
        if main is not None and len(ids):
            main.add_with_ids(vecs, ids)
        return main

    def with_main(self, main: faiss.Index | None, built_ids: np.ndarray) -> "VariantIndex":
        """A VariantIndex over this one's exact index *as it is now* and `main`, which
        was built from `built_ids`: vectors added since are added to `main`, ones
        removed since are removed (or tombstoned). The exact index is shared, so the
        caller holds the writer mutex until the result has replaced this object."""
        if main is None:
            return self._around(None, 0)
        now = self.ids()
        new = np.setdiff1d(now, built_ids, assume_unique=True)
        gone = np.setdiff1d(built_ids, now, assume_unique=True)
        if len(new):
            main.add_with_ids(self.exact.reconstruct_batch(new), new)
        fresh = self._around(main, len(built_ids))
        fresh._remove_from_main(gone)
        return fresh

    def _around(self, main: faiss.Index | None, built_count: int) -> "VariantIndex":
        """A VariantIndex sharing this one's exact index, with `main` (built in one
        pass over `built_count` vectors) and no tombstones."""
        fresh = VariantIndex(self.spec, exact=self.exact, main=None)
        if main is not None:
            fresh.main, fresh.built_count = main, built_count
        return fresh

    @staticmethod
    def auto_nlist(n: int) -> int:
        """IVF list count for n vectors when the spec gives no nlist."""
        return max(1, min(int(4 * math.sqrt(n)), n // POINTS_PER_CENTROID))

    def maintenance_reason(self, tombstone_ratio: float, hnsw_growth: float, hnsw_min: int) -> str | None:
        """Why the main index should be rebuilt from the exact vectors now, or None:
        an IVF index that has enough vectors to train; an HNSW graph with too many
        tombstones; an IVF index without a fixed nlist whose data grew so that its
        nlist should at least double (lists would otherwise grow without bound); an
        HNSW graph grown `hnsw_growth` times past its last one-pass build."""
        if self.needs_training:
            return f"training on {self.count} vectors"
        if self.main is None:
            return None
        if self.needs_compaction(tombstone_ratio):
            return f"compacting {len(self.tombstones)} tombstones"
        if self.kind == "ivf" and "nlist" not in self.params:
            have, want = faiss.extract_index_ivf(self.main).nlist, self.auto_nlist(self.count)
            if want >= 2 * have:
                return f"retraining for {self.count} vectors: nlist {have} -> {want}"
        if self.kind == "hnsw" and hnsw_growth and self.count >= hnsw_growth * max(self.built_count, hnsw_min):
            return f"rebuilding the graph in one pass: {self.count} vectors, {self.built_count} at its last build"
        return None

    @property
    def needs_training(self) -> bool:
        return self.kind in ("ivf", "factory") and self.main is None and 0 < self.train_min() <= self.count

    # -- mutation (owner's write lock held) --------------------------------------------------
    def add(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        """ids (n,) int64, vecs (n, d) float32 unit rows."""
        if not len(ids):
            return
        self.exact.add_with_ids(vecs, ids)
        if self.main is not None:
            self.main.add_with_ids(vecs, ids)

    def remove(self, ids: np.ndarray) -> None:
        if not len(ids):
            return
        sel = faiss.IDSelectorBatch(ids)
        self.exact.remove_ids(sel)
        self._remove_from_main(ids, sel)

    def _remove_from_main(self, ids: np.ndarray, sel: Any = None) -> None:
        if self.main is None or not len(ids):
            return
        if self.removable:
            self.main.remove_ids(sel if sel is not None else faiss.IDSelectorBatch(ids))
        else:
            self.tombstones.update(int(i) for i in ids)
            self._refresh_tomb_sel()

    def _refresh_tomb_sel(self) -> None:
        if self.tombstones:
            self._tomb_inner = faiss.IDSelectorBatch(np.fromiter(self.tombstones, dtype=np.int64))
            self._tomb_sel = faiss.IDSelectorNot(self._tomb_inner)
        else:
            self._tomb_inner = self._tomb_sel = None

    def needs_compaction(self, ratio: float) -> bool:
        return bool(self.tombstones) and len(self.tombstones) > ratio * max(1, self.main.ntotal)

    # -- reads --------------------------------------------------------------------------------
    @property
    def count(self) -> int:
        return self.exact.ntotal

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self.exact.id_map).astype(np.int64)

    def _main_ids(self) -> np.ndarray:
        """Ids in an IndexIDMap2-wrapped main index (HNSW), tombstoned ones included."""
        return faiss.vector_to_array(self.main.id_map).astype(np.int64)

    def vectors(self) -> np.ndarray:
        """All indexed vectors (n, d), in the order of ids()."""
        inner = faiss.downcast_index(self.exact.index)
        return inner.reconstruct_n(0, inner.ntotal) if inner.ntotal else np.zeros((0, self.dim), np.float32)

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        return self.exact.reconstruct_batch(ids) if len(ids) else np.zeros((0, self.dim), np.float32)

    def size_bytes(self) -> dict[str, int]:
        n, d = self.exact.ntotal, self.dim
        out = {"exact": n * (4 * d + 16)}  # vectors + id_map + rev_map entry
        if self.main is None:
            return out
        if self.kind == "hnsw":
            inner = faiss.downcast_index(self.main.index)
            links = inner.hnsw.neighbors.size() * 4 + inner.ntotal * 12  # neighbours + levels/offsets
            out["main"] = inner.ntotal * (4 * d + 16) + links
        elif self.kind == "ivf":
            ivf = faiss.extract_index_ivf(self.main)
            out["main"] = ivf.ntotal * (ivf.code_size + 8) + ivf.nlist * d * 4
        else:
            out["main"] = int(faiss.serialize_index(self.main).nbytes)
        return out

    def describe(self) -> str:
        if self.kind == "flat":
            return "flat"
        if self.main is None:
            return f"{self.spec.index.kind} (untrained: exact search until {self.train_min()} vectors)"
        if self.kind == "ivf":
            return f"ivf (nlist={faiss.extract_index_ivf(self.main).nlist})"
        return self.spec.index.kind

    # -- search (owner's read lock held) ------------------------------------------------------
    def search(
        self,
        queries: np.ndarray,
        k: int,
        farthest: bool,
        allowed: np.ndarray | None,
        params: dict[str, Any],
        exact_filter_max: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """queries (q, d) unit rows. Returns (cosine (q, k), ids (q, k)), best first,
        ids -1 past the end. Nearest ranks by largest cosine, farthest by smallest.

        Farthest is always exact: it runs on the flat index with the negated query.
        An HNSW graph built for nearest search does not reliably reach the outliers
        that farthest search wants (FIELD_NOTES: efSearch 16 -> recall 0.87), and a
        flat scan costs the same per query as the nearest scan on a flat index.
        """
        sign = -1.0 if farthest else 1.0
        q = queries * sign if farthest else queries
        if allowed is not None and len(allowed) <= exact_filter_max:
            scores, ids = self._subset_scan(q, k, allowed)
        else:
            use_main = self.main is not None and not farthest and not params.get("exact")
            sel = faiss.IDSelectorBatch(allowed) if allowed is not None else None
            if use_main:
                scores, ids = self.main.search(q, k, params=self._main_params(params, sel))
                want = min(k, len(allowed) if allowed is not None else self.count)
                short = np.flatnonzero((ids >= 0).sum(axis=1) < want)
                if len(short):  # a filtered graph/IVF search came up short: answer exactly
                    s2, i2 = self.exact.search(q[short], k, params=self._exact_params(sel))
                    scores[short], ids[short] = s2, i2
            else:
                scores, ids = self.exact.search(q, k, params=self._exact_params(sel))
        scores = np.where(ids >= 0, scores * sign, np.nan).astype(np.float32)
        return scores, ids

    def _subset_scan(self, q: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        vecs = self.reconstruct(allowed)  # (m, d)
        sims = q @ vecs.T  # (q, m)
        nq, m = sims.shape
        kk = min(k, m)
        scores = np.full((nq, k), -np.inf, np.float32)
        ids = np.full((nq, k), -1, np.int64)
        if kk:
            top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk] if kk < m else np.tile(np.arange(m), (nq, 1))
            part = np.take_along_axis(sims, top, axis=1)
            order = np.argsort(-part, axis=1, kind="stable")
            top = np.take_along_axis(top, order, axis=1)
            scores[:, :kk] = np.take_along_axis(sims, top, axis=1)
            ids[:, :kk] = allowed[top]
        return scores, ids

    @staticmethod
    def _exact_params(sel: Any) -> faiss.SearchParameters | None:
        return faiss.SearchParameters(sel=sel) if sel is not None else None

    def _main_params(self, params: dict[str, Any], sel: Any) -> faiss.SearchParameters:
        if sel is None:
            sel = self._tomb_sel  # a filter's allowed set never holds tombstoned ids
        if self._main_hnsw:
            ef = params.get("efSearch", self.params.get("efSearch", 64))
            return faiss.SearchParametersHNSW(efSearch=ef, sel=sel) if sel is not None else faiss.SearchParametersHNSW(efSearch=ef)
        if self._main_ivf:
            nlist = faiss.extract_index_ivf(self.main).nlist
            nprobe = params.get("nprobe", self.params.get("nprobe", max(1, nlist // 8)))
            p = faiss.SearchParametersIVF(nprobe=min(nprobe, nlist))
            if sel is not None:
                p.sel = sel
            return p
        return faiss.SearchParameters(sel=sel) if sel is not None else faiss.SearchParameters()


#: vectors the candidate index of trial_build is exercised with
TRIAL_VECTORS = 256
#: IVF lists of the candidate (k-means on TRIAL_VECTORS points cannot fill 65536 lists;
#: the list count itself is range-checked, the candidate checks the code path)
TRIAL_NLIST = 4


def trial_build(spec, field: str) -> None:
    """Build and exercise a candidate index for `spec` (a VariantSpec) on random unit
    vectors: add, nearest and farthest search with the spec's own search knobs,
    remove (or tombstone), serialize and load back. Any FAISS error becomes
    InvalidArgument naming ``<field>.index.kind``. IVF kinds are exercised with
    TRIAL_NLIST lists and trained at once."""
    kind, params = spec.index.kind, dict(spec.index.params)
    if kind == "ivf":
        params.update(nlist=min(params.get("nlist", TRIAL_NLIST), TRIAL_NLIST))
    elif kind.startswith("IVF"):
        kind = re.sub(r"^IVF\d+", f"IVF{TRIAL_NLIST}", kind)
    if "nlist" in params or kind.startswith("IVF"):
        params["train_min"] = TRIAL_VECTORS
    trial = replace(spec, index=replace(spec.index, kind=kind, params=params))
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((TRIAL_VECTORS, spec.dim)).astype(np.float32)  # (n, d)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ids = np.arange(1, TRIAL_VECTORS + 1, dtype=np.int64)
    try:
        index = VariantIndex(trial, main=None)
        index.add(ids, vecs)
        index.main = index._new_main(trained_on=vecs)  # trains IVF kinds
        if index.main is not None:
            index.main.add_with_ids(vecs, ids)
        index.add(ids[-8:] + TRIAL_VECTORS, vecs[:8])  # then grows insert by insert
        for farthest in (False, True):
            _, found = index.search(vecs[:4], 10, farthest, None, {}, 0)  # (4, 10)
            if not (found[:, 0] > 0).all():
                raise RuntimeError(f"the candidate index found nothing ({'farthest' if farthest else 'nearest'})")
        index.remove(ids[:8])
        exact = faiss.deserialize_index(faiss.serialize_index(index.exact))
        main = None if index.main is None else faiss.deserialize_index(faiss.serialize_index(index.main))
        VariantIndex(trial, exact=exact, main=main).search(vecs[:1], 5, False, None, {}, 0)
    except (RuntimeError, MemoryError, TypeError, ValueError, OverflowError) as exc:
        first = (str(exc).strip().splitlines() or ["failed"])[-1][:300]
        raise InvalidArgument(f"{field}.index.kind", f"FAISS cannot build {spec.index.kind!r} "
                              f"with {spec.index.params}: {first}") from None


def check_spec(spec: Any, field: str, trial: bool = True) -> VariantSpec:
    """A variant's name, dim and index configuration (index_rules); with `trial`,
    also build and exercise a small candidate index of that configuration (a stored
    spec is checked without it: it was tried when it was created)."""
    if not isinstance(spec, VariantSpec):
        raise InvalidArgument(field, f"must be a VariantSpec, got {type(spec).__name__}")
    check_name(spec.name, f"{field}.name")
    if not isinstance(spec.dim, int) or isinstance(spec.dim, bool) or not 1 <= spec.dim <= 65536:
        raise InvalidArgument(f"{field}.dim", f"must be an integer in 1..65536, got {spec.dim!r}")
    if not isinstance(spec.encoder, str):
        raise InvalidArgument(f"{field}.encoder", "must be a string")
    check_index(spec.index.kind, spec.index.params, f"{field}.index")
    if trial:
        trial_build(spec, field)
    return spec

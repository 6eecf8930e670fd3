"""Live experiments on a collection's rank variants: add and build a variant while the
collection serves, split traffic stickily, shadow a candidate, interleave two
variants, take click feedback, promote (and roll back) atomically, read out.

gRPC-free like the core: plain values in, ``ranksearch.errors`` out. The handlers
call it for the experiment RPCs and for single-query Search (BatchSearch and Embed
go straight to the core and never take part in experiments).

State: experiment settings (shadow, interleave), impressions, clicks, the shadow log,
variant builds and the audit log live in ``ExperimentLog``; split weights live in the
core's ``RoutingTable``; the default variant lives in the document store.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import threading
import time
import uuid
from typing import Any, Callable, Sequence

import numpy as np

from ranksearch.errors import FailedPrecondition, InvalidArgument, NotFound
from ranksearch.evaluation.online import readout
from ranksearch.service.backfill import VariantBuilder
from ranksearch.service.config import ExperimentsSection
from ranksearch.indexer.request import DENSE_MODES, SearchRequest
from ranksearch.service.core import SearchCore, VariantRequest
from ranksearch.service.experiments import ExperimentLog, Impression
from ranksearch.service.interleave import seed_of, team_draft
from ranksearch.service.shadow import ShadowJob, ShadowRunner

Alive = Callable[[], bool]


def bucket(salt: str, key: str) -> float:
    """A uniform point in [0, 1) for ``key``: sticky per key, independent per salt."""
    digest = hashlib.sha256(f"{salt}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _fraction(value: float, field: str) -> float:
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InvalidArgument(field, f"must be between 0 and 1, got {value}")
    return float(value)


@dataclasses.dataclass
class Served:
    """What a live Search answered: the variant (``a+b`` when interleaved), the mode,
    hits, the query id under which the impression was logged ('' when none was), and
    per hit the team that placed it ('a'/'b', empty unless interleaved)."""

    variant: str
    mode: str
    hits: list
    query_id: str = ""
    teams: list[str] = dataclasses.field(default_factory=list)


class LiveExperiments:
    def __init__(self, core: SearchCore, log: ExperimentLog, config: ExperimentsSection | None = None):
        self.core = core
        self.log = log
        self.config = config or ExperimentsSection()
        self._settings = log.all_settings()
        self._builders: dict[tuple[str, str], VariantBuilder] = {}
        self._lock = threading.Lock()
        self.shadow = ShadowRunner(log.add_shadow, capacity=self.config.shadow_queue)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Resume builds that a stop interrupted; keep unfinished variants out of traffic."""
        live = {c.name: {v.name for v in c.variants} for c in self.core.list_collections()}
        for (collection, variant), b in self.log.builds().items():
            if variant not in live.get(collection, set()):
                self.log.drop_build(collection, variant)
                continue
            if b["state"] == "building":
                self.core.indexer.set_partial(collection, variant, True)
                self._start_builder(collection, variant, after_seq=b["after_seq"])
            elif b["state"] == "failed":
                self.core.not_ready[(collection, variant)] = f"its build failed: {b['error']}"

    def close(self) -> None:
        for builder in list(self._builders.values()):
            builder.stop()
        self.shadow.close()
        self.log.close()

    # ------------------------------------------------------------ variants

    def _live_variants(self, action: str) -> None:
        """Adding, removing and promoting variants on a live collection need a store
        that can change a collection's variants (the embedded store)."""
        needed = ("add_variant", "remove_variant", "set_default_variant", "set_partial")
        if not all(hasattr(self.core.indexer, name) for name in needed):
            raise FailedPrecondition("collection", f"{action} needs the embedded store; this server's "
                                     "store cannot change a collection's variants")

    def add_variant(self, collection: str, request: VariantRequest, who: str) -> Any:
        self._live_variants("AddVariant")
        info = self.core.collection(collection)
        spec = self.core.variant_spec(request, "variant", {v.name for v in info.variants})
        with self._lock:
            self.core.indexer.add_variant(info.name, spec, partial=True)
            # out of traffic before refresh() makes it visible to searches
            self.core.not_ready[(info.name, spec.name)] = "it is being built"
            self.log.set_build(info.name, spec.name, state="building", done=0,
                               total=info.documents, after_seq=0)
            self.core.refresh()
            self.log.audit(who, "AddVariant", info.name,
                           {"variant": spec.name, "model": spec.encoder, "index": spec.index.kind,
                            "params": dict(spec.index.params)})
            self._start_builder(info.name, spec.name, after_seq=0)
        return spec

    def _start_builder(self, collection: str, variant: str, after_seq: int) -> None:
        self.core.not_ready[(collection, variant)] = "it is being built"
        info = self.core.collection(collection)
        spec = self.core.variant(info, variant)

        def encode(texts: list[str]) -> np.ndarray:
            return self.core.encode_documents(spec.encoder, texts)

        def progress(**kw) -> None:
            self.log.set_build(collection, variant, **kw)

        builder = VariantBuilder(
            indexer=self.core.indexer, collection=collection, variant=variant, encode=encode,
            progress=progress, serving_p95=lambda: self.core.serving_p95(collection),
            batch=self.config.build_batch, max_p95_ms=self.config.build_max_p95_ms,
            after_seq=after_seq, on_done=self._built)
        self._builders[(collection, variant)] = builder
        builder.start()

    def _built(self, collection: str, variant: str, state: str) -> None:
        if state == "ready":
            self.core.indexer.set_partial(collection, variant, False)
            self.core.not_ready.pop((collection, variant), None)
        else:
            self.core.not_ready[(collection, variant)] = f"its build failed: " \
                f"{self._builders[(collection, variant)].error}"

    def wait_built(self, collection: str, variant: str, timeout: float | None = None) -> str:
        builder = self._builders.get((collection, variant))
        if builder is not None:
            builder.join(timeout)
            return builder.state
        return "ready" if (collection, variant) not in self.core.not_ready else "building"

    def remove_variant(self, collection: str, variant: str, who: str) -> None:
        self._live_variants("RemoveVariant")
        info = self.core.collection(collection)
        self.core.variant(info, variant, "name")
        with self._lock:
            builder = self._builders.pop((info.name, variant), None)
            if builder is not None:
                builder.stop()
            self.core.indexer.remove_variant(info.name, variant)  # refuses the default
            weights = self.core.routing.weights(info.name)
            if variant in weights:
                weights.pop(variant)
                self.core.routing.set_weights(info.name, weights)
            settings = dict(self._settings.get(info.name, {}))
            if settings.get("shadow", {}).get("variant") == variant:
                settings.pop("shadow")
            if variant in (settings.get("interleave", {}).get("a"), settings.get("interleave", {}).get("b")):
                settings.pop("interleave")
            self._save_settings(info.name, settings)
            self.log.drop_build(info.name, variant)
            self.core.not_ready.pop((info.name, variant), None)
            self.core.refresh()
            self.log.audit(who, "RemoveVariant", info.name, {"variant": variant})

    # ------------------------------------------------------------ traffic

    def _ready_variant(self, info, name: str, field: str) -> None:
        self.core.variant(info, name, field)
        reason = self.core.not_ready.get((info.name, name))
        if reason:
            raise FailedPrecondition(field, f"variant {name!r} of {info.name!r} takes no traffic: {reason}")

    def set_traffic(self, collection: str, weights: dict[str, float], who: str) -> None:
        info = self.core.collection(collection)
        for name, w in weights.items():
            self._ready_variant(info, name, f"weights[{name}]")
            if not math.isfinite(w) or w < 0:
                raise InvalidArgument(f"weights[{name}]", f"must be a finite number >= 0, got {w}")
        before = self.core.routing.weights(info.name)
        self.core.routing.set_weights(info.name, weights)
        self.log.audit(who, "SetTraffic", info.name, {"before": before, "after": dict(weights)})

    def set_shadow(self, collection: str, variant: str, fraction: float, who: str) -> None:
        info = self.core.collection(collection)
        fraction = _fraction(fraction, "fraction")
        settings = dict(self._settings.get(info.name, {}))
        if variant and fraction > 0:
            self._ready_variant(info, variant, "variant")
            settings["shadow"] = {"variant": variant, "fraction": fraction}
        else:
            settings.pop("shadow", None)
        self._save_settings(info.name, settings)
        self.log.audit(who, "SetShadow", info.name, {"variant": variant, "fraction": fraction})

    def set_interleave(self, collection: str, a: str, b: str, fraction: float, who: str) -> None:
        info = self.core.collection(collection)
        fraction = _fraction(fraction, "fraction")
        settings = dict(self._settings.get(info.name, {}))
        if a or b:
            self._ready_variant(info, a, "variant_a")
            self._ready_variant(info, b, "variant_b")
            if a == b:
                raise InvalidArgument("variant_b", f"must differ from variant_a ({a!r})")
            settings["interleave"] = {"a": a, "b": b, "fraction": fraction}
        else:
            settings.pop("interleave", None)
        self._save_settings(info.name, settings)
        self.log.audit(who, "SetInterleave", info.name, {"a": a, "b": b, "fraction": fraction})

    def promote(self, collection: str, variant: str, who: str) -> str:
        """Make ``variant`` the default and send it all split traffic, atomically:
        a search that already chose the old variant finishes on it. Returns the old
        default (promoting it again is the rollback)."""
        self._live_variants("PromoteVariant")
        info = self.core.collection(collection)
        self._ready_variant(info, variant, "variant")
        with self._lock:
            before, weights = info.default_variant, self.core.routing.weights(info.name)
            self.core.indexer.set_default_variant(info.name, variant)
            self.core.routing.set_weights(info.name, {})
            self.core.refresh()
            self.log.audit(who, "PromoteVariant", info.name,
                           {"from": before, "to": variant, "weights_before": weights})
        return before

    def _save_settings(self, collection: str, settings: dict[str, Any]) -> None:
        self.log.set_settings(collection, settings)
        self._settings[collection] = settings

    def drop_collection(self, collection: str) -> None:
        for key in [k for k in self._builders if k[0] == collection]:
            self._builders.pop(key).stop()
        self._settings.pop(collection, None)
        self.log.drop_collection(collection)

    # ------------------------------------------------------------ serving

    def search(self, collection: str, query: str, request: SearchRequest, routing_key: str,
               alive: Alive, timeout: float | None, interleave: bool = False) -> Served:
        """One query through the collection's experiment: interleaved, split (logged),
        shadowed, or plain. Lexical searches involve no variant and take no part."""
        info = self.core.collection(collection)
        settings = self._settings.get(info.name, {})
        pair = settings.get("interleave")
        mode = request.mode or (info.defaults.mode if info.defaults else "nearest")
        if interleave:
            if not pair:
                raise FailedPrecondition("interleave", f"collection {info.name!r} has no interleaving "
                                         "pair (SetInterleave)")
            if request.variant or request.offset or mode not in DENSE_MODES:
                raise InvalidArgument("interleave", "cannot be combined with variant, offset or "
                                      "lexical mode")
        if pair and not request.variant and not request.offset and mode in DENSE_MODES and \
                (interleave or bucket("interleave", routing_key) < pair["fraction"]):
            return self._interleaved(info, query, request, routing_key, pair, alive, timeout)
        started = time.perf_counter()
        variant, mode, hits = self.core.search(info.name, [query], request, routing_key, alive, timeout,
                                               query_field="query")
        served = Served(variant, mode, hits[0])
        if not variant:  # lexical: no variant answered
            return served
        weights = self.core.routing.weights(info.name)
        if len(weights) > 1 or settings.get("log_impressions") or settings.get("shadow"):
            served.query_id = uuid.uuid4().hex
            self.log.add_impression(Impression(served.query_id, info.name, "split", variant,
                                               [h.id for h in served.hits], [], at=time.time()))
        shadow = settings.get("shadow")
        if shadow and not request.variant and shadow["variant"] != variant \
                and bucket("shadow", routing_key) < shadow["fraction"]:
            primary_ms = (time.perf_counter() - started) * 1000.0
            shadow_request = dataclasses.replace(request, variant=shadow["variant"])

            def run() -> list[str]:
                _, _, rows = self.core.search(info.name, [query], shadow_request, routing_key,
                                              query_field="query")
                return [h.id for h in rows[0]]

            self.shadow.offer(ShadowJob(info.name, query, variant, shadow["variant"],
                                        [h.id for h in served.hits], primary_ms, run))
        return served

    def _interleaved(self, info, query: str, request: SearchRequest, routing_key: str, pair: dict,
                     alive: Alive, timeout: float | None) -> Served:
        a, b = pair["a"], pair["b"]
        _, mode, hits_a = self.core.search(info.name, [query], dataclasses.replace(request, variant=a),
                                           routing_key, alive, timeout, query_field="query")
        _, _, hits_b = self.core.search(info.name, [query], dataclasses.replace(request, variant=b),
                                        routing_key, alive, timeout, query_field="query")
        query_id = uuid.uuid4().hex
        by_team = {"a": {h.id: h for h in hits_a[0]}, "b": {h.id: h for h in hits_b[0]}}
        merged = team_draft([h.id for h in hits_a[0]], [h.id for h in hits_b[0]], request.k,
                            seed_of(query_id))
        hits = [by_team[placed.team][doc_id] for doc_id, placed in merged]
        teams = [placed.team for _, placed in merged]
        self.log.add_impression(Impression(query_id, info.name, "interleave", f"{a}+{b}",
                                           [h.id for h in hits], teams, variant_a=a, variant_b=b,
                                           at=time.time()))
        return Served(f"{a}+{b}", mode, hits, query_id, teams)

    # ------------------------------------------------------------ feedback and readout

    def feedback(self, query_id: str, clicked: Sequence[str], dwell_ms: Sequence[float]) -> int:
        if not query_id:
            raise InvalidArgument("query_id", "is empty")
        if len(query_id) > 64:
            raise InvalidArgument("query_id", f"is {len(query_id)} characters; query ids have 32")
        if not clicked:
            raise InvalidArgument("clicked_ids", "is empty")
        if len(clicked) > 1000:
            raise InvalidArgument("clicked_ids", f"has {len(clicked)} entries; the limit is 1000")
        if dwell_ms and len(dwell_ms) != len(clicked):
            raise InvalidArgument("dwell_ms", f"has {len(dwell_ms)} entries for {len(clicked)} clicked ids "
                                  "(give one per click, or none)")
        self.log.flush()
        imp = self.log.impression(query_id)
        if imp is None:
            raise NotFound("query_id", f"no impression with query id {query_id!r} (ids come from "
                           "Search responses of collections with an experiment)")
        position = {doc_id: i for i, doc_id in enumerate(imp.ids)}
        rows = []
        for i, doc_id in enumerate(clicked):
            if doc_id not in position:
                raise InvalidArgument(f"clicked_ids[{i}]", f"{doc_id[:100]!r} was not shown for "
                                      f"query {query_id}")
            dwell = float(dwell_ms[i]) if dwell_ms else None
            if dwell is not None and (not math.isfinite(dwell) or dwell < 0):
                raise InvalidArgument(f"dwell_ms[{i}]", f"must be a finite number >= 0, got {dwell}")
            rows.append((position[doc_id], doc_id, dwell))
        return self.log.add_clicks(query_id, rows)

    def report(self, collection: str, since: float = 0.0) -> dict[str, Any]:
        info = self.core.collection(collection)
        out = readout(self.log.export(info.name, since), info.default_variant)
        out.update({"collection": info.name, "default_variant": info.default_variant,
                    "weights": self.core.routing.weights(info.name),
                    "settings": self._settings.get(info.name, {}),
                    "builds": self.builds(info.name), "shadow_counts": dict(self.shadow.counts),
                    "audit": self.log.audit_entries(info.name, limit=50)})
        return out

    def builds(self, collection: str) -> dict[str, dict[str, Any]]:
        return {v: b for (c, v), b in self.log.builds().items() if c == collection}

    def settings(self, collection: str) -> dict[str, Any]:
        return dict(self._settings.get(collection, {}))

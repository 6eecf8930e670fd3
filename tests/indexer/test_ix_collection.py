"""Collection (indexer/collection.py) on its own, without the Indexer: over a real
SQLite file and real FAISS indexes. Locks are checked with events, never timings:
a search that must wait for a write lock is shown to have waited by what it sees."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from ixhelpers import docs, in_thread, unit

from ranksearch.indexer import IndexerConfig, LexicalConfig, SearchDefaults, SearchRequest, VariantSpec
from ranksearch.indexer import lexical
from ranksearch.indexer.collection import Collection, Retired, Shared
from ranksearch.indexer.faiss_index import VariantIndex
from ranksearch.indexer.maintenance import BackgroundJobs
from ranksearch.indexer.rwlock import RWLock
from ranksearch.indexer.store import Store
from ranksearch.indexer.types import Document

D = 8
SPECS = [VariantSpec("v", D)]


class World:
    """One data dir: a real Store and the Shared its collections get."""

    def __init__(self, root):
        self.root = root
        self.quarantined: dict[str, str] = {}
        self.store = Store(root)
        self.shared = Shared(root, IndexerConfig(snapshot_interval_s=0), self.store, threading.RLock(),
                             BackgroundJobs(), self.quarantined.__setitem__)

    def create(self, name: str) -> Collection:
        lex, defaults = LexicalConfig(), SearchDefaults()
        self.store.create_collection(name, SPECS, "v", lexical.encode_config(lex, defaults))
        return Collection.create(self.shared, name, SPECS, "v", lex, defaults)

    def recover(self, name: str, notes: dict[str, str]) -> Collection:
        [(_, default, specs, config)] = [c for c in self.store.load_collections() if c[0] == name]
        return Collection.recover(self.shared, name, default, specs, config, notes)


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.store.close()


def loaded(world: World, name: str, n: int = 20, seed: int = 0) -> tuple[Collection, np.ndarray]:
    c = world.create(name)
    x = unit(np.random.default_rng(seed), n, D)  # (n, d)
    c.upsert(docs(n, prefix=name), {"v": x})
    return c, x


def top(c: Collection, q: np.ndarray, k: int = 1) -> list[str]:
    return [h.id for h in c.search(SearchRequest(k=k, include_text=False), q[None])[0]]


class SignallingLock(RWLock):
    """An RWLock that says when a reader has asked for it (before it waits)."""

    def __init__(self) -> None:
        super().__init__()
        self.reader_waiting = threading.Event()

    def read(self):
        self.reader_waiting.set()
        return super().read()


def test_a_commit_holds_its_own_collection_s_searches_and_no_other(world):
    """While a batch for `a` is inside its SQLite COMMIT (a's write lock held), a search
    of `b` answers; a search of `a` waits and then sees the whole batch."""
    a, xa = loaded(world, "a")
    b, xb = loaded(world, "b", seed=1)
    real_commit = world.store.commit
    in_commit, release = threading.Event(), threading.Event()

    def held_commit():
        in_commit.set()
        assert release.wait(60), "the test never released the commit"
        real_commit()

    world.store.commit = held_commit  # this store only
    a.lock = SignallingLock()
    new = unit(np.random.default_rng(2), 1, D)
    writer = threading.Thread(target=lambda: a.upsert([Document("new", "new")], {"v": new}), daemon=True)
    writer.start()
    assert in_commit.wait(20)

    assert in_thread(lambda: top(b, xb[3])) == ["b3"]  # another collection: not blocked
    a.lock.reader_waiting.clear()
    seen: list[list[str]] = []
    reader = threading.Thread(target=lambda: seen.append(top(a, new[0])), daemon=True)
    reader.start()
    assert a.lock.reader_waiting.wait(20)  # it asked for a's read lock while the commit holds it
    release.set()
    writer.join(20)
    reader.join(20)
    assert not writer.is_alive() and not reader.is_alive()
    assert seen == [["new"]]  # it waited: a search run during the commit could not see "new"


def test_a_rebuild_of_one_collection_blocks_no_search(world, monkeypatch):
    """A rebuild builds its indexes holding only the shared writer: searches and stats of
    its own collection (old index) and of another collection go on meanwhile."""
    a, xa = loaded(world, "a")
    b, xb = loaded(world, "b", seed=1)
    building, release = threading.Event(), threading.Event()
    real = VariantIndex.rebuilt

    def held(self):
        building.set()
        assert release.wait(60), "the test never released the rebuild"
        return real(self)

    monkeypatch.setattr(VariantIndex, "rebuilt", held)
    def run_rebuild():
        with world.shared.writer:  # as Indexer.rebuild calls it
            a.rebuild()

    rebuild = threading.Thread(target=run_rebuild, daemon=True)
    rebuild.start()
    assert building.wait(20)
    assert in_thread(lambda: top(b, xb[5])) == ["b5"]
    assert in_thread(lambda: top(a, xa[5])) == ["a5"]
    assert in_thread(lambda: a.stats(0.0))["documents"] == 20
    release.set()
    rebuild.join(20)
    assert not rebuild.is_alive()
    assert top(a, xa[7]) == ["a7"] and a.verify() == (
        {"documents": 20, "variants": {"v": {"vectors": 20, "index_matches_sqlite": True}}, "lexical_documents": 20},
        [])


def test_writes_wait_for_the_shared_writer_and_go_to_their_own_collection(world):
    a, xa = loaded(world, "a")
    b, _ = loaded(world, "b", seed=1)
    with world.shared.writer:  # e.g. a snapshot of every collection in progress
        writer = threading.Thread(target=lambda: b.delete(["b0", "b1"]), daemon=True)
        writer.start()
        assert a.info().documents == b.info().documents == 20
    writer.join(20)
    assert b.info().documents == 18 and a.info().documents == 20
    assert world.store.count_documents("b") == 18 and world.store.count_documents("a") == 20


def test_a_retired_collection_refuses_writes_that_waited_for_it(world):
    """A write that waited for the writer while its collection was deleted raises Retired
    (the indexer then looks the name up again) and writes nothing."""
    a, x = loaded(world, "a")
    errors: list[BaseException] = []

    def write():
        try:
            a.upsert([Document("late", "late")], {"v": x[:1]})
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            errors.append(exc)

    with world.shared.writer:
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        a.retire()
    writer.join(20)
    assert [type(e) for e in errors] == [Retired]
    assert world.store.get("a", ["late"]) == {}


def test_snapshot_and_recover_replay_what_came_after(world):
    """A collection snapshotted, then written to, recovers from its snapshot plus the
    changes in SQLite, in a new Collection over the same files."""
    a, x = loaded(world, "a")
    with world.shared.writer:
        a.snapshot(world.store.max_seq())
    assert a.dirty == set()
    a.delete(["a0", "a1"])
    a.upsert([Document("a2", "moved")], {"v": x[9:10]})

    notes: dict[str, str] = {}
    again = world.recover("a", notes)
    assert notes == {"a/v": "snapshot seq 20: replayed 1 added, 3 removed"}
    assert again.info().documents == 18 and again.dirty == {"v"}
    assert [h.id for h in again.search(SearchRequest(k=2, include_text=False), x[9:10])[0]] in (
        ["a2", "a9"], ["a9", "a2"])
    assert again.verify()[1] == []


def test_an_apply_that_fails_keeps_the_committed_write_and_quarantines(world, monkeypatch):
    """The SQLite commit is the commit point: when the in-memory apply and the rebuild
    from SQLite both fail, the write is still acknowledged and stored, and the
    collection asks to be taken out of service."""
    a, x = loaded(world, "a")

    def broken(self, ids, vecs):
        raise RuntimeError("faiss broke")

    monkeypatch.setattr(VariantIndex, "add", broken)
    assert a.upsert([Document("kept", "kept")], {"v": x[:1]}) == 1
    assert list(world.quarantined) == ["a"]
    assert "could not take a committed write (faiss broke)" in world.quarantined["a"]
    assert world.store.get("a", ["kept"])["kept"].text == "kept"

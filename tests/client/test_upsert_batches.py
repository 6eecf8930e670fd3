"""SearchClient.upsert_batches against a real server: a deadline per batch, outcomes
in order as they become durable, halving on DEADLINE_EXCEEDED."""
from __future__ import annotations

import grpc
import pytest

from ranksearch.client import RpcFailed, SearchClient, Upserted


def test_batches_are_acknowledged_in_order_and_unchanged_ones_skipped(server):
    client = server.client()
    docs = [{"id": f"d{i}", "text": f"text {i}"} for i in range(10)]
    assert list(client.upsert_batches("docs", docs, batch_size=4)) == [Upserted(4), Upserted(4), Upserted(2)]
    docs[9]["text"] = "new"
    assert list(client.upsert_batches("docs", docs, batch_size=4)) == [Upserted(4, 4), Upserted(4, 4),
                                                                        Upserted(2, 1)]


def test_a_batch_past_its_deadline_is_sent_again_in_halves(server, monkeypatch):
    real, sizes = SearchClient._upsert_batch, []

    def slow_server(self, collection, batch, timeout):  # more than 2 documents miss the deadline
        sizes.append(len(batch))
        if len(batch) > 2:
            raise RpcFailed(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
        return real(self, collection, batch, timeout)

    monkeypatch.setattr(SearchClient, "_upsert_batch", slow_server)
    client = server.client()
    docs = [{"id": f"d{i}", "text": f"text {i}"} for i in range(9)]
    assert sum(u.count for u in client.upsert_batches("docs", docs, batch_size=8)) == 9
    assert sizes == [8, 4, 2, 2, 2, 2, 1]
    assert len(client.get("docs", [d["id"] for d in docs])) == 9

    monkeypatch.setattr(SearchClient, "_upsert_batch", lambda *a: (_ for _ in ()).throw(
        RpcFailed(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")))
    with pytest.raises(RpcFailed):  # one document that cannot make it: the error stands
        list(client.upsert_batches("docs", docs[:1], batch_size=8))


def test_upsert_stream_raises_the_readers_own_error_not_unknown(server):
    def documents():
        yield {"id": "a", "text": "fine"}
        raise ValueError("line 2 of the file is broken")

    with pytest.raises(ValueError, match="line 2 of the file is broken"):
        server.client().upsert_stream("docs", documents(), batch_size=1)

"""PostgreSQL-only behaviour: the HNSW path, migrations under an advisory lock, unavailability."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from mnemo.config import DEFAULT_EMBEDDING
from mnemo.errors import StoreUnavailable
from mnemo.models import Agent, Passage, new_id
from mnemo.store.base import PassageFilter
from mnemo.store.postgres import PostgresStore
from tests.postgres import fresh_database


def test_hnsw_search_agrees_with_exact(postgres_url: str) -> None:
    url = fresh_database(postgres_url)
    indexed = PostgresStore(url, exact_scan_max_rows=0)  # always take the HNSW path
    exact = PostgresStore(url, migrate=False)
    agent = Agent(id=new_id("agent"), name="hnsw", embedding=DEFAULT_EMBEDDING)
    indexed.create_agent(agent, [], [])
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((600, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    passages = [
        Passage(
            id=new_id("passage"),
            agent_id=agent.id,
            text=f"p{i}",
            embedding_handle=DEFAULT_EMBEDDING,
        )
        for i in range(600)
    ]
    indexed.insert_passages(passages, vectors)
    mine = PassageFilter(agent_ids=[agent.id])
    overlap = []
    for q in vectors[:20] + 0.05 * rng.standard_normal((20, 384)).astype(np.float32):
        q = q / np.linalg.norm(q)
        a = {pid for pid, _ in indexed.vector_search(q, DEFAULT_EMBEDDING, mine, 10)}
        b = {pid for pid, _ in exact.vector_search(q, DEFAULT_EMBEDDING, mine, 10)}
        overlap.append(len(a & b) / 10)
    assert np.mean(overlap) >= 0.95
    indexed.close()
    exact.close()


def test_replicas_starting_together_migrate_once(postgres_url: str) -> None:
    url = fresh_database(postgres_url)
    stores: list[PostgresStore] = []
    errors: list[Exception] = []

    def open_one() -> None:
        try:
            stores.append(PostgresStore(url))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with stores[0].pool.connection() as conn:
        names = [r["name"] for r in conn.execute("SELECT name FROM _migrations")]
    assert names == ["m001_initial"]
    assert stores[0].migrate() == []
    for store in stores:
        store.close()


def test_unreachable_database_is_store_unavailable() -> None:
    with pytest.raises(StoreUnavailable) as error:
        PostgresStore("postgresql://nobody:secret@127.0.0.1:1/none", pool_timeout=0.5)
    assert "secret" not in error.value.message

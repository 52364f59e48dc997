"""A bulk load's neighbourhood order (store/row_order.py): labels, and the table it leaves."""

from __future__ import annotations

import itertools

import numpy as np
import psycopg
import psycopg.rows
import pytest

from mnemo.config import DEFAULT_EMBEDDING
from mnemo.embed.catalog import LOCAL_MODELS
from mnemo.models import Agent, Passage, new_id
from mnemo.store import postgres_postings
from mnemo.store.base import PassageFilter
from mnemo.store.postgres import PostgresStore
from mnemo.store.row_order import Neighbourhoods, kmeans
from tests.postgres import fresh_database

DIM = LOCAL_MODELS[DEFAULT_EMBEDDING].dim


def _clustered(clusters: int, per_cluster: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around `clusters` far-apart centres, shuffled; and each one's cluster."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIM)).astype(np.float32)
    truth = rng.permutation(np.repeat(np.arange(clusters), per_cluster))
    vectors = centres[truth] + 0.1 * rng.standard_normal((len(truth), DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True), truth


def test_kmeans_puts_each_cluster_under_one_centre() -> None:
    vectors, truth = _clustered(8, 50)
    centres = kmeans(vectors, 8)
    labels = np.argmax(vectors @ centres.T, axis=1)
    for cluster in range(8):
        assert len(set(labels[truth == cluster].tolist())) == 1
    assert np.allclose(np.linalg.norm(centres, axis=1), 1.0, atol=1e-5)


def test_rows_wait_for_the_sample_then_are_labelled_as_they_come() -> None:
    vectors, truth = _clustered(4, 100)
    order = Neighbourhoods(sample=100, centres=4)
    ids = [f"p{i}" for i in range(len(vectors))]
    assert order.assign(ids[:60], vectors[:60]) == [None] * 60
    assert not order.learned
    assert order.assign(ids[60:120], vectors[60:120]) == [None] * 60  # the sample fills here
    assert order.learned
    later = order.assign(ids[120:], vectors[120:])
    waiting_ids, waiting = order.backlog()
    assert waiting_ids == ids[:120]
    keys = np.array(waiting + later)
    backbone = keys < 0
    assert 0 < backbone.sum() < 30  # about 2 %, in random order
    assert len(set(keys[backbone].tolist())) == backbone.sum()
    for cluster in range(4):  # one key per cluster, whether backlogged or not
        assert len(set(keys[(truth == cluster) & ~backbone].tolist())) == 1
    assert order.backlog() == ([], [])  # handed over once


def test_a_load_smaller_than_the_sample_is_left_as_it_came() -> None:
    vectors, _ = _clustered(4, 10)
    order = Neighbourhoods(sample=100, centres=4)
    order.assign([f"p{i}" for i in range(40)], vectors)
    assert not order.learned and order.backlog() == ([], [])
    with pytest.raises(ValueError, match="cannot place"):
        Neighbourhoods(sample=10, centres=20)


def _indexed(agent_id: str, texts: list[str]) -> list[Passage]:
    """Passages of the default (HNSW-indexed) embedder."""
    return [
        Passage(id=new_id("passage"), agent_id=agent_id, text=t, embedding_handle=DEFAULT_EMBEDDING)
        for t in texts
    ]


def _physical_runs(url: str, ids: list[str], truth: np.ndarray) -> tuple[int, int]:
    """Reading the table in heap order: how many rows of the backbone (negative keys) lead,
    and how many runs of one cluster the rows after them hold."""
    cluster_of = dict(zip(ids, truth.tolist(), strict=True))
    with psycopg.connect(url) as conn:
        in_heap = conn.execute(
            "SELECT id, coalesce(neighbourhood, 0) < 0 FROM passages ORDER BY ctid"
        ).fetchall()
    in_heap = [(i, first) for i, first in in_heap if i in cluster_of]
    leading = next((n for n, (_, first) in enumerate(in_heap) if not first), len(in_heap))
    clusters = [cluster_of[i] for i, _ in in_heap[leading:]]
    return leading, 1 + sum(a != b for a, b in itertools.pairwise(clusters))


def test_a_bulk_load_leaves_passages_grouped_by_neighbourhood(postgres_url: str) -> None:
    url = fresh_database(postgres_url)
    store = PostgresStore(url, load_order_sample=200, exact_scan_max_rows=0)
    vectors, truth = _clustered(6, 100)
    agent = Agent(id=new_id("agent"), name="ordered", embedding=DEFAULT_EMBEDDING)
    other = Agent(id=new_id("agent"), name="other-embedder", embedding="x/y")
    for a in (agent, other):
        store.create_agent(a, [], [])
    passages = _indexed(agent.id, [f"cluster {c} row {i}" for i, c in enumerate(truth.tolist())])
    unindexed = [
        Passage(id=new_id("passage"), agent_id=other.id, text=f"other {i}", embedding_handle="x/y")
        for i in range(20)
    ]
    with store.bulk_load() as deferred:
        assert deferred
        for start in range(0, len(passages), 50):  # batches, as migrate-data sends them
            store.insert_passages(passages[start : start + 50], vectors[start : start + 50])
        store.insert_passages(unindexed, np.ones((20, 8), dtype=np.float32))
        ids = [p.id for p in passages]
        assert _physical_runs(url, ids, truth)[1] > 100  # shuffled as it arrived
    backbone, runs = _physical_runs(url, ids, truth)
    assert 2 <= backbone <= 40  # about 2 % of the rows go first
    # 10 centres (200 rows sampled) for 6 clusters: a cluster may span two neighbourhoods
    assert runs <= 10
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        labelled = conn.execute(
            "SELECT embedding_handle, count(*) AS n, count(neighbourhood) AS labelled,"
            " count(*) FILTER (WHERE neighbourhood < 0) AS backbone"
            " FROM passages GROUP BY 1 ORDER BY 1"
        ).fetchall()
        assert postgres_postings.intact(conn)
        clustered_on = conn.execute(
            "SELECT count(*) AS n FROM pg_index WHERE indrelid = 'passages'::regclass"
            " AND indisclustered"
        ).fetchone()["n"]
    assert labelled == [
        {"embedding_handle": DEFAULT_EMBEDDING, "n": 600, "labelled": 600, "backbone": backbone},
        {"embedding_handle": "x/y", "n": 20, "labelled": 0, "backbone": 0},
    ]
    assert clustered_on == 0  # the ordering index is gone
    kept = store.get_passages([passages[123].id])
    assert kept[0].text == passages[123].text
    mine = PassageFilter(agent_ids=[agent.id])
    [(found, _)] = store.vector_search(vectors[123], DEFAULT_EMBEDDING, mine, 1)
    assert found == passages[123].id
    assert [p for p, _ in store.lexical_search("row 123", mine, 1)] == [passages[123].id]
    store.close()


def test_a_bulk_load_below_the_sample_keeps_its_order(postgres_url: str) -> None:
    url = fresh_database(postgres_url)
    store = PostgresStore(url, load_order_sample=1000)
    vectors, truth = _clustered(6, 50)
    agent = Agent(id=new_id("agent"), name="small", embedding=DEFAULT_EMBEDDING)
    store.create_agent(agent, [], [])
    passages = _indexed(agent.id, [f"r{i}" for i in range(len(truth))])
    with store.bulk_load():
        store.insert_passages(passages, vectors)
    ids = [p.id for p in passages]
    with psycopg.connect(url) as conn:
        in_heap = [r[0] for r in conn.execute("SELECT id FROM passages ORDER BY ctid")]
        labelled = conn.execute("SELECT count(neighbourhood) FROM passages").fetchone()[0]
    assert in_heap == ids and labelled == 0
    store.close()

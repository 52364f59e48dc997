"""PostgreSQL-only behaviour: the HNSW path, migrations under an advisory lock, unavailability."""

from __future__ import annotations

import dataclasses
import logging
import math
import subprocess
import sys
import threading
import time

import numpy as np
import psycopg
import psycopg.rows
import pytest

from mnemo.errors import InvalidInput, StoreUnavailable
from mnemo.models import Agent, Message, Passage, new_id
from mnemo.store import bm25, postgres_migrations, postgres_postings
from mnemo.store.base import MessageFilter, Page, PassageFilter
from mnemo.store.filters import passage_where
from mnemo.store.postgres import CHECK_IDLE_AFTER, INSERT_MAX_ROWS, PASSAGES, SQL, PostgresStore
from mnemo.store.postgres_migrations import HNSW_INDEXES, HnswIndex
from mnemo.store.postgres_vectors import (
    auto_ef_search,
    hnsw_query,
    indexed_passages,
)
from mnemo.store.shared import keyset_page
from mnemo.text import ANALYZER_VERSION, OWN_WEIGHT
from tests.postgres import fresh_database

# MiniLM's index has a history of migrations (m 12 to 16, vector to halfvec) the tests replay.
MINILM_INDEX = next(index for index in HNSW_INDEXES if index.name == "passages_minilm_hnsw")
MINILM = MINILM_INDEX.handle
DIM = MINILM_INDEX.dimension


def _indexed_passages(store: PostgresStore, count: int, handle: str = MINILM) -> list[Passage]:
    """`count` passages of a new agent, embedded by an HNSW-indexed model."""
    agent = Agent(id=new_id("agent"), name=new_id("hnsw")[-12:], embedding=handle)
    store.create_agent(agent, [], [])
    return [
        Passage(
            id=new_id("passage"),
            agent_id=agent.id,
            text=f"p{i}",
            embedding_handle=handle,
        )
        for i in range(count)
    ]


@pytest.mark.parametrize("index", HNSW_INDEXES, ids=lambda index: index.name)
def test_hnsw_search_agrees_with_exact(postgres_url: str, index: HnswIndex) -> None:
    url = fresh_database(postgres_url)
    indexed = PostgresStore(url, exact_scan_max_rows=0)  # always take the HNSW path
    exact = PostgresStore(url, migrate=False)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((600, index.dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    passages = _indexed_passages(indexed, 600, index.handle)
    indexed.insert_passages(passages, vectors)
    mine = PassageFilter(agent_ids=[passages[0].agent_id])
    overlap = []
    noise = 0.05 * rng.standard_normal((20, index.dimension)).astype(np.float32)
    for q in vectors[:20] + noise:
        q = q / np.linalg.norm(q)
        a = {pid for pid, _ in indexed.vector_search(q, index.handle, mine, 10)}
        b = {pid for pid, _ in exact.vector_search(q, index.handle, mine, 10)}
        overlap.append(len(a & b) / 10)
    assert np.mean(overlap) >= 0.95
    with indexed.pool.connection() as conn:
        where = [f"p.embedding_handle = {index.handle_literal}"]
        plan = conn.execute(
            f"EXPLAIN {hnsw_query(index, 'halfvec', where)}",
            (str(vectors[0].tolist()), str(vectors[0].tolist()), 3),
        ).fetchall()
    assert index.name in str(plan)
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
    assert names == [name for name, _ in postgres_migrations.MIGRATIONS]
    assert len(names) == len(set(names))
    assert stores[0].migrate() == []
    for store in stores:
        store.close()


def _hnsw_definition(store: PostgresStore) -> str:
    with store.pool.connection() as conn:
        return conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'passages_minilm_hnsw'"
        ).fetchone()["indexdef"]


def test_hnsw_index_moves_to_m16_only_while_empty(postgres_url: str) -> None:
    store = PostgresStore(fresh_database(postgres_url))
    assert "m='16'" in _hnsw_definition(store)
    m12 = MINILM_INDEX.create().replace("m = 16", "m = 12")
    assert m12 != MINILM_INDEX.create()

    def rerun_m007() -> None:
        with store.pool.connection() as conn:
            conn.execute("DROP INDEX passages_minilm_hnsw")
            conn.execute(m12)  # the index as m004 made it
            conn.execute("DELETE FROM _migrations WHERE name = 'm007_hnsw_m16'")
        assert store.migrate() == ["m007_hnsw_m16"]

    agent = Agent(id=new_id("agent"), name="m16", embedding=MINILM)
    store.create_agent(agent, [], [])
    passage = Passage(id=new_id("passage"), agent_id=agent.id, text="kept", embedding_handle=MINILM)
    store.insert_passages([passage], np.ones((1, DIM), dtype=np.float32))
    rerun_m007()
    assert "m='12'" in _hnsw_definition(store)  # a populated database keeps its graph
    store.delete_passage(passage.id)
    rerun_m007()
    assert "m='16'" in _hnsw_definition(store)
    store.close()


def _uses_hnsw(url: str, graph: str) -> bool:
    """Whether PostgreSQL runs the store's HNSW query on `graph` through the index."""
    with psycopg.connect(url) as conn:
        conn.execute("SET enable_seqscan = off")
        where = [f"p.embedding_handle = {MINILM_INDEX.handle_literal}"]
        literal = "[" + ",".join(["0.05"] * DIM) + "]"
        plan = conn.execute(
            f"EXPLAIN {hnsw_query(MINILM_INDEX, graph, where)}", (literal, literal, 3)
        )
        return MINILM_INDEX.name in str(plan.fetchall())


def test_a_populated_database_keeps_its_vector_index_and_searches_by_it(
    postgres_url: str,
) -> None:
    url = fresh_database(postgres_url)
    store = PostgresStore(url, exact_scan_max_rows=0)  # always the HNSW path
    assert "halfvec_cosine_ops" in _hnsw_definition(store)
    assert "ef_construction='128'" in _hnsw_definition(store)
    assert _uses_hnsw(url, "halfvec") and not _uses_hnsw(url, "vector")
    passages = _indexed_passages(store, 40)
    vectors = np.random.default_rng(5).standard_normal((40, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store.insert_passages(passages, vectors)
    old_index = MINILM_INDEX.create().replace("halfvec", "vector")
    with store.pool.connection() as conn:
        conn.execute("DROP INDEX passages_minilm_hnsw")
        conn.execute(old_index)  # the index as m001 to m008 made it
        conn.execute("DELETE FROM _migrations WHERE name = 'm009_hnsw_halfvec'")
    assert store.migrate() == ["m009_hnsw_halfvec"]
    assert "vector_cosine_ops" in _hnsw_definition(store)  # a populated database keeps it
    assert _uses_hnsw(url, "vector")
    searching = PostgresStore(url, exact_scan_max_rows=0)
    with searching.pool.connection() as conn:
        assert searching.vectors._hnsw_type(conn, MINILM_INDEX) == "vector"
    hits = searching.vector_search(vectors[11], MINILM, PassageFilter(), 3)
    assert hits[0][0] == passages[11].id
    assert math.isclose(hits[0][1], 1.0, abs_tol=1e-5)  # scored at full precision
    searching.close()
    store.close()


def test_unreachable_database_is_store_unavailable() -> None:
    with pytest.raises(StoreUnavailable) as error:
        PostgresStore("postgresql://nobody:secret@127.0.0.1:1/none", pool_timeout=0.5)
    assert "secret" not in error.value.message


def _postings(url: str) -> set[tuple[str, int]]:
    """(lexeme, passage seq) as a search reads them: the blocks, less the passages changed since
    they were packed, and `passage_terms`, which holds nothing a block already does."""
    with psycopg.connect(url) as conn:
        covered, changed = conn.execute(
            "SELECT covered_seq, ARRAY(SELECT passage_seq FROM posting_changes)"
            " FROM posting_blocks_state"
        ).fetchone()
        blocked = {
            (term, int(seq))
            for term, packed in conn.execute("SELECT term, postings FROM posting_blocks")
            for seq in bm25.unpack(packed) >> bm25.SEQ_SHIFT
            if seq not in changed
        }
        recent = conn.execute("SELECT term, passage_seq FROM passage_terms").fetchall()
    assert all(seq > covered or seq in changed for _, seq in recent)
    return blocked | set(recent)


def _expected_postings(url: str) -> set[tuple[str, int]]:
    with psycopg.connect(url) as conn:
        return set(
            conn.execute("SELECT u.lexeme, p.seq FROM passages p, unnest(p.text_tsv) u").fetchall()
        )


def test_bm25_postings_follow_inserts_updates_and_deletes(postgres_url: str) -> None:
    url = fresh_database(postgres_url)
    store = PostgresStore(url)
    agents = [Agent(id=new_id("agent"), name=f"terms{i}", embedding="x/y") for i in range(2)]
    for agent in agents:
        store.create_agent(agent, [], [])
    texts = ["deploy the canary release", "canary tests flaked twice", "rotate the signing keys"]
    passages = [
        Passage(id=new_id("passage"), agent_id=agent.id, text=text, embedding_handle="x/y")
        for agent in agents
        for text in texts
    ]
    store.insert_passages(passages, np.ones((len(passages), 8), dtype=np.float32))
    assert _postings(url) == _expected_postings(url)
    assert len(_postings(url)) >= 2 * 9
    mine = PassageFilter(agent_ids=[agents[0].id])
    assert store.lexical_search("canary", mine, 10)[0][0] in {p.id for p in passages[:2]}

    edited = dataclasses.replace(passages[2], text="renew the TLS certificates")
    store.update_passage(edited, None)
    assert _postings(url) == _expected_postings(url)
    assert [pid for pid, _ in store.lexical_search("certificates", mine, 10)] == [edited.id]
    assert store.lexical_search("signing", mine, 10) == []

    store.delete_passage(passages[0].id)
    assert _postings(url) == _expected_postings(url)
    store.delete_agent(agents[1].id)  # passages go by cascade; their postings with them
    assert _postings(url) == _expected_postings(url)
    assert len({seq for _, seq in _postings(url)}) == 2
    store.close()


def test_upgrade_from_first_schema_indexes_existing_passages(postgres_url: str) -> None:
    url = fresh_database(postgres_url)
    with psycopg.connect(url) as conn:
        postgres_migrations.m001_initial(conn)
        conn.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ)")
        conn.execute("INSERT INTO _migrations (name) VALUES ('m001_initial')")
        conn.execute(
            "INSERT INTO agents (id, name, agent_type, embedding, created_at, updated_at)"
            " VALUES ('agent-00000000-0000-4000-8000-000000000001', 'old', 'memgpt_agent',"
            " 'x/y', now(), now())"
        )
        conn.execute(
            "INSERT INTO passages (id, agent_id, text, embedding_handle, created_at, updated_at)"
            " VALUES ('passage-00000000-0000-4000-8000-000000000001',"
            " 'agent-00000000-0000-4000-8000-000000000001',"
            " 'the migration kept this passage searchable', 'x/y', now(), now())"
        )
    store = PostgresStore(url)
    assert store.analyzer_version() == ""  # the server re-analyses at start (service.py)
    old = store.list_passages(PassageFilter(), Page(limit=10))
    assert store.reindex_keywords([old], ANALYZER_VERSION) == 1
    assert store.analyzer_version() == ANALYZER_VERSION
    hits = store.lexical_search(
        "searchable", PassageFilter(agent_ids=["agent-00000000-0000-4000-8000-000000000001"]), 5
    )
    assert [pid for pid, _ in hits] == ["passage-00000000-0000-4000-8000-000000000001"]
    assert _postings(url) == _expected_postings(url)
    assert ("searchabl", 1) in _postings(url)
    store.close()


def test_upgrade_drops_the_postings_blocks_already_hold(postgres_url: str) -> None:
    """Before m006 `passage_terms` held every posting under the key name older replicas check
    before compacting; after it, only those of passages no block holds or changed since."""
    url = fresh_database(postgres_url)
    store = PostgresStore(url)
    passages = _agent_with_passages(store, [f"upgrade note {i} about canary" for i in range(30)])
    store.compactor.compact()
    with psycopg.connect(url, autocommit=True) as other:  # no background round meanwhile
        other.execute("SELECT pg_advisory_lock(%s)", (postgres_postings.COMPACT_LOCK,))
        store.update_passage(dataclasses.replace(passages[0], text="renamed to rollback"), None)
        newer = _agent_with_passages(store, ["written after packing, about helm"])
        with psycopg.connect(url) as conn:  # passage_terms as m002 to m005 kept it
            conn.execute(
                "ALTER TABLE passage_terms RENAME CONSTRAINT"
                f" {postgres_postings.POSTINGS_KEY_NAME} TO passage_terms_pkey"
            )
            conn.execute("TRUNCATE passage_terms")
            conn.execute(
                "INSERT INTO passage_terms (term, agent_key, passage_seq, tf, doclen) "
                + postgres_postings.POSTINGS_OF.format(source="passages")
            )
            conn.execute("DELETE FROM _migrations WHERE name = 'm006_recent_passage_terms'")
        assert store.migrate() == ["m006_recent_passage_terms"]
        with psycopg.connect(url) as conn:
            kept = {r[0] for r in conn.execute("SELECT DISTINCT passage_seq FROM passage_terms")}
            seqs = dict(conn.execute("SELECT id, seq FROM passages").fetchall())
            assert postgres_postings.intact(conn.cursor(row_factory=psycopg.rows.dict_row))
        assert kept == {seqs[passages[0].id], seqs[newer[0].id]}
        assert _postings(url) == _expected_postings(url)
        mine = PassageFilter(agent_ids=[passages[0].agent_id])
        assert [pid for pid, _ in store.lexical_search("rollback", mine, 5)] == [passages[0].id]
        assert len(store.lexical_search("canary", mine, 50)) == 29
        # Released here: a closed connection's backend may hold its locks a moment longer.
        other.execute("SELECT pg_advisory_unlock(%s)", (postgres_postings.COMPACT_LOCK,))
    store.compactor.compact()
    assert _postings(url) == _expected_postings(url)
    store.close()


def test_ef_search_outside_pgvector_range_is_refused(postgres_url: str) -> None:
    with pytest.raises(InvalidInput) as error:
        PostgresStore(postgres_url, migrate=False, ef_search=5000)
    assert "hnsw_ef_search" in str(error.value) and "5000" in str(error.value)


def test_auto_ef_search_grows_with_the_index() -> None:
    sizes = [0, 100_000, 250_000, 500_000, 750_000, 1_000_000, 2_000_000, 5_000_000]
    chosen = [auto_ef_search(n) for n in sizes]
    assert chosen == [100, 100, 150, 300, 450, 600, 1000, 1000]


def test_the_hnsw_index_size_is_read_from_statistics(postgres_url: str) -> None:
    url = fresh_database(postgres_url)
    store = PostgresStore(url, exact_scan_max_rows=0)
    vectors = np.random.default_rng(3).standard_normal((300, DIM)).astype(np.float32)
    passages = _indexed_passages(store, 300)
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        with store.bulk_load():
            store.insert_passages(passages, vectors)
            assert indexed_passages(conn, MINILM_INDEX) >= 0  # no index meanwhile: still an answer
        assert indexed_passages(conn, MINILM_INDEX) == 300  # counted by the build
    [(found, _)] = store.vector_search(
        vectors[7], MINILM, PassageFilter(agent_ids=[passages[7].agent_id]), 1
    )
    assert found == passages[7].id
    store.close()


def test_searches_are_planned_for_their_own_arguments(postgres_url: str) -> None:
    """No server-side prepared statements: psycopg prepares a query after five runs, and
    PostgreSQL then settles on a generic plan that cannot see the agent or the words searched
    (measured at 1,000,000 messages: 16 -> 258 ms per search)."""
    url = fresh_database(postgres_url)
    store = PostgresStore(url, pool_size=1)
    [passage] = _agent_with_passages(store, ["retry the flaky upload test"])
    store.insert_messages(
        [
            Message(
                id=new_id("message"),
                agent_id=passage.agent_id,
                message_type="user_message",
                content="why does the upload test fail",
            )
        ]
    )
    for _ in range(8):
        assert store.lexical_search("upload test", PassageFilter(agent_ids=[passage.agent_id]), 5)
        assert store.search_messages("upload", MessageFilter(agent_ids=[passage.agent_id]), 5)
    with store.pool.connection() as conn:
        prepared = conn.execute("SELECT count(*) AS n FROM pg_prepared_statements").fetchone()
    assert prepared["n"] == 0
    store.close()


def _agent_with_passages(store: PostgresStore, texts: list[str]) -> list[Passage]:
    agent = Agent(id=new_id("agent"), name=f"bulk-{new_id('x')[-6:]}", embedding="x/y")
    store.create_agent(agent, [], [])
    passages = [
        Passage(id=new_id("passage"), agent_id=agent.id, text=t, embedding_handle="x/y")
        for t in texts
    ]
    store.insert_passages(passages, np.ones((len(passages), 8), dtype=np.float32))
    return passages


def test_bulk_load_builds_postings_once_at_the_end(postgres_url: str) -> None:
    url = fresh_database(postgres_url)
    store = PostgresStore(url)
    with store.bulk_load() as deferred:
        assert deferred
        loaded = _agent_with_passages(store, [f"bulk row {i} about kubernetes" for i in range(50)])
        assert _postings(url) == set()  # suspended while rows go in
    assert _postings(url) == _expected_postings(url)
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        assert postgres_postings.intact(conn)
        packed = conn.execute(
            "SELECT sum(n) AS n, (SELECT covered_seq FROM posting_blocks_state) AS covered,"
            " (SELECT max(seq) FROM passages) AS newest FROM posting_blocks"
        ).fetchone()
    assert packed["n"] == len(_postings(url))  # blocks built in the same pass
    assert packed["covered"] == packed["newest"]
    with store.bulk_load() as deferred:
        assert not deferred  # rows present: replicas may be searching, indexes stay
    later = _agent_with_passages(store, ["written after the load, about helm"])  # trigger is back
    assert _postings(url) == _expected_postings(url)
    mine = PassageFilter(agent_ids=[later[0].agent_id])
    assert [pid for pid, _ in store.lexical_search("helm", mine, 5)] == [later[0].id]
    theirs = PassageFilter(agent_ids=[loaded[0].agent_id])
    assert len(store.lexical_search("kubernetes", theirs, 100)) == 50
    store.close()


def test_a_bulk_load_that_died_is_repaired_at_the_next_start(postgres_url: str) -> None:
    url = fresh_database(postgres_url)
    store = PostgresStore(url)
    with psycopg.connect(url) as conn:
        postgres_postings.suspend(conn)  # what a killed `mnemo import` leaves
    passages = _agent_with_passages(store, ["inserted while postings were suspended"])
    assert _postings(url) == set()
    store.close()
    restarted = PostgresStore(url)
    assert _postings(url) == _expected_postings(url) != set()
    mine = PassageFilter(agent_ids=[passages[0].agent_id])
    assert [pid for pid, _ in restarted.lexical_search("suspended", mine, 5)] == [passages[0].id]
    restarted.close()


# A bulk load (as migrate-data and import run it) killed in the middle: the process exits
# without leaving the bulk_load block, so nothing of its ending runs.
_DIES_LOADING = """
import os, sys, time
import numpy as np
from mnemo.embed.catalog import MINILM
from mnemo.models import Agent, Passage
from mnemo.store.filters import passage_where
from mnemo.store.postgres import CHECK_IDLE_AFTER, INSERT_MAX_ROWS, PASSAGES, SQL, PostgresStore
store = PostgresStore(sys.argv[1])
agent = Agent(id=sys.argv[2], name=sys.argv[2][-12:], embedding=MINILM.handle)
if store.get_agent(agent.id) is None:
    store.create_agent(agent, [], [])
rng = np.random.default_rng(int(sys.argv[3]))
with store.bulk_load() as deferred:
    assert deferred
    for batch in range(3):
        vectors = rng.standard_normal((100, MINILM.dim)).astype(np.float32)
        passages = [
            Passage(id=f"passage-{sys.argv[3]}-{batch}-{i}", agent_id=agent.id,
                    text=f"row {i} about terraform", embedding_handle=MINILM.handle)
            for i in range(100)
        ]
        store.insert_passages(passages, vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    while store.count_passages(agent.id) < 300:  # the writers have them all in
        time.sleep(0.05)
    os._exit(3)
"""


def _die_loading(url: str, agent_id: str, run: int) -> None:
    died = subprocess.run(
        [sys.executable, "-c", _DIES_LOADING, url, agent_id, str(run)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert died.returncode == 3, died.stderr


def _hnsw_valid(url: str) -> bool:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return not postgres_migrations.invalid_hnsw_indexes(conn)


def test_a_bulk_load_killed_before_its_hnsw_index_is_finished_by_running_again(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = fresh_database(postgres_url)
    agent_id = new_id("agent")
    _die_loading(url, agent_id, 1)
    assert not _hnsw_valid(url)  # dropped for the load, never built
    with caplog.at_level(logging.WARNING, logger="mnemo.store.postgres"):
        store = PostgresStore(url, exact_scan_max_rows=0)  # always the HNSW path when indexed
    assert "an HNSW index is missing" in caplog.text
    assert _postings(url) == _expected_postings(url) != set()  # repaired at start
    resumed = _indexed_passages(store, 50)
    rng = np.random.default_rng(2)
    vectors = rng.standard_normal((50, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with store.bulk_load() as deferred:
        assert deferred  # the load is finished as a bulk load, not row by row
        store.insert_passages(resumed, vectors)
    assert _hnsw_valid(url)
    assert _postings(url) == _expected_postings(url)
    assert store.count_passages() == 350
    hits = store.vector_search(vectors[7], MINILM, PassageFilter(), 5)
    assert hits[0][0] == resumed[7].id
    killed_run = PassageFilter(agent_ids=[agent_id])
    assert len(store.lexical_search("terraform", killed_run, 400)) == 300
    store.close()


def test_mnemo_migrate_builds_the_hnsw_index_a_killed_load_left_missing(
    postgres_url: str,
) -> None:
    url = fresh_database(postgres_url)
    _die_loading(url, new_id("agent"), 1)
    migrate = [sys.executable, "-m", "mnemo", "migrate", "--database-url", url]
    plain = subprocess.run(migrate, capture_output=True, text=True, timeout=120)
    assert "rebuilt keyword postings" in plain.stdout
    assert "mnemo migrate --repair" in plain.stderr  # the warning says what to do
    assert not _hnsw_valid(url)  # a migration job never starts a build of minutes
    migrate.append("--repair")
    built = subprocess.run(migrate, capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    assert "built the HNSW index" in built.stdout
    assert _hnsw_valid(url)
    again = subprocess.run(migrate, capture_output=True, text=True, timeout=120)
    assert again.stdout.strip() == "database is up to date"
    assert _uses_hnsw(url, postgres_migrations.HNSW_TYPE)


def test_a_batch_that_fails_in_a_bulk_load_is_raised_after_the_indexes_are_built(
    postgres_url: str,
) -> None:
    url = fresh_database(postgres_url)
    store = PostgresStore(url)
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((40, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    good = _indexed_passages(store, 30)
    orphan = dataclasses.replace(good[0], id=new_id("passage"), agent_id="agent-nobody")
    later = _indexed_passages(store, 9)
    refused = pytest.raises(psycopg.errors.ForeignKeyViolation, match="agent-nobody")
    with refused, store.bulk_load():
        store.insert_passages(good, vectors[:30])
        store.insert_passages([orphan], vectors[30:31])  # written in the background
        for i, passage in enumerate(later):  # fails here once a writer has met it
            store.insert_passages([passage], vectors[31 + i : 32 + i])
    written = store.count_passages()
    assert 30 <= written < 40  # the good batch is in, the orphan is not
    assert _hnsw_valid(url)  # the load still ended with its indexes
    assert _postings(url) == _expected_postings(url)
    store.close()


def _bm25(texts: list[str], query: list[str]) -> list[float]:
    """BM25 as docs/search.md states it: Lucene's IDF over the searched passages, the average
    length taken over the query words' postings, k1 1.2, b 0.4, a passage's own words counted
    OWN_WEIGHT times (texts of stop-word- and stem-free words, inserted without context)."""
    docs = [text.split() * OWN_WEIGHT for text in texts]
    postings = [(word, doc) for doc in docs for word in set(doc) if word in query]
    average = sum(len(doc) for _, doc in postings) / len(postings)
    scores = []
    for doc in docs:
        score = 0.0
        for word in query:
            frequency = sum(word in other for other in docs)
            if word in doc:
                idf = math.log(1 + (len(docs) - frequency + 0.5) / (frequency + 0.5))
                tf = doc.count(word)
                score += idf * tf * 2.2 / (tf + 1.2 * (0.6 + 0.4 * len(doc) / average))
        scores.append(score)
    return scores


def test_keyword_scores_are_bm25_over_the_searched_agents(postgres_url: str) -> None:
    store = PostgresStore(fresh_database(postgres_url))
    texts = [
        "helm chart pod",
        "helm helm node disk",
        "pod node",
        "disk quota alert",
        "helm pod pod pod rollout",
        "quota",
    ]
    mine = _agent_with_passages(store, texts)
    _agent_with_passages(store, ["helm"] * 20)  # another agent's passages change no IDF here
    scoped = PassageFilter(agent_ids=[mine[0].agent_id])
    expected = _bm25(texts, ["helm", "pod"])
    hits = store.lexical_search("helm pod", scoped, 10)
    ranked = sorted((i for i in range(len(texts)) if expected[i] > 0), key=lambda i: -expected[i])
    assert [pid for pid, _ in hits] == [mine[i].id for i in ranked]
    assert [score for _, score in hits] == pytest.approx([expected[i] for i in ranked])
    assert len(store.lexical_search("helm pod", scoped, 2)) == 2

    tagged = dataclasses.replace(mine[1], tags=["ops"])
    assert store.update_passage(tagged, None)
    only_ops = dataclasses.replace(scoped, tags=["ops"])
    [(pid, score)] = store.lexical_search("helm pod", only_ops, 10)
    assert pid == tagged.id  # filters choose passages; they do not change scores
    assert score == pytest.approx(expected[1])
    store.close()


def test_replicas_starting_together_re_analyse_once(postgres_url: str) -> None:
    url = fresh_database(postgres_url)
    first = PostgresStore(url)
    passages = _indexed_passages(first, 12)
    first.insert_passages(passages, np.ones((12, DIM), dtype=np.float32) / np.sqrt(DIM))
    first.reindex_keywords([], "an older analyzer")
    stores = [first, PostgresStore(url), PostgresStore(url)]
    took: list[int] = []
    errors: list[BaseException] = []

    def reindex(store: PostgresStore) -> None:
        try:
            batches = [store.list_passages(PassageFilter(), Page(limit=5, ascending=True))]
            took.append(store.reindex_keywords(batches, ANALYZER_VERSION))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reindex, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(took) == [0, 0, 5]  # one did the work; the others found it done
    assert all(s.analyzer_version() == ANALYZER_VERSION for s in stores)
    assert _postings(url) == _expected_postings(url)
    for store in stores:
        store.close()


def test_migrations_hold_their_own_sql() -> None:
    """An old migration must do what it did when it shipped: it may not read a constant or
    call a function that today's code can change (only the module's own helper for the
    rebuild-if-empty rule, which takes the index's SQL from each migration)."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(postgres_migrations))
    module_names = {
        node.name if isinstance(node, ast.FunctionDef | ast.ClassDef) else target.id
        for node in tree.body
        for target in (node.targets if isinstance(node, ast.Assign) else [node])
        if isinstance(node, ast.FunctionDef | ast.ClassDef)
        or (isinstance(node, ast.Assign) and isinstance(target, ast.Name))
    } | {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom | ast.Import)
        for alias in node.names
    }
    allowed = {"Any", "migration", "_rebuild_hnsw_if_empty"}
    steps = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any(getattr(d, "id", None) == "migration" for d in node.decorator_list)
    ]
    assert len(steps) == len(postgres_migrations.MIGRATIONS)
    for step in steps:
        used = {n.id for n in ast.walk(step) if isinstance(n, ast.Name)} & module_names
        assert used <= allowed, (step.name, used - allowed)


def test_vectors_are_written_as_parameters_on_a_fresh_connection(postgres_url: str) -> None:
    """The first statement on a new connection may carry a query vector: the binary dumper is
    registered before any cursor copies the connection's adapters."""
    url = fresh_database(postgres_url)
    store = PostgresStore(url)
    passages = _indexed_passages(store, 3)
    vectors = np.eye(3, DIM, dtype=np.float32)
    store.insert_passages(passages, vectors)
    store.close()
    fresh = PostgresStore(url, migrate=False)
    fresh.replace_embeddings(passages, vectors[::-1].copy(), MINILM)
    assert fresh.similarities(vectors[0], MINILM, [passages[2].id])[passages[2].id] > 0.999
    fresh.close()


def test_a_newest_first_page_of_one_agent_reads_only_that_page(postgres_url: str) -> None:
    """A new passage's context comes from its agent's two latest passages: the plan walks the
    (agent, created_at, seq) index backwards and stops, whatever the agent holds."""
    url = fresh_database(postgres_url)
    store = PostgresStore(url)
    passages = _agent_with_passages(store, [f"note number {i}" for i in range(300)])
    where, params = passage_where(PassageFilter(agent_ids=[passages[0].agent_id]), SQL)
    plans: list[str] = []
    with psycopg.connect(url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        conn.add_notice_handler(lambda notice: plans.append(notice.message_primary or ""))
        conn.execute("LOAD 'auto_explain'")
        conn.execute("SET auto_explain.log_min_duration = 0")
        conn.execute("SET auto_explain.log_analyze = on")
        conn.execute("SET client_min_messages = log")
        rows = keyset_page(conn, Page(limit=2), PASSAGES, where, params, SQL.mark)
    assert [r["id"] for r in rows] == [passages[-1].id, passages[-2].id]
    (plan,) = [p for p in plans if "plan:" in p]
    assert "Index Scan Backward using passages_agent_created" in plan
    assert "Sort" not in plan and "rows=2.00" in plan
    store.close()


def test_a_connection_idle_in_the_pool_is_checked_before_use(postgres_url: str) -> None:
    """One back from a request moments ago is lent as it is (no check round trip): if it died
    meanwhile, that request fails as unavailable and the pool drops it. One idle for longer is
    checked first, and a dead one is replaced without failing anything."""
    url = fresh_database(postgres_url)
    store = PostgresStore(url, pool_size=1)
    agent = Agent(id=new_id("agent"), name="idle", embedding="x/y")
    store.create_agent(agent, [], [])

    def kill_pooled_connection() -> None:
        with store.pool.connection() as conn:
            pid = conn.info.backend_pid
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    kill_pooled_connection()
    with pytest.raises(StoreUnavailable):
        store.get_agent(agent.id)
    assert store.get_agent(agent.id) == agent  # the pool replaced the dead connection

    kill_pooled_connection()
    time.sleep(CHECK_IDLE_AFTER + 0.2)
    assert store.get_agent(agent.id) == agent
    store.close()


@pytest.mark.parametrize("count", [1, INSERT_MAX_ROWS, INSERT_MAX_ROWS + 1])
def test_a_batch_is_written_whole_or_not_at_all(postgres_url: str, count: int) -> None:
    """Small batches go in as one INSERT, larger ones by COPY: either way every field and
    vector reads back as written, and a batch with one bad row writes none of its rows."""
    url = fresh_database(postgres_url)
    store = PostgresStore(url)
    passages = _indexed_passages(store, count)
    for i, passage in enumerate(passages):
        passage.tags = ["deploy", f"n{i}"]
        passage.metadata = {"type": "fix", "i": i}
        passage.text = f"the migration timed out, attempt {i}"
    rng = np.random.default_rng(count)
    vectors = rng.standard_normal((count, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    clash = dataclasses.replace(passages[0], id=passages[-1].id)  # a duplicate id
    with pytest.raises(psycopg.errors.UniqueViolation):
        store.insert_passages([*passages, clash], np.vstack([vectors, vectors[:1]]))
    assert store.count_passages(passages[0].agent_id) == 0

    store.insert_passages(passages, vectors)
    assert store.get_passages([p.id for p in passages]) == passages
    ids = [p.id for p in passages]
    cosines = [
        store.similarities(v, MINILM, [pid])[pid] for v, pid in zip(vectors, ids, strict=True)
    ]
    assert min(cosines) > 0.999
    found = store.lexical_search("migration", PassageFilter(agent_ids=[passages[0].agent_id]), 5)
    assert len(found) == min(count, 5)  # the keyword postings were written with the rows
    store.close()

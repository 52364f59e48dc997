"""PostgreSQL keyword postings packed into blocks: a search reads exactly the postings of the
passages as they are, whatever has been written since the last compaction."""

from __future__ import annotations

import dataclasses
import random
import time

import numpy as np
import psycopg
import psycopg.rows
import pytest

from mnemo.models import Agent, Passage, new_id
from mnemo.store import bm25, postgres_postings
from mnemo.store.base import PassageFilter
from mnemo.store.postgres import PostgresStore
from mnemo.text import search_terms
from tests.postgres import fresh_database

WORDS = ["deploy", "canary", "rollback", "helm", "quota", "disk", "node", "alert", "tls", "pod"]


def _texts(rng: random.Random, count: int, vocabulary: list[str] = WORDS) -> list[str]:
    # "cluster" in every text: a lexeme with several blocks per agent.
    return [
        " ".join(["cluster", *rng.choices(vocabulary, k=rng.randint(2, 6))]) for _ in range(count)
    ]


def _agent(store: PostgresStore, texts: list[str]) -> list[Passage]:
    agent = Agent(id=new_id("agent"), name=f"blocks-{new_id('x')[-6:]}", embedding="x/y")
    store.create_agent(agent, [], [])
    return _add(store, agent.id, texts)


def _add(store: PostgresStore, agent_id: str, texts: list[str]) -> list[Passage]:
    passages = [
        Passage(id=new_id("passage"), agent_id=agent_id, text=t, embedding_handle="x/y")
        for t in texts
    ]
    store.insert_passages(passages, np.ones((len(passages), 8), dtype=np.float32))
    return passages


def _truth(url: str, agent_ids: list[str] | None) -> dict[str, list[int]]:
    """Each lexeme's postings straight from the passages, packed as a search reads them."""
    keys = "ARRAY(SELECT hashtextextended(a, 0) FROM unnest(%s::text[]) a)"
    scope = "" if agent_ids is None else f" WHERE t.agent_key = ANY({keys})"
    postings = postgres_postings.POSTINGS_OF.format(source="passages")
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f"SELECT t.term, string_agg({bm25.PACKED_POSTING}, ''::bytea) FROM ({postings}) t"
            + scope
            + " GROUP BY t.term",
            [agent_ids] if agent_ids is not None else [],
        ).fetchall()
    return {term: sorted(bm25.unpack(packed).tolist()) for term, packed in rows}


def _unblocked_terms(url: str) -> int:
    """Rows of `passage_terms`, after checking each is of a passage no block holds yet or of
    one changed since it was packed."""
    with psycopg.connect(url) as conn:
        misplaced, rows = conn.execute(
            "SELECT count(*) FILTER (WHERE t.passage_seq <= s.covered_seq AND NOT EXISTS"
            "  (SELECT 1 FROM posting_changes c WHERE c.passage_seq = t.passage_seq)), count(*)"
            " FROM passage_terms t, posting_blocks_state s"
        ).fetchone()
    assert misplaced == 0
    return rows


QUERY = " ".join(["cluster", *WORDS, "zebra"])


def _read(url: str, agent_ids: list[str] | None) -> dict[str, list[int]]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        reads, _ = postgres_postings.read_terms(conn, search_terms(QUERY), agent_ids)
    return {r.term: sorted(r.postings.tolist()) for r in reads}


def _stems(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT tsvector_to_array(to_tsvector('english', %s))", (QUERY,))
        return set(row.fetchone()[0])


def _assert_exact(url: str, *scopes: list[str] | None) -> None:
    stems = _stems(url)
    assert len(stems) == len(WORDS) + 2
    for scope in scopes:
        truth = _truth(url, scope)
        assert _read(url, scope) == {t: p for t, p in truth.items() if t in stems}


def _blocks(url: str) -> list[dict]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(
            "SELECT term, agent_key, first_seq, last_seq, n, postings FROM posting_blocks"
            " ORDER BY term, agent_key, first_seq"
        ).fetchall()


def _state(url: str) -> tuple[int, int, int]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT (SELECT covered_seq FROM posting_blocks_state),"
            " (SELECT coalesce(max(seq), 0) FROM passages),"
            " (SELECT count(*) FROM posting_changes)"
        ).fetchone()


def _assert_well_formed(url: str) -> None:
    """Blocks of one lexeme and agent hold disjoint seq ranges, each block sorted and as
    long as it says."""
    last: dict[tuple[str, int], int] = {}
    for block in _blocks(url):
        seqs = bm25.unpack(block["postings"]) >> bm25.SEQ_SHIFT
        assert len(seqs) == block["n"] <= postgres_postings.BLOCK_POSTINGS
        assert list(seqs) == sorted(seqs)
        assert (seqs[0], seqs[-1]) == (block["first_seq"], block["last_seq"])
        key = (block["term"], block["agent_key"])
        assert block["first_seq"] > last.get(key, -1)
        last[key] = block["last_seq"]


def test_search_reads_exactly_the_postings_through_writes_and_compactions(
    postgres_url: str,
) -> None:
    url = fresh_database(postgres_url)
    store = PostgresStore(url, compact_after=3600)  # packed here, not in the background
    rng = random.Random(5)
    mine = _agent(store, _texts(rng, 2_600))
    theirs = _agent(store, _texts(rng, 300))
    a, b = mine[0].agent_id, theirs[0].agent_id
    scopes = ([a], [b], [a, b], None)
    _assert_exact(url, *scopes)  # nothing packed yet: all read from passage_terms
    assert _unblocked_terms(url) > 2_900

    assert store.compactor.compact() == 2_900
    covered, newest, pending = _state(url)
    assert (covered, pending) == (newest, 0)
    _assert_exact(url, *scopes)
    _assert_well_formed(url)
    assert _unblocked_terms(url) == 0  # packed postings leave passage_terms
    blocks = _blocks(url)
    cluster = [blk for blk in blocks if blk["term"] == "cluster"]
    assert len(cluster) == 4  # 2,600 postings of one agent: three blocks; 300 of the other: one

    mine += _add(store, a, _texts(rng, 150, [*WORDS, "zebra"]))  # not packed yet
    edited = []
    for passage in rng.sample(mine, 60):
        words = rng.choices([*WORDS, "zebra"], k=3)
        edited.append(dataclasses.replace(passage, text=" ".join(words)))  # some drop "cluster"
        assert store.update_passage(edited[-1], None)
    gone = {p.id for p in rng.sample(mine, 80)}
    for passage_id in gone:
        store.delete_passage(passage_id)
    assert _state(url)[2] > 0  # changes to packed passages are pending
    assert _unblocked_terms(url) > 0  # the new passages' and the edited ones' postings
    _assert_exact(url, *scopes)

    store.compactor.compact()
    covered, newest, pending = _state(url)
    assert (covered, pending) == (newest, 0)
    _assert_exact(url, *scopes)
    _assert_well_formed(url)
    assert _unblocked_terms(url) == 0
    # The new passages joined the last, unfull block rather than starting a run of small ones.
    assert len([blk for blk in _blocks(url) if blk["term"] == "cluster"]) == 4

    store.delete_agent(b)  # the agent's blocks go with it, no change rows left behind
    assert _state(url)[2] == 0
    keys = {blk["agent_key"] for blk in _blocks(url)}
    assert len(keys) == 1
    _assert_exact(url, [a], None)
    store.close()


def test_rankings_are_the_same_before_and_after_packing(postgres_url: str) -> None:
    url = fresh_database(postgres_url)
    store = PostgresStore(url, compact_after=3600)  # unpacked until packed here
    rng = random.Random(11)
    passages = _agent(store, _texts(rng, 1_500))
    scope = PassageFilter(agent_ids=[passages[0].agent_id])
    queries = ["helm pod", "canary rollback alert", "cluster disk", "tls quota node deploy"]
    before = [store.lexical_search(q, scope, 20) for q in queries]
    store.compactor.compact()
    after = [store.lexical_search(q, scope, 20) for q in queries]
    for old, new in zip(before, after, strict=True):
        assert [pid for pid, _ in new] == [pid for pid, _ in old]
        assert [s for _, s in new] == pytest.approx([s for _, s in old])
    store.close()


def test_writes_are_packed_in_the_background(postgres_url: str) -> None:
    url = fresh_database(postgres_url)
    store = PostgresStore(url)
    _agent(store, _texts(random.Random(3), 500))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        covered, newest, _ = _state(url)
        if covered == newest:
            break
        time.sleep(0.2)
    assert _state(url)[0] == _state(url)[1] > 0
    assert _blocks(url)
    store.close()


def test_compaction_waits_for_no_writer_and_no_other_replica(postgres_url: str) -> None:
    url = fresh_database(postgres_url)
    store = PostgresStore(url, compact_after=3600)  # unpacked until packed here
    _agent(store, ["helm chart"] * 10)
    with psycopg.connect(url) as writer:  # a write transaction still open
        writer.execute("DELETE FROM passages WHERE seq = (SELECT min(seq) FROM passages)")
        started = time.monotonic()
        with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
            assert postgres_postings.compact(conn) == 0  # gave up rather than stall writers
        assert time.monotonic() - started < 10
        writer.rollback()
    with psycopg.connect(url) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (postgres_postings.COMPACT_LOCK,))
        with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
            assert postgres_postings.compact(conn) == 0
        # Released here: a closed connection's backend may hold its locks a moment longer.
        other.execute("SELECT pg_advisory_unlock(%s)", (postgres_postings.COMPACT_LOCK,))
    assert store.compactor.compact() == 10
    store.close()

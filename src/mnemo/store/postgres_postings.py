"""Keyword postings in PostgreSQL: what BM25 search reads, and how it stays fast and exact.

- `posting_blocks` packs postings, up to BLOCK_POSTINGS per row in one bytea (the format of
  bm25.PACKED_POSTING), for every passage up to `posting_blocks_state.covered_seq`. A search of
  common words at 1,000,000 passages reads some 240 rows instead of 240,000 index tuples.
- `passage_terms` holds one row per (lexeme, agent, passage) for the passages no block covers
  yet (seq above covered_seq), and for those changed since they were blocked, which
  `posting_changes` names: triggers on `passages` keep it. A search reads blocks less the
  changed passages, plus `passage_terms`, so it is exact at every moment.
- `compact` folds the recent passages and the changes into blocks in the background and drops
  their `passage_terms` rows: the table stays the size of the last few writes, not of the corpus
  (1.7 GB and a 46 s primary key at 1,000,000 passages when it held every posting).
- `compact` holds a SHARE lock on `passages` for its round (writers wait, readers do not), so
  it sees no write in flight: every seq up to the round's end is committed, and no change row
  appears behind its back. Rounds are bounded (ROUND_PASSAGES) to keep that wait short.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg

from mnemo.errors import StoreUnavailable
from mnemo.models import Passage
from mnemo.store import bm25
from mnemo.text import index_terms

log = logging.getLogger(__name__)

BLOCK_POSTINGS = 1024  # 8 KB of packed postings a row
ROUND_PASSAGES = 20_000  # passages one compaction round takes in at most
COMPACT_LOCK = 0x6D6E656D6F01  # advisory lock: one replica compacts at a time
COMPACT_AFTER = 2.0  # seconds after a passage write before its postings are packed into blocks
COMPACT_IDLE = 60.0  # how often a replica that wrote nothing looks for other replicas' writes
COMPACT_LOCK_WAIT = "1s"  # a compaction that cannot get its lock this fast tries again later

# Named apart from m002's passage_terms_pkey: a replica older than m006 compacts only while
# that name exists, and would rebuild blocks from rows this version no longer keeps.
POSTINGS_KEY_NAME = "passage_terms_key"
POSTINGS_KEY = (
    f"CONSTRAINT {POSTINGS_KEY_NAME}"
    " PRIMARY KEY (term, agent_key, passage_seq) INCLUDE (tf, doclen)"
)
# (term, agent_key, passage_seq, tf, doclen) of the passages in {source}. Each passage's length
# is counted once, not once per lexeme (OFFSET 0 keeps the subquery from being flattened).
# The length is mnemo_token_count written out: a SQL function whose body has a FROM is not
# inlined, and calling it per row is slower (docs/postgres.md, "Why the code is as it is").
POSTINGS_OF = """SELECT u.lexeme AS term, p.agent_key, p.seq AS passage_seq,
           greatest(cardinality(u.positions), 1) AS tf, p.doclen
    FROM (SELECT seq, hashtextextended(agent_id, 0) AS agent_key, text_tsv,
                 (SELECT coalesce(sum(greatest(cardinality(l.positions), 1)), 0)::integer
                  FROM unnest(text_tsv) l) AS doclen
          FROM {source} OFFSET 0) p,
         unnest(p.text_tsv) u"""
# (term, agent_key, passage_seq, packed) of the postings of {postings}, shaped as POSTINGS_OF.
PACKED_OF = (
    f"SELECT t.term, t.agent_key, t.passage_seq, {bm25.PACKED_POSTING} AS packed"
    " FROM ({postings}) t"
)
# (term, agent_key, first_seq, passage_seq, packed) of every posting in the blocks of {blocks}.
_UNPACKED = f"""SELECT b.term, b.agent_key, b.first_seq, {bm25.PACKED_SEQ.format(packed="u.packed")}
           AS passage_seq, u.packed
    FROM {{blocks}} b,
         LATERAL (SELECT substring(b.postings FROM 8 * i + 1 FOR 8) AS packed
                  FROM generate_series(0, b.n - 1) i) u"""

# Postings in `t` (term, agent_key, passage_seq, packed) cut into blocks of BLOCK_POSTINGS in seq
# order, within each `{run}` (a run never shares a block with another).
_BLOCKS_FROM = f"""INSERT INTO posting_blocks (term, agent_key, first_seq, last_seq, n, postings)
    SELECT t.term, t.agent_key, min(t.passage_seq), max(t.passage_seq), count(*)::integer,
           string_agg(t.packed, ''::bytea ORDER BY t.passage_seq)
    FROM (SELECT t.*, (row_number() OVER (PARTITION BY {{run}} ORDER BY t.passage_seq) - 1)
                      / {BLOCK_POSTINGS} AS block
          FROM ({{postings}}) t) t
    GROUP BY {{run}}, t.block"""


# ---------------------------------------------------------------------- bulk loads


def suspend(conn: Any) -> None:
    """For a bulk load: passages go in without postings, `rebuild` adds them at the end in one
    pass, several times faster than maintaining the index row by row."""
    conn.execute("ALTER TABLE passages DISABLE TRIGGER passages_terms_insert")
    conn.execute(f"ALTER TABLE passage_terms DROP CONSTRAINT IF EXISTS {POSTINGS_KEY_NAME}")


def intact(conn: Any) -> bool:
    row = conn.execute(
        "SELECT (SELECT tgenabled <> 'D' FROM pg_trigger WHERE tgname = 'passages_terms_insert')"
        " AND EXISTS (SELECT 1 FROM pg_constraint WHERE conname = %s) AS ok",
        (POSTINGS_KEY_NAME,),
    ).fetchone()
    return bool(row["ok"])


def rebuild(conn: Any) -> None:
    """Blocks for every passage, from scratch, with writers to passages held off meanwhile.
    Also the repair for a bulk load that died before it finished."""
    with conn.transaction():
        conn.execute("LOCK TABLE passages IN SHARE MODE")
        conn.execute(f"ALTER TABLE passage_terms DROP CONSTRAINT IF EXISTS {POSTINGS_KEY_NAME}")
        conn.execute("TRUNCATE passage_terms")
        conn.execute(f"ALTER TABLE passage_terms ADD {POSTINGS_KEY}")
        conn.execute("ALTER TABLE passages ENABLE TRIGGER passages_terms_insert")
        build_blocks(conn)


def build_blocks(conn: Any) -> None:
    """Every block, straight from the passages; `passage_terms` is left empty, every passage
    being covered. The caller holds passages in SHARE mode."""
    conn.execute("SET LOCAL work_mem = '256MB'")  # the sort fits in memory, not on disk
    conn.execute("TRUNCATE posting_blocks, posting_changes, passage_terms")
    postings = PACKED_OF.format(postings=POSTINGS_OF.format(source="passages"))
    # Sorted by the bytes of each lexeme, not the database's collation: faster, and the
    # blocks come out the same.
    conn.execute(
        _BLOCKS_FROM.format(
            run="t.term, t.agent_key",
            postings='SELECT t.term COLLATE "C" AS term, t.agent_key, t.passage_seq, t.packed'
            f" FROM ({postings}) t",
        )
    )
    conn.execute(
        "UPDATE posting_blocks_state SET covered_seq = (SELECT coalesce(max(seq), 0) FROM passages)"
    )


# ---------------------------------------------------------------------- compaction


def compact(conn: Any) -> int:
    """One round: fold up to ROUND_PASSAGES recent passages, and every pending change, into
    blocks. Returns how many passages and changes it took in: 0 when there was nothing to do,
    another replica is compacting, or writers held the table too long to wait for."""
    try:
        with conn.transaction():
            taken = conn.execute(
                "SELECT pg_try_advisory_xact_lock(%s) AS taken", (COMPACT_LOCK,)
            ).fetchone()["taken"]
            if not taken or not intact(conn):  # not while a bulk load has postings suspended
                return 0
            conn.execute(f"SET LOCAL lock_timeout = '{COMPACT_LOCK_WAIT}'")
            conn.execute("LOCK TABLE passages IN SHARE MODE")
            return _compact_locked(conn)
    except psycopg.errors.LockNotAvailable:
        return 0


def _compact_locked(conn: Any) -> int:
    covered = conn.execute("SELECT covered_seq FROM posting_blocks_state").fetchone()["covered_seq"]
    upto = conn.execute(
        "SELECT max(seq) AS upto FROM"
        f" (SELECT seq FROM passages WHERE seq > %s ORDER BY seq LIMIT {ROUND_PASSAGES}) s",
        (covered,),
    ).fetchone()["upto"]
    changes = conn.execute(
        "SELECT DISTINCT agent_key, passage_seq, unnest(terms) AS term FROM posting_changes"
        " WHERE passage_seq <= %s",
        (covered,),
    ).fetchall()
    stale = conn.execute("SELECT count(*) AS n FROM posting_changes").fetchone()["n"]
    if upto is None and not stale:
        return 0
    if changes:
        _rewrite_changed(conn, changes)
    conn.execute("DELETE FROM posting_changes")
    if upto is not None:
        _append_recent(conn, covered, upto)
        conn.execute("UPDATE posting_blocks_state SET covered_seq = %s", (upto,))
    # Blocks now hold every posting up to the new covered seq, changed passages included.
    conn.execute("DELETE FROM passage_terms WHERE passage_seq <= %s", (max(covered, upto or 0),))
    return (upto - covered if upto is not None else 0) + stale


def _rewrite_changed(conn: Any, changes: list[dict[str, Any]]) -> None:
    """Rewrite every block that held a changed passage: its other postings from the block
    itself, the changed passage's current ones from `passage_terms`. A changed passage's new
    lexemes that no block covers get blocks of their own."""
    keys = {"terms": [c["term"] for c in changes]}
    keys["agents"] = [c["agent_key"] for c in changes]
    keys["seqs"] = [c["passage_seq"] for c in changes]
    conn.execute(
        "CREATE TEMPORARY TABLE removed_blocks ON COMMIT DROP AS"
        " WITH removed AS (DELETE FROM posting_blocks b"
        "  USING unnest(%(terms)s::text[], %(agents)s::bigint[], %(seqs)s::bigint[])"
        "    AS c(term, agent_key, passage_seq)"
        "  WHERE b.term = c.term AND b.agent_key = c.agent_key"
        "    AND c.passage_seq BETWEEN b.first_seq AND b.last_seq"
        "  RETURNING b.*)"
        " SELECT * FROM removed",
        keys,
    )
    removed = conn.execute(
        "SELECT term, agent_key, first_seq, last_seq FROM removed_blocks"
    ).fetchall()
    ranges = {(r["term"], r["agent_key"], r["first_seq"], r["last_seq"]) for r in removed}
    covering: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for term, agent, first, last in ranges:
        covering.setdefault((term, agent), []).append((first, last))
    for c in changes:
        spans = covering.get((c["term"], c["agent_key"]), [])
        if not any(first <= c["passage_seq"] <= last for first, last in spans):
            ranges.add((c["term"], c["agent_key"], c["passage_seq"], c["passage_seq"]))
    if not ranges:
        return
    terms, agents, firsts, lasts = (list(column) for column in zip(*ranges, strict=True))
    changed = sorted({c["passage_seq"] for c in changes})
    kept = _UNPACKED.format(blocks="removed_blocks")
    conn.execute(
        _BLOCKS_FROM.format(
            run="t.term, t.agent_key, t.first_seq",
            postings=f"SELECT * FROM ({kept}) k WHERE k.passage_seq <> ALL(%s::bigint[])"
            " UNION ALL"
            f" SELECT t.term, t.agent_key, r.first_seq, t.passage_seq, {bm25.PACKED_POSTING}"
            " FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::bigint[])"
            "   AS r(term, agent_key, first_seq, last_seq)"
            " JOIN passage_terms t ON t.term = r.term AND t.agent_key = r.agent_key"
            "  AND t.passage_seq BETWEEN r.first_seq AND r.last_seq",
        ),
        (changed, terms, agents, firsts, lasts),
    )


def _append_recent(conn: Any, covered: int, upto: int) -> None:
    """Blocks for the passages with seq in (covered, upto]. A lexeme's last block, when not
    full, is filled up with them first rather than left to trail a run of small blocks."""
    recent = POSTINGS_OF.format(
        source=f"passages WHERE seq > {int(covered)} AND seq <= {int(upto)}"
    )
    conn.execute(
        "CREATE TEMPORARY TABLE recent_postings ON COMMIT DROP AS "
        + PACKED_OF.format(postings=recent)
    )
    conn.execute(
        "CREATE TEMPORARY TABLE tails ON COMMIT DROP AS"
        " WITH removed AS (DELETE FROM posting_blocks b USING ("
        "   SELECT DISTINCT ON (l.term, l.agent_key) l.term, l.agent_key, l.first_seq, l.n"
        "   FROM posting_blocks l"
        "   JOIN (SELECT DISTINCT term, agent_key FROM recent_postings) r"
        "     ON l.term = r.term AND l.agent_key = r.agent_key"
        "   ORDER BY l.term, l.agent_key, l.first_seq DESC) last"
        "  WHERE b.term = last.term AND b.agent_key = last.agent_key"
        f"   AND b.first_seq = last.first_seq AND last.n < {BLOCK_POSTINGS}"
        "  RETURNING b.*)"
        " SELECT * FROM removed"
    )
    # Numbered on from the tail's postings: block 0 of a lexeme is the tail, extended.
    conn.execute(
        f"""INSERT INTO posting_blocks (term, agent_key, first_seq, last_seq, n, postings)
        SELECT g.term, g.agent_key, coalesce(tl.first_seq, g.first_seq), g.last_seq,
               g.n + coalesce(tl.n, 0), coalesce(tl.postings, ''::bytea) || g.postings
        FROM (SELECT r.term, r.agent_key, r.block, min(r.passage_seq) AS first_seq,
                     max(r.passage_seq) AS last_seq, count(*)::integer AS n,
                     string_agg(r.packed, ''::bytea ORDER BY r.passage_seq) AS postings
              FROM (SELECT rp.*, (row_number() OVER (PARTITION BY rp.term, rp.agent_key
                                                     ORDER BY rp.passage_seq)
                                  - 1 + coalesce(tl.n, 0)) / {BLOCK_POSTINGS} AS block
                    FROM recent_postings rp
                    LEFT JOIN tails tl ON tl.term = rp.term AND tl.agent_key = rp.agent_key) r
              GROUP BY r.term, r.agent_key, r.block) g
        LEFT JOIN tails tl
          ON tl.term = g.term AND tl.agent_key = g.agent_key AND g.block = 0"""
    )


# ---------------------------------------------------------------------- search


@dataclass(frozen=True)
class TermRead:
    """One query lexeme's current postings for the searched agents (packed int64, bm25)."""

    term: str
    postings: np.ndarray


def read_terms(
    conn: Any, terms: list[str], agent_ids: list[str] | None, count_upto: int | None = None
) -> tuple[list[TermRead], int | None]:
    """Every searched posting of `terms` (analysed by mnemo/text.py): the blocks, less the
    passages changed since they were blocked, plus `passage_terms` for those and for passages
    not yet blocked. With `count_upto`, also the searched agents' passages, counted up to it
    (BM25's corpus size), else None.
    One statement, so one snapshot: a compaction committing meanwhile is seen whole or not at
    all, without a transaction's BEGIN and COMMIT round trips."""
    agents = "" if agent_ids is None else " AND {t}.agent_key = ANY(k.keys)"
    packed = f"string_agg({bm25.PACKED_POSTING}, ''::bytea)"
    counted = (
        "NULL::bigint"
        if count_upto is None
        else "(SELECT count(*) FROM (SELECT 1 FROM passages p WHERE true"
        + ("" if agent_ids is None else " AND p.agent_id = ANY(%(agents)s::text[])")
        + " LIMIT %(upto)s) c)"
    )
    rows = conn.execute(
        "WITH k AS MATERIALIZED (SELECT array_agg(hashtextextended(a, 0)) AS keys"
        "  FROM unnest(%(agents)s::text[]) a),"
        " s AS MATERIALIZED (SELECT st.covered_seq AS covered,"
        "  ARRAY(SELECT DISTINCT c.passage_seq FROM posting_changes c WHERE true"
        + agents.format(t="c")
        + f") AS changed, {counted} AS counted FROM posting_blocks_state st, k)"
        " SELECT q.term, s.changed AS stale, s.counted,"
        " (SELECT string_agg(b.postings, ''::bytea ORDER BY b.agent_key, b.first_seq)"
        "  FROM posting_blocks b WHERE b.term = q.term" + agents.format(t="b") + ") AS blocked,"
        f" (SELECT {packed} FROM passage_terms t WHERE t.term = q.term"
        + agents.format(t="t")
        + " AND t.passage_seq > s.covered) AS recent,"
        f" (SELECT {packed} FROM passage_terms t WHERE t.term = q.term"
        + agents.format(t="t")
        + " AND t.passage_seq = ANY(s.changed)) AS changed"
        " FROM unnest(%(terms)s::text[]) q(term), s, k",
        {"agents": agent_ids or [], "terms": terms, "upto": count_upto},
        # bytea in binary: as text it is hex, twice the bytes to send and decode.
        binary=True,
    ).fetchall()
    stale = np.array(rows[0]["stale"] if rows else [], dtype=np.int64)
    reads = []
    for r in rows:
        blocked = bm25.unpack(r["blocked"])
        if len(stale) and len(blocked):
            blocked = blocked[~np.isin(blocked >> bm25.SEQ_SHIFT, stale)]
        parts = [blocked, bm25.unpack(r["recent"]), bm25.unpack(r["changed"])]
        postings = np.concatenate(parts)
        if len(postings):
            reads.append(TermRead(r["term"], postings))
    return reads, rows[0]["counted"] if rows else None


def lexemes(passage: Passage) -> str:
    """A passage's keyword terms as a tsvector literal (`lexemes::tsvector` is its text_tsv)."""
    literal, _ = tsvector(index_terms(passage.text, passage.context))
    return literal


def tsvector(terms: list[str]) -> tuple[str, int]:
    """Index terms as a tsvector literal, each term with as many positions as its frequency, so
    PostgreSQL counts what SQLite does; and the document's length, as bm25 counts it."""
    frequencies, length = bm25.term_frequencies(terms)
    literal = " ".join(f"'{_quoted(term)}':{_POSITIONS[tf]}" for term, tf in frequencies.items())
    return literal, length


def any_of(terms: list[str]) -> str:
    """A tsquery literal matching documents that hold any of `terms` (analysed already)."""
    return " | ".join(f"'{_quoted(term)}'" for term in terms)


# "1", "1,2", "1,2,3", ...: the positions of a term that occurs that many times.
_POSITIONS = ["", *(",".join(map(str, range(1, n + 1))) for n in range(1, bm25.TF_MAX + 1))]


def _quoted(term: str) -> str:
    """A lexeme inside single quotes of a tsvector literal."""
    return term.replace("\\", "\\\\").replace("'", "''")


class Compactor:
    """Packs postings into blocks in a background thread: `after` seconds after the last
    write, and every COMPACT_IDLE seconds for other replicas' writes. While `paused` (a bulk
    load), it waits; the load rebuilds the blocks at its end."""

    def __init__(
        self,
        connection: Callable[[], AbstractContextManager[psycopg.Connection[Any]]],
        after: float = COMPACT_AFTER,
    ) -> None:
        self.connection = connection
        self.after = after
        self.paused = False
        self._written = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def written(self) -> None:
        """Passages changed: pack their postings soon."""
        self._written.set()
        if self._thread is None and not self.paused:
            self._thread = threading.Thread(target=self._run, name="mnemo-postings", daemon=True)
            self._thread.start()

    def compact(self) -> int:
        """Pack recent passages and changes into posting blocks until none are left (or
        another replica is doing it). Returns how many passages and changes it took in."""
        total = 0
        while not self._closed.is_set():
            with self.connection() as conn:
                done = compact(conn)
            if not done:
                break
            total += done
        return total

    def close(self) -> None:
        self._closed.set()
        self._written.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._closed.is_set():
            self._written.wait(COMPACT_IDLE)
            if self._closed.wait(self.after):
                return
            self._written.clear()
            if self.paused:
                continue
            try:
                self.compact()
            except (StoreUnavailable, psycopg.Error) as exc:
                log.warning("packing keyword postings failed, will retry: %s", exc)

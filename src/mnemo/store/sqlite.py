"""The embedded store: one SQLite file in WAL mode.

- One writer connection behind a lock, commits with synchronous=FULL (an acknowledged write
  survives a crash of the process or the machine); readers use a connection per thread.
- Keyword search reads `passage_postings` (one row per term and passage, the terms analysed by
  mnemo/text.py) and ranks with store/bm25.py, as the PostgreSQL store does; recall messages
  use FTS5. Vector search is an exact dot product over an in-memory matrix per (agent,
  embedding handle), kept in step with the table by a per-agent version counter that triggers
  bump on every passage insert and delete.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from mnemo.errors import Conflict, NotFound
from mnemo.models import Agent, Block, Message, Passage, format_time, utcnow
from mnemo.store import bm25, shared, sqlite_migrations, vector_index
from mnemo.store.base import (
    IDEMPOTENCY_TTL,
    AgentContents,
    AgentFilter,
    BlockFilter,
    IdempotentResponse,
    MessageFilter,
    Page,
    PassageFilter,
)
from mnemo.store.filters import (
    Clause,
    agent_where,
    block_where,
    message_where,
    passage_where,
)
from mnemo.store.vector_index import VectorIndex
from mnemo.text import ANALYZER_VERSION, OWN_WEIGHT, analyze, index_terms, search_terms

BUSY_TIMEOUT_MS = 10_000
# A posting of the passage_postings row `{t}`, as bm25.PACKED_POSTING packs it in PostgreSQL.
_PACKED = (
    f"({{t}}.seq << {bm25.SEQ_SHIFT}) | (min({{t}}.tf, {bm25.TF_MAX}) << {bm25.TF_SHIFT})"
    f" | min({{t}}.doclen, {bm25.LENGTH_MAX})"
)
STALE_CLAIM = timedelta(minutes=5)  # an in-progress Idempotency-Key older than this is dead


class _Connection(sqlite3.Connection):
    """A connection that records the cursors it opens while `opened` is a list."""

    opened: list[weakref.ref[sqlite3.Cursor]] | None = None

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        cursor = super().execute(sql, parameters)
        if self.opened is not None:
            self.opened.append(weakref.ref(cursor))
        return cursor


class SQLiteStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._write_lock = threading.RLock()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._indexes: dict[tuple[str, str], VectorIndex] = {}
        self._indexes_lock = threading.Lock()
        self._corpus_sizes: dict[tuple[str, tuple[Any, ...]], tuple[tuple[Any, ...], int]] = {}
        self._message_corpus = shared.CorpusSizes()
        self._writer = self._connect()
        self._writer.execute("PRAGMA journal_mode=WAL")
        self._writer.execute("PRAGMA synchronous=FULL")
        self.migrate()

    def migrate(self) -> list[str]:
        with self._write_lock:
            applied = sqlite_migrations.apply(self._writer)
            # Nothing to re-analyse: what is written from now on is current.
            self._writer.execute(
                "UPDATE lexical_index SET analyzer = ? WHERE analyzer <> ?"
                " AND NOT EXISTS (SELECT 1 FROM passages) AND NOT EXISTS (SELECT 1 FROM messages)",
                (ANALYZER_VERSION, ANALYZER_VERSION),
            )
            return applied

    def repair_indexes(self) -> list[str]:
        """Nothing to repair: SQLite's indexes are written with every row."""
        return []

    # ------------------------------------------------------------------ connections

    def _connect(self) -> _Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, factory=_Connection
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys=ON")
        with self._connections_lock:
            self._connections.append(conn)
        return conn

    def _reader(self) -> _Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for multi-statement reads. If the read fails, the cursors it
        opened are closed: one left open keeps its snapshot, so this thread's later reads would
        miss newer commits, and it holds back WAL checkpoints."""
        conn = self._reader()
        conn.opened = []
        conn.execute("BEGIN")
        try:
            yield conn
        except BaseException:
            for ref in conn.opened:
                cursor = ref()
                if cursor is not None:
                    cursor.close()
            raise
        finally:
            conn.opened = None
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._connections_lock:
            for conn in self._connections:
                with suppress(sqlite3.Error):
                    conn.close()
            self._connections.clear()

    def healthy(self) -> bool:
        try:
            self._reader().execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    # ------------------------------------------------------------------ pagination

    # ------------------------------------------------------------------ agents

    def create_agent(
        self, agent: Agent, new_blocks: Sequence[Block], block_ids: Sequence[str]
    ) -> None:
        with self._write() as conn:
            self._insert_agent(conn, agent, new_blocks, block_ids)

    def import_agents(self, contents: Sequence[AgentContents]) -> None:
        with self._write() as conn:
            for item in contents:
                self._insert_agent(conn, item.agent, item.new_blocks, item.block_ids)
                _insert_messages(conn, item.messages)
                _insert_passage_rows(conn, item.passages, item.vectors)

    def _insert_agent(
        self,
        conn: sqlite3.Connection,
        agent: Agent,
        new_blocks: Sequence[Block],
        block_ids: Sequence[str],
    ) -> None:
        conn.execute(
            "INSERT INTO agents (id, name, description, system, agent_type, model, embedding,"
            " tags, metadata, timezone, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                agent.id,
                agent.name,
                agent.description,
                agent.system,
                agent.agent_type,
                agent.model,
                agent.embedding,
                json.dumps(agent.tags),
                json.dumps(agent.metadata),
                agent.timezone,
                format_time(agent.created_at),
                format_time(agent.updated_at),
            ),
        )
        for block in new_blocks:
            self._insert_block(conn, block)
        for block in new_blocks:
            self._attach(conn, agent.id, block.id)
        for block_id in block_ids:
            self._attach(conn, agent.id, block_id)

    def get_agent(self, agent_id: str) -> Agent | None:
        row = self._reader().execute("SELECT * FROM agents WHERE id = ?", (agent_id,)).fetchone()
        return shared.agent(row) if row else None

    def list_agents(self, filters: AgentFilter, page: Page) -> list[Agent]:
        where, params = agent_where(filters, SQL)
        with self._read() as conn:
            rows = shared.keyset_page(conn, page, shared.AGENTS, where, params, SQL.mark)
        return [shared.agent(row) for row in rows]

    def update_agent(self, agent: Agent) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE agents SET name = ?, description = ?, system = ?, agent_type = ?,"
                " model = ?,"
                " embedding = ?, tags = ?, metadata = ?, timezone = ?, updated_at = ? WHERE id = ?",
                (
                    agent.name,
                    agent.description,
                    agent.system,
                    agent.agent_type,
                    agent.model,
                    agent.embedding,
                    json.dumps(agent.tags),
                    json.dumps(agent.metadata),
                    agent.timezone,
                    format_time(agent.updated_at),
                    agent.id,
                ),
            )

    def delete_agent(self, agent_id: str) -> bool:
        with self._write() as conn:
            # Blocks the agent created and no one else uses go with it; shared ones stay.
            conn.execute(
                "DELETE FROM blocks WHERE owner_agent_id = ? AND id NOT IN"
                " (SELECT block_id FROM agent_blocks WHERE agent_id != ?)",
                (agent_id, agent_id),
            )
            conn.execute("DELETE FROM passages WHERE agent_id = ?", (agent_id,))
            conn.execute("DELETE FROM messages WHERE agent_id = ?", (agent_id,))
            conn.execute("DELETE FROM passage_versions WHERE agent_id = ?", (agent_id,))
            deleted = conn.execute("DELETE FROM agents WHERE id = ?", (agent_id,)).rowcount
        self._drop_indexes(agent_id)
        return deleted > 0

    # ------------------------------------------------------------------ blocks

    def _insert_block(self, conn: sqlite3.Connection, block: Block) -> None:
        conn.execute(
            "INSERT INTO blocks (id, label, value, char_limit, description, read_only, metadata,"
            " tags, owner_agent_id, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                block.id,
                block.label,
                block.value,
                block.limit,
                block.description,
                int(block.read_only),
                json.dumps(block.metadata),
                json.dumps(block.tags),
                block.owner_agent_id,
                format_time(block.created_at),
                format_time(block.updated_at),
            ),
        )

    def create_block(self, block: Block) -> None:
        with self._write() as conn:
            self._insert_block(conn, block)

    def get_block(self, block_id: str) -> Block | None:
        row = self._reader().execute("SELECT * FROM blocks WHERE id = ?", (block_id,)).fetchone()
        return shared.block(row) if row else None

    def list_blocks(self, filters: BlockFilter, page: Page) -> list[Block]:
        where, params = block_where(filters, SQL)
        with self._read() as conn:
            rows = shared.keyset_page(conn, page, shared.BLOCKS, where, params, SQL.mark)
        return [shared.block(row) for row in rows]

    def modify_block(self, block_id: str, change: Callable[[Block], Block]) -> Block | None:
        with self._write() as conn:
            row = conn.execute("SELECT * FROM blocks WHERE id = ?", (block_id,)).fetchone()
            if row is None:
                return None
            before = shared.block(row)
            after = change(before)
            if after.label != before.label:
                self._check_label_free(conn, block_id, after.label)
            conn.execute(
                "UPDATE blocks SET label = ?, value = ?, char_limit = ?, description = ?,"
                " read_only = ?, metadata = ?, tags = ?, updated_at = ? WHERE id = ?",
                (
                    after.label,
                    after.value,
                    after.limit,
                    after.description,
                    int(after.read_only),
                    json.dumps(after.metadata),
                    json.dumps(after.tags),
                    format_time(after.updated_at),
                    block_id,
                ),
            )
            return after

    def _check_label_free(self, conn: sqlite3.Connection, block_id: str, label: str) -> None:
        clash = conn.execute(
            "SELECT ab.agent_id FROM agent_blocks ab JOIN blocks b ON b.id = ab.block_id"
            " WHERE b.label = ? AND b.id != ? AND ab.agent_id IN"
            " (SELECT agent_id FROM agent_blocks WHERE block_id = ?) LIMIT 1",
            (label, block_id, block_id),
        ).fetchone()
        if clash:
            raise Conflict(f"Agent {clash[0]!r} already has a block with label {label!r}")

    def delete_block(self, block_id: str) -> bool:
        with self._write() as conn:
            return conn.execute("DELETE FROM blocks WHERE id = ?", (block_id,)).rowcount > 0

    def agent_blocks(self, agent_id: str) -> list[Block]:
        rows = self._reader().execute(
            "SELECT b.* FROM blocks b JOIN agent_blocks ab ON ab.block_id = b.id"
            " WHERE ab.agent_id = ? ORDER BY ab.attached_at, b.seq",
            (agent_id,),
        )
        return [shared.block(row) for row in rows]

    def _attach(self, conn: sqlite3.Connection, agent_id: str, block_id: str) -> None:
        block = conn.execute("SELECT label FROM blocks WHERE id = ?", (block_id,)).fetchone()
        if block is None:
            raise NotFound(f"Block {block_id!r} not found")
        clash = conn.execute(
            "SELECT b.id FROM blocks b JOIN agent_blocks ab ON ab.block_id = b.id"
            " WHERE ab.agent_id = ? AND b.label = ? AND b.id != ?",
            (agent_id, block["label"], block_id),
        ).fetchone()
        if clash:
            raise Conflict(
                f"Agent {agent_id!r} already has a block with label {block['label']!r} "
                f"({clash[0]}); detach it first"
            )
        conn.execute(
            "INSERT OR IGNORE INTO agent_blocks (agent_id, block_id, attached_at) VALUES (?, ?, ?)",
            (agent_id, block_id, format_time(utcnow())),
        )

    def attach_block(self, agent_id: str, block_id: str) -> None:
        with self._write() as conn:
            self._attach(conn, agent_id, block_id)

    def detach_block(self, agent_id: str, block_id: str) -> bool:
        with self._write() as conn:
            return (
                conn.execute(
                    "DELETE FROM agent_blocks WHERE agent_id = ? AND block_id = ?",
                    (agent_id, block_id),
                ).rowcount
                > 0
            )

    def block_agents(self, block_id: str, page: Page) -> list[Agent]:
        with self._read() as conn:
            rows = shared.keyset_page(
                conn, page, shared.BLOCK_AGENTS, ["ab.block_id = ?"], [block_id], SQL.mark
            )
        return [shared.agent(row) for row in rows]

    # ------------------------------------------------------------------ passages

    def insert_passages(self, passages: Sequence[Passage], vectors: np.ndarray) -> None:
        if not passages:
            return
        agent_ids = {p.agent_id for p in passages}
        with self._write_lock:  # held until the in-memory indexes have caught up
            with self._write() as conn:
                before = self._versions(conn, agent_ids)
                seqs = _insert_passage_rows(conn, passages, vectors)
                after = self._versions(conn, agent_ids)
            self._advance_indexes(passages, vectors, seqs, before, after)

    def _advance_indexes(
        self,
        passages: Sequence[Passage],
        vectors: np.ndarray,
        seqs: list[int | None],
        before: dict[str, int],
        after: dict[str, int],
    ) -> None:
        """Append just-inserted rows to indexes that were current; drop any that were stale."""
        with self._indexes_lock:
            for key in [k for k in self._indexes if k[0] in after]:
                agent_id, handle = key
                index = self._indexes[key]
                if index.version != before.get(agent_id, 0):
                    del self._indexes[key]
                    continue
                picked = [
                    i
                    for i, p in enumerate(passages)
                    if p.agent_id == agent_id and p.embedding_handle == handle
                ]
                if picked:
                    index.add(
                        np.array([seqs[i] for i in picked], dtype=np.int64),
                        np.asarray(vectors, dtype=np.float32)[picked],
                    )
                index.version = after[agent_id]

    @staticmethod
    def _versions(conn: sqlite3.Connection, agent_ids: set[str]) -> dict[str, int]:
        marks = ",".join("?" * len(agent_ids))
        rows = conn.execute(
            f"SELECT agent_id, version FROM passage_versions WHERE agent_id IN ({marks})",
            list(agent_ids),
        )
        return {row[0]: row[1] for row in rows}

    def get_passages(self, passage_ids: Sequence[str]) -> list[Passage]:
        if not passage_ids:
            return []
        marks = ",".join("?" * len(passage_ids))
        rows = self._reader().execute(
            f"SELECT * FROM passages WHERE id IN ({marks})", list(passage_ids)
        )
        by_id = {row["id"]: shared.passage(row) for row in rows}
        return [by_id[pid] for pid in passage_ids if pid in by_id]

    def list_passages(self, filters: PassageFilter, page: Page) -> list[Passage]:
        where, params = passage_where(filters, SQL)
        with self._read() as conn:
            rows = shared.keyset_page(conn, page, shared.PASSAGES, where, params, SQL.mark)
        return [shared.passage(row) for row in rows]

    def update_passage(self, passage: Passage, vector: np.ndarray | None) -> bool:
        assignments = "text = ?, tags = ?, metadata = ?, updated_at = ?"
        params: list[Any] = [
            passage.text,
            json.dumps(passage.tags),
            json.dumps(passage.metadata),
            format_time(passage.updated_at),
        ]
        if vector is not None:
            assignments += ", embedding = ?"
            params.append(np.asarray(vector, dtype=np.float32).tobytes())
        with self._write_lock, self._write() as conn:
            row = conn.execute(
                f"UPDATE passages SET {assignments} WHERE id = ? RETURNING seq",
                (*params, passage.id),
            ).fetchone()
            changed = row is not None
            if changed:
                conn.execute("DELETE FROM passage_postings WHERE seq = ?", (row["seq"],))
                _write_postings(conn, [(passage, row["seq"])])
            if changed and vector is not None:
                # In-memory vector indexes of other processes must notice the new embedding.
                conn.execute(
                    "UPDATE passage_versions SET version = version + 1 WHERE agent_id = ?",
                    (passage.agent_id,),
                )
        if changed and vector is not None:
            self._drop_indexes(passage.agent_id)
        return bool(changed)

    def delete_passage(self, passage_id: str) -> bool:
        with self._write() as conn:
            row = conn.execute(
                "DELETE FROM passages WHERE id = ? RETURNING agent_id", (passage_id,)
            ).fetchone()
        if row is None:
            return False
        self._drop_indexes(row[0])
        return True

    def count_passages(self, agent_id: str | None = None) -> int:
        if agent_id is None:
            return self._reader().execute("SELECT count(*) FROM passages").fetchone()[0]
        return (
            self._reader()
            .execute("SELECT count(*) FROM passages WHERE agent_id = ?", (agent_id,))
            .fetchone()[0]
        )

    def count_messages(self, agent_id: str) -> int:
        return (
            self._reader()
            .execute("SELECT count(*) FROM messages WHERE agent_id = ?", (agent_id,))
            .fetchone()[0]
        )

    def delete_messages(self, agent_id: str, conversation_id: str) -> int:
        with self._write() as conn:
            return conn.execute(
                "DELETE FROM messages WHERE agent_id = ? AND conversation_id = ?",
                (agent_id, conversation_id),
            ).rowcount

    @contextmanager
    def bulk_load(self) -> Iterator[bool]:
        """Nothing to prepare: postings and vector indexes keep up with inserts."""
        yield False

    def mixed_embeddings(self, agent_id: str, handle: str) -> bool:
        row = (
            self._reader()
            .execute(
                # Two range probes of passages_agent_handle; `<>` would read every row.
                "SELECT EXISTS (SELECT 1 FROM passages WHERE agent_id = ? AND embedding_handle < ?)"
                " OR EXISTS (SELECT 1 FROM passages WHERE agent_id = ? AND embedding_handle > ?)",
                (agent_id, handle, agent_id, handle),
            )
            .fetchone()
        )
        return bool(row[0])

    def replace_embeddings(
        self, passages: Sequence[Passage], vectors: np.ndarray, handle: str
    ) -> None:
        if not passages:
            return
        with self._write_lock, self._write() as conn:
            conn.executemany(
                "UPDATE passages SET embedding = ?, embedding_handle = ? WHERE id = ?",
                [
                    (np.asarray(v, dtype=np.float32).tobytes(), handle, p.id)
                    for p, v in zip(passages, vectors, strict=True)
                ],
            )
            # In-memory vector indexes of other processes must notice the new embeddings.
            conn.executemany(
                "UPDATE passage_versions SET version = version + 1 WHERE agent_id = ?",
                [(agent_id,) for agent_id in {p.agent_id for p in passages}],
            )
        for agent_id in {p.agent_id for p in passages}:
            self._drop_indexes(agent_id)

    def similarities(
        self, vector: np.ndarray, handle: str, passage_ids: Sequence[str]
    ) -> dict[str, float]:
        if not passage_ids:
            return {}
        marks = ",".join("?" * len(passage_ids))
        rows = self._reader().execute(
            f"SELECT id, embedding FROM passages WHERE id IN ({marks})"
            " AND embedding_handle = ? AND embedding IS NOT NULL",
            [*passage_ids, handle],
        )
        query = np.asarray(vector, dtype=np.float32)
        return {
            row[0]: float(np.dot(np.frombuffer(row[1], dtype=np.float32), query)) for row in rows
        }

    def passage_vectors(self, passage_ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not passage_ids:
            return {}
        marks = ",".join("?" * len(passage_ids))
        rows = self._reader().execute(
            f"SELECT id, embedding FROM passages WHERE id IN ({marks}) AND embedding IS NOT NULL",
            list(passage_ids),
        )
        return {row[0]: np.frombuffer(row[1], dtype=np.float32) for row in rows}

    def counts(self) -> dict[str, int]:
        with self._read() as conn:
            return {
                table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("agents", "blocks", "passages", "messages")
            }

    def lexical_search(
        self, query: str, filters: PassageFilter, limit: int
    ) -> list[tuple[str, float]]:
        terms = search_terms(query)
        if not terms:
            return []
        scope, scope_params = "", []
        if filters.agent_ids is not None:
            scope = f" AND agent_id IN ({','.join('?' * len(filters.agent_ids))})"
            scope_params = list(filters.agent_ids)
        with self._read() as conn:
            # One row per term, its postings packed as bm25.PACKED_POSTING and joined by
            # commas: parsed in C, where a row per posting cost Python a tuple each.
            rows = conn.execute(
                f"SELECT term, group_concat({_PACKED.format(t='passage_postings')})"
                " FROM passage_postings"
                f" WHERE term IN ({','.join('?' * len(terms))}){scope} GROUP BY term",
                [*terms, *scope_params],
            ).fetchall()
            postings = {
                term: np.fromstring(packed, dtype=np.int64, sep=",") for term, packed in rows
            }
            if not postings:
                return []
            passing = postings
            if filters.narrows:
                where, params = passage_where(filters, SQL)
                candidates = bm25.passages_of(list(postings.values()))
                passing = bm25.restricted(
                    postings, _seqs_where(conn, candidates.tolist(), where, params)
                )
            corpus = self._corpus_size(conn, scope, scope_params)
            ranked = bm25.rank(
                [(postings[t], passing[t]) for t in terms if t in postings], corpus, limit
            )
            if not ranked:
                return []
            ids = dict(
                conn.execute(
                    f"SELECT seq, id FROM passages WHERE seq IN ({','.join('?' * len(ranked))})",
                    [seq for seq, _ in ranked],
                ).fetchall()
            )
        return [(ids[seq], score) for seq, score in ranked if seq in ids]

    def _corpus_size(self, conn: sqlite3.Connection, scope: str, params: list[Any]) -> int:
        """Passages BM25's IDF is taken over, counted again only when a searched agent's
        passage version (bumped by every insert and delete) has moved."""
        versions = tuple(
            conn.execute(
                f"SELECT agent_id, version FROM passage_versions WHERE true{scope}"
                " ORDER BY agent_id",
                params,
            ).fetchall()
        )
        key = (scope, tuple(params))
        cached = self._corpus_sizes.get(key)
        if cached is not None and cached[0] == versions:
            return cached[1]
        size = conn.execute(f"SELECT count(*) FROM passages WHERE true{scope}", params).fetchone()[
            0
        ]
        if len(self._corpus_sizes) > 1024:
            self._corpus_sizes.clear()
        self._corpus_sizes[key] = (versions, size)
        return size

    def analyzer_version(self) -> str:
        return self._reader().execute("SELECT analyzer FROM lexical_index").fetchone()[0]

    def reindex_keywords(
        self,
        batches: Iterable[Sequence[Passage]],
        version: str,
        messages: Iterable[Sequence[Message]] = (),
    ) -> int:
        """Rewrite the context and keyword postings of every passage in `batches` and every
        message in `messages`, then record the analyzer `version` they were written with.
        Returns how many were rewritten."""
        done = 0
        for batch in batches:
            with self._write() as conn:
                seqs = []
                for passage in batch:
                    row = conn.execute(
                        "UPDATE passages SET context = ? WHERE id = ? RETURNING seq",
                        (" ".join(passage.context), passage.id),
                    ).fetchone()
                    if row is not None:
                        conn.execute("DELETE FROM passage_postings WHERE seq = ?", (row[0],))
                        seqs.append((passage, row[0]))
                _write_postings(conn, seqs)
            done += len(batch)
        for page in messages:
            with self._write() as conn:
                conn.executemany(
                    "UPDATE messages SET terms = ?, context = ?, doclen = ? WHERE id = ?",
                    [(*_message_terms(m), m.id) for m in page],
                )
            done += len(page)
        with self._write() as conn:
            conn.execute("UPDATE lexical_index SET analyzer = ?", (version,))
        return done

    def vector_search(
        self, vector: np.ndarray, handle: str, filters: PassageFilter, limit: int
    ) -> list[tuple[str, float]]:
        with self._read() as conn:
            agent_ids = filters.agent_ids
            if agent_ids is None:
                agent_ids = [row[0] for row in conn.execute("SELECT id FROM agents")]
            hits: list[tuple[int, float]] = []
            for agent_id in agent_ids:
                index = self._index(conn, agent_id, handle)
                if filters.narrows:
                    hits.extend(_best_passing(conn, index, vector, filters, limit))
                else:
                    hits.extend(index.search(vector, limit))
            hits.sort(key=lambda hit: -hit[1])
            hits = hits[:limit]
            if not hits:
                return []
            marks = ",".join("?" * len(hits))
            ids = dict(
                conn.execute(
                    f"SELECT seq, id FROM passages WHERE seq IN ({marks})", [s for s, _ in hits]
                ).fetchall()
            )
        return [(ids[seq], score) for seq, score in hits if seq in ids]

    def _index(self, conn: sqlite3.Connection, agent_id: str, handle: str) -> VectorIndex:
        row = conn.execute(
            "SELECT version FROM passage_versions WHERE agent_id = ?", (agent_id,)
        ).fetchone()
        version = row[0] if row else 0
        key = (agent_id, handle)
        with self._indexes_lock:
            index = self._indexes.get(key)
            if index is not None and index.version == version:
                return index
        where = "agent_id = ? AND embedding_handle = ? AND embedding IS NOT NULL"
        count = conn.execute(f"SELECT count(*) FROM passages WHERE {where}", (agent_id, handle))
        rows = conn.execute(
            f"SELECT seq, embedding FROM passages WHERE {where} ORDER BY seq", (agent_id, handle)
        )
        index = VectorIndex.from_rows(rows, count.fetchone()[0], version)
        with self._indexes_lock:
            current = self._indexes.get(key)
            if current is None or current.version <= version:
                self._indexes[key] = index
        return index

    def _drop_indexes(self, agent_id: str) -> None:
        with self._indexes_lock:
            for key in [k for k in self._indexes if k[0] == agent_id]:
                del self._indexes[key]

    # ------------------------------------------------------------------ messages

    def insert_messages(self, messages: Sequence[Message]) -> None:
        with self._write() as conn:
            _insert_messages(conn, messages)

    def list_messages(self, filters: MessageFilter, page: Page) -> list[Message]:
        where, params = message_where(filters, SQL)
        with self._read() as conn:
            rows = shared.keyset_page(conn, page, shared.MESSAGES, where, params, SQL.mark)
        return [shared.message(row) for row in rows]

    def search_messages(
        self, query: str, filters: MessageFilter, limit: int
    ) -> list[tuple[Message, float]]:
        terms = search_terms(query)
        if not terms:
            return []
        scope, scope_params = "true", []
        if filters.agent_ids is not None:
            scope = f"m.agent_id IN ({','.join('?' * len(filters.agent_ids))})"
            scope_params = list(filters.agent_ids)
        where, params = message_where(filters, SQL)
        passes = " AND ".join(where) if filters.narrows else "1"
        params = params if filters.narrows else []
        # Each term's postings, and those of the messages passing the filters, packed as
        # bm25.PACKED_POSTING and joined by commas (as lexical_search reads passages'): a
        # term's frequency in a message is its count in `terms` OWN_WEIGHT times, plus its
        # count in `context`.
        frequency = f"min(sum(CASE v.col WHEN 'terms' THEN {OWN_WEIGHT} ELSE 1 END), {bm25.TF_MAX})"
        packed = (
            f"(v.doc << {bm25.SEQ_SHIFT}) | ({frequency} << {bm25.TF_SHIFT})"
            f" | min(m.doclen, {bm25.LENGTH_MAX})"
        )
        with self._read() as conn:
            rows = conn.execute(
                "SELECT x.term, group_concat(x.packed), group_concat(CASE WHEN x.passes"
                " THEN x.packed END) FROM"
                f" (SELECT v.term, {packed} AS packed, {passes} AS passes FROM messages_vocab v"
                "  CROSS JOIN messages m ON m.seq = v.doc"
                f"  WHERE v.term IN ({','.join('?' * len(terms))}) AND {scope}"
                "  GROUP BY v.term, v.doc) x GROUP BY x.term",
                [*params, *terms, *scope_params],
            ).fetchall()
            found = {term: (_unpacked(every), _unpacked(kept)) for term, every, kept in rows}
            corpus = self._message_corpus.size(
                tuple(sorted(filters.agent_ids)) if filters.agent_ids is not None else None,
                lambda limit: conn.execute(
                    f"SELECT count(*) FROM (SELECT 1 FROM messages m WHERE {scope}"
                    f" {'' if limit is None else f'LIMIT {limit}'})",
                    scope_params,
                ).fetchone()[0],
            )
            ranked = bm25.rank([found[t] for t in terms if t in found], corpus, limit)
            if not ranked:
                return []
            messages = {
                row["seq"]: shared.message(row)
                for row in conn.execute(
                    f"SELECT * FROM messages WHERE seq IN ({','.join('?' * len(ranked))})",
                    [seq for seq, _ in ranked],
                )
            }
        return [(messages[seq], score) for seq, score in ranked if seq in messages]

    # ------------------------------------------------------------------ idempotency

    def claim_idempotency_key(self, key: str, request_hash: str) -> IdempotentResponse | None:
        with self._write() as conn:
            conn.execute(
                "DELETE FROM idempotency_keys WHERE created_at < ?",
                (format_time(utcnow() - IDEMPOTENCY_TTL),),
            )
            row = conn.execute("SELECT * FROM idempotency_keys WHERE key = ?", (key,)).fetchone()
            stale = format_time(utcnow() - STALE_CLAIM)
            if row is not None and not row["complete"] and row["created_at"] < stale:
                # The process that claimed it died mid-request; let this request run it.
                conn.execute("DELETE FROM idempotency_keys WHERE key = ?", (key,))
                row = None
            if row is not None:
                return IdempotentResponse(
                    request_hash=row["request_hash"],
                    status_code=row["status_code"] or 0,
                    body=row["body"] or b"",
                    media_type=row["media_type"] or "",
                    complete=bool(row["complete"]),
                )
            conn.execute(
                "INSERT INTO idempotency_keys (key, request_hash, created_at) VALUES (?, ?, ?)",
                (key, request_hash, format_time(utcnow())),
            )
        return None

    def complete_idempotency_key(
        self, key: str, status_code: int, body: bytes, media_type: str
    ) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE idempotency_keys SET status_code = ?, body = ?, media_type = ?,"
                " complete = 1 WHERE key = ?",
                (status_code, body, media_type, key),
            )

    def release_idempotency_key(self, key: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM idempotency_keys WHERE key = ? AND complete = 0", (key,))


# A filtered vector search checks at most this many of the best passages one by one before
# it reads every passing passage with one query instead.
WALK_MAX = 8192

# ---------------------------------------------------------------------- row mapping and SQL bits


def _insert_messages(conn: sqlite3.Connection, messages: Sequence[Message]) -> None:
    """Messages with their keyword terms (messages_fts indexes them); a message whose id is
    already stored is skipped."""
    conn.executemany(
        "INSERT OR IGNORE INTO messages (id, agent_id, message_type, content, conversation_id,"
        " tool_name, tool_call_id, is_err, metadata, created_at, terms, context, doclen)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                m.id,
                m.agent_id,
                m.message_type,
                m.content,
                m.conversation_id,
                m.tool_name,
                m.tool_call_id,
                int(m.is_err),
                json.dumps(m.metadata),
                format_time(m.created_at),
                *_message_terms(m),
            )
            for m in messages
        ],
    )


def _message_terms(message: Message) -> tuple[str, str, int]:
    """A message's own terms and its context's, as messages_fts indexes them, and its length
    as bm25 counts it (own terms OWN_WEIGHT times)."""
    own = analyze(message.content)
    _, length = bm25.term_frequencies(own * OWN_WEIGHT + message.context)
    return " ".join(own), " ".join(message.context), length


def _insert_passage_rows(
    conn: sqlite3.Connection, passages: Sequence[Passage], vectors: np.ndarray
) -> list[int | None]:
    """Insert passages with their keyword postings; returns their seqs."""
    seqs = [
        conn.execute(
            "INSERT INTO passages (id, agent_id, text, tags, metadata,"
            " embedding_handle, embedding, created_at, updated_at, context)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                passage.id,
                passage.agent_id,
                passage.text,
                json.dumps(passage.tags),
                json.dumps(passage.metadata),
                passage.embedding_handle,
                np.asarray(vector, dtype=np.float32).tobytes(),
                format_time(passage.created_at),
                format_time(passage.updated_at),
                " ".join(passage.context),
            ),
        ).lastrowid
        for passage, vector in zip(passages, vectors, strict=True)
    ]
    _write_postings(conn, zip(passages, seqs, strict=True))
    return seqs


def _unpacked(packed: str | None) -> np.ndarray:
    """Postings as group_concat joins them, in seq order (as both stores hand them to bm25)."""
    return np.sort(np.fromstring(packed or "", dtype=np.int64, sep=","))


def _write_postings(conn: sqlite3.Connection, passages: Iterable[tuple[Passage, Any]]) -> None:
    """The keyword postings of passages just written, each with its seq."""
    rows = []
    for passage, seq in passages:
        frequencies, length = bm25.term_frequencies(index_terms(passage.text, passage.context))
        rows.extend((term, passage.agent_id, seq, tf, length) for term, tf in frequencies.items())
    conn.executemany(
        "INSERT INTO passage_postings (term, agent_id, seq, tf, doclen) VALUES (?, ?, ?, ?, ?)",
        rows,
    )


def _best_passing(
    conn: sqlite3.Connection,
    index: VectorIndex,
    vector: np.ndarray,
    filters: PassageFilter,
    limit: int,
) -> list[tuple[int, float]]:
    """The top `limit` of the index among passages that pass `filters`. The best are walked
    best first, each passage checked by its key: a common filter is done after a few hundred.
    A rare one (none of the first batch passes, or too few of the best WALK_MAX, or of the
    first batch when the filter names a type, whose passages an index finds) reads the
    passing passages with one filtered query instead."""
    where, params = passage_where(filters, SQL)
    every_seq, every_score = index.scored(vector)
    seqs, scores = vector_index.ranked(every_seq, every_score, WALK_MAX)
    found: list[tuple[int, float]] = []
    start, batch = 0, max(4 * limit, 256)
    # A type's passages come cheaply from their index (migration m005): one batch only.
    walk = batch if "type" in filters.metadata else len(seqs)
    while start < min(len(seqs), walk):
        chunk = seqs[start : start + batch].tolist()
        passing = set(_seqs_where(conn, chunk, where, params).tolist())
        for position, seq in enumerate(chunk):
            if seq in passing:
                found.append((seq, float(scores[start + position])))
                if len(found) == limit:
                    return found
        start += len(chunk)
        if not found:
            break  # none of the best pass: a rare filter, cheaper to read its passages
        batch *= 2
    if len(seqs) == len(every_seq):
        return found  # every passage was looked at
    return vector_index.best(every_seq, every_score, limit, _passing(conn, where, params))


def _passing(conn: sqlite3.Connection, where: list[str], params: list[Any]) -> np.ndarray:
    """The seqs of every passage that passes `where`."""
    rows = conn.execute("SELECT p.seq FROM passages p WHERE " + " AND ".join(where), params)
    return np.fromiter((row[0] for row in rows), dtype=np.int64)


def _seqs_where(
    conn: sqlite3.Connection, seqs: list[int], where: list[str], params: list[Any]
) -> np.ndarray:
    """Which of `seqs` belong to passages that pass `where`. CROSS JOIN keeps the candidates
    as the outer loop, each passage found by its key: the planner would otherwise walk the
    agent's passages and probe the candidate list for each."""
    kept: list[int] = []
    for start in range(0, len(seqs), 30_000):
        chunk = seqs[start : start + 30_000]
        kept.extend(
            row[0]
            for row in conn.execute(
                "SELECT p.seq FROM json_each(?) c CROSS JOIN passages p ON p.seq = c.value"
                " WHERE " + " AND ".join(where),
                [json.dumps(chunk), *params],
            )
        )
    return np.array(kept, dtype=np.int64)


class SQLiteDialect:
    """SQLite's side of the shared filters (filters.py): JSON1 functions for tags and
    metadata, ISO text for times."""

    mark = "?"

    def one_of(self, column: str, values: list[str]) -> Clause:
        return [f"{column} IN ({','.join('?' * len(values)) or 'NULL'})"], list(values)

    def contains(self, column: str) -> str:
        return f"instr(lower({column}), lower(?)) > 0"

    def tags(self, column: str, tags: list[str], match_all: bool) -> Clause:
        marks = ",".join("?" * len(tags))
        if match_all:
            return (
                [
                    f"(SELECT count(DISTINCT value) FROM json_each({column})"
                    f" WHERE value IN ({marks})) = ?"
                ],
                [*tags, len(set(tags))],
            )
        return [f"EXISTS (SELECT 1 FROM json_each({column}) WHERE value IN ({marks}))"], list(tags)

    def metadata(self, column: str, key: str, values: tuple[Any, ...]) -> Clause:
        path = '$."' + key.replace('"', '\\"') + '"'
        alternatives: list[str] = []
        params: list[Any] = []
        for value in values:
            if key == "type" and isinstance(value, str):
                # Written out as migration m005's index has it, so the planner can use it.
                alternatives.append(f"""json_extract({column}, '$."type"') = ?""")
                params.append(value)
            elif isinstance(value, bool):
                alternatives.append(f"json_type({column}, ?) = ?")
                params.extend([path, "true" if value else "false"])
            elif value is None:
                alternatives.append(f"json_type({column}, ?) = 'null'")
                params.append(path)
            else:
                alternatives.append(f"json_extract({column}, ?) = ?")
                params.extend([path, value])
        return ["(" + " OR ".join(alternatives) + ")"], params

    def moment(self, value: datetime) -> str:
        return format_time(value)


SQL = SQLiteDialect()

"""The team store: PostgreSQL with pgvector, shared by any number of stateless replicas.

- psycopg 3 with a bounded pool and a statement timeout; pool exhaustion and a lost database
  surface as StoreUnavailable (HTTP 503 with Retry-After), never as a hang.
- Lexical search: BM25 over the searched agents' passages, from the postings of
  postgres_postings.py (kept by triggers, packed into blocks in the background), ranked in the
  replica by bm25.py.
- Vector search: postgres_vectors.py (HNSW with iterative scans, or an exact scan).
- Bulk loads (migrate-data, import): postgres_bulk.py (binary COPY, indexes built at the end).
- Schema: postgres_migrations.py. Row mapping and pagination: shared.py, as for SQLite.
"""

from __future__ import annotations

import json
import logging
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from mnemo.errors import Conflict, NotFound, StoreUnavailable
from mnemo.models import Agent, Block, Message, Passage, utcnow
from mnemo.store import bm25, bulk_writer, postgres_migrations, postgres_postings, row_order, shared
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
from mnemo.store.postgres_bulk import (
    PassageBatch,
    PassageCopier,
    build_indexes,
    neighbourhoods_of,
)
from mnemo.store.postgres_vectors import EXACT_SCAN_MAX_ROWS, VectorAdapter, VectorSearch
from mnemo.store.row_order import Neighbourhoods
from mnemo.store.shared import CORPUS_EXACT_MAX, CORPUS_TTL, Expiring
from mnemo.text import ANALYZER_VERSION, index_terms, search_terms

log = logging.getLogger(__name__)

STALE_CLAIM = timedelta(minutes=5)
REINDEX_LOCK = 0x6D6E656D6F02  # advisory lock: one replica re-analyses the passages at a time
SINGLE_MODEL_TTL = 60.0  # seconds an agent found on one embedding model is not checked again
# A pooled connection back for less than this long is lent without a check round trip (as
# PgBouncer's server_check_delay): one that broke meanwhile fails its request with a 503 and
# is dropped by the pool.
CHECK_IDLE_AFTER = 1.0
# Batches up to this size are written by one INSERT (one round trip), larger ones by COPY.
INSERT_MAX_ROWS = 64
# What a Passage is read from: not the embedding (1.5 KB as text) nor the tsvector.
PASSAGE_COLUMNS = (
    "{t}.id, {t}.agent_id, {t}.text, {t}.tags, {t}.metadata, {t}.embedding_handle,"
    " {t}.created_at, {t}.updated_at, {t}.context"
)
PASSAGES = shared.Listing(
    "passages", "p", "passage", f"SELECT {PASSAGE_COLUMNS.format(t='p')} FROM passages p"
)


class PostgresStore:
    def __init__(
        self,
        url: str,
        pool_size: int = 5,
        pool_timeout: float = 5.0,
        statement_timeout_ms: int = 15_000,
        migrate: bool = True,
        exact_scan_max_rows: int = EXACT_SCAN_MAX_ROWS,
        index_build_memory: str = "256MB",
        ef_search: int = 0,
        compact_after: float = postgres_postings.COMPACT_AFTER,
        load_order_sample: int = row_order.SAMPLE,
    ) -> None:
        self.url = url
        self.load_order_sample = load_order_sample
        self._schema_current = False
        self.index_build_memory = index_build_memory
        self._vector_adapter = VectorAdapter()
        self.vectors = VectorSearch(self._vector_adapter, exact_scan_max_rows, ef_search)
        self.compactor = postgres_postings.Compactor(self._conn, compact_after)
        self._copier = PassageCopier(self._vector_adapter)
        self._corpus_sizes = Expiring[tuple[str, ...] | None, int](CORPUS_TTL)
        self._message_corpus = shared.CorpusSizes()
        self._single_model = Expiring[tuple[str, str], bool](SINGLE_MODEL_TTL)
        self._row_order: Neighbourhoods | None = None  # set during a bulk load
        self._bulk_writer: bulk_writer.BulkWriter[PassageBatch] | None = None  # likewise
        self._returned_at = weakref.WeakKeyDictionary[psycopg.Connection[Any], float]()
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            timeout=pool_timeout,
            kwargs={
                "options": f"-c statement_timeout={statement_timeout_ms}",
                "row_factory": dict_row,
                # A read is one statement (READ COMMITTED gives each its own snapshot anyway):
                # no BEGIN and COMMIT round trips around it. Writes open a transaction (_tx).
                "autocommit": True,
                # No server-side prepared statements: after five runs they switch to a generic
                # plan, which cannot see which agent or which words a search is for and can pick
                # a scan over every agent's rows. Planning each query is cheap, and it keeps
                # PgBouncer's transaction mode safe.
                "prepare_threshold": None,
            },
            check=self._check_if_idle,
            open=False,
        )
        try:
            self.pool.open(wait=True, timeout=pool_timeout * 2)
        except PoolTimeout as exc:
            raise StoreUnavailable(f"cannot connect to PostgreSQL at {_safe(url)}: {exc}") from exc
        if migrate:
            self.migrate()

    def migrate(self) -> list[str]:
        with self._conn() as conn:
            applied = postgres_migrations.apply(conn)
            # Nothing to re-analyse: what is written from now on is current.
            conn.execute(
                "UPDATE lexical_index SET analyzer = %s WHERE analyzer <> %s"
                " AND NOT EXISTS (SELECT 1 FROM passages) AND NOT EXISTS (SELECT 1 FROM messages)",
                (ANALYZER_VERSION, ANALYZER_VERSION),
            )
            if not postgres_postings.intact(conn):  # a bulk load died midway
                postgres_postings.rebuild(conn)
                applied.append("rebuilt keyword postings")
            if self._unindexed(conn):
                log.warning(
                    "an HNSW index is missing (a bulk load stopped before building it): vector"
                    " search scans every passage until `mnemo migrate --repair` builds it, or the"
                    " same migrate-data or import runs again"
                )
            return applied

    def repair_indexes(self) -> list[str]:
        """Build the HNSW index a bulk load died without, while replicas go on reading and
        writing (CREATE INDEX CONCURRENTLY: minutes per million passages)."""
        with psycopg.connect(self.url, row_factory=dict_row, autocommit=True) as conn:
            missing = self._unindexed(conn)
            if not missing:
                return []
            began = time.perf_counter()
            conn.execute("SET statement_timeout = 0")
            conn.execute(
                "SELECT set_config('maintenance_work_mem', %s, false)", (self.index_build_memory,)
            )
            for index in missing:
                # What a failed concurrent build leaves behind, invalid, before building anew.
                conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {index.name}")
                conn.execute(index.create(concurrently=True))
            conn.execute("ANALYZE passages")
        self.vectors.index_built()
        names = ", ".join(index.name for index in missing)
        return [f"built the HNSW index {names} ({time.perf_counter() - began:.1f} s)"]

    @staticmethod
    def _unindexed(conn: psycopg.Connection[Any]) -> list[postgres_migrations.HnswIndex]:
        """The HNSW indexes a populated database lacks: what a bulk load leaves if it dies
        early."""
        populated = conn.execute("SELECT EXISTS (SELECT 1 FROM passages) AS any").fetchone()
        return postgres_migrations.invalid_hnsw_indexes(conn) if populated["any"] else []

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self.pool.connection() as conn:
                try:
                    yield conn
                finally:
                    self._returned_at[conn] = time.monotonic()
        except PoolTimeout as exc:
            raise StoreUnavailable(
                "all database connections are busy; retry shortly (pool_size)"
            ) from exc
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"database unavailable: {str(exc).splitlines()[0]}") from exc

    def _check_if_idle(self, conn: psycopg.Connection[Any]) -> None:
        returned = self._returned_at.get(conn)
        if returned is None or time.monotonic() - returned >= CHECK_IDLE_AFTER:
            ConnectionPool.check_connection(conn)

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[Any]]:
        with self._conn() as conn, conn.transaction():
            yield conn

    def close(self) -> None:
        self.compactor.close()
        self.pool.close()

    def healthy(self) -> bool:
        """The database answers and has this server's schema: a pod started before the
        migration job finished stays out of rotation until it has."""
        try:
            with self._conn() as conn:
                if self._schema_current:
                    conn.execute("SELECT 1")
                else:
                    self._schema_current = not postgres_migrations.pending(conn)
        except StoreUnavailable:
            return False
        return self._schema_current

    def pool_stats(self) -> dict[str, int]:
        return dict(self.pool.get_stats())

    # ------------------------------------------------------------------ pagination

    # ------------------------------------------------------------------ agents

    def create_agent(
        self, agent: Agent, new_blocks: Sequence[Block], block_ids: Sequence[str]
    ) -> None:
        with self._tx() as conn:
            self._insert_agent(conn, agent, new_blocks, block_ids)

    def import_agents(self, contents: Sequence[AgentContents]) -> None:
        with self._tx() as conn:
            for item in contents:
                self._insert_agent(conn, item.agent, item.new_blocks, item.block_ids)
                _insert_messages(conn, item.messages)
                if item.passages:
                    order = neighbourhoods_of(self._row_order, item.passages, item.vectors)
                    self._copier.copy(conn, (item.passages, item.vectors, order))
        if any(item.passages for item in contents):
            self.compactor.written()

    def _insert_agent(
        self,
        conn: psycopg.Connection[Any],
        agent: Agent,
        new_blocks: Sequence[Block],
        block_ids: Sequence[str],
    ) -> None:
        conn.execute(
            "INSERT INTO agents (id, name, description, system, agent_type, model, embedding,"
            " tags, metadata, timezone, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                agent.id,
                agent.name,
                agent.description,
                agent.system,
                agent.agent_type,
                agent.model,
                agent.embedding,
                Jsonb(agent.tags),
                Jsonb(agent.metadata),
                agent.timezone,
                agent.created_at,
                agent.updated_at,
            ),
        )
        for block in new_blocks:
            self._insert_block(conn, block)
        for block in new_blocks:
            self._attach(conn, agent.id, block.id)
        for block_id in block_ids:
            self._attach(conn, agent.id, block_id)

    def get_agent(self, agent_id: str) -> Agent | None:
        with self._conn() as conn:
            row = conn.execute("SELECT * FROM agents WHERE id = %s", (agent_id,)).fetchone()
        return shared.agent(row) if row else None

    def list_agents(self, filters: AgentFilter, page: Page) -> list[Agent]:
        where, params = agent_where(filters, SQL)
        with self._conn() as conn:
            rows = shared.keyset_page(conn, page, shared.AGENTS, where, params, SQL.mark)
        return [shared.agent(r) for r in rows]

    def update_agent(self, agent: Agent) -> None:
        self._single_model.clear()  # its model may have changed
        with self._tx() as conn:
            conn.execute(
                "UPDATE agents SET name = %s, description = %s, system = %s, agent_type = %s,"
                " model = %s, embedding = %s, tags = %s, metadata = %s, timezone = %s,"
                " updated_at = %s WHERE id = %s",
                (
                    agent.name,
                    agent.description,
                    agent.system,
                    agent.agent_type,
                    agent.model,
                    agent.embedding,
                    Jsonb(agent.tags),
                    Jsonb(agent.metadata),
                    agent.timezone,
                    agent.updated_at,
                    agent.id,
                ),
            )

    def delete_agent(self, agent_id: str) -> bool:
        with self._tx() as conn:
            conn.execute(
                "DELETE FROM blocks WHERE owner_agent_id = %s AND id NOT IN"
                " (SELECT block_id FROM agent_blocks WHERE agent_id <> %s)",
                (agent_id, agent_id),
            )
            return conn.execute("DELETE FROM agents WHERE id = %s", (agent_id,)).rowcount > 0

    # ------------------------------------------------------------------ blocks

    def _insert_block(self, conn: psycopg.Connection[Any], block: Block) -> None:
        conn.execute(
            "INSERT INTO blocks (id, label, value, char_limit, description, read_only, metadata,"
            " tags, owner_agent_id, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                block.id,
                block.label,
                block.value,
                block.limit,
                block.description,
                block.read_only,
                Jsonb(block.metadata),
                Jsonb(block.tags),
                block.owner_agent_id,
                block.created_at,
                block.updated_at,
            ),
        )

    def create_block(self, block: Block) -> None:
        with self._tx() as conn:
            self._insert_block(conn, block)

    def get_block(self, block_id: str) -> Block | None:
        with self._conn() as conn:
            row = conn.execute("SELECT * FROM blocks WHERE id = %s", (block_id,)).fetchone()
        return shared.block(row) if row else None

    def list_blocks(self, filters: BlockFilter, page: Page) -> list[Block]:
        where, params = block_where(filters, SQL)
        with self._conn() as conn:
            rows = shared.keyset_page(conn, page, shared.BLOCKS, where, params, SQL.mark)
        return [shared.block(r) for r in rows]

    def modify_block(self, block_id: str, change: Callable[[Block], Block]) -> Block | None:
        with self._tx() as conn:
            row = conn.execute(
                "SELECT * FROM blocks WHERE id = %s FOR UPDATE", (block_id,)
            ).fetchone()
            if row is None:
                return None
            before = shared.block(row)
            after = change(before)
            if after.label != before.label:
                clash = conn.execute(
                    "SELECT ab.agent_id FROM agent_blocks ab JOIN blocks b ON b.id = ab.block_id"
                    " WHERE b.label = %s AND b.id <> %s AND ab.agent_id IN"
                    " (SELECT agent_id FROM agent_blocks WHERE block_id = %s) LIMIT 1",
                    (after.label, block_id, block_id),
                ).fetchone()
                if clash:
                    raise Conflict(
                        f"Agent {clash['agent_id']!r} already has a block "
                        f"with label {after.label!r}"
                    )
            conn.execute(
                "UPDATE blocks SET label = %s, value = %s, char_limit = %s, description = %s,"
                " read_only = %s, metadata = %s, tags = %s, updated_at = %s WHERE id = %s",
                (
                    after.label,
                    after.value,
                    after.limit,
                    after.description,
                    after.read_only,
                    Jsonb(after.metadata),
                    Jsonb(after.tags),
                    after.updated_at,
                    block_id,
                ),
            )
            return after

    def delete_block(self, block_id: str) -> bool:
        with self._tx() as conn:
            return conn.execute("DELETE FROM blocks WHERE id = %s", (block_id,)).rowcount > 0

    def agent_blocks(self, agent_id: str) -> list[Block]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT b.* FROM blocks b JOIN agent_blocks ab ON ab.block_id = b.id"
                " WHERE ab.agent_id = %s ORDER BY ab.attached_at, b.seq",
                (agent_id,),
            ).fetchall()
        return [shared.block(r) for r in rows]

    def _attach(self, conn: psycopg.Connection[Any], agent_id: str, block_id: str) -> None:
        block = conn.execute("SELECT label FROM blocks WHERE id = %s", (block_id,)).fetchone()
        if block is None:
            raise NotFound(f"Block {block_id!r} not found")
        clash = conn.execute(
            "SELECT b.id FROM blocks b JOIN agent_blocks ab ON ab.block_id = b.id"
            " WHERE ab.agent_id = %s AND b.label = %s AND b.id <> %s",
            (agent_id, block["label"], block_id),
        ).fetchone()
        if clash:
            raise Conflict(
                f"Agent {agent_id!r} already has a block with label {block['label']!r} "
                f"({clash['id']}); detach it first"
            )
        conn.execute(
            "INSERT INTO agent_blocks (agent_id, block_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (agent_id, block_id),
        )

    def attach_block(self, agent_id: str, block_id: str) -> None:
        with self._tx() as conn:
            self._attach(conn, agent_id, block_id)

    def detach_block(self, agent_id: str, block_id: str) -> bool:
        with self._tx() as conn:
            return (
                conn.execute(
                    "DELETE FROM agent_blocks WHERE agent_id = %s AND block_id = %s",
                    (agent_id, block_id),
                ).rowcount
                > 0
            )

    def block_agents(self, block_id: str, page: Page) -> list[Agent]:
        with self._conn() as conn:
            rows = shared.keyset_page(
                conn, page, shared.BLOCK_AGENTS, ["ab.block_id = %s"], [block_id], SQL.mark
            )
        return [shared.agent(r) for r in rows]

    # ------------------------------------------------------------------ passages

    def insert_passages(self, passages: Sequence[Passage], vectors: np.ndarray) -> None:
        """During a bulk load, returns once a writer has the batch, which must not change
        after (the load's end waits for every batch and raises the first failure); otherwise
        once the rows are committed."""
        if not passages:
            return
        batch = (passages, vectors, neighbourhoods_of(self._row_order, passages, vectors))
        if self._bulk_writer is not None:
            self._bulk_writer.put(batch)
        elif len(passages) <= INSERT_MAX_ROWS:
            with self._conn() as conn:
                self._copier.insert(conn, batch)
        else:
            self._copy_passages(batch)
        self.compactor.written()

    def _copy_passages(self, batch: PassageBatch) -> None:
        with self._tx() as conn:
            self._copier.copy(conn, batch)

    @contextmanager
    def bulk_load(self) -> Iterator[bool]:
        """For loading into an empty database (migrate-data, import): the HNSW index and the
        keyword postings are built once at the end instead of row by row. So is a load into
        a database an earlier bulk load died in before its HNSW index was built: running the
        same command again finishes the job. Any other database keeps both indexes, since
        other replicas may be searching it."""
        with self._conn() as conn, conn.transaction():
            empty = conn.execute("SELECT NOT EXISTS (SELECT 1 FROM passages) AS empty").fetchone()[
                "empty"
            ]
            bulk = empty or bool(postgres_migrations.invalid_hnsw_indexes(conn))
            if bulk:
                for index in postgres_migrations.HNSW_INDEXES:
                    conn.execute(f"DROP INDEX IF EXISTS {index.name}")
                postgres_postings.suspend(conn)
        self.compactor.paused = bulk
        if bulk:
            if self.load_order_sample:
                self._row_order = Neighbourhoods(self.load_order_sample)
            # Writers leave the caller one connection of the pool.
            writers = max(1, min(bulk_writer.WRITERS, self.pool.max_size - 1))
            self._bulk_writer = bulk_writer.BulkWriter(self._copy_passages, writers)
        try:
            yield bulk
        finally:
            writer, self._bulk_writer = self._bulk_writer, None
            order, self._row_order = self._row_order, None
            try:
                if writer is not None:
                    writer.close()  # every batch in, or the first failure raised
            finally:
                if bulk:
                    try:
                        build_indexes(self.url, self.index_build_memory, order)
                        self.vectors.index_built()
                    finally:
                        self.compactor.paused = False

    def get_passages(self, passage_ids: Sequence[str]) -> list[Passage]:
        if not passage_ids:
            return []
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT {PASSAGE_COLUMNS.format(t='passages')} FROM passages WHERE id = ANY(%s)",
                (list(passage_ids),),
            ).fetchall()
        by_id = {r["id"]: shared.passage(r) for r in rows}
        return [by_id[pid] for pid in passage_ids if pid in by_id]

    def list_passages(self, filters: PassageFilter, page: Page) -> list[Passage]:
        where, params = passage_where(filters, SQL)
        with self._conn() as conn:
            rows = shared.keyset_page(conn, page, PASSAGES, where, params, SQL.mark)
        return [shared.passage(r) for r in rows]

    def update_passage(self, passage: Passage, vector: np.ndarray | None) -> bool:
        assignments = "text = %s, tags = %s, metadata = %s, updated_at = %s, lexemes = %s"
        params: list[Any] = [
            passage.text,
            Jsonb(passage.tags),
            Jsonb(passage.metadata),
            passage.updated_at,
            postgres_postings.lexemes(passage),
        ]
        if vector is not None:
            assignments += ", embedding = %s"
        with self._tx() as conn:
            if vector is not None:
                params.append(self._vector_adapter.parameter(conn, vector))
            updated = (
                conn.execute(
                    f"UPDATE passages SET {assignments} WHERE id = %s", (*params, passage.id)
                ).rowcount
                > 0
            )
        self.compactor.written()
        return updated

    def delete_passage(self, passage_id: str) -> bool:
        with self._tx() as conn:
            deleted = conn.execute("DELETE FROM passages WHERE id = %s", (passage_id,)).rowcount
        self.compactor.written()
        return deleted > 0

    def count_passages(self, agent_id: str | None = None) -> int:
        with self._conn() as conn:
            if agent_id is None:
                return conn.execute("SELECT count(*) AS n FROM passages").fetchone()["n"]
            return conn.execute(
                "SELECT count(*) AS n FROM passages WHERE agent_id = %s", (agent_id,)
            ).fetchone()["n"]

    def count_messages(self, agent_id: str) -> int:
        with self._conn() as conn:
            return conn.execute(
                "SELECT count(*) AS n FROM messages WHERE agent_id = %s", (agent_id,)
            ).fetchone()["n"]

    def delete_messages(self, agent_id: str, conversation_id: str) -> int:
        with self._tx() as conn:
            return conn.execute(
                "DELETE FROM messages WHERE agent_id = %s AND conversation_id = %s",
                (agent_id, conversation_id),
            ).rowcount

    def mixed_embeddings(self, agent_id: str, handle: str) -> bool:
        """Read over the agent's rows (no index answers it without tempting the planner away
        from HNSW), so a "not mixed" is kept for SINGLE_MODEL_TTL seconds; this process forgets it
        when it changes the agent's model or embeddings."""
        key = (agent_id, handle)
        if self._single_model.get(key):
            return False
        with self._conn() as conn:
            mixed = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM passages WHERE agent_id = %s"
                " AND embedding_handle <> %s) AS mixed",
                (agent_id, handle),
            ).fetchone()["mixed"]
        if not mixed:
            self._single_model.put(key, True)
        return bool(mixed)

    def replace_embeddings(
        self, passages: Sequence[Passage], vectors: np.ndarray, handle: str
    ) -> None:
        if not passages:
            return
        self._single_model.clear()
        with self._tx() as conn:
            self._vector_adapter.register(conn)  # before the cursor, which copies the adapters
            with conn.cursor() as cursor:
                cursor.executemany(
                    "UPDATE passages SET embedding = %s::vector, embedding_handle = %s"
                    " WHERE id = %s",
                    [
                        (np.asarray(v, dtype=np.float32), handle, p.id)
                        for p, v in zip(passages, vectors, strict=True)
                    ],
                )
        self.compactor.written()

    def similarities(
        self, vector: np.ndarray, handle: str, passage_ids: Sequence[str]
    ) -> dict[str, float]:
        if not passage_ids:
            return {}
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT id, 1 - (embedding <=> %s::vector) AS score FROM passages"
                " WHERE id = ANY(%s) AND embedding_handle = %s AND embedding IS NOT NULL",
                (self._vector_adapter.parameter(conn, vector), list(passage_ids), handle),
            ).fetchall()
        return {r["id"]: float(r["score"]) for r in rows}

    def passage_vectors(self, passage_ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not passage_ids:
            return {}
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT id, embedding::text AS embedding FROM passages"
                " WHERE id = ANY(%s) AND embedding IS NOT NULL",
                (list(passage_ids),),
            ).fetchall()
        return {r["id"]: np.array(json.loads(r["embedding"]), dtype=np.float32) for r in rows}

    def counts(self) -> dict[str, int]:
        with self._conn() as conn:
            return {
                table: conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"]
                for table in ("agents", "blocks", "passages", "messages")
            }

    def lexical_search(
        self, query: str, filters: PassageFilter, limit: int
    ) -> list[tuple[str, float]]:
        terms = search_terms(query)
        if not terms:
            return []
        where, params = passage_where(filters, SQL)
        agent_ids = list(filters.agent_ids) if filters.agent_ids is not None else None
        # Only the agent filter is answered by the postings; any other filter joins the passage
        # rows, so the top k are drawn from passing passages. Scores do not depend on those
        # filters: frequencies and lengths are taken over all the searched passages.
        other = where[1:] if agent_ids is not None else where
        other_params = params[1:] if agent_ids is not None else params
        corpus_key = tuple(sorted(agent_ids)) if agent_ids is not None else None
        corpus_size = self._corpus_sizes.get(corpus_key)
        with self._conn() as conn:
            reads, counted = postgres_postings.read_terms(
                conn, terms, agent_ids, None if corpus_size is not None else CORPUS_EXACT_MAX + 1
            )
            if not reads:
                return []
            passing = {read.term: read.postings for read in reads}
            if other:
                passing = self._passing_postings(conn, reads, other, other_params)
            if corpus_size is None:
                corpus_size = self._corpus_size(conn, agent_ids, corpus_key, counted)
            ranked = bm25.rank(
                [(read.postings, passing.get(read.term, bm25.unpack(b""))) for read in reads],
                corpus_size,
                limit,
            )
            if not ranked:
                return []
            ids = conn.execute(
                "SELECT seq, id FROM passages WHERE seq = ANY(%s)"
                + (" AND agent_id = ANY(%s)" if agent_ids is not None else ""),
                [[seq for seq, _ in ranked], *([agent_ids] if agent_ids is not None else [])],
            ).fetchall()
        by_seq = {r["seq"]: r["id"] for r in ids}
        return [(by_seq[seq], score) for seq, score in ranked if seq in by_seq]

    def analyzer_version(self) -> str:
        with self._conn() as conn:
            return conn.execute("SELECT analyzer FROM lexical_index").fetchone()["analyzer"]

    def reindex_keywords(
        self,
        batches: Iterable[Sequence[Passage]],
        version: str,
        messages: Iterable[Sequence[Message]] = (),
    ) -> int:
        """Rewrite each passage's and message's context and lexemes, then rebuild every posting
        block from them (writers wait for the rebuild, searches do not). One replica at a
        time: the others wait for it, find the version current and do nothing."""
        with self._conn() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (REINDEX_LOCK,))
            try:
                current = conn.execute("SELECT analyzer FROM lexical_index").fetchone()
                if current["analyzer"] == version:
                    return 0
                done = 0
                for batch in batches:
                    with conn.transaction(), conn.cursor() as cursor:
                        cursor.executemany(
                            "UPDATE passages SET context = %s, lexemes = %s WHERE id = %s",
                            [
                                (" ".join(p.context), postgres_postings.lexemes(p), p.id)
                                for p in batch
                            ],
                        )
                    done += len(batch)
                passages_done = done
                for page in messages:
                    with conn.transaction():
                        rows = conn.execute(
                            "UPDATE messages m SET context = c.context"
                            " FROM unnest(%s::text[], %s::text[]) c (id, context)"
                            " WHERE m.id = c.id RETURNING m.id, m.seq",
                            ([m.id for m in page], [" ".join(m.context) for m in page]),
                        ).fetchall()
                        seqs = {r["id"]: r["seq"] for r in rows}
                        _write_message_lexemes(
                            conn, [(m, seqs[m.id]) for m in page if m.id in seqs]
                        )
                    done += len(page)
                with conn.transaction():
                    if passages_done:
                        postgres_postings.rebuild(conn)
                    conn.execute("UPDATE lexical_index SET analyzer = %s", (version,))
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (REINDEX_LOCK,))
        self.compactor.written()
        return done

    def _passing_postings(
        self,
        conn: psycopg.Connection[Any],
        reads: list[postgres_postings.TermRead],
        where: list[str],
        params: list[Any],
    ) -> dict[str, np.ndarray]:
        """The read postings of the passages that pass the search's filters other than the
        agent's."""
        candidates = bm25.passages_of([read.postings for read in reads])
        rows = conn.execute(
            "SELECT p.seq FROM unnest(%s::bigint[]) c(seq) JOIN passages p ON p.seq = c.seq"
            " WHERE " + " AND ".join(where),
            [candidates.tolist(), *params],
        ).fetchall()
        passing = np.fromiter((r["seq"] for r in rows), dtype=np.int64, count=len(rows))
        return bm25.restricted({read.term: read.postings for read in reads}, passing)

    def _corpus_size(
        self,
        conn: psycopg.Connection[Any],
        agent_ids: list[str] | None,
        key: tuple[str, ...] | None,
        counted: int | None,
    ) -> int:
        """Passages BM25's IDF is taken over: those of the searched agents, `counted` up to
        CORPUS_EXACT_MAX + 1 in the postings read. Exact up to CORPUS_EXACT_MAX; above that a
        full count, reused for CORPUS_TTL seconds, is close enough."""
        if counted is not None and counted <= CORPUS_EXACT_MAX:
            return counted
        scope = "WHERE agent_id = ANY(%s)" if agent_ids is not None else ""
        args = [agent_ids] if agent_ids is not None else []
        size: int = conn.execute(f"SELECT count(*) AS n FROM passages {scope}", args).fetchone()[
            "n"
        ]
        self._corpus_sizes.put(key, size)
        return size

    def vector_search(
        self, vector: np.ndarray, handle: str, filters: PassageFilter, limit: int
    ) -> list[tuple[str, float]]:
        where, params = passage_where(filters, SQL)
        with self._conn() as conn:
            return self.vectors.search(conn, vector, handle, where, params, filters.narrows, limit)

    # ------------------------------------------------------------------ messages

    def insert_messages(self, messages: Sequence[Message]) -> None:
        if messages:
            with self._tx() as conn:
                _insert_messages(conn, messages)

    def list_messages(self, filters: MessageFilter, page: Page) -> list[Message]:
        where, params = message_where(filters, SQL)
        with self._conn() as conn:
            rows = shared.keyset_page(conn, page, shared.MESSAGES, where, params, SQL.mark)
        return [shared.message(r) for r in rows]

    def search_messages(
        self, query: str, filters: MessageFilter, limit: int
    ) -> list[tuple[Message, float]]:
        terms = search_terms(query)
        if not terms:
            return []
        scope, scope_params = "true", []
        if filters.agent_ids is not None:
            scope, scope_params = "l.agent_id = ANY(%s)", [list(filters.agent_ids)]
        where, params = message_where(filters, SQL)
        passes = " AND ".join(where) if filters.narrows else "true"
        params = params if filters.narrows else []
        join = "JOIN messages m ON m.seq = l.message_seq" if filters.narrows else ""
        with self._conn() as conn:
            corpus = self._message_corpus.size(
                tuple(sorted(filters.agent_ids)) if filters.agent_ids is not None else None,
                lambda limit: conn.execute(
                    f"SELECT count(*) AS n FROM (SELECT FROM message_lexemes l WHERE {scope}"
                    f" {'' if limit is None else f'LIMIT {limit}'}) c",
                    scope_params,
                ).fetchone()["n"],
            )
            # The messages to rank come from the GIN index, and from the agent index too while
            # the agents' messages are few; of many, the agent index would read them all.
            column = "l.agent_id" if corpus <= CORPUS_EXACT_MAX else "(l.agent_id || '')"
            agents = f"{column} = ANY(%s)" if filters.agent_ids is not None else "true"
            # Each term's postings, and those of the messages passing the filters, packed as
            # bm25.PACKED_POSTING. Of each matching message's tsvector only the query's
            # lexemes are unnested: setweight marks them, ts_filter keeps them. The planner
            # prices the tsquery test of a row too low and would scan every message.
            with conn.transaction():
                conn.execute("SET LOCAL enable_seqscan = off")
                rows = conn.execute(
                    f"SELECT t.term, string_agg({bm25.PACKED_POSTING}, ''::bytea) AS every,"
                    f" string_agg({bm25.PACKED_POSTING}, ''::bytea) FILTER (WHERE t.passes)"
                    " AS kept"
                    " FROM (SELECT u.lexeme AS term, l.message_seq AS passage_seq, l.doclen,"
                    f"        cardinality(u.positions) AS tf, {passes} AS passes"
                    f"       FROM message_lexemes l {join},"
                    "        unnest(ts_filter(setweight(l.lexemes, 'A', %s), '{a}')) u"
                    f"      WHERE l.lexemes @@ %s::tsquery AND {agents}) t"
                    " GROUP BY t.term",
                    [*params, terms, postgres_postings.any_of(terms), *scope_params],
                ).fetchall()
            found = {
                r["term"]: (np.sort(bm25.unpack(r["every"])), np.sort(bm25.unpack(r["kept"])))
                for r in rows
            }
            ranked = bm25.rank([found[t] for t in terms if t in found], corpus, limit)
            if not ranked:
                return []
            messages = {
                r["seq"]: shared.message(r)
                for r in conn.execute(
                    "SELECT * FROM messages WHERE seq = ANY(%s)",
                    [[seq for seq, _ in ranked]],
                )
            }
        return [(messages[seq], score) for seq, score in ranked if seq in messages]

    # ------------------------------------------------------------------ idempotency

    def claim_idempotency_key(self, key: str, request_hash: str) -> IdempotentResponse | None:
        with self._tx() as conn:
            conn.execute(
                "DELETE FROM idempotency_keys WHERE created_at < %s",
                (utcnow() - IDEMPOTENCY_TTL,),
            )
            conn.execute(
                "DELETE FROM idempotency_keys WHERE key = %s AND NOT complete AND created_at < %s",
                (key, utcnow() - STALE_CLAIM),
            )
            inserted = conn.execute(
                "INSERT INTO idempotency_keys (key, request_hash) VALUES (%s, %s)"
                " ON CONFLICT (key) DO NOTHING RETURNING key",
                (key, request_hash),
            ).fetchone()
            if inserted:
                return None
            row = conn.execute("SELECT * FROM idempotency_keys WHERE key = %s", (key,)).fetchone()
        return IdempotentResponse(
            request_hash=row["request_hash"],
            status_code=row["status_code"] or 0,
            body=bytes(row["body"] or b""),
            media_type=row["media_type"] or "",
            complete=bool(row["complete"]),
        )

    def complete_idempotency_key(
        self, key: str, status_code: int, body: bytes, media_type: str
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE idempotency_keys SET status_code = %s, body = %s, media_type = %s,"
                " complete = true WHERE key = %s",
                (status_code, body, media_type, key),
            )

    def release_idempotency_key(self, key: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM idempotency_keys WHERE key = %s AND NOT complete", (key,))


# ---------------------------------------------------------------------- mapping and SQL bits


def _safe(url: str) -> str:
    """The URL without its password, for error messages."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, _, credentials = head.partition("://")
    return f"{scheme}://{credentials.split(':')[0]}:***@{tail}"


class PostgresDialect:
    """PostgreSQL's side of the shared filters (filters.py): arrays, jsonb operators and
    timestamptz."""

    mark = "%s"

    def one_of(self, column: str, values: list[str]) -> Clause:
        # One value is an equality: `= ANY(array)` hides from the planner that an index on
        # (column, created_at, …) returns a single value's rows in order, so a newest-first
        # page would read and sort every row of the agent instead of the page.
        if len(values) == 1:
            return [f"{column} = %s"], [values[0]]
        return [f"{column} = ANY(%s)"], [list(values)]

    def contains(self, column: str) -> str:
        return f"strpos(lower({column}), lower(%s)) > 0"

    def tags(self, column: str, tags: list[str], match_all: bool) -> Clause:
        return [f"{column} {'?&' if match_all else '?|'} %s"], [list(tags)]

    def metadata(self, column: str, key: str, values: tuple[Any, ...]) -> Clause:
        return (
            ["(" + " OR ".join([f"{column} @> %s"] * len(values)) + ")"],
            [Jsonb({key: value}) for value in values],
        )

    def moment(self, value: datetime) -> datetime:
        return value


SQL = PostgresDialect()


def _insert_messages(conn: psycopg.Connection[Any], messages: Sequence[Message]) -> None:
    """Messages and their keyword lexemes; a message whose id is already stored is skipped."""
    if not messages:
        return
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO messages (id, agent_id, message_type, content, conversation_id,"
            " tool_name, tool_call_id, is_err, metadata, created_at, context)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (id) DO NOTHING RETURNING id, seq",
            [
                (
                    m.id,
                    m.agent_id,
                    m.message_type,
                    m.content,
                    m.conversation_id,
                    m.tool_name,
                    m.tool_call_id,
                    m.is_err,
                    Jsonb(m.metadata),
                    m.created_at,
                    " ".join(m.context),
                )
                for m in messages
            ],
            returning=True,
        )
        seqs = {}
        while True:
            seqs.update((row["id"], row["seq"]) for row in cursor.fetchall())
            if not cursor.nextset():
                break
    _write_message_lexemes(conn, [(m, seqs[m.id]) for m in messages if m.id in seqs])


def _write_message_lexemes(
    conn: psycopg.Connection[Any], messages: Sequence[tuple[Message, int]]
) -> None:
    """The keyword lexemes of messages just written (or re-analysed), each with its seq."""
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO message_lexemes (message_seq, agent_id, lexemes, doclen)"
            " VALUES (%s, %s, %s::tsvector, %s) ON CONFLICT (message_seq)"
            " DO UPDATE SET lexemes = excluded.lexemes, doclen = excluded.doclen",
            [
                (
                    seq,
                    m.agent_id,
                    *postgres_postings.tsvector(index_terms(m.content, m.context)),
                )
                for m, seq in messages
            ],
        )

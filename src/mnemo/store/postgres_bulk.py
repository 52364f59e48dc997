"""Writing passages into PostgreSQL in bulk: binary COPY of the rows, and the work a load into
an empty database defers to its end (row order, keyword postings, the HNSW index, planner
statistics)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from mnemo.config import DEFAULT_EMBEDDING
from mnemo.models import Passage
from mnemo.store import postgres_migrations, postgres_postings
from mnemo.store.postgres_vectors import VectorAdapter, in_hnsw
from mnemo.store.row_order import Neighbourhoods

log = logging.getLogger(__name__)

# What one COPY writes: passages, their embeddings, their bulk-load sort keys (row_order.py).
PassageBatch = tuple[Sequence[Passage], np.ndarray, list[int | None]]
COLUMNS = (
    "id, agent_id, text, tags, metadata, embedding_handle, embedding,"
    " created_at, updated_at, neighbourhood, context, lexemes"
)


class PassageCopier:
    """Binary COPY of passages (text formatting of 384 floats would dominate a load)."""

    def __init__(self, adapter: VectorAdapter) -> None:
        self._adapter = adapter

    def copy(self, conn: psycopg.Connection[Any], batch: PassageBatch) -> None:
        vector_oid = self._adapter.register(conn)
        with (
            conn.cursor() as cursor,
            cursor.copy(f"COPY passages ({COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(
                [
                    "text",
                    "text",
                    "text",
                    "jsonb",
                    "jsonb",
                    "text",
                    vector_oid,
                    "timestamptz",
                    "timestamptz",
                    "int4",
                    "text",
                    "text",
                ]
            )
            for row in self._rows(batch):
                copy.write_row(row)

    def insert(self, conn: psycopg.Connection[Any], batch: PassageBatch) -> None:
        """One INSERT statement: on an autocommit connection it is its own transaction, one
        round trip where BEGIN, COPY and COMMIT take four. For a few rows at a time."""
        self._adapter.register(conn)
        rows = list(self._rows(batch))
        row = "(" + ", ".join(["%s"] * len(rows[0])) + ")"
        conn.execute(
            f"INSERT INTO passages ({COLUMNS}) VALUES {', '.join([row] * len(rows))}",
            [value for r in rows for value in r],
        )

    @staticmethod
    def _rows(batch: PassageBatch) -> Iterator[tuple[Any, ...]]:
        passages, vectors, neighbourhoods = batch
        for p, v, n in zip(passages, vectors, neighbourhoods, strict=True):
            yield (
                p.id,
                p.agent_id,
                p.text,
                Jsonb(p.tags),
                Jsonb(p.metadata),
                p.embedding_handle,
                np.asarray(v, dtype=np.float32),
                p.created_at,
                p.updated_at,
                n,
                " ".join(p.context),
                postgres_postings.lexemes(p),
            )


def neighbourhoods_of(
    order: Neighbourhoods | None, passages: Sequence[Passage], vectors: np.ndarray
) -> list[int | None]:
    """During a bulk load, the sort key (row_order.py) of each passage the default model's HNSW
    index holds."""
    keys: list[int | None] = [None] * len(passages)
    if order is None:
        return keys
    indexed = [
        i
        for i, p in enumerate(passages)
        if p.embedding_handle == DEFAULT_EMBEDDING and in_hnsw(p.embedding_handle, len(vectors[i]))
    ]
    if indexed:
        assigned = order.assign([passages[i].id for i in indexed], vectors[indexed])
        for i, key in zip(indexed, assigned, strict=True):
            keys[i] = key
    return keys


def build_indexes(url: str, build_memory: str, order: Neighbourhoods | None) -> None:
    """After a bulk load: rows in neighbourhood order, keyword postings, the HNSW index, and
    planner statistics (fresh rows have none, and searches would plan sequential scans until
    autovacuum came round)."""
    # Its own connection: the session settings of a long build must not go back to the pool.
    with psycopg.connect(url, row_factory=dict_row) as conn:
        conn.execute("SET statement_timeout = 0")  # a large build takes minutes
        conn.execute("SELECT set_config('maintenance_work_mem', %s, false)", (build_memory,))
        began = time.perf_counter()
        if order is not None and order.learned:
            cluster_by_neighbourhood(conn, *order.backlog())
            conn.commit()
        ordered = time.perf_counter()
        postgres_postings.rebuild(conn)
        postings = time.perf_counter()
        for index in postgres_migrations.HNSW_INDEXES:
            conn.execute(index.create())
        conn.commit()
        hnsw = time.perf_counter()
        # The passages' visibility map is left to autovacuum: a search reads their rows from
        # the heap anyway (docs/postgres.md).
        conn.autocommit = True
        conn.execute("VACUUM (ANALYZE) posting_blocks")
        conn.execute("ANALYZE passages")
        log.info(
            "bulk load indexes: row order %.1f s, keyword postings %.1f s, HNSW %.1f s,"
            " statistics %.1f s",
            ordered - began,
            postings - ordered,
            hnsw - postings,
            time.perf_counter() - hnsw,
        )


def cluster_by_neighbourhood(
    conn: psycopg.Connection[Any], backlog_ids: list[str], backlog: list[int]
) -> None:
    """Rewrite the passages in neighbourhood order (row_order.py), for the HNSW build to read
    them so. CLUSTER holds searches off while it runs."""
    conn.execute(
        "UPDATE passages p SET neighbourhood = b.label"
        " FROM unnest(%s::text[], %s::integer[]) b (id, label) WHERE p.id = b.id",
        (backlog_ids, backlog),
    )
    conn.execute("CREATE INDEX passages_neighbourhood ON passages (neighbourhood)")
    conn.execute("CLUSTER passages USING passages_neighbourhood")
    conn.execute("DROP INDEX passages_neighbourhood")

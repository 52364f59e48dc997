"""Vector search on PostgreSQL: pgvector's HNSW indexes (cosine, one partial index per bundled
model) with iterative scans, so filters apply before the top k; an exact scan when the filtered
set is small, the embedder has no index, or the index returns too few rows.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.types import TypeInfo

from mnemo.errors import InvalidInput, StoreUnavailable
from mnemo.store import postgres_migrations
from mnemo.store.postgres_migrations import HNSW_BY_HANDLE, HnswIndex
from mnemo.store.shared import Expiring

EXACT_SCAN_MAX_ROWS = 2_000  # up to this many candidate rows an exact scan is cheap
LARGE_SCOPE_TTL = 300.0  # seconds a scope found too large for an exact scan is not counted again
SMALL_SCOPE_TTL = 30.0  # seconds a scope found small is scanned exactly without counting again
INDEXED_SIZE_TTL = 60.0  # seconds an HNSW index's size (auto_ef_search) and type are reused
EF_SEARCH_MAX = 1000  # pgvector's limit


class VectorSearch:
    """Plans and runs one vector search; keeps what it learned about the index for a while."""

    def __init__(
        self,
        adapter: VectorAdapter,
        exact_scan_max_rows: int = EXACT_SCAN_MAX_ROWS,
        ef_search: int = 0,
    ) -> None:
        if not 0 <= ef_search <= EF_SEARCH_MAX:
            raise InvalidInput(
                f"hnsw_ef_search must be between 1 and {EF_SEARCH_MAX} (pgvector's range), or 0"
                f" to grow it with the index; got {ef_search}"
            )
        self.adapter = adapter
        self.exact_scan_max_rows = exact_scan_max_rows
        self.ef_search = ef_search
        self._indexed = Expiring[str, int](INDEXED_SIZE_TTL)  # passages in each HNSW index
        self._graph_type = Expiring[str, str](INDEXED_SIZE_TTL)  # what each index holds
        self._large_scopes = Expiring[tuple[tuple[str, ...], str], bool](LARGE_SCOPE_TTL)
        self._small_scopes = Expiring[tuple[tuple[str, ...], str], bool](SMALL_SCOPE_TTL)

    def index_built(self) -> None:
        for index in postgres_migrations.HNSW_INDEXES:
            self._graph_type.put(index.name, postgres_migrations.HNSW_TYPE)

    def search(
        self,
        conn: psycopg.Connection[Any],
        vector: np.ndarray,
        handle: str,
        where: list[str],
        params: list[Any],
        narrow: bool,
        limit: int,
    ) -> list[tuple[str, float]]:
        """The `limit` passages nearest `vector` among those embedded by `handle` that pass
        `where` (on alias `p`). A `narrow` filter goes straight to the exact scan. The HNSW
        path runs in a transaction of its own (it sets hnsw.* locally)."""
        where = ["p.embedding_handle = %s", "p.embedding IS NOT NULL", *where]
        params = [handle, *params]
        literal = self.adapter.parameter(conn, vector)
        dims = len(vector)
        index = HNSW_BY_HANDLE.get(handle)
        if (
            index is not None
            and in_hnsw(handle, dims)
            and not narrow
            and self._over_exact_scan(conn, where, params)
        ):
            ef_search = self.ef_search or self._auto_ef_search(conn, index)
            ef_search = min(max(ef_search, limit), EF_SEARCH_MAX)
            indexed_where = [f"p.embedding_handle = {index.handle_literal}", *where[1:]]
            query = hnsw_query(index, self._hnsw_type(conn, index), indexed_where)
            with conn.transaction():
                conn.execute(
                    "SET LOCAL hnsw.iterative_scan = relaxed_order;"
                    f" SET LOCAL hnsw.ef_search = {ef_search}"
                )
                rows = conn.execute(query, [literal, *params[1:], literal, limit]).fetchall()
            # Fewer than asked for: the scope has shrunk since it was counted.
            if len(rows) >= limit:
                return sorted(((r["id"], float(r["score"])) for r in rows), key=lambda h: -h[1])
        return exact_scan(conn, literal, where, [*params, dims], limit)

    def _over_exact_scan(
        self, conn: psycopg.Connection[Any], where: list[str], params: list[Any]
    ) -> bool:
        """Whether the searched passages are too many for an exact scan. A scope found large
        stays large for LARGE_SCOPE_TTL seconds without being counted again."""
        key = (tuple(where), repr(params))
        if self._large_scopes.get(key):
            return True
        if self._small_scopes.get(key):
            return False  # exact either way: a scope that grew meanwhile costs a longer scan
        count = conn.execute(
            "SELECT count(*) AS n FROM (SELECT 1 FROM passages p"
            f" WHERE {' AND '.join(where)}"
            f" LIMIT {self.exact_scan_max_rows + 1}) c",
            params,
        ).fetchone()["n"]
        if count <= self.exact_scan_max_rows:
            self._small_scopes.put(key, True)
            return False
        self._large_scopes.put(key, True)
        return True

    def _auto_ef_search(self, conn: psycopg.Connection[Any], index: HnswIndex) -> int:
        size = self._indexed.get(index.name)
        if size is None:
            size = indexed_passages(conn, index)
            self._indexed.put(index.name, size)
        return auto_ef_search(size)

    def _hnsw_type(self, conn: psycopg.Connection[Any], index: HnswIndex) -> str:
        graph = self._graph_type.get(index.name)
        if graph is None:
            graph = postgres_migrations.hnsw_index_type(conn, index)
            self._graph_type.put(index.name, graph)
        return graph


def exact_scan(
    conn: psycopg.Connection[Any],
    vector: np.ndarray,
    where: list[str],
    params: list[Any],
    limit: int,
) -> list[tuple[str, float]]:
    """The `limit` passages passing `where` (alias `p`) nearest `vector`, by an exact cosine.
    Each row's distance is computed once, in a subquery the planner keeps (OFFSET 0), so no
    index is used and the embeddings are not copied out of the rows."""
    rows = conn.execute(
        "SELECT id, 1 - distance AS score FROM"
        " (SELECT p.id, p.seq, p.embedding <=> %s::vector AS distance FROM passages p"
        f"  WHERE {' AND '.join(where)} AND vector_dims(p.embedding) = %s OFFSET 0) c"
        " ORDER BY distance, seq LIMIT %s",
        [vector, *params, limit],
    ).fetchall()
    return [(r["id"], float(r["score"])) for r in rows]


def in_hnsw(handle: str, dimensions: int) -> bool:
    """Whether an HNSW index (one per bundled model) holds such embeddings."""
    index = HNSW_BY_HANDLE.get(handle)
    return index is not None and dimensions == index.dimension


def hnsw_query(index: HnswIndex, graph: str, where: list[str]) -> str:
    """The nearest passages by `index` on `graph` (`vector` or `halfvec`: the expression must be
    the index's for PostgreSQL to use it), scored at full precision. Parameters: the query
    vector, those of `where`, the query vector again, the limit."""
    dims = index.dimension
    return (
        f"SELECT p.id, 1 - ((p.embedding::vector({dims})) <=> %s::vector({dims})) AS score"
        f" FROM passages p WHERE {' AND '.join(where)}"
        f" ORDER BY (p.embedding::{graph}({dims})) <=> %s::{graph}({dims}) LIMIT %s"
    )


def indexed_passages(conn: psycopg.Connection[Any], index: HnswIndex) -> int:
    """About how many passages `index` holds, from PostgreSQL's statistics: the index's count is
    set when it is built, the table's by autovacuum as rows arrive (an upper bound)."""
    return conn.execute(
        "SELECT greatest((SELECT reltuples FROM pg_class"
        f"  WHERE oid = to_regclass('{index.name}')),"
        " (SELECT reltuples FROM pg_class WHERE oid = 'passages'::regclass), 0)::bigint AS n"
    ).fetchone()["n"]


def auto_ef_search(indexed: int) -> int:
    """HNSW ef_search that keeps recall@10 near 0.99 as the index grows: 100 up to ~166,000
    passages, then 600 per million, up to EF_SEARCH_MAX (the recall at each size:
    docs/postgres.md and docs/benchmarks.md)."""
    return min(max(100, -(-indexed * 600 // 1_000_000)), EF_SEARCH_MAX)


class VectorAdapter:
    """Numpy vectors as query parameters in pgvector's binary format: as text, a 768-float
    vector is 7.7 KB to format in Python and to parse in PostgreSQL, in each statement."""

    def __init__(self) -> None:
        self._dumper: type[VectorBinaryDumper] | None = None

    def register(self, conn: psycopg.Connection[Any]) -> int:
        """Send numpy arrays on `conn` as pgvector vectors; returns the type's oid."""
        if self._dumper is None:
            info = TypeInfo.fetch(conn, "vector")
            if info is None:
                raise StoreUnavailable("the pgvector extension is not installed in this database")
            self._dumper = type("VectorDumper", (VectorBinaryDumper,), {"oid": info.oid})
        conn.adapters.register_dumper(np.ndarray, self._dumper)
        return self._dumper.oid

    def parameter(self, conn: psycopg.Connection[Any], vector: np.ndarray) -> np.ndarray:
        self.register(conn)
        return np.asarray(vector, dtype=np.float32)


class VectorBinaryDumper(Dumper):
    """pgvector's binary input: dimensions and a reserved zero (uint16 each), then big-endian
    float4 values."""

    format = Format.BINARY

    def dump(self, obj: np.ndarray) -> bytes:
        values = np.asarray(obj, dtype=">f4")
        return struct.pack(">HH", values.shape[0], 0) + values.tobytes()

"""What both stores share: rows to domain objects, and keyset pagination. The SQL text of each
backend stays in its own module; a row here is anything indexed by column name (sqlite3.Row,
psycopg's dict_row)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from mnemo.errors import NotFound
from mnemo.models import Agent, Block, Message, Passage, parse_time
from mnemo.store.base import Page

Row = Mapping[str, Any]
K = TypeVar("K")
V = TypeVar("V")


class Connection(Protocol):
    def execute(self, sql: str, params: Any = ..., /) -> Any: ...


def decoded(value: Any) -> Any:
    """A JSON column: text in SQLite, already decoded by psycopg from jsonb."""
    return json.loads(value) if isinstance(value, str) else value


def moment(value: Any) -> datetime:
    """A time column: ISO text in SQLite, a datetime from PostgreSQL."""
    return value if isinstance(value, datetime) else parse_time(value)


def agent(row: Row) -> Agent:
    return Agent(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        system=row["system"],
        agent_type=row["agent_type"],
        model=row["model"],
        embedding=row["embedding"],
        tags=decoded(row["tags"]),
        metadata=decoded(row["metadata"]),
        timezone=row["timezone"],
        created_at=moment(row["created_at"]),
        updated_at=moment(row["updated_at"]),
    )


def block(row: Row) -> Block:
    return Block(
        id=row["id"],
        label=row["label"],
        value=row["value"],
        limit=row["char_limit"],
        description=row["description"],
        read_only=bool(row["read_only"]),
        metadata=decoded(row["metadata"]),
        tags=decoded(row["tags"]),
        owner_agent_id=row["owner_agent_id"],
        created_at=moment(row["created_at"]),
        updated_at=moment(row["updated_at"]),
    )


def passage(row: Row) -> Passage:
    return Passage(
        id=row["id"],
        agent_id=row["agent_id"],
        text=row["text"],
        tags=decoded(row["tags"]),
        metadata=decoded(row["metadata"]),
        embedding_handle=row["embedding_handle"],
        created_at=moment(row["created_at"]),
        updated_at=moment(row["updated_at"]),
        context=row["context"].split(),
    )


def message(row: Row) -> Message:
    return Message(
        id=row["id"],
        agent_id=row["agent_id"],
        message_type=row["message_type"],
        content=row["content"],
        conversation_id=row["conversation_id"],
        tool_name=row["tool_name"],
        tool_call_id=row["tool_call_id"],
        is_err=bool(row["is_err"]),
        metadata=decoded(row["metadata"]),
        created_at=moment(row["created_at"]),
        context=row["context"].split(),
    )


@dataclass(frozen=True)
class Listing:
    """What a keyset-paged listing reads: `select` over `table` aliased `alias`; `what` names
    its items in errors."""

    table: str
    alias: str
    what: str
    select: str


AGENTS = Listing("agents", "a", "agent", "SELECT a.* FROM agents a")
BLOCK_AGENTS = Listing(
    "agents", "a", "agent", "SELECT a.* FROM agents a JOIN agent_blocks ab ON ab.agent_id = a.id"
)
BLOCKS = Listing("blocks", "b", "block", "SELECT b.* FROM blocks b")
MESSAGES = Listing("messages", "m", "message", "SELECT m.* FROM messages m")
PASSAGES = Listing("passages", "p", "passage", "SELECT p.* FROM passages p")


def keyset_page(
    conn: Connection,
    page: Page,
    listing: Listing,
    where: list[str],
    params: list[Any],
    mark: str,
) -> list[Any]:
    """Rows in (created_at, seq) order strictly after/before the cursor ids of `page`.
    `mark` is the backend's parameter placeholder (`?` or `%s`)."""
    table, alias, what, select = listing.table, listing.alias, listing.what, listing.select
    where = list(where)
    params = list(params)
    for cursor, is_after in ((page.after, True), (page.before, False)):
        if not cursor:
            continue
        row = conn.execute(
            f"SELECT created_at, seq FROM {table} WHERE id = {mark}", (cursor,)
        ).fetchone()
        if row is None:
            raise NotFound(f"No {what} found with id {cursor!r} (pagination cursor)")
        # "after" means later in the sort order: greater when ascending, smaller when not.
        op = ">" if is_after == page.ascending else "<"
        where.append(f"({alias}.created_at, {alias}.seq) {op} ({mark}, {mark})")
        params.extend([row["created_at"], row["seq"]])
    # Only `before`: take the rows nearest the cursor, then restore the order.
    flip = bool(page.before and not page.after)
    direction = "ASC" if page.ascending != flip else "DESC"
    sql = f"{select} {'WHERE ' + ' AND '.join(where) if where else ''} "
    sql += f"ORDER BY {alias}.created_at {direction}, {alias}.seq {direction} LIMIT {mark}"
    rows = conn.execute(sql, [*params, page.limit]).fetchall()
    return rows[::-1] if flip else rows


class Expiring(Generic[K, V]):
    """Values kept for `ttl` seconds each; past `size` keys, all are dropped at once."""

    def __init__(self, ttl: float, size: int = 1024) -> None:
        self.ttl = ttl
        self.size = size
        self._values: dict[K, tuple[V, float]] = {}

    def get(self, key: K) -> V | None:
        found = self._values.get(key)
        return found[0] if found is not None and found[1] > time.monotonic() else None

    def put(self, key: K, value: V) -> None:
        if len(self._values) > self.size:
            self._values.clear()
        self._values[key] = (value, time.monotonic() + self.ttl)

    def clear(self) -> None:
        self._values.clear()


CORPUS_EXACT_MAX = 20_000  # scopes up to this size get an exact document count per search
CORPUS_TTL = 300.0  # seconds a larger scope's document count is reused


class CorpusSizes:
    """How many documents BM25's IDF is taken over, per searched scope: counted exactly up to
    `exact_max`; a larger scope's full count is reused for `ttl` seconds (a few thousand
    documents more or less barely move an IDF)."""

    def __init__(self, exact_max: int = CORPUS_EXACT_MAX, ttl: float = CORPUS_TTL) -> None:
        self.exact_max = exact_max
        self._large = Expiring[tuple[str, ...] | None, int](ttl)

    def size(self, scope: tuple[str, ...] | None, count: Callable[[int | None], int]) -> int:
        """The size of `scope`; `count(limit)` counts its documents, at most `limit` of them
        (all when None)."""
        cached = self._large.get(scope)
        if cached is not None:
            return cached
        counted = count(self.exact_max + 1)
        if counted <= self.exact_max:
            return counted
        counted = count(None)
        self._large.put(scope, counted)
        return counted

"""The WHERE clauses of listings and searches, written once for both stores: each backend
supplies a Dialect with the few SQL expressions that differ (placeholders, substring, tag and
JSON matching). A clause is a list of predicates joined by AND, and their parameters."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from mnemo.store.base import AgentFilter, BlockFilter, MessageFilter, PassageFilter

Clause = tuple[list[str], list[Any]]


class Dialect(Protocol):
    mark: str  # the parameter placeholder

    def one_of(self, column: str, values: list[str]) -> Clause:
        """`column` equals one of `values` (none: no row)."""
        ...

    def contains(self, column: str) -> str:
        """`column` contains the parameter, case-insensitively."""
        ...

    def tags(self, column: str, tags: list[str], match_all: bool) -> Clause:
        """The JSON array `column` holds any (or all) of `tags`."""
        ...

    def metadata(self, column: str, key: str, values: tuple[Any, ...]) -> Clause:
        """The JSON object `column` has `key` equal to one of `values`."""
        ...

    def moment(self, value: datetime) -> Any:
        """A time as the backend stores it."""
        ...


def agent_where(filters: AgentFilter, sql: Dialect) -> Clause:
    where = _Where()
    if filters.name is not None:
        where.add(f"a.name = {sql.mark}", filters.name)
    if filters.query_text:
        where.add(sql.contains("a.name"), filters.query_text)
    if filters.tags:
        where.extend(sql.tags("a.tags", filters.tags, filters.match_all_tags))
    return where.clause()


def block_where(filters: BlockFilter, sql: Dialect) -> Clause:
    where = _Where()
    if filters.label is not None:
        where.add(f"b.label = {sql.mark}", filters.label)
    for column, needle in (
        ("label", filters.label_search),
        ("value", filters.value_search),
        ("description", filters.description_search),
    ):
        if needle:
            where.add(sql.contains(f"coalesce(b.{column}, '')"), needle)
    if filters.tags:
        where.extend(sql.tags("b.tags", filters.tags, filters.match_all_tags))
    return where.clause()


def passage_where(filters: PassageFilter, sql: Dialect) -> Clause:
    """The agent predicate, when there is one, comes first: keyword search answers it from
    the postings and applies the rest to passage rows."""
    where = _Where()
    if filters.agent_ids is not None:
        where.extend(sql.one_of("p.agent_id", list(filters.agent_ids)))
    if filters.tags:
        where.extend(sql.tags("p.tags", filters.tags, filters.match_all_tags))
    if filters.start:
        where.add(f"p.created_at >= {sql.mark}", sql.moment(filters.start))
    if filters.end:
        where.add(f"p.created_at <= {sql.mark}", sql.moment(filters.end))
    for key, wanted in filters.metadata.items():
        values = wanted if isinstance(wanted, tuple) else (wanted,)
        where.extend(sql.metadata("p.metadata", key, values))
    if filters.contains:
        where.add(sql.contains("p.text"), filters.contains)
    return where.clause()


def message_where(filters: MessageFilter, sql: Dialect) -> Clause:
    where = _Where()
    if filters.agent_ids is not None:
        where.extend(sql.one_of("m.agent_id", list(filters.agent_ids)))
    if filters.conversation_id:
        where.add(f"m.conversation_id = {sql.mark}", filters.conversation_id)
    if filters.message_types:
        where.extend(sql.one_of("m.message_type", list(filters.message_types)))
    if filters.start:
        where.add(f"m.created_at >= {sql.mark}", sql.moment(filters.start))
    if filters.end:
        where.add(f"m.created_at <= {sql.mark}", sql.moment(filters.end))
    return where.clause()


class _Where:
    def __init__(self) -> None:
        self.predicates: list[str] = []
        self.params: list[Any] = []

    def add(self, predicate: str, *params: Any) -> None:
        self.predicates.append(predicate)
        self.params.extend(params)

    def extend(self, clause: Clause) -> None:
        predicates, params = clause
        self.predicates.extend(predicates)
        self.params.extend(params)

    def clause(self) -> Clause:
        return self.predicates, self.params

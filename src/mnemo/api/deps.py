"""Shared request plumbing: the service, id path parameters, paging and time parameters."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated, Any

from fastapi import Path, Request

from mnemo.errors import InvalidInput
from mnemo.models import ID_PATTERNS
from mnemo.service import MemoryService
from mnemo.store.base import Page

AgentId = Annotated[str, Path(pattern=ID_PATTERNS["agent"], description="agent-<uuid4>")]
BlockId = Annotated[str, Path(pattern=ID_PATTERNS["block"], description="block-<uuid4>")]


def get_service(request: Request) -> MemoryService:
    return request.app.state.service


def page(
    limit: int | None,
    after: str | None,
    before: str | None,
    order: str | None = None,
    *,
    default_limit: int,
    oldest_first: bool,
    ascending: bool | None = None,
) -> Page:
    """A Page from a listing's query parameters: `order` (asc/desc) wins over Letta's older
    `ascending`, which wins over the listing's own default order (`oldest_first`)."""
    if order is not None and order not in ("asc", "desc"):
        raise InvalidInput(f"order: must be 'asc' or 'desc', got {order!r}")
    is_ascending = oldest_first
    if ascending is not None:
        is_ascending = ascending
    if order is not None:
        is_ascending = order == "asc"
    return Page(
        limit=default_limit if limit is None else limit,
        after=after or None,
        before=before or None,
        ascending=is_ascending,
    )


def parse_bound(value: str | None, name: str, end: bool) -> datetime | None:
    """ISO datetime or YYYY-MM-DD; a date-only end bound means the end of that day."""
    if not value:
        return None
    try:
        if len(value) == 10:
            day = datetime.fromisoformat(value).date()
            return datetime.combine(day, time.max if end else time.min, tzinfo=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"{name}: not an ISO-8601 date or datetime: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def metadata_filter(request: Request) -> dict[str, Any]:
    """Query parameters `metadata.<key>=<value>` (mnemo extension). A query string has no types,
    so `42` matches the number 42 or the string "42", `true` the boolean or the string."""
    filters: dict[str, Any] = {}
    for name, raw in request.query_params.multi_items():
        if not name.startswith("metadata.") or len(name) == len("metadata."):
            continue
        filters[name.removeprefix("metadata.")] = loose_match(raw)
    return filters


def loose_match(raw: str) -> Any:
    """What a filter value from a query string or a form matches: the text, and the number
    or boolean it spells when it spells one (`42` matches 42 or "42")."""
    typed = loose_value(raw)
    return raw if typed == raw else (typed, raw)


def loose_value(raw: str) -> Any:
    if raw in ("true", "false"):
        return raw == "true"
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        return raw

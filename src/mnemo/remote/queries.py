"""The shapes of the API every client sends: paths, metadata filters and passage bodies, built
here once so the API's names and encodings live in one place."""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs a hook ~4 ms to import; annotations only
if TYPE_CHECKING:
    from typing import Any

SESSION_SUMMARY = "session_summary"


def agent_path(agent_id: str) -> str:
    return f"/v1/agents/{agent_id}"


def blocks_path(agent_id: str) -> str:
    return f"/v1/agents/{agent_id}/core-memory/blocks"


def passages_path(agent_id: str) -> str:
    return f"/v1/agents/{agent_id}/archival-memory"


def metadata_params(metadata: dict[str, Any] | None, type: str | None = None) -> dict[str, Any]:
    """`metadata.<key>=<value>` filters (a query string has no types: the server matches `42`
    to 42 or "42", `true` to the boolean or the string)."""
    filters = dict(metadata or {})
    if type:
        filters["type"] = type
    return {f"metadata.{key}": value for key, value in filters.items()}


def passage_body(
    text: str,
    type: str | None = None,
    tags: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A passage to store: its `type` goes into metadata and leads its tags."""
    meta = dict(metadata or {})
    all_tags = list(tags or [])
    if type:
        meta["type"] = type
        if type not in all_tags:
            all_tags.insert(0, type)
    return {"text": text, "tags": all_tags, "metadata": meta}

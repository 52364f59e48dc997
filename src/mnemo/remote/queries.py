"""The query shapes several clients send (hooks, MCP tools, the SDK, `mnemo status`): built
here once, so the API's parameter names and encodings live in one place."""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs a hook ~4 ms to import; annotations only
if TYPE_CHECKING:
    from typing import Any

SESSION_SUMMARY = "session_summary"


def passages_path(agent_id: str) -> str:
    return f"/v1/agents/{agent_id}/archival-memory"


def metadata_params(metadata: dict[str, Any] | None, type: str | None = None) -> dict[str, str]:
    """`metadata.<key>=<value>` filters (a query string has no types: the server matches `42`
    to 42 or "42", `true` to the boolean or the string)."""
    filters = dict(metadata or {})
    if type:
        filters["type"] = type
    return {f"metadata.{key}": encode(value) for key, value in filters.items()}


def encode(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def recent_sessions(limit: int) -> dict[str, Any]:
    """The newest `limit` session summaries, newest first (GET passages_path)."""
    return {"limit": limit, "ascending": "false", **metadata_params(None, SESSION_SUMMARY)}

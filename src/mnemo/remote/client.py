"""`mnemo.Client`: typed methods over the mnemo REST API, for the hooks, the MCP tools, the CLI,
the installer, scripts and CI jobs (standard library only, inside the hook import budget).

Every filter is sent to the server and applied there before ranking or paging; listing methods
page through results lazily.

    from mnemo import Client

    memory = Client()                                # MNEMO_URL / MNEMO_API_KEY / config file
    agent = memory.project_agent(".")                # the agent of the project in this folder
    memory.remember(agent, "Retries need jitter", type="decision", tags=["uploader"])
    for hit in memory.search(agent, "why do uploads retry", type="decision"):
        print(hit["score"], hit["content"])
"""

from __future__ import annotations

import os

from mnemo.remote import project, queries
from mnemo.remote.config import ClientConfig, state_dir
from mnemo.remote.errors import ClientError
from mnemo.remote.spool import Spool
from mnemo.remote.transport import HttpTransport

TYPE_CHECKING = False  # typing costs a hook ~4 ms to import; annotations only
if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime, timedelta
    from typing import Any

    from mnemo.remote.spool import Resolve
    from mnemo.remote.transport import Transport

    Json = dict[str, Any]
    When = str | datetime | timedelta | None

FAILURE_TYPES = ("test_failure", "command_failure", "incident", "command_fix")
PAGE = 200


class Client:
    """One mnemo server. Without `url` or `api_key`, they come from MNEMO_URL, MNEMO_API_KEY or
    the config file. With `spool_dir`, `write` queues what the server cannot take yet."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        *,
        connect_timeout: float = 2.0,
        headers: dict[str, str] | None = None,
        spool_dir: str | None = None,
        transport: Transport | None = None,
    ) -> None:
        if transport is None:
            if url is None or api_key is None:
                config = ClientConfig.load()
                url = url or config.url
                api_key = config.api_key if api_key is None else api_key
            transport = HttpTransport(url, api_key, connect_timeout, timeout, headers)
        self.transport = transport
        self.spool = Spool(spool_dir) if spool_dir else None

    @property
    def url(self) -> str:
        return self.transport.url

    def close(self) -> None:
        """Nothing to release (each request has its own connection); kept for `with`."""

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ requests

    def request(
        self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None
    ) -> Any:
        return self.transport.request(method, path, body, query=query)

    def write(
        self,
        method: str,
        path: str,
        body: Any,
        key: str | None = None,
        context: dict[str, str] | None = None,
    ) -> Any:
        """A write with an Idempotency-Key; queued in the spool (None returned) when the server
        cannot take it now. Without a spool it is simply sent."""
        if self.spool is None:
            return self.transport.request(method, path, body, idempotency_key=key)
        return self.spool.send(self.transport, method, path, body, key, context)

    def pending(self) -> int:
        """How many writes wait in the spool."""
        return self.spool.pending() if self.spool else 0

    def replay(self, deadline: float | None = None, resolve: Resolve | None = None) -> int:
        return self.spool.replay(self.transport, deadline, resolve) if self.spool else 0

    def health(self) -> bool:
        """Whether the server answers its health probe."""
        try:
            return bool(self.request("GET", "/v1/health/"))
        except (ClientError, ValueError):
            return False

    # ------------------------------------------------------------------ agents

    def agents(
        self, name: str | None = None, tags: list[str] | None = None, limit: int | None = None
    ) -> list[Json]:
        """Agents (optionally by exact name or any of `tags`), oldest first."""
        found: list[Json] = []
        query: dict[str, Any] = {"order": "asc", "name": name, "tags": tags}
        while limit is None or len(found) < limit:
            size = PAGE if limit is None else min(PAGE, limit - len(found))
            page = self.request("GET", "/v1/agents/", query={**query, "limit": size})
            found.extend(page)
            if len(page) < size:
                break
            query["after"] = page[-1]["id"]
        return found

    def agent(self, agent_id: str) -> Json:
        return self.request("GET", queries.agent_path(agent_id))

    def find_agent(self, id_or_name: str) -> Json:
        """An agent by id, or by name when exactly one agent has it."""
        if id_or_name.startswith("agent-"):
            return self.agent(id_or_name)
        found = self.agents(name=id_or_name)
        if len(found) != 1:
            raise ClientError(f"{len(found)} agents are named {id_or_name!r}; give the agent id")
        return found[0]

    def create_agent(self, agent: Json) -> Json:
        """Create an agent from a Letta `CreateAgent` body (name, memory_blocks, tags, …)."""
        return self.request("POST", "/v1/agents/", agent)

    def delete_agent(self, agent_id: str) -> None:
        self.request("DELETE", queries.agent_path(agent_id))

    def export_agent(self, agent_id: str) -> Json:
        """The agent as a Letta agent file (.af)."""
        return self.request("GET", f"{queries.agent_path(agent_id)}/export")

    def project_agent(self, directory: str = ".", create: bool = True) -> str:
        """The id of the agent the Claude Code hooks use for the project holding `directory`
        (created on first use, exactly as the hooks create it, unless `create` is false: then
        a project without memory is a ClientError)."""
        if not os.path.isdir(directory):
            raise ClientError(f"{directory}: no such directory")
        root = project.project_root(directory)
        try:
            return project.ensure_agent(self, state_dir(), root, verify=True, create=create)
        except LookupError as exc:
            raise ClientError(str(exc)) from None

    # ------------------------------------------------------------------ core memory blocks

    def blocks(self, agent_id: str) -> list[Json]:
        return self.request("GET", queries.blocks_path(agent_id))

    def block(self, agent_id: str, label: str) -> Json:
        return self.request("GET", f"{queries.blocks_path(agent_id)}/{label}")

    def append_to_block(self, agent_id: str, label: str, text: str) -> Json:
        """Append atomically on the server; the oldest text is dropped if the block would
        overflow (`trimmed_chars` in the answer says how much)."""
        return self.request(
            "POST", f"{queries.blocks_path(agent_id)}/{label}/append", {"text": text}
        )

    def replace_in_block(self, agent_id: str, label: str, old: str, new: str) -> Json:
        """Replace the one occurrence of `old` atomically on the server."""
        body = {"old": old, "new": new}
        return self.request("POST", f"{queries.blocks_path(agent_id)}/{label}/replace", body)

    def shared_blocks(self, label: str | None = None, tags: list[str] | None = None) -> list[Json]:
        return self.request(
            "GET", "/v1/blocks/", query={"label": label, "tags": tags, "limit": 1000}
        )

    def create_block(
        self,
        label: str,
        value: str,
        limit: int = 8000,
        description: str = "",
        tags: list[str] | None = None,
    ) -> Json:
        body = {"label": label, "value": value, "limit": limit, "description": description}
        return self.request("POST", "/v1/blocks/", {**body, "tags": tags or []})

    def update_block(self, block_id: str, **changes: Any) -> Json:
        return self.request("PATCH", f"/v1/blocks/{block_id}", changes)

    def delete_block(self, block_id: str) -> None:
        self.request("DELETE", f"/v1/blocks/{block_id}")

    def block_agents(self, block_id: str) -> list[Json]:
        return self.request("GET", f"/v1/blocks/{block_id}/agents", query={"limit": 1000})

    def attach(self, agent_id: str, block_id: str) -> None:
        self.request("PATCH", f"{queries.blocks_path(agent_id)}/attach/{block_id}")

    def detach(self, agent_id: str, block_id: str) -> None:
        self.request("PATCH", f"{queries.blocks_path(agent_id)}/detach/{block_id}")

    # ------------------------------------------------------------------ archival passages

    def remember(
        self,
        agent_id: str,
        text: str,
        type: str | None = None,
        tags: list[str] | None = None,
        metadata: Json | None = None,
        dedupe: bool = False,
    ) -> Json:
        """Store one passage; `type` goes to metadata and tags. With `dedupe`, a near-identical
        passage of the same type is merged into (the result then has `merged: true`)."""
        body = queries.passage_body(text, type, tags, metadata)
        return self.remember_many(agent_id, [body], dedupe)[0]

    def remember_many(self, agent_id: str, items: list[Json], dedupe: bool = False) -> list[Json]:
        """Store passages ({text, tags?, metadata?, created_at?}) in one all-or-nothing request."""
        body = {"passages": items, "dedupe": dedupe}
        return self.request("POST", f"{queries.passages_path(agent_id)}/batch", body)

    def search(
        self,
        agent_id: str,
        query: str,
        top_k: int = 10,
        type: str | None = None,
        tags: list[str] | None = None,
        since: When = None,
        until: When = None,
        metadata: Json | None = None,
        mode: str | None = None,
    ) -> list[Json]:
        """The passages that best match `query` among those that pass every filter (applied
        before ranking). `mode`: hybrid (the server's default), lexical or vector."""
        params = {
            "query": query,
            "top_k": top_k,
            "tags": tags,
            "mode": mode,
            **_bounds(since, until),
            **queries.metadata_params(metadata, type),
        }
        return self.request("GET", f"{queries.passages_path(agent_id)}/search", query=params)[
            "results"
        ]

    def passages(
        self,
        agent_id: str,
        type: str | None = None,
        tags: list[str] | None = None,
        since: When = None,
        until: When = None,
        metadata: Json | None = None,
        contains: str | None = None,
        newest_first: bool = True,
        limit: int | None = None,
    ) -> Iterator[Json]:
        """Passages that pass every filter, newest first by default, paged lazily."""
        params: dict[str, Any] = {
            "tags": tags,
            "search": contains,
            "ascending": not newest_first,
            **_bounds(since, until),
            **queries.metadata_params(metadata, type),
        }
        left = limit
        while left is None or left > 0:
            size = PAGE if left is None else min(PAGE, left)
            page = self.request(
                "GET", queries.passages_path(agent_id), query={**params, "limit": size}
            )
            yield from page
            if len(page) < size:
                return
            params["after"] = page[-1]["id"]
            if left is not None:
                left -= len(page)

    def session_summaries(self, agent_id: str, limit: int = 5) -> list[Json]:
        """The newest `limit` Claude Code session summaries, newest first."""
        return list(self.passages(agent_id, type=queries.SESSION_SUMMARY, limit=limit))

    def passage(self, agent_id: str, passage_id: str) -> Json:
        return self.request("GET", f"{queries.passages_path(agent_id)}/{passage_id}")

    def update_passage(
        self,
        agent_id: str,
        passage_id: str,
        text: str | None = None,
        tags: list[str] | None = None,
        metadata: Json | None = None,
    ) -> Json:
        """Change a passage in place; `metadata` is merged (a key set to None is removed)."""
        body = _clean({"text": text, "tags": tags, "metadata": metadata})
        return self.request("PATCH", f"{queries.passages_path(agent_id)}/{passage_id}", body)

    def forget(self, agent_id: str, passage_id: str) -> None:
        self.request("DELETE", f"{queries.passages_path(agent_id)}/{passage_id}")

    def count(self, agent_id: str) -> int:
        return self.request("GET", f"{queries.passages_path(agent_id)}/count")

    def prune(
        self,
        agent_id: str,
        type: str | None = None,
        older_than_days: float | None = None,
        keep_latest: int | None = None,
        dry_run: bool = False,
    ) -> Json:
        """Apply a retention policy; returns {matched, deleted, passages}."""
        body = {
            "metadata": {"type": type} if type else None,
            "older_than_days": older_than_days,
            "keep_latest": keep_latest,
            "dry_run": dry_run,
        }
        return self.request("POST", f"{queries.passages_path(agent_id)}/prune", _clean(body))

    # ------------------------------------------------------------------ recall messages

    def search_messages(
        self,
        agent_id: str,
        query: str,
        limit: int = 10,
        session_id: str | None = None,
        start_date: When = None,
        end_date: When = None,
    ) -> list[Json]:
        """Past conversation messages matching `query` (one Claude Code session: `session_id`),
        between `start_date` and `end_date` (as `search` reads `since` and `until`)."""
        params = {
            "query": query,
            "limit": limit,
            "conversation_id": session_id,
            "start_date": _bound(start_date),
            "end_date": _bound(end_date),
        }
        return self.request("GET", f"{queries.agent_path(agent_id)}/messages/search", query=params)

    # ------------------------------------------------------------------ search helpers

    def similar_bugs(self, agent_id: str, error_text: str, top_k: int = 5) -> list[Json]:
        """Past failures, incidents and fixes whose text resembles this error."""
        return self.search(agent_id, error_text, top_k=top_k, tags=list(FAILURE_TYPES))

    def file_history(
        self, agent_id: str, path: str, limit: int = 20, since: When = None
    ) -> list[Json]:
        """Everything recorded about a file, newest first: edits (metadata.path) and failures
        located in it (metadata.file)."""
        changes = self.passages(agent_id, metadata={"path": path}, since=since, limit=limit)
        failures = self.passages(agent_id, metadata={"file": path}, since=since, limit=limit)
        merged = {p["id"]: p for p in [*changes, *failures]}.values()
        return sorted(merged, key=lambda p: p["created_at"], reverse=True)[:limit]

    def decisions(self, agent_id: str, query: str | None = None, limit: int = 20) -> Json:
        """The architecture-decision log block (if attached) and `decision` passages."""
        log = next((b for b in self.blocks(agent_id) if b["label"] == "adr_log"), None)
        if query:
            found = self.search(agent_id, query, top_k=limit, type="decision")
        else:
            found = list(self.passages(agent_id, type="decision", limit=limit))
        return {"adr_log": log["value"] if log else None, "decisions": found}

    def deployments(
        self, agent_id: str, environment: str | None = None, limit: int = 20
    ) -> list[Json]:
        metadata = {"environment": environment} if environment else None
        return list(self.passages(agent_id, type="deployment", metadata=metadata, limit=limit))

    def recent(
        self, agent_id: str, since: When = "7d", type: str | None = None, limit: int = 50
    ) -> list[Json]:
        """What was learned lately: passages since a time, newest first."""
        return list(self.passages(agent_id, type=type, since=since, limit=limit))

    def by_metadata(self, agent_id: str, limit: int = 50, **metadata: Any) -> list[Json]:
        return list(self.passages(agent_id, metadata=metadata, limit=limit))


def since_datetime(since: When) -> datetime | None:
    """`7d`, `12h`, `30m`, `2w`, an ISO date/datetime, a datetime or a timedelta → a datetime."""
    from datetime import UTC, datetime, timedelta

    if since is None or isinstance(since, datetime):
        return since
    if isinstance(since, timedelta):
        return datetime.now(UTC) - since
    text = since.strip()
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    if len(text) > 1 and text[-1] in units and text[:-1].replace(".", "", 1).isdigit():
        return datetime.now(UTC) - timedelta(**{units[text[-1]]: float(text[:-1])})
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a time: {since!r} (use 7d, 12h, 2w or an ISO date)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _bounds(since: When, until: When) -> Json:
    """Time filters: a relative or typed time as an instant; an ISO date or datetime as
    written (checked here), so the server reads a bare end date as that whole day."""
    return {"start_datetime": _bound(since), "end_datetime": _bound(until)}


def _bound(value: When) -> str | None:
    instant = since_datetime(value)
    if isinstance(value, str) and value.strip()[-1:].isdigit():
        return value.strip()
    return instant.isoformat() if instant else None


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}

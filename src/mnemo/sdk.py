"""`mnemo.Client`: the Python client for scripts, CI jobs and the CLI.

Small, synchronous, typed, over HTTP (httpx). Every filter is sent to the server and applied
there before ranking or paging; listing helpers page through results lazily.

    from mnemo import Client

    memory = Client()                                # MNEMO_URL / MNEMO_API_KEY / config file
    agent = memory.project_agent(".")                # the agent of the project in this folder
    memory.remember(agent, "Retries need jitter", type="decision", tags=["uploader"])
    for hit in memory.search(agent, "why do uploads retry", type="decision"):
        print(hit["score"], hit["content"])
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from mnemo.claude.config import ClientConfig
from mnemo.remote import queries
from mnemo.remote.errors import ApiError, ClientError, Unreachable

Json = dict[str, Any]
FAILURE_TYPES = ("test_failure", "command_failure", "incident", "command_fix")
PAGE = 200


def since_datetime(since: str | datetime | timedelta | None) -> datetime | None:
    """`7d`, `12h`, `30m`, `2w`, an ISO date/datetime, a datetime or a timedelta → a datetime."""
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


class Client:
    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        config = ClientConfig.load()
        self.url = (url or config.url).rstrip("/")
        key = config.api_key if api_key is None else api_key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transport

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise Unreachable(f"cannot reach the mnemo server at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ApiError(response.status_code, str(detail))
        return response.json() if response.content else None

    # ------------------------------------------------------------------ agents

    def agents(self, name: str | None = None, tags: list[str] | None = None) -> list[Json]:
        """Every agent (optionally by exact name or any of `tags`), oldest first."""
        found: list[Json] = []
        params: dict[str, Any] = {"limit": PAGE, "order": "asc", "name": name, "tags": tags}
        while True:
            page = self.request("GET", "/v1/agents/", params=_clean(params))
            found.extend(page)
            if len(page) < PAGE:
                return found
            params["after"] = page[-1]["id"]

    def agent(self, agent_id: str) -> Json:
        return self.request("GET", f"/v1/agents/{agent_id}")

    def find_agent(self, id_or_name: str) -> Json:
        """An agent by id, or by name when exactly one agent has it."""
        if id_or_name.startswith("agent-"):
            return self.agent(id_or_name)
        found = self.agents(name=id_or_name)
        if len(found) != 1:
            raise ClientError(f"{len(found)} agents are named {id_or_name!r}; give the agent id")
        return found[0]

    def project_agent(self, directory: str = ".", create: bool = True) -> str:
        """The id of the agent the Claude Code hooks use for the project holding `directory`
        (created on first use, exactly as the hooks create it, unless `create` is false: then
        a project without memory is a ClientError)."""
        import os

        from mnemo.claude import project
        from mnemo.claude.config import state_dir
        from mnemo.client import MnemoClient

        auth = self._http.headers.get("Authorization", "")
        lite = MnemoClient(self.url, auth.removeprefix("Bearer "), read_timeout=30.0)
        if not os.path.isdir(directory):
            raise ClientError(f"{directory}: no such directory")
        root = project.project_root(directory)
        try:
            return project.ensure_agent(lite, state_dir(), root, verify=True, create=create)
        except LookupError as exc:
            raise ClientError(str(exc)) from None

    def delete_agent(self, agent_id: str) -> None:
        self.request("DELETE", f"/v1/agents/{agent_id}")

    # ------------------------------------------------------------------ core memory blocks

    def blocks(self, agent_id: str) -> list[Json]:
        return self.request("GET", f"/v1/agents/{agent_id}/core-memory/blocks")

    def shared_blocks(self, label: str | None = None, tags: list[str] | None = None) -> list[Json]:
        params = _clean({"label": label, "tags": tags, "limit": 1000})
        return self.request("GET", "/v1/blocks/", params=params)

    def create_block(
        self,
        label: str,
        value: str,
        limit: int = 8000,
        description: str = "",
        tags: list[str] | None = None,
    ) -> Json:
        body = {"label": label, "value": value, "limit": limit, "description": description}
        return self.request("POST", "/v1/blocks/", json={**body, "tags": tags or []})

    def update_block(self, block_id: str, **changes: Any) -> Json:
        return self.request("PATCH", f"/v1/blocks/{block_id}", json=changes)

    def delete_block(self, block_id: str) -> None:
        self.request("DELETE", f"/v1/blocks/{block_id}")

    def block_agents(self, block_id: str) -> list[Json]:
        return self.request("GET", f"/v1/blocks/{block_id}/agents", params={"limit": 1000})

    def attach(self, agent_id: str, block_id: str) -> None:
        self.request("PATCH", f"/v1/agents/{agent_id}/core-memory/blocks/attach/{block_id}")

    def detach(self, agent_id: str, block_id: str) -> None:
        self.request("PATCH", f"/v1/agents/{agent_id}/core-memory/blocks/detach/{block_id}")

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
        return self.remember_many(agent_id, [_passage(text, type, tags, metadata)], dedupe)[0]

    def remember_many(self, agent_id: str, items: list[Json], dedupe: bool = False) -> list[Json]:
        """Store passages ({text, tags?, metadata?, created_at?}) in one all-or-nothing request."""
        body = {"passages": items, "dedupe": dedupe}
        return self.request("POST", f"/v1/agents/{agent_id}/archival-memory/batch", json=body)

    def search(
        self,
        agent_id: str,
        query: str,
        top_k: int = 10,
        type: str | None = None,
        tags: list[str] | None = None,
        since: str | datetime | timedelta | None = None,
        until: str | datetime | None = None,
        metadata: Json | None = None,
        mode: str = "hybrid",
    ) -> list[Json]:
        """Hybrid search among the passages that pass every filter (applied before ranking)."""
        params = {
            "query": query,
            "top_k": top_k,
            "tags": tags,
            "mode": mode,
            **_bounds(since, until),
            **queries.metadata_params(metadata, type),
        }
        path = f"/v1/agents/{agent_id}/archival-memory/search"
        return self.request("GET", path, params=_clean(params))["results"]

    def passages(
        self,
        agent_id: str,
        type: str | None = None,
        tags: list[str] | None = None,
        since: str | datetime | timedelta | None = None,
        until: str | datetime | None = None,
        metadata: Json | None = None,
        contains: str | None = None,
        newest_first: bool = True,
        limit: int | None = None,
    ) -> Iterator[Json]:
        """Passages that pass every filter, newest first by default, paged lazily."""
        params: dict[str, Any] = {
            "tags": tags,
            "search": contains,
            "ascending": "false" if newest_first else "true",
            **_bounds(since, until),
            **queries.metadata_params(metadata, type),
        }
        left = limit
        while left is None or left > 0:
            size = PAGE if left is None else min(PAGE, left)
            page = self.request(
                "GET",
                f"/v1/agents/{agent_id}/archival-memory",
                params=_clean({**params, "limit": size}),
            )
            yield from page
            if len(page) < size:
                return
            params["after"] = page[-1]["id"]
            if left is not None:
                left -= len(page)

    def passage(self, agent_id: str, passage_id: str) -> Json:
        return self.request("GET", f"/v1/agents/{agent_id}/archival-memory/{passage_id}")

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
        return self.request(
            "PATCH", f"/v1/agents/{agent_id}/archival-memory/{passage_id}", json=body
        )

    def forget(self, agent_id: str, passage_id: str) -> None:
        self.request("DELETE", f"/v1/agents/{agent_id}/archival-memory/{passage_id}")

    def count(self, agent_id: str) -> int:
        return self.request("GET", f"/v1/agents/{agent_id}/archival-memory/count")

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
        return self.request(
            "POST", f"/v1/agents/{agent_id}/archival-memory/prune", json=_clean(body)
        )

    # ------------------------------------------------------------------ search helpers

    def similar_bugs(self, agent_id: str, error_text: str, top_k: int = 5) -> list[Json]:
        """Past failures, incidents and fixes whose text resembles this error."""
        return self.search(agent_id, error_text, top_k=top_k, tags=list(FAILURE_TYPES))

    def file_history(self, agent_id: str, path: str, limit: int = 20) -> list[Json]:
        """Everything recorded about a file, newest first: edits (metadata.path) and failures
        located in it (metadata.file)."""
        changes = list(self.passages(agent_id, metadata={"path": path}, limit=limit))
        failures = list(self.passages(agent_id, metadata={"file": path}, limit=limit))
        merged = {p["id"]: p for p in changes + failures}.values()
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
        self,
        agent_id: str,
        since: str | datetime | timedelta = "7d",
        type: str | None = None,
        limit: int = 50,
    ) -> list[Json]:
        """What was learned lately: passages since a time, newest first."""
        return list(self.passages(agent_id, type=type, since=since, limit=limit))

    def by_metadata(self, agent_id: str, limit: int = 50, **metadata: Any) -> list[Json]:
        return list(self.passages(agent_id, metadata=metadata, limit=limit))


def _passage(text: str, type: str | None, tags: list[str] | None, metadata: Json | None) -> Json:
    meta = dict(metadata or {})
    all_tags = list(tags or [])
    if type:
        meta["type"] = type
        if type not in all_tags:
            all_tags.insert(0, type)
    return {"text": text, "tags": all_tags, "metadata": meta}


def _bounds(since: str | datetime | timedelta | None, until: str | datetime | None) -> Json:
    start = since_datetime(since)
    end = since_datetime(until) if isinstance(until, str) else until
    return {
        "start_datetime": start.isoformat() if start else None,
        "end_datetime": end.isoformat() if end else None,
    }


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}

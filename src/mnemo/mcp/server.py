"""The MCP server: memory tools on the official `mcp` SDK, over stdio and streamable HTTP.

Tools talk to the memory server's HTTP API (the same path the hooks use), so `mnemo mcp` over
stdio and `/mcp` on any replica behave the same. Results are compact by default (a search
returns an index; `memory_get` returns full text) and capped in size.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from mnemo import __version__
from mnemo.remote import project
from mnemo.remote.client import Client
from mnemo.remote.config import state_dir
from mnemo.remote.errors import ApiError, Unreachable

T = TypeVar("T")
DEFAULT_MAX_CHARS = 32_000  # about 8,000 tokens

INSTRUCTIONS = (
    "Long-term memory of this project (mnemo). Search before re-investigating a problem "
    "(memory_search, then memory_get for full text); store decisions, causes of bugs and "
    "conventions with memory_remember; keep core memory blocks current with core_memory_append "
    "and core_memory_replace. Search results are an index: id, score, date, type, preview."
)

READ = ToolAnnotations(
    readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False
)
WRITE = ToolAnnotations(
    readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False
)
EDIT = ToolAnnotations(
    readOnlyHint=False, destructiveHint=True, idempotentHint=False, openWorldHint=False
)
DELETE = ToolAnnotations(
    readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False
)

AgentParam = Annotated[
    str | None,
    Field(description="Agent to use; default: the agent of the project this server runs in"),
]


class Memory:
    """What the tools need: a client, the default agent, and the output cap."""

    def __init__(
        self,
        client: Client,
        project_dir: str | None,
        max_chars: int = DEFAULT_MAX_CHARS,
        pinned_agent: str = "",
    ) -> None:
        self.client = client
        self.project_dir = project_dir
        self.max_chars = max_chars
        self.pinned_agent = pinned_agent  # agent_id from the config: every tool uses it

    def agent(self, agent_id: str | None) -> str:
        if agent_id:
            return agent_id
        if self.pinned_agent:
            return self.pinned_agent
        if not self.project_dir:
            raise ToolError("No project is known to this MCP server: pass agent_id explicitly.")
        return project.ensure_agent(
            self.client, state_dir(), project.project_root(self.project_dir)
        )

    def call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`method(*args, **kwargs)`, one of the client's, with its failure as a ToolError."""
        try:
            return method(*args, **kwargs)
        except Unreachable as exc:
            raise ToolError(
                f"The mnemo server at {self.client.url} is not reachable: "
                "start it with `mnemo serve`."
            ) from exc
        except ApiError as exc:
            raise ToolError(f"mnemo refused the request ({exc.status}): {exc.detail}") from exc

    def cap(self, text: str) -> str:
        if len(text) <= self.max_chars:
            return text
        cut = text[: self.max_chars].rsplit("\n", 1)[0]
        return (
            f"{cut}\n[truncated: {len(text) - len(cut)} more characters not shown. Lower `limit`, "
            "narrow the filters, or fetch specific ids with memory_get.]"
        )


def _preview(text: str, width: int = 140) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def build_server(memory: Memory, max_threads: int = 8) -> MCPServer:
    """The tools run in at most `max_threads` threads of their own: inside `mnemo serve` they
    call that server's API, and must never hold every thread its requests need."""
    server = MCPServer(name="mnemo", version=__version__, instructions=INSTRUCTIONS)
    threads = anyio.CapacityLimiter(max_threads)

    async def run(fn: Callable[[], T]) -> T:
        try:
            return await anyio.to_thread.run_sync(fn, limiter=threads)
        except ToolError:
            raise
        except (OSError, ValueError) as exc:
            raise ToolError(f"{type(exc).__name__}: {exc}") from exc

    @server.tool(annotations=READ, structured_output=False)
    async def memory_search(
        query: Annotated[str, Field(description="What to look for, in words or exact identifiers")],
        type: Annotated[
            str | None,
            Field(
                description="Only this memory type, e.g. command_failure, session_summary, decision"
            ),
        ] = None,
        tags: Annotated[
            list[str] | None, Field(description="Only memories with any of these tags")
        ] = None,
        metadata: Annotated[
            dict[str, Any] | None, Field(description="Exact matches on metadata keys")
        ] = None,
        start_date: Annotated[
            str | None, Field(description="ISO date or datetime, inclusive")
        ] = None,
        end_date: Annotated[
            str | None, Field(description="ISO date or datetime, inclusive")
        ] = None,
        limit: Annotated[int, Field(ge=1, le=100, description="How many results")] = 10,
        agent_id: AgentParam = None,
    ) -> str:
        """Search long-term memory (keywords and meaning). Returns a compact index, one line per
        memory: id | score | date | type | preview. Use memory_get for the full text."""

        def work() -> str:
            agent = memory.agent(agent_id)
            found = memory.call(
                memory.client.search,
                agent,
                query,
                top_k=limit,
                type=type,
                tags=tags or None,
                since=start_date,
                until=end_date,
                metadata=metadata,
            )
            if not found:
                return "No memories match."
            lines = [
                f"{r['id']} | {r['score']:.4f} | {r['timestamp'][:10]} | "
                f"{(r.get('metadata') or {}).get('type', 'memory')} | {_preview(r['content'])}"
                for r in found
            ]
            return memory.cap("\n".join(lines))

        return await run(work)

    @server.tool(annotations=READ, structured_output=False)
    async def memory_list(
        type: Annotated[
            str | None,
            Field(description="Only this type, e.g. file_change, deployment, test_failure"),
        ] = None,
        path: Annotated[
            str | None,
            Field(description="History of one file: edits to it and failures located in it"),
        ] = None,
        metadata: Annotated[
            dict[str, Any] | None,
            Field(description='Exact matches on metadata keys, e.g. {"environment": "prod"}'),
        ] = None,
        start_date: Annotated[
            str | None, Field(description="ISO date or datetime, inclusive")
        ] = None,
        limit: Annotated[int, Field(ge=1, le=100, description="How many memories")] = 20,
        agent_id: AgentParam = None,
    ) -> str:
        """Newest memories first, filtered on the server: a file's history, deployments to an
        environment, what was learned since a date. One line per memory: id | date | type |
        preview."""

        def work() -> str:
            agent = memory.agent(agent_id)
            by_path = [{"path": path}, {"file": path}] if path else [{}]
            found: dict[str, dict[str, Any]] = {}
            for where in by_path:
                matching = {**(metadata or {}), **where}
                listed = memory.call(
                    lambda m=matching: list(
                        memory.client.passages(
                            agent, type=type, metadata=m, since=start_date, limit=limit
                        )
                    )
                )
                found.update((row["id"], row) for row in listed)
            rows = sorted(found.values(), key=lambda r: r["created_at"], reverse=True)[:limit]
            if not rows:
                return "No memories match."
            lines = [
                f"{r['id']} | {r['created_at'][:16]} | "
                f"{(r.get('metadata') or {}).get('type', 'memory')} | {_preview(r['text'])}"
                for r in rows
            ]
            return memory.cap("\n".join(lines))

        return await run(work)

    @server.tool(annotations=READ, structured_output=False)
    async def memory_get(
        ids: Annotated[
            list[str],
            Field(min_length=1, max_length=50, description="Passage ids from memory_search"),
        ],
        agent_id: AgentParam = None,
    ) -> str:
        """Full text, tags and metadata of memories by id."""

        def work() -> str:
            agent = memory.agent(agent_id)
            parts = []
            for passage_id in ids:
                p = memory.call(memory.client.passage, agent, passage_id)
                parts.append(
                    f"## {p['id']} ({p['created_at'][:19]}, tags: {', '.join(p['tags']) or '-'}, "
                    f"metadata: {p['metadata']})\n{p['text']}"
                )
            return memory.cap("\n\n".join(parts))

        return await run(work)

    @server.tool(annotations=WRITE, structured_output=False)
    async def memory_remember(
        text: Annotated[
            str, Field(min_length=1, description="The fact, decision or lesson, self-contained")
        ],
        type: Annotated[
            str, Field(description="Kind of memory: decision, convention, bug_cause, note, ...")
        ] = "note",
        tags: Annotated[
            list[str] | None, Field(description="Short labels to filter by later")
        ] = None,
        metadata: Annotated[
            dict[str, Any] | None, Field(description="Extra structured fields")
        ] = None,
        agent_id: AgentParam = None,
    ) -> str:
        """Store a memory for future sessions. Secrets are redacted; an identical memory already
        stored is not stored twice."""

        def work() -> str:
            agent = memory.agent(agent_id)
            same = memory.call(memory.client.search, agent, text, top_k=5, mode="lexical")
            for result in same:
                if " ".join(result["content"].split()) == " ".join(text.split()):
                    return f"Already remembered as {result['id']}."
            meta = {**(metadata or {}), "source": "mcp"}
            created = memory.call(memory.client.remember, agent, text, type, tags, meta)
            return f"Remembered as {created['id']}."

        return await run(work)

    @server.tool(annotations=DELETE, structured_output=False)
    async def memory_forget(
        id: Annotated[str, Field(description="Passage id to delete")],
        agent_id: AgentParam = None,
    ) -> str:
        """Delete one memory permanently (for wrong or outdated facts)."""

        def work() -> str:
            agent = memory.agent(agent_id)
            memory.call(memory.client.forget, agent, id)
            return f"Forgot {id}."

        return await run(work)

    @server.tool(annotations=READ, structured_output=False)
    async def core_memory_list(agent_id: AgentParam = None) -> str:
        """The core memory blocks always shown at session start: label, size, limit, description."""

        def work() -> str:
            agent = memory.agent(agent_id)
            blocks = memory.call(memory.client.blocks, agent)
            return (
                "\n".join(
                    f"{b['label']}: {len(b['value'])}/{b['limit']} chars"
                    f"{' (read-only)' if b['read_only'] else ''} — {b.get('description') or ''}"
                    for b in blocks
                )
                or "No core memory blocks."
            )

        return await run(work)

    @server.tool(annotations=READ, structured_output=False)
    async def core_memory_read(
        label: Annotated[
            str, Field(description="Block label, e.g. human, project_context, learnings")
        ],
        agent_id: AgentParam = None,
    ) -> str:
        """The full value of one core memory block."""

        def work() -> str:
            agent = memory.agent(agent_id)
            block = memory.call(memory.client.block, agent, label)
            return memory.cap(block["value"] or "(empty)")

        return await run(work)

    def _writable(agent: str, label: str) -> dict[str, Any]:
        block = memory.call(memory.client.block, agent, label)
        if block["read_only"]:
            raise ToolError(
                f"Block {label!r} is read-only; it can only be changed by a person through the API."
            )
        return block

    @server.tool(annotations=WRITE, structured_output=False)
    async def core_memory_append(
        label: Annotated[str, Field(description="Block label")],
        text: Annotated[str, Field(min_length=1, description="Text to add at the end")],
        agent_id: AgentParam = None,
    ) -> str:
        """Append to a core memory block; the oldest text is dropped if the block would overflow."""

        def work() -> str:
            agent = memory.agent(agent_id)
            _writable(agent, label)
            block = memory.call(memory.client.append_to_block, agent, label, text)
            trimmed = (
                f"; {block['trimmed_chars']} oldest characters dropped"
                if block["trimmed_chars"]
                else ""
            )
            return f"Appended to {label} ({len(block['value'])}/{block['limit']} chars{trimmed})."

        return await run(work)

    @server.tool(annotations=EDIT, structured_output=False)
    async def core_memory_replace(
        label: Annotated[str, Field(description="Block label")],
        old: Annotated[
            str, Field(min_length=1, description="Exact text to replace (must occur once)")
        ],
        new: Annotated[str, Field(description="Replacement text; empty to delete")],
        agent_id: AgentParam = None,
    ) -> str:
        """Replace one exact passage of text inside a core memory block."""

        def work() -> str:
            agent = memory.agent(agent_id)
            _writable(agent, label)
            block = memory.call(memory.client.replace_in_block, agent, label, old, new)
            return f"Replaced in {label} ({len(block['value'])}/{block['limit']} chars)."

        return await run(work)

    @server.tool(annotations=READ, structured_output=False)
    async def recall_search(
        query: Annotated[str, Field(description="Words from the conversation to find")],
        session_id: Annotated[
            str | None, Field(description="Only this Claude Code session")
        ] = None,
        start_date: Annotated[str | None, Field(description="ISO date, inclusive")] = None,
        end_date: Annotated[str | None, Field(description="ISO date, inclusive")] = None,
        limit: Annotated[int, Field(ge=1, le=100)] = 10,
        agent_id: AgentParam = None,
    ) -> str:
        """Search past conversation messages (what was said in earlier sessions)."""

        def work() -> str:
            agent = memory.agent(agent_id)
            hits = memory.call(
                memory.client.search_messages, agent, query, limit, session_id, start_date, end_date
            )
            if not hits:
                return "No messages match."
            return memory.cap(
                "\n".join(
                    f"{h['date'][:16]} [{h['message_type'].removesuffix('_message')}] "
                    f"(session {str(h.get('conversation_id') or '-')[:8]}) "
                    f"{_preview(h['content'], 300)}"
                    for h in hits
                )
            )

        return await run(work)

    @server.tool(annotations=READ, structured_output=False)
    async def session_history(
        limit: Annotated[int, Field(ge=1, le=50, description="How many recent sessions")] = 5,
        agent_id: AgentParam = None,
    ) -> str:
        """Summaries of the most recent sessions in this project, newest first."""

        def work() -> str:
            agent = memory.agent(agent_id)
            items = memory.call(memory.client.session_summaries, agent, limit)
            if not items:
                return "No session summaries yet."
            return memory.cap(
                "\n\n".join(f"## {i['created_at'][:16]} ({i['id']})\n{i['text']}" for i in items)
            )

        return await run(work)

    return server


def stdio_memory() -> Memory:
    from mnemo.remote.config import ClientConfig

    config = ClientConfig.load()
    client = Client(config.url, config.api_key, 30.0, connect_timeout=2.0)
    project_dir = os.environ.get("CLAUDE_PROJECT_DIR") or os.getcwd()
    max_chars = int(os.environ.get("MNEMO_MCP_MAX_CHARS") or DEFAULT_MAX_CHARS)
    return Memory(client, project_dir, max_chars, pinned_agent=config.agent_id)


def run_stdio() -> None:
    build_server(stdio_memory()).run("stdio")

"""The official MCP SDK client drives `mnemo mcp` (stdio) and `/mcp` (streamable HTTP)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from tests.conftest import ServerProcess, start_server

TOOLS = {
    "memory_search": (True, False),
    "memory_get": (True, False),
    "memory_list": (True, False),
    "memory_remember": (False, False),
    "memory_forget": (False, True),
    "core_memory_list": (True, False),
    "core_memory_read": (True, False),
    "core_memory_append": (False, False),
    "core_memory_replace": (False, True),
    "recall_search": (True, False),
    "session_history": (True, False),
}


def project_dir(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    (path / "README.md").write_text(f"# {name}\n")
    return path


def stdio(server: ServerProcess, cwd: Path, home: Path, **env: str) -> StdioServerParameters:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MNEMO_", "XDG_", "CLAUDE"))}
    (home / "none.toml").touch()
    clean.update(HOME=str(home), MNEMO_URL=server.url, MNEMO_CONFIG=str(home / "none.toml"), **env)
    return StdioServerParameters(
        command=sys.executable, args=["-m", "mnemo", "mcp"], env=clean, cwd=str(cwd)
    )


def text(result: Any) -> str:
    return "\n".join(part.text for part in result.content)


async def call(client: Client, tool: str, **arguments: Any) -> tuple[str, bool]:
    result = await client.call_tool(tool, arguments)
    return text(result), bool(result.is_error)


def test_tools_schemas_and_annotations(server: ServerProcess) -> None:
    async def scenario() -> None:
        async with Client(f"{server.url}/mcp") as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(tools) == set(TOOLS)
        for name, (read_only, destructive) in TOOLS.items():
            tool = tools[name]
            assert tool.description and len(tool.description) > 20
            assert tool.annotations.read_only_hint is read_only, name
            assert tool.annotations.destructive_hint is destructive, name
            for parameter in tool.input_schema["properties"].values():
                assert parameter.get("description") or parameter.get("title"), (name, parameter)
        search = tools["memory_search"].input_schema
        assert search["required"] == ["query"]
        assert "description" in search["properties"]["type"]

    asyncio.run(scenario())


def test_round_trip_over_stdio_and_isolation(server: ServerProcess, tmp_path: Path) -> None:
    alpha, beta = project_dir(tmp_path, "alpha"), project_dir(tmp_path, "beta")
    home = tmp_path / "home"
    home.mkdir()

    async def scenario() -> None:
        async with Client(stdio(server, alpha, home)) as client:
            stored, error = await call(
                client,
                "memory_remember",
                text="We chose SQLite because it needs no setup",
                type="decision",
                tags=["storage"],
            )
            assert not error and stored.startswith("Remembered as passage-")
            passage_id = stored.removeprefix("Remembered as ").rstrip(".")
            again, _ = await call(
                client, "memory_remember", text="We chose SQLite because  it needs no setup"
            )
            assert again == f"Already remembered as {passage_id}."
            index, _ = await call(
                client, "memory_search", query="why did we pick sqlite", type="decision"
            )
            first = index.splitlines()[0].split(" | ")
            assert first[0] == passage_id and first[3] == "decision"
            full, _ = await call(client, "memory_get", ids=[passage_id])
            assert "We chose SQLite because it needs no setup" in full and "storage" in full
            gone, _ = await call(client, "memory_forget", id=passage_id)
            assert gone == f"Forgot {passage_id}."
            missing, error = await call(client, "memory_get", ids=[passage_id])
            assert error and "404" in missing
            await call(client, "memory_remember", text="alpha-only secret sauce is cardamom")
        async with Client(stdio(server, beta, home)) as client:
            nothing, _ = await call(client, "memory_search", query="secret sauce cardamom")
            assert "cardamom" not in nothing

    asyncio.run(scenario())


def test_core_memory_edits_and_their_errors(server: ServerProcess, tmp_path: Path) -> None:
    agent = httpx.post(
        f"{server.url}/v1/agents/",
        json={
            "name": "core-mcp",
            "memory_blocks": [
                {"label": "notes", "value": "uses ruff", "limit": 40},
                {"label": "policy", "value": "no force pushes", "read_only": True},
            ],
        },
    ).json()

    async def scenario() -> None:
        async with Client(f"{server.url}/mcp") as client:
            listing, _ = await call(client, "core_memory_list", agent_id=agent["id"])
            assert "notes: 9/40 chars" in listing and "(read-only)" in listing
            appended, error = await call(
                client, "core_memory_append", label="notes", text="and pytest", agent_id=agent["id"]
            )
            assert not error and "notes" in appended
            value, _ = await call(client, "core_memory_read", label="notes", agent_id=agent["id"])
            assert value == "uses ruff\nand pytest"
            replaced, error = await call(
                client,
                "core_memory_replace",
                label="notes",
                old="pytest",
                new="pytest -x",
                agent_id=agent["id"],
            )
            assert not error, replaced
            over, error = await call(
                client,
                "core_memory_replace",
                label="notes",
                old="ruff",
                new="ruff " * 20,
                agent_id=agent["id"],
            )
            assert error and "40 character limit" in over
            locked, error = await call(
                client, "core_memory_append", label="policy", text="x", agent_id=agent["id"]
            )
            assert error and "read-only" in locked
            twice, error = await call(
                client, "core_memory_replace", label="notes", old="u", new="U", agent_id=agent["id"]
            )
            assert error and "occurs" in twice
            no_project, error = await call(client, "memory_search", query="x")
            assert error and "agent_id" in no_project

    asyncio.run(scenario())
    final = httpx.get(f"{server.url}/v1/agents/{agent['id']}/core-memory/blocks/notes").json()
    assert final["value"] == "uses ruff\nand pytest -x"


def test_output_cap_says_how_to_get_the_rest(server: ServerProcess, tmp_path: Path) -> None:
    agent = httpx.post(f"{server.url}/v1/agents/", json={"name": "cap"}).json()
    httpx.post(
        f"{server.url}/v1/agents/{agent['id']}/archival-memory/batch",
        json={"passages": [{"text": f"long note {i} " + "word " * 400} for i in range(10)]},
        timeout=120,
    ).raise_for_status()
    home = tmp_path / "home"
    home.mkdir()

    async def scenario() -> None:
        params = stdio(
            server, tmp_path, home, MNEMO_MCP_MAX_CHARS="2000", MNEMO_AGENT_ID=agent["id"]
        )
        async with Client(params) as client:
            ids = [
                line.split(" | ")[0]
                for line in (await call(client, "memory_search", query="long note"))[0].splitlines()
            ]
            full, _ = await call(client, "memory_get", ids=ids[:5])
            assert len(full) < 2300
            assert "[truncated:" in full and "memory_get" in full

    asyncio.run(scenario())


def test_recall_and_session_history(server: ServerProcess) -> None:
    agent = httpx.post(f"{server.url}/v1/agents/", json={"name": "recall-mcp"}).json()
    base = f"{server.url}/v1/agents/{agent['id']}"
    httpx.post(
        f"{base}/messages/import",
        json={
            "messages": [
                {
                    "role": "user",
                    "content": "the flaky test is test_upload_retry",
                    "conversation_id": "sess-1",
                }
            ]
        },
    )
    httpx.post(
        f"{base}/archival-memory",
        json={
            "text": "Session sess-1 summary: fixed flaky upload test",
            "metadata": {"type": "session_summary"},
        },
    )

    async def scenario() -> None:
        async with Client(f"{server.url}/mcp") as client:
            recalled, _ = await call(
                client, "recall_search", query="flaky test", agent_id=agent["id"]
            )
            assert "test_upload_retry" in recalled and "sess-1" in recalled
            history, _ = await call(client, "session_history", agent_id=agent["id"])
            assert "fixed flaky upload test" in history

    asyncio.run(scenario())


@pytest.fixture
def two_replicas(tmp_path: Path):  # type: ignore[no-untyped-def]
    data = tmp_path / "shared-data"
    first = start_server(data)
    second = start_server(data)
    yield first, second
    first.stop()
    second.stop()


def test_stateless_http_across_replicas_sharing_a_database(two_replicas) -> None:  # type: ignore[no-untyped-def]
    first, second = two_replicas
    agent = httpx.post(f"{first.url}/v1/agents/", json={"name": "replicated"}).json()

    async def scenario() -> None:
        async with Client(f"{first.url}/mcp") as one:
            _, error = await call(
                one, "memory_remember", text="Replicas share one database", agent_id=agent["id"]
            )
            assert not error
        async with Client(f"{second.url}/mcp") as two:
            found, _ = await call(
                two, "memory_search", query="replicas database", agent_id=agent["id"]
            )
            assert "Replicas share one database" in found
            passage_id = found.split(" | ")[0]
        async with Client(f"{first.url}/mcp") as one:
            await call(one, "memory_forget", id=passage_id, agent_id=agent["id"])
        async with Client(f"{second.url}/mcp") as two:
            after, _ = await call(
                two, "memory_search", query="replicas database", agent_id=agent["id"]
            )
            assert passage_id not in after  # the other process saw the delete

    asyncio.run(scenario())


def test_http_mcp_follows_server_auth(tmp_path: Path) -> None:
    secured = start_server(tmp_path / "data", env={"MNEMO_API_KEY": "k3y"})
    try:
        denied = httpx.post(
            f"{secured.url}/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Accept": "application/json, text/event-stream"},
        )
        assert denied.status_code == 401

        async def scenario() -> None:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            async with httpx2.AsyncClient(headers={"Authorization": "Bearer k3y"}) as http_client:
                transport = streamable_http_client(f"{secured.url}/mcp", http_client=http_client)
                async with Client(transport) as client:
                    tools = await client.list_tools()
                    assert len(tools.tools) == len(TOOLS)

        asyncio.run(scenario())
    finally:
        secured.stop()


def test_memory_list_filters_on_the_server(server: ServerProcess) -> None:
    agent = httpx.post(f"{server.url}/v1/agents/", json={"name": "mcp-list"}).json()["id"]
    history = [
        {
            "text": "Edited src/pay.py: refund path",
            "metadata": {"type": "file_change", "path": "src/pay.py"},
            "created_at": f"2026-01-0{day}T10:00:00Z",
        }
        for day in (1, 2)
    ]
    failure = {
        "text": "test_refund failed in src/pay.py",
        "metadata": {"type": "test_failure", "file": "src/pay.py"},
        "created_at": "2026-01-03T10:00:00Z",
    }
    noise = [
        {
            "text": f"Edited src/other_{i}.py",
            "metadata": {"type": "file_change", "path": f"src/other_{i}.py"},
        }
        for i in range(150)
    ]
    for batch in ([*history, failure], noise):
        httpx.post(
            f"{server.url}/v1/agents/{agent}/archival-memory/batch",
            json={"passages": batch},
            timeout=60,
        ).raise_for_status()

    async def scenario() -> None:
        async with Client(f"{server.url}/mcp") as client:
            listed, error = await call(client, "memory_list", path="src/pay.py", agent_id=agent)
            assert not error
            lines = listed.splitlines()
            assert [line.split(" | ")[2] for line in lines] == [
                "test_failure",
                "file_change",
                "file_change",
            ]
            assert lines[0].split(" | ")[1].startswith("2026-01-03")  # newest first
            since, _ = await call(
                client,
                "memory_list",
                type="file_change",
                metadata={"path": "src/pay.py"},
                start_date="2026-01-02",
                agent_id=agent,
            )
            assert len(since.splitlines()) == 1 and "2026-01-02" in since

    asyncio.run(scenario())

"""The server stays available: MCP calls cannot starve it, probes do not queue behind work,
half-open and idle connections are shed, and a failure repeating in a loop cannot flood the log."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from pathlib import Path

import httpx
from mcp import Client

from mnemo.api.observe import RateLimit
from tests.conftest import start_server


def test_sixty_concurrent_mcp_calls_all_succeed_and_health_answers(tmp_path: Path) -> None:
    """Each /mcp tool calls this server over loopback; 60 at once used to hold every worker
    thread while waiting for one (a 30 s deadlock, then failures)."""
    running = start_server(tmp_path / "data")
    try:
        agent = httpx.post(f"{running.url}/v1/agents/", json={"name": "mcp load"}).json()["id"]
        httpx.post(
            f"{running.url}/v1/agents/{agent}/archival-memory",
            json={"text": "The staging database password rotates every Monday"},
        )

        async def one(client: Client, i: int) -> bool:
            result = await client.call_tool(
                "memory_search", {"query": f"database rotation {i}", "agent_id": agent}
            )
            return not result.is_error and "staging database" in result.content[0].text

        async def scenario() -> tuple[list[bool], int]:
            async with Client(f"{running.url}/mcp") as client:
                calls = asyncio.gather(*(one(client, i) for i in range(60)))
                async with httpx.AsyncClient(base_url=running.url, timeout=5) as probe:
                    await asyncio.sleep(0.2)
                    health = (await probe.get("/v1/health/")).status_code
                return list(await calls), health

        results, health = asyncio.run(scenario())
        assert health == 200
        assert results == [True] * 60
    finally:
        running.stop()


def test_silent_connections_are_closed_and_idle_ones_shed(tmp_path: Path) -> None:
    running = start_server(
        tmp_path / "data",
        env={"MNEMO_FIRST_REQUEST_TIMEOUT": "1", "MNEMO_MAX_CONNECTIONS": "20"},
    )
    host, port = running.url.removeprefix("http://").split(":")
    request = f"GET /v1/health/ HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    try:
        talking = socket.create_connection((host, int(port)))
        assert _health_on(talking, request).startswith(b"HTTP/1.1 200")
        silent = [socket.create_connection((host, int(port))) for _ in range(60)]
        # Over the cap, each new connection closes the oldest one that never sent a request:
        # a client that talks keeps its connection, and new ones still get in.
        assert _health_on(talking, request).startswith(b"HTTP/1.1 200")
        assert httpx.get(f"{running.url}/v1/health/", timeout=5).status_code == 200
        for sock in silent:
            sock.settimeout(5)
        closed = sum(1 for sock in silent[:40] if sock.recv(1) == b"")
        assert closed == 40
        # The newest ones sent nothing either: closed once their first request is overdue.
        deadline = time.monotonic() + 10
        remaining = silent[40:]
        while remaining and time.monotonic() < deadline:
            remaining = [sock for sock in remaining if sock.recv(1) != b""]
        assert remaining == []
        for sock in [*silent, talking]:
            sock.close()
        assert httpx.get(f"{running.url}/v1/agents/").status_code == 200
    finally:
        running.stop()


def _health_on(sock: socket.socket, request: bytes) -> bytes:
    """One whole health response read from a raw keep-alive connection."""
    sock.settimeout(5)
    sock.sendall(request)
    answer = b""
    while not answer.endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    return answer


def test_repeated_errors_are_rate_limited_and_counted() -> None:
    limit = RateLimit(burst=3, window=60)
    records = [
        logging.LogRecord("asyncio", logging.ERROR, "", 0, "accept() failed: %s", ("EMFILE",), None)
        for _ in range(1000)
    ]
    assert sum(limit.filter(r) for r in records) == 3
    info = logging.LogRecord("mnemo.access", logging.INFO, "", 0, "request", None, None)
    assert all(limit.filter(info) for _ in range(100))
    limit.window = 0
    late = logging.LogRecord("asyncio", logging.ERROR, "", 0, "accept() failed: %s", ("x",), None)
    assert limit.filter(late)
    assert "997 similar messages dropped" in late.getMessage()

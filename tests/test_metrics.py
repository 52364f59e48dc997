"""`/metrics` and structured request logs of a live server (both backends)."""

from __future__ import annotations

import json
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from mnemo.config import DEFAULT_EMBEDDING
from tests.conftest import ServerProcess


def scrape(server: ServerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{server.url}/metrics", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_operations_and_rows(server: ServerProcess) -> None:
    http = server.client()
    before = scrape(server)
    agent = http.post("/v1/agents/", json={"name": "metrics-probe"}).json()["id"]
    route = "/v1/agents/{agent_id}/archival-memory"
    for i in range(3):
        http.post(f"/v1/agents/{agent}/archival-memory", json={"text": f"metric note {i}"})
    http.get(f"/v1/agents/{agent}/archival-memory/search", params={"query": "metric note"})
    http.get(f"/v1/agents/{agent}/archival-memory/search", params={"query": "x", "mode": "bad"})
    http.get("/v1/agents/agent-00000000-0000-4000-8000-000000000000")
    after = scrape(server)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("mnemo_http_requests_total", method="POST", route=route, status="200") == 3
    assert (
        grew("mnemo_http_requests_total", method="GET", route=f"{route}/search", status="422") == 1
    )
    assert (
        grew("mnemo_http_requests_total", method="GET", route="/v1/agents/{agent_id}", status="404")
        == 1
    )
    assert grew("mnemo_http_request_duration_seconds_count", method="POST", route=route) == 3
    assert grew("mnemo_memory_operations_total", operation="passage_insert") == 3
    assert grew("mnemo_memory_operations_total", operation="passage_search") == 1  # not the 422
    assert grew("mnemo_search_duration_seconds_count", mode="hybrid") == 1
    assert grew("mnemo_embedding_duration_seconds_count", handle=DEFAULT_EMBEDDING) >= 3
    assert value(after, "mnemo_passages") >= 3 and value(after, "mnemo_agents") >= 1
    assert value(after, "mnemo_db_pool_in_use") <= value(after, "mnemo_db_pool_max")
    assert value(after, "mnemo_db_errors_total") == value(before, "mnemo_db_errors_total")


def test_request_id_is_echoed_and_logged_as_json(server: ServerProcess) -> None:
    http = server.client()
    given = http.get("/v1/agents/", headers={"X-Request-ID": "trace-42.a"})
    assert given.headers["x-request-id"] == "trace-42.a"
    made = http.get("/v1/agents/", headers={"X-Request-ID": "bad id with spaces"})
    generated = made.headers["x-request-id"]
    assert len(generated) == 32 and generated != "bad id with spaces"
    logged = _access_log(server)
    deadline = time.monotonic() + 10
    # The access line is written once the response has gone out, so it can trail the reply.
    while not {"trace-42.a", generated} <= logged.keys() and time.monotonic() < deadline:
        time.sleep(0.05)
        logged = _access_log(server)
    entry = logged["trace-42.a"]
    assert (entry["method"], entry["route"], entry["status"]) == ("GET", "/v1/agents", 200)
    assert entry["duration_ms"] >= 0 and entry["ts"].endswith("Z")
    assert generated in logged


def _access_log(server: ServerProcess) -> dict[str, dict]:
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    return {line.get("request_id"): line for line in lines if line["logger"] == "mnemo.access"}


def test_an_mcp_tool_call_counts_once_and_redactions_are_counted(server: ServerProcess) -> None:
    import asyncio

    from mcp import Client

    http = server.client()
    agent = http.post("/v1/agents/", json={"name": "metrics-mcp"}).json()["id"]
    before = scrape(server)
    http.post(
        f"/v1/agents/{agent}/archival-memory",
        json={"text": "token ghp_abcdefghijklmnopqrstuvwxyz0123456789 rotated"},
    )

    async def tool() -> None:
        async with Client(f"{server.url}/mcp") as client:
            result = await client.call_tool("memory_search", {"query": "token", "agent_id": agent})
            assert not result.is_error

    asyncio.run(tool())
    after = scrape(server)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("mnemo_memory_operations_total", operation="mcp_call") >= 1
    assert grew("mnemo_memory_operations_total", operation="passage_search") == 0
    assert grew("mnemo_redactions_total") == 1

"""A web page cannot reach memory: Host names are allow-listed (DNS rebinding) and browsers'
cross-site writes are refused, on the REST API as on /mcp."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.inprocess import app_client


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with app_client(
        tmp_path_factory.mktemp("guard") / "data",
        {"MNEMO_ALLOWED_HOSTS": "memory.example.com,*.team.example"},
    ) as client:
        yield client


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("evil.example", 421),
        ("evil.example:8283", 421),
        ("127.0.0.1.evil.example", 421),
        ("localhost:1234", 200),
        ("127.0.0.1", 200),
        ("[::1]:8283", 200),
        ("memory.example.com", 200),
        ("MEMORY.example.com:443", 200),
        ("a.team.example", 200),
        ("team.example", 421),
    ],
)
def test_only_allowed_host_names_are_served(guarded: httpx.Client, host: str, status: int) -> None:
    response = guarded.get("/v1/agents/", headers={"Host": host})
    assert response.status_code == status, response.text
    if status == 421:
        assert "allowed_hosts" in response.json()["detail"]
        write = guarded.post("/v1/agents/", json={"name": "x"}, headers={"Host": host})
        assert write.status_code == 421


def test_mcp_is_guarded_like_every_route(guarded: httpx.Client) -> None:
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream"}
    evil = guarded.post("/mcp", json=call, headers={**headers, "Host": "evil.example"})
    assert evil.status_code == 421
    page = guarded.post("/mcp", json=call, headers={**headers, "Origin": "https://evil.example"})
    assert page.status_code == 403
    named = guarded.post("/mcp", json=call, headers={**headers, "Host": "memory.example.com"})
    assert named.status_code == 200, named.text


def test_probes_answer_any_host(guarded: httpx.Client) -> None:
    for path in ("/v1/health/", "/v1/ready/", "/metrics"):
        assert guarded.get(f"{path}", headers={"Host": "10.1.2.3:8283"}).status_code == 200


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Origin": "https://evil.example"}, 403),
        ({"Origin": "null"}, 403),
        ({"Sec-Fetch-Site": "cross-site"}, 403),
        ({"Origin": "http://localhost:3000"}, 200),
        ({"Origin": "https://memory.example.com"}, 200),
        ({}, 200),
    ],
)
def test_cross_site_writes_are_refused(
    guarded: httpx.Client, headers: dict[str, str], status: int
) -> None:
    """A form post (multipart, no preflight) from another site's page cannot import or write."""
    response = guarded.post(
        "/v1/agents/import",
        files={"file": ("a.af", b'{"agents": [{"name": "planted"}]}', "application/json")},
        headers=headers,
    )
    assert response.status_code == status, response.text
    if status == 403:
        assert "Cross-site" in response.json()["detail"]
    read = guarded.get("/v1/agents/", headers=headers)
    assert read.status_code == 200  # reads are not refused; without CORS the page cannot see them


def test_default_serves_only_loopback_names(tmp_path: Path) -> None:
    with app_client(tmp_path / "data") as http:
        assert http.get("/v1/agents/", headers={"Host": "evil.example"}).status_code == 421
        assert http.get("/v1/agents/").status_code == 200

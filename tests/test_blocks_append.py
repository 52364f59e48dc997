"""The atomic append extension: no lost updates under concurrency, oldest text trimmed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import ServerProcess


def make_agent(http: httpx.Client, limit: int) -> str:
    agent = http.post(
        "/v1/agents/",
        json={
            "name": "append",
            "memory_blocks": [{"label": "learnings", "value": "", "limit": limit}],
        },
    ).json()
    return agent["id"]


def test_concurrent_appends_lose_nothing(server: ServerProcess, http: httpx.Client) -> None:
    agent_id = make_agent(http, 100_000)
    url = f"/v1/agents/{agent_id}/core-memory/blocks/learnings/append"

    def append(i: int) -> int:
        with server.client() as client:
            return client.post(url, json={"text": f"lesson {i}"}).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(append, range(40)))
    assert statuses == [200] * 40
    value = http.get(f"/v1/agents/{agent_id}/core-memory/blocks/learnings").json()["value"]
    assert sorted(value.split("\n")) == sorted(f"lesson {i}" for i in range(40))


def test_append_trims_oldest_whole_lines(http: httpx.Client) -> None:
    agent_id = make_agent(http, 30)
    url = f"/v1/agents/{agent_id}/core-memory/blocks/learnings/append"
    trimmed = []
    for i in range(6):
        body = http.post(url, json={"text": f"fact number {i}"}).json()
        trimmed.append(body["trimmed_chars"])
        assert len(body["value"]) <= 30
        assert body["value"].endswith(f"fact number {i}")
    assert trimmed[0] == 0 and trimmed[-1] > 0
    value = http.get(f"/v1/agents/{agent_id}/core-memory/blocks/learnings").json()["value"]
    assert value.split("\n") == ["fact number 4", "fact number 5"]


def test_append_longer_than_limit_is_rejected(http: httpx.Client) -> None:
    agent_id = make_agent(http, 10)
    response = http.post(
        f"/v1/agents/{agent_id}/core-memory/blocks/learnings/append", json={"text": "x" * 11}
    )
    assert response.status_code == 400
    assert "11 characters" in response.json()["detail"]


def test_append_to_missing_label_is_404(http: httpx.Client) -> None:
    agent_id = make_agent(http, 10)
    response = http.post(
        f"/v1/agents/{agent_id}/core-memory/blocks/nope/append", json={"text": "x"}
    )
    assert response.status_code == 404

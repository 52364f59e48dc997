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


def test_replace_racing_appends_loses_nothing(server: ServerProcess, http: httpx.Client) -> None:
    """Replacements and appends interleave on one block; each is atomic on the server, so no
    append is lost and every replacement lands (the MCP tool used to read, edit and write the
    whole value back)."""
    agent_id = make_agent(http, 100_000)
    base = f"/v1/agents/{agent_id}/core-memory/blocks/learnings"
    markers = [f"todo-{i}" for i in range(20)]
    http.post(f"{base}/append", json={"text": "\n".join(markers)})

    def work(i: int) -> int:
        with server.client() as client:
            if i % 2:
                return client.post(f"{base}/append", json={"text": f"lesson {i}"}).status_code
            body = {
                "old": f"todo-{i // 2}\n" if i // 2 < 19 else "todo-19",
                "new": f"done-{i // 2}\n",
            }
            return client.post(f"{base}/replace", json=body).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(work, range(40)))
    assert statuses == [200] * 40
    value = http.get(base).json()["value"]
    assert all(f"lesson {i}" in value for i in range(1, 40, 2))
    assert all(f"done-{i}" in value and f"todo-{i}\n" not in value for i in range(20))


def test_replace_needs_exactly_one_occurrence_and_fits_the_limit(http: httpx.Client) -> None:
    agent_id = make_agent(http, 12)
    base = f"/v1/agents/{agent_id}/core-memory/blocks/learnings"
    http.post(f"{base}/append", json={"text": "aa bb aa"})
    twice = http.post(f"{base}/replace", json={"old": "aa", "new": "x"})
    assert twice.status_code == 409 and "2 times" in twice.json()["detail"]
    missing = http.post(f"{base}/replace", json={"old": "zz", "new": "x"})
    assert missing.status_code == 409 and "0 times" in missing.json()["detail"]
    too_long = http.post(f"{base}/replace", json={"old": "bb", "new": "b" * 20})
    assert too_long.status_code == 400 and "12" in too_long.json()["detail"]
    done = http.post(f"{base}/replace", json={"old": "bb", "new": ""})
    assert done.status_code == 200 and done.json()["value"] == "aa  aa"

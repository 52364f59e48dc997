"""Idempotency-Key: a retried POST is stored once and answered with the first response."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.inprocess import app_client


def test_retried_insert_is_stored_once(http: httpx.Client) -> None:
    agent = http.post("/v1/agents/", json={"name": "idem"}).json()
    key = str(uuid.uuid4())
    url = f"/v1/agents/{agent['id']}/archival-memory"
    first = http.post(url, json={"text": "only once"}, headers={"Idempotency-Key": key})
    again = http.post(url, json={"text": "only once"}, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert again.headers.get("idempotent-replayed") == "true"
    assert [p["text"] for p in http.get(url).json()] == ["only once"]


def test_same_key_different_request_rejected(http: httpx.Client) -> None:
    agent = http.post("/v1/agents/", json={"name": "idem2"}).json()
    key = str(uuid.uuid4())
    url = f"/v1/agents/{agent['id']}/archival-memory"
    assert http.post(url, json={"text": "a"}, headers={"Idempotency-Key": key}).status_code == 200
    reused = http.post(url, json={"text": "b"}, headers={"Idempotency-Key": key})
    assert reused.status_code == 422
    assert "different request" in reused.json()["detail"]


def test_keys_are_scoped_per_path_and_errors_replay(http: httpx.Client) -> None:
    key = str(uuid.uuid4())
    a = http.post("/v1/agents/", json={"name": "k1"}, headers={"Idempotency-Key": key})
    b = http.post("/v1/blocks/", json={"label": "x", "value": ""}, headers={"Idempotency-Key": key})
    assert a.status_code == b.status_code == 200
    bad = {"label": "y", "value": "too long", "limit": 2}
    first = http.post("/v1/blocks/", json=bad, headers={"Idempotency-Key": key + "-bad"})
    second = http.post("/v1/blocks/", json=bad, headers={"Idempotency-Key": key + "-bad"})
    assert first.status_code == second.status_code == 400
    assert first.json() == second.json()


def test_without_key_each_post_is_new(http: httpx.Client) -> None:
    agent = http.post("/v1/agents/", json={"name": "idem3"}).json()
    url = f"/v1/agents/{agent['id']}/archival-memory"
    http.post(url, json={"text": "same"})
    http.post(url, json={"text": "same"})
    assert len(http.get(url).json()) == 2


def test_trailing_slash_is_the_same_key(http: httpx.Client) -> None:
    agent = http.post("/v1/agents/", json={"name": "idem slash"}).json()
    key = str(uuid.uuid4())
    url = f"/v1/agents/{agent['id']}/archival-memory"
    http.post(url, json={"text": "once"}, headers={"Idempotency-Key": key})
    again = http.post(url + "/", json={"text": "once"}, headers={"Idempotency-Key": key})
    assert again.headers.get("idempotent-replayed") == "true"
    assert len(http.get(url).json()) == 1


def test_completed_keys_expire_after_a_day(tmp_path: Path) -> None:
    with app_client(tmp_path / "data") as http:
        agent = http.post("/v1/agents/", json={"name": "expiry"}).json()
        url = f"/v1/agents/{agent['id']}/archival-memory"
        key = {"Idempotency-Key": "k-expiry"}
        http.post(url, json={"text": "first"}, headers=key)
        with sqlite3.connect(tmp_path / "data" / "mnemo.sqlite3") as db:
            db.execute(
                "UPDATE idempotency_keys SET created_at = ?",
                ((datetime.now(UTC) - timedelta(hours=25)).isoformat(),),
            )
        later = http.post(url, json={"text": "first"}, headers=key)
        assert later.headers.get("idempotent-replayed") is None
        assert len(http.get(url).json()) == 2
        with sqlite3.connect(tmp_path / "data" / "mnemo.sqlite3") as db:
            assert db.execute("SELECT count(*) FROM idempotency_keys").fetchone()[0] == 1


def test_a_500_is_kept_so_a_retry_never_runs_twice(tmp_path: Path) -> None:
    """The request may have committed before failing: the retry gets the 500 back instead
    of writing again. A 503 (database unreachable, nothing written) releases the key."""
    from mnemo.api.middleware import IdempotencyMiddleware, InternalErrorMiddleware
    from mnemo.store.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "m.sqlite3")
    runs: list[str] = []

    async def app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        runs.append(scope["path"])
        if scope["path"] == "/unavailable":
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})
            return
        raise RuntimeError("failed after the commit")

    guarded = IdempotencyMiddleware(InternalErrorMiddleware(app), store=store)

    async def scenario() -> list[int]:
        transport = httpx.ASGITransport(app=guarded)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            statuses = []
            for path in ("/write", "/write", "/unavailable", "/unavailable"):
                response = await client.post(path, json={}, headers={"Idempotency-Key": "k"})
                statuses.append(response.status_code)
            return statuses

    assert asyncio.run(scenario()) == [500, 500, 503, 503]
    assert runs == ["/write", "/unavailable", "/unavailable"]
    store.close()

"""Idempotency-Key: a retried POST is stored once and answered with the first response."""

from __future__ import annotations

import uuid

import httpx


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

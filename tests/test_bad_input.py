"""Bad input gets a clear 4xx naming the problem; never a 500, never silent truncation."""

from __future__ import annotations

import httpx
import pytest

from tests.inprocess import app_client


@pytest.fixture
def agent_id(http: httpx.Client) -> str:
    return http.post("/v1/agents/", json={"name": "bad-input"}).json()["id"]


def test_invalid_json_is_422(http: httpx.Client) -> None:
    response = http.post(
        "/v1/agents/", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "JSON" in response.json()["detail"]


def test_missing_required_field_names_it(http: httpx.Client, agent_id: str) -> None:
    response = http.post(f"/v1/agents/{agent_id}/archival-memory", json={"tags": ["x"]})
    assert response.status_code == 422
    assert "body.text" in response.json()["detail"]


def test_wrong_type_names_field(http: httpx.Client, agent_id: str) -> None:
    response = http.get(
        f"/v1/agents/{agent_id}/archival-memory/search", params={"query": "q", "top_k": "many"}
    )
    assert response.status_code == 422
    assert "top_k" in response.json()["detail"]


def test_unknown_fields_are_ignored(http: httpx.Client) -> None:
    response = http.post("/v1/agents/", json={"name": "extra", "enable_sleeptime": True, "zzz": 1})
    assert response.status_code == 200
    assert "zzz" not in response.json()


def test_empty_passage_text_rejected(http: httpx.Client, agent_id: str) -> None:
    response = http.post(f"/v1/agents/{agent_id}/archival-memory", json={"text": "  "})
    assert response.status_code == 400
    assert "text" in response.json()["detail"]


def test_oversized_passage_rejected_with_numbers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with app_client(tmp_path / "data", {"MNEMO_MAX_PASSAGE_CHARS": "1000"}) as http:
        agent = http.post("/v1/agents/", json={"name": "big"}).json()
        response = http.post(f"/v1/agents/{agent['id']}/archival-memory", json={"text": "x" * 1001})
        assert response.status_code == 413
        detail = response.json()["detail"]
        assert "1001" in detail and "1000" in detail
        ok = http.post(f"/v1/agents/{agent['id']}/archival-memory", json={"text": "x" * 1000})
        assert ok.status_code == 200
        assert http.get(f"/v1/agents/{agent['id']}/archival-memory").json()[0]["text"] == (
            "x" * 1000
        )


def test_default_passage_limit_is_one_megabyte(http: httpx.Client, agent_id: str) -> None:
    response = http.post(f"/v1/agents/{agent_id}/archival-memory", json={"text": "y" * 1_000_001})
    assert response.status_code == 413
    assert "1000000" in response.json()["detail"]


def test_request_body_limit(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with app_client(tmp_path / "data", {"MNEMO_MAX_REQUEST_BYTES": "2048"}) as http:
        response = http.post("/v1/agents/", json={"name": "n", "description": "d" * 4096})
        assert response.status_code == 413
        assert "2048" in response.json()["detail"]


def test_block_over_limit_on_create_and_update(http: httpx.Client) -> None:
    response = http.post("/v1/blocks/", json={"label": "l", "value": "v" * 11, "limit": 10})
    assert response.status_code == 400
    assert "10" in response.json()["detail"] and "11" in response.json()["detail"]

    block = http.post("/v1/blocks/", json={"label": "l", "value": "short", "limit": 10}).json()
    too_long = http.patch(f"/v1/blocks/{block['id']}", json={"value": "z" * 25})
    assert too_long.status_code == 400
    assert "25" in too_long.json()["detail"] and "10" in too_long.json()["detail"]
    assert http.get(f"/v1/blocks/{block['id']}").json()["value"] == "short"  # unchanged

    shrink = http.patch(f"/v1/blocks/{block['id']}", json={"limit": 3})
    assert shrink.status_code == 400
    assert "5 characters" in shrink.json()["detail"]


def test_agent_block_over_limit_via_label(http: httpx.Client) -> None:
    agent = http.post(
        "/v1/agents/",
        json={"name": "lim", "memory_blocks": [{"label": "human", "value": "", "limit": 5}]},
    ).json()
    response = http.patch(
        f"/v1/agents/{agent['id']}/core-memory/blocks/human", json={"value": "abcdefg"}
    )
    assert response.status_code == 400
    assert "(requested 7)" in response.json()["detail"]


def test_bad_pagination_values(http: httpx.Client) -> None:
    assert http.get("/v1/agents/", params={"limit": 0}).status_code == 400
    assert http.get("/v1/agents/", params={"limit": 100_000}).status_code == 400
    assert http.get("/v1/agents/", params={"order": "sideways"}).status_code == 400
    unknown = http.get("/v1/agents/", params={"after": "agent-nope"})
    assert unknown.status_code == 404


def test_bad_dates_and_modes(http: httpx.Client, agent_id: str) -> None:
    url = f"/v1/agents/{agent_id}/archival-memory/search"
    bad_date = http.get(url, params={"query": "q", "start_datetime": "yesterday"})
    assert bad_date.status_code == 400
    assert "start_datetime" in bad_date.json()["detail"]
    assert http.get(url, params={"query": "q", "mode": "psychic"}).status_code == 422
    assert http.get(url, params={"query": "q", "top_k": 0}).status_code == 400


def test_duplicate_memory_block_labels_rejected(http: httpx.Client) -> None:
    response = http.post(
        "/v1/agents/",
        json={"memory_blocks": [{"label": "a", "value": ""}, {"label": "a", "value": ""}]},
    )
    assert response.status_code == 400
    assert "duplicate" in response.json()["detail"]


def test_unknown_route_is_404_json(http: httpx.Client) -> None:
    response = http.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}

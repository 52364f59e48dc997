"""Importing an Agent File is all or nothing, capped in size, and refuses files it cannot read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.inprocess import app_client


def _document(passages: int, bad_last: bool = False) -> dict[str, Any]:
    items = [{"text": f"memory number {i}"} for i in range(passages)]
    if bad_last:
        items[-1] = {"text": "late", "created_at": "0001-01-01T00:00:00+05:00"}
    return {
        "agents": [{"id": "agent-0", "name": "imported", "block_ids": ["block-0"], "messages": []}],
        "blocks": [{"id": "block-0", "label": "human", "value": "Dana", "limit": 100}],
        "passages": items,
    }


def _import(http: httpx.Client, body: bytes, name: str) -> httpx.Response:
    return http.post(
        "/v1/agents/import",
        files={"file": ("a.af", body, "application/json")},
        data={"override_name": name},
    )


def _agents_named(http: httpx.Client, name: str) -> list[dict[str, Any]]:
    return http.get("/v1/agents/", params={"name": name}).json()


@pytest.mark.parametrize(
    ("what", "document"),
    [
        ("bad last passage", _document(301, bad_last=True)),
        ("undefined block", {**_document(3), "blocks": []}),
        (
            "bad block label",
            {**_document(3), "blocks": [{"id": "block-0", "label": "a/b", "value": "v"}]},
        ),
        (
            "bad message",
            {
                **_document(3),
                "agents": [
                    {
                        "id": "agent-0",
                        "name": "x",
                        "block_ids": ["block-0"],
                        "messages": [{"role": "user", "content": "hi", "created_at": "soon"}],
                    }
                ],
            },
        ),
    ],
)
def test_a_bad_item_anywhere_leaves_nothing_behind(
    http: httpx.Client, what: str, document: dict[str, Any]
) -> None:
    name = f"atomic {what}"
    blocks_before = len(http.get("/v1/blocks/", params={"limit": 1000}).json())
    response = _import(http, json.dumps(document).encode(), name)
    assert response.status_code == 400, response.text
    assert _agents_named(http, name) == []
    assert len(http.get("/v1/blocks/", params={"limit": 1000}).json()) == blocks_before
    # the same file without the fault imports whole, once
    good = _import(http, json.dumps(_document(301)).encode(), name)
    assert good.status_code == 200, good.text
    (agent_id,) = good.json()["agent_ids"]
    assert http.get(f"/v1/agents/{agent_id}/archival-memory/count").json() == 301
    assert [b["label"] for b in http.get(f"/v1/agents/{agent_id}").json()["blocks"]] == ["human"]
    http.delete(f"/v1/agents/{agent_id}")


@pytest.mark.parametrize(
    ("what", "body", "says"),
    [
        ("not UTF-8", b'{"agents": [{"name": "\xff\xfe"}]}', "UTF-8"),
        ("agents not a list", b'{"agents": {"a": 1}}', "agents"),
        ("metadata a list", b'{"agents": [{"name": "x", "metadata": [1, 2]}]}', "Corrupted"),
        ("name a number", b'{"agents": [{"description": 5}]}', "description"),
        ("deep nesting", b"[" * 100_000 + b"]" * 100_000, "Corrupted"),
        ("tags not strings", b'{"agents": [{"name": "x", "tags": [1]}]}', "tags"),
    ],
)
def test_unreadable_files_are_refused(
    http: httpx.Client, what: str, body: bytes, says: str
) -> None:
    response = _import(http, body, f"refused {what}")
    assert response.status_code == 400, response.text
    assert says in response.json()["detail"]
    assert _agents_named(http, f"refused {what}") == []


def test_import_size_is_capped_with_413(tmp_path: Path) -> None:
    with app_client(tmp_path / "data", {"MNEMO_MAX_IMPORT_ITEMS": "100"}) as http:
        response = _import(http, json.dumps(_document(100)).encode(), "too big")
        assert response.status_code == 413
        detail = response.json()["detail"]
        assert "101" in detail and "max_import_items" in detail
        assert _agents_named(http, "too big") == []
        assert _import(http, json.dumps(_document(99)).encode(), "fits").status_code == 200

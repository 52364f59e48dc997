"""The viewer's rules without a browser (the in-process app): who may look, the CSRF token on
every write, security headers, `.json` twins, and the writes a browser test does not cover."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from tests.conftest import ServerProcess
from tests.inprocess import app_client


@pytest.fixture(scope="module")
def viewer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with app_client(tmp_path_factory.mktemp("viewer") / "data") as client:
        yield client


@pytest.fixture
def agent(viewer: TestClient) -> dict[str, Any]:
    created = viewer.post(
        "/v1/agents/",
        json={"name": "viewed", "memory_blocks": [{"label": "notes", "value": "n", "limit": 40}]},
    ).json()
    base = f"/v1/agents/{created['id']}/archival-memory"
    for text, session in (("deploy went fine", "s-9"), ("rollback after a bad migration", "s-9")):
        viewer.post(base, json={"text": text, "metadata": {"type": "note", "session_id": session}})
    viewer.post(
        f"/v1/agents/{created['id']}/messages/import",
        json={
            "messages": [
                {"message_type": "user_message", "content": "hi", "conversation_id": "s-9"}
            ]
        },
    )
    return created


def csrf(viewer: TestClient, path: str) -> str:
    viewer.get(path)
    token = viewer.cookies.get("mnemo_csrf")
    assert token
    return token


def test_pages_send_security_headers_and_have_json_twins(
    viewer: TestClient, agent: dict[str, Any]
) -> None:
    page = viewer.get(f"/ui/agents/{agent['id']}")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert 'href="/ui/agents/' + agent["id"] + '.json"' in page.text
    twin = viewer.get(f"/ui/agents/{agent['id']}.json").json()
    assert [b["label"] for b in twin["blocks"]] == ["notes"]
    assert {p["text"] for p in twin["passages"]} == {
        "deploy went fine",
        "rollback after a bad migration",
    }
    assert twin["agent"]["messages"] == 1
    sizes = len("deploy went fine") + len("rollback after a bad migration") + len("n")
    assert twin["agent"]["size_chars"] == sizes  # every memory read: the exact size
    assert f"about {sizes} chars" in page.text
    listing = viewer.get("/ui/index.json?q=viewed").json()
    assert any(p["id"] == agent["id"] for p in listing["projects"])
    assert viewer.get("/ui/agents/agent-00000000-0000-4000-8000-000000000000").status_code == 404
    found = viewer.get(f"/ui/agents/{agent['id']}/search.json", params={"q": "migration"}).json()
    assert found["results"][0]["text"] == "rollback after a bad migration"
    assert found["results"][0]["matched_terms"] == ["migrat"]


def test_without_a_key_only_this_machine_may_look(tmp_path: Path) -> None:
    with app_client(tmp_path / "data", client=("10.1.2.3", 40000)) as remote:
        page = remote.get("/ui/")
        assert page.status_code == 403 and "MNEMO_API_KEY" in page.text
        assert remote.get("/ui/index.json").status_code == 403
        assert remote.get("/v1/health/").status_code == 200  # the API is not the viewer


def test_every_write_needs_the_pages_csrf_token(viewer: TestClient, agent: dict[str, Any]) -> None:
    path = f"/ui/agents/{agent['id']}/blocks/notes"
    for token in (None, "", "a-guess"):
        form = {"value": "changed"} | ({"csrf": token} if token is not None else {})
        refused = viewer.post(path, data=form)
        assert refused.status_code == 403 and "CSRF" in refused.text
    notes = viewer.get(f"/v1/agents/{agent['id']}/core-memory/blocks/notes").json()
    assert notes["value"] == "n"
    token = csrf(viewer, f"/ui/agents/{agent['id']}")
    appended = viewer.post(f"{path}/append", data={"csrf": token, "text": "second line"})
    assert appended.status_code == 200
    assert (
        viewer.get(f"/v1/agents/{agent['id']}/core-memory/blocks/notes").json()["value"]
        == "n\nsecond line"
    )


def test_edit_a_memory_re_embeds_it_and_bad_metadata_saves_nothing(
    viewer: TestClient, agent: dict[str, Any]
) -> None:
    passages = viewer.get(f"/v1/agents/{agent['id']}/archival-memory").json()
    target = next(p for p in passages if p["text"] == "deploy went fine")
    path = f"/ui/agents/{agent['id']}/passages/{target['id']}"
    token = csrf(viewer, path)
    bad = viewer.post(path, data={"csrf": token, "text": "x", "tags": "", "metadata": "[1, 2]"})
    assert bad.status_code == 400 and "JSON object" in bad.text
    assert (
        viewer.get(f"/v1/agents/{agent['id']}/archival-memory/{target['id']}").json()["text"]
        == "deploy went fine"
    )
    metadata = json.dumps({"type": "decision", "reviewed": True})
    saved = viewer.post(
        path,
        data={
            "csrf": token,
            "text": "Canary deploys go out at 10:00 UTC",
            "tags": "deploy, ops",
            "metadata": metadata,
        },
    )
    assert saved.status_code == 200
    stored = viewer.get(f"/v1/agents/{agent['id']}/archival-memory/{target['id']}").json()
    assert stored["text"] == "Canary deploys go out at 10:00 UTC"
    assert stored["tags"] == ["deploy", "ops"]
    assert stored["metadata"] == {"type": "decision", "reviewed": True}  # session_id removed
    hits = viewer.get(
        f"/v1/agents/{agent['id']}/archival-memory/search",
        params={"query": "canary", "mode": "vector", "top_k": 1},
    ).json()["results"]
    assert hits[0]["id"] == target["id"]


def test_forget_a_session_and_export(viewer: TestClient, agent: dict[str, Any]) -> None:
    path = f"/ui/agents/{agent['id']}/sessions/s-9"
    token = csrf(viewer, path)
    done = viewer.post(f"{path}/forget", data={"csrf": token})
    assert done.status_code == 200 and "2 memories and 1 messages deleted" in done.text
    assert viewer.get(f"/v1/agents/{agent['id']}/archival-memory").json() == []
    assert viewer.get(f"{path}.json").json()["messages"] == []
    export = viewer.get(f"/ui/agents/{agent['id']}/export")
    assert 'filename="viewed.af"' in export.headers["content-disposition"]
    assert json.loads(export.text)["agents"][0]["name"] == "viewed"


def test_sign_in_with_a_key(tmp_path: Path) -> None:
    with app_client(tmp_path / "data", {"MNEMO_API_KEY": "sesame"}) as viewer:
        start = viewer.get("/ui/team", follow_redirects=False)
        assert start.status_code == 303 and start.headers["location"] == "/ui/login?next=/ui/team"
        token = csrf(viewer, "/ui/login")
        wrong = viewer.post(
            "/ui/login", data={"csrf": token, "api_key": "nope", "next": "/ui/team"}
        )
        assert wrong.status_code == 401
        right = viewer.post(
            "/ui/login",
            data={"csrf": token, "api_key": "sesame", "next": "//evil.example/"},
            headers={"X-Forwarded-Proto": "https"},
            follow_redirects=False,
        )
        assert right.headers["location"] == "/ui/"  # never a redirect off the viewer
        cookie = right.headers["set-cookie"]
        assert re.search(r"mnemo_session=[^;]+;", cookie)
        for flag in ("HttpOnly", "SameSite=strict", "Secure", "Path=/ui"):
            assert flag.lower() in cookie.lower(), (flag, cookie)
        assert viewer.get("/ui/team.json").status_code == 401  # a Secure cookie: not over http
        viewer.post("/ui/login", data={"csrf": token, "api_key": "sesame", "next": "/ui/team"})
        assert viewer.get("/ui/team.json").status_code == 200
        assert viewer.get("/v1/agents/").status_code == 401  # the cookie is not an API key
        assert (
            viewer.get("/ui/team.json", headers={"Authorization": "Bearer sesame"}).status_code
            == 200
        )


def test_mnemo_ui_prints_the_address_or_says_the_server_is_down(
    server: ServerProcess, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MNEMO_")},
        "HOME": str(tmp_path),
        "MNEMO_CONFIG": str(config),
        "MNEMO_STATE_DIR": str(tmp_path / "state"),
        "MNEMO_URL": server.url,
    }
    up = subprocess.run(
        [sys.executable, "-m", "mnemo", "ui", "--print", "--project", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert up.returncode == 0, up.stderr
    assert up.stdout.strip() == f"{server.url}/ui/"
    assert httpx.get(up.stdout.strip()).status_code == 200
    down = subprocess.run(
        [sys.executable, "-m", "mnemo", "ui", "--print"],
        env={**env, "MNEMO_URL": "http://127.0.0.1:9"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert down.returncode == 2 and "no server answers at http://127.0.0.1:9" in down.stderr


def test_terminal_escapes_in_a_memory_are_shown_not_sent(
    viewer: TestClient, agent: dict[str, Any]
) -> None:
    """Command output stored by the hooks holds ANSI escapes: the page shows them as visible
    symbols, and every other read of the memory still answers."""
    text = "pytest failed: \x1b[31mFAILED\x1b[0m tests/test_upload.py\x07"
    created = viewer.post(f"/v1/agents/{agent['id']}/archival-memory", json={"text": text}).json()[
        0
    ]
    page = viewer.get(f"/ui/agents/{agent['id']}/passages/{created['id']}")
    assert page.status_code == 200
    shown = page.text.split('<pre class="memory">')[1].split("</pre>")[0]
    assert "\x1b" not in shown and "\x07" not in shown
    assert "\u241b[31mFAILED\u241b[0m" in shown and "\u2407" in shown
    # The edit box keeps the text as stored, so saving it changes nothing.
    assert text.replace("\x07", "") in page.text.replace("\x07", "")
    for path in (f"/ui/agents/{agent['id']}", f"/ui/agents/{agent['id']}/search?q=pytest+failed"):
        assert viewer.get(path).status_code == 200, path
    twin = viewer.get(f"/ui/agents/{agent['id']}/passages/{created['id']}.json").json()
    assert twin["passage"]["text"] == text  # stored as written; only the page shows symbols

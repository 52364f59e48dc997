"""The memory viewer in a real headless Chromium against a live server, on both backends:
browse, search with filters, edit a block (over its limit: the error is shown and nothing is
saved), delete a memory, sign in with a key, stored script that never runs, and a cross-site
form post that is refused."""

from __future__ import annotations

import http.server
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.conftest import ServerProcess, start_server
from tests.ui.conftest import screenshot

PAYLOAD = '<script>window.pwned = 1</script><img src="x" onerror="window.pwned = 2">'


def wait_for(driver: Any, css: str, timeout: float = 10) -> Any:
    return WebDriverWait(driver, timeout).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
    )


@pytest.fixture
def project(http: httpx.Client) -> dict[str, Any]:
    """A project as Claude Code sessions leave it: blocks, memories of several types, a
    session summary with its conversation, and a memory holding hostile markup."""
    name = f"project-shop-{uuid.uuid4().hex[:8]}"
    agent = http.post(
        "/v1/agents/",
        json={
            "name": name,
            "metadata": {"mnemo_project": f"/home/dana/{name}"},
            "memory_blocks": [
                {"label": "learnings", "value": "Run ruff before committing.", "limit": 120},
                {"label": "human", "value": "Dana prefers small PRs.", "limit": 500},
            ],
        },
    ).json()
    base = f"/v1/agents/{agent['id']}/archival-memory"
    items = [
        ("Upload retries need jitter: three clients retried in step", "decision", {}),
        (
            "pytest tests/test_upload.py failed: TimeoutError in upload_chunk",
            "command_failure",
            {"file": "src/upload.py"},
        ),
        ("Edited src/upload.py: backoff with jitter", "file_change", {"path": "src/upload.py"}),
        (f"Release notes mention {PAYLOAD}", "note", {}),
        (
            "Session summary: fixed the upload retries; tests pass",
            "session_summary",
            {"files": ["src/upload.py"], "errors": 1, "duration_seconds": 600},
        ),
    ]
    ids = {}
    for text, kind, meta in items:
        created = http.post(
            base,
            json={
                "text": text,
                "tags": [kind],
                "metadata": {"type": kind, "session_id": "s-1", **meta},
            },
        ).json()
        ids[kind] = created[0]["id"]
    http.post(
        f"/v1/agents/{agent['id']}/messages/import",
        json={
            "messages": [
                {
                    "message_type": "user_message",
                    "content": "why do uploads time out?",
                    "conversation_id": "s-1",
                },
                {
                    "message_type": "assistant_message",
                    "content": "No jitter in the retries.",
                    "conversation_id": "s-1",
                },
            ]
        },
    )
    return {"id": agent["id"], "name": name, "passages": ids}


def block_value(http: httpx.Client, agent_id: str, label: str) -> str:
    return http.get(f"/v1/agents/{agent_id}/core-memory/blocks/{label}").json()["value"]


def test_browse_search_and_timeline(
    browser: Any, server: ServerProcess, project: dict[str, Any], tmp_path: Path
) -> None:
    browser.delete_all_cookies()
    browser.get(f"{server.url}/ui/?q={project['name']}")
    link = wait_for(browser, f"a[href='/ui/agents/{project['id']}']")
    assert "/home/dana/" in browser.find_element(By.CSS_SELECTOR, "td.path").text
    screenshot(browser, tmp_path, "projects")
    link.click()
    wait_for(browser, "#block-learnings textarea")
    assert "Run ruff before committing." in browser.find_element(
        By.ID, "value-learnings"
    ).get_attribute("value")
    assert (
        browser.find_element(By.CSS_SELECTOR, "#block-learnings meter").get_attribute("max")
        == "120"
    )
    screenshot(browser, tmp_path, "project")

    browser.find_element(By.LINK_TEXT, "Search").click()
    box = wait_for(browser, "input[name=q]")
    box.send_keys("why do uploads time out")
    browser.find_element(By.CSS_SELECTOR, "details summary").click()
    browser.find_element(By.NAME, "type").send_keys("command_failure")
    browser.find_element(By.CSS_SELECTOR, "form.search button").click()
    wait_for(browser, "ol.results li")
    results = browser.find_elements(By.CSS_SELECTOR, "ol.results li")
    assert len(results) == 1, [r.text for r in results]  # the type filter ran on the server
    assert "TimeoutError in upload_chunk" in results[0].text
    marked = {m.text.lower() for m in results[0].find_elements(By.TAG_NAME, "mark")}
    assert {"upload", "failed"} & marked or "upload_chunk" in marked, marked
    assert "matched:" in results[0].text
    screenshot(browser, tmp_path, "search")

    # A file's history: the same page filtered by file, through the URL a user can share.
    browser.get(f"{server.url}/ui/agents/{project['id']}/search?q=jitter&file=src/upload.py")
    texts = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "ol.results li")]
    assert len(texts) == 1 and "backoff with jitter" in texts[0]

    # What was said: the same page in its conversations mode, chosen in the form.
    browser.get(f"{server.url}/ui/agents/{project['id']}/search")
    wait_for(browser, "input[name=q]").send_keys("uploads time out")
    Select(browser.find_element(By.NAME, "mode")).select_by_value("conversations")
    browser.find_element(By.CSS_SELECTOR, "form.search button").click()
    wait_for(browser, "ol.results li.said")
    said = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "ol.results li.said")]
    assert "why do uploads time out?" in said[0], said
    assert any("No jitter in the retries." in t for t in said), said  # by the question before it
    screenshot(browser, tmp_path, "search-conversations")
    browser.find_element(By.CSS_SELECTOR, "ol.results li.said a").click()
    wait_for(browser, ".message")
    assert "/sessions/s-1" in browser.current_url
    browser.get(
        f"{server.url}/ui/agents/{project['id']}/search?q=uploads&mode=conversations&type=x"
    )
    assert "filters of memories" in wait_for(browser, "p.error").text

    browser.get(f"{server.url}/ui/agents/{project['id']}/timeline")
    wait_for(browser, "article.session")
    assert (
        "fixed the upload retries" in browser.find_element(By.CSS_SELECTOR, "article.session").text
    )
    screenshot(browser, tmp_path, "timeline")
    browser.find_element(By.CSS_SELECTOR, "article.session h2 a").click()
    wait_for(browser, ".message")
    assert "No jitter in the retries." in browser.page_source


def test_block_over_its_limit_is_refused_and_nothing_is_saved(
    browser: Any, server: ServerProcess, http: httpx.Client, project: dict[str, Any], tmp_path: Path
) -> None:
    browser.delete_all_cookies()
    browser.get(f"{server.url}/ui/agents/{project['id']}")
    area = wait_for(browser, "#value-learnings")
    area.clear()
    area.send_keys("x" * 121)
    counter = browser.find_element(By.CSS_SELECTOR, ".count[data-for='value-learnings']")
    assert counter.text == "121" and "over" in counter.get_attribute("class")
    browser.find_element(By.CSS_SELECTOR, "#block-learnings form button").click()
    error = wait_for(browser, "#block-learnings .error")
    assert "Exceeds 120 character limit" in error.text
    assert browser.find_element(By.ID, "value-learnings").get_attribute("value") == "x" * 121
    screenshot(browser, tmp_path, "block-over-limit")
    assert block_value(http, project["id"], "learnings") == "Run ruff before committing."

    # Within the limit it saves; an editor still holding the old version is told, not obeyed.
    browser.get(f"{server.url}/ui/agents/{project['id']}")
    stale_version = wait_for(browser, "#block-learnings input[name=version]").get_attribute("value")
    area = browser.find_element(By.ID, "value-learnings")
    area.clear()
    area.send_keys("Run ruff and pytest before committing.")
    browser.find_element(By.CSS_SELECTOR, "#block-learnings form button").click()
    WebDriverWait(browser, 10).until(lambda d: "#block-learnings" in d.current_url)
    assert block_value(http, project["id"], "learnings") == "Run ruff and pytest before committing."
    browser.execute_script(
        "document.querySelector('#block-learnings input[name=version]').value = arguments[0]",
        stale_version,
    )
    area = browser.find_element(By.ID, "value-learnings")
    area.clear()
    area.send_keys("An edit from an old tab")
    browser.find_element(By.CSS_SELECTOR, "#block-learnings form button").click()
    assert "changed since you opened it" in wait_for(browser, "#block-learnings .error").text
    assert block_value(http, project["id"], "learnings") == "Run ruff and pytest before committing."


def test_delete_a_memory_after_confirming(
    browser: Any, server: ServerProcess, http: httpx.Client, project: dict[str, Any], tmp_path: Path
) -> None:
    browser.delete_all_cookies()
    passage_id = project["passages"]["decision"]
    browser.get(f"{server.url}/ui/agents/{project['id']}/passages/{passage_id}")
    wait_for(browser, "pre.memory")
    screenshot(browser, tmp_path, "memory")
    browser.find_element(By.CSS_SELECTOR, "button.danger").click()
    browser.switch_to.alert.dismiss()  # changed their mind: nothing happens
    assert http.get(f"/v1/agents/{project['id']}/archival-memory/{passage_id}").status_code == 200
    browser.find_element(By.CSS_SELECTOR, "button.danger").click()
    browser.switch_to.alert.accept()
    assert f"Deleted {passage_id}" in wait_for(browser, ".notice").text
    assert http.get(f"/v1/agents/{project['id']}/archival-memory/{passage_id}").status_code == 404


def test_stored_markup_is_shown_as_text_and_never_runs(
    browser: Any, server: ServerProcess, project: dict[str, Any]
) -> None:
    browser.delete_all_cookies()
    note = project["passages"]["note"]
    for path in (
        f"/ui/agents/{project['id']}",
        f"/ui/agents/{project['id']}/passages/{note}",
        f"/ui/agents/{project['id']}/search?q=release+notes+script",
    ):
        browser.get(server.url + path)
        WebDriverWait(browser, 10).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )
        assert browser.execute_script("return window.pwned") is None, path
        assert "<script>window.pwned = 1</script>" in browser.find_element(By.TAG_NAME, "main").text
        assert not browser.find_elements(By.CSS_SELECTOR, "main img")


class _EvilSite(http.server.BaseHTTPRequestHandler):
    """Another site's page: a form that posts to the viewer as soon as it loads."""

    target = ""

    def do_GET(self) -> None:
        body = (
            f'<form id="f" method="post" action="{self.target}">'
            '<input name="value" value="pwned by another site"><input name="csrf" value="guess">'
            "</form><script>document.getElementById('f').submit()</script>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def evil_site() -> Iterator[tuple[http.server.ThreadingHTTPServer, type[_EvilSite]]]:
    handler = type("Evil", (_EvilSite,), {})
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    site.daemon_threads = True  # a browser's idle pre-connection must not hold up shutdown
    threading.Thread(target=site.serve_forever, daemon=True).start()
    yield site, handler
    site.shutdown()


def test_a_cross_site_form_post_is_refused(
    browser: Any,
    server: ServerProcess,
    http: httpx.Client,
    project: dict[str, Any],
    evil_site: tuple[http.server.ThreadingHTTPServer, type[_EvilSite]],
) -> None:
    site, handler = evil_site
    handler.target = f"{server.url}/ui/agents/{project['id']}/blocks/human"
    browser.delete_all_cookies()
    browser.get(f"{server.url}/ui/agents/{project['id']}")  # the user has the viewer open
    wait_for(browser, "#block-human")
    browser.get(f"http://localhost:{site.server_port}/")  # then visits another site
    WebDriverWait(browser, 10).until(lambda d: d.current_url.startswith(server.url))
    assert "403" in browser.page_source or "Cross-site" in browser.page_source
    assert block_value(http, project["id"], "human") == "Dana prefers small PRs."


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = start_server(
        tmp_path_factory.mktemp("viewer-key") / "data", env={"MNEMO_API_KEY": "k3y-for-the-viewer"}
    )
    yield running
    running.stop()


def test_sign_in_with_the_api_key(browser: Any, secured: ServerProcess, tmp_path: Path) -> None:
    with secured.client() as api:
        agent = api.post("/v1/agents/", json={"name": "keyed-project"}).json()
    browser.delete_all_cookies()
    browser.get(f"{secured.url}/ui/agents/{agent['id']}")
    field = wait_for(browser, "input[name=api_key]")
    assert "/ui/login" in browser.current_url
    field.send_keys("not-the-key")
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()
    assert "not this server's API key" in wait_for(browser, ".error").text
    screenshot(browser, tmp_path, "sign-in")
    browser.find_element(By.NAME, "api_key").send_keys("k3y-for-the-viewer")
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()
    WebDriverWait(browser, 10).until(lambda d: d.current_url.endswith(agent["id"]))
    assert "keyed-project" in browser.find_element(By.TAG_NAME, "h1").text
    session = browser.get_cookie("mnemo_session")
    assert session is not None and session["httpOnly"] and session["sameSite"] == "Strict"
    # The cookie opens the viewer only: the REST API still wants the key.
    cookie = {"mnemo_session": session["value"]}
    assert httpx.get(f"{secured.url}/v1/agents/", cookies=cookie).status_code == 401
    assert httpx.get(f"{secured.url}/ui/index.json", cookies=cookie).status_code == 200
    assert httpx.get(f"{secured.url}/ui/index.json").status_code == 401

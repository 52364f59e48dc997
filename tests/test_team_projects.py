"""Team-shared blocks and the projects view, end to end: `mnemo team block …` and `mnemo
projects …` against a live server, with the session-start hook showing what each project sees."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from mnemo import Client
from tests.claude.conftest import HookRunner, git_project
from tests.claude.fixtures import payload
from tests.conftest import ServerProcess


@pytest.fixture
def runner(server: ServerProcess, tmp_path: Path) -> HookRunner:
    home = tmp_path / "home"
    home.mkdir()
    return HookRunner(home=home, url=server.url)


def cli(
    runner: HookRunner, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return runner.cli(*args, cwd=cwd)


def ok(runner: HookRunner, *args: str, cwd: Path | None = None) -> str:
    result = cli(runner, *args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout


def session_context(runner: HookRunner, project: Path) -> str:
    _, reply = runner.run("session-start", payload("SessionStart", project, None, source="startup"))
    assert reply is not None
    return reply["hookSpecificOutput"]["additionalContext"]


def test_team_block_reaches_every_attached_project(runner: HookRunner, tmp_path: Path) -> None:
    web, api, docs = (git_project(tmp_path / name) for name in ("web", "api", "docs"))
    for project in (web, api, docs):
        session_context(runner, project)  # the hooks create each project's agent
    label = f"team_standards_{tmp_path.name[-12:]}".replace("-", "_")
    created = ok(
        runner, "team", "block", "create", "--label", label, "--template", "team_standards"
    )
    assert f"created team block {label}" in created
    again = cli(runner, "team", "block", "create", "--label", label, "--template", "adr_log")
    assert again.returncode == 2 and "exists; use `update`" in again.stderr

    ok(runner, "team", "block", "attach", label, "--project", str(web), "--project", str(api))
    assert "Never force-push to main" in session_context(runner, web)
    assert "Never force-push to main" in session_context(runner, api)
    assert "Never force-push to main" not in session_context(runner, docs)

    standards = tmp_path / "standards.md"
    standards.write_text("# Team standards\n- Money is Decimal, never float.\n")
    updated = ok(runner, "team", "block", "update", label, "--file", str(standards))
    assert "2 project(s) see it" in updated
    ok(runner, "team", "block", "update", label, "--append", "- Feature flags expire in 90 days.")
    for project in (web, api):
        context = session_context(runner, project)
        assert "Money is Decimal, never float." in context
        assert "Feature flags expire in 90 days." in context
        assert "Never force-push" not in context

    listing = ok(runner, "team", "block", "list")
    section = listing.split(label, 1)[1].split("\n\n")[0]
    assert section.count("shared with") == 2

    detached = ok(runner, "team", "block", "detach", label, "--project", str(web))
    assert "detached" in detached and "is kept" in detached
    assert "Money is Decimal" not in session_context(runner, web)
    assert "Money is Decimal" in session_context(runner, api)  # still shared, not deleted
    blocks = httpx.get(f"{runner.url}/v1/blocks/", params={"label": label}).json()
    assert len(blocks) == 1 and "Feature flags" in blocks[0]["value"]

    ok(runner, "team", "block", "attach", label, "--all")
    assert "Money is Decimal" in session_context(runner, docs)
    missing = cli(runner, "team", "block", "update", "no_such_block", "--append", "x")
    assert missing.returncode == 2 and "no team block labelled 'no_such_block'" in missing.stderr


def test_projects_list_show_forget(runner: HookRunner, tmp_path: Path) -> None:
    alpha = git_project(tmp_path / "alpha")
    session_context(runner, alpha)
    memory = Client(runner.url)
    agent = memory.project_agent(str(alpha))
    memory.remember(agent, "Session summary: fixed the login redirect", type="session_summary")
    memory.remember(
        agent, "Edited src/login.py", type="file_change", metadata={"path": "src/login.py"}
    )

    listing = ok(runner, "projects", "list")
    line = next(row for row in listing.splitlines() if str(alpha.resolve()) in row)
    assert line.split()[1] == "2"  # memories
    shown = ok(runner, "projects", "show", "--project", str(alpha))
    assert "memories: 2" in shown and "fixed the login redirect" in shown
    assert "project_context" in shown

    refused = cli(runner, "projects", "forget", "--project", str(alpha))
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert memory.agent(agent)["id"] == agent
    gone = ok(runner, "projects", "forget", "--project", str(alpha), "--yes")
    assert "forgot project-alpha" in gone
    assert httpx.get(f"{runner.url}/v1/agents/{agent}").status_code == 404
    cache = list((runner.state / "projects").glob("*.json"))
    assert all(json.loads(p.read_text())["agent_id"] != agent for p in cache)


def test_client_helpers_and_dedupe(server: ServerProcess) -> None:
    with Client(server.url) as memory:
        agent = httpx.post(f"{server.url}/v1/agents/", json={"name": "client-helpers"}).json()["id"]
        first = memory.remember(
            agent,
            "TimeoutError: upload to s3 took longer than 30s",
            type="command_failure",
            dedupe=True,
        )
        twin = memory.remember(
            agent,
            "TimeoutError: upload to s3 took longer than 30 s",
            type="command_failure",
            dedupe=True,
        )
        assert twin["merged"] is True and twin["id"] == first["id"]
        assert twin["metadata"]["occurrences"] == 2
        other_type = memory.remember(
            agent, "TimeoutError: upload to s3 took longer than 30s", type="incident", dedupe=True
        )
        assert other_type["merged"] is False and other_type["id"] != first["id"]
        memory.remember(
            agent, "Deployed 3.1 to staging", type="deployment", metadata={"environment": "staging"}
        )
        memory.remember(
            agent,
            "Deployed 3.1 to production",
            type="deployment",
            metadata={"environment": "production"},
        )
        assert [d["metadata"]["environment"] for d in memory.deployments(agent, "production")] == [
            "production"
        ]
        bugs = memory.similar_bugs(agent, "upload timed out talking to s3")
        assert bugs[0]["id"] in (first["id"], other_type["id"])
        changed = memory.update_passage(agent, first["id"], metadata={"status": "resolved"})
        assert changed["metadata"]["status"] == "resolved"
        assert changed["metadata"]["occurrences"] == 2  # merged, not replaced
        assert [p["id"] for p in memory.by_metadata(agent, status="resolved")] == [first["id"]]
        assert memory.count(agent) == 4
        assert len(memory.recent(agent, since="1h")) == 4
        with pytest.raises(ValueError, match="not a time"):
            memory.recent(agent, since="yesterday-ish")

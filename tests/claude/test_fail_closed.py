"""Setup mistakes fail closed and loudly: the guard never depends on the server or the config,
a bad URL is one clear line, and writes refused for a missing key wait in the spool."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from mnemo.remote.project import agent_name
from tests.claude.conftest import HookRunner, git_project
from tests.claude.fixtures import payload
from tests.conftest import free_port, start_server

DANGEROUS = {"command": "sudo rm -rf /"}


def write_a_py(project: Path) -> dict:  # type: ignore[type-arg]
    """The PostToolUse event of Claude Code writing a.py in `project`."""
    return payload(
        "PostToolUse",
        project,
        tool_name="Write",
        tool_input={"file_path": str(project / "a.py"), "content": "x = 1"},
        tool_response={"filePath": str(project / "a.py")},
    )


@pytest.mark.parametrize(
    ("what", "env", "config"),
    [
        ("URL without scheme", {"MNEMO_URL": "localhost:8283"}, None),
        ("timeout not a number", {"MNEMO_CONNECT_TIMEOUT": "soon"}, None),
        ("config not TOML", {}, "url = http://nowhere\n[hooks\n"),
    ],
)
def test_guard_denies_whatever_the_config(
    tmp_path: Path, what: str, env: dict[str, str], config: str | None
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    hooks = HookRunner(home=home, url="http://127.0.0.1:9")
    if config is not None:
        (home / "no-config.toml").write_text(config)
    project = git_project(tmp_path / "p")
    result, reply = hooks.run(
        "pre-tool-use",
        payload("PreToolUse", project, tool_name="Bash", tool_input=DANGEROUS),
        **env,
    )
    assert reply is not None, result.stderr
    assert reply["hookSpecificOutput"]["permissionDecision"] == "deny"


def test_bad_url_is_one_clear_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    hooks = HookRunner(home=home, url="localhost:8283")
    project = git_project(tmp_path / "p")
    for command in (["status"], ["doctor"], ["search", "anything"]):
        result = hooks.cli(*command, cwd=project)
        assert result.returncode != 0, command
        assert "Traceback" not in result.stderr, result.stderr
        assert "http://127.0.0.1:8283" in result.stderr and "MNEMO_URL" in result.stderr
    _, reply = hooks.run("session-start", payload("SessionStart", project, source="startup"))
    assert reply is not None and "MNEMO_URL" in reply["systemMessage"]


def test_missing_api_key_is_reported_and_writes_wait_in_the_spool(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", env={"MNEMO_API_KEY": "s3cret"})
    home = tmp_path / "home"
    home.mkdir()
    hooks = HookRunner(home=home, url=server.url)
    project = git_project(tmp_path / "p")
    try:
        doctor = hooks.cli("doctor", cwd=project)
        assert doctor.returncode != 0
        assert "FAIL API request refused" in doctor.stdout and "MNEMO_API_KEY" in doctor.stdout

        _, reply = hooks.run("session-start", payload("SessionStart", project, source="startup"))
        assert reply is not None and "401" in reply["systemMessage"]
        edit = write_a_py(project)
        hooks.run("post-tool-use", edit)
        hooks.settle(delivered=False)  # refused: the writer leaves it for a key
        spool = hooks.state / "spool"
        assert len(list(spool.glob("*.json"))) == 1
        assert not (spool / "failed").exists()

        replayed = hooks.cli("hook", "replay", env={"MNEMO_API_KEY": "s3cret"})
        assert replayed.returncode == 0, replayed.stderr
        assert list(spool.glob("*.json")) == []
        headers = {"Authorization": "Bearer s3cret"}
        found = httpx.get(
            f"{server.url}/v1/agents/",
            params={"name": agent_name(project.resolve())},
            headers=headers,
        ).json()
        stored = httpx.get(
            f"{server.url}/v1/agents/{found[0]['id']}/archival-memory", headers=headers
        ).json()
        assert [p["metadata"]["type"] for p in stored] == ["file_change"]
    finally:
        server.stop()


def test_a_mistyped_path_is_an_error_not_an_empty_database(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    hooks = HookRunner(home=home, url="http://127.0.0.1:9")
    typo = tmp_path / "typo.sqlite3"
    copied = hooks.cli(
        "migrate-data", "--from", f"sqlite://{typo}", "--to", f"sqlite://{tmp_path / 'to.db'}"
    )
    assert copied.returncode != 0 and "no mnemo database" in copied.stderr
    assert not typo.exists()
    backup = hooks.cli("export", "--all", "--data-dir", str(tmp_path / "nodir"), "-o", "b.gz")
    assert backup.returncode != 0 and "no mnemo database" in backup.stderr
    assert not (tmp_path / "nodir").exists()
    reindexed = hooks.cli("reindex", "--data-dir", str(tmp_path / "nodir"))
    assert reindexed.returncode != 0 and not (tmp_path / "nodir").exists()


def test_reading_never_creates_a_project(hooks: HookRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    project = git_project(tmp_path / "unseen")
    before = httpx.get(f"{server.url}/v1/agents/", params={"limit": 1000}).json()
    for command in (
        ["search", "anything"],
        ["projects", "show"],
        ["projects", "forget", "--yes"],
        ["prune", "--type", "file_change", "--keep", "1"],
    ):
        result = hooks.cli(*command, cwd=project)
        assert result.returncode != 0, (command, result.stdout)
        assert "no memory for the project" in result.stderr, (command, result.stderr)
    label = f"standards_{tmp_path.name[-6:]}"
    created = hooks.cli("team", "block", "create", "--label", label, "--template", "team_standards")
    assert created.returncode == 0, created.stderr
    attach = hooks.cli("team", "block", "attach", label, "--project", "/nonexistent")
    assert attach.returncode != 0 and "no such directory" in attach.stderr, attach.stderr
    after = httpx.get(f"{server.url}/v1/agents/", params={"limit": 1000}).json()
    assert len(after) == len(before)


def test_agent_id_in_the_config_file_pins_commands_too(
    hooks: HookRunner,
    server,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    agent = httpx.post(f"{server.url}/v1/agents/", json={"name": "pinned by file"}).json()["id"]
    httpx.post(
        f"{server.url}/v1/agents/{agent}/archival-memory",
        json={"text": "the pinned agent remembers the zebra deployment"},
    )
    (hooks.home / "no-config.toml").write_text(f'agent_id = "{agent}"\n')
    project = git_project(tmp_path / "elsewhere")
    found = hooks.cli("search", "zebra deployment", cwd=project)
    assert found.returncode == 0, found.stderr
    assert "zebra" in found.stdout


def test_status_counts_every_passage(hooks: HookRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    project = git_project(tmp_path / "counted")
    hooks.run("session-start", payload("SessionStart", project, source="startup"))
    found = httpx.get(
        f"{server.url}/v1/agents/", params={"name": agent_name(project.resolve())}
    ).json()
    batch = {"passages": [{"text": f"note {i}"} for i in range(1001)]}
    httpx.post(
        f"{server.url}/v1/agents/{found[0]['id']}/archival-memory/batch", json=batch, timeout=120
    )
    status = hooks.cli("status", cwd=project)
    assert "archival passages: 1,001" in status.stdout, status.stdout


def test_spooled_writes_follow_the_project_to_its_new_agent(
    hooks: HookRunner,
    server,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    """A write spooled for the project's cached agent, which is gone by replay time (forgotten
    and re-created), lands in the project's current agent, not in failed/."""
    project = git_project(tmp_path / "moved")
    hooks.run("session-start", payload("SessionStart", project, source="startup"))
    name = agent_name(project.resolve())
    (old,) = httpx.get(f"{server.url}/v1/agents/", params={"name": name}).json()
    offline = HookRunner(home=hooks.home, url=f"http://127.0.0.1:{free_port()}")
    edit = write_a_py(project)
    offline.run("post-tool-use", edit)
    offline.settle(delivered=False)  # the writer found no server and stopped
    spool = hooks.state / "spool"
    assert len(list(spool.glob("*.json"))) == 1
    assert httpx.delete(f"{server.url}/v1/agents/{old['id']}").status_code == 200

    replayed = hooks.cli("hook", "replay")
    assert replayed.returncode == 0, replayed.stderr
    assert list(spool.glob("*.json")) == [] and not (spool / "failed").exists()
    (new,) = httpx.get(f"{server.url}/v1/agents/", params={"name": name}).json()
    assert new["id"] != old["id"]
    stored = httpx.get(f"{server.url}/v1/agents/{new['id']}/archival-memory").json()
    assert [p["metadata"]["type"] for p in stored] == ["file_change"]


def test_a_server_a_session_starts_serves_the_users_data(tmp_path: Path) -> None:
    """The user ran `mnemo serve --data-dir A`; when it is down, session start starts one on A
    again (it used to start one on the default data dir: a second, empty memory)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    port = free_port()
    home = tmp_path / "home"
    home.mkdir()
    hooks = HookRunner(home=home, url=f"http://127.0.0.1:{port}")
    data = tmp_path / "my-data"
    first = subprocess.Popen(
        [sys.executable, "-m", "mnemo", "serve", "--port", str(port), "--data-dir", str(data)],
        env=hooks.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def wait_healthy() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{hooks.url}/v1/health/", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("server did not start")

    wait_healthy()
    mine = httpx.post(f"{hooks.url}/v1/agents/", json={"name": "kept in A"}).json()["id"]
    first.send_signal(signal.SIGTERM)
    first.wait(timeout=30)

    project = git_project(tmp_path / "p")
    hooks.run(
        "session-start", payload("SessionStart", project, source="startup"), MNEMO_AUTOSTART="1"
    )
    pid = int((hooks.state / "server.pid").read_text())
    try:
        wait_healthy()
        assert httpx.get(f"{hooks.url}/v1/agents/{mine}").status_code == 200
        doctor = hooks.cli("doctor", cwd=project)
        assert f"data: {data} (SQLite)" in doctor.stdout, doctor.stdout
    finally:
        os.kill(pid, signal.SIGTERM)


def test_status_line_shows_the_projects_memory(
    hooks: HookRunner,
    server,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    import json
    import subprocess
    import sys

    project = git_project(tmp_path / "shown")
    status_input = json.dumps({"session_id": "s1", "workspace": {"current_dir": str(project)}})

    def status(runner: HookRunner) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "mnemo", "statusline"],
            input=status_input,
            env=runner.env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0
        return done.stdout.strip()

    assert status(hooks) == "mnemo: no memory for this project yet"
    hooks.run("session-start", payload("SessionStart", project, source="startup"))
    (agent,) = httpx.get(
        f"{server.url}/v1/agents/", params={"name": agent_name(project.resolve())}
    ).json()
    for text in ("one", "two", "three"):
        httpx.post(f"{server.url}/v1/agents/{agent['id']}/archival-memory", json={"text": text})
    assert status(hooks) == "mnemo: 3 memories · 0 recalled this session"
    down = HookRunner(home=hooks.home, url=f"http://127.0.0.1:{free_port()}")
    assert status(down) == "mnemo: server down"

    settings = hooks.home / ".claude" / "settings.json"
    installed = hooks.cli("install", "--user", "--statusline")
    assert installed.returncode == 0, installed.stderr
    assert json.loads(settings.read_text())["statusLine"]["command"].endswith(" statusline")
    hooks.cli("uninstall", "--user")
    assert "statusLine" not in json.loads(settings.read_text())
    settings.write_text(json.dumps({"statusLine": {"type": "command", "command": "mine"}}))
    again = hooks.cli("install", "--user", "--statusline")
    assert "already set" in again.stdout
    assert json.loads(settings.read_text())["statusLine"]["command"] == "mine"

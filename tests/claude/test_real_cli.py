"""The real Claude Code CLI (pinned in tests/claude/cli/package.json), driven with `claude -p`
against a scripted Messages API, with mnemo installed as a user would (`mnemo install --user`)
and a live mnemo server: what the hooks do is what a user gets."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mnemo.remote.project import agent_name
from tests.claude.conftest import git_project, settle
from tests.claude.messages_api import ScriptedAPI, ToolUse, result_text
from tests.conftest import ServerProcess

CLI_DIR = Path(__file__).parent / "cli"
SECRET = "ghp_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"


@pytest.fixture(scope="session")
def claude_bin() -> Path:
    """The pinned CLI, installed into tests/claude/cli/node_modules on first use."""
    binary = CLI_DIR / "node_modules" / ".bin" / "claude"
    with (CLI_DIR / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one test worker installs, the others wait for it
        if not binary.exists():
            npm = shutil.which("npm")
            if npm is None:
                pytest.skip("npm is not installed: the real Claude Code CLI tests need Node.js")
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=CLI_DIR,
                check=True,
                timeout=600,
            )
    return binary


@pytest.fixture
def api() -> Iterator[ScriptedAPI]:
    scripted = ScriptedAPI()
    yield scripted
    scripted.close()


class Session:
    """A temp HOME with mnemo installed for the user, and a git project."""

    def __init__(
        self,
        home: Path,
        project: Path,
        server: ServerProcess,
        claude: Path,
        install: bool = True,
        extra_args: tuple[str, ...] = (),
        install_args: tuple[str, ...] = (),
    ) -> None:
        self.home, self.project, self.server, self.claude = home, project, server, claude
        self.extra_args = extra_args
        (home / "config.toml").write_text("")
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("MNEMO_", "CLAUDE", "ANTHROPIC", "XDG_"))
        }
        self.env.update(
            HOME=str(home),
            MNEMO_URL=server.url,
            MNEMO_CONFIG=str(home / "config.toml"),
            MNEMO_AUTOSTART="0",
            DISABLE_AUTOUPDATER="1",
            CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        )
        if install:
            self.mnemo("install", "--user", *install_args)

    def mnemo(self, *args: str) -> None:
        """`mnemo ARGS` in this HOME; it must succeed."""
        done = subprocess.run(
            [sys.executable, "-m", "mnemo", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr

    def run(self, api: ScriptedAPI, prompt: str) -> dict[str, Any]:
        result = subprocess.run(
            [
                str(self.claude),
                "-p",
                prompt,
                "--output-format",
                "json",
                "--permission-mode",
                "acceptEdits",
                "--allowedTools",
                "Bash,Write,Edit,Read",
                *self.extra_args,
            ],
            cwd=self.project,
            env={
                **self.env,
                "ANTHROPIC_BASE_URL": api.url,
                "ANTHROPIC_API_KEY": "test-key-for-the-scripted-api",
            },
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        return json.loads(result.stdout)

    def agent(self) -> str:
        name = agent_name(self.project.resolve())
        found = httpx.get(f"{self.server.url}/v1/agents/", params={"name": name}).json()
        assert len(found) == 1
        return found[0]["id"]

    def passages(self, **metadata: str) -> list[dict[str, Any]]:
        settle(self.home / ".local" / "state" / "mnemo")  # the hooks' background writes
        params = {"limit": 1000, **{f"metadata.{k}": v for k, v in metadata.items()}}
        return httpx.get(
            f"{self.server.url}/v1/agents/{self.agent()}/archival-memory", params=params
        ).json()


@pytest.fixture
def session(server: ServerProcess, claude_bin: Path, tmp_path: Path) -> Session:
    home = tmp_path / "home"
    home.mkdir()
    return Session(home, git_project(tmp_path / "uploader"), server, claude_bin)


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _revision(repository: Path, ref: str) -> str:
    done = subprocess.run(
        ["git", "rev-parse", ref], cwd=repository, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_guard_denies_through_the_cli_and_ordinary_commands_run(
    session: Session, api: ScriptedAPI, tmp_path: Path
) -> None:
    """A table of ordinary and dangerous commands through the real CLI with `mnemo install`'s
    settings: the ordinary ones run (no deny rule of ours catches them), the dangerous ones
    reach the model as errors and do nothing. Every dangerous one is harmless should it run:
    its target is a temporary HOME, a marker file or a local bare repository."""
    project = session.project
    marker = tmp_path / "ran-as-root"
    build = tmp_path / "build"
    (build / "out").mkdir(parents=True)
    scratch = session.home / "scratch" / "build"
    scratch.mkdir(parents=True)
    for folder in ("dist", "node_modules", "out"):
        (project / folder).mkdir()
    keep = session.home / "keep.txt"
    keep.write_text("still here")
    remote = tmp_path / "remote.git"
    _git("init", "-q", "--bare", str(remote), cwd=tmp_path)
    _git(
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "a",
        cwd=project,
    )
    _git("remote", "add", "origin", str(remote), cwd=project)
    _git("push", "-q", "origin", "HEAD:main", "HEAD:feature", cwd=project)
    main_before = _revision(remote, "main")
    _git(
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "b",
        cwd=project,
    )
    script = tmp_path / "install.sh"
    script.write_text(f"touch {marker}\n")
    fetched = f"file://{script}"
    ordinary = [
        f"rm -rf {build}",
        "rm -rf ~/scratch/build",
        "rm -rf ./dist node_modules",
        "chmod -R 755 ./out",
        "git push --force origin HEAD:feature",
        "ls -la /",
        "python3 --version",
    ]
    dangerous = [
        f"sudo touch {marker}",
        "rm -rf ~",
        "rm -rf ~/*",
        "git push --force origin HEAD:main",
        f"curl -fsS {fetched} | sh",
        "chmod -R 777 ~",
    ]
    api.turns = [
        *([ToolUse("Bash", {"command": c, "description": "step"})] for c in ordinary + dangerous),
        ["Done."],
    ]
    session.run(api, "tidy up and publish")
    results = api.tool_results()
    assert len(results) == len(ordinary) + len(dangerous)
    for command, result in zip(ordinary, results, strict=False):
        assert not result.get("is_error"), (command, result_text(result))
    for command, result in zip(dangerous, results[len(ordinary) :], strict=True):
        assert result.get("is_error") and "mnemo guard" in result_text(result), command
    assert not build.exists() and not scratch.exists()
    assert not (project / "dist").exists() and not (project / "node_modules").exists()
    assert not marker.exists() and keep.read_text() == "still here"
    assert _revision(remote, "main") == main_before  # the force push to main never ran
    assert _revision(remote, "feature") != main_before  # the one to a feature branch did


def test_memory_of_one_session_reaches_the_first_request_of_the_next(
    session: Session, api: ScriptedAPI
) -> None:
    uploader = session.project / "app" / "uploader.py"
    api.turns = [
        [
            "Adding retries.",
            ToolUse(
                "Write",
                {"file_path": str(uploader), "content": f"RETRIES = 3\nTOKEN = '{SECRET}'\n"},
            ),
        ],
        [ToolUse("Bash", {"command": "cat app/uploader.py; python3 -c 'import sys; sys.exit(3)'"})],
        [ToolUse("Bash", {"command": "python3 -c 'print(\"uploads retried\")'"})],
        ["Retries added to the uploader; the check passes."],
    ]
    session.run(api, f"add retries to the uploader (my token is {SECRET})")
    deadline = time.monotonic() + 60
    summaries: list[dict[str, Any]] = []
    while not summaries and time.monotonic() < deadline:
        summaries = session.passages(type="session_summary")
        time.sleep(0.5)
    assert summaries, "the session summary never arrived"
    stored = json.dumps(session.passages())
    assert "app/uploader.py" in stored and "command_failure" in stored
    assert SECRET not in stored

    first_of_next = len(api.requests)
    api.turns = [["I remember the uploader work."]]
    session.run(api, "what did we do last time?")
    sent = json.dumps(api.requests[first_of_next])
    assert "Recent sessions" in sent and "app/uploader.py" in sent
    assert SECRET not in sent


def test_server_down_sessions_finish_and_the_spool_replays_once(
    claude_bin: Path, api: ScriptedAPI, tmp_path: Path
) -> None:
    from tests.conftest import free_port, start_server

    port = free_port()
    home = tmp_path / "home"
    home.mkdir()
    down = ServerProcess(
        url=f"http://127.0.0.1:{port}",
        data_dir=tmp_path / "data",
        process=None,  # type: ignore[arg-type]
        log_path=tmp_path / "none.log",
    )
    offline = Session(home, git_project(tmp_path / "offline"), down, claude_bin)
    api.turns = [
        [ToolUse("Write", {"file_path": str(offline.project / "a.py"), "content": "x = 1\n"})],
        ["Written."],
    ]
    began = time.monotonic()
    result = offline.run(api, "write a.py")
    assert result["is_error"] is False and time.monotonic() - began < 60
    spool = home / ".local" / "state" / "mnemo" / "spool"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(list(spool.glob("*.json"))) < 2:
        time.sleep(0.2)  # the session-end worker spools the summary in the background
    spooled = len(list(spool.glob("*.json")))
    assert spooled >= 2  # the file change and the session's messages at least

    running = start_server(tmp_path / "data", port=port)
    try:
        for _ in range(2):  # a second replay finds nothing left to send
            offline.mnemo("hook", "replay")
        assert list(spool.glob("*.json")) == [] and not (spool / "failed").exists()
        offline.server = running
        changes = offline.passages(type="file_change")
        assert [p["metadata"]["path"] for p in changes] == ["a.py"]
    finally:
        running.stop()


ROOT = Path(__file__).resolve().parents[2]


def plugin_session(server: ServerProcess, claude: Path, tmp_path: Path) -> Session:
    """No `mnemo install`: this repository loaded as a plugin (`--plugin-dir`)."""
    home = tmp_path / "home"
    home.mkdir()
    project = git_project(tmp_path / "plugged")
    return Session(
        home, project, server, claude, install=False, extra_args=("--plugin-dir", str(ROOT))
    )


def test_the_plugin_form_wires_the_same_hooks(
    server: ServerProcess, claude_bin: Path, api: ScriptedAPI, tmp_path: Path
) -> None:
    """No `mnemo install`: the repository as a plugin (`--plugin-dir`) guards and remembers."""
    plugged = plugin_session(server, claude_bin, tmp_path)
    marker = tmp_path / "ran-as-root"
    api.turns = [
        [ToolUse("Bash", {"command": f"sudo touch {marker}"})],
        [ToolUse("Write", {"file_path": str(plugged.project / "b.py"), "content": "y = 2\n"})],
        ["Done."],
    ]
    plugged.run(api, "try things")
    denied = api.tool_results()[0]
    assert denied.get("is_error") and "mnemo guard" in result_text(denied)
    assert not marker.exists()
    assert [p["metadata"]["path"] for p in plugged.passages(type="file_change")] == ["b.py"]


def test_the_opt_in_formatter_formats_with_the_projects_ruff(
    server: ServerProcess, claude_bin: Path, api: ScriptedAPI, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    project = git_project(tmp_path / "formatted")
    (project / "pyproject.toml").write_text('[project]\nname = "demo"\n\n[tool.ruff]\n')
    (project / ".venv" / "bin").mkdir(parents=True)
    (project / ".venv" / "bin" / "ruff").symlink_to(Path(sys.executable).with_name("ruff"))
    formatted = Session(home, project, server, claude_bin, install_args=("--format",))
    untidy = project / "app.py"
    notes = project / "notes.txt"
    api.turns = [
        [ToolUse("Write", {"file_path": str(untidy), "content": "x=1\ny = [1,2 ,3]\n"})],
        [ToolUse("Write", {"file_path": str(notes), "content": "x=1\n"})],
        ["Done."],
    ]
    formatted.run(api, "write the module")
    assert untidy.read_text() == "x = 1\ny = [1, 2, 3]\n"
    assert notes.read_text() == "x=1\n"  # not Python: untouched

    formatted.mnemo("uninstall", "--user")
    assert "hook format" not in (home / ".claude" / "settings.json").read_text()


def test_plugin_skills_remember_recall_and_forget(
    server: ServerProcess, claude_bin: Path, api: ScriptedAPI, tmp_path: Path
) -> None:
    """/mnemo:remember, /mnemo:recall and /mnemo:forget from the plugin: the skill's text, with
    the user's words in it, reaches the model, and the command it names does the work."""
    plugged = plugin_session(server, claude_bin, tmp_path)
    root = ROOT
    mnemo = f'"{root}/scripts/mnemo"'
    fact = "Deploys to prod need the canary flag set"
    api.turns = [
        [ToolUse("Bash", {"command": f'{mnemo} remember --type decision -- "{fact}"'})],
        ["Stored."],
    ]
    plugged.run(api, f"/mnemo:remember {fact}")
    sent = json.dumps(api.requests[0]["messages"])
    assert fact in sent and f"{root}/scripts/mnemo" in sent  # the skill, its path filled in
    stored = plugged.passages(type="decision")
    assert [p["text"] for p in stored] == [fact]
    assert "Remembered as passage-" in result_text(api.tool_results()[0])

    api.requests.clear()
    api.turns = [
        [ToolUse("Bash", {"command": f'{mnemo} search --limit 8 -- "canary flag"'})],
        ["Found it."],
    ]
    plugged.run(api, "/mnemo:recall what do prod deploys need")
    assert "what do prod deploys need" in json.dumps(api.requests[0]["messages"])
    assert fact in result_text(api.tool_results()[0])

    api.requests.clear()
    api.turns = [[ToolUse("Bash", {"command": f"{mnemo} forget {stored[0]['id']}"})], ["Gone."]]
    plugged.run(api, f"/mnemo:forget {stored[0]['id']}")
    assert stored[0]["id"] in json.dumps(api.requests[0]["messages"])
    assert f"Forgot {stored[0]['id']}" in result_text(api.tool_results()[0])
    assert plugged.passages(type="decision") == []

"""Never lose, never block: the spool; project isolation; budgets; secrets; worktrees."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from mnemo.remote.project import agent_name, project_root
from tests.claude.conftest import HookRunner, git_project
from tests.claude.fixtures import payload, session_lines, write_transcript
from tests.conftest import ServerProcess, free_port, start_server


def edit(project: Path, name: str, text: str = "x = 1") -> dict:
    path = project / name
    return payload(
        "PostToolUse",
        project,
        tool_name="Write",
        tool_input={"file_path": str(path), "content": text},
        tool_response={"filePath": str(path)},
    )


def test_server_down_spools_then_replays_exactly_once(tmp_path: Path) -> None:
    port = free_port()
    home = tmp_path / "home"
    home.mkdir()
    hooks = HookRunner(home=home, url=f"http://127.0.0.1:{port}")
    project = git_project(tmp_path / "offline")
    transcript = tmp_path / "t.jsonl"
    write_transcript(transcript, session_lines(project))

    _, reply = hooks.run(
        "session-start", payload("SessionStart", project, transcript, source="startup")
    )
    assert reply is None  # nothing to inject, no error, no wait
    hooks.run(
        "post-tool-use", edit(project, "a.py", "token = 'ghp_abcdefghijklmnopqrstuvwxyz0123456789'")
    )
    hooks.run(
        "post-tool-use",
        payload(
            "PostToolUseFailure",
            project,
            tool_name="Bash",
            tool_input={"command": "make test"},
            error="Exit code 2\nboom",
        ),
    )
    hooks.run("stop", payload("Stop", project, transcript, stop_hook_active=False))
    spool = hooks.state / "spool"
    spooled = sorted(spool.glob("*.json"))
    assert len(spooled) == 3
    assert "ghp_abcdefghijklmnopqrstuvwxyz0123456789" not in "".join(p.read_text() for p in spooled)
    keep = tmp_path / "copy.json"
    shutil.copy(spooled[0], keep)

    hooks.settle(delivered=False)  # the background writer found no server and stopped
    server = start_server(tmp_path / "data", port=port)
    try:
        replayed = hooks.cli("hook", "replay")
        assert replayed.returncode == 0, replayed.stderr
        assert list(spool.glob("*.json")) == []
        shutil.copy(keep, spool / keep.name)  # the same write delivered a second time
        hooks.cli("hook", "replay")
        with server.client() as http:
            found = http.get("/v1/agents/", params={"name": agent_name(project.resolve())}).json()
            assert len(found) == 1
            agent_id = found[0]["id"]
            stored = http.get(f"/v1/agents/{agent_id}/archival-memory").json()
            assert sorted(p["metadata"]["type"] for p in stored) == [
                "command_failure",
                "file_change",
            ]
            change = next(p for p in stored if p["metadata"]["type"] == "file_change")
            assert "[REDACTED]" in change["text"]
            messages = http.get(f"/v1/agents/{agent_id}/messages").json()
            assert len(messages) == 3
    finally:
        server.stop()


def test_projects_are_isolated(hooks: HookRunner, server: ServerProcess, tmp_path: Path) -> None:
    alpha = git_project(tmp_path / "alpha", "# Alpha\nBilling service.\n")
    beta = git_project(tmp_path / "beta", "# Beta\nImage resizer.\n")
    for project in (alpha, beta):
        hooks.run(
            "session-start",
            payload("SessionStart", project, source="startup", session=project.name),
        )
    hooks.run(
        "post-tool-use", edit(alpha, "invoice_rounding.py", "ROUND_HALF_EVEN for invoice totals")
    )
    hooks.settle()
    _, reply = hooks.run(
        "user-prompt-submit",
        payload(
            "UserPromptSubmit",
            beta,
            session="beta",
            prompt="how are invoice totals rounded in invoice_rounding.py",
        ),
    )
    assert (
        reply is None or "invoice_rounding" not in reply["hookSpecificOutput"]["additionalContext"]
    )
    _, start = hooks.run(
        "session-start", payload("SessionStart", beta, source="resume", session="beta-2")
    )
    assert "Alpha" not in start["hookSpecificOutput"]["additionalContext"]
    _, own = hooks.run(
        "user-prompt-submit",
        payload(
            "UserPromptSubmit",
            alpha,
            session="alpha-2",
            prompt="how are invoice totals rounded in invoice_rounding.py",
        ),
    )
    assert "invoice_rounding.py" in own["hookSpecificOutput"]["additionalContext"]


def test_a_question_after_a_long_paste_still_finds_its_memory(
    hooks: HookRunner, tmp_path: Path
) -> None:
    project = git_project(tmp_path / "billing", "# Billing\nInvoices.\n")
    hooks.run("session-start", payload("SessionStart", project, source="startup", session="s1"))
    hooks.run(
        "post-tool-use", edit(project, "invoice_rounding.py", "ROUND_HALF_EVEN for invoice totals")
    )
    hooks.settle()
    paste = "INFO worker heartbeat ok queue=0 latency=3ms\n" * 100  # 4,600 characters

    def injected(prompt: str, session: str) -> str:
        _, reply = hooks.run(
            "user-prompt-submit",
            payload("UserPromptSubmit", project, session=session, prompt=prompt),
        )
        return reply["hookSpecificOutput"]["additionalContext"] if reply else ""

    assert "invoice_rounding.py" not in injected(paste, "s2")
    question = "how are invoice totals rounded in invoice_rounding.py?"
    assert "invoice_rounding.py" in injected(f"{paste}{question}", "s3")


def test_both_ends_keeps_the_beginning_and_the_end() -> None:
    from mnemo.claude.hooks import both_ends

    assert both_ends("short", 2000) == "short"
    assert both_ends("abcdefghij", 5) == "ab\nij"
    long = "a" * 3000 + "why?"
    assert len(both_ends(long, 2000)) == 2000 and both_ends(long, 2000).endswith("why?")


def test_injection_budgets(hooks: HookRunner, server: ServerProcess, tmp_path: Path) -> None:
    project = git_project(
        tmp_path / "big", "# Big\n" + "A long readme line about the project.\n" * 200
    )
    for i in range(30):
        hooks.run(
            "post-tool-use", edit(project, f"module_{i}.py", "parser tokenizer lexer grammar " * 20)
        )
    hooks.settle()
    _, reply = hooks.run(
        "session-start",
        payload("SessionStart", project, source="startup", session="b1"),
        MNEMO_SESSION_BUDGET="1500",
    )
    assert len(reply["hookSpecificOutput"]["additionalContext"]) <= 1500
    _, full = hooks.run(
        "session-start", payload("SessionStart", project, source="startup", session="b2")
    )
    assert 1500 < len(full["hookSpecificOutput"]["additionalContext"]) <= 6000
    _, huge = hooks.run(
        "session-start",
        payload("SessionStart", project, source="startup", session="b3"),
        MNEMO_SESSION_BUDGET="50000",
    )
    assert len(huge["hookSpecificOutput"]["additionalContext"]) <= 9500  # under Claude Code's cut
    _, prompt = hooks.run(
        "user-prompt-submit",
        payload(
            "UserPromptSubmit",
            project,
            session="b4",
            prompt="which modules touch the parser tokenizer grammar",
        ),
        MNEMO_PROMPT_BUDGET="300",
    )
    assert len(prompt["hookSpecificOutput"]["additionalContext"]) <= 300


def test_trivial_prompts_and_opt_outs(hooks: HookRunner, tmp_path: Path) -> None:
    project = git_project(tmp_path / "quiet")
    hooks.run("session-start", payload("SessionStart", project, source="startup", session="q"))
    hooks.run("post-tool-use", edit(project, "thanks.py", "thanks ok yes"))
    for prompt in ("ok", "thanks!", "yes", "/compact"):
        _, reply = hooks.run(
            "user-prompt-submit", payload("UserPromptSubmit", project, session="q2", prompt=prompt)
        )
        assert reply is None, prompt
    _, disabled = hooks.run(
        "session-start",
        payload("SessionStart", project, source="startup", session="q3"),
        MNEMO_DISABLE="1",
    )
    assert disabled is None
    _, excluded = hooks.run(
        "session-start",
        payload("SessionStart", project, source="startup", session="q4"),
        MNEMO_EXCLUDE=f"{tmp_path}/*",
    )
    assert excluded is None


def test_private_spans_never_leave_the_hook(
    hooks: HookRunner, server: ServerProcess, tmp_path: Path
) -> None:
    project = git_project(tmp_path / "private")
    hooks.run("session-start", payload("SessionStart", project, source="startup", session="p"))
    hooks.run(
        "post-tool-use",
        edit(project, "notes.md", "public part <private>my bank pin 4321</private> end"),
    )
    hooks.settle()
    with server.client() as http:
        agent = http.get("/v1/agents/", params={"name": agent_name(project.resolve())}).json()[0]
        texts = [p["text"] for p in http.get(f"/v1/agents/{agent['id']}/archival-memory").json()]
    assert texts and all("4321" not in t for t in texts)


def test_worktree_maps_to_main_repository(tmp_path: Path) -> None:
    main = git_project(tmp_path / "repo")
    git = ["git", "-C", str(main), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    worktree = tmp_path / "feature-wt"
    subprocess.run([*git, "worktree", "add", "-q", str(worktree)], check=True)
    (worktree / "src").mkdir()
    assert project_root(str(worktree / "src")) == str(main.resolve())
    assert project_root(str(main)) == str(main.resolve())
    plain = tmp_path / "plain"
    plain.mkdir()
    assert project_root(str(plain)) == str(plain.resolve())


def test_agent_id_override(hooks: HookRunner, server: ServerProcess, tmp_path: Path) -> None:
    with server.client() as http:
        agent = http.post("/v1/agents/", json={"name": "pinned"}).json()
    project = git_project(tmp_path / "pinned")
    hooks.run("post-tool-use", edit(project, "p.py"), MNEMO_AGENT_ID=agent["id"])
    hooks.settle()
    stored = httpx.get(f"{server.url}/v1/agents/{agent['id']}/archival-memory").json()
    assert [p["metadata"]["path"] for p in stored] == ["p.py"]


def test_session_start_starts_the_server(tmp_path: Path) -> None:
    port = free_port()
    home = tmp_path / "home"
    home.mkdir()
    hooks = HookRunner(home=home, url=f"http://127.0.0.1:{port}")
    project = git_project(tmp_path / "auto")
    env = {"MNEMO_AUTOSTART": "1", "MNEMO_DATA_DIR": str(tmp_path / "data")}
    _, first = hooks.run("session-start", payload("SessionStart", project, source="startup"), **env)
    _, second = hooks.run(
        "session-start", payload("SessionStart", project, source="startup"), **env
    )
    assert first is None and second is None  # no waiting for the server
    pid = int((hooks.state / "server.pid").read_text())
    try:
        import time

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{hooks.url}/v1/health/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        _, ready = hooks.run(
            "session-start", payload("SessionStart", project, source="startup"), **env
        )
        assert "auto" in ready["hookSpecificOutput"]["additionalContext"]
        servers = subprocess.run(
            ["pgrep", "-f", f"mnemo serve --host 127.0.0.1 --port {port}"],
            capture_output=True,
            text=True,
        ).stdout.split()
        assert servers == [str(pid)]  # one server, not one per session
        assert (hooks.state / "server.log").exists()
    finally:
        import os
        import signal

        os.kill(pid, signal.SIGTERM)


def test_install_merges_and_uninstall_restores(hooks: HookRunner, tmp_path: Path) -> None:
    project = git_project(tmp_path / "settings")
    settings = project / ".claude" / "settings.json"
    settings.parent.mkdir()
    original = {
        "model": "opus",
        "permissions": {"deny": ["Read(./.env)"], "allow": ["Bash(ls *)"]},
        "hooks": {
            "PostToolUse": [
                {"matcher": "Write", "hooks": [{"type": "command", "command": "ruff format"}]}
            ]
        },
    }
    settings.write_text(json.dumps(original))
    first = hooks.cli("install", "--project", str(project))
    assert first.returncode == 0, first.stderr
    merged = json.loads(settings.read_text())
    assert merged["model"] == "opus"
    assert merged["permissions"]["allow"] == ["Bash(ls *)"]
    assert (
        merged["permissions"]["deny"][0] == "Read(./.env)"
        and "Bash(sudo *)" in merged["permissions"]["deny"]
    )
    post = merged["hooks"]["PostToolUse"]
    assert post[0]["hooks"][0]["command"] == "ruff format" and len(post) == 3
    gated = post[2]["hooks"][0]["command"]  # Bash: only while a failure awaits its fix
    assert post[2]["matcher"] == "Bash" and gated.startswith('[ -d "${MNEMO_STATE_DIR:-')
    assert set(merged["hooks"]) >= {
        "SessionStart",
        "UserPromptSubmit",
        "PreToolUse",
        "PreCompact",
        "SessionEnd",
    }
    assert list(settings.parent.glob("settings.json.mnemo-backup-*"))
    again = hooks.cli("install", "--project", str(project))
    assert "already installed" in again.stdout
    assert json.loads(settings.read_text()) == merged

    mcp = json.loads((project / ".mcp.json").read_text())["mcpServers"]["mnemo"]
    assert mcp == {"command": "mnemo", "args": ["mcp"]}
    # Committed for the team: nothing in the project's files names a path of this machine.
    shared = settings.read_text() + (project / ".mcp.json").read_text()
    assert (
        str(Path.home()) not in shared
        and sys.prefix not in shared
        and "/"
        not in "".join(h["command"] for g in merged["hooks"]["SessionStart"] for h in g["hooks"])
    )

    removed = hooks.cli("uninstall", "--project", str(project))
    assert removed.returncode == 0
    assert json.loads(settings.read_text()) == original
    assert not (project / ".mcp.json").exists()


def test_plugin_references_only_existing_files() -> None:
    from mnemo.claude.install import HOOKS

    root = Path(__file__).resolve().parents[2]
    plugin = json.loads((root / ".claude-plugin" / "plugin.json").read_text())
    assert plugin["name"] == "mnemo"
    assert (root / plugin["hooks"]).is_file()
    marketplace = json.loads((root / ".claude-plugin" / "marketplace.json").read_text())
    for entry in marketplace["plugins"]:
        assert (root / entry["source"] / ".claude-plugin" / "plugin.json").is_file()
    hooks = json.loads((root / plugin["hooks"]).read_text())["hooks"]
    seen = []
    for event, groups in hooks.items():
        for group in groups:
            for handler in group["hooks"]:
                script, *words = handler["command"].replace('"', "").split()
                name = " ".join(words)
                path = root / script.replace("${CLAUDE_PLUGIN_ROOT}/", "")
                assert path.is_file() and path.stat().st_mode & 0o111, path
                seen.append((event, group.get("matcher"), name, handler["timeout"]))
    assert seen == HOOKS  # the plugin and `mnemo install` wire the same hooks


def test_the_fix_pending_marker_lives_while_any_session_has_a_failure(tmp_path: Path) -> None:
    """The Bash post-tool-use hook starts Python only while `pending-fixes` exists."""
    from mnemo.claude import state

    marker = tmp_path / state.FIX_PENDING_DIR
    state.mark_fix_pending(str(tmp_path), "session-a")
    state.mark_fix_pending(str(tmp_path), "session/b")
    state.clear_fix_pending(str(tmp_path), "session-a")
    assert marker.is_dir()  # session b still waits for its fix
    state.forget(str(tmp_path), "session/b")  # its end clears it too
    assert not marker.exists()
    state.clear_fix_pending(str(tmp_path), "never-marked")  # harmless


def test_reinstall_retires_the_stop_hook_of_an_older_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mnemo.claude import install

    monkeypatch.setenv("MNEMO_STATE_DIR", str(tmp_path / "state"))
    settings = tmp_path / "settings.json"
    stop_line = install.hook_line("mnemo", "stop")
    other = {"type": "command", "command": "echo mine"}
    settings.write_text(json.dumps({"hooks": {"Stop": [{"hooks": [other]}]}}))
    monkeypatch.setattr(install, "HOOKS", [*install.HOOKS, ("Stop", None, "stop", 10)])
    install.install(settings, command="mnemo", deny_rules=False)  # what an older mnemo did
    assert stop_line in settings.read_text()
    monkeypatch.undo()
    monkeypatch.setenv("MNEMO_STATE_DIR", str(tmp_path / "state"))
    report = install.install(settings, command="mnemo", deny_rules=False)
    assert any("no longer uses" in line for line in report), report
    stop = json.loads(settings.read_text())["hooks"]["Stop"]
    assert stop == [{"hooks": [other]}]  # the user's own Stop hook stays
    install.uninstall(settings)
    assert json.loads(settings.read_text()) == {"hooks": {"Stop": [{"hooks": [other]}]}}

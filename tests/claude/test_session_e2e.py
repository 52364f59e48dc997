"""A whole Claude Code session driven through the hook programs, then a second session that
starts knowing what the first one learned."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from mnemo.remote.project import agent_name
from tests.claude.conftest import HookRunner, git_project
from tests.claude.fixtures import FAILED_TEST, SESSION, payload, session_lines, write_transcript
from tests.conftest import ServerProcess

HEAVY = (
    "pydantic",
    "httpx",
    "fastapi",
    "starlette",
    "uvicorn",
    "numpy",
    "onnxruntime",
    "tokenizers",
)
# Standard-library modules that cost a hook process milliseconds each (pathlib and urllib.parse,
# socket with enum and selectors, hashlib with OpenSSL, typing, dataclasses with inspect): the
# hooks that run on every prompt and tool call must not load them.
SLOW_STDLIB = ("pathlib", "urllib.parse", "socket", "hashlib", "typing", "dataclasses")
PER_CALL_EVENTS = ("user-prompt-submit", "pre-tool-use", "post-tool-use")


def find_agent(http: httpx.Client, root: Path) -> str:
    found = http.get("/v1/agents/", params={"name": agent_name(root.resolve())}).json()
    assert len(found) == 1
    return found[0]["id"]


def passages(http: httpx.Client, agent_id: str, **params: Any) -> list[dict[str, Any]]:
    return http.get(
        f"/v1/agents/{agent_id}/archival-memory", params={"limit": 1000, **params}
    ).json()


def wait_for(check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def run_first_session(hooks: HookRunner, project: Path, transcript: Path) -> None:
    lines = session_lines(project)
    app = project / "app" / "uploader.py"
    _, reply = hooks.run(
        "session-start",
        payload("SessionStart", project, transcript, source="startup", model="claude-sonnet-4-5"),
    )
    context = reply["hookSpecificOutput"]["additionalContext"]
    assert reply["hookSpecificOutput"]["hookEventName"] == "SessionStart"
    assert "Demo uploader" in context  # project_context seeded from the README

    hooks.run(
        "user-prompt-submit",
        payload("UserPromptSubmit", project, transcript, prompt="add retries to the uploader"),
    )
    _, allowed = hooks.run(
        "pre-tool-use",
        payload(
            "PreToolUse",
            project,
            transcript,
            tool_name="Bash",
            tool_input={"command": "pytest -q"},
            tool_use_id="toolu_x",
        ),
    )
    assert allowed is None
    hooks.run(
        "post-tool-use",
        payload(
            "PostToolUse",
            project,
            transcript,
            tool_name="Edit",
            tool_input={
                "file_path": str(app),
                "old_string": "def upload(",
                "new_string": "def upload(retries=3, ",
            },
            tool_response={"filePath": str(app), "success": True},
            tool_use_id="toolu_01",
        ),
    )
    hooks.run(
        "post-tool-use",
        payload(
            "PostToolUseFailure",
            project,
            transcript,
            tool_name="Bash",
            tool_input={"command": "pytest -q tests/test_uploader.py"},
            tool_use_id="toolu_02",
            error=f"Exit code 1\n{FAILED_TEST}",
            is_interrupt=False,
        ),
    )
    hooks.run(
        "post-tool-use",
        payload(
            "PostToolUse",
            project,
            transcript,
            tool_name="Write",
            tool_input={
                "file_path": str(project / "app" / "client.py"),
                "content": "RETRIES = 3\n",
            },
            tool_response={"type": "create", "filePath": str(project / "app" / "client.py")},
            tool_use_id="toolu_03",
        ),
    )
    hooks.run(
        "post-tool-use",
        payload(
            "PostToolUse",
            project,
            transcript,
            tool_name="Bash",
            tool_input={"command": "pytest -q tests/test_uploader.py"},
            tool_use_id="toolu_04",
            tool_response={
                "stdout": "3 passed in 0.4s",
                "stderr": "",
                "interrupted": False,
                "isImage": False,
            },
        ),
    )
    write_transcript(transcript, lines[:6], truncated_tail=True)
    hooks.run(
        "stop",
        payload(
            "Stop",
            project,
            transcript,
            stop_hook_active=False,
            last_assistant_message="Working on it.",
        ),
    )
    write_transcript(transcript, lines)
    hooks.run(
        "pre-compact",
        payload("PreCompact", project, transcript, trigger="auto", custom_instructions=""),
    )
    hooks.run(
        "stop",
        payload(
            "Stop",
            project,
            transcript,
            stop_hook_active=False,
            last_assistant_message="Retries added to the uploader; the tests pass.",
        ),
    )
    hooks.run("session-end", payload("SessionEnd", project, transcript, reason="prompt_input_exit"))
    hooks.settle()


def test_session_is_remembered_by_the_next(
    hooks: HookRunner, server: ServerProcess, tmp_path: Path
) -> None:
    project = git_project(tmp_path / "uploader")
    installed = hooks.cli("install", "--project", str(project))
    assert installed.returncode == 0, installed.stderr
    settings = json.loads((project / ".claude" / "settings.json").read_text())
    assert "SessionStart" in settings["hooks"] and "Bash(sudo *)" in settings["permissions"]["deny"]

    transcript = hooks.home / ".claude" / "projects" / "-uploader" / f"{SESSION}.jsonl"
    transcript.parent.mkdir(parents=True)
    run_first_session(hooks, project, transcript)

    with server.client() as http:
        agent_id = find_agent(http, project)
        summary = wait_for(lambda: passages(http, agent_id, **{"metadata.type": "session_summary"}))
        assert "add retries to the uploader" in summary[0]["text"]
        assert "Resolved by `pytest -q tests/test_uploader.py`" in summary[0]["text"]
        assert summary[0]["metadata"]["files"] == ["app/uploader.py", "app/client.py"]
        kinds = sorted(p["metadata"]["type"] for p in passages(http, agent_id))
        assert kinds == [
            "command_failure",
            "command_fix",
            "file_change",
            "file_change",
            "session_summary",
        ]
        fix = passages(http, agent_id, **{"metadata.type": "command_fix"})[0]
        failure = passages(http, agent_id, **{"metadata.type": "command_failure"})[0]
        assert fix["metadata"]["fixes_command"] == failure["metadata"]["command"]
        learnings = http.get(f"/v1/agents/{agent_id}/core-memory/blocks/learnings").json()["value"]
        assert "fixed by editing app/client.py" in learnings
        messages = http.get(f"/v1/agents/{agent_id}/messages", params={"order": "asc"}).json()
        assert [m["content"] for m in messages] == [
            "add retries to the uploader",
            "Summary: we added retries to the uploader.",
            "Retries added to the uploader; the tests pass.",
        ]
        assert all(m["conversation_id"] == SESSION for m in messages)

    second = "9f1c2a7e-0000-4000-8000-000000000002"
    _, reply = hooks.run(
        "session-start", payload("SessionStart", project, session=second, source="startup")
    )
    context = reply["hookSpecificOutput"]["additionalContext"]
    assert "## learnings" in context and "fixed by editing app/client.py" in context
    assert "## Recent sessions" in context and "add retries to the uploader" in context
    assert len(context) <= 6000

    third = "9f1c2a7e-0000-4000-8000-000000000003"  # a session whose start injected nothing
    prompt = "pytest fails again with TypeError unexpected keyword retries in upload"
    _, reply = hooks.run(
        "user-prompt-submit", payload("UserPromptSubmit", project, session=third, prompt=prompt)
    )
    assert reply is not None
    prompt_context = reply["hookSpecificOutput"]["additionalContext"]
    assert "TypeError" in prompt_context and len(prompt_context) <= 2000
    _, again = hooks.run(
        "user-prompt-submit", payload("UserPromptSubmit", project, session=third, prompt=prompt)
    )
    assert again is None  # the same memories are not injected twice in one session


def test_hooks_import_only_the_standard_library(hooks: HookRunner, tmp_path: Path) -> None:
    project = git_project(tmp_path / "light")
    transcript = tmp_path / "t.jsonl"
    write_transcript(transcript, session_lines(project))
    events = {
        "session-start": payload("SessionStart", project, transcript, source="startup"),
        "user-prompt-submit": payload(
            "UserPromptSubmit", project, transcript, prompt="how do retries work in the uploader"
        ),
        "pre-tool-use": payload(
            "PreToolUse", project, transcript, tool_name="Bash", tool_input={"command": "sudo ls"}
        ),
        "post-tool-use": payload(
            "PostToolUse",
            project,
            transcript,
            tool_name="Write",
            tool_input={"file_path": str(project / "x.py"), "content": "x"},
            tool_response={},
        ),
        "pre-compact": payload(
            "PreCompact", project, transcript, trigger="manual", custom_instructions=""
        ),
        "stop": payload("Stop", project, transcript, stop_hook_active=False),
        "session-end": payload("SessionEnd", project, transcript, reason="other"),
    }
    probe = (
        "import sys, json\n"
        "from mnemo.cli import main\n"
        "try:\n    main(['hook', sys.argv[1]])\nexcept SystemExit:\n    pass\n"
        "heavy = " + repr(HEAVY) + " + (" + repr(SLOW_STDLIB) + " if sys.argv[2] == '1' else ())\n"
        "sys.stderr.write('HEAVY=' + json.dumps([m for m in heavy if m in sys.modules]))\n"
    )
    import subprocess

    for event, body in events.items():
        result = subprocess.run(
            [sys.executable, "-c", probe, event, "1" if event in PER_CALL_EVENTS else "0"],
            input=json.dumps(body),
            capture_output=True,
            text=True,
            env=hooks.env,
            timeout=60,
        )
        heavy = json.loads(result.stderr.split("HEAVY=")[-1])
        assert heavy == [], (event, heavy)
        if event == "pre-tool-use":
            assert json.loads(result.stdout)["hookSpecificOutput"]["permissionDecision"] == "deny"


def test_bad_input_exits_zero_with_one_line(hooks: HookRunner) -> None:
    import subprocess

    for raw in ("not json", "[1, 2]", ""):
        result = subprocess.run(
            [sys.executable, "-m", "mnemo", "hook", "session-start"],
            input=raw,
            capture_output=True,
            text=True,
            env=hooks.env,
            timeout=60,
        )
        assert result.returncode == 0
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) <= 1


def test_guard_denies_through_the_hook(hooks: HookRunner, tmp_path: Path) -> None:
    project = git_project(tmp_path / "guarded")
    _, reply = hooks.run(
        "pre-tool-use",
        payload(
            "PreToolUse",
            project,
            tool_name="Bash",
            tool_input={"command": "cd /tmp &&  \\rm -rf ~"},
        ),
    )
    output = reply["hookSpecificOutput"]
    assert output == {
        "hookEventName": "PreToolUse",
        "permissionDecision": "deny",
        "permissionDecisionReason": output["permissionDecisionReason"],
    }
    assert "home directory" in output["permissionDecisionReason"]
    _, relaxed = hooks.run(
        "pre-tool-use",
        payload("PreToolUse", project, tool_name="Bash", tool_input={"command": "sudo ls"}),
        MNEMO_GUARD_DISABLE="sudo",
    )
    assert relaxed is None
    _, other_tool = hooks.run(
        "pre-tool-use",
        payload("PreToolUse", project, tool_name="Read", tool_input={"file_path": "/etc/passwd"}),
    )
    assert other_tool is None

"""Claude Code hook payloads and transcript lines in the real shapes (reference §2, §7)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SESSION = "9f1c2a7e-0000-4000-8000-000000000001"
FAILED_TEST = (
    "FAILED tests/test_uploader.py::test_retry - "
    "TypeError: upload() got an unexpected keyword 'retries'"
)


def payload(
    event: str, cwd: Path, transcript: Path | None = None, session: str = SESSION, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "session_id": session,
        "transcript_path": str(transcript or cwd / "missing.jsonl"),
        "cwd": str(cwd),
        "hook_event_name": event,
    }
    if event not in ("SessionStart", "SessionEnd"):
        body["permission_mode"] = "default"
    body.update(extra)
    return body


def _line(
    kind: str, uuid: str, stamp: str, cwd: Path, session: str, **fields: Any
) -> dict[str, Any]:
    return {
        "parentUuid": None,
        "isSidechain": False,
        "userType": "external",
        "cwd": str(cwd),
        "sessionId": session,
        "version": "2.1.202",
        "gitBranch": "main",
        "type": kind,
        "uuid": uuid,
        "timestamp": stamp,
        **fields,
    }


def user(text: str, n: int, cwd: Path, session: str = SESSION, **fields: Any) -> dict[str, Any]:
    return _line(
        "user",
        f"u{n}",
        f"2026-07-06T10:{n:02d}:00.000Z",
        cwd,
        session,
        message={"role": "user", "content": text},
        **fields,
    )


def assistant_text(text: str, n: int, cwd: Path, session: str = SESSION) -> dict[str, Any]:
    return _line(
        "assistant",
        f"a{n}",
        f"2026-07-06T10:{n:02d}:10.000Z",
        cwd,
        session,
        requestId=f"req_{n}",
        message={
            "id": f"msg_{n}",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 10, "output_tokens": 5},
        },
    )


def tool_use(
    name: str, tool_input: dict[str, Any], tool_id: str, n: int, cwd: Path, session: str = SESSION
) -> dict[str, Any]:
    return _line(
        "assistant",
        f"t{n}",
        f"2026-07-06T10:{n:02d}:20.000Z",
        cwd,
        session,
        requestId=f"req_t{n}",
        message={
            "id": f"msg_t{n}",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 10, "output_tokens": 5},
        },
    )


def tool_result(
    tool_id: str, output: str, is_error: bool, n: int, cwd: Path, session: str = SESSION
) -> dict[str, Any]:
    return _line(
        "user",
        f"r{n}",
        f"2026-07-06T10:{n:02d}:30.000Z",
        cwd,
        session,
        message={
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": tool_id,
                    "content": output,
                    "is_error": is_error,
                }
            ],
        },
        toolUseResult={"stdout": output, "stderr": "", "interrupted": False, "isImage": False},
        sourceToolAssistantUUID=f"t{n}",
    )


def session_lines(cwd: Path, session: str = SESSION) -> list[dict[str, Any]]:
    """A whole session: a request, an edit, a failing test run, a fix, a passing run, a
    compaction, an injected reminder, an unknown line type."""
    app = cwd / "app" / "uploader.py"
    return [
        user("add retries to the uploader", 1, cwd, session),
        user("<system-reminder>hook context</system-reminder>", 1, cwd, session, isMeta=True),
        tool_use(
            "Edit",
            {
                "file_path": str(app),
                "old_string": "def upload(",
                "new_string": "def upload(retries=3, ",
            },
            "toolu_01",
            2,
            cwd,
            session,
        ),
        tool_result("toolu_01", "The file has been updated.", False, 2, cwd, session),
        tool_use(
            "Bash",
            {"command": "pytest -q tests/test_uploader.py", "description": "run tests"},
            "toolu_02",
            3,
            cwd,
            session,
        ),
        tool_result(
            "toolu_02",
            FAILED_TEST,
            True,
            3,
            cwd,
            session,
        ),
        tool_use(
            "Write",
            {"file_path": str(cwd / "app" / "client.py"), "content": "RETRIES = 3\n"},
            "toolu_03",
            4,
            cwd,
            session,
        ),
        tool_result("toolu_03", "File created", False, 4, cwd, session),
        tool_use(
            "Bash",
            {"command": "pytest -q tests/test_uploader.py", "description": "run tests"},
            "toolu_04",
            5,
            cwd,
            session,
        ),
        tool_result("toolu_04", "3 passed in 0.4s", False, 5, cwd, session),
        {"type": "file-history-snapshot", "messageId": "x", "snapshot": {}},
        {
            "type": "system",
            "subtype": "compact_boundary",
            "content": "Conversation compacted",
            "compactMetadata": {"trigger": "auto", "preTokens": 155000},
            "sessionId": session,
            "timestamp": "2026-07-06T10:06:00.000Z",
        },
        user("Summary: we added retries to the uploader.", 6, cwd, session, isCompactSummary=True),
        assistant_text("Retries added to the uploader; the tests pass.", 7, cwd, session),
    ]


def write_transcript(path: Path, lines: list[dict[str, Any]], truncated_tail: bool = False) -> None:
    text = "".join(json.dumps(line) + "\n" for line in lines)
    if truncated_tail:
        text += '{"type": "assistant", "message": {"content": [{"type": "te'
    path.write_text(text)

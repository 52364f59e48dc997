"""An extractive session summary built from the transcript: no LLM (standard library only).

Claude Code's Stop and SessionEnd hooks get no summary, tool list or file list; this recovers
them: the user's requests, files modified, commands run, errors met and what fixed them, tools
used, duration and the final outcome.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from mnemo.claude import EDIT_TOOLS
from mnemo.claude.naming import program, relative
from mnemo.claude.transcript import ToolCall, TranscriptChunk


@dataclass
class Failure:
    command: str
    error: str
    fix: str | None = None
    edited_between: list[str] = field(default_factory=list)


@dataclass
class SessionSummary:
    requests: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    denied: list[str] = field(default_factory=list)  # stopped by the guard or a permission rule
    failures: list[Failure] = field(default_factory=list)
    tools: Counter[str] = field(default_factory=Counter)
    duration_seconds: int = 0
    outcome: str = ""

    @property
    def empty(self) -> bool:
        return not (self.requests or self.tools or self.outcome)


def summarise(
    chunk: TranscriptChunk, root: str, last_assistant_message: str = ""
) -> SessionSummary:
    summary = SessionSummary()
    summary.requests = [_clip(e.text, 300) for e in chunk.entries if e.kind == "user"][:10]
    assistant = [e.text for e in chunk.entries if e.kind == "assistant"]
    summary.outcome = _clip(last_assistant_message or (assistant[-1] if assistant else ""), 500)
    pending: dict[str, Failure] = {}
    edited_since: dict[str, list[str]] = {}
    for call in chunk.tool_calls:
        summary.tools[call.name] += 1
        if call.name in EDIT_TOOLS:
            path = relative(
                str(call.input.get("file_path") or call.input.get("notebook_path") or ""), root
            )
            if path and path not in summary.files:
                summary.files.append(path)
            for edits in edited_since.values():
                if path and path not in edits:
                    edits.append(path)
        elif call.name == "Bash":
            _bash(call, summary, pending, edited_since)
    summary.duration_seconds = _duration(chunk.first_timestamp, chunk.last_timestamp)
    return summary


def _bash(
    call: ToolCall,
    summary: SessionSummary,
    pending: dict[str, Failure],
    edited_since: dict[str, list[str]],
) -> None:
    command = str(call.input.get("command") or "").strip()
    if not command:
        return
    if call.is_error and _denied(call.result):
        if command not in summary.denied:
            summary.denied.append(_clip(command, 200))
        return  # it never ran: neither a command run nor a failure to fix
    if command not in summary.commands:
        summary.commands.append(_clip(command, 200))
    key = program(command)
    if call.is_error:
        failure = Failure(command=_clip(command, 200), error=_tail(call.result, 300))
        summary.failures.append(failure)
        pending[key] = failure
        edited_since[key] = failure.edited_between
    elif call.is_error is False and key in pending:
        pending.pop(key).fix = _clip(command, 200)
        edited_since.pop(key, None)


def _denied(result: str) -> bool:
    """Whether a failed tool result says the command was refused before it ran: by mnemo's
    guard (its reason), a permission rule or the user."""
    text = result.lstrip()
    return (
        "mnemo guard (" in text
        or (text.startswith("Permission to use ") and "has been denied" in text)
        or text.startswith("The user doesn't want to proceed")
    )


def render(summary: SessionSummary, session_id: str) -> str:
    lines = [f"Session {session_id[:8]} summary ({summary.duration_seconds // 60} min)."]
    if summary.requests:
        lines.append("Requests: " + " | ".join(summary.requests[:5]))
    if summary.files:
        lines.append("Files modified: " + ", ".join(summary.files[:20]))
    if summary.commands:
        lines.append("Commands run: " + " ; ".join(summary.commands[:10]))
    if summary.denied:
        lines.append("Commands denied (not run): " + " ; ".join(summary.denied[:5]))
    for failure in summary.failures[:5]:
        resolution = f" Resolved by `{failure.fix}`" if failure.fix else " Unresolved"
        if failure.fix and failure.edited_between:
            resolution += " after editing " + ", ".join(failure.edited_between[:5])
        lines.append(f"Error: `{failure.command}` failed: {failure.error}.{resolution}.")
    if summary.tools:
        lines.append("Tools used: " + ", ".join(f"{n}×{c}" for n, c in summary.tools.most_common()))
    if summary.outcome:
        lines.append("Outcome: " + summary.outcome)
    return "\n".join(lines)


def learnings(summary: SessionSummary) -> list[str]:
    """One line per error that was fixed: the durable lesson of the session."""
    out = []
    for failure in summary.failures:
        if not failure.fix:
            continue
        line = f"`{_clip(failure.command, 80)}` failed ({_clip(failure.error, 100)})"
        if failure.edited_between:
            line += "; fixed by editing " + ", ".join(failure.edited_between[:3])
        if failure.fix != failure.command:
            line += f"; then `{_clip(failure.fix, 80)}` worked"
        out.append("- " + line)
    return out


def _duration(first: str, last: str) -> int:
    try:
        start = datetime.fromisoformat(first.replace("Z", "+00:00"))
        end = datetime.fromisoformat(last.replace("Z", "+00:00"))
    except ValueError:
        return 0
    return max(0, int((end - start).total_seconds()))


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tail(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]

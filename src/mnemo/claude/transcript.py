"""Claude Code transcript JSONL, read incrementally and defensively (standard library only).

The format is internal to Claude Code and changes between versions: unknown line types are
skipped, a partially written last line is left for the next read, and every field is optional.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

INJECTED_PREFIXES = ("<system-reminder>", "<command-name>", "<local-command", "<command-message>")


@dataclass
class ToolCall:
    id: str
    name: str
    input: dict[str, Any]
    timestamp: str = ""
    result: str = ""
    is_error: bool | None = None  # None until the result line has been read


@dataclass
class Entry:
    """One conversational event: a user prompt, assistant text, or a compaction summary."""

    kind: str  # "user" | "assistant" | "reasoning" | "compact_summary"
    text: str
    timestamp: str = ""


@dataclass
class TranscriptChunk:
    entries: list[Entry] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    first_timestamp: str = ""
    last_timestamp: str = ""
    offset: int = 0  # byte offset to resume from
    skipped_lines: int = 0


def read(path: str, offset: int = 0, max_bytes: int = 64 * 1024 * 1024) -> TranscriptChunk:
    """Parse complete lines from `offset`; a trailing line without newline is left unread."""
    chunk = TranscriptChunk(offset=offset)
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read(max_bytes)
    except OSError:
        return chunk
    end = data.rfind(b"\n")
    if end == -1:
        return chunk
    calls: dict[str, ToolCall] = {}
    for raw in data[: end + 1].splitlines():
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            chunk.skipped_lines += 1
            continue
        if isinstance(line, dict):
            _absorb(line, chunk, calls)
        else:
            chunk.skipped_lines += 1
    chunk.offset = offset + end + 1
    return chunk


def _absorb(line: dict[str, Any], chunk: TranscriptChunk, calls: dict[str, ToolCall]) -> None:
    kind = line.get("type")
    stamp = str(line.get("timestamp") or "")
    if stamp:
        chunk.first_timestamp = chunk.first_timestamp or stamp
        chunk.last_timestamp = stamp
    if line.get("isSidechain"):
        return
    message = line.get("message") if isinstance(line.get("message"), dict) else {}
    content = message.get("content")
    if kind == "user":
        if line.get("isCompactSummary"):
            chunk.entries.append(Entry("compact_summary", _text_of(content), stamp))
            return
        if isinstance(content, str):
            if not line.get("isMeta") and not content.lstrip().startswith(INJECTED_PREFIXES):
                chunk.entries.append(Entry("user", content, stamp))
            return
        for block in content if isinstance(content, list) else []:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_result":
                call = calls.get(str(block.get("tool_use_id")))
                if call is not None:
                    call.result = _text_of(block.get("content"))
                    call.is_error = bool(block.get("is_error"))
            elif block.get("type") == "text" and not line.get("isMeta"):
                text = str(block.get("text") or "")
                if text and not text.lstrip().startswith(INJECTED_PREFIXES):
                    chunk.entries.append(Entry("user", text, stamp))
    elif kind == "assistant":
        for block in content if isinstance(content, list) else []:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text" and block.get("text"):
                chunk.entries.append(Entry("assistant", str(block["text"]), stamp))
            elif block.get("type") == "tool_use":
                call = ToolCall(
                    id=str(block.get("id") or ""),
                    name=str(block.get("name") or ""),
                    input=block.get("input") if isinstance(block.get("input"), dict) else {},
                    timestamp=stamp,
                )
                calls[call.id] = call
                chunk.tool_calls.append(call)
    elif kind == "summary" and line.get("summary"):
        chunk.entries.append(Entry("compact_summary", str(line["summary"]), stamp))


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text") or ""))
            elif isinstance(block, str):
                parts.append(block)
        return "\n".join(parts)
    return ""

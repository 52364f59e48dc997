"""Secret redaction: applied to every text before it is stored or indexed."""

from __future__ import annotations

import re

TYPE_CHECKING = False  # typing costs a hook ~4 ms to import; annotations only
if TYPE_CHECKING:
    from typing import Any

REDACTED = "[REDACTED]"

# (name, pattern, group to replace or 0 for the whole match)
_PATTERNS: list[tuple[str, re.Pattern[str], int]] = [
    ("private_span", re.compile(r"<private>.*?</private>", re.S | re.I), 0),
    (
        "private_key",
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
            re.S,
        ),
        0,
    ),
    ("aws_access_key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), 0),
    (
        "github_token",
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})"),
        0,
    ),
    ("anthropic_key", re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{20,}"), 0),
    ("openai_key", re.compile(r"\bsk-(?:proj-|svcacct-)?[A-Za-z0-9_\-]{20,}"), 0),
    ("stripe_key", re.compile(r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"), 0),
    ("slack_token", re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"), 0),
    ("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35,}"), 0),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"), 0),
    ("bearer", re.compile(r"(?i)\b(?:bearer|token)\s+([A-Za-z0-9_\-\.=:/+]{16,})"), 1),
    (
        "url_password",
        re.compile(r"\b[a-z][a-z0-9+.\-]*://[^\s:/@]+:(?!\[REDACTED\])([^\s@/]+)@"),
        1,
    ),
    (
        "assignment",
        re.compile(
            r"(?i)\b[\w.\-]*(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?key|"
            r"auth[_-]?token|access[_-]?token|private[_-]?key|client[_-]?secret)[\w.\-]*"
            r"[\"']?\s*[:=]\s*[\"']?(?!\[REDACTED\])([^\s\"',;]{4,})"
        ),
        1,
    ),
]


def redact(text: str) -> tuple[str, int]:
    """Return the text with secrets replaced by [REDACTED] and the number of replacements."""
    if not text:
        return text, 0
    total = 0
    for _name, pattern, group in _PATTERNS:

        def replace(match: re.Match[str], group: int = group) -> str:
            if group == 0:
                return REDACTED
            start, end = match.span(group)
            offset = match.start()
            whole = match.group(0)
            return whole[: start - offset] + REDACTED + whole[end - offset :]

        text, count = pattern.subn(replace, text)
        total += count
    return text, total


def redact_value(value: Any) -> tuple[Any, int]:
    """Redact every string inside JSON-like data (metadata dicts, tag lists)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        total = 0
        items = []
        for item in value:
            clean, count = redact_value(item)
            items.append(clean)
            total += count
        return items, total
    if isinstance(value, dict):
        total = 0
        out = {}
        for key, item in value.items():
            clean, count = redact_value(item)
            out[key] = clean
            total += count
        return out, total
    return value, 0

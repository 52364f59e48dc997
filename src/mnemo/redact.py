"""Secret redaction: applied to every text before it is stored or indexed."""

from __future__ import annotations

import re

TYPE_CHECKING = False  # typing costs a hook ~4 ms to import; annotations only
if TYPE_CHECKING:
    from typing import Any

REDACTED = "[REDACTED]"

# (name, pattern, flags, group to replace or 0 for the whole match, triggers). A pattern is
# compiled and run only when one of its triggers occurs in the lowercased text: each trigger is a
# substring every match must contain, so skipping is exact. Compiling all of them costs a hook
# process several milliseconds, and most texts contain no trigger at all.
_RULES: list[tuple[str, str, int, int, tuple[str, ...]]] = [
    ("private_span", r"<private>.*?</private>", re.S | re.I, 0, ("<private>",)),
    (
        "private_key",
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
        re.S,
        0,
        ("private key-----",),
    ),
    ("aws_access_key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", 0, 0, ("akia", "asia")),
    (
        "github_token",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})",
        0,
        0,
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    ("anthropic_key", r"\bsk-ant-[A-Za-z0-9_\-]{20,}", 0, 0, ("sk-ant-",)),
    ("openai_key", r"\bsk-(?:proj-|svcacct-)?[A-Za-z0-9_\-]{20,}", 0, 0, ("sk-",)),
    ("stripe_key", r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}", 0, 0, ("k_live_", "k_test_")),
    ("slack_token", r"\bxox[abposr]-[A-Za-z0-9\-]{10,}", 0, 0, ("xox",)),
    ("google_api_key", r"\bAIza[0-9A-Za-z_\-]{35,}", 0, 0, ("aiza",)),
    (
        "jwt",
        r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
        0,
        0,
        ("eyj",),
    ),
    (
        "bearer",
        r"\b(?:bearer|token)\s+([A-Za-z0-9_\-\.=:/+]{16,})",
        re.I,
        1,
        ("bearer", "token"),
    ),
    (
        "url_password",
        r"\b[a-z][a-z0-9+.\-]*://[^\s:/@]+:(?!\[REDACTED\])([^\s@/]+)@",
        0,
        1,
        ("://",),
    ),
    (
        "assignment",
        r"\b[\w.\-]*(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?key|"
        r"auth[_-]?token|access[_-]?token|private[_-]?key|client[_-]?secret)[\w.\-]*"
        r"[\"']?\s*[:=]\s*[\"']?(?!\[REDACTED\])([^\s\"',;]{4,})",
        re.I,
        1,
        ("passw", "pwd", "secret", "key", "token"),
    ),
]
_compiled: dict[str, re.Pattern[str]] = {}


def _pattern(name: str, source: str, flags: int) -> re.Pattern[str]:
    pattern = _compiled.get(name)
    if pattern is None:
        pattern = _compiled[name] = re.compile(source, flags)
    return pattern


def redact(text: str) -> tuple[str, int]:
    """Return the text with secrets replaced by [REDACTED] and the number of replacements."""
    if not text:
        return text, 0
    total = 0
    # Replacements only insert "[REDACTED]", which holds no trigger: one lowering serves all.
    lowered = text.lower()
    for name, source, flags, group, triggers in _RULES:
        if not any(trigger in lowered for trigger in triggers):
            continue

        def replace(match: re.Match[str], group: int = group) -> str:
            if group == 0:
                return REDACTED
            start, end = match.span(group)
            offset = match.start()
            whole = match.group(0)
            return whole[: start - offset] + REDACTED + whole[end - offset :]

        text, count = _pattern(name, source, flags).subn(replace, text)
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

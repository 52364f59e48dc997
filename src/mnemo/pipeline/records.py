"""Typed records of what happened to a project: deployments, test failures, incidents,
performance regressions, CI runs. Each becomes one archival passage: readable text for search,
every field in metadata for filters, `type` in metadata and tags.

A record is validated whole before anything is sent, and sent in one request: never half.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mnemo.remote.client import Client


class InvalidRecord(ValueError):
    """Input that cannot become a record; the message names the problem."""


@dataclass(frozen=True)
class Kind:
    type: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    numbers: tuple[str, ...] = ()


KINDS = {
    "deployment": Kind(
        "deployment",
        ("version", "environment", "status"),
        ("duration", "rollback", "issues", "commit", "url"),
        numbers=("duration",),
    ),
    "test-failure": Kind(
        "test_failure", ("test", "error"), ("file", "trace", "resolution", "commit", "url")
    ),
    "incident": Kind(
        "incident",
        ("title", "severity"),
        ("root_cause", "resolution", "prevention", "url"),
    ),
    "perf-regression": Kind(
        "perf_regression",
        ("metric", "baseline", "current"),
        ("change", "commit", "unit"),
        numbers=("baseline", "current", "change"),
    ),
    "ci-run": Kind(
        "ci_run",
        ("workflow", "conclusion"),
        ("branch", "commit", "duration", "url", "event"),
        numbers=("duration",),
    ),
}


@dataclass
class Record:
    type: str
    text: str
    metadata: dict[str, Any]
    tags: list[str]
    key: str | None = None  # records with a key are updated in place when seen again

    def body(self) -> dict[str, Any]:
        return {"text": self.text, "tags": self.tags, "metadata": self.metadata}


def build(kind_name: str, fields: dict[str, Any], source: str = "cli") -> Record:
    """A record of `kind_name` from its fields (strings are fine: numbers are parsed)."""
    kind = KINDS.get(kind_name)
    if kind is None:
        raise InvalidRecord(f"unknown record kind {kind_name!r}; known: {', '.join(KINDS)}")
    values = {k: v for k, v in fields.items() if v is not None and v != ""}
    missing = [name for name in kind.required if name not in values]
    if missing:
        raise InvalidRecord(f"{kind_name}: missing {', '.join('--' + m for m in missing)}")
    unknown = sorted(set(values) - set(kind.required) - set(kind.optional))
    if unknown:
        raise InvalidRecord(f"{kind_name}: unknown field(s) {', '.join(unknown)}")
    for name in kind.numbers:
        if name in values:
            values[name] = _number(kind_name, name, values[name])
    if kind.type == "perf_regression" and "change" not in values and values["baseline"]:
        values["change"] = round(
            (values["current"] - values["baseline"]) / values["baseline"] * 100, 2
        )
    text = RENDER[kind.type](values)
    tags = [kind.type]
    status = str(values.get("status") or values.get("conclusion") or "").lower()
    if status in FAILED:
        tags.append("failure")
    metadata = {"type": kind.type, "source": source, **values}
    return Record(kind.type, text, metadata, tags)


FAILED = {"failure", "failed", "error", "cancelled", "timed_out", "rolled_back", "rollback"}


def _number(kind: str, name: str, value: Any) -> float:
    text = str(value).strip().removesuffix("%").removesuffix("s")
    try:
        return float(text)
    except ValueError:
        raise InvalidRecord(f"{kind}: --{name} must be a number, got {value!r}") from None


def _join(*parts: str | None) -> str:
    return " ".join(p for p in parts if p)


RENDER = {
    "deployment": lambda v: _join(
        f"Deployment of {v['version']} to {v['environment']}: {v['status']}.",
        f"Took {v['duration']:g} s." if "duration" in v else None,
        f"Rollback: {v['rollback']}." if "rollback" in v else None,
        f"Issues: {v['issues']}" if "issues" in v else None,
    ),
    "test_failure": lambda v: _join(
        f"Test {v['test']} failed" + (f" in {v['file']}" if "file" in v else "") + ":",
        str(v["error"]),
        f"Resolution: {v['resolution']}" if "resolution" in v else None,
    ),
    "incident": lambda v: _join(
        f"Incident ({v['severity']}): {v['title']}.",
        f"Root cause: {v['root_cause']}." if "root_cause" in v else None,
        f"Resolution: {v['resolution']}." if "resolution" in v else None,
        f"Prevention: {v['prevention']}." if "prevention" in v else None,
    ),
    "perf_regression": lambda v: _join(
        f"Performance regression in {v['metric']}: {v['baseline']:g} -> {v['current']:g}"
        + (f" {v['unit']}" if "unit" in v else "")
        + f" ({v['change']:+g}%)",
        f"at commit {v['commit']}." if "commit" in v else None,
    ),
    "ci_run": lambda v: _join(
        f"CI {v['workflow']}: {v['conclusion']}",
        f"on {v['branch']}" if "branch" in v else None,
        f"at {str(v['commit'])[:12]}" if "commit" in v else None,
        f"({v['duration']:g} s)." if "duration" in v else None,
    ),
}


def read_json(path: str) -> Any:
    """A JSON input file, or InvalidRecord saying why it cannot be read."""
    import json

    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except FileNotFoundError:
        raise InvalidRecord(f"{path}: no such file") from None
    except ValueError as exc:
        raise InvalidRecord(f"{path}: not JSON ({exc})") from None


def error_signature(message: str) -> str:
    """The same failure with different numbers, ids, addresses or temp paths gets the same
    signature: digits, hex runs and quoted values are masked before hashing."""
    first = message.strip().splitlines()[0] if message.strip() else ""
    masked = re.sub(r"0x[0-9a-fA-F]+|\b[0-9a-f]{8,}\b", "<hex>", first)
    masked = re.sub(r"\d+(\.\d+)?", "<n>", masked)
    masked = re.sub(r"(/tmp|/var/folders)/\S+", "<tmp>", masked)
    return hashlib.sha1(masked.encode()).hexdigest()[:12]


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def upsert(client: Client, agent_id: str, record: Record) -> tuple[str, dict[str, Any]]:
    """Store a keyed record, or update the one stored under the same key: it counts
    `occurrences`, moves `last_seen` and reopens a resolved record. Returns (what, passage)
    where what is "new" or "repeated"."""
    assert record.key, "only keyed records are upserted"
    metadata = {**record.metadata, "record_key": record.key}
    found = next(
        iter(client.passages(agent_id, metadata={"record_key": record.key}, limit=1)), None
    )
    if found is None:
        stamp = now_iso()
        body = {**record.body(), "metadata": {**metadata, "first_seen": stamp, "last_seen": stamp}}
        return "new", client.remember_many(agent_id, [body])[0]
    old = found.get("metadata") or {}
    changes = {
        **metadata,
        "occurrences": int(old.get("occurrences", 1)) + 1,
        "last_seen": now_iso(),
        "status": metadata.get("status", "open"),
        "resolved_at": None,
    }
    return "repeated", client.update_passage(agent_id, found["id"], metadata=changes)

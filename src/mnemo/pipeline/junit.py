"""JUnit XML (pytest --junitxml, and most other test runners) into test-failure records.

Every failing or erroring test case becomes a `test_failure` record keyed by test id and error
signature: the same failure seen again updates its record (occurrences, last_seen) instead of
adding another. A test that passes later resolves its open records.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from typing import Any

from mnemo.pipeline.records import InvalidRecord, Record, build, error_signature, now_iso, upsert
from mnemo.remote.client import Client

TRACE_CHARS = 4000


@dataclass
class Case:
    test_id: str
    file: str | None
    outcome: str  # passed | failed | skipped
    error: str = ""
    trace: str = ""


@dataclass
class Report:
    new: list[str] = field(default_factory=list)
    repeated: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    passed: int = 0
    skipped: int = 0


def parse(path: str) -> list[Case]:
    """Test cases of one JUnit XML file. Raises InvalidRecord on anything that is not one."""
    try:
        root = ElementTree.parse(path).getroot()
    except FileNotFoundError:
        raise InvalidRecord(f"{path}: no such file") from None
    except ElementTree.ParseError as exc:
        raise InvalidRecord(f"{path}: not valid XML ({exc})") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise InvalidRecord(f"{path}: not a JUnit report (root element <{root.tag}>)")
    cases = []
    for case in root.iter("testcase"):
        name = case.get("name")
        if not name:
            raise InvalidRecord(f"{path}: a <testcase> has no name")
        classname = case.get("classname") or ""
        test_id = f"{classname}::{name}" if classname else name
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        file = case.get("file") or _file_of(classname)
        if problem is None:
            skipped = case.find("skipped") is not None
            cases.append(Case(test_id, file, "skipped" if skipped else "passed"))
            continue
        trace = (problem.text or "").strip()
        error = problem.get("message") or (trace.splitlines() or [""])[-1]
        cases.append(Case(test_id, file, "failed", error.strip()[:1000], trace[-TRACE_CHARS:]))
    return cases


def _file_of(classname: str) -> str | None:
    """pytest's classname `tests.test_upload.TestRetry` → `tests/test_upload.py`."""
    parts = [p for p in classname.split(".") if p]
    while parts and parts[-1][:1].isupper():
        parts.pop()
    return "/".join(parts) + ".py" if parts else None


def failure_record(case: Case, commit: str | None, url: str | None) -> Record:
    fields: dict[str, Any] = {
        "test": case.test_id,
        "error": case.error or "failed",
        "file": case.file,
        "trace": case.trace,
        "commit": commit,
        "url": url,
    }
    record = build("test-failure", fields, source="junit")
    record.metadata["status"] = "open"
    record.metadata["signature"] = error_signature(case.error)
    record.key = f"test_failure:{case.test_id}:{record.metadata['signature']}"
    return record


def ingest(client: Client, agent_id: str, paths: list[str]) -> Report:
    """Parse every file first (a bad file stores nothing), then record failures and resolve
    open failures of tests that now pass."""
    cases = [case for path in paths for case in parse(path)]
    commit = os.environ.get("GITHUB_SHA")
    url = _run_url()
    report = Report()
    failing = [c for c in cases if c.outcome == "failed"]
    report.skipped = sum(1 for c in cases if c.outcome == "skipped")
    passing = {c.test_id for c in cases if c.outcome == "passed"}
    report.passed = len(passing)
    for case in failing:
        what, _ = upsert(client, agent_id, failure_record(case, commit, url))
        (report.new if what == "new" else report.repeated).append(case.test_id)
    still_failing = {c.test_id for c in failing}
    open_failures = client.passages(
        agent_id, type="test_failure", metadata={"status": "open"}, newest_first=False
    )
    for passage in list(open_failures):
        test_id = (passage.get("metadata") or {}).get("test")
        if test_id in passing and test_id not in still_failing:
            client.update_passage(
                agent_id,
                passage["id"],
                metadata={
                    "status": "resolved",
                    "resolved_at": now_iso(),
                    "resolved_by": commit or "a passing run",
                },
            )
            report.resolved.append(test_id)
    return report


def _run_url() -> str | None:
    server, repo, run = (
        os.environ.get(name) for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    return f"{server}/{repo}/actions/runs/{run}" if server and repo and run else None

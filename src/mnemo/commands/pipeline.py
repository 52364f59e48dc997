"""`mnemo record …` and `mnemo ingest …`: the learning pipeline from a shell or a CI job."""

from __future__ import annotations

import argparse
import os
from typing import Any

from mnemo.commands import agent_id, client, friendly, target_options

FIELD_HELP = {
    "version": "released version or ref",
    "environment": "e.g. staging, production",
    "status": "success, failure, rolled_back, …",
    "duration": "seconds",
    "rollback": "whether / how it was rolled back",
    "issues": "what went wrong or was noticed",
    "test": "test id, e.g. tests/test_upload.py::test_retry",
    "file": "source file of the failure",
    "error": "the error message",
    "trace": "traceback (or @FILE to read it from a file)",
    "resolution": "how it was fixed",
    "title": "one-line summary",
    "severity": "e.g. sev1, high, low",
    "root_cause": "why it happened",
    "prevention": "what stops it happening again",
    "metric": "what got slower, e.g. p95 search latency",
    "baseline": "value before",
    "current": "value now",
    "change": "percent change (computed when omitted)",
    "commit": "commit id",
    "unit": "unit of baseline/current",
    "url": "link to logs, PR or run",
    "conclusion": "success, failure, cancelled, …",
    "workflow": "workflow or check name",
    "branch": "branch name",
    "event": "what triggered the run",
}


def register(commands: Any) -> None:
    from mnemo.pipeline.records import KINDS

    record = commands.add_parser(
        "record",
        help="record a deployment, test failure, incident or performance regression",
        description="Store one typed record as a memory of the project (text for search, every "
        "field in metadata for filters). A near-identical record of the same type is merged "
        "into the existing one (counted in `occurrences`) unless --no-dedupe.",
    )
    kinds = record.add_subparsers(dest="kind", metavar="KIND", required=True)
    for name, kind in KINDS.items():
        p = kinds.add_parser(name, help=f"a {kind.type} record")
        for field in kind.required:
            p.add_argument(
                f"--{field.replace('_', '-')}",
                dest=field,
                required=True,
                help=FIELD_HELP.get(field),
            )
        for field in kind.optional:
            p.add_argument(f"--{field.replace('_', '-')}", dest=field, help=FIELD_HELP.get(field))
        p.add_argument("--no-dedupe", action="store_true", help="always store a new record")
        p.add_argument("--json", action="store_true", help="print the stored passage as JSON")
        target_options(p)
        p.set_defaults(handler=record_command, fields=kind.required + kind.optional)

    ingest = commands.add_parser("ingest", help="turn CI output into records")
    sources = ingest.add_subparsers(dest="source", metavar="SOURCE", required=True)
    p = sources.add_parser(
        "junit",
        help="JUnit XML reports (pytest --junitxml): failures in, passing tests resolve",
        description="Every failing test case becomes a test_failure record keyed by test id "
        "and error signature; seen again, the record is updated (occurrences, last_seen); a "
        "test that passes resolves its open records. All files are read before anything is "
        "stored: a bad file stores nothing.",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    target_options(p)
    p.set_defaults(handler=ingest_junit)
    p = sources.add_parser(
        "github-event",
        help="a GitHub Actions event (deployment_status, workflow_run, check_run)",
        description="Reads GITHUB_EVENT_NAME and GITHUB_EVENT_PATH, as set in a workflow step.",
    )
    p.add_argument("--event", help="event name (default: $GITHUB_EVENT_NAME)")
    p.add_argument("--payload", metavar="FILE", help="event JSON (default: $GITHUB_EVENT_PATH)")
    target_options(p)
    p.set_defaults(handler=ingest_github)
    p = sources.add_parser(
        "pytest-benchmark",
        help="compare two pytest-benchmark JSON files; record regressions",
    )
    p.add_argument("old", metavar="OLD.json")
    p.add_argument("new", metavar="NEW.json")
    p.add_argument("--threshold", default="10%", help="slower than this counts (default 10%%)")
    target_options(p)
    p.set_defaults(handler=ingest_benchmarks)


@friendly
def record_command(args: argparse.Namespace) -> int:
    import json

    from mnemo.pipeline.records import build

    fields = {name: getattr(args, name) for name in args.fields}
    trace = fields.get("trace")
    if isinstance(trace, str) and trace.startswith("@"):
        with open(trace[1:], encoding="utf-8") as file:
            fields["trace"] = file.read()[-4000:]
    record = build(args.kind, fields)  # validated before connecting
    memory = client(args)
    agent = agent_id(args, memory, create=True)
    stored = memory.remember_many(agent, [record.body()], dedupe=not args.no_dedupe)[0]
    if args.json:
        print(json.dumps(stored, indent=2))
    elif stored.get("merged"):
        seen = stored["metadata"].get("occurrences")
        print(f"merged into {stored['id']} (a near-identical {record.type}; seen {seen} times)")
    else:
        print(f"recorded {record.type} {stored['id']}")
    return 0


@friendly
def ingest_junit(args: argparse.Namespace) -> int:
    from mnemo.pipeline import junit

    for path in args.files:  # fail fast on every file before connecting
        junit.parse(path)
    memory = client(args)
    report = junit.ingest(memory, agent_id(args, memory, create=True), args.files)
    print(
        f"{report.passed} passed, {len(report.new) + len(report.repeated)} failing "
        f"({len(report.new)} new, {len(report.repeated)} seen before), "
        f"{len(report.resolved)} resolved, {report.skipped} skipped"
    )
    for label, ids in (
        ("new", report.new),
        ("again", report.repeated),
        ("resolved", report.resolved),
    ):
        for test_id in ids:
            print(f"  {label:8} {test_id}")
    return 0


@friendly
def ingest_github(args: argparse.Namespace) -> int:
    from mnemo.pipeline import github
    from mnemo.pipeline.records import upsert

    name = args.event or os.environ.get("GITHUB_EVENT_NAME")
    payload = github.load(name, args.payload or os.environ.get("GITHUB_EVENT_PATH"))
    record = github.record(str(name), payload)
    if record is None:
        print(f"{name}: not finished yet (pending or in progress); nothing recorded")
        return 0
    memory = client(args)
    what, stored = upsert(memory, agent_id(args, memory, create=True), record)
    verb = "recorded" if what == "new" else "updated (delivered before)"
    print(f"{verb} {record.type} {stored['id']}: {record.text}")
    return 0


@friendly
def ingest_benchmarks(args: argparse.Namespace) -> int:
    from mnemo.pipeline import benchmarks
    from mnemo.pipeline.records import upsert

    found = benchmarks.regressions(args.old, args.new, benchmarks.threshold_percent(args.threshold))
    if not found:
        print(f"no benchmark slower by more than {args.threshold}")
        return 0
    memory = client(args)
    agent = agent_id(args, memory, create=True)
    for record in found:
        upsert(memory, agent, record)
        print(f"regression: {record.text}")
    return 0

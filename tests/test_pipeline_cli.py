"""The learning pipeline and search helpers, as a user runs them: `mnemo record`, `mnemo ingest`
(real pytest JUnit XML, GitHub event payloads, pytest-benchmark JSON), `mnemo search`, `mnemo
prune`, against a live server, in a temporary HOME and git project."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.claude.conftest import HookRunner, git_project
from tests.claude.fixtures import payload
from tests.conftest import ServerProcess


@pytest.fixture
def user(server: ServerProcess, tmp_path: Path) -> Cli:
    home = tmp_path / "home"
    home.mkdir()
    return Cli(HookRunner(home=home, url=server.url), git_project(tmp_path / "shop"))


class Cli:
    def __init__(self, hooks: HookRunner, project: Path) -> None:
        self.hooks = hooks
        self.project = project
        self.http = httpx.Client(base_url=hooks.url, timeout=60)
        self._agent: str | None = None

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.hooks.cli(*args, cwd=self.project, env=env)

    def ok(self, *args: str, env: dict[str, str] | None = None) -> str:
        result = self.run(*args, env=env)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def agent(self) -> str:
        """The project's agent, made as a first Claude Code session there makes it."""
        if self._agent is None:
            self.hooks.run("session-start", payload("SessionStart", self.project, source="startup"))
            assert isinstance(json.loads(self.ok("search", "--json", "--limit", "1")), list)
            found = self.http.get("/v1/agents/", params={"tags": "claude-code"}).json()
            root = str(self.project.resolve())
            mine = [a for a in found if a["metadata"].get("mnemo_project") == root]
            assert len(mine) == 1
            self._agent = mine[0]["id"]
        return self._agent

    def passages(self, **metadata: str) -> list[dict[str, Any]]:
        params = {"limit": 1000, **{f"metadata.{k}": v for k, v in metadata.items()}}
        return self.http.get(f"/v1/agents/{self.agent()}/archival-memory", params=params).json()


def test_record_commands_store_typed_records_and_merge_repeats(user: Cli) -> None:
    out = user.ok(
        "record",
        "deployment",
        "--version",
        "1.4.0",
        "--environment",
        "production",
        "--status",
        "success",
        "--duration",
        "312",
        "--rollback",
        "no",
    )
    assert out.startswith("recorded deployment passage-")
    (deployment,) = user.passages(type="deployment")
    assert deployment["metadata"]["environment"] == "production"
    assert deployment["metadata"]["duration"] == 312.0
    assert deployment["tags"] == ["deployment"]
    assert "1.4.0" in deployment["text"] and "production" in deployment["text"]

    user.ok(
        "record",
        "test-failure",
        "--test",
        "tests/test_cart.py::test_total",
        "--error",
        "AssertionError: 41 != 42",
        "--file",
        "tests/test_cart.py",
    )
    user.ok(
        "record",
        "perf-regression",
        "--metric",
        "checkout p95",
        "--baseline",
        "120",
        "--current",
        "180",
        "--unit",
        "ms",
        "--commit",
        "abc123",
    )
    (perf,) = user.passages(type="perf_regression")
    assert perf["metadata"]["change"] == 50.0 and "+50%" in perf["text"]

    incident = (
        "record",
        "incident",
        "--title",
        "Checkout returned 502s",
        "--severity",
        "sev2",
        "--root-cause",
        "connection pool exhausted",
        "--prevention",
        "pool alarms",
    )
    first = user.ok(*incident)
    again = user.ok(*incident)
    passage_id = first.split()[-1]
    assert again.startswith(f"merged into {passage_id}") and "seen 2 times" in again
    (stored,) = user.passages(type="incident")
    assert stored["metadata"]["occurrences"] == 2
    user.ok(*incident, "--no-dedupe")
    assert len(user.passages(type="incident")) == 2

    before = len(user.passages())
    missing = user.run("record", "incident", "--title", "x")
    assert missing.returncode == 2 and "--severity" in missing.stderr
    bad_number = user.run(
        "record", "perf-regression", "--metric", "m", "--baseline", "1", "--current", "fast"
    )
    assert bad_number.returncode == 2
    assert "--current must be a number, got 'fast'" in bad_number.stderr
    assert len(user.passages()) == before  # nothing half-stored


TESTS = """
import os

def test_ok():
    assert True

def test_upload_retry():
    assert os.environ.get("FIX_RETRY") == "1", "retry count was 3, expected 5"

class TestHeader:
    def test_parse(self):
        if os.environ.get("FIX_HEADER") != "1":
            raise ValueError("bad header byte at offset 17")
"""


def junit(tmp_path: Path, name: str, **env: str) -> str:
    """A real report: pytest runs a small test file with --junitxml."""
    folder = tmp_path / "suite"
    folder.mkdir(exist_ok=True)
    (folder / "test_upload.py").write_text(TESTS)
    report = tmp_path / f"{name}.xml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            str(folder / "test_upload.py"),
        ],
        capture_output=True,
        env={**_plain_env(), **env},
        cwd=folder,
        timeout=120,
    )
    assert report.is_file()
    return str(report)


def _plain_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("FIX_", "PYTEST_"))}


@pytest.mark.slow
def test_ingest_junit_counts_repeats_and_resolves(user: Cli, tmp_path: Path) -> None:
    failing = junit(tmp_path, "run1")
    out = user.ok("ingest", "junit", failing)
    assert "1 passed, 2 failing (2 new, 0 seen before), 0 resolved" in out
    out = user.ok("ingest", "junit", failing)
    assert "(0 new, 2 seen before)" in out
    records = {p["metadata"]["test"]: p for p in user.passages(type="test_failure")}
    assert set(records) == {"test_upload::test_upload_retry", "test_upload.TestHeader::test_parse"}
    retry = records["test_upload::test_upload_retry"]
    assert retry["metadata"]["occurrences"] == 2 and retry["metadata"]["status"] == "open"
    assert retry["metadata"]["file"] == "test_upload.py"
    assert "retry count was 3" in retry["text"]

    fixed = junit(tmp_path, "run2", FIX_RETRY="1")
    out = user.ok("ingest", "junit", fixed)
    assert "2 passed, 1 failing (0 new, 1 seen before), 1 resolved" in out
    records = {p["metadata"]["test"]: p for p in user.passages(type="test_failure")}
    assert records["test_upload::test_upload_retry"]["metadata"]["status"] == "resolved"
    assert records["test_upload.TestHeader::test_parse"]["metadata"]["status"] == "open"
    assert len(records) == 2

    broken = tmp_path / "broken.xml"
    broken.write_text("<testsuites><testsuite>")
    before = user.passages(type="test_failure")
    result = user.run("ingest", "junit", junit(tmp_path, "run3"), str(broken))
    assert result.returncode == 2 and "broken.xml: not valid XML" in result.stderr
    assert user.passages(type="test_failure") == before  # the good file was not stored either
    other = tmp_path / "other.xml"
    other.write_text("<html><body/></html>")
    result = user.run("ingest", "junit", str(other))
    assert result.returncode == 2 and "not a JUnit report" in result.stderr


def github_event(tmp_path: Path, name: str, payload: dict[str, Any]) -> dict[str, str]:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(payload))
    return {"GITHUB_EVENT_NAME": name, "GITHUB_EVENT_PATH": str(path)}


DEPLOYMENT_STATUS = {  # the documented deployment_status webhook shape, trimmed
    "action": "created",
    "deployment_status": {
        "id": 9001,
        "state": "failure",
        "environment": "production",
        "description": "health check failed",
        "target_url": "https://ci.example/run/7",
        "created_at": "2026-11-20T10:05:30Z",
    },
    "deployment": {
        "id": 77,
        "sha": "9f8e7d6c5b4a",
        "ref": "v2.3.0",
        "environment": "production",
        "created_at": "2026-11-20T10:00:00Z",
    },
    "repository": {"full_name": "acme/shop"},
}
WORKFLOW_RUN = {
    "action": "completed",
    "workflow_run": {
        "id": 555,
        "name": "CI",
        "run_attempt": 1,
        "conclusion": "failure",
        "event": "push",
        "head_branch": "main",
        "head_sha": "abcdef123456",
        "html_url": "https://ci.example/555",
        "run_started_at": "2026-11-20T09:00:00Z",
        "updated_at": "2026-11-20T09:07:00Z",
    },
}


def test_ingest_github_events(user: Cli, tmp_path: Path) -> None:
    env = github_event(tmp_path, "deployment_status", DEPLOYMENT_STATUS)
    out = user.ok("ingest", "github-event", env=env)
    assert out.startswith("recorded deployment")
    again = user.ok("ingest", "github-event", env=env)
    assert again.startswith("updated (delivered before)")
    (deployment,) = user.passages(type="deployment")
    meta = deployment["metadata"]
    assert (meta["environment"], meta["status"], meta["version"]) == (
        "production",
        "failure",
        "v2.3.0",
    )
    assert meta["duration"] == 330.0 and meta["occurrences"] == 2
    assert "failure" in deployment["tags"]

    user.ok("ingest", "github-event", env=github_event(tmp_path, "workflow_run", WORKFLOW_RUN))
    (run,) = user.passages(type="ci_run")  # before the check run below
    assert run["metadata"]["conclusion"] == "failure" and run["metadata"]["duration"] == 420.0

    check = {
        "action": "completed",
        "check_run": {
            "id": 4242,
            "name": "lint",
            "conclusion": "success",
            "head_sha": "abc123",
            "started_at": "2026-11-20T09:00:00Z",
            "completed_at": "2026-11-20T09:00:45Z",
            "html_url": "https://ci.example/checks/4242",
            "check_suite": {"head_branch": "feature/cart"},
        },
    }
    user.ok("ingest", "github-event", env=github_event(tmp_path, "check_run", check))
    lint = next(p for p in user.passages(type="ci_run") if p["metadata"]["workflow"] == "lint")
    assert lint["metadata"]["branch"] == "feature/cart" and lint["metadata"]["duration"] == 45.0
    assert "failure" not in lint["tags"]
    pending = {**DEPLOYMENT_STATUS, "deployment_status": {"state": "in_progress"}}
    out = user.ok(
        "ingest", "github-event", env=github_event(tmp_path, "deployment_status", pending)
    )
    assert "nothing recorded" in out
    unknown = user.run("ingest", "github-event", env=github_event(tmp_path, "issues", {}))
    assert unknown.returncode == 2 and "supported: deployment_status" in unknown.stderr
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    result = user.run(
        "ingest",
        "github-event",
        env={"GITHUB_EVENT_NAME": "workflow_run", "GITHUB_EVENT_PATH": str(garbage)},
    )
    assert result.returncode == 2 and "not JSON" in result.stderr
    assert len(user.passages(type="deployment")) == 1 and len(user.passages(type="ci_run")) == 2


def benchmark_file(path: Path, means: dict[str, float], commit: str) -> str:
    """The pytest-benchmark --benchmark-json shape (fields the ingester reads, plus context)."""
    path.write_text(
        json.dumps(
            {
                "machine_info": {"node": "ci"},
                "commit_info": {"id": commit, "branch": "main", "dirty": False},
                "benchmarks": [
                    {
                        "group": None,
                        "name": name.split("::")[-1],
                        "fullname": name,
                        "stats": {
                            "min": m * 0.9,
                            "max": m * 1.2,
                            "mean": m,
                            "stddev": m / 20,
                            "rounds": 50,
                            "median": m,
                            "ops": 1 / m,
                        },
                    }
                    for name, m in means.items()
                ],
                "datetime": "2026-11-20T09:00:00",
                "version": "4.0.0",
            }
        )
    )
    return str(path)


def test_ingest_pytest_benchmark_records_regressions(user: Cli, tmp_path: Path) -> None:
    old = benchmark_file(
        tmp_path / "old.json",
        {"bench/test_search.py::test_search": 0.020, "bench/test_search.py::test_insert": 0.010},
        "aaa111",
    )
    new = benchmark_file(
        tmp_path / "new.json",
        {"bench/test_search.py::test_search": 0.031, "bench/test_search.py::test_insert": 0.0105},
        "bbb222",
    )
    out = user.ok("ingest", "pytest-benchmark", old, new, "--threshold", "10%")
    assert "test_search (mean)" in out and "test_insert" not in out
    user.ok("ingest", "pytest-benchmark", old, new, "--threshold", "10%")  # same run again
    (regression,) = user.passages(type="perf_regression")
    assert regression["metadata"]["change"] == 55.0
    assert regression["metadata"]["commit"] == "bbb222"
    quiet = user.ok("ingest", "pytest-benchmark", old, new, "--threshold", "60%")
    assert "no benchmark slower" in quiet
    bad = user.run("ingest", "pytest-benchmark", old, str(tmp_path / "missing.json"))
    assert bad.returncode == 2 and "missing.json: no such file" in bad.stderr
    bad = user.run("ingest", "pytest-benchmark", old, new, "--threshold", "lots")
    assert bad.returncode == 2 and "not a percentage" in bad.stderr


def test_filters_run_on_the_server_beyond_the_first_100_rows(user: Cli) -> None:
    agent = user.agent()
    old = datetime.now(UTC) - timedelta(days=3)
    targets = [
        {
            "text": "Edited src/cart.py: total rounds half up",
            "tags": ["file_change"],
            "metadata": {"type": "file_change", "path": "src/cart.py"},
            "created_at": (old + timedelta(minutes=i)).isoformat(),
        }
        for i in range(3)
    ]
    decision = {
        "text": "Decision: cart totals use Decimal, never float",
        "tags": ["decision"],
        "metadata": {"type": "decision"},
        "created_at": old.isoformat(),
    }
    noise = [
        {
            "text": f"Note {i}: cart totals and rounding looked at again in src/other_{i}.py",
            "tags": ["note"],
            "metadata": {"type": "note", "path": f"src/other_{i}.py"},
        }
        for i in range(250)
    ]
    user.http.post(
        f"/v1/agents/{agent}/archival-memory/batch", json={"passages": [*targets, decision]}
    ).raise_for_status()
    user.http.post(
        f"/v1/agents/{agent}/archival-memory/batch", json={"passages": noise}
    ).raise_for_status()

    history = user.ok("search", "--file", "src/cart.py", "--json")
    rows = json.loads(history)
    assert [r["metadata"]["path"] for r in rows] == ["src/cart.py"] * 3
    assert rows[0]["created_at"] > rows[-1]["created_at"]  # newest first

    found = json.loads(
        user.ok("search", "cart totals rounding", "--type", "decision", "--limit", "1", "--json")
    )
    assert [r["content"] for r in found] == [decision["text"]]
    recent = json.loads(user.ok("search", "--since", "1d", "--limit", "500", "--json"))
    assert len(recent) == 250  # the three-day-old records are filtered out on the server
    by_meta = json.loads(user.ok("search", "--meta", "path=src/other_7.py", "--json"))
    assert [r["metadata"]["path"] for r in by_meta] == ["src/other_7.py"]
    bad = user.run("search", "--meta", "nonsense")
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr


def test_prune_dry_run_then_delete(user: Cli) -> None:
    agent = user.agent()
    now = datetime.now(UTC)
    rows = [
        {
            "text": f"Edited src/module_{i}.py",
            "tags": ["file_change"],
            "metadata": {"type": "file_change", "path": f"src/module_{i}.py"},
            "created_at": (now - timedelta(days=i * 10)).isoformat(),
        }
        for i in range(10)  # 0, 10, …, 90 days old
    ]
    keep = {
        "text": "Decision: keep everything",
        "metadata": {"type": "decision"},
        "created_at": (now - timedelta(days=400)).isoformat(),
    }
    user.http.post(
        f"/v1/agents/{agent}/archival-memory/batch", json={"passages": [*rows, keep]}
    ).raise_for_status()

    dry = user.ok("prune", "--type", "file_change", "--older-than", "45d", "--dry-run")
    assert "file_change: would delete 5" in dry
    assert len(user.passages(type="file_change")) == 10
    done = user.ok("prune", "--type", "file_change", "--older-than", "45d")
    assert "file_change: deleted 5" in done
    assert len(user.passages(type="file_change")) == 5
    user.ok("prune", "--type", "file_change", "--keep", "2")
    left = user.passages(type="file_change")
    assert sorted(p["metadata"]["path"] for p in left) == ["src/module_0.py", "src/module_1.py"]
    assert len(user.passages(type="decision")) == 1  # other types untouched
    refused = user.run("prune", "--older-than", "1d")
    assert refused.returncode == 2 and "--type" in refused.stderr


def test_search_conversations_finds_what_was_said(user: Cli) -> None:
    agent = user.agent()
    now = datetime.now(UTC)

    def session(name: str, days_ago: int, turns: list[str]) -> None:
        messages = [
            {
                "role": "user" if i % 2 == 0 else "assistant",
                "content": text,
                "conversation_id": name,
                "created_at": (now - timedelta(days=days_ago, minutes=10 - i)).isoformat(),
            }
            for i, text in enumerate(turns)
        ]
        user.http.post(
            f"/v1/agents/{agent}/messages/import", json={"messages": messages}
        ).raise_for_status()

    session("old-session", 20, ["why is the upload test flaky?", "The S3 mock races the retry."])
    session("new-session", 1, ["the upload test is flaky again", "Pinned the retry to one."])
    session("other", 1, ["lunch order: pizza", "Two margheritas."])

    found = json.loads(user.ok("search", "upload flaky", "--conversations", "--json"))
    # Each reply is found by the words of the question before it in its session.
    assert {m["content"] for m in found} == {
        "why is the upload test flaky?",
        "The S3 mock races the retry.",
        "the upload test is flaky again",
        "Pinned the retry to one.",
    }
    recent = json.loads(
        user.ok("search", "upload flaky", "--conversations", "--since", "7d", "--json")
    )
    assert {m["conversation_id"] for m in recent} == {"new-session"}
    one = json.loads(
        user.ok("search", "retry", "--conversations", "--session", "old-session", "--json")
    )
    assert [m["content"] for m in one] == ["The S3 mock races the retry."]
    shown = user.ok("search", "pizza", "--conversations")
    assert "user" in shown and "other" in shown and "lunch order: pizza" in shown

    for bad, says in (
        (["search", "--conversations"], "needs a QUERY"),
        (["search", "x", "--conversations", "--type", "decision"], "--type filter memories"),
        (["search", "x", "--session", "s1"], "use it with --conversations"),
    ):
        result = user.run(*bad)
        assert result.returncode == 2 and says in result.stderr, (bad, result.stderr)

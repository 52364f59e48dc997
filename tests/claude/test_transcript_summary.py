"""Transcript parsing (incremental, defensive) and the extractive session summary."""

from __future__ import annotations

import json
from pathlib import Path

from mnemo.claude import summary, transcript
from tests.claude.fixtures import SESSION, session_lines, tool_result, tool_use, write_transcript


def test_parses_entries_tools_and_results(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    write_transcript(path, session_lines(tmp_path), truncated_tail=True)
    chunk = transcript.read(str(path))
    kinds = [e.kind for e in chunk.entries]
    assert kinds == ["user", "compact_summary", "assistant"]  # injected reminder skipped
    assert [c.name for c in chunk.tool_calls] == ["Edit", "Bash", "Write", "Bash"]
    assert chunk.tool_calls[1].is_error is True
    assert "TypeError" in chunk.tool_calls[1].result
    assert chunk.tool_calls[3].is_error is False
    assert chunk.first_timestamp.startswith("2026-07-06T10:01")
    # the truncated last line is not consumed: the offset stops before it
    assert chunk.offset == path.read_bytes().rfind(b"\n") + 1


def test_incremental_reads_pick_up_where_they_left(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    lines = session_lines(tmp_path)
    write_transcript(path, lines[:4], truncated_tail=True)
    first = transcript.read(str(path))
    assert [e.kind for e in first.entries] == ["user"]
    write_transcript(path, lines)  # the partial line got completed, more lines came
    second = transcript.read(str(path), first.offset)
    assert [e.kind for e in second.entries] == ["compact_summary", "assistant"]
    assert transcript.read(str(path), second.offset).entries == []


def test_garbage_and_unknown_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(
        'not json\n[1,2]\n{"type":"queue-operation"}\n'
        + json.dumps(session_lines(tmp_path)[0])
        + "\n"
    )
    chunk = transcript.read(str(path))
    assert chunk.skipped_lines == 2
    assert [e.text for e in chunk.entries] == ["add retries to the uploader"]
    assert transcript.read(str(tmp_path / "absent.jsonl")).entries == []


def test_summary_links_failure_to_fix(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    write_transcript(path, session_lines(tmp_path))
    result = summary.summarise(transcript.read(str(path)), str(tmp_path))
    assert result.requests == ["add retries to the uploader"]
    assert result.files == ["app/uploader.py", "app/client.py"]
    assert result.commands == ["pytest -q tests/test_uploader.py"]
    (failure,) = result.failures
    assert "TypeError" in failure.error
    assert failure.fix == "pytest -q tests/test_uploader.py"
    assert failure.edited_between == ["app/client.py"]
    assert result.tools == {"Edit": 1, "Bash": 2, "Write": 1}
    assert result.duration_seconds == 6 * 60 + 10  # 10:01:00 → 10:07:10
    assert result.outcome == "Retries added to the uploader; the tests pass."
    text = summary.render(result, SESSION)
    assert "Resolved by `pytest -q tests/test_uploader.py` after editing app/client.py" in text
    (lesson,) = summary.learnings(result)
    assert "fixed by editing app/client.py" in lesson


def test_unresolved_failure_has_no_learning(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    write_transcript(path, session_lines(tmp_path)[:6])
    result = summary.summarise(transcript.read(str(path)), str(tmp_path))
    assert result.failures[0].fix is None
    assert summary.learnings(result) == []
    assert "Unresolved" in summary.render(result, SESSION)


def test_denied_commands_are_neither_run_nor_failures(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    lines = session_lines(tmp_path)
    scratch = tmp_path / "x"
    lines += [
        tool_use("Bash", {"command": "sudo rm -rf /"}, "deny1", 20, tmp_path),
        tool_result("deny1", "mnemo guard (sudo): this command runs as root", True, 20, tmp_path),
        tool_use("Bash", {"command": f"rm -rf {scratch}"}, "deny2", 21, tmp_path),
        tool_result(
            "deny2",
            f"Permission to use Bash with command rm -rf {scratch} has been denied.",
            True,
            21,
            tmp_path,
        ),
    ]
    write_transcript(path, lines)
    result = summary.summarise(transcript.read(str(path)), str(tmp_path))
    assert result.commands == ["pytest -q tests/test_uploader.py"]
    assert result.denied == ["sudo rm -rf /", f"rm -rf {scratch}"]
    assert all("sudo" not in f.command and str(scratch) not in f.command for f in result.failures)
    text = summary.render(result, SESSION)
    assert f"Commands denied (not run): sudo rm -rf / ; rm -rf {scratch}" in text
    assert text.count("Unresolved") == 0


def test_a_small_budget_leaves_no_empty_section() -> None:
    from mnemo.claude import context

    blocks = [{"label": "human", "value": "x" * 150}]
    sessions = [{"id": "passage-1", "created_at": "2026-07-06", "text": "y" * 500}]
    text, shown = context.session_context("demo", blocks, sessions, [], limit=260)
    assert "## Recent sessions" not in text and shown == []
    text, shown = context.session_context("demo", blocks, sessions, [], limit=2000)
    assert "## Recent sessions" in text and shown == ["passage-1"]

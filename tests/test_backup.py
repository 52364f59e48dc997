"""`mnemo export --all` / `mnemo import`: a complete, verifiable logical backup restores every
agent, shared block, passage (with its embedding) and message, into SQLite or PostgreSQL."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_server
from tests.postgres import fresh_database


def mnemo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNEMO_")}
    (cwd / "no-config.toml").touch()
    env["MNEMO_CONFIG"] = str(cwd / "no-config.toml")
    return subprocess.run(
        [sys.executable, "-m", "mnemo", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def populate(url: str) -> dict[str, str]:
    http = httpx.Client(base_url=url, timeout=60)
    shared = http.post("/v1/blocks/", json={"label": "team", "value": "ruff and pytest"}).json()
    ids = {}
    for name in ("alpha", "beta"):
        agent = http.post(
            "/v1/agents/",
            json={"name": name, "memory_blocks": [{"label": "human", "value": f"{name} user"}]},
        ).json()
        ids[name] = agent["id"]
        http.patch(f"/v1/agents/{agent['id']}/core-memory/blocks/attach/{shared['id']}")
        http.post(
            f"/v1/agents/{agent['id']}/archival-memory/batch",
            json={
                "passages": [
                    {
                        "text": f"{name} fact {i}: the staging database listens on port 5433",
                        "tags": ["infra"],
                        "metadata": {"type": "note", "n": i},
                    }
                    for i in range(30)
                ]
            },
        ).raise_for_status()
        http.post(
            f"/v1/agents/{agent['id']}/messages/import",
            json={"messages": [{"role": "user", "content": f"hello from {name}"}]},
        ).raise_for_status()
    return ids


def snapshot(url: str, ids: dict[str, str]) -> dict[str, object]:
    http = httpx.Client(base_url=url, timeout=60)
    state: dict[str, object] = {}
    for name, agent in ids.items():
        passages = http.get(f"/v1/agents/{agent}/archival-memory", params={"limit": 1000}).json()
        blocks = http.get(f"/v1/agents/{agent}/core-memory/blocks").json()
        hits = http.get(
            f"/v1/agents/{agent}/archival-memory/search",
            params={"query": "which port does staging postgres use", "mode": "vector", "top_k": 3},
        ).json()["results"]
        state[name] = {
            "passages": sorted(
                (p["id"], p["text"], p["created_at"], json.dumps(p["metadata"], sort_keys=True))
                for p in passages
            ),
            "blocks": sorted((b["id"], b["label"], b["value"]) for b in blocks),
            "vector_hits": [h["id"] for h in hits],
            "messages": len(http.get(f"/v1/agents/{agent}/messages").json()),
        }
    return state


@pytest.mark.slow
def test_export_all_then_import_restores_everything(tmp_path: Path, postgres_url: str) -> None:
    source = start_server(tmp_path / "source")
    try:
        ids = populate(source.url)
        before = snapshot(source.url, ids)
    finally:
        source.stop()
    backup = tmp_path / "mnemo-backup.jsonl.gz"
    exported = mnemo(
        "export",
        "--all",
        "--data-dir",
        str(tmp_path / "source"),
        "--output",
        str(backup),
        cwd=tmp_path,
    )
    assert exported.returncode == 0, exported.stderr
    # two agents, each with its own "human" block, sharing one more
    assert "exported 3 blocks, 2 agents, 60 passages, 2 messages" in exported.stderr
    verified = mnemo("import", "--verify-only", str(backup), cwd=tmp_path)
    assert verified.returncode == 0 and "60 passages" in verified.stdout

    pg = fresh_database(postgres_url)
    for target in (["--database-url", pg], ["--data-dir", str(tmp_path / "restored")]):
        restored = mnemo("import", str(backup), *target, cwd=tmp_path)
        assert restored.returncode == 0, restored.stderr
        assert "verified: every row of the backup is in the store" in restored.stdout
        again = mnemo("import", str(backup), *target, cwd=tmp_path)  # resumable: adds nothing
        assert again.returncode == 0
        assert [line.split()[2] for line in again.stdout.splitlines()[1:5]] == ["0"] * 4
        env = {"MNEMO_DATABASE_URL": pg} if target[0] == "--database-url" else {}
        server = start_server(tmp_path / "restored", env=env)
        try:
            after = snapshot(server.url, ids)
            for name, state in before.items():  # type: ignore[union-attr]
                for key, value in state.items():
                    assert after[name][key] == value, (target[0], name, key)
        finally:
            server.stop()


def test_damaged_backups_restore_nothing(tmp_path: Path) -> None:
    source = start_server(tmp_path / "source")
    try:
        populate(source.url)
    finally:
        source.stop()
    backup = tmp_path / "b.jsonl.gz"
    assert (
        mnemo(
            "export",
            "--all",
            "--data-dir",
            str(tmp_path / "source"),
            "-o",
            str(backup),
            cwd=tmp_path,
        ).returncode
        == 0
    )
    lines = gzip.decompress(backup.read_bytes()).splitlines(keepends=True)
    altered = tmp_path / "altered.jsonl.gz"
    at = next(i for i, line in enumerate(lines) if b"5433" in line)
    lines_altered = [*lines[:at], lines[at].replace(b"5433", b"5434"), *lines[at + 1 :]]
    altered.write_bytes(gzip.compress(b"".join(lines_altered)))
    truncated = tmp_path / "truncated.jsonl.gz"
    truncated.write_bytes(gzip.compress(b"".join(lines[:-10])))
    not_backup = tmp_path / "other.gz"
    not_backup.write_bytes(gzip.compress(b'{"hello": 1}\n'))
    for path, reason in (
        (altered, "checksum mismatch"),
        (truncated, "no end line"),
        (not_backup, "not a mnemo backup"),
    ):
        target = tmp_path / f"target-{path.stem}"
        result = mnemo("import", str(path), "--data-dir", str(target), cwd=tmp_path)
        assert result.returncode == 2 and reason in result.stderr, result.stderr
        assert not target.exists()  # verified before the store was even opened

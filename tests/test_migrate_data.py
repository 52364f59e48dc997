"""`mnemo migrate-data`: SQLite to PostgreSQL and back, ids and embeddings kept, resumable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mnemo.text import ANALYZER_VERSION
from tests.conftest import start_server
from tests.postgres import fresh_database


def migrate(source: str, target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mnemo", "migrate-data", "--from", source, "--to", target],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_sqlite_to_postgres_and_back(postgres_url: str, tmp_path: Path) -> None:
    sqlite_dir = tmp_path / "sqlite"
    source = start_server(sqlite_dir)
    with source.client() as http:
        shared = http.post("/v1/blocks/", json={"label": "team", "value": "ruff + pytest"}).json()
        one = http.post(
            "/v1/agents/",
            json={
                "name": "one",
                "block_ids": [shared["id"]],
                "memory_blocks": [{"label": "human", "value": "Ana"}],
            },
        ).json()
        two = http.post("/v1/agents/", json={"name": "two", "block_ids": [shared["id"]]}).json()
        http.post(
            f"/v1/agents/{one['id']}/archival-memory/batch",
            json={
                "passages": [
                    {"text": f"fact {i} about the uploader", "tags": ["t"], "metadata": {"i": i}}
                    for i in range(1200)
                ]
            },
        )
        http.post(
            f"/v1/agents/{two['id']}/messages/import",
            json={
                "messages": [
                    {"role": "user", "content": "hello"},
                    {"role": "assistant", "content": "hi"},
                ]
            },
        )
        expected = http.get(
            f"/v1/agents/{one['id']}/archival-memory/search",
            params={"query": "fact 17 uploader", "top_k": 3, "mode": "vector"},
        ).json()
    source.stop()

    pg = fresh_database(postgres_url)
    first = migrate(f"sqlite://{sqlite_dir / 'mnemo.sqlite3'}", pg)
    assert first.returncode == 0, first.stderr
    assert "verified" in first.stdout
    assert "passages       1,200      1,200      1,200" in first.stdout
    assert "building search indexes" in first.stderr  # the long step is announced
    again = migrate(f"sqlite://{sqlite_dir / 'mnemo.sqlite3'}", pg)
    assert again.returncode == 0
    assert "passages       1,200      1,200          0" in again.stdout  # resumed: nothing left
    assert "building search indexes" not in again.stderr  # a non-empty target keeps its indexes

    import psycopg

    with psycopg.connect(pg) as conn:  # the bulk load dropped and rebuilt the HNSW index
        indexes = dict(
            conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'passages'"
            ).fetchall()
        )
    assert "m='16'" in indexes["passages_minilm_hnsw"]
    with psycopg.connect(pg) as conn:  # nothing left to re-analyse when a server starts
        [(analyzer,)] = conn.execute("SELECT analyzer FROM lexical_index").fetchall()
    assert analyzer == ANALYZER_VERSION

    target = start_server(tmp_path / "pg-server", env={"MNEMO_DATABASE_URL": pg})
    try:
        with target.client() as http:
            assert {a["id"] for a in http.get(f"/v1/blocks/{shared['id']}/agents").json()} == {
                one["id"],
                two["id"],
            }
            found = http.get(
                f"/v1/agents/{one['id']}/archival-memory/search",
                params={"query": "fact 17 uploader", "top_k": 3, "mode": "vector"},
            ).json()
            assert [r["id"] for r in found["results"]] == [r["id"] for r in expected["results"]]
            keyword = http.get(
                f"/v1/agents/{one['id']}/archival-memory/search",
                params={"query": "fact 17 uploader", "top_k": 3, "mode": "lexical"},
            ).json()
            assert keyword["results"] and "17" in keyword["results"][0]["content"]
            assert [
                m["content"]
                for m in http.get(
                    f"/v1/agents/{two['id']}/messages", params={"order": "asc"}
                ).json()
            ] == ["hello", "hi"]
    finally:
        target.stop()

    back = tmp_path / "back.sqlite3"
    returned = migrate(pg, f"sqlite://{back}")
    assert returned.returncode == 0, returned.stderr
    assert "messages           2          2          2" in returned.stdout

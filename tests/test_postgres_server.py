"""The server on PostgreSQL: migrate command, readiness through a database outage, pool bounds."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psycopg

from tests.conftest import start_server
from tests.postgres import fresh_database


def test_migrate_command(postgres_url: str, tmp_path: Path) -> None:
    url = fresh_database(postgres_url)
    args = [sys.executable, "-m", "mnemo", "migrate", "--database-url", url]
    first = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "m001_initial" in first.stdout
    second = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert "up to date" in second.stdout


def test_unmigrated_database_keeps_the_server_unready(postgres_url: str, tmp_path: Path) -> None:
    """How the Helm chart starts: pods with MNEMO_MIGRATE_ON_START=false may come up before the
    migration job has run; they stay out of rotation until it has."""
    url = fresh_database(postgres_url)
    server = start_server(
        tmp_path / "data", env={"MNEMO_DATABASE_URL": url, "MNEMO_MIGRATE_ON_START": "false"}
    )
    try:
        with server.client() as http:
            assert http.get("/v1/health/").status_code == 200
            assert http.get("/v1/ready/").status_code == 503
            migrate = [sys.executable, "-m", "mnemo", "migrate", "--database-url", url]
            assert subprocess.run(migrate, capture_output=True, timeout=60).returncode == 0
            assert http.get("/v1/ready/").status_code == 200
            assert http.post("/v1/agents/", json={"name": "after-migrate"}).status_code == 200
    finally:
        server.stop()


def connections(admin_url: str, database: str) -> int:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)
        ).fetchone()[0]


def test_readiness_follows_the_database(postgres_url: str, tmp_path: Path) -> None:
    url = fresh_database(postgres_url)
    database = url.split("?")[0].rsplit("/", 1)[1]
    server = start_server(
        tmp_path / "data",
        env={"MNEMO_DATABASE_URL": url, "MNEMO_POOL_SIZE": "3", "MNEMO_POOL_TIMEOUT": "1"},
    )
    try:
        with server.client() as http:
            agent = http.post("/v1/agents/", json={"name": "pg-ready"}).json()
            for i in range(20):
                http.post(f"/v1/agents/{agent['id']}/archival-memory", json={"text": f"note {i}"})
            assert http.get("/v1/ready/").status_code == 200
            assert connections(postgres_url, database) <= 3  # never above the pool

            with psycopg.connect(postgres_url, autocommit=True) as admin:
                admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (database,),
                )
            down = http.get("/v1/ready/")
            assert down.status_code == 503 and down.headers["retry-after"] == "1"
            assert (
                http.get("/v1/health/").status_code == 200
            )  # liveness does not touch the database
            failed = http.get(f"/v1/agents/{agent['id']}")
            assert failed.status_code == 503

            with psycopg.connect(postgres_url, autocommit=True) as admin:
                admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
            deadline = time.monotonic() + 30
            while http.get("/v1/ready/").status_code != 200:
                assert time.monotonic() < deadline, "readiness did not recover"
                time.sleep(0.2)
            assert len(http.get(f"/v1/agents/{agent['id']}/archival-memory").json()) == 20
            assert connections(postgres_url, database) <= 3
    finally:
        server.stop()


def test_bad_database_url_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mnemo", "migrate", "--database-url", "mysql://x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "database_url" in result.stderr

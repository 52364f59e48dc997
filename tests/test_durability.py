"""Nothing acknowledged is lost: SIGKILL the server in the middle of a stream of writes."""

from __future__ import annotations

import signal
import threading
import time

import httpx

from tests.conftest import start_server


def test_sigkill_during_inserts_loses_no_acknowledged_write(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "data"
    running = start_server(data_dir)
    agent = httpx.post(f"{running.url}/v1/agents/", json={"name": "durable"}).json()
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(worker: int) -> None:
        with httpx.Client(base_url=running.url, timeout=10) as client:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    response = client.post(
                        f"/v1/agents/{agent['id']}/archival-memory",
                        json={"text": f"worker {worker} note {n} about durable storage"},
                    )
                except httpx.HTTPError:
                    return  # the server died mid-request: not acknowledged
                if response.status_code == 200:
                    with lock:
                        acknowledged.append(response.json()[0]["id"])

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    running.stop(signal.SIGKILL)
    stop.set()
    for thread in threads:
        thread.join()
    assert len(acknowledged) >= 40

    restarted = start_server(data_dir)
    try:
        stored: set[str] = set()
        after = None
        with restarted.client() as client:
            while True:
                params = {"limit": 500, **({"after": after} if after else {})}
                page = client.get(f"/v1/agents/{agent['id']}/archival-memory", params=params).json()
                if not page:
                    break
                stored.update(p["id"] for p in page)
                after = page[-1]["id"]
            missing = set(acknowledged) - stored
            assert not missing, f"{len(missing)} acknowledged passages lost"
            # The indexes survived too: search finds a late write.
            last = client.get(
                f"/v1/agents/{agent['id']}/archival-memory", params={"limit": 1, "ascending": False}
            ).json()[0]
            hits = client.get(
                f"/v1/agents/{agent['id']}/archival-memory/search",
                params={"query": last["text"], "top_k": 1},
            ).json()
            assert hits["results"][0]["content"] == last["text"]
    finally:
        restarted.stop()


def test_sigterm_shuts_down_cleanly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    running = start_server(tmp_path / "data")
    assert running.stop(signal.SIGTERM) == 0
    assert "store closed" in running.log()

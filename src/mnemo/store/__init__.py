"""Storage backends behind one protocol (store/base.py)."""

from __future__ import annotations

from mnemo.config import Settings
from mnemo.errors import InvalidInput
from mnemo.store.base import Store


def open_store(settings: Settings, must_exist: bool = False) -> Store:
    """The configured store. With `must_exist` (reading an existing memory: a backup, a copy's
    source), a SQLite database that is not there is an error, not a new empty one."""
    url = settings.database_url
    if not url or url.startswith("sqlite"):
        from mnemo.store.sqlite import SQLiteStore

        path = settings.sqlite_path
        if url.startswith("sqlite://"):
            path = type(path)(url.removeprefix("sqlite://"))  # sqlite:///abs/path
        if must_exist and not path.is_file():
            where = url or f"--data-dir {settings.data_dir}"
            raise InvalidInput(f"no mnemo database at {path} ({where}); check the path")
        return SQLiteStore(path)
    if url.startswith(("postgresql://", "postgres://")):
        from mnemo.store.postgres import PostgresStore

        return PostgresStore(
            url,
            pool_size=settings.pool_size,
            pool_timeout=settings.pool_timeout,
            statement_timeout_ms=settings.statement_timeout_ms,
            migrate=settings.migrate_on_start,
            index_build_memory=settings.index_build_memory,
            ef_search=settings.hnsw_ef_search,
        )
    raise InvalidInput(
        "database_url must be empty (SQLite in data_dir), sqlite:///path or postgresql://…"
    )

"""Storage backends behind one protocol (store/base.py)."""

from __future__ import annotations

from mnemo.config import Settings
from mnemo.store.base import Store


def open_store(settings: Settings) -> Store:
    url = settings.database_url
    if not url or url.startswith("sqlite"):
        from mnemo.store.sqlite import SQLiteStore

        path = settings.sqlite_path
        if url.startswith("sqlite:///"):
            path = type(path)(url.removeprefix("sqlite:///"))
        return SQLiteStore(path)
    raise ValueError(
        f"database_url {url!r} is not supported yet; leave it empty for the embedded SQLite store"
    )

"""Every backend runs the same contract suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mnemo.store.base import Store

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[Store]:  # type: ignore[no-untyped-def]
    opened: Store
    if request.param == "sqlite":
        from mnemo.store.sqlite import SQLiteStore

        opened = SQLiteStore(tmp_path / "contract.sqlite3")
    else:
        from mnemo.store.postgres import PostgresStore
        from tests.postgres import fresh_database

        opened = PostgresStore(fresh_database(request.getfixturevalue("postgres_url")))
    yield opened
    opened.close()

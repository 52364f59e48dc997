"""Every backend runs the same contract suite. PostgreSQL joins the list in its own issue."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mnemo.store.base import Store

BACKENDS = ["sqlite"]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[Store]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        from mnemo.store.sqlite import SQLiteStore

        opened = SQLiteStore(tmp_path / "contract.sqlite3")
    yield opened
    opened.close()

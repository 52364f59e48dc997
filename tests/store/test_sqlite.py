"""SQLite-only behaviour: migrations on reopen."""

from __future__ import annotations

from tests.store.test_contract import agent


def test_migrations_are_idempotent(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from mnemo.store.sqlite import SQLiteStore

    path = tmp_path / "m.sqlite3"
    first = SQLiteStore(path)
    a = agent()
    first.create_agent(a, [], [])
    first.close()
    reopened = SQLiteStore(path)
    assert reopened.get_agent(a.id) is not None
    reopened.close()

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


def test_a_failed_read_leaves_no_old_snapshot_behind(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A read that fails part way through a cursor must not keep that cursor's snapshot: the
    thread's later reads see newer commits (and WAL checkpoints are not held back)."""
    import sqlite3

    import numpy as np
    import pytest

    from mnemo.models import Passage, new_id
    from mnemo.store.base import PassageFilter
    from mnemo.store.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "m.sqlite3")
    owner = agent()
    store.create_agent(owner, [], [])
    passages = [
        Passage(id=new_id("passage"), agent_id=owner.id, text=f"p{i}", embedding_handle="h")
        for i in range(3)
    ]
    store.insert_passages(passages, np.ones((3, 4), dtype=np.float32))
    with sqlite3.connect(tmp_path / "m.sqlite3") as db:  # a damaged row, as an old bug left it
        db.execute("UPDATE passages SET embedding = x'00' WHERE id = ?", (passages[1].id,))
    # The server keeps a failure's traceback (and so its frames) alive while it logs and answers.
    with pytest.raises(ValueError) as failure:
        store.vector_search(np.ones(4, dtype=np.float32), "h", PassageFilter([owner.id]), 10)
    later = agent()
    store.create_agent(later, [], [])
    assert store.get_agent(later.id) is not None
    assert failure.value is not None
    store.close()

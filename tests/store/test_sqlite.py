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


def test_filtered_vector_search_is_exact_for_common_and_rare_filters(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A filtered vector search walks the best passages first (store/sqlite.py: WALK_MAX) or,
    for a rare filter, reads the passing ones: either way the exact top k among those that
    pass, as a brute-force ranking finds them."""
    import numpy as np

    from mnemo.config import DEFAULT_EMBEDDING
    from mnemo.embed.catalog import LOCAL_MODELS
    from mnemo.models import Passage, new_id, utcnow
    from mnemo.store.base import PassageFilter
    from mnemo.store.sqlite import WALK_MAX, SQLiteStore

    dim = LOCAL_MODELS[DEFAULT_EMBEDDING].dim

    store = SQLiteStore(tmp_path / "mnemo.sqlite3")
    store.migrate()
    owner = agent()
    store.create_agent(owner, [], [])
    count = WALK_MAX + 2000
    rng = np.random.default_rng(4)
    vectors = rng.standard_normal((count, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    kinds = ["common" if i % 3 == 0 else "rare" if i % 1000 == 7 else "other" for i in range(count)]
    rows = [
        Passage(
            id=new_id("passage"),
            agent_id=owner.id,
            text=f"passage {i}",
            metadata={"type": kind},
            embedding_handle=DEFAULT_EMBEDDING,
            created_at=utcnow(),
            updated_at=utcnow(),
        )
        for i, kind in enumerate(kinds)
    ]
    store.insert_passages(rows, vectors)
    for trial in range(3):
        query = rng.standard_normal(dim).astype(np.float32)
        query /= np.linalg.norm(query)
        scores = vectors @ query
        for kind in ("common", "rare", "absent"):
            found = store.vector_search(
                query,
                DEFAULT_EMBEDDING,
                PassageFilter(agent_ids=[owner.id], metadata={"type": kind}),
                20,
            )
            passing = [i for i, k in enumerate(kinds) if k == kind]
            best = sorted(passing, key=lambda i: -scores[i])[:20]
            assert [pid for pid, _ in found] == [rows[i].id for i in best], (trial, kind)
    store.close()


def test_a_type_filter_reads_the_type_index(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Listing or searching one type (session summaries at every session start) must not read
    every passage's metadata: the filter is written as migration m005's index has it."""
    from mnemo.store.base import PassageFilter
    from mnemo.store.filters import passage_where
    from mnemo.store.sqlite import SQL, SQLiteStore

    store = SQLiteStore(tmp_path / "mnemo.sqlite3")
    where, params = passage_where(
        PassageFilter(agent_ids=["agent-x"], metadata={"type": "session_summary"}), SQL
    )
    plan = (
        store._reader()
        .execute(
            "EXPLAIN QUERY PLAN SELECT p.seq FROM passages p WHERE " + " AND ".join(where), params
        )
        .fetchall()
    )
    assert "passages_type_agent" in str([tuple(row) for row in plan])
    store.close()

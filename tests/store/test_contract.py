"""The storage contract: what the service relies on from any backend."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from mnemo.errors import Conflict, NotFound
from mnemo.models import Agent, Block, Message, Passage, new_id
from mnemo.store.base import AgentFilter, BlockFilter, MessageFilter, Page, PassageFilter, Store

HANDLE = "test/handle"


def agent(name: str = "a", **kw: object) -> Agent:
    return Agent(id=new_id("agent"), name=name, embedding=HANDLE, **kw)  # type: ignore[arg-type]


def block(label: str = "human", value: str = "", **kw: object) -> Block:
    return Block(id=new_id("block"), label=label, value=value, limit=1000, **kw)  # type: ignore[arg-type]


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def passage(agent_id: str, text: str, when: datetime | None = None, **kw: object) -> Passage:
    created = when or datetime.now(UTC)
    return Passage(
        id=new_id("passage"),
        agent_id=agent_id,
        text=text,
        embedding_handle=HANDLE,
        created_at=created,
        updated_at=created,
        **kw,  # type: ignore[arg-type]
    )


def test_agent_round_trip_and_filters(store: Store) -> None:
    a = agent("alpha", tags=["x", "y"], metadata={"k": 1})
    store.create_agent(a, [], [])
    got = store.get_agent(a.id)
    assert got is not None
    assert (got.name, got.tags, got.metadata) == ("alpha", ["x", "y"], {"k": 1})
    store.create_agent(agent("beta", tags=["y"]), [], [])
    assert [x.name for x in store.list_agents(AgentFilter(name="alpha"), Page())] == ["alpha"]
    assert [x.name for x in store.list_agents(AgentFilter(query_text="ET"), Page())] == ["beta"]
    both = store.list_agents(AgentFilter(tags=["x", "y"], match_all_tags=True), Page())
    assert [x.name for x in both] == ["alpha"]
    assert store.get_agent(new_id("agent")) is None


def test_cursor_pagination_both_directions(store: Store) -> None:
    ids = []
    base = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(5):
        a = agent(f"p{i}", created_at=base + timedelta(seconds=i))
        store.create_agent(a, [], [])
        ids.append(a.id)

    def asc(**kw: object) -> list[str]:
        return [x.id for x in store.list_agents(AgentFilter(), Page(ascending=True, **kw))]  # type: ignore[arg-type]

    def desc(**kw: object) -> list[str]:
        return [x.id for x in store.list_agents(AgentFilter(), Page(ascending=False, **kw))]  # type: ignore[arg-type]

    assert asc() == ids
    assert desc() == ids[::-1]
    assert asc(limit=2, after=ids[1]) == ids[2:4]
    assert desc(limit=2, after=ids[3]) == [ids[2], ids[1]]
    assert asc(limit=2, before=ids[3]) == [ids[1], ids[2]]
    assert desc(limit=2, before=ids[1]) == [ids[3], ids[2]]
    assert asc(after=ids[-1]) == []
    with pytest.raises(NotFound):
        asc(after=new_id("agent"))


def test_shared_blocks_and_label_uniqueness(store: Store) -> None:
    shared = block("team", "rules")
    store.create_block(shared)
    a, b = agent("a"), agent("b")
    store.create_agent(a, [block("human", "A", owner_agent_id=a.id)], [shared.id])
    store.create_agent(b, [], [shared.id])
    assert {x.label for x in store.agent_blocks(a.id)} == {"human", "team"}
    assert {x.id for x in store.block_agents(shared.id, Page())} == {a.id, b.id}
    clash = block("team", "other")
    store.create_block(clash)
    with pytest.raises(Conflict):
        store.attach_block(a.id, clash.id)
    store.attach_block(a.id, shared.id)  # idempotent
    assert store.detach_block(b.id, shared.id) is True
    assert store.detach_block(b.id, shared.id) is False
    assert [x.label for x in store.list_blocks(BlockFilter(label="team"), Page())] == [
        "team",
        "team",
    ]


def test_delete_agent_keeps_shared_blocks_drops_owned_data(store: Store) -> None:
    shared = block("team", "rules")
    store.create_block(shared)
    a = agent("a")
    owned = block("human", "mine", owner_agent_id=a.id)
    store.create_agent(a, [owned], [shared.id])
    store.insert_passages([passage(a.id, "p")], np.stack([unit(1, 0)]))
    assert store.delete_agent(a.id) is True
    assert store.get_block(shared.id) is not None
    assert store.get_block(owned.id) is None
    assert store.count_passages(a.id) == 0
    assert store.delete_agent(a.id) is False


def test_modify_block_is_atomic_under_threads(store: Store) -> None:
    b = block("counter", "")
    store.create_block(b)

    def bump() -> None:
        for _ in range(25):
            store.modify_block(
                b.id, lambda cur: Block(**{**cur.__dict__, "value": cur.value + "x"})
            )

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = store.get_block(b.id)
    assert final is not None and len(final.value) == 100
    assert store.modify_block(new_id("block"), lambda cur: cur) is None


def test_passage_filters(store: Store) -> None:
    a = agent()
    store.create_agent(a, [], [])
    base = datetime(2024, 6, 1, tzinfo=UTC)
    rows = [
        passage(a.id, "first red", base, tags=["red"], metadata={"type": "note", "n": 1}),
        passage(
            a.id,
            "second blue",
            base + timedelta(days=1),
            tags=["blue"],
            metadata={"type": "fail", "ok": False},
        ),
        passage(
            a.id,
            "third red blue",
            base + timedelta(days=2),
            tags=["red", "blue"],
            metadata={"type": "fail"},
        ),
    ]
    store.insert_passages(rows, np.stack([unit(1, 0), unit(0, 1), unit(1, 1)]))

    def texts(**kw: object) -> list[str]:
        return [
            p.text
            for p in store.list_passages(
                PassageFilter(agent_ids=[a.id], **kw), Page(ascending=True)
            )
        ]  # type: ignore[arg-type]

    assert texts() == ["first red", "second blue", "third red blue"]
    assert texts(tags=["red"]) == ["first red", "third red blue"]
    assert texts(tags=["red", "blue"], match_all_tags=True) == ["third red blue"]
    assert texts(start=base + timedelta(hours=1)) == ["second blue", "third red blue"]
    assert texts(end=base + timedelta(days=1)) == ["first red", "second blue"]
    assert texts(metadata={"type": "fail"}) == ["second blue", "third red blue"]
    assert texts(metadata={"n": 1}) == ["first red"]
    assert texts(metadata={"ok": False}) == ["second blue"]
    assert texts(contains="BLUE") == ["second blue", "third red blue"]
    assert texts(metadata={"n": (1, "1")}) == ["first red"]  # a tuple matches any of its items
    assert texts(metadata={"type": ("note", "fail")}) == [
        "first red",
        "second blue",
        "third red blue",
    ]


def test_lexical_and_vector_search(store: Store) -> None:
    a, other = agent(), agent("other")
    store.create_agent(a, [], [])
    store.create_agent(other, [], [])
    rows = [
        passage(a.id, "the migration timed out on postgres", tags=["db"]),
        passage(a.id, "frontend build uses vite"),
        passage(other.id, "postgres migration in another project"),
    ]
    store.insert_passages(rows, np.stack([unit(1, 0, 0), unit(0, 1, 0), unit(1, 0, 0)]))
    mine = PassageFilter(agent_ids=[a.id])
    lexical = store.lexical_search("postgres migration", mine, 10)
    assert [pid for pid, _ in lexical] == [rows[0].id]
    assert lexical[0][1] > 0
    assert store.lexical_search('"unbalanced AND (quote', mine, 10) == []  # FTS syntax is inert
    vector = store.vector_search(unit(1, 0.1, 0), HANDLE, mine, 10)
    assert [pid for pid, _ in vector] == [rows[0].id, rows[1].id]
    assert vector[0][1] > vector[1][1]
    assert store.vector_search(unit(1, 0, 0), "other/handle", mine, 10) == []
    tagged = store.vector_search(
        unit(0, 1, 0), HANDLE, PassageFilter(agent_ids=[a.id], tags=["db"]), 10
    )
    assert [pid for pid, _ in tagged] == [rows[0].id]
    everywhere = store.vector_search(unit(1, 0, 0), HANDLE, PassageFilter(), 10)
    assert {pid for pid, _ in everywhere} == {r.id for r in rows}


def test_vector_index_follows_inserts_and_deletes(store: Store) -> None:
    a = agent()
    store.create_agent(a, [], [])
    first = passage(a.id, "one")
    store.insert_passages([first], np.stack([unit(1, 0)]))
    mine = PassageFilter(agent_ids=[a.id])
    assert [pid for pid, _ in store.vector_search(unit(1, 0), HANDLE, mine, 5)] == [first.id]
    second = passage(a.id, "two")
    store.insert_passages([second], np.stack([unit(0, 1)]))
    assert store.vector_search(unit(0, 1), HANDLE, mine, 1)[0][0] == second.id
    assert store.delete_passage(second.id) is True
    assert [pid for pid, _ in store.vector_search(unit(0, 1), HANDLE, mine, 5)] == [first.id]
    assert store.delete_passage(second.id) is False


def test_update_passage_moves_text_metadata_and_vector(store: Store) -> None:
    a = agent()
    store.create_agent(a, [], [])
    first, second = passage(a.id, "apples are red"), passage(a.id, "the sky is blue")
    store.insert_passages([first, second], np.stack([unit(1, 0), unit(0, 1)]))
    mine = PassageFilter(agent_ids=[a.id])
    assert store.vector_search(unit(1, 0), HANDLE, mine, 1)[0][0] == first.id
    first.text = "bananas are yellow"
    first.metadata = {"type": "fruit", "status": "resolved"}
    first.tags = ["fruit"]
    assert store.update_passage(first, unit(0.2, 1)) is True
    stored = store.get_passages([first.id])[0]
    assert (stored.text, stored.metadata, stored.tags) == (first.text, first.metadata, ["fruit"])
    assert [pid for pid, _ in store.lexical_search("bananas", mine, 5)] == [first.id]
    assert store.lexical_search("apples", mine, 5) == []
    nearest = store.vector_search(unit(0.2, 1), HANDLE, mine, 2)
    assert nearest[0][0] == first.id and nearest[0][1] > 0.99
    metadata_only = PassageFilter(agent_ids=[a.id], metadata={"status": "resolved"})
    assert [p.id for p in store.list_passages(metadata_only, Page())] == [first.id]
    second.metadata = {"note": "kept vector"}
    assert store.update_passage(second, None) is True
    assert store.vector_search(unit(0, 1), HANDLE, mine, 1)[0][0] == second.id
    ghost = passage(a.id, "never stored")
    assert store.update_passage(ghost, None) is False


def test_messages(store: Store) -> None:
    a = agent()
    store.create_agent(a, [], [])
    base = datetime(2025, 3, 1, tzinfo=UTC)
    msgs = [
        Message(
            id=new_id("message"),
            agent_id=a.id,
            message_type="user_message",
            content="deploy the api",
            conversation_id="s1",
            created_at=base,
        ),
        Message(
            id=new_id("message"),
            agent_id=a.id,
            message_type="assistant_message",
            content="deployed",
            conversation_id="s1",
            created_at=base + timedelta(minutes=1),
        ),
        Message(
            id=new_id("message"),
            agent_id=a.id,
            message_type="user_message",
            content="rollback the api",
            conversation_id="s2",
            created_at=base + timedelta(days=1),
        ),
    ]
    store.insert_messages(msgs)
    listed = store.list_messages(MessageFilter(agent_ids=[a.id]), Page(ascending=True))
    assert [m.content for m in listed] == ["deploy the api", "deployed", "rollback the api"]
    s2 = store.list_messages(MessageFilter(agent_ids=[a.id], conversation_id="s2"), Page())
    assert [m.content for m in s2] == ["rollback the api"]
    hits = store.search_messages("api rollback", MessageFilter(agent_ids=[a.id]), 5)
    assert hits[0][0].content == "rollback the api"
    dated = store.search_messages(
        "api", MessageFilter(agent_ids=[a.id], end=base + timedelta(hours=1)), 5
    )
    assert [m.content for m, _ in dated] == ["deploy the api"]
    assert store.count_messages(a.id) == 3
    assert store.delete_messages(a.id, "s1") == 2
    assert store.count_messages(a.id) == 1
    assert store.search_messages("deployed", MessageFilter(agent_ids=[a.id]), 5) == []
    assert store.delete_messages(a.id, "s1") == 0


def test_idempotency_keys(store: Store) -> None:
    assert store.claim_idempotency_key("k", "h1") is None
    pending = store.claim_idempotency_key("k", "h1")
    assert pending is not None and not pending.complete
    store.complete_idempotency_key("k", 200, b"[1]", "application/json")
    done = store.claim_idempotency_key("k", "h1")
    assert done is not None and done.complete and done.body == b"[1]" and done.status_code == 200
    assert store.claim_idempotency_key("k2", "h") is None
    store.release_idempotency_key("k2")
    assert store.claim_idempotency_key("k2", "h") is None


def test_copy_support_vectors_counts_and_idempotent_messages(store: Store) -> None:
    a = agent()
    store.create_agent(a, [block("human", "x", owner_agent_id=a.id)], [])
    rows = [passage(a.id, "one"), passage(a.id, "two")]
    store.insert_passages(rows, np.stack([unit(1, 0, 0), unit(0, 1, 0)]))
    vectors = store.passage_vectors([r.id for r in rows] + [new_id("passage")])
    assert set(vectors) == {r.id for r in rows}
    assert np.allclose(vectors[rows[1].id], unit(0, 1, 0), atol=1e-6)
    message = Message(
        id=new_id("message"), agent_id=a.id, message_type="user_message", content="hi"
    )
    store.insert_messages([message])
    store.insert_messages([message])  # the same id again is skipped
    assert store.counts() == {"agents": 1, "blocks": 1, "passages": 2, "messages": 1}


def test_keyword_scores_follow_inserts_and_deletes(store: Store) -> None:
    a = agent()
    store.create_agent(a, [], [])
    mine = PassageFilter(agent_ids=[a.id])
    first = passage(a.id, "canary rollout")
    store.insert_passages([first], np.stack([unit(1, 0)]))
    [(_, alone)] = store.lexical_search("canary", mine, 5)
    others = [passage(a.id, f"unrelated note {i}") for i in range(5)]
    store.insert_passages(others, np.stack([unit(0, 1)] * 5))
    [(_, among_more)] = store.lexical_search("canary", mine, 5)
    assert among_more > alone  # a rarer term in a larger corpus weighs more (IDF)
    for other in others:
        store.delete_passage(other.id)
    [(_, again)] = store.lexical_search("canary", mine, 5)
    assert again == pytest.approx(alone)

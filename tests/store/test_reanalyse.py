"""Keyword re-analysis after an analyzer change (MemoryService.reindex_keywords, which a server
runs at start): agent by agent, each passage indexed with its own agent's earlier passages as
context, each recall message with its own conversation's; a database that holds no passages
and no messages starts current; messages stored before their keyword index existed are found
after the upgrade. Both backends."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest

from mnemo.config import Settings
from mnemo.embed import EmbedderRegistry
from mnemo.models import Agent, Message, Passage, new_id, utcnow
from mnemo.service import MemoryService
from mnemo.store import postgres_migrations, sqlite_migrations
from mnemo.store.base import MessageFilter, PassageFilter, Store
from mnemo.store.postgres import PostgresStore
from mnemo.store.sqlite import SQLiteStore
from mnemo.text import ANALYZER_VERSION
from tests.postgres import fresh_database


def _service(store: Store, tmp_path: Path) -> MemoryService:
    settings = Settings.load(data_dir=tmp_path)
    return MemoryService(store, EmbedderRegistry(settings), settings)


def _write(store: Store, rows: list[tuple[Agent, str]]) -> list[Passage]:
    """Passages written straight into the store, one minute apart, with no context."""
    start = utcnow() - timedelta(minutes=len(rows))
    passages = [
        Passage(
            id=new_id("passage"),
            agent_id=agent.id,
            text=text,
            embedding_handle="x/y",
            created_at=start + timedelta(minutes=i),
        )
        for i, (agent, text) in enumerate(rows)
    ]
    for passage in passages:
        store.insert_passages([passage], np.ones((1, 8), dtype=np.float32))
    return passages


def _agent(store: Store, name: str) -> Agent:
    agent = Agent(id=new_id("agent"), name=name, embedding="x/y")
    store.create_agent(agent, [], [])
    return agent


def _found(store: Store, query: str, agent: Agent) -> set[str]:
    return {pid for pid, _ in store.lexical_search(query, PassageFilter([agent.id]), 10)}


def test_a_database_without_passages_is_current(store: Store, tmp_path: Path) -> None:
    assert store.analyzer_version() == ANALYZER_VERSION
    ops = _agent(store, "ops")
    _write(store, [(ops, "the deploy to staging failed")])
    assert store.migrate() == []
    assert store.analyzer_version() == ANALYZER_VERSION  # passages now: left as it is
    assert _service(store, tmp_path).keywords_current()  # a server start re-analyses nothing


def test_reanalysis_gives_each_passage_its_own_agents_context(store: Store, tmp_path: Path) -> None:
    ops, lunch = _agent(store, "ops"), _agent(store, "lunch")
    deploy, pizza, timeout, salad = _write(
        store,
        [
            (ops, "the deploy to staging failed"),
            (lunch, "ordered pizza for the team"),
            (ops, "raised the timeout to fix it"),
            (lunch, "and a salad"),
        ],
    )
    assert _found(store, "staging", ops) == {deploy.id}  # written without context
    store.reindex_keywords([], "an older analyzer")

    done: list[int] = []
    assert _service(store, tmp_path).reindex_keywords(done.append) == 4
    assert done[-1] == 4
    assert store.analyzer_version() == ANALYZER_VERSION
    assert _found(store, "staging", ops) == {deploy.id, timeout.id}
    assert _found(store, "pizza", lunch) == {pizza.id, salad.id}
    assert _found(store, "pizza", ops) == set()
    assert _found(store, "staging", lunch) == set()


def _messages(agent: Agent, rows: list[tuple[str, str]]) -> list[Message]:
    """(conversation, text) as messages one minute apart, with no context."""
    start = utcnow() - timedelta(minutes=len(rows))
    return [
        Message(
            id=new_id("message"),
            agent_id=agent.id,
            message_type="user_message",
            content=text,
            conversation_id=conversation,
            created_at=start + timedelta(minutes=i),
        )
        for i, (conversation, text) in enumerate(rows)
    ]


def _found_messages(store: Store, query: str, agent: Agent) -> list[str]:
    return [m.content for m, _ in store.search_messages(query, MessageFilter([agent.id]), 10)]


CONVERSATIONS = [
    ("s1", "why did the staging deploy fail"),
    ("s2", "ordered pizza for the team"),
    ("s1", "the migration lock timed out"),
]


def test_reanalysis_gives_each_message_its_conversations_context(
    store: Store, tmp_path: Path
) -> None:
    ops = _agent(store, "ops")
    store.insert_messages(_messages(ops, CONVERSATIONS))  # straight in: no context
    assert _found_messages(store, "staging deploy", ops) == ["why did the staging deploy fail"]
    store.reindex_keywords([], "an older analyzer")

    assert _service(store, tmp_path).reindex_keywords() == 3
    assert store.analyzer_version() == ANALYZER_VERSION
    assert _found_messages(store, "staging deploy", ops) == [
        "why did the staging deploy fail",
        "the migration lock timed out",  # by the question before it in its conversation
    ]
    assert _found_messages(store, "pizza", ops) == ["ordered pizza for the team"]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_messages_stored_before_the_upgrade_are_found_after_it(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """A database made by the previous version (every migration but the messages' keyword
    index), holding messages: the upgrade asks for a re-analysis, which indexes them."""
    migrations = sqlite_migrations if backend == "sqlite" else postgres_migrations
    newest = {"sqlite": "m006_message_terms", "postgres": "m013_message_lexemes"}[backend]
    assert migrations.MIGRATIONS[-1][0] == newest
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:-1])
    if backend == "sqlite":
        path = tmp_path / "old.sqlite3"
        old: Store = SQLiteStore(path)
    else:
        url = fresh_database(request.getfixturevalue("postgres_url"))
        old = PostgresStore(url)
    ops = _agent(old, "ops")
    old.close()
    rows = [
        (m.id, m.agent_id, m.message_type, m.content, m.conversation_id, m.created_at.isoformat())
        for m in _messages(ops, CONVERSATIONS)
    ]
    insert = (
        "INSERT INTO messages (id, agent_id, message_type, content, conversation_id, created_at)"
        " VALUES ({0}, {0}, {0}, {0}, {0}, {0})"
    )
    if backend == "sqlite":
        with sqlite3.connect(path) as conn:
            conn.executemany(insert.format("?"), rows)
    else:
        with psycopg.connect(url) as conn:
            conn.cursor().executemany(insert.format("%s"), rows)
    monkeypatch.undo()

    store: Store = SQLiteStore(path) if backend == "sqlite" else PostgresStore(url)
    try:
        service = _service(store, tmp_path)
        assert not service.keywords_current()  # a server start re-analyses
        assert service.reindex_keywords() == 3
        assert _found_messages(store, "staging deploy", ops) == [
            "why did the staging deploy fail",
            "the migration lock timed out",
        ]
        assert service.keywords_current()
    finally:
        store.close()

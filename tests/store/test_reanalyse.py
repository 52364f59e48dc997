"""Keyword re-analysis after an analyzer change (MemoryService.reindex_keywords, which a server
runs at start): agent by agent, each passage indexed with its own agent's earlier passages as
context; a database that holds no passages starts current. Both backends."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np

from mnemo.config import Settings
from mnemo.embed import EmbedderRegistry
from mnemo.models import Agent, Passage, new_id, utcnow
from mnemo.service import MemoryService
from mnemo.store.base import PassageFilter, Store
from mnemo.text import ANALYZER_VERSION


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

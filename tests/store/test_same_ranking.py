"""Both backends rank alike: the same passages, inserted through the service in the same order,
come back as the same ids in the same order with the same scores, in every search mode; and so
do recall messages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mnemo.config import Settings
from mnemo.embed import EmbedderRegistry
from mnemo.models import NewMessage, NewPassage
from mnemo.service import SEARCH_MODES, MemoryService
from mnemo.store.base import MessageFilter, Page, PassageFilter
from mnemo.store.postgres import PostgresStore
from mnemo.store.sqlite import SQLiteStore
from tests.postgres import fresh_database

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
TEXTS = [
    "Caroline: I went to a LGBTQ support group yesterday and it was so powerful.",
    "Melanie: Wow, that's great! What happened at the group?",
    "Caroline: People shared their transgender stories; I felt accepted.",
    "CI fails when the migration lock times out; rerun with LOCK_TIMEOUT=60",
    "Fixed test_parse_config in src/mnemo/config.py: getUserName returned None",
    "The staging database is on port 5433 (postgres 16)",
    "Melanie: I painted a sunrise over the lake last week.",
    "Deploy the canary release before the helm chart rollout",
    "helm helm helm pod rollout quota",
    "Caroline: my counseling certification course starts in May",
]
QUERIES = [
    "When did Caroline go to the LGBTQ support group?",
    "why does CI fail on the migration lock",
    "getUserName config",
    "which port is staging postgres on",
    "helm rollout",
    "painting",
    "what career is Caroline pursuing",
]


def _service(store: object, tmp_path: Path) -> MemoryService:
    settings = Settings.load(data_dir=tmp_path)
    return MemoryService(store, EmbedderRegistry(settings), settings)  # type: ignore[arg-type]


def _load(service: MemoryService) -> str:
    agent = service.create_agent(name="same")
    items = [
        NewPassage(text=text, created_at=START + timedelta(minutes=i // 3 * 90 + i))
        for i, text in enumerate(TEXTS)
    ]
    service.add_passages(agent.id, items[:4])
    service.add_passages(agent.id, items[4:])
    return agent.id


@pytest.fixture
def services(tmp_path: Path, postgres_url: str) -> Iterator[tuple[MemoryService, MemoryService]]:
    """A service on SQLite and one on PostgreSQL, each with an empty store."""
    sqlite = _service(SQLiteStore(tmp_path / "same.sqlite3"), tmp_path)
    postgres = _service(PostgresStore(fresh_database(postgres_url)), tmp_path)
    yield sqlite, postgres
    sqlite.store.close()
    postgres.store.close()


def test_sqlite_and_postgres_rank_the_same(
    services: tuple[MemoryService, MemoryService],
) -> None:
    sqlite, postgres = services
    ids = {}
    for name, service in (("sqlite", sqlite), ("postgres", postgres)):
        agent_id = _load(service)
        ordered = service.list_passages(PassageFilter(agent_ids=[agent_id]), _all())
        ids[name] = (agent_id, {p.id: p.text for p in ordered})
    for query in QUERIES:
        for mode in SEARCH_MODES:
            ranked = {}
            for name, service in (("sqlite", sqlite), ("postgres", postgres)):
                agent_id, texts = ids[name]
                hits = service.search_passages(query, PassageFilter(agent_ids=[agent_id]), 5, mode)
                ranked[name] = [(texts[h.passage.id], h.score) for h in hits]
            assert ranked["sqlite"], (query, mode)
            assert [t for t, _ in ranked["sqlite"]] == [t for t, _ in ranked["postgres"]], (
                query,
                mode,
            )
            assert [s for _, s in ranked["sqlite"]] == pytest.approx(
                [s for _, s in ranked["postgres"]], rel=1e-5
            )


def test_a_passage_is_found_by_the_words_of_the_one_before_it(tmp_path: Path) -> None:
    service = _service(SQLiteStore(tmp_path / "context.sqlite3"), tmp_path)
    agent_id = _load(service)
    mine = PassageFilter(agent_ids=[agent_id])
    [first, *_] = service.search_passages("LGBTQ support group", mine, 3, "lexical")
    assert first.passage.text.startswith("Caroline: I went")
    found = [
        h.passage.text for h in service.search_passages("LGBTQ support group", mine, 3, "lexical")
    ]
    assert any(text.startswith("Melanie: Wow") for text in found)  # the reply, by its context
    # A passage created more than an hour after the one before it has no context.
    late = [h.passage for h in service.search_passages("painted sunrise lake", mine, 5, "lexical")]
    assert late[0].text.startswith("Melanie: I painted")
    stored = {p.text[:10]: p.context for p in service.list_passages(mine, _all())}
    assert stored["Melanie: W"][:3] == ["carolin", "went", "lgbtq"]
    assert stored["CI fails w"] == []  # 90 minutes after the turn before it
    service.store.close()


def _load_messages(service: MemoryService) -> str:
    """TEXTS as two conversations' messages, in two imports."""
    agent = service.create_agent(name="same")
    items = [
        NewMessage(
            message_type="user_message" if i % 2 == 0 else "assistant_message",
            content=text,
            conversation_id="s1" if i < 6 else "s2",
            created_at=START + timedelta(minutes=i),
        )
        for i, text in enumerate(TEXTS)
    ]
    service.add_messages(agent.id, items[:5])
    service.add_messages(agent.id, items[5:])
    return agent.id


def test_sqlite_and_postgres_rank_messages_the_same(
    services: tuple[MemoryService, MemoryService],
) -> None:
    sqlite, postgres = services
    agents = {"sqlite": _load_messages(sqlite), "postgres": _load_messages(postgres)}
    filters = [
        lambda a: MessageFilter(agent_ids=[a]),
        lambda a: MessageFilter(agent_ids=[a], conversation_id="s2"),
        lambda a: MessageFilter(agent_ids=[a], message_types=["user_message"]),
    ]
    for query in QUERIES:
        for narrowed in filters:
            ranked = {
                name: [
                    (m.content, score)
                    for m, score in service.search_messages(query, narrowed(agents[name]), 5)
                ]
                for name, service in (("sqlite", sqlite), ("postgres", postgres))
            }
            assert [t for t, _ in ranked["sqlite"]] == [t for t, _ in ranked["postgres"]]
            assert [s for _, s in ranked["sqlite"]] == pytest.approx(
                [s for _, s in ranked["postgres"]], rel=1e-5
            )
    everything = sqlite.search_messages("LGBTQ support group", filters[0](agents["sqlite"]), 5)
    # The reply is found by the words of the message before it in its conversation.
    assert [m.content[:12] for m, _ in everything][:2] == ["Caroline: I ", "Melanie: Wow"]
    in_s2 = sqlite.search_messages("helm rollout", filters[1](agents["sqlite"]), 5)
    assert in_s2 and all(m.conversation_id == "s2" for m, _ in in_s2)
    # Words the databases' own tokenizers would fold or split are found whole on both.
    for service, agent_id in ((sqlite, agents["sqlite"]), (postgres, agents["postgres"])):
        service.add_messages(
            agent_id,
            [NewMessage(message_type="user_message", content="ο λόγος, ſtraße, __init__")],
        )
        for word in ("λόγος", "ſtraße", "__init__"):
            hits = service.search_messages(word, MessageFilter(agent_ids=[agent_id]), 5)
            assert [m.content for m, _ in hits] == ["ο λόγος, ſtraße, __init__"], word


def _all() -> Page:
    return Page(limit=100, ascending=True)

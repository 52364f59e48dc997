"""Moving an agent to another embedding model: `mnemo reindex --embeddings` (service.reembed)
re-embeds its passages in batches, resumes after an interruption, and until it is done a
vector search of the agent refuses (409) rather than silently leave passages out. Both
backends; the other model is an OpenAI-compatible endpoint faked over local HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mnemo.config import DEFAULT_EMBEDDING, Settings
from mnemo.embed import EmbedderRegistry
from mnemo.embed.catalog import MINILM, MPNET
from mnemo.errors import Conflict
from mnemo.models import NewPassage
from mnemo.service import MemoryService
from mnemo.store.base import Page, PassageFilter, Store
from tests.test_embed import fake_endpoint, fake_vector  # noqa: F401 - the fixture

REMOTE = "openai/text-embedding-3-small"
TEXTS = [f"note {i}: the staging database moved to port {5400 + i}" for i in range(7)]


def _cosine(a: str, b: str) -> float:
    x, y = np.array(fake_vector(a)), np.array(fake_vector(b))
    return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))


class Interrupted(Exception):
    pass


@pytest.fixture
def service(store: Store, tmp_path: Path, fake_endpoint: str) -> Iterator[MemoryService]:  # noqa: F811
    settings = Settings.load(
        data_dir=tmp_path, openai_base_url=fake_endpoint, openai_api_key="sk-test"
    )
    yield MemoryService(store, EmbedderRegistry(settings), settings)


def _handles(service: MemoryService, agent_id: str) -> list[str]:
    page = service.list_passages(PassageFilter([agent_id]), Page(limit=100))
    return sorted(p.embedding_handle for p in page)


def test_an_agent_moves_to_another_model_and_search_waits_for_it(service: MemoryService) -> None:
    agent = service.create_agent(name="moving")
    other = service.create_agent(name="staying")
    service.add_passages(agent.id, [NewPassage(text=t) for t in TEXTS])
    service.add_passages(other.id, [NewPassage(text="the other project")])
    mine = PassageFilter([agent.id])
    assert service.search_passages("staging database port", mine, 3)

    service.update_agent(agent.id, {"embedding": REMOTE})  # passages still on MiniLM
    with pytest.raises(Conflict, match=r"some of this agent's passages .* reindex --embeddings"):
        service.search_passages("staging database port", mine, 3, embedding=REMOTE)
    assert service.search_passages("staging database port", mine, 3, "lexical", REMOTE)

    def stop_after_one_batch(done: int) -> None:
        raise Interrupted(done)

    with pytest.raises(Interrupted):
        service.reembed([agent.id], REMOTE, stop_after_one_batch, batch=3)
    assert _handles(service, agent.id) == [DEFAULT_EMBEDDING] * 4 + [REMOTE] * 3
    seen: list[int] = []
    assert service.reembed([agent.id], REMOTE, seen.append, batch=3) == 4  # resumes
    assert seen == [3, 4]
    assert _handles(service, agent.id) == [REMOTE] * 7
    assert _handles(service, other.id) == [DEFAULT_EMBEDDING]  # not asked to move

    hits = service.search_passages("port 5403", mine, 3, "vector", REMOTE)
    expected = {text: _cosine("port 5403", text) for text in TEXTS}  # the fake model's vectors
    assert [h.similarity for h in hits] == pytest.approx([expected[h.passage.text] for h in hits])
    assert hits[0].similarity == pytest.approx(max(expected.values()))
    assert service.reembed([agent.id], REMOTE) == 0  # nothing left to do


def test_reembed_moves_every_agent_to_the_default(service: MemoryService) -> None:
    agents = [service.create_agent(name=f"a{i}", embedding=REMOTE) for i in range(2)]
    for agent in agents:
        service.add_passages(agent.id, [NewPassage(text=t) for t in TEXTS[:2]])
    assert service.reembed() == 4
    for agent in agents:
        assert service.get_agent(agent.id).embedding == DEFAULT_EMBEDDING
        assert _handles(service, agent.id) == [DEFAULT_EMBEDDING] * 2
        assert service.search_passages("staging database", PassageFilter([agent.id]), 2)


def test_an_agent_on_the_previous_default_moves_to_the_new_one(service: MemoryService) -> None:
    """The upgrade from MiniLM to all-mpnet-base-v2 with the real models: an agent made before
    keeps searching with its own model, and `reindex --embeddings` moves it and its passages."""
    assert MPNET.handle == DEFAULT_EMBEDDING
    agent = service.create_agent(name="made-before", embedding=MINILM.handle)
    service.add_passages(agent.id, [NewPassage(text=t) for t in TEXTS])
    mine = PassageFilter([agent.id])
    before = service.search_passages("which port is staging on", mine, 3, "vector", MINILM.handle)
    assert before and _handles(service, agent.id) == [MINILM.handle] * len(TEXTS)

    moved: list[int] = []
    assert service.reembed([agent.id], progress=moved.append, batch=4) == len(TEXTS)
    assert moved[-1] == len(TEXTS)
    assert service.get_agent(agent.id).embedding == MPNET.handle
    assert _handles(service, agent.id) == [MPNET.handle] * len(TEXTS)
    after = service.search_passages("which port is staging on", mine, 3, "vector", MPNET.handle)
    assert after[0].similarity is not None and after[0].similarity > 0.3
    stored = service.list_passages(mine, Page(limit=100))
    assert {hit.passage.id for hit in after} <= {p.id for p in stored}
    assert service.reembed([agent.id]) == 0  # nothing left to move

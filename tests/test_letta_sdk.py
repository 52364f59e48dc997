"""The official letta-client 1.12.1 SDK drives a real mnemo server over HTTP, unchanged."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from letta_client import Letta, NotFoundError, UnprocessableEntityError

from tests.conftest import ServerProcess, start_server


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_health(letta: Letta) -> None:
    health = letta.health()
    assert health.status == "ok"
    assert health.version


def test_agent_lifecycle(letta: Letta) -> None:
    name = unique("lifecycle")
    agent = letta.agents.create(
        name=name,
        description="d",
        model="openai/gpt-4.1",
        memory_blocks=[{"label": "human", "value": "Alice, backend dev"}],
        tags=["team-a"],
        metadata={"repo": "mnemo"},
    )
    assert agent.id.startswith("agent-")
    assert agent.name == name
    assert agent.llm_config.model == "gpt-4.1"
    assert [b.label for b in agent.blocks] == ["human"]
    assert agent.memory.blocks[0].value == "Alice, backend dev"

    fetched = letta.agents.retrieve(agent.id, include=["agent.blocks"])
    assert fetched.id == agent.id
    assert fetched.tags == ["team-a"]
    assert fetched.metadata == {"repo": "mnemo"}

    updated = letta.agents.update(agent.id, name=name + "-2", description="changed")
    assert updated.name == name + "-2"
    assert updated.description == "changed"
    assert letta.agents.retrieve(agent.id).name == name + "-2"

    assert [a.id for a in letta.agents.list(name=name + "-2")] == [agent.id]
    assert agent.id in [a.id for a in letta.agents.list(query_text="LIFECYCLE")]
    assert agent.id in [a.id for a in letta.agents.list(tags=["team-a", "nope"])]
    assert agent.id not in [a.id for a in letta.agents.list(tags=["nope"])]

    letta.agents.delete(agent.id)
    with pytest.raises(NotFoundError):
        letta.agents.retrieve(agent.id)


def test_auto_pagination_terminates(letta: Letta) -> None:
    tag = unique("page")
    created = {letta.agents.create(name=f"{tag}-{i}", tags=[tag]).id for i in range(7)}
    seen = [a.id for a in letta.agents.list(tags=[tag], limit=2)]  # iterating fetches all pages
    assert len(seen) == 7
    assert set(seen) == created
    first_page = letta.agents.list(tags=[tag], limit=3)
    assert len(first_page.items) == 3
    # Newest first by default; ascending order reverses it.
    ascending = [a.id for a in letta.agents.list(tags=[tag], order="asc")]
    assert ascending == list(reversed(seen))


def test_not_found_and_malformed_ids(letta: Letta) -> None:
    with pytest.raises(NotFoundError) as missing:
        letta.agents.retrieve(f"agent-{uuid.uuid4()}")
    assert "not found" in missing.value.body["detail"].lower()
    with pytest.raises(UnprocessableEntityError) as malformed:
        letta.agents.retrieve("agent-123")
    assert "agent_id" in malformed.value.body["detail"]
    with pytest.raises(UnprocessableEntityError):
        letta.blocks.retrieve("not-a-block")
    with pytest.raises(NotFoundError):
        letta.blocks.retrieve(f"block-{uuid.uuid4()}")


def test_core_memory_blocks_by_label(letta: Letta) -> None:
    agent = letta.agents.create(
        name=unique("core"),
        memory_blocks=[
            {"label": "human", "value": "Bob"},
            {"label": "persona", "value": "helpful", "limit": 500},
        ],
    )
    labels = {b.label for b in letta.agents.blocks.list(agent.id)}
    assert labels == {"human", "persona"}
    block = letta.agents.blocks.retrieve("persona", agent_id=agent.id)
    assert block.value == "helpful"
    assert block.limit == 500
    updated = letta.agents.blocks.update("persona", agent_id=agent.id, value="terse")
    assert updated.value == "terse"
    assert letta.blocks.retrieve(block.id).value == "terse"
    with pytest.raises(NotFoundError) as missing:
        letta.agents.blocks.retrieve("nope", agent_id=agent.id)
    assert "No block with label 'nope'" in missing.value.body["detail"]


def test_shared_block_seen_by_two_agents(letta: Letta) -> None:
    shared = letta.blocks.create(label="team_conventions", value="Use ruff.", description="team")
    first = letta.agents.create(name=unique("first"), block_ids=[shared.id])
    second = letta.agents.create(name=unique("second"))
    attached = letta.agents.blocks.attach(shared.id, agent_id=second.id)
    assert shared.id in [b.id for b in attached.blocks]

    letta.blocks.update(shared.id, value="Use ruff and mypy.")
    for agent in (first, second):
        seen = letta.agents.blocks.retrieve("team_conventions", agent_id=agent.id)
        assert seen.value == "Use ruff and mypy."
    assert {a.id for a in letta.blocks.agents.list(shared.id)} == {first.id, second.id}

    detached = letta.agents.blocks.detach(shared.id, agent_id=second.id)
    assert shared.id not in [b.id for b in detached.blocks]
    with pytest.raises(NotFoundError):
        letta.agents.blocks.detach(shared.id, agent_id=second.id)
    assert [a.id for a in letta.blocks.agents.list(shared.id)] == [first.id]


def test_attach_label_clash_is_conflict(letta: Letta, http: httpx.Client) -> None:
    agent = letta.agents.create(
        name=unique("clash"), memory_blocks=[{"label": "human", "value": "a"}]
    )
    other = letta.blocks.create(label="human", value="b")
    response = http.patch(f"/v1/agents/{agent.id}/core-memory/blocks/attach/{other.id}")
    assert response.status_code == 409
    assert "label 'human'" in response.json()["detail"]


def test_standalone_blocks_crud_and_filters(letta: Letta) -> None:
    label = unique("lbl").replace("-", "_")
    block = letta.blocks.create(label=label, value="some value", description="desc", limit=1000)
    assert block.id.startswith("block-")
    assert [b.id for b in letta.blocks.list(label=label)] == [block.id]
    assert block.id in [b.id for b in letta.blocks.list(value_search="SOME VAL")]
    updated = letta.blocks.update(block.id, value="new value", description="d2")
    assert (updated.value, updated.description) == ("new value", "d2")
    assert letta.blocks.delete(block.id) is None
    with pytest.raises(NotFoundError):
        letta.blocks.retrieve(block.id)


def test_archival_memory(letta: Letta) -> None:
    agent = letta.agents.create(name=unique("archival"))
    created = letta.agents.passages.create(
        agent.id, text="Postgres runs on port 5433 in CI", tags=["infra"]
    )
    assert isinstance(created, list) and len(created) == 1
    passage = created[0]
    assert passage.id.startswith("passage-")
    assert passage.tags == ["infra"]
    letta.agents.passages.create(
        agent.id, text="Lunch is at noon", created_at=datetime(2024, 1, 2, tzinfo=UTC)
    )

    listed = letta.agents.passages.list(agent.id)
    assert [p.text for p in listed] == ["Lunch is at noon", "Postgres runs on port 5433 in CI"]
    assert [p.text for p in letta.agents.passages.list(agent.id, search="PORT")] == [
        "Postgres runs on port 5433 in CI"
    ]
    first = letta.agents.passages.list(agent.id, limit=1)
    rest = letta.agents.passages.list(agent.id, after=first[0].id)
    assert [p.id for p in first + rest] == [p.id for p in listed]

    found = letta.agents.passages.search(agent.id, query="which port does postgres use", top_k=1)
    assert found.count == 1
    assert found.results[0].content == "Postgres runs on port 5433 in CI"
    assert found.results[0].tags == ["infra"]
    assert isinstance(found.results[0].timestamp, str)

    in_2024 = letta.agents.passages.search(
        agent.id, query="postgres", start_datetime="2024-01-01", end_datetime="2024-01-31"
    )
    assert [r.content for r in in_2024.results] == ["Lunch is at noon"]
    tagged = letta.agents.passages.search(agent.id, query="lunch", tags=["infra"])
    assert [r.content for r in tagged.results] == ["Postgres runs on port 5433 in CI"]

    letta.agents.passages.delete(passage.id, agent_id=agent.id)
    assert [p.text for p in letta.agents.passages.list(agent.id)] == ["Lunch is at noon"]
    with pytest.raises(NotFoundError):
        letta.agents.passages.delete(passage.id, agent_id=agent.id)


def test_cross_agent_passage_search(letta: Letta) -> None:
    agent = letta.agents.create(name=unique("xsearch"))
    letta.agents.passages.create(agent.id, text="The flaky test is test_checkout_retry")
    hits = letta.passages.search(agent_id=agent.id, query="flaky checkout test", limit=5)
    assert hits[0].passage.text == "The flaky test is test_checkout_retry"
    assert hits[0].score > 0


def test_messages_list(letta: Letta, http: httpx.Client) -> None:
    agent = letta.agents.create(name=unique("recall"))
    response = http.post(
        f"/v1/agents/{agent.id}/messages/import",
        json={
            "messages": [
                {"role": "user", "content": "Why is the build red?", "conversation_id": "s1"},
                {"role": "assistant", "content": "A migration timed out.", "conversation_id": "s1"},
            ]
        },
    )
    assert response.status_code == 200, response.text
    messages = list(letta.agents.messages.list(agent.id, order="asc"))
    assert [m.message_type for m in messages] == ["user_message", "assistant_message"]
    assert messages[0].content == "Why is the build red?"
    newest = letta.agents.messages.list(agent.id, limit=1)
    assert newest.items[0].content == "A migration timed out."

    # Letta's message search, with each of its modes: all served by the keyword ranking, and
    # the reply is found by the words of the question before it.
    for mode in ("fts", "hybrid", "vector"):
        found = letta.messages.search(query="build red", agent_id=agent.id, search_mode=mode)
        contents = [getattr(m, "content", None) for m in found]
        assert contents[:2] == ["Why is the build red?", "A migration timed out."], mode
    bad = http.post("/v1/messages/search", json={"query": "build", "search_mode": "semantic"})
    assert bad.status_code == 422 and "search_mode" in bad.text
    after = letta.messages.search(query="build red", agent_id=agent.id)  # still answers
    assert [getattr(m, "content", None) for m in after][:1] == ["Why is the build red?"]


def test_export_import_round_trip(letta: Letta, http: httpx.Client) -> None:
    agent = letta.agents.create(
        name=unique("backup"),
        memory_blocks=[{"label": "human", "value": "Carol"}, {"label": "learnings", "value": "x"}],
        tags=["keep"],
    )
    letta.agents.passages.create(agent.id, text="Remember the deploy key rotation", tags=["ops"])
    http.post(
        f"/v1/agents/{agent.id}/messages/import",
        json={"messages": [{"role": "user", "content": "rotate keys"}]},
    )
    exported = letta.agents.export_file(agent.id)
    document = json.loads(exported)
    assert document["agents"][0]["name"] == agent.name
    assert {b["label"] for b in document["blocks"]} == {"human", "learnings"}
    assert [p["text"] for p in document["passages"]] == ["Remember the deploy key rotation"]

    restored = letta.agents.import_file(file=("backup.af", exported.encode(), "application/json"))
    (new_id,) = restored.agent_ids
    assert new_id != agent.id
    copy = letta.agents.retrieve(new_id)
    assert copy.name == agent.name + "_copy"
    assert {b.label: b.value for b in copy.blocks} == {"human": "Carol", "learnings": "x"}
    assert [p.text for p in letta.agents.passages.list(new_id)] == [
        "Remember the deploy key rotation"
    ]
    assert letta.agents.passages.search(new_id, query="deploy key").count == 1
    assert [m.content for m in letta.agents.messages.list(new_id)] == ["rotate keys"]

    renamed = letta.agents.import_file(
        file=("b.af", exported.encode(), "application/json"), name="restored", strip_messages=True
    )
    assert letta.agents.retrieve(renamed.agent_ids[0]).name == "restored"
    assert list(letta.agents.messages.list(renamed.agent_ids[0])) == []


def test_import_rejects_corrupted_file(letta: Letta) -> None:
    from letta_client import BadRequestError

    with pytest.raises(BadRequestError) as error:
        letta.agents.import_file(file=("bad.af", b"{not json", "application/json"))
    assert "Corrupted agent file" in error.value.body["detail"]


def test_both_slash_forms_without_redirect(http: httpx.Client) -> None:
    for path in (
        "/v1/agents",
        "/v1/agents/",
        "/v1/blocks",
        "/v1/blocks/",
        "/v1/health",
        "/v1/health/",
    ):
        response = http.get(path, follow_redirects=False)
        assert response.status_code == 200, path


def test_unknown_embedding_handle_is_clear_error(letta: Letta) -> None:
    from letta_client import BadRequestError

    with pytest.raises(BadRequestError) as error:
        letta.agents.create(name=unique("emb"), embedding="openai/text-embedding-3-small")
    detail = error.value.body["detail"]
    assert "openai/text-embedding-3-small" in detail
    assert "mnemo/all-MiniLM-L6-v2" in detail


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    running = start_server(
        tmp_path_factory.mktemp("secured") / "data", env={"MNEMO_API_KEY": "s3cret-key"}
    )
    yield running
    running.stop()


def test_auth_on(secured: ServerProcess) -> None:
    from letta_client import AuthenticationError

    anonymous = Letta(base_url=secured.url, max_retries=0)
    assert anonymous.health().status == "ok"  # health stays open
    with pytest.raises(AuthenticationError):
        anonymous.agents.list()
    wrong = Letta(base_url=secured.url, api_key="nope", max_retries=0)
    with pytest.raises(AuthenticationError):
        wrong.agents.list()
    right = Letta(base_url=secured.url, api_key="s3cret-key", max_retries=0)
    agent = right.agents.create(name="authed")
    assert right.agents.retrieve(agent.id).name == "authed"
    bare = httpx.get(
        f"{secured.url}/v1/agents/", headers={"X-BARE-PASSWORD": "password s3cret-key"}
    )
    assert bare.status_code == 200
    assert httpx.get(f"{secured.url}/v1/agents/").json() == {"detail": "Unauthorized"}


def test_letta_server_password_env_also_enables_auth(tmp_path) -> None:  # type: ignore[no-untyped-def]
    running = start_server(tmp_path / "data", env={"LETTA_SERVER_PASSWORD": "pw-from-letta"})
    try:
        assert httpx.get(f"{running.url}/v1/agents/").status_code == 401
        ok = httpx.get(
            f"{running.url}/v1/agents/", headers={"Authorization": "Bearer pw-from-letta"}
        )
        assert ok.status_code == 200
    finally:
        running.stop()


def test_auth_off_by_default(letta: Letta) -> None:
    assert isinstance(list(letta.agents.list(limit=1)), list)

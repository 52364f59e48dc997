"""Hybrid retrieval through the public API: keywords, paraphrases, filters before ranking."""

from __future__ import annotations

import uuid

import httpx
import pytest

NOTES = [
    "ERR_SSL_PROTOCOL_ERROR when the proxy terminates TLS on port 8443",
    "The team decided to use PostgreSQL advisory locks for migrations",
    "Alice prefers tabs over spaces and hates trailing whitespace",
    "Run the integration tests with make itest before pushing",
    "Our cat Miso likes to sleep on the warm laptop keyboard",
    "Deployments happen every Tuesday after the standup meeting",
]


@pytest.fixture
def agent_id(http: httpx.Client) -> str:
    agent = http.post("/v1/agents/", json={"name": f"search-{uuid.uuid4().hex[:6]}"}).json()
    for text in NOTES:
        assert http.post(
            f"/v1/agents/{agent['id']}/archival-memory", json={"text": text}
        ).is_success
    return agent["id"]


def search(http: httpx.Client, agent_id: str, **params: object) -> list[dict]:
    response = http.get(f"/v1/agents/{agent_id}/archival-memory/search", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == len(body["results"])
    return body["results"]


def test_keyword_only_query_finds_exact_token(http: httpx.Client, agent_id: str) -> None:
    results = search(http, agent_id, query="ERR_SSL_PROTOCOL_ERROR", top_k=1)
    assert results[0]["content"] == NOTES[0]


def test_paraphrase_finds_passage_without_shared_words(http: httpx.Client, agent_id: str) -> None:
    results = search(http, agent_id, query="which weekday do we ship releases", top_k=1)
    assert results[0]["content"] == NOTES[5]
    pet = search(http, agent_id, query="our pet animal napping on the computer", top_k=1)
    assert pet[0]["content"] == NOTES[4]


def test_results_carry_score_and_metadata_in_rank_order(http: httpx.Client, agent_id: str) -> None:
    results = search(http, agent_id, query="database migration locking", top_k=3)
    assert results[0]["content"] == NOTES[1]
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert all("metadata" in r for r in results)
    assert -1 <= results[-1]["similarity"] < results[0]["similarity"] <= 1


def test_similarity_is_absent_without_vector_ranking(http: httpx.Client, agent_id: str) -> None:
    results = search(http, agent_id, query="database migration", mode="lexical")
    assert results and all(r["similarity"] is None for r in results)


def test_no_threshold_top_k_always_filled(http: httpx.Client, agent_id: str) -> None:
    assert len(search(http, agent_id, query="quantum chromodynamics", top_k=4)) == 4
    assert len(search(http, agent_id, query="anything", top_k=50)) == len(NOTES)


@pytest.mark.parametrize("mode", ["lexical", "vector", "hybrid"])
def test_modes(http: httpx.Client, agent_id: str, mode: str) -> None:
    results = search(http, agent_id, query="integration tests make itest", top_k=2, mode=mode)
    assert results[0]["content"] == NOTES[3]


def test_lexical_mode_returns_only_matches(http: httpx.Client, agent_id: str) -> None:
    assert search(http, agent_id, query="zebra", mode="lexical") == []


def test_filters_apply_before_ranking(http: httpx.Client) -> None:
    agent = http.post("/v1/agents/", json={"name": "filters"}).json()
    url = f"/v1/agents/{agent['id']}/archival-memory"
    # Many strong matches without the tag, a few weak ones with it: all tagged ones must come back.
    for i in range(60):
        http.post(url, json={"text": f"pytest failure in test_checkout number {i}"})
    for i in range(3):
        http.post(
            url,
            json={
                "text": f"unrelated note {i} about gardening",
                "tags": ["keep"],
                "metadata": {"type": "test_failure", "attempt": i},
            },
        )
    tagged = search(http, agent["id"], query="pytest failure checkout", tags=["keep"], top_k=3)
    assert len(tagged) == 3
    assert all(r["tags"] == ["keep"] for r in tagged)
    typed = search(
        http, agent["id"], query="pytest failure", top_k=10, **{"metadata.type": "test_failure"}
    )
    assert len(typed) == 3
    one = search(http, agent["id"], query="gardening", **{"metadata.attempt": "2"})
    assert [r["content"] for r in one] == ["unrelated note 2 about gardening"]


def test_tag_match_mode_all(http: httpx.Client) -> None:
    agent = http.post("/v1/agents/", json={"name": "tags"}).json()
    url = f"/v1/agents/{agent['id']}/archival-memory"
    http.post(url, json={"text": "both tags", "tags": ["a", "b"]})
    http.post(url, json={"text": "only a", "tags": ["a"]})
    any_ = search(http, agent["id"], query="tags", tags=["a", "b"], tag_match_mode="any")
    all_ = search(http, agent["id"], query="tags", tags=["a", "b"], tag_match_mode="all")
    assert {r["content"] for r in any_} == {"both tags", "only a"}
    assert [r["content"] for r in all_] == ["both tags"]


def test_agents_do_not_see_each_others_passages(http: httpx.Client, agent_id: str) -> None:
    other = http.post("/v1/agents/", json={"name": "other"}).json()
    http.post(f"/v1/agents/{other['id']}/archival-memory", json={"text": "secret other project"})
    results = search(http, agent_id, query="secret other project", top_k=50)
    assert "secret other project" not in [r["content"] for r in results]


def test_search_sees_passages_written_after_previous_search(
    http: httpx.Client, agent_id: str
) -> None:
    search(http, agent_id, query="warm the index")
    http.post(f"/v1/agents/{agent_id}/archival-memory", json={"text": "Kubernetes pod eviction"})
    assert search(http, agent_id, query="pod evicted by kubelet", top_k=1)[0]["content"] == (
        "Kubernetes pod eviction"
    )
    passage_id = search(http, agent_id, query="Kubernetes pod eviction", top_k=1)[0]["id"]
    http.delete(f"/v1/agents/{agent_id}/archival-memory/{passage_id}")
    remaining = search(http, agent_id, query="Kubernetes pod eviction", top_k=50)
    assert passage_id not in [r["id"] for r in remaining]


def test_blank_query_returns_nothing(http: httpx.Client, agent_id: str) -> None:
    assert search(http, agent_id, query="   ") == []


def test_recall_message_search(http: httpx.Client) -> None:
    agent = http.post("/v1/agents/", json={"name": "recall-search"}).json()
    http.post(
        f"/v1/agents/{agent['id']}/messages/import",
        json={
            "messages": [
                {
                    "role": "user",
                    "content": "how do I rebuild the docker image",
                    "conversation_id": "a",
                },
                {"role": "assistant", "content": "run make image", "conversation_id": "a"},
                {"role": "user", "content": "what about the helm chart", "conversation_id": "b"},
            ]
        },
    )
    hits = http.get(
        f"/v1/agents/{agent['id']}/messages/search", params={"query": "docker image"}
    ).json()
    assert hits[0]["content"] == "how do I rebuild the docker image"
    only_b = http.get(
        f"/v1/agents/{agent['id']}/messages/search",
        params={"query": "helm docker", "conversation_id": "b"},
    ).json()
    assert [h["content"] for h in only_b] == ["what about the helm chart"]
    global_hits = http.post("/v1/messages/search", json={"query": "helm chart"}).json()
    assert any(h["message_id"] == only_b[0]["id"] for h in global_hits)


def test_batch_insert(http: httpx.Client) -> None:
    agent = http.post("/v1/agents/", json={"name": "batch"}).json()
    url = f"/v1/agents/{agent['id']}/archival-memory"
    created = http.post(
        f"{url}/batch",
        json={
            "passages": [
                {"text": f"note {i}", "tags": ["b"], "metadata": {"i": i}} for i in range(20)
            ]
        },
    )
    assert created.status_code == 200, created.text
    assert [p["metadata"]["i"] for p in created.json()] == list(range(20))
    assert len(http.get(url).json()) == 20
    assert (
        search(http, agent["id"], query="note 7", mode="lexical", top_k=1)[0]["content"] == "note 7"
    )
    empty = http.post(f"{url}/batch", json={"passages": [{"text": "ok"}, {"text": " "}]})
    assert empty.status_code == 400
    assert len(http.get(url).json()) == 20  # all or nothing


def test_cannot_delete_another_agents_passage(http: httpx.Client) -> None:
    owner = http.post("/v1/agents/", json={"name": "owner"}).json()
    intruder = http.post("/v1/agents/", json={"name": "intruder"}).json()
    created = http.post(f"/v1/agents/{owner['id']}/archival-memory", json={"text": "mine"}).json()
    response = http.delete(f"/v1/agents/{intruder['id']}/archival-memory/{created[0]['id']}")
    assert response.status_code == 404
    assert len(http.get(f"/v1/agents/{owner['id']}/archival-memory").json()) == 1

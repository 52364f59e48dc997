"""Archival memory: passages per agent, semantic search, cross-agent search."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request

from mnemo.api.deps import AgentId, get_service, metadata_filter, page, parse_bound
from mnemo.api.routing import SlashTolerantRouter
from mnemo.api.schemas import PassageBatch, PassageCreate, PassageSearch
from mnemo.api.serialize import passage_json, search_result_json
from mnemo.errors import InvalidInput, TooLarge
from mnemo.models import ID_PATTERNS, NewPassage, is_valid_id, to_utc
from mnemo.service import MemoryService
from mnemo.store.base import PassageFilter

router = SlashTolerantRouter()
Service = Annotated[MemoryService, Depends(get_service)]
MAX_BATCH = 5000


@router.post("/v1/agents/{agent_id}/archival-memory")
def create_passage(
    agent_id: AgentId, body: PassageCreate, service: Service
) -> list[dict[str, Any]]:
    item = NewPassage(
        text=body.text,
        tags=body.tags or [],
        metadata=body.metadata or {},
        created_at=body.created_at,
    )
    return [passage_json(p) for p in service.add_passages(agent_id, [item])]


@router.post("/v1/agents/{agent_id}/archival-memory/batch")
def create_passages(
    agent_id: AgentId, body: PassageBatch, service: Service
) -> list[dict[str, Any]]:
    """mnemo extension: insert many passages in one request (embedded as one batch)."""
    if len(body.passages) > MAX_BATCH:
        raise TooLarge(f"passages: {len(body.passages)} items; at most {MAX_BATCH} per request")
    items = [
        NewPassage(
            text=p.text, tags=p.tags or [], metadata=p.metadata or {}, created_at=p.created_at
        )
        for p in body.passages
    ]
    return [passage_json(p) for p in service.add_passages(agent_id, items)]


@router.get("/v1/agents/{agent_id}/archival-memory")
def list_passages(
    agent_id: AgentId,
    request: Request,
    service: Service,
    after: str | None = None,
    before: str | None = None,
    limit: int | None = None,
    search: str | None = None,
    ascending: bool = True,
    tags: Annotated[list[str] | None, Query()] = None,
    tag_match_mode: Literal["any", "all"] = "any",
) -> list[dict[str, Any]]:
    service.get_agent(agent_id)
    filters = PassageFilter(
        agent_ids=[agent_id],
        contains=search or None,
        tags=tags or [],
        match_all_tags=tag_match_mode == "all",
        metadata=metadata_filter(request),
    )
    passages = service.list_passages(filters, page(limit, after, before, None, 100, ascending))
    return [passage_json(p) for p in passages]


@router.get("/v1/agents/{agent_id}/archival-memory/search")
def search_passages(
    agent_id: AgentId,
    request: Request,
    service: Service,
    query: str,
    top_k: int | None = None,
    tags: Annotated[list[str] | None, Query()] = None,
    tag_match_mode: Literal["any", "all"] = "any",
    start_datetime: str | None = None,
    end_datetime: str | None = None,
    mode: Literal["hybrid", "lexical", "vector"] = "hybrid",
) -> dict[str, Any]:
    agent = service.get_agent(agent_id)
    filters = PassageFilter(
        agent_ids=[agent_id],
        tags=tags or [],
        match_all_tags=tag_match_mode == "all",
        start=parse_bound(start_datetime, "start_datetime", end=False),
        end=parse_bound(end_datetime, "end_datetime", end=True),
        metadata=metadata_filter(request),
    )
    hits = service.search_passages(
        query, filters, 5 if top_k is None else top_k, mode, agent.embedding
    )
    results = [search_result_json(hit, agent.timezone) for hit in hits]
    return {"results": results, "count": len(results)}


@router.get("/v1/agents/{agent_id}/archival-memory/{memory_id}")
def retrieve_passage(agent_id: AgentId, memory_id: str, service: Service) -> dict[str, Any]:
    """mnemo extension: one passage by id (404 unless it belongs to the agent)."""
    return passage_json(service.get_passage(agent_id, memory_id))


@router.delete("/v1/agents/{agent_id}/archival-memory/{memory_id}")
def delete_passage(agent_id: AgentId, memory_id: str, service: Service) -> dict[str, str]:
    service.delete_passage(agent_id, memory_id)
    return {"message": f"Memory id={memory_id} successfully deleted"}


@router.post("/v1/passages/search")
def search_all_passages(body: PassageSearch, service: Service) -> list[dict[str, Any]]:
    """Letta's cross-archive search; here scores are real and `mode`/`metadata` are honoured."""
    agent_ids = None
    embedding = None
    if body.agent_id:
        if not is_valid_id("agent", body.agent_id):
            raise InvalidInput(f"agent_id: String should match pattern {ID_PATTERNS['agent']!r}")
        agent = service.get_agent(body.agent_id)
        agent_ids, embedding = [agent.id], agent.embedding
    elif body.archive_id:
        raise InvalidInput("archive_id: archives are not supported by mnemo; use agent_id")
    filters = PassageFilter(
        agent_ids=agent_ids,
        tags=body.tags or [],
        match_all_tags=body.tag_match_mode == "all",
        start=to_utc(body.start_date) if body.start_date else None,
        end=to_utc(body.end_date) if body.end_date else None,
        metadata=body.metadata or {},
    )
    if body.query and body.query.strip():
        hits = service.search_passages(body.query, filters, body.limit, body.mode, embedding)
        return [
            {
                "passage": passage_json(hit.passage),
                "score": hit.score,
                "metadata": hit.passage.metadata,
            }
            for hit in hits
        ]
    passages = service.list_passages(filters, page(body.limit, None, None, None, 50, False))
    return [{"passage": passage_json(p), "score": 0.0, "metadata": p.metadata} for p in passages]

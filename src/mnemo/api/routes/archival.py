"""Archival memory: passages per agent, semantic search, cross-agent search."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request

from mnemo.api.deps import AgentId, get_service, metadata_filter, page, parse_bound
from mnemo.api.routing import SlashTolerantRouter
from mnemo.api.schemas import (
    PassageBatch,
    PassageCreate,
    PassageSearch,
    PassageUpdate,
    PruneRequest,
)
from mnemo.api.serialize import passage_json, search_result_json
from mnemo.errors import InvalidInput, TooLarge
from mnemo.models import ID_PATTERNS, NewPassage, is_valid_id, utcnow
from mnemo.service import MemoryService
from mnemo.store.base import PassageFilter

router = SlashTolerantRouter()
Service = Annotated[MemoryService, Depends(get_service)]
MAX_BATCH = 5000


def _add(
    service: MemoryService, agent_id: str, items: list[NewPassage], dedupe: bool
) -> list[dict[str, Any]]:
    if not dedupe:
        return [passage_json(p) for p in service.add_passages(agent_id, items)]
    added = service.add_passages_deduplicated(agent_id, items)
    return [{**passage_json(p), "merged": merged} for p, merged in added]


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
    return _add(service, agent_id, [item], body.dedupe)


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
    return _add(service, agent_id, items, body.dedupe)


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
    start_datetime: str | None = None,
    end_datetime: str | None = None,
) -> list[dict[str, Any]]:
    service.get_agent(agent_id)
    filters = PassageFilter(
        agent_ids=[agent_id],
        contains=search or None,
        tags=tags or [],
        match_all_tags=tag_match_mode == "all",
        start=parse_bound(start_datetime, "start_datetime", end=False),
        end=parse_bound(end_datetime, "end_datetime", end=True),
        metadata=metadata_filter(request),
    )
    passages = service.list_passages(
        filters, page(limit, after, before, default_limit=100, oldest_first=ascending)
    )
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


@router.get("/v1/agents/{agent_id}/archival-memory/count")
def count_passages(agent_id: AgentId, service: Service) -> int:
    """mnemo extension: how many passages the agent has."""
    return service.count_passages(agent_id)


@router.post("/v1/agents/{agent_id}/archival-memory/prune")
def prune_passages(agent_id: AgentId, body: PruneRequest, service: Service) -> dict[str, Any]:
    """mnemo extension: delete (or with dry_run, list) the passages a retention policy drops:
    those matching the filters that are older than `older_than_days` or beyond the newest
    `keep_latest`."""
    filters = PassageFilter(
        tags=body.tags or [],
        match_all_tags=body.tag_match_mode == "all",
        metadata=body.metadata or {},
    )
    older_than = None
    if body.older_than_days is not None:
        older_than = utcnow() - timedelta(days=body.older_than_days)
    doomed = service.prune_passages(
        agent_id, filters, older_than, body.keep_latest, dry_run=body.dry_run
    )
    return {
        "dry_run": body.dry_run,
        "matched": len(doomed),
        "deleted": 0 if body.dry_run else len(doomed),
        "passages": [
            {
                "id": p.id,
                "created_at": p.created_at.isoformat(),
                "type": p.metadata.get("type"),
                "text": p.text[:200],
            }
            for p in doomed
        ],
    }


@router.patch("/v1/agents/{agent_id}/archival-memory/{memory_id}")
def update_passage(
    agent_id: AgentId, memory_id: str, body: PassageUpdate, service: Service
) -> dict[str, Any]:
    """mnemo extension: change a passage's text (re-embedded), tags or metadata (merged)."""
    passage = service.update_passage(
        agent_id, memory_id, text=body.text, tags=body.tags, metadata=body.metadata
    )
    return passage_json(passage)


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
        start=body.start_date,
        end=body.end_date,
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
    passages = service.list_passages(
        filters, page(body.limit, None, None, default_limit=50, oldest_first=False)
    )
    return [{"passage": passage_json(p), "score": 0.0, "metadata": p.metadata} for p in passages]

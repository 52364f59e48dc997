"""Agents and their core-memory blocks (by label), Letta paths."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query

from mnemo.api.deps import AgentId, BlockId, get_service, page
from mnemo.api.routing import SlashTolerantRouter
from mnemo.api.schemas import (
    AgentCreate,
    AgentUpdate,
    BlockAppend,
    BlockCreate,
    BlockReplace,
    BlockUpdate,
)
from mnemo.api.serialize import agent_json, block_json
from mnemo.models import Agent, NewBlock
from mnemo.service import MemoryService
from mnemo.store.base import AgentFilter

router = SlashTolerantRouter()
Service = Annotated[MemoryService, Depends(get_service)]


def new_block(spec: BlockCreate) -> NewBlock:
    return NewBlock(
        label=spec.label,
        value=spec.value or "",
        limit=spec.limit,
        description=spec.description,
        read_only=spec.read_only,
        metadata=spec.metadata or {},
        tags=spec.tags or [],
    )


def agent_with_blocks(agent: Agent, service: MemoryService) -> dict[str, Any]:
    return agent_json(agent, service.store.agent_blocks(agent.id), service)


@router.post("/v1/agents/")
def create_agent(body: AgentCreate, service: Service) -> dict[str, Any]:
    embedding = body.embedding or (body.embedding_config or {}).get("handle")
    agent = service.create_agent(
        name=body.name,
        description=body.description,
        system=body.system,
        agent_type=body.agent_type,
        model=body.model,
        embedding=embedding,
        tags=body.tags or [],
        metadata=body.metadata,
        timezone=body.timezone,
        memory_blocks=[new_block(b) for b in body.memory_blocks or []],
        block_ids=body.block_ids or [],
    )
    return agent_with_blocks(agent, service)


@router.get("/v1/agents/")
def list_agents(
    service: Service,
    name: str | None = None,
    query_text: str | None = None,
    tags: Annotated[list[str] | None, Query()] = None,
    match_all_tags: bool = False,
    after: str | None = None,
    before: str | None = None,
    limit: int | None = None,
    order: str | None = None,
    ascending: bool | None = None,
) -> list[dict[str, Any]]:
    agents = service.list_agents(
        AgentFilter(
            name=name, query_text=query_text, tags=tags or [], match_all_tags=match_all_tags
        ),
        page(
            limit, after, before, order, default_limit=50, oldest_first=False, ascending=ascending
        ),
    )
    return [agent_with_blocks(agent, service) for agent in agents]


@router.get("/v1/agents/{agent_id}")
def retrieve_agent(agent_id: AgentId, service: Service) -> dict[str, Any]:
    return agent_with_blocks(service.get_agent(agent_id), service)


@router.patch("/v1/agents/{agent_id}")
def update_agent(agent_id: AgentId, body: AgentUpdate, service: Service) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    return agent_with_blocks(service.update_agent(agent_id, changes), service)


@router.delete("/v1/agents/{agent_id}")
def delete_agent(agent_id: AgentId, service: Service) -> dict[str, str]:
    service.delete_agent(agent_id)
    return {"message": f"Agent id={agent_id} successfully deleted"}


@router.get("/v1/agents/{agent_id}/core-memory/blocks")
def list_core_blocks(
    agent_id: AgentId,
    service: Service,
    after: str | None = None,
    before: str | None = None,
    limit: int | None = None,
    order: str | None = None,
) -> list[dict[str, Any]]:
    blocks = service.list_agent_blocks(
        agent_id, page(limit, after, before, order, default_limit=100, oldest_first=False)
    )
    return [block_json(b) for b in blocks]


@router.get("/v1/agents/{agent_id}/core-memory/blocks/{block_label}")
def retrieve_core_block(agent_id: AgentId, block_label: str, service: Service) -> dict[str, Any]:
    return block_json(service.get_agent_block(agent_id, block_label))


@router.patch("/v1/agents/{agent_id}/core-memory/blocks/attach/{block_id}")
def attach_block(agent_id: AgentId, block_id: BlockId, service: Service) -> dict[str, Any]:
    return agent_with_blocks(service.attach_block(agent_id, block_id), service)


@router.patch("/v1/agents/{agent_id}/core-memory/blocks/detach/{block_id}")
def detach_block(agent_id: AgentId, block_id: BlockId, service: Service) -> dict[str, Any]:
    return agent_with_blocks(service.detach_block(agent_id, block_id), service)


@router.patch("/v1/agents/{agent_id}/core-memory/blocks/{block_label}")
def update_core_block(
    agent_id: AgentId, block_label: str, body: BlockUpdate, service: Service
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    return block_json(service.update_agent_block(agent_id, block_label, changes))


@router.post("/v1/agents/{agent_id}/core-memory/blocks/{block_label}/append")
def append_core_block(
    agent_id: AgentId, block_label: str, body: BlockAppend, service: Service
) -> dict[str, Any]:
    """mnemo extension: append text atomically, trimming the oldest text to fit the limit."""
    block, trimmed = service.append_to_block(agent_id, block_label, body.text, body.separator)
    return {**block_json(block), "trimmed_chars": trimmed}


@router.post("/v1/agents/{agent_id}/core-memory/blocks/{block_label}/replace")
def replace_in_core_block(
    agent_id: AgentId, block_label: str, body: BlockReplace, service: Service
) -> dict[str, Any]:
    """mnemo extension: replace the one occurrence of `old` with `new`, atomically (a 409 when
    `old` occurs zero or several times, a 400 when the result would not fit the limit)."""
    return block_json(service.replace_in_block(agent_id, block_label, body.old, body.new))

"""Standalone blocks (shared core memory), Letta paths."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query

from mnemo.api.deps import BlockId, get_service, page
from mnemo.api.routes.agents import agent_with_blocks, new_block
from mnemo.api.routing import SlashTolerantRouter
from mnemo.api.schemas import BlockCreate, BlockUpdate
from mnemo.api.serialize import block_json
from mnemo.service import MemoryService
from mnemo.store.base import BlockFilter

router = SlashTolerantRouter()
Service = Annotated[MemoryService, Depends(get_service)]


@router.post("/v1/blocks/")
def create_block(body: BlockCreate, service: Service) -> dict[str, Any]:
    return block_json(service.create_block(new_block(body)))


@router.get("/v1/blocks/")
def list_blocks(
    service: Service,
    label: str | None = None,
    label_search: str | None = None,
    value_search: str | None = None,
    description_search: str | None = None,
    tags: Annotated[list[str] | None, Query()] = None,
    match_all_tags: bool = False,
    after: str | None = None,
    before: str | None = None,
    limit: int | None = None,
    order: str | None = None,
) -> list[dict[str, Any]]:
    filters = BlockFilter(
        label=label,
        label_search=label_search,
        value_search=value_search,
        description_search=description_search,
        tags=tags or [],
        match_all_tags=match_all_tags,
    )
    blocks = service.list_blocks(
        filters, page(limit, after, before, order, default_limit=50, oldest_first=True)
    )
    return [block_json(b) for b in blocks]


@router.get("/v1/blocks/{block_id}")
def retrieve_block(block_id: BlockId, service: Service) -> dict[str, Any]:
    return block_json(service.get_block(block_id))


@router.patch("/v1/blocks/{block_id}")
def update_block(block_id: BlockId, body: BlockUpdate, service: Service) -> dict[str, Any]:
    return block_json(service.update_block(block_id, body.model_dump(exclude_unset=True)))


@router.delete("/v1/blocks/{block_id}")
def delete_block(block_id: BlockId, service: Service) -> None:
    service.delete_block(block_id)


@router.get("/v1/blocks/{block_id}/agents")
def block_agents(
    block_id: BlockId,
    service: Service,
    after: str | None = None,
    before: str | None = None,
    limit: int | None = None,
    order: str | None = None,
) -> list[dict[str, Any]]:
    agents = service.block_agents(
        block_id, page(limit, after, before, order, default_limit=50, oldest_first=False)
    )
    return [agent_with_blocks(agent, service) for agent in agents]

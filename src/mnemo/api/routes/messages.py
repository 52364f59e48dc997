"""Recall memory: conversation messages. Listing is Letta's; import and search are mnemo's."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query

from mnemo.agent_file import TYPE_OF_ROLE, content_text
from mnemo.api.deps import AgentId, get_service, page, parse_bound
from mnemo.api.routing import SlashTolerantRouter
from mnemo.api.schemas import MessageIn, MessageSearch, MessagesImport
from mnemo.api.serialize import message_json
from mnemo.errors import InvalidInput, TooLarge
from mnemo.models import NewMessage
from mnemo.service import MemoryService
from mnemo.store.base import MessageFilter

router = SlashTolerantRouter()
Service = Annotated[MemoryService, Depends(get_service)]
MAX_MESSAGES_PER_REQUEST = 5000


def new_message(position: int, item: MessageIn) -> NewMessage:
    message_type = item.message_type or TYPE_OF_ROLE.get(item.role or "", "")
    if not message_type:
        raise InvalidInput(f"messages[{position}]: give message_type or role")
    return NewMessage(
        message_type=message_type,
        content=content_text(item.content),
        conversation_id=item.conversation_id,
        tool_name=item.tool_name,
        tool_call_id=item.tool_call_id,
        is_err=item.is_err,
        metadata=item.metadata or {},
        created_at=item.created_at,
    )


@router.get("/v1/agents/{agent_id}/messages")
def list_messages(
    agent_id: AgentId,
    service: Service,
    after: str | None = None,
    before: str | None = None,
    limit: int | None = None,
    order: str | None = None,
    conversation_id: str | None = None,
    include_return_message_types: Annotated[list[str] | None, Query()] = None,
) -> list[dict[str, Any]]:
    service.get_agent(agent_id)
    filters = MessageFilter(
        agent_ids=[agent_id],
        conversation_id=conversation_id,
        message_types=include_return_message_types or [],
    )
    messages = service.list_messages(
        filters, page(limit, after, before, order, default_limit=100, oldest_first=False)
    )
    return [message_json(m) for m in messages]


@router.post("/v1/agents/{agent_id}/messages/import")
def import_messages(
    agent_id: AgentId, body: MessagesImport, service: Service
) -> list[dict[str, Any]]:
    """mnemo extension: store conversation messages (e.g. a Claude Code transcript)."""
    if len(body.messages) > MAX_MESSAGES_PER_REQUEST:
        raise TooLarge(
            f"messages: {len(body.messages)} items; at most {MAX_MESSAGES_PER_REQUEST} per request"
        )
    items = [new_message(i, m) for i, m in enumerate(body.messages)]
    return [message_json(m) for m in service.add_messages(agent_id, items)]


@router.get("/v1/agents/{agent_id}/messages/search")
def search_agent_messages(
    agent_id: AgentId,
    service: Service,
    query: str,
    limit: int = 20,
    conversation_id: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
) -> list[dict[str, Any]]:
    """mnemo extension: full-text recall search within one agent."""
    service.get_agent(agent_id)
    filters = MessageFilter(
        agent_ids=[agent_id],
        conversation_id=conversation_id,
        start=parse_bound(start_date, "start_date", end=False),
        end=parse_bound(end_date, "end_date", end=True),
    )
    return [
        {**message_json(m), "score": score}
        for m, score in service.search_messages(query, filters, limit)
    ]


@router.post("/v1/messages/search")
def search_messages(body: MessageSearch, service: Service) -> list[dict[str, Any]]:
    """Letta Cloud's message search, served locally with keyword ranking (docs/search.md)."""
    filters = MessageFilter(
        agent_ids=[body.agent_id] if body.agent_id else None,
        conversation_id=body.conversation_id,
        start=body.start_date,
        end=body.end_date,
    )
    return [
        {
            "message_type": m.message_type,
            "message_id": m.id,
            "agent_id": m.agent_id,
            "conversation_id": m.conversation_id,
            "created_at": m.created_at.isoformat(),
            "content": m.content,
            "score": score,
        }
        for m, score in service.search_messages(body.query, filters, body.limit)
    ]

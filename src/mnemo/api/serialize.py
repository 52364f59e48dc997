"""Domain objects to the JSON shapes the Letta SDK reads (docs/compat.md lists where they
differ from Letta's)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mnemo.agent_file import llm_config
from mnemo.models import Agent, Block, Message, Passage, Scored
from mnemo.service import MemoryService


def iso(value: datetime) -> str:
    return value.isoformat()


def block_json(block: Block) -> dict[str, Any]:
    return {
        "id": block.id,
        "label": block.label,
        "value": block.value,
        "limit": block.limit,
        "description": block.description,
        "read_only": block.read_only,
        "metadata": block.metadata,
        "tags": block.tags,
        "hidden": None,
        "is_template": False,
        "template_name": None,
        "project_id": None,
        "created_by_id": None,
        "last_updated_by_id": None,
    }


def agent_json(agent: Agent, blocks: list[Block], service: MemoryService) -> dict[str, Any]:
    rendered = [block_json(b) for b in blocks]
    return {
        "id": agent.id,
        "name": agent.name,
        "description": agent.description,
        "system": agent.system,
        "agent_type": agent.agent_type,
        "model": agent.model,
        "embedding": agent.embedding,
        "llm_config": llm_config(agent),
        "embedding_config": service.embedding_config(agent),
        "blocks": rendered,
        "memory": {
            "blocks": rendered,
            "file_blocks": [],
            "agent_type": agent.agent_type,
            "git_enabled": False,
            "prompt_template": None,
        },
        "tags": agent.tags,
        "metadata": agent.metadata,
        "timezone": agent.timezone,
        "tools": [],
        "sources": [],
        "tool_rules": [],
        "identities": [],
        "identity_ids": [],
        "message_ids": [],
        "hidden": None,
        "project_id": None,
        "created_at": iso(agent.created_at),
        "updated_at": iso(agent.updated_at),
    }


def passage_json(passage: Passage) -> dict[str, Any]:
    return {
        "id": passage.id,
        "text": passage.text,
        "tags": passage.tags,
        "metadata": passage.metadata,
        "agent_id": passage.agent_id,
        "archive_id": None,
        "created_at": iso(passage.created_at),
        "updated_at": iso(passage.updated_at),
        "embedding": None,
        "embedding_config": {"handle": passage.embedding_handle},
        "file_id": None,
        "file_name": None,
        "source_id": None,
        "is_deleted": False,
    }


def local_time(value: datetime, timezone: str) -> str:
    try:
        return value.astimezone(ZoneInfo(timezone)).isoformat()
    except (ZoneInfoNotFoundError, ValueError):
        return value.isoformat()


def search_result_json(hit: Scored, timezone: str) -> dict[str, Any]:
    return {
        "id": hit.passage.id,
        "content": hit.passage.text,
        "timestamp": local_time(hit.passage.created_at, timezone),
        "tags": hit.passage.tags,
        "score": hit.score,
        "similarity": hit.similarity,
        "metadata": hit.passage.metadata,
    }


def message_json(message: Message) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": message.id,
        "date": iso(message.created_at),
        "message_type": message.message_type,
        "agent_id": message.agent_id,
        "conversation_id": message.conversation_id,
        "name": message.tool_name,
        "is_err": message.is_err,
        "otid": None,
        "sender_id": None,
        "step_id": None,
        "run_id": None,
        "seq_id": None,
        "metadata": message.metadata,
        "content": message.content,
    }
    if message.message_type == "reasoning_message":
        body["reasoning"] = message.content
    elif message.message_type == "tool_call_message":
        body["tool_call"] = {
            "name": message.tool_name,
            "arguments": message.content,
            "tool_call_id": message.tool_call_id,
        }
    elif message.message_type == "tool_return_message":
        body["tool_return"] = message.content
        body["status"] = "error" if message.is_err else "success"
        body["tool_call_id"] = message.tool_call_id
    return body

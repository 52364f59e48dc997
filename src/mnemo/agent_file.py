"""Agent File (.af) v2: Letta's export format, plus a top-level `passages` list.

Letta's own loader ignores unknown top-level keys, so our files still import into Letta (minus
the passages); ours import Letta's files. Ids inside a file are file-local (`agent-0`, `block-0`).
Messages carry a `mnemo` object with our fields so a round trip is exact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mnemo import __version__
from mnemo.errors import InvalidInput
from mnemo.models import (
    Agent,
    Block,
    Message,
    NewBlock,
    NewMessage,
    NewPassage,
    Passage,
    format_time,
    utcnow,
)

CORRUPTED = "Corrupted agent file format."

_ROLE_OF_TYPE = {
    "system_message": "system",
    "user_message": "user",
    "assistant_message": "assistant",
    "reasoning_message": "assistant",
    "tool_call_message": "assistant",
    "tool_return_message": "tool",
}
TYPE_OF_ROLE = {
    "system": "system_message",
    "user": "user_message",
    "assistant": "assistant_message",
    "tool": "tool_return_message",
}


def dump(
    agent: Agent,
    blocks: list[Block],
    messages: list[Message],
    passages: list[Passage],
    embedding_config: dict[str, Any],
) -> dict[str, Any]:
    block_ids = {block.id: f"block-{i}" for i, block in enumerate(blocks)}
    message_ids = {message.id: f"message-{i}" for i, message in enumerate(messages)}
    return {
        "agents": [
            {
                "id": "agent-0",
                "name": agent.name,
                "description": agent.description,
                "system": agent.system,
                "agent_type": agent.agent_type,
                "model": agent.model,
                "embedding": agent.embedding,
                "llm_config": llm_config(agent),
                "embedding_config": embedding_config,
                "tags": agent.tags,
                "metadata": agent.metadata,
                "timezone": agent.timezone,
                "block_ids": [block_ids[b.id] for b in blocks],
                "tool_ids": [],
                "source_ids": [],
                "folder_ids": None,
                "in_context_message_ids": list(message_ids.values()),
                "messages": [_message(m, message_ids[m.id]) for m in messages],
                "files_agents": [],
                "group_ids": [],
                "tool_rules": [],
            }
        ],
        "blocks": [
            {
                "id": block_ids[b.id],
                "label": b.label,
                "value": b.value,
                "limit": b.limit,
                "description": b.description,
                "read_only": b.read_only,
                "metadata": b.metadata,
                "tags": b.tags,
            }
            for b in blocks
        ],
        "tools": [],
        "groups": [],
        "files": [],
        "sources": [],
        "mcp_servers": [],
        "skills": [],
        "passages": [
            {
                "agent_id": "agent-0",
                "text": p.text,
                "tags": p.tags,
                "metadata": p.metadata,
                "created_at": format_time(p.created_at),
            }
            for p in passages
        ],
        "metadata": {"revision_id": f"mnemo-{__version__}"},
        "created_at": format_time(utcnow()),
    }


def llm_config(agent: Agent) -> dict[str, Any]:
    """Letta requires an llm_config; mnemo never calls a model, it only records the handle."""
    model = agent.model or "none"
    provider, _, name = model.partition("/")
    return {
        "model": name or model,
        "model_endpoint_type": provider if name else "openai",
        "context_window": 32000,
        "handle": agent.model,
    }


def _message(message: Message, file_id: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": message.content}]
    if message.message_type == "reasoning_message":
        content = [{"type": "reasoning", "reasoning": message.content}]
    return {
        "id": file_id,
        "role": _ROLE_OF_TYPE[message.message_type],
        "content": content,
        "name": message.tool_name,
        "tool_call_id": message.tool_call_id,
        "created_at": format_time(message.created_at),
        "mnemo": {
            "message_type": message.message_type,
            "conversation_id": message.conversation_id,
            "is_err": message.is_err,
            "metadata": message.metadata,
        },
    }


@dataclass
class AgentSpec:
    name: str
    description: str | None = None
    system: str | None = None
    agent_type: str | None = None
    model: str | None = None
    embedding: str | None = None
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    timezone: str | None = None
    block_ids: list[str] = field(default_factory=list)
    messages: list[NewMessage] = field(default_factory=list)
    passages: list[NewPassage] = field(default_factory=list)


@dataclass
class ParsedFile:
    agents: list[AgentSpec]
    blocks: dict[str, NewBlock]


def load(data: Any) -> ParsedFile:
    """Parse an .af document (dict, JSON text, or JSON text encoded twice)."""
    for _ in range(2):
        try:
            if isinstance(data, bytes | bytearray):
                data = data.decode("utf-8", errors="strict")
            if isinstance(data, str):
                data = json.loads(data)
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{CORRUPTED} The file is not UTF-8 text: {exc}") from exc
        except (ValueError, RecursionError) as exc:
            raise InvalidInput(f"{CORRUPTED} {type(exc).__name__}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("agents"), list):
        raise InvalidInput(f"{CORRUPTED} Expected an object with an 'agents' list (Agent File v2).")
    try:
        blocks = {str(b["id"]): _block_spec(b) for b in data.get("blocks") or []}
        passages_by_agent: dict[str, list[NewPassage]] = {}
        for item in data.get("passages") or []:
            passages_by_agent.setdefault(str(item.get("agent_id", "agent-0")), []).append(
                NewPassage(
                    text=str(item["text"]),
                    tags=list(item.get("tags") or []),
                    metadata=dict(item.get("metadata") or {}),
                    created_at=_time(item.get("created_at")),
                )
            )
        agents = [_agent_spec(a, passages_by_agent) for a in data["agents"]]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInput(f"{CORRUPTED} {type(exc).__name__}: {exc}") from exc
    return ParsedFile(agents=agents, blocks=blocks)


def _block_spec(raw: dict[str, Any]) -> NewBlock:
    return NewBlock(
        label=str(raw["label"]),
        value=str(raw.get("value") or ""),
        limit=int(raw["limit"]) if raw.get("limit") is not None else None,
        description=raw.get("description"),
        read_only=bool(raw.get("read_only", False)),
        metadata=dict(raw.get("metadata") or {}),
        tags=list(raw.get("tags") or []),
    )


def _agent_spec(raw: dict[str, Any], passages: dict[str, list[NewPassage]]) -> AgentSpec:
    embedding = raw.get("embedding") or (raw.get("embedding_config") or {}).get("handle")
    return AgentSpec(
        name=str(raw.get("name") or "imported-agent"),
        description=raw.get("description"),
        system=raw.get("system"),
        agent_type=raw.get("agent_type"),
        model=raw.get("model") or (raw.get("llm_config") or {}).get("handle"),
        embedding=embedding,
        tags=list(raw.get("tags") or []),
        metadata=dict(raw.get("metadata") or {}),
        timezone=raw.get("timezone"),
        block_ids=[str(b) for b in raw.get("block_ids") or []],
        messages=[_message_spec(m) for m in raw.get("messages") or []],
        passages=passages.get(str(raw.get("id", "agent-0")), []),
    )


def _message_spec(raw: dict[str, Any]) -> NewMessage:
    extra = raw.get("mnemo") or {}
    message_type = extra.get("message_type") or TYPE_OF_ROLE.get(
        raw.get("role", ""), "user_message"
    )
    return NewMessage(
        message_type=message_type,
        content=content_text(raw.get("content")),
        conversation_id=extra.get("conversation_id") or raw.get("conversation_id"),
        tool_name=raw.get("name"),
        tool_call_id=raw.get("tool_call_id"),
        is_err=bool(extra.get("is_err", False)),
        metadata=dict(extra.get("metadata") or {}),
        created_at=_time(raw.get("created_at")),
    )


def content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for part in content or []:
        if isinstance(part, dict):
            parts.append(str(part.get("text") or part.get("reasoning") or ""))
        else:
            parts.append(str(part))
    return "\n".join(p for p in parts if p)


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))

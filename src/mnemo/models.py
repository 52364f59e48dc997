"""Domain types shared by the service and the stores, plus id and time helpers."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ID_PREFIXES = ("agent", "block", "passage", "message")
_UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
ID_PATTERNS = {prefix: f"^{prefix}-{_UUID4}$" for prefix in ID_PREFIXES}
_ID_RES = {prefix: re.compile(pattern) for prefix, pattern in ID_PATTERNS.items()}


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


def is_valid_id(prefix: str, value: str) -> bool:
    return bool(_ID_RES[prefix].match(value))


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC (agents default to the UTC timezone)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_time(value: datetime) -> str:
    """Fixed-width ISO-8601 in UTC, so stored strings sort in time order."""
    return to_utc(value).isoformat(timespec="microseconds")


def parse_time(value: str) -> datetime:
    return to_utc(datetime.fromisoformat(value))


@dataclass
class Agent:
    id: str
    name: str
    embedding: str
    description: str | None = None
    system: str = ""
    agent_type: str = "letta_v1_agent"
    model: str | None = None
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    timezone: str = "UTC"
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass
class Block:
    id: str
    label: str
    value: str
    limit: int
    description: str | None = None
    read_only: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    owner_agent_id: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass
class Passage:
    id: str
    agent_id: str
    text: str
    embedding_handle: str
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    # The analysed terms of the passage before it, indexed with it for keyword search (see
    # MemoryService.with_context); never shown to clients.
    context: list[str] = field(default_factory=list)


MESSAGE_TYPES = (
    "system_message",
    "user_message",
    "assistant_message",
    "reasoning_message",
    "tool_call_message",
    "tool_return_message",
)


@dataclass
class Message:
    id: str
    agent_id: str
    message_type: str
    content: str
    conversation_id: str | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None
    is_err: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utcnow)
    # The analysed terms of the messages before it in its conversation, indexed with it for
    # keyword search (see MemoryService.with_message_context); never shown to clients.
    context: list[str] = field(default_factory=list)


@dataclass
class Scored:
    """A search hit: the passage and its fused relevance score (higher is better)."""

    passage: Passage
    score: float
    similarity: float | None = None  # cosine to the query, in hybrid and vector searches


# Input specs: what callers ask the service to create (ids and times are the service's).


@dataclass
class NewBlock:
    label: str
    value: str = ""
    limit: int | None = None
    description: str | None = None
    read_only: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)


@dataclass
class NewPassage:
    text: str
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None


@dataclass
class NewMessage:
    message_type: str
    content: str
    conversation_id: str | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None
    is_err: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None

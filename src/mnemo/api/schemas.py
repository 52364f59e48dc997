"""Request bodies. Unknown fields are ignored, as Letta does; every field is typed."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mnemo.validate import MAX_BLOCK_LIMIT, MAX_INT, MAX_PRUNE_DAYS

BlockLimit = Field(default=None, ge=1, le=MAX_BLOCK_LIMIT, description="characters")


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class BlockCreate(Body):
    label: str
    value: str | None
    limit: int | None = BlockLimit
    description: str | None = None
    read_only: bool = False
    metadata: dict[str, Any] | None = None
    tags: list[str] | None = None


class BlockUpdate(Body):
    label: str | None = None
    value: str | None = None
    limit: int | None = BlockLimit
    description: str | None = None
    read_only: bool | None = None
    metadata: dict[str, Any] | None = None
    tags: list[str] | None = None


class AgentCreate(Body):
    name: str | None = None
    description: str | None = None
    system: str | None = None
    agent_type: str | None = None
    model: str | None = None
    embedding: str | None = None
    embedding_config: dict[str, Any] | None = None
    memory_blocks: list[BlockCreate] | None = None
    block_ids: list[str] | None = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None
    timezone: str | None = None


class AgentUpdate(Body):
    name: str | None = None
    description: str | None = None
    system: str | None = None
    agent_type: str | None = None
    model: str | None = None
    embedding: str | None = None
    block_ids: list[str] | None = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None
    timezone: str | None = None


class PassageCreate(Body):
    text: str
    tags: list[str] | None = None
    created_at: datetime | None = None
    metadata: dict[str, Any] | None = Field(
        default=None, description="mnemo extension: stored and filterable"
    )
    dedupe: bool = Field(
        default=False,
        description="mnemo extension: merge into an existing passage of the same metadata.type "
        "when nearly identical (cosine >= dedupe_similarity) instead of storing it again",
    )


class PassageBatch(Body):
    passages: list[PassageCreate]
    dedupe: bool = Field(
        default=False,
        description="mnemo extension: merge into an existing passage of the same metadata.type "
        "when nearly identical (cosine >= dedupe_similarity) instead of storing it again",
    )


class PassageUpdate(Body):
    """mnemo extension: change a passage in place."""

    text: str | None = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = Field(
        default=None, description="merged into the stored metadata; a key set to null is removed"
    )


class PruneRequest(Body):
    """mnemo extension: a retention policy applied to the passages that match the filters."""

    metadata: dict[str, Any] | None = Field(default=None, description="exact matches, e.g. type")
    tags: list[str] | None = None
    tag_match_mode: Literal["any", "all"] = "any"
    older_than_days: float | None = Field(
        default=None, ge=0, le=MAX_PRUNE_DAYS, allow_inf_nan=False
    )
    keep_latest: int | None = Field(default=None, ge=0, le=MAX_INT)
    dry_run: bool = False


class PassageSearch(Body):
    query: str | None = None
    agent_id: str | None = None
    archive_id: str | None = None
    tags: list[str] | None = None
    tag_match_mode: Literal["any", "all"] = "any"
    limit: int = Field(default=50, ge=1, le=100)
    start_date: datetime | None = None
    end_date: datetime | None = None
    mode: Literal["hybrid", "lexical", "vector"] = "hybrid"
    metadata: dict[str, Any] | None = None


class BlockAppend(Body):
    text: str
    separator: str = "\n"


class BlockReplace(Body):
    """mnemo extension: replace the one occurrence of `old` with `new` (empty deletes it)."""

    old: str = Field(min_length=1)
    new: str


class MessageIn(Body):
    message_type: str | None = None
    role: Literal["system", "user", "assistant", "tool"] | None = None
    content: str | list[dict[str, Any]]
    created_at: datetime | None = None
    conversation_id: str | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None
    is_err: bool = False
    metadata: dict[str, Any] | None = None


class MessagesImport(Body):
    messages: list[MessageIn]


class MessageSearch(Body):
    query: str
    agent_id: str | None = None
    conversation_id: str | None = None
    # Letta's modes. Messages carry no vectors here: each is served by the keyword ranking
    # (docs/compat.md).
    search_mode: Literal["vector", "fts", "hybrid"] | None = None
    limit: int = Field(default=50, ge=1, le=1000)
    start_date: datetime | None = None
    end_date: datetime | None = None

"""The storage protocol. SQLite (embedded default) and PostgreSQL implement it; the contract
tests in tests/store/ run against every backend.

Stores know nothing about rules (limits, redaction, ranking): they persist and retrieve.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np

from mnemo.models import Agent, Block, Message, Passage


@dataclass
class Page:
    """Cursor pagination: items strictly after/before the item with that id, in sort order."""

    limit: int = 50
    after: str | None = None
    before: str | None = None
    ascending: bool = False


@dataclass
class AgentFilter:
    name: str | None = None
    query_text: str | None = None
    tags: list[str] = field(default_factory=list)
    match_all_tags: bool = False


@dataclass
class BlockFilter:
    label: str | None = None
    label_search: str | None = None
    value_search: str | None = None
    description_search: str | None = None
    tags: list[str] = field(default_factory=list)
    match_all_tags: bool = False


@dataclass
class PassageFilter:
    """Filters applied before ranking, so top_k hits come back when that many match."""

    agent_ids: list[str] | None = None  # None = every agent
    tags: list[str] = field(default_factory=list)
    match_all_tags: bool = False
    start: datetime | None = None
    end: datetime | None = None
    # Equality on top-level keys; a tuple value matches any of its items (e.g. 42 or "42").
    metadata: dict[str, Any] = field(default_factory=dict)
    contains: str | None = None  # case-insensitive substring

    @property
    def narrows(self) -> bool:
        """Whether anything but the agents restricts which passages pass."""
        return bool(self.tags or self.start or self.end or self.metadata or self.contains)


@dataclass
class MessageFilter:
    agent_ids: list[str] | None = None
    conversation_id: str | None = None
    message_types: list[str] = field(default_factory=list)
    start: datetime | None = None
    end: datetime | None = None

    @property
    def narrows(self) -> bool:
        """Whether anything but the agents restricts which messages pass."""
        return bool(self.conversation_id or self.message_types or self.start or self.end)


@dataclass
class AgentContents:
    """An agent with everything it holds, written by Store.import_agents in one transaction."""

    agent: Agent
    new_blocks: list[Block]  # created and attached
    block_ids: list[str]  # attached too: existing blocks, or new ones of an earlier agent
    messages: list[Message]
    passages: list[Passage]
    vectors: np.ndarray


# A completed Idempotency-Key is replayed for this long, then forgotten (Stripe keeps 24 h).
IDEMPOTENCY_TTL = timedelta(hours=24)


@dataclass
class IdempotentResponse:
    request_hash: str
    status_code: int
    body: bytes
    media_type: str
    complete: bool


class Store(Protocol):
    # lifecycle
    def migrate(self) -> list[str]:
        """Apply pending schema migrations; returns their names."""
        ...

    def repair_indexes(self) -> list[str]:
        """Build search indexes an interrupted bulk load left missing, without stopping other
        servers; returns what it built. May take minutes: `mnemo migrate --repair` calls it."""
        ...

    def close(self) -> None: ...
    def healthy(self) -> bool: ...

    # agents
    def create_agent(
        self, agent: Agent, new_blocks: Sequence[Block], block_ids: Sequence[str]
    ) -> None: ...
    def import_agents(self, contents: Sequence[AgentContents]) -> None:
        """Create agents with their blocks, messages and passages: all of them or, on any
        failure, none."""
        ...

    def get_agent(self, agent_id: str) -> Agent | None: ...
    def list_agents(self, filters: AgentFilter, page: Page) -> list[Agent]: ...
    def update_agent(self, agent: Agent) -> None: ...
    def delete_agent(self, agent_id: str) -> bool: ...

    # blocks
    def create_block(self, block: Block) -> None: ...
    def get_block(self, block_id: str) -> Block | None: ...
    def list_blocks(self, filters: BlockFilter, page: Page) -> list[Block]: ...
    def modify_block(self, block_id: str, change: Callable[[Block], Block]) -> Block | None:
        """Read, change and write one block in a single transaction (no lost updates)."""
        ...

    def delete_block(self, block_id: str) -> bool: ...
    def agent_blocks(self, agent_id: str) -> list[Block]: ...
    def attach_block(self, agent_id: str, block_id: str) -> None: ...
    def detach_block(self, agent_id: str, block_id: str) -> bool: ...
    def block_agents(self, block_id: str, page: Page) -> list[Agent]: ...

    # passages
    def insert_passages(self, passages: Sequence[Passage], vectors: np.ndarray) -> None: ...
    def get_passages(self, passage_ids: Sequence[str]) -> list[Passage]: ...
    def list_passages(self, filters: PassageFilter, page: Page) -> list[Passage]: ...
    def update_passage(self, passage: Passage, vector: np.ndarray | None) -> bool:
        """Replace text, tags, metadata and updated_at of an existing passage (and its
        embedding when `vector` is given); its keyword terms follow the new text and
        `passage.context`. False when the passage does not exist."""
        ...

    def delete_passage(self, passage_id: str) -> bool: ...
    def lexical_search(
        self, query: str, filters: PassageFilter, limit: int
    ) -> list[tuple[str, float]]:
        """(passage id, BM25 score, higher is better, ties to the earlier passage) for free
        text, analysed by mnemo/text.py and ranked by store/bm25.py over the searched agents."""
        ...

    def analyzer_version(self) -> str:
        """The text.ANALYZER_VERSION the keyword postings were written with ('' if unknown)."""
        ...

    def reindex_keywords(
        self,
        batches: Iterable[Sequence[Passage]],
        version: str,
        messages: Iterable[Sequence[Message]] = (),
    ) -> int:
        """Rewrite the stored context and keyword postings of the passages in `batches` and of
        the recall messages in `messages`, then record `version` as the analyzer they follow.
        Returns how many passages and messages it took."""
        ...

    def vector_search(
        self, vector: np.ndarray, handle: str, filters: PassageFilter, limit: int
    ) -> list[tuple[str, float]]:
        """(passage id, cosine similarity) among passages embedded with `handle`."""
        ...

    def mixed_embeddings(self, agent_id: str, handle: str) -> bool:
        """Whether some of the agent's passages are embedded with another model than `handle`
        (PostgreSQL may answer from a check up to a minute old)."""
        ...

    def replace_embeddings(
        self, passages: Sequence[Passage], vectors: np.ndarray, handle: str
    ) -> None:
        """Store new embeddings, made with `handle`, for existing passages."""
        ...

    def similarities(
        self, vector: np.ndarray, handle: str, passage_ids: Sequence[str]
    ) -> dict[str, float]:
        """Cosine to `vector` of those of `passage_ids` embedded with `handle`."""
        ...

    def count_passages(self, agent_id: str | None = None) -> int: ...
    def passage_vectors(self, passage_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored embeddings by passage id (for copying between stores)."""
        ...

    def bulk_load(self) -> AbstractContextManager[bool]:
        """Wrap a large load (e.g. migrate-data) so the backend can defer index work. Yields
        whether index work is deferred to the end of the block (so callers can say so)."""
        ...

    def counts(self) -> dict[str, int]:
        """Rows per kind: agents, blocks, passages, messages."""
        ...

    # messages (recall memory)
    def insert_messages(self, messages: Sequence[Message]) -> None:
        """Store messages; a message whose id is already stored is skipped."""
        ...

    def list_messages(self, filters: MessageFilter, page: Page) -> list[Message]: ...
    def count_messages(self, agent_id: str) -> int: ...
    def delete_messages(self, agent_id: str, conversation_id: str) -> int:
        """Delete one conversation's messages of an agent; returns how many there were."""
        ...

    def search_messages(
        self, query: str, filters: MessageFilter, limit: int
    ) -> list[tuple[Message, float]]:
        """(message, BM25 score, higher is better, ties to the earlier message) for free text:
        the same analysis (mnemo/text.py) and ranking (store/bm25.py) as `lexical_search`, over
        the messages of the searched agents."""
        ...

    # idempotency keys
    def claim_idempotency_key(self, key: str, request_hash: str) -> IdempotentResponse | None:
        """Record a new key as in progress (returns None), or return what is stored for it."""
        ...

    def complete_idempotency_key(
        self, key: str, status_code: int, body: bytes, media_type: str
    ) -> None: ...
    def release_idempotency_key(self, key: str) -> None: ...

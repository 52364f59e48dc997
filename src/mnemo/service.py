"""Every memory rule lives here: ids, defaults, limits, redaction, shared blocks, search fusion,
export/import. The API, the MCP server and the CLI call this; stores only persist."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np

from mnemo import agent_file, validate
from mnemo.config import Settings
from mnemo.embed import EmbedderRegistry
from mnemo.embed.catalog import LOCAL_MODELS
from mnemo.errors import Conflict, InvalidInput, LimitExceeded, NotFound, TooLarge
from mnemo.metrics import REDACTIONS, SEARCH_SECONDS
from mnemo.models import (
    MESSAGE_TYPES,
    Agent,
    Block,
    Message,
    NewBlock,
    NewMessage,
    NewPassage,
    Passage,
    Scored,
    format_time,
    new_id,
    to_utc,
    utcnow,
)
from mnemo.redact import redact, redact_value
from mnemo.store.base import (
    AgentContents,
    AgentFilter,
    BlockFilter,
    MessageFilter,
    Page,
    PassageFilter,
    Store,
)
from mnemo.text import ANALYZER_VERSION, analyze

SearchMode = Literal["hybrid", "lexical", "vector"]
# Store calls that run while the calling thread embeds: a search's keyword side, a write's
# context lookup.
_BESIDE_EMBEDDING = ThreadPoolExecutor(max_workers=8, thread_name_prefix="mnemo-beside")
SEARCH_MODES: tuple[SearchMode, ...] = ("hybrid", "lexical", "vector")
MIN_CANDIDATES = 50  # per ranker, before fusion
# A passage's context: the agent's CONTEXT_PASSAGES passages just before it, each if created at
# most CONTEXT_WINDOW earlier.
CONTEXT_PASSAGES = 2
CONTEXT_WINDOW = timedelta(hours=1)
MAX_CONTEXT_TERMS = 256
# The last items of a stream (an agent's passages, a conversation's messages): when each was
# created, and its terms.
Recent = list[tuple[datetime, list[str]]]


class MemoryService:
    def __init__(self, store: Store, embedders: EmbedderRegistry, settings: Settings) -> None:
        self.store = store
        self.embedders = embedders
        self.settings = settings

    # ------------------------------------------------------------------ redaction

    def _clean(self, text: str, name: str = "text") -> str:
        """Checked (validate.string) and redacted."""
        clean, count = redact(validate.string(name, text))
        self._count(count)
        return clean

    def _clean_data(self, value: Any, name: str = "metadata") -> Any:
        """Checked (validate.data) and redacted."""
        clean, count = redact_value(validate.data(name, value, self.settings.max_metadata_bytes))
        self._count(count)
        return clean

    def _tags(self, values: Sequence[str], name: str = "tags") -> list[str]:
        return validate.tags(values, self.settings.max_tags, name)

    def _optional(self, name: str, value: str | None) -> str | None:
        return None if value is None else validate.string(name, value)

    def _count(self, count: int) -> None:
        if count:
            REDACTIONS.inc(count)

    # ------------------------------------------------------------------ agents

    def create_agent(
        self,
        *,
        name: str | None = None,
        description: str | None = None,
        system: str | None = None,
        agent_type: str | None = None,
        model: str | None = None,
        embedding: str | None = None,
        tags: Sequence[str] = (),
        metadata: dict[str, Any] | None = None,
        timezone: str | None = None,
        memory_blocks: Sequence[NewBlock] = (),
        block_ids: Sequence[str] = (),
    ) -> Agent:
        agent = self._new_agent(
            name=name,
            description=description,
            system=system,
            agent_type=agent_type,
            model=model,
            embedding=embedding,
            tags=tags,
            metadata=metadata,
            timezone=timezone,
        )
        labels = [b.label for b in memory_blocks]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise InvalidInput(f"memory_blocks: duplicate label(s) {', '.join(duplicates)}")
        blocks = [self._new_block(b, owner=agent.id) for b in memory_blocks]
        for block_id in block_ids:
            if self.store.get_block(block_id) is None:
                raise NotFound(f"Block {block_id!r} not found (block_ids)")
        self.store.create_agent(agent, blocks, list(dict.fromkeys(block_ids)))
        return agent

    def _new_agent(
        self,
        *,
        name: str | None,
        description: str | None,
        system: str | None,
        agent_type: str | None,
        model: str | None,
        embedding: str | None,
        tags: Sequence[str],
        metadata: dict[str, Any] | None,
        timezone: str | None,
    ) -> Agent:
        return Agent(
            id=new_id("agent"),
            name=_check_name(name) if name is not None else f"agent-{secrets.token_hex(4)}",
            description=self._optional("description", description),
            system=self._clean(system or "", "system"),
            agent_type=self._optional("agent_type", agent_type) or "letta_v1_agent",
            model=self._optional("model", model),
            embedding=self.embedders.check(embedding or self.embedders.default_handle),
            tags=self._tags(tags),
            metadata=self._clean_data(metadata or {}),
            timezone=self._optional("timezone", timezone) or "UTC",
        )

    def get_agent(self, agent_id: str) -> Agent:
        agent = self.store.get_agent(agent_id)
        if agent is None:
            raise NotFound(f"Agent {agent_id!r} not found")
        return agent

    def list_agents(self, filters: AgentFilter, page: Page) -> list[Agent]:
        return self.store.list_agents(_strings_checked(filters), self._page(page))

    def update_agent(self, agent_id: str, changes: dict[str, Any]) -> Agent:
        agent = self.get_agent(agent_id)
        if changes.get("name") is not None:
            agent.name = _check_name(changes["name"])
        if changes.get("embedding") is not None:
            agent.embedding = self.embedders.check(changes["embedding"])
        if changes.get("metadata") is not None:
            agent.metadata = self._clean_data(changes["metadata"])
        if changes.get("tags") is not None:
            agent.tags = self._tags(changes["tags"])
        for name in ("description", "system", "agent_type", "model", "timezone"):
            if changes.get(name) is not None:
                setattr(agent, name, validate.string(name, changes[name]))
        agent.updated_at = utcnow()
        self.store.update_agent(agent)
        if changes.get("block_ids") is not None:
            self._replace_blocks(agent.id, changes["block_ids"])
        return agent

    def _replace_blocks(self, agent_id: str, block_ids: Sequence[str]) -> None:
        wanted = list(dict.fromkeys(block_ids))
        for block_id in wanted:
            if self.store.get_block(block_id) is None:
                raise NotFound(f"Block {block_id!r} not found (block_ids)")
        for block in self.store.agent_blocks(agent_id):
            if block.id not in wanted:
                self.store.detach_block(agent_id, block.id)
        for block_id in wanted:
            self.store.attach_block(agent_id, block_id)

    def delete_agent(self, agent_id: str) -> None:
        if not self.store.delete_agent(agent_id):
            raise NotFound(f"Agent {agent_id!r} not found")

    # ------------------------------------------------------------------ blocks

    def _new_block(self, spec: NewBlock, owner: str | None = None) -> Block:
        limit = _block_limit(
            spec.limit if spec.limit is not None else self.settings.default_block_limit
        )
        value = self._clean(spec.value or "", "value")
        _check_limit(value, limit)
        return Block(
            id=new_id("block"),
            label=validate.label(spec.label or ""),
            value=value,
            limit=limit,
            description=self._clean(spec.description, "description")
            if spec.description
            else spec.description,
            read_only=spec.read_only,
            metadata=self._clean_data(spec.metadata or {}),
            tags=self._tags(spec.tags or []),
            owner_agent_id=owner,
        )

    def create_block(self, spec: NewBlock) -> Block:
        block = self._new_block(spec)
        self.store.create_block(block)
        return block

    def get_block(self, block_id: str) -> Block:
        block = self.store.get_block(block_id)
        if block is None:
            raise NotFound(f"Block {block_id!r} not found")
        return block

    def list_blocks(self, filters: BlockFilter, page: Page) -> list[Block]:
        return self.store.list_blocks(_strings_checked(filters), self._page(page))

    def update_block(
        self, block_id: str, changes: dict[str, Any], expected_version: str | None = None
    ) -> Block:
        """Apply `changes`; with `expected_version` (block_version of the block the editor
        started from), a block changed meanwhile is a Conflict instead of being overwritten."""

        def change(block: Block) -> Block:
            if expected_version is not None and block_version(block) != expected_version:
                raise Conflict(
                    f"Block {block.label!r} changed since you opened it (now "
                    f"{len(block.value)} characters); reload to see the new text, then edit again"
                )
            return self._changed(block, changes)

        updated = self.store.modify_block(block_id, change)
        if updated is None:
            raise NotFound(f"Block {block_id!r} not found")
        return updated

    def _changed(self, block: Block, changes: dict[str, Any]) -> Block:
        """A block with the non-null `changes` applied, every limit rule checked."""
        new = dataclasses.replace(block, updated_at=utcnow())
        if changes.get("label") is not None:
            new.label = validate.label(changes["label"])
        if changes.get("limit") is not None:
            new.limit = _block_limit(changes["limit"])
        if changes.get("value") is not None:
            new.value = self._clean(changes["value"], "value")
        elif len(new.value) > new.limit:
            raise LimitExceeded(
                f"Limit ({new.limit}) cannot be less than current value length "
                f"({len(new.value)} characters)"
            )
        _check_limit(new.value, new.limit)
        if changes.get("description") is not None:
            new.description = self._clean(changes["description"], "description")
        if changes.get("read_only") is not None:
            new.read_only = bool(changes["read_only"])
        if changes.get("metadata") is not None:
            new.metadata = self._clean_data(changes["metadata"])
        if changes.get("tags") is not None:
            new.tags = self._tags(changes["tags"])
        return new

    def delete_block(self, block_id: str) -> None:
        if not self.store.delete_block(block_id):
            raise NotFound(f"Block {block_id!r} not found")

    def agent_blocks(self, agent_id: str) -> list[Block]:
        self.get_agent(agent_id)
        return self.store.agent_blocks(agent_id)

    def list_agent_blocks(self, agent_id: str, page: Page) -> list[Block]:
        """Core blocks of an agent, paged in memory (an agent has a handful)."""
        blocks = self.agent_blocks(agent_id)
        blocks.sort(key=lambda b: b.created_at, reverse=not page.ascending)
        return _page_in_memory(blocks, page, "block")

    def get_agent_block(self, agent_id: str, label: str) -> Block:
        for block in self.agent_blocks(agent_id):
            if block.label == label:
                return block
        raise NotFound(f"No block with label {label!r} found for agent {agent_id!r}")

    def update_agent_block(self, agent_id: str, label: str, changes: dict[str, Any]) -> Block:
        block = self.get_agent_block(agent_id, label)
        return self.update_block(block.id, changes)

    def append_to_block(
        self, agent_id: str, label: str, text: str, separator: str = "\n"
    ) -> tuple[Block, int]:
        """Append atomically; drop the oldest characters (whole lines where possible) to fit.

        Returns the block and how many characters were trimmed from its start.
        """
        block = self.get_agent_block(agent_id, label)
        addition = self._clean(text)
        separator = self._clean(separator, "separator")
        trimmed = 0

        def append(current: Block) -> Block:
            nonlocal trimmed
            if len(addition) > current.limit:
                raise LimitExceeded(
                    f"Appended text is {len(addition)} characters; block {label!r} holds at most "
                    f"{current.limit} characters"
                )
            value = current.value + separator + addition if current.value else addition
            trimmed = 0
            if len(value) > current.limit:
                cut = len(value) - current.limit
                newline = value.find("\n", cut)
                # Cut at the next line start when that still leaves the new text whole.
                if newline != -1 and newline + 1 <= len(value) - len(addition):
                    cut = newline + 1
                trimmed = cut
                value = value[cut:]
            return dataclasses.replace(current, value=value, updated_at=utcnow())

        updated = self.store.modify_block(block.id, append)
        if updated is None:
            raise NotFound(f"Block {block.id!r} not found")
        return updated, trimmed

    def replace_in_block(self, agent_id: str, label: str, old: str, new: str) -> Block:
        """Replace the one occurrence of `old` in the block with `new`, atomically: a write
        between reading and writing the block (e.g. an append) is never lost. `old` must occur
        exactly once and the result must fit the block's limit."""
        block = self.get_agent_block(agent_id, label)
        old = validate.string("old", old)
        if not old:
            raise InvalidInput("old: must not be empty")
        replacement = self._clean(new, "new")

        def replace(current: Block) -> Block:
            count = current.value.count(old)
            if count != 1:
                raise Conflict(
                    f"old: the text to replace occurs {count} times in block {label!r}; "
                    "it must occur exactly once"
                )
            value = current.value.replace(old, replacement)
            _check_limit(value, current.limit)
            return dataclasses.replace(current, value=value, updated_at=utcnow())

        updated = self.store.modify_block(block.id, replace)
        if updated is None:
            raise NotFound(f"Block {block.id!r} not found")
        return updated

    def attach_block(self, agent_id: str, block_id: str) -> Agent:
        agent = self.get_agent(agent_id)
        self.get_block(block_id)
        self.store.attach_block(agent_id, block_id)
        return agent

    def detach_block(self, agent_id: str, block_id: str) -> Agent:
        agent = self.get_agent(agent_id)
        if not self.store.detach_block(agent_id, block_id):
            raise NotFound(f"Block {block_id!r} is not attached to agent {agent_id!r}")
        return agent

    def block_agents(self, block_id: str, page: Page) -> list[Agent]:
        self.get_block(block_id)
        return self.store.block_agents(block_id, self._page(page))

    # ------------------------------------------------------------------ passages

    def add_passages(self, agent_id: str, items: Sequence[NewPassage]) -> list[Passage]:
        _agent, passages, vectors = self._passages_to_write(agent_id, items)
        self.store.insert_passages(passages, vectors)
        return passages

    def _passages_to_write(
        self, agent_id: str, items: Sequence[NewPassage]
    ) -> tuple[Agent, list[Passage], np.ndarray]:
        """The agent, its new passages with their context, and their vectors. The context is
        looked up in the store while this thread embeds the texts."""
        agent = self.get_agent(agent_id)
        passages = [self._new_passage(agent, item) for item in items]
        context = _BESIDE_EMBEDDING.submit(self.with_context, passages)
        vectors = self.embedders.embed(agent.embedding, [p.text for p in passages])
        return agent, context.result(), vectors

    def with_context(self, passages: list[Passage]) -> list[Passage]:
        """Give each new passage of one agent its context: the terms of the CONTEXT_PASSAGES
        passages before it (earlier in the list, then the agent's latest stored ones), those
        created at most CONTEXT_WINDOW earlier. A turn of a conversation is then found by the
        words of the turns it answers, a fix by the failure it follows."""
        if not passages:
            return passages
        first = passages[0]
        stored = self.store.list_passages(
            PassageFilter(
                agent_ids=[first.agent_id],
                start=first.created_at - CONTEXT_WINDOW,
                end=first.created_at,
            ),
            Page(limit=CONTEXT_PASSAGES),
        )
        previous: Recent = []
        for passage in stored[::-1]:  # oldest first
            previous = _remember(previous, passage.created_at, passage.text)
        for passage in passages:
            passage.context = _context(previous, passage.created_at)
            previous = _remember(previous, passage.created_at, passage.text)
        return passages

    def with_message_context(self, messages: list[Message]) -> list[Message]:
        """Give each new message its context: the terms of the CONTEXT_PASSAGES messages before
        it in its conversation (earlier in the list, then the conversation's latest stored
        ones), those created at most CONTEXT_WINDOW earlier. A reply is then found by the words
        of the question it answers, as a passage is by the turns before it."""
        recent: dict[tuple[str, str | None], Recent] = {}
        for message in messages:
            key = (message.agent_id, message.conversation_id)
            if key not in recent:
                stored = self.store.list_messages(
                    MessageFilter(
                        agent_ids=[message.agent_id],
                        conversation_id=message.conversation_id,
                        start=message.created_at - CONTEXT_WINDOW,
                        end=message.created_at,
                    ),
                    Page(limit=CONTEXT_PASSAGES),
                )
                recent[key] = []
                for before in stored[::-1]:  # oldest first
                    if before.conversation_id == message.conversation_id:
                        recent[key] = _remember(recent[key], before.created_at, before.content)
            message.context = _context(recent[key], message.created_at)
            recent[key] = _remember(recent[key], message.created_at, message.content)
        return messages

    def reembed(
        self,
        agent_ids: Sequence[str] | None = None,
        handle: str | None = None,
        progress: Callable[[int], None] | None = None,
        batch: int = 256,
    ) -> int:
        """Move agents (all, or `agent_ids`) to the embedding model `handle` (the default one
        if not given) and re-embed every passage of theirs made with another model, `batch`
        at a time. The agent moves first, so new writes use the new model; run again after an
        interruption to finish. Returns how many passages were re-embedded."""
        target = self.embedders.check(handle or self.embedders.default_handle)
        agents = (
            [self.get_agent(agent_id) for agent_id in agent_ids]
            if agent_ids is not None
            else _drain(lambda page: self.store.list_agents(AgentFilter(), page))
        )
        done = 0
        for agent in agents:
            if agent.embedding != target:
                agent.embedding = target
                agent.updated_at = utcnow()
                self.store.update_agent(agent)
            stale: list[Passage] = []
            for page in _pages(
                lambda p, a=agent.id: self.store.list_passages(PassageFilter([a]), p)
            ):
                stale.extend(p for p in page if p.embedding_handle != target)
                while len(stale) >= batch:
                    done += self._reembed(stale[:batch], target, done, progress)
                    stale = stale[batch:]
            if stale:
                done += self._reembed(stale, target, done, progress)
        return done

    def _reembed(
        self,
        passages: list[Passage],
        handle: str,
        done: int,
        progress: Callable[[int], None] | None,
    ) -> int:
        self.store.replace_embeddings(
            passages, self.embedders.embed(handle, [p.text for p in passages]), handle
        )
        if progress is not None:
            progress(done + len(passages))
        return len(passages)

    def keywords_current(self) -> bool:
        """Whether the keyword postings follow this version's analyzer (text.py)."""
        return self.store.analyzer_version() == ANALYZER_VERSION

    def reindex_keywords(self, progress: Callable[[int], None] | None = None) -> int:
        """Re-analyse every passage and recall message, their context included, and rewrite
        the keyword postings (after an analyzer change). Streams them in pages; `progress`
        gets the number done after each batch. Safe to interrupt: the next run starts over."""
        done = 0

        def counted(page: list[Any]) -> list[Any]:
            nonlocal done
            done += len(page)
            if progress is not None:
                progress(done)
            return page

        # Agent by agent: each agent's items come in order from its own index, where a listing
        # of every item would sort the whole table for each page.
        agents = _drain(lambda page: self.store.list_agents(AgentFilter(), page))

        def passages() -> Iterator[list[Passage]]:
            for agent in agents:
                previous: Recent = []
                for page in _pages(
                    lambda p, a=agent.id: self.store.list_passages(PassageFilter([a]), p)
                ):
                    for passage in page:
                        passage.context = _context(previous, passage.created_at)
                        previous = _remember(previous, passage.created_at, passage.text)
                    yield counted(page)

        def messages() -> Iterator[list[Message]]:
            for agent in agents:
                conversations: dict[str | None, Recent] = {}
                for page in _pages(
                    lambda p, a=agent.id: self.store.list_messages(MessageFilter([a]), p)
                ):
                    for message in page:
                        previous = conversations.get(message.conversation_id, [])
                        message.context = _context(previous, message.created_at)
                        conversations[message.conversation_id] = _remember(
                            previous, message.created_at, message.content
                        )
                    yield counted(page)

        self.store.reindex_keywords(passages(), ANALYZER_VERSION, messages())
        return done

    def _new_passage(self, agent: Agent, item: NewPassage) -> Passage:
        text = item.text or ""
        if len(text) > self.settings.max_passage_chars:
            raise TooLarge(
                f"text: {len(text)} characters is over the limit of "
                f"{self.settings.max_passage_chars} characters per passage (max_passage_chars)"
            )
        clean = self._clean(text)
        if not clean.strip():
            raise InvalidInput("text: must not be empty")
        now = utcnow()
        return Passage(
            id=new_id("passage"),
            agent_id=agent.id,
            text=clean,
            embedding_handle=agent.embedding,
            tags=self._tags(item.tags or []),
            metadata=self._clean_data(item.metadata or {}),
            created_at=validate.moment("created_at", item.created_at) if item.created_at else now,
            updated_at=now,
        )

    def add_passages_deduplicated(
        self, agent_id: str, items: Sequence[NewPassage]
    ) -> list[tuple[Passage, bool]]:
        """Insert passages, except that one whose `metadata.type` matches an existing passage
        at `dedupe_similarity` or above is merged into it (its `occurrences` counted, its
        `last_seen` moved, the new metadata laid over the old). Returns (passage, merged)."""
        agent, passages, vectors = self._passages_to_write(agent_id, items)
        results: list[tuple[Passage, bool]] = []
        for passage, vector in zip(passages, vectors, strict=True):
            kind = passage.metadata.get("type")
            twin = None
            if isinstance(kind, str) and kind:
                same_type = PassageFilter(agent_ids=[agent.id], metadata={"type": kind})
                nearest = self.store.vector_search(vector, agent.embedding, same_type, 1)
                if nearest and nearest[0][1] >= self.settings.dedupe_similarity:
                    twin = self.store.get_passages([nearest[0][0]])
            if not twin:
                self.store.insert_passages([passage], vectors=vector[None, :])
                results.append((passage, False))
                continue
            old = twin[0]
            metadata = {
                **old.metadata,
                **passage.metadata,
                "occurrences": int(old.metadata.get("occurrences", 1)) + 1,
                "first_seen": old.metadata.get("first_seen", old.created_at.isoformat()),
                "last_seen": passage.created_at.isoformat(),
            }
            merged = dataclasses.replace(
                old,
                tags=list(dict.fromkeys([*old.tags, *passage.tags])),
                metadata=metadata,
                updated_at=utcnow(),
            )
            self.store.update_passage(merged, None)
            results.append((merged, True))
        return results

    def update_passage(
        self,
        agent_id: str,
        passage_id: str,
        text: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Passage:
        """Change a passage in place: new text is re-embedded; `metadata` keys are merged into
        the existing ones and a key set to None is removed."""
        agent = self.get_agent(agent_id)
        current = self.get_passage(agent_id, passage_id)
        changed = dataclasses.replace(current, updated_at=utcnow())
        vector = None
        if text is not None:
            checked = self._new_passage(agent, NewPassage(text=text)).text
            if checked != current.text:
                changed.text = checked
                vector = self.embedders.embed(current.embedding_handle, [checked])[0]
        if tags is not None:
            changed.tags = self._tags(tags)
        if metadata:
            merged = dict(current.metadata)
            for key, value in metadata.items():  # checked and redacted as a whole below
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            changed.metadata = self._clean_data(merged)
        if not self.store.update_passage(changed, vector):
            raise NotFound(f"Passage {passage_id!r} not found for agent {agent_id!r}")
        return changed

    def prune_passages(
        self,
        agent_id: str,
        filters: PassageFilter,
        older_than: datetime | None = None,
        keep_latest: int | None = None,
        dry_run: bool = False,
    ) -> list[Passage]:
        """Retention: among the agent's passages that pass `filters`, those created before
        `older_than` and those beyond the newest `keep_latest`. Deleted unless `dry_run`."""
        self.get_agent(agent_id)
        if older_than is None and keep_latest is None:
            raise InvalidInput("prune: give older_than_days, keep_latest or both")
        if keep_latest is not None and keep_latest < 0:
            raise InvalidInput(f"keep_latest: must be 0 or more, got {keep_latest}")
        filters = dataclasses.replace(_checked(filters), agent_ids=[agent_id])
        matching = _drain(lambda page: self.store.list_passages(filters, page))  # oldest first
        doomed: dict[str, Passage] = {}
        if keep_latest is not None:
            doomed.update((p.id, p) for p in matching[: max(0, len(matching) - keep_latest)])
        if older_than is not None:
            cutoff = to_utc(older_than)
            doomed.update((p.id, p) for p in matching if p.created_at < cutoff)
        if not dry_run:
            for passage_id in doomed:
                self.store.delete_passage(passage_id)
        return sorted(doomed.values(), key=lambda p: p.created_at)

    def forget_session(self, agent_id: str, session_id: str) -> tuple[int, int]:
        """Delete what one Claude Code session left: its passages (metadata.session_id) and
        its recall messages. Returns (passages, messages) deleted."""
        session_id = validate.string("session_id", session_id)
        if not session_id.strip():
            raise InvalidInput("session_id: must not be empty")
        filters = PassageFilter(metadata={"session_id": session_id})
        passages = self.prune_passages(agent_id, filters, keep_latest=0)
        return len(passages), self.store.delete_messages(agent_id, session_id)

    def count_messages(self, agent_id: str) -> int:
        self.get_agent(agent_id)
        return self.store.count_messages(agent_id)

    def count_passages(self, agent_id: str) -> int:
        self.get_agent(agent_id)
        return self.store.count_passages(agent_id)

    def list_passages(self, filters: PassageFilter, page: Page) -> list[Passage]:
        return self.store.list_passages(_checked(filters), self._page(page))

    def get_passage(self, agent_id: str, passage_id: str) -> Passage:
        """One of the agent's passages; another agent's passage is not found here."""
        self.get_agent(agent_id)
        found = self.store.get_passages([passage_id])
        if not found or found[0].agent_id != agent_id:
            raise NotFound(f"Passage {passage_id!r} not found for agent {agent_id!r}")
        return found[0]

    def delete_passage(self, agent_id: str, passage_id: str) -> None:
        self.get_passage(agent_id, passage_id)
        if not self.store.delete_passage(passage_id):
            raise NotFound(f"Passage {passage_id!r} not found for agent {agent_id!r}")

    def search_passages(
        self,
        query: str,
        filters: PassageFilter,
        top_k: int,
        mode: SearchMode = "hybrid",
        embedding: str | None = None,
    ) -> list[Scored]:
        """Rank passages that pass `filters`. Hybrid: the BM25 and the vector candidates, each
        scored lexical_weight * BM25 / the best BM25 + vector_weight * cosine. No relevance
        threshold: callers that inject context apply their own."""
        if mode not in SEARCH_MODES:
            raise InvalidInput(f"mode: must be one of {', '.join(SEARCH_MODES)}, got {mode!r}")
        if top_k < 1 or top_k > self.settings.max_top_k:
            raise InvalidInput(f"top_k: must be between 1 and {self.settings.max_top_k}")
        query = validate.string("query", query)
        if not query.strip():
            return []
        with SEARCH_SECONDS.labels(mode).time():
            return self._search(query, _checked(filters), top_k, mode, embedding)

    def _search(
        self,
        query: str,
        filters: PassageFilter,
        top_k: int,
        mode: SearchMode,
        embedding: str | None,
    ) -> list[Scored]:
        if mode == "lexical":
            ranked = self.store.lexical_search(query, filters, top_k)
            return self._scored(ranked, {})
        depth = max(MIN_CANDIDATES, 4 * top_k)
        handle = embedding or self.embedders.default_handle
        agents = filters.agent_ids or []
        if len(agents) == 1 and self.store.mixed_embeddings(agents[0], handle):
            raise Conflict(
                f"some of this agent's passages are embedded with another model than "
                f"{handle}: a vector search would leave them out. Run "
                "'mnemo reindex --embeddings' to re-embed them; mode=lexical works meanwhile"
            )
        if mode == "vector":
            vector = self.embedders.embed_query(handle, query)
            nearest = self.store.vector_search(vector, handle, filters, depth)
            return self._scored(nearest[:top_k], dict(nearest))
        # The keyword side runs in the database while this thread embeds the query and searches
        # vectors; once the query vector is ready, it also fetches its candidates' cosines. The
        # two sides overlap instead of adding up.
        query_vector: Future[np.ndarray] = Future()

        def keyword_side() -> tuple[list[tuple[str, float]], dict[str, float]]:
            keyword = self.store.lexical_search(query, filters, depth)
            ids = [pid for pid, _ in keyword]
            return keyword, self.store.similarities(query_vector.result(), handle, ids)

        lexical = _BESIDE_EMBEDDING.submit(keyword_side)
        try:
            vector = self.embedders.embed_query(handle, query)
        except BaseException as exc:
            query_vector.set_exception(exc)
            raise
        query_vector.set_result(vector)
        nearest = self.store.vector_search(vector, handle, filters, depth)
        keyword, similarity = lexical.result()
        similarity.update(nearest)
        fused = fuse_scores(
            keyword, similarity, self.settings.lexical_weight, self.settings.vector_weight
        )
        return self._scored(fused[:top_k], similarity)

    def _scored(
        self, ranked: list[tuple[str, float]], similarity: dict[str, float]
    ) -> list[Scored]:
        by_id = {p.id: p for p in self.store.get_passages([pid for pid, _ in ranked])}
        return [
            Scored(by_id[pid], score, similarity.get(pid)) for pid, score in ranked if pid in by_id
        ]

    # ------------------------------------------------------------------ messages (recall)

    def add_messages(self, agent_id: str, items: Sequence[NewMessage]) -> list[Message]:
        self.get_agent(agent_id)
        messages = self.with_message_context(self._new_messages(agent_id, items))
        self.store.insert_messages(messages)
        return messages

    def _new_messages(self, agent_id: str, items: Sequence[NewMessage]) -> list[Message]:
        messages = []
        now = utcnow()
        for position, item in enumerate(items):
            if item.message_type not in MESSAGE_TYPES:
                raise InvalidInput(
                    f"messages[{position}].message_type: must be one of "
                    f"{', '.join(MESSAGE_TYPES)}, got {item.message_type!r}"
                )
            if len(item.content) > self.settings.max_passage_chars:
                raise TooLarge(
                    f"messages[{position}].content: {len(item.content)} characters is over the "
                    f"limit of {self.settings.max_passage_chars} (max_passage_chars)"
                )
            field = f"messages[{position}]"
            messages.append(
                Message(
                    id=new_id("message"),
                    agent_id=agent_id,
                    message_type=item.message_type,
                    content=self._clean(item.content, f"{field}.content"),
                    conversation_id=self._optional(
                        f"{field}.conversation_id", item.conversation_id
                    ),
                    tool_name=self._optional(f"{field}.tool_name", item.tool_name),
                    tool_call_id=self._optional(f"{field}.tool_call_id", item.tool_call_id),
                    is_err=item.is_err,
                    metadata=self._clean_data(item.metadata or {}, f"{field}.metadata"),
                    created_at=validate.moment(f"{field}.created_at", item.created_at)
                    if item.created_at
                    else now,
                )
            )
        return messages

    def list_messages(self, filters: MessageFilter, page: Page) -> list[Message]:
        return self.store.list_messages(_checked_messages(filters), self._page(page))

    def search_messages(
        self, query: str, filters: MessageFilter, limit: int
    ) -> list[tuple[Message, float]]:
        if limit < 1 or limit > self.settings.max_top_k:
            raise InvalidInput(f"limit: must be between 1 and {self.settings.max_top_k}")
        query = validate.string("query", query)
        if not query.strip():
            return []
        return self.store.search_messages(query, _checked_messages(filters), limit)

    # ------------------------------------------------------------------ export / import

    def export_agent(self, agent_id: str, include_messages: bool = True) -> dict[str, Any]:
        agent = self.get_agent(agent_id)
        blocks = self.store.agent_blocks(agent_id)
        messages = (
            _drain(lambda page: self.store.list_messages(MessageFilter([agent_id]), page))
            if include_messages
            else []
        )
        passages = _drain(lambda page: self.store.list_passages(PassageFilter([agent_id]), page))
        return agent_file.dump(agent, blocks, messages, passages, self.embedding_config(agent))

    def import_agent_file(
        self,
        data: Any,
        *,
        name: str | None = None,
        append_copy_suffix: bool = True,
        strip_messages: bool = False,
        embedding: str | None = None,
    ) -> list[str]:
        """Create the file's agents with their blocks, messages and passages in one
        transaction: everything is checked and embedded first, and a bad item anywhere leaves
        nothing behind."""
        parsed = agent_file.load(data)
        size = len(parsed.blocks) + sum(
            len(spec.passages) + (0 if strip_messages else len(spec.messages))
            for spec in parsed.agents
        )
        if size > self.settings.max_import_items:
            raise TooLarge(
                f"agent file: {size} blocks, messages and passages is over the limit of "
                f"{self.settings.max_import_items} per import (max_import_items); split the "
                "file, or restore a complete backup with 'mnemo import'"
            )
        if embedding:
            self.embedders.check(embedding)
        blocks: dict[str, Block] = {}
        contents: list[AgentContents] = []
        for spec in parsed.agents:
            agent_name = name or spec.name
            if not name and append_copy_suffix:
                agent_name = f"{agent_name}_copy"
            agent = self._new_agent(
                name=agent_name,
                description=spec.description,
                system=spec.system,
                agent_type=spec.agent_type,
                model=spec.model,
                embedding=embedding or self._known_or_default(spec.embedding),
                tags=spec.tags,
                metadata=spec.metadata,
                timezone=spec.timezone,
            )
            new_blocks: list[Block] = []
            for file_block_id in dict.fromkeys(spec.block_ids):
                if file_block_id not in blocks:
                    block_spec = parsed.blocks.get(file_block_id)
                    if block_spec is None:
                        raise InvalidInput(f"agent file: block {file_block_id!r} is not defined")
                    blocks[file_block_id] = self._new_block(block_spec, owner=agent.id)
                    new_blocks.append(blocks[file_block_id])
            messages = (
                []
                if strip_messages
                else self.with_message_context(self._new_messages(agent.id, spec.messages))
            )
            passages = self.with_context([self._new_passage(agent, item) for item in spec.passages])
            vectors = self.embedders.embed(agent.embedding, [p.text for p in passages])
            contents.append(
                AgentContents(
                    agent=agent,
                    new_blocks=new_blocks,
                    block_ids=[
                        blocks[b].id
                        for b in dict.fromkeys(spec.block_ids)
                        if blocks[b].owner_agent_id != agent.id
                    ],
                    messages=messages,
                    passages=passages,
                    vectors=vectors,
                )
            )
        self.store.import_agents(contents)
        return [item.agent.id for item in contents]

    def _known_or_default(self, handle: str | None) -> str:
        return handle if handle in self.embedders.handles else self.embedders.default_handle

    def embedding_config(self, agent: Agent) -> dict[str, Any]:
        provider, _, model = agent.embedding.partition("/")
        bundled = LOCAL_MODELS.get(agent.embedding)
        dim = bundled.dim if bundled else None
        return {
            "handle": agent.embedding,
            "embedding_endpoint_type": "openai" if provider == "openai" else "local",
            "embedding_model": model or agent.embedding,
            "embedding_dim": dim,
            "embedding_chunk_size": 300,
        }

    # ------------------------------------------------------------------ helpers

    def _page(self, page: Page) -> Page:
        if page.limit < 1 or page.limit > self.settings.max_page_size:
            raise InvalidInput(f"limit: must be between 1 and {self.settings.max_page_size}")
        for name in ("after", "before"):
            cursor = getattr(page, name)
            if cursor is not None and not validate.is_id_like(cursor):
                raise InvalidInput(f"{name}: not an id (pagination cursor): {cursor[:80]!r}")
        return page


def fuse_scores(
    keyword: list[tuple[str, float]],
    similarity: dict[str, float],
    lexical_weight: float,
    vector_weight: float,
) -> list[tuple[str, float]]:
    """Every candidate of either ranker, scored lexical_weight * BM25 / the best BM25 +
    vector_weight * cosine (a missing side counts 0), best first, ties to the smaller id."""
    best = max((score for _, score in keyword), default=0.0)
    lexical = {pid: score / best for pid, score in keyword} if best > 0 else {}
    scores = {
        pid: lexical_weight * lexical.get(pid, 0.0) + vector_weight * similarity.get(pid, 0.0)
        for pid in {*lexical, *similarity}
    }
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def _check_name(name: str) -> str:
    return validate.name_like("name", name, 200)


def _block_limit(limit: int) -> int:
    if limit <= 0:
        raise InvalidInput(f"limit: must be a positive number of characters, got {limit}")
    return validate.integer("limit", limit, 1, validate.MAX_BLOCK_LIMIT)


def _strings_checked(filters: Any) -> Any:
    """A filter dataclass whose strings (and lists of strings) passed validate.string."""
    changes: dict[str, Any] = {}
    for spec in dataclasses.fields(filters):
        value = getattr(filters, spec.name)
        if isinstance(value, str):
            changes[spec.name] = validate.string(spec.name, value)
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            changes[spec.name] = [validate.string(spec.name, item) for item in value]
    return dataclasses.replace(filters, **changes)


def _checked(filters: PassageFilter) -> PassageFilter:
    """`filters` with every value one the stores can compare (validate.py)."""
    return dataclasses.replace(
        filters,
        tags=validate.filter_tags(filters.tags),
        start=validate.moment("start", filters.start) if filters.start else None,
        end=validate.moment("end", filters.end) if filters.end else None,
        metadata=validate.metadata_filter(filters.metadata),
        contains=validate.string("search", filters.contains) if filters.contains else None,
    )


def _checked_messages(filters: MessageFilter) -> MessageFilter:
    return dataclasses.replace(
        _strings_checked(filters),
        start=validate.moment("start", filters.start) if filters.start else None,
        end=validate.moment("end", filters.end) if filters.end else None,
    )


def block_version(block: Block) -> str:
    """What optimistic concurrency compares: the time of the block's last change."""
    return format_time(block.updated_at)


def _check_limit(value: str, limit: int) -> None:
    if len(value) > limit:
        raise LimitExceeded(
            f"Edit failed: Exceeds {limit} character limit (requested {len(value)}). "
            f"Value length ({len(value)} characters) exceeds block limit ({limit} characters)"
        )


def _page_in_memory(items: list[Any], page: Page, what: str) -> list[Any]:
    ids = [item.id for item in items]
    start, end = 0, len(items)
    if page.after:
        if page.after not in ids:
            raise NotFound(f"No {what} found with id {page.after!r} (pagination cursor)")
        start = ids.index(page.after) + 1
    if page.before:
        if page.before not in ids:
            raise NotFound(f"No {what} found with id {page.before!r} (pagination cursor)")
        end = ids.index(page.before)
        if not page.after:
            return items[max(start, end - page.limit) : end]
    return items[start:end][: page.limit]


def _drain(fetch: Any, batch: int = 500) -> list[Any]:
    """Every item of a paged store listing, oldest first."""
    return [item for page in _pages(fetch, batch) for item in page]


def _pages(fetch: Any, batch: int = 500) -> Iterator[list[Any]]:
    """The pages of a store listing, oldest first."""
    after = None
    while True:
        page = fetch(Page(limit=batch, after=after, ascending=True))
        if page:
            yield page
        if len(page) < batch:
            return
        after = page[-1].id


def _remember(previous: Recent, created_at: datetime, text: str) -> Recent:
    """The last CONTEXT_PASSAGES items of a stream with their terms, once one created at
    `created_at` with `text` is written."""
    return [*previous, (created_at, analyze(text))][-CONTEXT_PASSAGES:]


def _context(previous: Recent, created_at: datetime) -> list[str]:
    """The terms an item created at `created_at` is also found by: those of the items before
    it (given oldest first, with their terms), nearest first, of each created at most
    CONTEXT_WINDOW earlier."""
    context: list[str] = []
    for before, terms in reversed(previous):
        if timedelta(0) <= created_at - before <= CONTEXT_WINDOW:
            context.extend(terms)
    return context[:MAX_CONTEXT_TERMS]

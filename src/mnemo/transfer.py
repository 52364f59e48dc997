"""Copying a whole memory store to another backend (`mnemo migrate-data`).

Ids, timestamps, embeddings, shared-block links and messages are preserved. The copy is
resumable: anything already present in the target (by id) is skipped, so a run that was
interrupted is simply run again. Counts are compared at the end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import numpy as np

from mnemo.models import Agent
from mnemo.store.base import AgentFilter, BlockFilter, MessageFilter, Page, PassageFilter, Store

BATCH = 500


BUILDING_INDEXES = "building search indexes (about 10 minutes per million passages on two cores)…"


class Progress:
    """One line on stderr, rewritten in place: `passages 12,000/100,000 (3,400/s)`."""

    def __init__(self, totals: dict[str, int], stream: TextIO = sys.stderr) -> None:
        self.totals = totals
        self.done = dict.fromkeys(totals, 0)
        self.stream = stream
        self.started = time.monotonic()
        self.last = 0.0

    def advance(self, kind: str, n: int) -> None:
        self.done[kind] += n
        now = time.monotonic()
        if now - self.last > 0.2 or self.done[kind] >= self.totals[kind]:
            self.last = now
            rate = self.done[kind] / max(now - self.started, 1e-6)
            self.stream.write(
                f"\r{kind:9s} {self.done[kind]:>10,}/{self.totals[kind]:,} ({rate:,.0f}/s)   "
            )
            self.stream.flush()

    def note(self, text: str) -> None:
        self.stream.write(f"\n{text}")
        self.stream.flush()

    def section(self, kind: str) -> None:
        self.started = time.monotonic()
        self.stream.write("\n" if any(self.done.values()) else "")


def _pages(fetch: Callable[[Page], list[Any]]) -> Iterator[list[Any]]:
    after = None
    while True:
        page = fetch(Page(limit=BATCH, after=after, ascending=True))
        if not page:
            return
        yield page
        after = page[-1].id


def copy_store(source: Store, target: Store, progress: Progress | None = None) -> dict[str, Any]:
    """Copy everything from `source` into `target`; returns both stores' counts."""
    totals = source.counts()
    progress = progress or Progress(totals)
    copied = dict.fromkeys(totals, 0)

    progress.section("blocks")
    for page in _pages(lambda p: source.list_blocks(BlockFilter(), p)):
        for block in page:
            if target.get_block(block.id) is None:
                target.create_block(block)
                copied["blocks"] += 1
        progress.advance("blocks", len(page))

    progress.section("agents")
    agent_ids: list[str] = []
    for page in _pages(lambda p: source.list_agents(AgentFilter(), p)):
        for agent in page:
            agent_ids.append(agent.id)
            links = [b.id for b in source.agent_blocks(agent.id)]
            copied["agents"] += restore_agent(target, agent, links)
        progress.advance("agents", len(page))

    progress.section("passages")
    with target.bulk_load() as deferred:
        _copy_passages(source, target, agent_ids, progress, copied)
        if deferred:
            progress.note(BUILDING_INDEXES)

    progress.section("messages")
    for agent_id in agent_ids:
        for page in _pages(lambda p, a=agent_id: source.list_messages(MessageFilter([a]), p)):
            target.insert_messages(page)  # ids already present are skipped
            copied["messages"] += len(page)
            progress.advance("messages", len(page))
    progress.stream.write("\n")
    return {"source": totals, "target": target.counts(), "copied": copied}


def restore_agent(target: Store, agent: Agent, block_ids: list[str]) -> int:
    """Create the agent with its block links, or add the links it lacks. Returns 1 if created."""
    if target.get_agent(agent.id) is None:
        target.create_agent(agent, [], block_ids)
        return 1
    present = {b.id for b in target.agent_blocks(agent.id)}
    for block_id in block_ids:
        if block_id not in present:
            target.attach_block(agent.id, block_id)
    return 0


def _copy_passages(
    source: Store, target: Store, agent_ids: list[str], progress: Progress, copied: dict[str, int]
) -> None:
    for agent_id in agent_ids:
        for page in _pages(lambda p, a=agent_id: source.list_passages(PassageFilter([a]), p)):
            existing = {p.id for p in target.get_passages([p.id for p in page])}
            missing = [p for p in page if p.id not in existing]
            if missing:
                vectors = source.passage_vectors([p.id for p in missing])
                with_vectors = [p for p in missing if p.id in vectors]
                if with_vectors:
                    target.insert_passages(
                        with_vectors, np.stack([vectors[p.id] for p in with_vectors])
                    )
                copied["passages"] += len(with_vectors)
            progress.advance("passages", len(page))

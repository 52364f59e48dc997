"""Search latency at sizes whose real embedding would take this machine too long to seed.

One agent of `--passages` passages is written straight into a SQLite store (texts as
bench/latency.py makes them, analysed and indexed for keywords as the server would, with
random unit vectors of the default model's dimension), then a real `mnemo serve` on that
store answers `--runs` hybrid searches over HTTP, each query embedded by the real model. An
exact vector scan costs the same for random vectors as for real ones; what the vectors cannot
show is recall, which bench/locomo.py measures.

    .venv/bin/python bench/scale_search.py --passages 100000
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from latency import rss_mb, sentences, serving, timed, vocabulary
from mnemo.config import DEFAULT_EMBEDDING, Settings
from mnemo.embed import EmbedderRegistry
from mnemo.embed.catalog import LOCAL_MODELS
from mnemo.models import Agent, Passage, new_id
from mnemo.service import MemoryService
from mnemo.store.sqlite import SQLiteStore
from mnemo.text import ANALYZER_VERSION

BATCH = 5000


def seed(data: Path, count: int, words: list[str]) -> str:
    settings = Settings(data_dir=data)
    store = SQLiteStore(settings.sqlite_path)
    store.migrate()
    service = MemoryService(store, EmbedderRegistry(settings), settings)  # loads no model
    agent = Agent(id=new_id("agent"), name=f"scale-{count}", embedding=DEFAULT_EMBEDDING)
    store.create_agent(agent, [], [])
    rng = np.random.default_rng(7)
    texts = random.Random(7)
    dim = LOCAL_MODELS[DEFAULT_EMBEDDING].dim
    for start_at in range(0, count, BATCH):
        size = min(BATCH, count - start_at)
        passages = [
            Passage(
                id=new_id("passage"),
                agent_id=agent.id,
                text=text,
                embedding_handle=DEFAULT_EMBEDDING,
            )
            for text in sentences(texts, words, size)
        ]
        service.with_context(passages)
        vectors = rng.standard_normal((size, dim)).astype(np.float32)
        store.insert_passages(passages, vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
        print(f"  seeded {start_at + size:,}/{count:,}", file=sys.stderr)
    store.reindex_keywords([], ANALYZER_VERSION)  # indexed by this analyzer: nothing to redo
    store.close()
    return agent.id


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    words = vocabulary()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        began = time.perf_counter()
        agent_id = seed(data, args.passages, words)
        seeded = time.perf_counter() - began
        with serving(data) as (process, url, ready):
            queries = sentences(random.Random(8), words, args.runs)
            search_url = f"/v1/agents/{agent_id}/archival-memory/search"
            with httpx.Client(base_url=url, timeout=120) as client:
                client.get(search_url, params={"query": "warm", "top_k": 10}).raise_for_status()
                search = timed(
                    lambda i: client.get(
                        search_url, params={"query": queries[i], "top_k": 10}
                    ).raise_for_status(),
                    args.runs,
                )
                health = timed(lambda i: client.get("/v1/health/"), args.runs)
            results = {
                "passages": args.passages,
                "embedding": DEFAULT_EMBEDDING,
                "seed_seconds": round(seeded, 1),
                "start_to_ready_s": round(ready, 2),
                "search_hybrid_top10": search,
                "baseline_health_roundtrip": health,
                "rss_mb": round(rss_mb(process.pid), 1),
            }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

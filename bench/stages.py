"""Where a hybrid search's time goes, per backend: each store call and the query embedding,
timed inside the service (no HTTP), on the same passages and queries for both backends.

    .venv/bin/python bench/stages.py --passages 1000 --backends sqlite,postgres

The keyword side runs in its own thread while the query is embedded and the vectors searched
(service.py), so stage times overlap: the total is less than their sum.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import postgres_url, sentences, vocabulary
from mnemo.api.app import build_service
from mnemo.config import Settings
from mnemo.models import NewPassage
from mnemo.store.base import PassageFilter

STAGES = (
    "get_agent",
    "mixed_embeddings",
    "lexical_search",
    "similarities",
    "vector_search",
    "get_passages",
)


def timed_calls(target: Any, names: tuple[str, ...], samples: dict[str, list[float]]) -> None:
    """Wrap `target`'s methods `names` so each call's wall time lands in `samples`."""
    for name in names:
        method = getattr(target, name)

        @functools.wraps(method)
        def wrapper(*args: Any, _method: Any = method, _name: str = name, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return _method(*args, **kwargs)
            finally:
                samples[_name].append((time.perf_counter() - began) * 1000)

        setattr(target, name, wrapper)


def run(settings: Settings, texts: list[str], queries: list[str]) -> dict[str, Any]:
    service = build_service(settings)
    try:
        agent = service.create_agent(name="stages")
        for start in range(0, len(texts), 500):
            service.add_passages(agent.id, [NewPassage(text=t) for t in texts[start : start + 500]])
        samples: dict[str, list[float]] = defaultdict(list)
        timed_calls(service.store, STAGES, samples)
        timed_calls(service.embedders, ("embed_query",), samples)
        filters = PassageFilter(agent_ids=[agent.id])
        for query in queries[:10]:  # warm caches and connections
            service.search_passages(query, filters, 10, "hybrid", agent.embedding)
        samples.clear()
        for query in queries:
            began = time.perf_counter()
            service.get_agent(agent.id)  # what the route does first
            service.search_passages(query, filters, 10, "hybrid", agent.embedding)
            samples["total"].append((time.perf_counter() - began) * 1000)
        return {
            name: round(statistics.median(values), 2) for name, values in sorted(samples.items())
        }
    finally:
        service.store.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--passages", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--database-url", help="PostgreSQL to use (default: an embedded one)")
    args = parser.parse_args()
    rng = random.Random(5)
    words = vocabulary()
    texts = sentences(rng, words, args.passages)
    queries = sentences(rng, words, args.runs)
    results: dict[str, Any] = {"passages": args.passages, "runs": args.runs, "p50_ms": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            values: dict[str, Any] = {"data_dir": str(Path(tmp) / backend)}
            with ExitStack() as stack:
                if backend == "postgres":
                    values["database_url"] = stack.enter_context(
                        postgres_url(args.database_url, Path(tmp))
                    )
                results["p50_ms"][backend] = run(Settings.typed(values), texts, queries)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""Where a hybrid search's time goes, per backend: each store call and the query embedding,
timed inside the service (no HTTP), on the same passages and queries for both backends.

    .venv/bin/python bench/stages.py --passages 1000 --backends sqlite,postgres
    .venv/bin/python bench/stages.py --embedding mnemo/all-MiniLM-L6-v2
    .venv/bin/python bench/stages.py --backends postgres --explain plans.md

The keyword side runs in its own thread while the query is embedded and the vectors searched
(service.py), so stage times overlap: the total is less than their sum.

`--explain FILE` then writes, for the embedded PostgreSQL, `EXPLAIN (ANALYZE, BUFFERS)` of every
statement one search and one insert run (auto_explain, loaded for the database, reads them
from the server's log), in the order they ran.
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

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import add_embedding_option, postgres_log, postgres_url, sentences, vocabulary
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


AUTO_EXPLAIN = {
    "session_preload_libraries": "auto_explain",
    "auto_explain.log_min_duration": "0",
    "auto_explain.log_analyze": "on",
    "auto_explain.log_buffers": "on",
    "auto_explain.log_timing": "on",
    "auto_explain.log_verbose": "off",
    "auto_explain.log_parameter_max_length": "120",
}
WARM_CALLS = 5  # before the explained one: every pooled connection has run the statements


def run(settings: Settings, texts: list[str], queries: list[str]) -> tuple[dict[str, float], str]:
    """p50 of each stage, and the agent that holds the passages."""
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
        p50 = {name: round(statistics.median(v), 2) for name, v in sorted(samples.items())}
        return p50, agent.id
    finally:
        service.store.close()


def explain(settings: Settings, log: Path, agent_id: str, query: str, text: str) -> str:
    """Markdown: the plan of each statement one hybrid search and one insert send, on a fresh
    service whose connections load auto_explain (the database holds `run`'s agent)."""
    assert settings.database_url
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        database = conn.execute("SELECT current_database()").fetchone()[0]
        for name, value in AUTO_EXPLAIN.items():
            conn.execute(f"ALTER DATABASE \"{database}\" SET {name} = '{value}'")
    service = build_service(settings)
    sections = []
    try:
        agent = service.get_agent(agent_id)
        filters = PassageFilter(agent_ids=[agent.id])

        def search() -> None:
            service.get_agent(agent.id)  # what the route does first
            service.search_passages(query, filters, 10, "hybrid", agent.embedding)

        def insert() -> None:
            service.add_passages(agent.id, [NewPassage(text=text)])

        for label, call in (("search", search), ("insert", insert)):
            for _ in range(WARM_CALLS):  # as in a steady server: connections warm, caches full
                call()
            start = log.stat().st_size
            call()
            with log.open(encoding="utf-8", errors="replace") as handle:
                handle.seek(start)
                plans = logged_plans(handle.read())
            sections.append(f"## one {label}: {len(plans)} planned statements\n")
            sections.extend(f"```\n{plan}\n```\n" for plan in plans)
    finally:
        service.store.close()
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{database}" RESET ALL')
    return "\n".join(sections)


def logged_plans(log_text: str) -> list[str]:
    """The plans auto_explain wrote: each a `LOG:  duration: … plan:` line and the tab-indented
    lines after it."""
    plans: list[list[str]] = []
    current: list[str] | None = None
    for line in log_text.splitlines():
        if "LOG:  duration:" in line and line.rstrip().endswith("plan:"):
            current = [line.split("LOG:  ", 1)[1]]
            plans.append(current)
        elif current is not None and line.startswith("\t"):
            current.append(line[1:])
        else:
            current = None
    return ["\n".join(plan) for plan in plans]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--passages", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--database-url", help="PostgreSQL to use (default: an embedded one)")
    add_embedding_option(parser, "the service's default embedding model")
    parser.add_argument(
        "--explain", type=Path, help="write the plans of one search and one insert here"
    )
    args = parser.parse_args()
    if args.explain and args.database_url:
        parser.error("--explain reads the embedded PostgreSQL's log: leave out --database-url")
    rng = random.Random(5)
    words = vocabulary()
    texts = sentences(rng, words, args.passages)
    queries = sentences(rng, words, args.runs)
    results: dict[str, Any] = {
        "passages": args.passages,
        "runs": args.runs,
        "embedding": args.embedding,
        "p50_ms": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            values: dict[str, Any] = {
                "data_dir": str(Path(tmp) / backend),
                "default_embedding": args.embedding,
            }
            with ExitStack() as stack:
                if backend == "postgres":
                    values["database_url"] = stack.enter_context(
                        postgres_url(args.database_url, Path(tmp))
                    )
                settings = Settings.typed(values)
                results["p50_ms"][backend], agent_id = run(settings, texts, queries)
                if backend == "postgres" and args.explain:
                    log = postgres_log(Path(tmp))
                    plans = explain(settings, log, agent_id, queries[0], texts[0])
                    args.explain.write_text(plans, encoding="utf-8")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

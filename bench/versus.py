"""This checkout against another revision of mnemo, over HTTP, in one run: search and insert
p50 of each, and the ratio.

    .venv/bin/python bench/versus.py --baseline HEAD~3
    .venv/bin/python bench/versus.py --baseline main --backend postgres
    .venv/bin/python bench/versus.py --baseline HEAD~1 --query-words 300   # long prompts
    .venv/bin/python bench/versus.py --baseline HEAD~1 --messages 100000   # recall messages

Both servers run at once, on the same seeded passages (each its own database: a SQLite data
directory or an embedded PostgreSQL), and the timed requests alternate between them in rounds,
so a slower spell of the machine falls on both alike. Run-to-run spread on a shared two-core
machine is larger than most single changes; two versions measured in one run are not.
The baseline is checked out into a temporary git worktree and served from its own `src/`.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import (
    ROOT,
    Target,
    add_embedding_option,
    alternate,
    import_conversation,
    measure,
    postgres_url,
    seed,
    sentences,
    serving,
    vocabulary,
)

SESSION_MESSAGES = 50  # messages a session's import holds
SEED_SESSIONS = 100  # sessions seeded between progress lines


@contextmanager
def worktree(revision: str, parent: Path) -> Iterator[Path]:
    """`revision` checked out under `parent` for as long as the block runs."""
    path = parent / "baseline"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(path), revision],
        check=True,
    )
    try:
        yield path
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=False
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", required=True, help="git revision to compare against")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    add_embedding_option(parser)
    parser.add_argument("--passages", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=400, help="timed requests of each kind")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument(
        "--query-words",
        type=int,
        help="search with queries of this many words (default: 8 to 24, as the other benches)",
    )
    parser.add_argument(
        "--messages",
        type=int,
        default=0,
        help="also give the agent this many recall messages (sessions of SESSION_MESSAGES,"
        " zipf words) and time message search and a session's import",
    )
    args = parser.parse_args()
    words = vocabulary()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        sources = {
            args.baseline: stack.enter_context(worktree(args.baseline, Path(tmp))) / "src",
            "this checkout": ROOT / "src",
        }
        targets = {}
        for number, (name, source) in enumerate(sources.items()):
            workdir = Path(tmp) / f"server{number}"
            workdir.mkdir()
            env = {"PYTHONPATH": str(source), "MNEMO_DEFAULT_EMBEDDING": args.embedding}
            if args.backend == "postgres":
                env["MNEMO_DATABASE_URL"] = stack.enter_context(postgres_url(None, workdir))
            _process, url, _seconds = stack.enter_context(serving(workdir / "data", env))
            client = stack.enter_context(httpx.Client(base_url=url, timeout=60))
            targets[name] = Target(client, seed(client, args.passages, random.Random(7), words))
        queries = sentences(random.Random(3), words, args.runs)
        if args.query_words:
            rng = random.Random(3)
            queries = [" ".join(rng.choices(words, k=args.query_words)) for _ in queries]
        inserts = sentences(random.Random(4), words, args.runs)
        timings = measure(targets, queries, inserts, args.rounds)
        if args.messages:
            for target in targets.values():
                seed_messages(target, args.messages, words)
            sessions = sentences(random.Random(5), words, args.runs * SESSION_MESSAGES // 10, True)
            recall = alternate(
                targets,
                {
                    "message search": (Target.search_messages, queries),
                    "session import": (
                        Target.import_conversation,
                        [
                            sessions[i : i + SESSION_MESSAGES]
                            for i in range(0, len(sessions), SESSION_MESSAGES)
                        ],
                    ),
                },
                args.rounds,
            )
    (baseline_search, baseline_insert), (search, insert) = timings.values()
    result = {
        "backend": args.backend,
        "embedding": args.embedding,
        "passages": args.passages,
        "query_words": args.query_words or "8-24",
        "p50_ms": {
            name: {"search": s["p50_ms"], "insert": i["p50_ms"]} for name, (s, i) in timings.items()
        },
        "this_over_baseline": {
            "search": round(search["p50_ms"] / baseline_search["p50_ms"], 3),
            "insert": round(insert["p50_ms"] / baseline_insert["p50_ms"], 3),
        },
    }
    if args.messages:
        (_, baseline_recall), (_, this_recall) = recall.items()
        result["messages"] = args.messages
        result["recall_messages_ms"] = recall
        result["this_over_baseline"] |= {
            kind: round(this_recall[kind]["p50_ms"] / baseline_recall[kind]["p50_ms"], 3)
            for kind in this_recall
        }
    print(json.dumps(result, indent=2))


def seed_messages(target: Target, count: int, words: list[str]) -> None:
    """`count` messages of zipf-distributed words, in sessions of SESSION_MESSAGES."""
    rng = random.Random(9)
    for start in range(0, count, SEED_SESSIONS * SESSION_MESSAGES):
        size = min(SEED_SESSIONS * SESSION_MESSAGES, count - start)
        texts = sentences(rng, words, size, True)
        for i in range(0, size, SESSION_MESSAGES):
            import_conversation(target.client, target.agent_id, texts[i : i + SESSION_MESSAGES])
        print(f"  seeded {start + size}/{count} messages", file=sys.stderr)


if __name__ == "__main__":
    main()

"""Availability under load: how fast the liveness probe answers while the server is busy.

One server (SQLite, 1,000 passages), probed with `GET /v1/health/` every 20 ms from its own
connection during each load, and once idle as the baseline of the same run:

- 500 concurrent searches (one connection each, all sent at once);
- 60 concurrent MCP `tools/call memory_search` over `/mcp` (each tool calls the server back);
- 2,000 idle connections that never send a request (the server is capped at 1,000 by default).

    .venv/bin/python bench/availability.py [--searches 500] [--mcp 60] [--idle 2000]

Budgets (issue #22): health p99 <= 100 ms during the searches and during the MCP calls; no MCP
call fails; with the idle connections open, every probe still answers.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import resource
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from mcp import Client

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import seed, sentences, serving, vocabulary


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "max_ms": ordered[-1] * 1000,
    }


def probe(url: str, stop: Any, samples: Any, failures: Any) -> None:
    """Health every 20 ms on a connection of its own until `stop` is set; runs in a process of
    its own, so the load generator's event loop cannot delay it."""
    with httpx.Client(base_url=url, timeout=10) as client:
        while not stop.is_set():
            began = time.perf_counter()
            try:
                response = client.get("/v1/health/")
                if response.status_code != 200:
                    failures.append(f"health {response.status_code}")
            except httpx.HTTPError as exc:
                failures.append(f"health {type(exc).__name__}")
            samples.append(time.perf_counter() - began)
            time.sleep(0.02)


async def during(url: str, load: Any) -> tuple[dict[str, float], Any, list[str]]:
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        stop, samples, failures = manager.Event(), manager.list(), manager.list()
        prober = context.Process(target=probe, args=(url, stop, samples, failures))
        prober.start()
        await asyncio.sleep(1.0)
        began = time.perf_counter()
        result = await load()
        seconds = time.perf_counter() - began
        stop.set()
        prober.join()
        return summary(list(samples)), (result, seconds), list(failures)


async def idle_baseline(url: str) -> dict[str, float]:
    async def nothing() -> None:
        await asyncio.sleep(3)

    health, _, _ = await during(url, nothing)
    return health


async def searches(url: str, agent: str, count: int, queries: list[str]) -> int:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def one(query: str) -> bool:
            response = await client.get(
                f"/v1/agents/{agent}/archival-memory/search", params={"query": query}
            )
            return response.status_code == 200

        done = await asyncio.gather(*(one(queries[i % len(queries)]) for i in range(count)))
    return sum(done)


async def mcp_calls(url: str, agent: str, count: int) -> int:
    async with Client(f"{url}/mcp") as client:

        async def one(i: int) -> bool:
            try:
                result = await client.call_tool(
                    "memory_search", {"query": f"retry timeout {i}", "agent_id": agent}
                )
            except Exception:
                return False
            return not result.is_error

        done = await asyncio.gather(*(one(i) for i in range(count)))
    return sum(done)


async def idle_connections(url: str, count: int) -> int:
    host, port = url.removeprefix("http://").split(":")
    opened = []
    for _ in range(count):
        try:
            opened.append(socket.create_connection((host, int(port)), timeout=5))
        except OSError:
            break
    await asyncio.sleep(3)
    for sock in opened:
        sock.close()
    return len(opened)


async def run(url: str, agent: str, args: argparse.Namespace, queries: list[str]) -> None:
    rows = [("idle (baseline)", await idle_baseline(url), "", [])]
    health, (ok, seconds), failures = await during(
        url, lambda: searches(url, agent, args.searches, queries)
    )
    rows.append(
        (f"{args.searches} concurrent searches", health, f"{ok} ok in {seconds:.1f} s", failures)
    )
    health, (ok, seconds), failures = await during(url, lambda: mcp_calls(url, agent, args.mcp))
    rows.append(
        (f"{args.mcp} concurrent MCP calls", health, f"{ok} ok in {seconds:.1f} s", failures)
    )
    health, (opened, _), failures = await during(url, lambda: idle_connections(url, args.idle))
    rows.append((f"{args.idle} idle connections", health, f"{opened} opened", failures))
    print(f"{'load':32s} {'probes':>6s} {'p50 ms':>8s} {'p99 ms':>8s} {'max ms':>8s}  load result")
    for name, stats, result, failed in rows:
        print(
            f"{name:32s} {stats['n']:>6d} {stats['p50_ms']:>8.1f} {stats['p99_ms']:>8.1f} "
            f"{stats['max_ms']:>8.1f}  {result}"
            + (f"  FAILED probes: {len(failed)}" if failed else "")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--searches", type=int, default=500)
    parser.add_argument("--mcp", type=int, default=60)
    parser.add_argument("--idle", type=int, default=2000)
    parser.add_argument("--passages", type=int, default=1000)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # this client opens many sockets
    rng = random.Random(7)
    words = vocabulary()
    with (
        tempfile.TemporaryDirectory() as folder,
        serving(Path(folder), dict(os.environ)) as (_process, url, _),
    ):
        with httpx.Client(base_url=url, timeout=120) as client:
            agent = seed(client, args.passages, rng, words)
        asyncio.run(run(url, agent, args, sentences(rng, words, 50)))


if __name__ == "__main__":
    main()

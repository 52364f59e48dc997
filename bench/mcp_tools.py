"""MCP tool latency: `memory_search` round trips through the official SDK client, over stdio
(`mnemo mcp` as a subprocess) and streamable HTTP (`/mcp`), against a warm server holding
10,000 passages; the server's own search time measured in the same run is the baseline.

    .venv/bin/python bench/mcp_tools.py [--passages 10000] [--runs 50]

Budget (issue #4): memory_search over stdio p50 <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from mcp import Client
from mcp.client.stdio import StdioServerParameters

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import seed, sentences, serving, vocabulary


def summary(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "p50_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[max(0, int(len(samples) * 0.95) - 1)], 1),
    }


async def tool_rounds(client: Client, agent_id: str, queries: list[str]) -> list[float]:
    await client.call_tool("memory_search", {"query": "warm up", "agent_id": agent_id})
    samples = []
    for query in queries:
        began = time.perf_counter()
        result = await client.call_tool("memory_search", {"query": query, "agent_id": agent_id})
        samples.append((time.perf_counter() - began) * 1000)
        assert not result.is_error
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--passages", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    rng = random.Random(5)
    words = vocabulary()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, serving(Path(tmp) / "data") as (_process, url, _):
        with httpx.Client(base_url=url, timeout=600) as http:
            agent_id = seed(http, args.passages, rng, words)
            queries = sentences(rng, words, args.runs)
            search = f"/v1/agents/{agent_id}/archival-memory/search"
            http.get(search, params={"query": "warm"})
            direct = []
            for query in queries:
                began = time.perf_counter()
                http.get(
                    search, params={"query": query + " direct", "top_k": 10}
                ).raise_for_status()
                direct.append((time.perf_counter() - began) * 1000)
            results["server_search_http"] = summary(direct)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MNEMO_")}
        (Path(tmp) / "none.toml").touch()
        env.update(MNEMO_URL=url, MNEMO_CONFIG=str(Path(tmp) / "none.toml"), HOME=tmp)
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "mnemo", "mcp"], env=env, cwd=tmp
        )

        async def run() -> None:
            async with Client(params) as client:
                results["mcp_stdio_memory_search"] = summary(
                    await tool_rounds(client, agent_id, [q + " stdio" for q in queries])
                )
            async with Client(f"{url}/mcp") as client:
                results["mcp_http_memory_search"] = summary(
                    await tool_rounds(client, agent_id, [q + " http" for q in queries])
                )

        asyncio.run(run())
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

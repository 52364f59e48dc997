"""The memory viewer's pages: server-side render time of a project page, its next page, the
search page, the timeline and the projects list, for a project of 100,000 passages against one
of 10, on a real `mnemo serve` over HTTP.

Baselines measured in the same run: an HTTP round trip to /v1/health/ and the REST API's own
search with the same query (a search page is that search plus its rendering).

    .venv/bin/python bench/ui.py                  # 100,000 passages (seeding takes minutes)
    .venv/bin/python bench/ui.py --size 10000     # quicker

Budget (issue #25): a project page and a search page render in <= 50 ms p50 at 100,000
passages on the 2-core development machine.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import ROOT, seed, sentences, serving, timed, vocabulary


def pages(client: httpx.Client, agent_id: str, queries: list[str], runs: int) -> dict[str, Any]:
    base = f"/ui/agents/{agent_id}"
    deep = client.get(f"{base}.json").json()["next"]  # the second page of memories
    api = f"/v1/agents/{agent_id}/archival-memory/search"

    def get(path: str, **params: str) -> Any:
        def fetch(i: int) -> None:
            query = {k: (queries[i] if v == "{q}" else v) for k, v in params.items()}
            client.get(path, params=query).raise_for_status()

        fetch(0)  # warm
        return timed(fetch, runs)

    return {
        "project_page": get(base),
        "project_page_2": get(base + (deep or "")),
        "search_page": get(f"{base}/search", q="{q}"),
        "search_page_filtered": get(f"{base}/search", q="{q}", type="note", since="2000-01-01"),
        "api_search_same_queries": get(api, query="{q}", top_k="20"),
        "timeline": get(f"{base}/timeline"),
    }


def seed_project(client: httpx.Client, size: int, rng: random.Random, words: list[str]) -> str:
    agent_id = seed(client, size, rng, words)
    client.post(
        f"/v1/agents/{agent_id}/core-memory/blocks/attach/"
        + client.post("/v1/blocks/", json={"label": "team_standards", "value": "ruff"}).json()["id"]
    )
    notes = [{"text": t, "metadata": {"type": "note"}} for t in sentences(rng, words, 200)] + [
        {"text": t, "metadata": {"type": "session_summary", "session_id": f"s{i}"}}
        for i, t in enumerate(sentences(rng, words, 60))
    ]
    client.post(f"/v1/agents/{agent_id}/archival-memory/batch", json={"passages": notes})
    return agent_id


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=100_000, help="passages of the large project")
    parser.add_argument("--runs", type=int, default=100, help="timed requests per page")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/ui.json")
    args = parser.parse_args()
    rng = random.Random(11)
    words = vocabulary()
    queries = sentences(rng, words, args.runs)
    results: dict[str, Any] = {"size": args.size, "runs": args.runs}
    with (
        tempfile.TemporaryDirectory() as tmp,
        serving(Path(tmp) / "data") as (_process, url, _),
        httpx.Client(base_url=url, timeout=600) as client,
    ):
        results["baseline_health_roundtrip"] = timed(lambda i: client.get("/v1/health/"), args.runs)
        small = seed_project(client, 10, rng, words)
        large = seed_project(client, args.size, rng, words)
        for _ in range(40):  # a projects list of a few dozen projects
            client.post("/v1/agents/", json={"name": f"other-{rng.random():.6f}"})
        results["projects_list"] = timed(lambda i: client.get("/ui/"), args.runs)
        results["at_10"] = pages(client, small, queries, args.runs)
        results[f"at_{args.size}"] = pages(client, large, queries, args.runs)
    big, tiny = results[f"at_{args.size}"], results["at_10"]
    results["ratio_large_to_small_p50"] = {
        page: round(big[page]["p50_ms"] / tiny[page]["p50_ms"], 2) for page in big
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

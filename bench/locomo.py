"""Retrieval quality on LoCoMo through the public API.

One agent per conversation, one passage per dialog turn (`"<speaker>: <text>"`, tagged with the
turn's `dia_id`, dated by its session). Every question of categories 1-4 is asked through
`GET /v1/agents/{id}/archival-memory/search`; a hit is a result whose tag is one of the question's
evidence `dia_id`s. Prints recall@5, recall@10 and MRR per category for the lexical, vector and
default (hybrid) modes, and for the same turns stored as recall messages and found by
`GET /v1/agents/{id}/messages/search`. Then sweeps the fusion weight offline over the two
rankings (the same `fuse_scores` the server uses; a keyword candidate outside the vector
ranking's top 100 counts a cosine of 0 here, where the server computes it), so the defaults in
config.py can be chosen by measurement.

    .venv/bin/python bench/locomo.py                       # ../shared/bench-data/locomo-dev.json
    .venv/bin/python bench/locomo.py --data other.json --url http://127.0.0.1:8283

The data set is CC BY-NC 4.0 and is never copied into this repository.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "bench-data" / "locomo-dev.json"
CATEGORIES = (1, 2, 3, 4)
DEPTH = 100  # candidates per ranker for the offline fusion sweep


def load_conversations(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text())
    if isinstance(data, dict):
        data = data.get("samples") or data.get("data") or list(data.values())
    return list(data)


def session_date(raw: str | None) -> str | None:
    """LoCoMo dates look like '1:56 pm on 8 May, 2023'."""
    if not raw:
        return None
    for pattern in ("%I:%M %p on %d %B, %Y", "%I:%M %p on %d %b, %Y"):
        try:
            return datetime.strptime(raw.strip(), pattern).isoformat() + "+00:00"
        except ValueError:
            continue
    return None


def turns(conversation: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    sessions = sorted(
        (k for k in conversation if re.fullmatch(r"session_\d+", k)),
        key=lambda k: int(k.split("_")[1]),
    )
    for key in sessions:
        created_at = session_date(conversation.get(f"{key}_date_time"))
        for turn in conversation[key]:
            text = f"{turn['speaker']}: {turn['text']}"
            if turn.get("blip_caption"):
                text += f" [shares a photo of {turn['blip_caption']}]"
            passage = {"text": text, "tags": [turn["dia_id"]]}
            if created_at:
                passage["created_at"] = created_at
            out.append(passage)
    return out


def as_message(turn: dict[str, Any]) -> dict[str, Any]:
    """A turn (as `turns` gives it) as a recall message, its dia_id in its metadata."""
    message = {"role": "user", "content": turn["text"], "metadata": {"dia_id": turn["tags"][0]}}
    if "created_at" in turn:
        message["created_at"] = turn["created_at"]
    return message


def evidence_ids(qa: dict[str, Any]) -> set[str]:
    ids: set[str] = set()
    for item in qa.get("evidence") or []:
        ids.update(re.findall(r"D\d+:\d+", str(item)))
    return ids


def score(ranked: list[str], gold: set[str]) -> dict[str, float]:
    def recall(k: int) -> float:
        return len(gold & set(ranked[:k])) / len(gold)

    rr = next((1 / (i + 1) for i, d in enumerate(ranked) if d in gold), 0.0)
    return {"r@5": recall(5), "r@10": recall(10), "mrr": rr}


def summarise(rows: list[tuple[int, dict[str, float]]]) -> dict[str, dict[str, float]]:
    by_category: dict[str, list[dict[str, float]]] = defaultdict(list)
    for category, metrics in rows:
        by_category[str(category)].append(metrics)
        by_category["1-4"].append(metrics)
    return {
        cat: {
            m: round(100 * statistics.mean(r[m] for r in items), 1) for m in ("r@5", "r@10", "mrr")
        }
        | {"n": len(items)}
        for cat, items in sorted(by_category.items())
    }


def search(
    client: httpx.Client, agent_id: str, query: str, mode: str, top_k: int
) -> list[dict[str, Any]]:
    response = client.get(
        f"/v1/agents/{agent_id}/archival-memory/search",
        params={"query": query, "top_k": top_k, "mode": mode},
    )
    response.raise_for_status()
    return response.json()["results"]


def injection(
    questions: list[tuple[int, set[str], str, str]], hybrid_runs: list[list[dict[str, Any]]]
) -> list[dict[str, float]]:
    """What the user-prompt-submit hook would inject with each question as the prompt (its
    top_k, its character budget), per `min_similarity`: the share of injected memories that
    are evidence (precision), the share of evidence injected (recall), memories per prompt."""
    from mnemo.claude.context import prompt_context
    from mnemo.remote.config import ClientConfig

    rows = []
    for threshold in (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4):
        injected = relevant = evidence = found = 0
        for (_, gold, _, _), results in zip(questions, hybrid_runs, strict=True):
            kept = [
                r
                for r in results[: ClientConfig.DEFAULTS["prompt_top_k"]]
                if (r.get("similarity") or 0) >= threshold
            ]
            _, shown = prompt_context(kept, ClientConfig.DEFAULTS["prompt_budget"])
            tags = {r["id"]: r["tags"][0] for r in kept}
            shown_tags = [tags[pid] for pid in shown]
            injected += len(shown)
            relevant += sum(tag in gold for tag in shown_tags)
            evidence += len(gold)
            found += len(gold & set(shown_tags))
        rows.append(
            {
                "min_similarity": threshold,
                "per_prompt": round(injected / len(questions), 2),
                "precision": round(100 * relevant / max(injected, 1), 1),
                "recall": round(100 * found / evidence, 1),
            }
        )
    return rows


def run(client: httpx.Client, conversations: list[dict[str, Any]]) -> dict[str, Any]:
    questions = []  # (category, gold, agent_id, question)
    for number, sample in enumerate(conversations):
        agent_id = client.post("/v1/agents/", json={"name": f"locomo-{number}"}).json()["id"]
        passages = turns(sample["conversation"])
        for start in range(0, len(passages), 1000):
            client.post(
                f"/v1/agents/{agent_id}/archival-memory/batch",
                json={"passages": passages[start : start + 1000]},
                timeout=600,
            ).raise_for_status()
        # The same turns as recall messages of the agent, searched by messages/search.
        client.post(
            f"/v1/agents/{agent_id}/messages/import",
            json={"messages": [as_message(turn) for turn in passages]},
            timeout=600,
        ).raise_for_status()
        for qa in sample.get("qa", []):
            gold = evidence_ids(qa)
            if qa.get("category") in CATEGORIES and gold:
                questions.append((qa["category"], gold, agent_id, qa["question"]))
        print(f"indexed conversation {number + 1}/{len(conversations)}", file=sys.stderr)

    results: dict[str, Any] = {"questions": len(questions)}
    lexical_runs, vector_runs, hybrid_runs = [], [], []
    for mode in ("lexical", "vector", "hybrid"):
        rows = []
        for category, gold, agent_id, question in questions:
            found = search(client, agent_id, question, mode, DEPTH if mode != "hybrid" else 10)
            hits = [(r["id"], r["tags"][0], r["score"]) for r in found]
            if mode == "lexical":
                lexical_runs.append(hits)
            elif mode == "vector":
                vector_runs.append(hits)
            else:
                hybrid_runs.append(found)
            rows.append((category, score([tag for _, tag, _ in hits], gold)))
        results[mode] = summarise(rows)
        print(f"{mode}: {results[mode]['1-4']}", file=sys.stderr)

    rows = []
    for category, gold, agent_id, question in questions:
        response = client.get(
            f"/v1/agents/{agent_id}/messages/search", params={"query": question, "limit": 10}
        )
        response.raise_for_status()
        rows.append((category, score([m["metadata"]["dia_id"] for m in response.json()], gold)))
    results["messages"] = summarise(rows)
    print(f"messages: {results['messages']['1-4']}", file=sys.stderr)

    from mnemo.service import fuse_scores

    sweep = []
    for lexical_weight in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
        rows = []
        for (category, gold, _, _), lexical, vector in zip(
            questions, lexical_runs, vector_runs, strict=True
        ):
            tag_of = {pid: tag for pid, tag, _ in lexical + vector}
            fused = fuse_scores(
                [(pid, s) for pid, _, s in lexical],
                {pid: s for pid, _, s in vector},
                lexical_weight,
                1 - lexical_weight,
            )
            rows.append((category, score([tag_of[pid] for pid, _ in fused], gold)))
        overall = summarise(rows)["1-4"]
        sweep.append(
            {"lexical_weight": lexical_weight, "vector_weight": round(1 - lexical_weight, 2)}
            | overall
        )
    sweep.sort(key=lambda row: (-row["r@10"], -row["mrr"]))
    results["fusion_sweep_top5"] = sweep[:5]
    results["injection"] = injection(questions, hybrid_runs)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--url", help="an already running mnemo server (default: start one)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/locomo.json")
    parser.add_argument(
        "--conversations", type=int, help="only the first N conversations of the file"
    )
    args = parser.parse_args()
    if not args.data.is_file():
        sys.exit(f"locomo: data file {args.data} not found (expected the LoCoMo development split)")
    conversations = load_conversations(args.data)[: args.conversations]

    if args.url:
        with httpx.Client(base_url=args.url, timeout=120) as client:
            results = run(client, conversations)
    else:
        sys.path.insert(0, str(ROOT / "bench"))
        from latency import serving

        with (
            tempfile.TemporaryDirectory() as tmp,
            serving(Path(tmp)) as (_process, url, _),
            httpx.Client(base_url=url, timeout=120) as client,
        ):
            results = run(client, conversations)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

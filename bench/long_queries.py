"""Long queries: what reading a query's two ends (embed/local.py) does to recall and time.

A prompt the hook searches with is often a question next to a paste: a log, a diff, a stack
trace. This bench pads each LoCoMo development question (categories 1-4) with the turns of
another conversation, the question first or last, and ranks the question's own conversation by
cosine alone (vector recall@10) with the query embedded two ways: whole, cut at the model's
max_tokens as a passage is (`embed`), and from its two ends (`embed_queries`). Then it times one
query embedding per length, both ways alternating.

    .venv/bin/python bench/long_queries.py                 # ../shared/bench-data/locomo-dev.json
    .venv/bin/python bench/long_queries.py --every 4 --filler-words 400
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from locomo import CATEGORIES, DEFAULT_DATA, evidence_ids, load_conversations, turns
from mnemo.embed.catalog import LOCAL_MODELS
from mnemo.embed.local import LocalEmbedder

LENGTHS = (10, 50, 100, 200, 400)  # words of the timed queries


def padded(question: str, filler: str, where: str) -> str:
    return f"{question}\n{filler}" if where == "first" else f"{filler}\n{question}"


def filler_text(rng: random.Random, texts: list[str], words: int) -> str:
    at = rng.randrange(len(texts))
    taken: list[str] = []
    while len(taken) < words:
        taken.extend(texts[at % len(texts)].split())
        at += 1
    return " ".join(taken[:words])


def recall_at_10(
    vectors: np.ndarray, passages: np.ndarray, tags: list[str], gold: set[str]
) -> float:
    order = np.argsort(-(passages @ vectors))[:10]
    return len(gold & {tags[i] for i in order}) / len(gold)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--every", type=int, default=2, help="use every Nth question")
    parser.add_argument("--filler-words", type=int, default=250)
    parser.add_argument("--runs", type=int, default=20, help="timed embeddings per length")
    args = parser.parse_args()
    if not args.data.is_file():
        sys.exit(f"long_queries: data file {args.data} not found (the LoCoMo development split)")
    conversations = load_conversations(args.data)
    texts = [[p["text"] for p in turns(c["conversation"])] for c in conversations]
    tags = [[p["tags"][0] for p in turns(c["conversation"])] for c in conversations]
    questions = [
        (number, qa["question"], evidence_ids(qa))
        for number, c in enumerate(conversations)
        for qa in c.get("qa", [])
        if qa.get("category") in CATEGORIES and evidence_ids(qa)
    ][:: args.every]
    results: dict[str, Any] = {"questions": len(questions), "filler_words": args.filler_words}
    for handle, model in LOCAL_MODELS.items():
        embedder = LocalEmbedder(model)
        passages = [embedder.embed(t) for t in texts]
        rng = random.Random(7)
        fillers = [
            filler_text(rng, texts[(n + 1) % len(texts)], args.filler_words) for n, *_ in questions
        ]
        row: dict[str, Any] = {}
        alone = embedder.embed_queries([q for _, q, _ in questions])
        row["question alone"] = statistics.mean(
            recall_at_10(v, passages[n], tags[n], gold)
            for v, (n, _, gold) in zip(alone, questions, strict=True)
        )
        for where in ("first", "last"):
            queries = [padded(q, f, where) for (_, q, _), f in zip(questions, fillers, strict=True)]
            for way in ("embed", "embed_queries"):
                vectors = getattr(embedder, way)(queries)
                row[f"question {where}, {way}"] = statistics.mean(
                    recall_at_10(v, passages[n], tags[n], gold)
                    for v, (n, _, gold) in zip(vectors, questions, strict=True)
                )
            print(f"{handle}: {where} done", file=sys.stderr)
        recall = {k: round(100 * v, 1) for k, v in row.items()}
        timing: dict[str, dict[str, float]] = {}
        words = " ".join(texts[0]).split()
        for length in LENGTHS:
            samples: dict[str, list[float]] = {"embed": [], "embed_queries": []}
            for run in range(args.runs):
                query = " ".join(words[run * 7 : run * 7 + length])
                for way, times in samples.items():
                    began = time.perf_counter()
                    getattr(embedder, way)([query])
                    times.append((time.perf_counter() - began) * 1000)
            timing[f"{length} words"] = {
                way: round(statistics.median(times), 1) for way, times in samples.items()
            }
        results[handle] = {"vector_recall_at_10": recall, "one_query_p50_ms": timing}
        print(json.dumps({handle: results[handle]}, indent=2), file=sys.stderr)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

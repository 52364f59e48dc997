"""bench/locomo.py runs end to end on a tiny file in LoCoMo's format (the real split is not
part of the repository)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ServerProcess

ROOT = Path(__file__).resolve().parent.parent


def tiny_locomo() -> list[dict]:
    session_1 = [
        {
            "speaker": "Ana",
            "dia_id": "D1:1",
            "text": "I adopted a greyhound named Biscuit last week.",
        },
        {"speaker": "Ben", "dia_id": "D1:2", "text": "Congrats! I started learning the cello."},
        {"speaker": "Ana", "dia_id": "D1:3", "text": "We are moving to Lisbon in the spring."},
    ]
    session_2 = [
        {"speaker": "Ben", "dia_id": "D2:1", "text": "My cello teacher says I improved a lot."},
        {
            "speaker": "Ana",
            "dia_id": "D2:2",
            "text": "Biscuit loves the beach near our new flat.",
            "blip_caption": "a dog on sand",
        },
    ]
    return [
        {
            "sample_id": "tiny-1",
            "conversation": {
                "speaker_a": "Ana",
                "speaker_b": "Ben",
                "session_1_date_time": "1:56 pm on 8 May, 2023",
                "session_1": session_1,
                "session_2_date_time": "10:00 am on 2 June, 2023",
                "session_2": session_2,
            },
            "qa": [
                {
                    "question": "What is the name of Ana's dog?",
                    "answer": "Biscuit",
                    "evidence": ["D1:1"],
                    "category": 1,
                },
                {
                    "question": "Which instrument does Ben play?",
                    "answer": "cello",
                    "evidence": ["D1:2", "D2:1"],
                    "category": 4,
                },
                {
                    "question": "Where is Ana moving?",
                    "answer": "Lisbon",
                    "evidence": ["D1:3"],
                    "category": 2,
                },
                {"question": "Adversarial", "evidence": ["D1:1"], "category": 5},
            ],
        }
    ]


def test_locomo_bench_reports_recall(server: ServerProcess, tmp_path: Path) -> None:
    data = tmp_path / "tiny.json"
    data.write_text(json.dumps(tiny_locomo()))
    out = tmp_path / "out.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench/locomo.py"),
            "--data",
            str(data),
            "--url",
            server.url,
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    results = json.loads(out.read_text())
    assert results["questions"] == 3  # category 5 is excluded
    for mode in ("lexical", "vector", "hybrid"):
        assert set(results[mode]) == {"1", "2", "4", "1-4"}
        assert results[mode]["1-4"]["r@10"] == 100.0  # five turns: everything is in the top 10
    assert results["hybrid"]["1"]["mrr"] >= 50.0  # Biscuit's turn is first or second
    # The turns as recall messages: ranked by the same keyword index as the lexical mode.
    assert results["messages"]["1-4"]["r@10"] == results["lexical"]["1-4"]["r@10"] > 0
    assert results["fusion_sweep_top5"][0]["r@10"] == 100.0

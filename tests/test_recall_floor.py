"""A quality floor: the default search must keep finding LoCoMo evidence. Runs bench/locomo.py
on the first conversation of the development split through a live server (both backends) and
fails when hybrid recall@10 falls below RECALL_AT_10_FLOOR, a few points under what this
version reaches (78.7 / 69.2 with all-mpnet-base-v2), or recall message search below
MESSAGES_AT_10_FLOOR (73.3 there), so a change cannot lose recall without someone deciding so.

The data set is read from ../shared/bench-data/ (or $MNEMO_LOCOMO_DATA) and never copied into
the repository; without it the test is skipped, saying where it looked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(
    os.environ.get("MNEMO_LOCOMO_DATA") or ROOT.parent / "shared" / "bench-data" / "locomo-dev.json"
)
RECALL_AT_10_FLOOR = 75.0
RECALL_AT_5_FLOOR = 66.0
MESSAGES_AT_10_FLOOR = 70.0


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_file(), reason=f"LoCoMo development split not found at {DATA}")
def test_default_search_keeps_its_recall_on_locomo(server: ServerProcess, tmp_path: Path) -> None:
    out = tmp_path / "locomo.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench/locomo.py"),
            *("--data", str(DATA), "--conversations", "1"),
            *("--url", server.url, "--out", str(out)),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    results = json.loads(out.read_text())
    overall = results["hybrid"]["1-4"]
    assert overall["n"] == 150
    assert overall["r@10"] >= RECALL_AT_10_FLOOR, overall
    assert overall["r@5"] >= RECALL_AT_5_FLOOR, overall
    messages = results["messages"]["1-4"]
    assert messages["r@10"] >= MESSAGES_AT_10_FLOOR, messages

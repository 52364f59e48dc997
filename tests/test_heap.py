"""The server keeps freed heap memory for the next request (mnemo/heap.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Page faults of the last of four rounds that each hold eight 4 MB buffers at once (32 MB,
# 8,192 pages), write them and free them, as a search does with its postings and scores.
PROGRAM = """
import resource, sys
from mnemo.heap import keep_freed_memory
if sys.argv[1] == "tuned":
    assert keep_freed_memory()
def round_of_buffers():
    buffers = [bytearray(4 * 2**20) for _ in range(8)]
    for buffer in buffers:
        buffer[::4096] = b"x" * 1024
for _ in range(3):
    round_of_buffers()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
round_of_buffers()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning")
def test_freed_buffers_are_reused_without_page_faults() -> None:
    assert _faults("default") >= 4096  # trimmed off the heap and faulted in again
    assert _faults("tuned") < 100

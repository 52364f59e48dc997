"""Keep freed heap memory for the next request instead of handing it back to the kernel.

A search allocates and frees buffers of megabytes (a keyword search over a large corpus reads
megabytes of packed postings). glibc serves such sizes with mmap and returns them on free, or
trims them off the heap, so every request would fault the same pages in again. Keeping them
trades resident memory for speed; the measurements are in docs/benchmarks.md.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt(3) parameters
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

MMAP_THRESHOLD = 64 * 2**20  # allocations below this come from the heap, and are reused
TRIM_THRESHOLD = 256 * 2**20  # free memory at the heap's top is returned past this much
TOP_PAD = 64 * 2**20  # the heap grows by this much extra at a time
# Heaps threads allocate from. glibc's default, 8 per core, lets each worker thread keep its
# own TRIM_THRESHOLD of freed memory, and the embedding model's buffers land in all of them.
ARENA_MAX = 2


def keep_freed_memory() -> bool:
    """Tune glibc's malloc for a long-running server; False where there is no glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    settings = (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (M_TOP_PAD, TOP_PAD),
        (M_ARENA_MAX, ARENA_MAX),
    )
    return all(mallopt(param, value) == 1 for param, value in settings)

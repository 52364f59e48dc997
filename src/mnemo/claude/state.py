"""Per-session hook state on disk: transcript offset, injected memories, pending failures."""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from mnemo.remote.files import read_json, write_json

TYPE_CHECKING = False  # typing costs a hook ~4 ms to import; annotations only
if TYPE_CHECKING:
    from typing import Any


def session_file(state: str, session_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", session_id or "unknown")[:100]
    return os.path.join(state, "sessions", f"{safe}.json")


def load(state: str, session_id: str) -> dict[str, Any]:
    try:
        return read_json(session_file(state, session_id))
    except (OSError, ValueError):
        return {}


@contextmanager
def update(state: str, session_id: str) -> Iterator[dict[str, Any]]:
    """Read-modify-write under a lock: parallel hooks of one session don't lose each other."""
    path = session_file(state, session_id)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path.removesuffix(".json") + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = load(state, session_id)
        yield data
        write_json(path, data)


def forget(state: str, session_id: str) -> None:
    path = session_file(state, session_id)
    for candidate in (path, path.removesuffix(".json") + ".lock"):
        with suppress(FileNotFoundError):
            os.unlink(candidate)

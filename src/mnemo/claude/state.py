"""Per-session hook state on disk: transcript offset, injected memories, pending failures."""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TYPE_CHECKING = False  # typing costs a hook ~4 ms to import; annotations only
if TYPE_CHECKING:
    from typing import Any


def session_file(state: Path, session_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", session_id or "unknown")[:100]
    return state / "sessions" / f"{safe}.json"


def load(state: Path, session_id: str) -> dict[str, Any]:
    try:
        return json.loads(session_file(state, session_id).read_text())
    except (OSError, ValueError):
        return {}


@contextmanager
def update(state: Path, session_id: str) -> Iterator[dict[str, Any]]:
    """Read-modify-write under a lock: parallel hooks of one session don't lose each other."""
    path = session_file(state, session_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = load(state, session_id)
        yield data
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data))
        os.replace(temporary, path)


def forget(state: Path, session_id: str) -> None:
    path = session_file(state, session_id)
    for candidate in (path, path.with_suffix(".lock")):
        candidate.unlink(missing_ok=True)

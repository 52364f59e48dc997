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


FIX_PENDING_DIR = "pending-fixes"  # exists while some session has a failure awaiting its fix


def session_file(state: str, session_id: str) -> str:
    return os.path.join(state, "sessions", f"{_safe(session_id)}.json")


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
    clear_fix_pending(state, session_id)


def mark_fix_pending(state: str, session_id: str) -> None:
    """A command of this session failed: the post-tool-use hook for Bash must run (it finds
    the fix) while FIX_PENDING_DIR exists. One file per session, so sessions come and go
    independently; the directory goes with the last one."""
    folder = os.path.join(state, FIX_PENDING_DIR)
    for _ in range(3):
        os.makedirs(folder, exist_ok=True)
        try:
            with open(os.path.join(folder, _safe(session_id)), "w"):
                return
        except FileNotFoundError:
            continue  # another session removed the empty directory in between


def clear_fix_pending(state: str, session_id: str) -> None:
    folder = os.path.join(state, FIX_PENDING_DIR)
    with suppress(FileNotFoundError):
        os.unlink(os.path.join(folder, _safe(session_id)))
    with suppress(OSError):
        os.rmdir(folder)  # only once no session has a failure waiting


def _safe(session_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", session_id or "unknown")[:100]

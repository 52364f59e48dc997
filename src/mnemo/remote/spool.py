"""Writes that wait on disk until the server takes them (standard library only).

A write carries an Idempotency-Key. When the server cannot be reached, or refuses for a reason
that may pass (`retryable`), the write is queued here and replayed later, oldest first, exactly
once: the server drops a repeated key.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time

from mnemo.remote.errors import ApiError, Unreachable
from mnemo.remote.transport import retryable

TYPE_CHECKING = False  # typing costs a hook ~4 ms to import; annotations only
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from mnemo.remote.transport import Transport

    Resolve = Callable[[dict[str, Any], bool], str]


LOCK = ".replay.lock"


class Spool:
    def __init__(self, directory: str) -> None:
        self.directory = directory

    def send(
        self,
        transport: Transport,
        method: str,
        path: str,
        body: Any,
        key: str | None = None,
        context: dict[str, str] | None = None,
    ) -> Any:
        """Send a write; if the server is unreachable, queue it and return None. A write
        refused for a reason that may pass is queued too, then the refusal is raised so the
        caller can say why."""
        key = key or os.urandom(16).hex()
        try:
            return transport.request(method, path, body, idempotency_key=key)
        except Unreachable:
            self.add(method, path, body, key, context)
            return None
        except ApiError as exc:
            if retryable(exc.status):
                self.add(method, path, body, key, context)
            raise

    def add(
        self, method: str, path: str, body: Any, key: str, context: dict[str, str] | None = None
    ) -> None:
        """Queue a write. `context` travels with it for `replay(resolve=...)`, e.g. the project
        whose agent id was not known yet when the write was made."""
        os.makedirs(self.directory, exist_ok=True)
        name = f"{time.time_ns():020d}-{re.sub(r'[^A-Za-z0-9_-]', '_', key)[:80]}.json"
        entry = {"method": method, "path": path, "body": body, "key": key, "context": context or {}}
        temporary = os.path.join(self.directory, f".{name}.tmp")
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump(entry, file)
        os.replace(temporary, os.path.join(self.directory, name))

    def names(self) -> list[str]:
        """The queued writes, oldest first (names start with a nanosecond time)."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return []
        return sorted(n for n in names if n.endswith(".json") and not n.startswith("."))

    def pending(self) -> int:
        return len(self.names())

    def replaying(self) -> bool:
        """Whether a replay holds the queue now (it looks for new writes before it stops)."""
        os.makedirs(self.directory, exist_ok=True)
        with open(os.path.join(self.directory, LOCK), "w") as lock:
            return not _taken(lock)

    def replay(
        self, transport: Transport, deadline: float | None = None, resolve: Resolve | None = None
    ) -> int:
        """Send queued writes oldest first; stop at the first unreachable or at `deadline`
        (a time.monotonic() value). `resolve(entry, stale)` gives the path to send an entry to;
        when that answers 404 it is asked again with `stale` true (e.g. the project's agent was
        replaced) and the write retried once. A write the server still rejects (4xx) moves to
        `failed/`. Returns how many were delivered. Safe to run concurrently: one replayer at
        a time, and it looks again after letting go, so a write queued while another caller
        found it busy is not left behind."""
        if not os.path.isdir(self.directory):
            return 0
        delivered = 0
        tried: set[str] = set()
        while True:
            with open(os.path.join(self.directory, LOCK), "w") as lock:
                if not _taken(lock):
                    return delivered
                for name in self.names():
                    if deadline is not None and time.monotonic() > deadline:
                        return delivered
                    tried.add(name)
                    outcome = self._replay_one(transport, name, resolve)
                    if outcome is None:
                        return delivered
                    delivered += outcome
            if not set(self.names()) - tried:
                return delivered

    def _replay_one(self, transport: Transport, name: str, resolve: Resolve | None) -> int | None:
        """Deliver one queued write: 1 when it went, 0 when it was set aside (unreadable, or
        rejected for good into `failed/`), None when the server cannot take writes now."""
        item = os.path.join(self.directory, name)
        try:
            with open(item, encoding="utf-8") as file:
                entry = json.load(file)
        except (OSError, ValueError):
            return 0
        try:
            _deliver(transport, entry, resolve)
        except Unreachable:
            return None
        except ApiError as exc:
            if retryable(exc.status):
                return None
            failed = os.path.join(self.directory, "failed")
            os.makedirs(failed, exist_ok=True)
            os.replace(item, os.path.join(failed, name))
            return 0
        with contextlib.suppress(FileNotFoundError):
            os.unlink(item)
        return 1


def _taken(lock: Any) -> bool:
    """Whether this process now holds the replay lock on the open file `lock` (released with
    the file); False when another replayer holds it."""
    import fcntl

    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _deliver(transport: Transport, entry: dict[str, Any], resolve: Resolve | None) -> None:
    path = resolve(entry, False) if resolve else entry["path"]
    try:
        transport.request(entry["method"], path, entry["body"], idempotency_key=entry["key"])
    except ApiError as exc:
        if exc.status != 404 or resolve is None:
            raise
        again = resolve(entry, True)
        if again == path:
            raise
        transport.request(entry["method"], again, entry["body"], idempotency_key=entry["key"])

"""Connection hygiene for `mnemo serve`: a deadline for a new connection's first request, a cap
on open connections that sheds the oldest idle ones, and as many file descriptors as allowed.

uvicorn closes idle keep-alive connections but waits forever for the first request on a new
one, so half-open connections pile up until the process runs out of file descriptors and can
no longer accept the health probe.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("mnemo.api")
RESERVED_FDS = 128  # for the database, logs and the embedding model


def raise_fd_limit() -> int:
    """Raise the soft limit on open files to the hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65_536)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def guarded_protocol(first_request_timeout: float, max_connections: int) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol that closes a connection sending no complete request head
    within `first_request_timeout` seconds, and keeps at most `max_connections` open: a new one
    beyond that closes the oldest connection that has not sent a request yet, or failing that
    the oldest idle one, so clients that talk (the health probe, hooks) keep theirs."""
    silent: dict[GuardedProtocol, None] = {}  # no request yet, oldest first

    class GuardedProtocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            self.opened_at = time.monotonic()
            super().connection_made(transport)
            silent[self] = None
            self.first_request_deadline: asyncio.TimerHandle | None = self.loop.call_later(
                first_request_timeout, self._first_request_overdue
            )
            if len(self.connections) > max_connections:
                _shed_one(silent, self.connections, keep=self)

        def handle_events(self) -> None:
            super().handle_events()
            if self.cycle is not None and self.first_request_deadline is not None:
                self.first_request_deadline.cancel()
                self.first_request_deadline = None
                silent.pop(self, None)

        def connection_lost(self, exc: Exception | None) -> None:
            silent.pop(self, None)
            if self.first_request_deadline is not None:
                self.first_request_deadline.cancel()
                self.first_request_deadline = None
            super().connection_lost(exc)

        def _first_request_overdue(self) -> None:
            self.first_request_deadline = None
            if self.cycle is None and not self.transport.is_closing():
                self.transport.close()

        def idle(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

    return GuardedProtocol


def _shed_one(silent: dict[Any, None], connections: set[Any], keep: Any) -> None:
    for connection in silent:
        if connection is not keep:
            del silent[connection]
            connection.transport.close()
            return
    idle = [c for c in connections if c is not keep and getattr(c, "idle", lambda: False)()]
    if idle:
        min(idle, key=lambda c: getattr(c, "opened_at", 0.0)).transport.close()

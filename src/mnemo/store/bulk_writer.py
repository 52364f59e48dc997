"""Batches of a bulk load written by background threads, so the caller prepares the next batch
while the database takes this one.

One PostgreSQL backend leaves a second core mostly idle while it takes a batch, so two
writers, each on its own connection, load faster than one (docs/postgres.md, "Why the code is
as it is").
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

WRITERS = 2

T = TypeVar("T")


class BulkWriter(Generic[T]):
    """Runs `write(batch)` on `writers` threads; at most `writers` batches wait. After a batch
    fails, later ones are dropped, and `put` and `close` raise the first failure."""

    def __init__(self, write: Callable[[T], None], writers: int = WRITERS) -> None:
        self._write = write
        self._batches: queue.Queue[T | None] = queue.Queue(maxsize=writers)
        self._failure: BaseException | None = None
        self._threads = [
            threading.Thread(target=self._run, name=f"mnemo-bulk-writer-{i}", daemon=True)
            for i in range(writers)
        ]
        for thread in self._threads:
            thread.start()

    def put(self, batch: T) -> None:
        """Hand over a batch; blocks while `writers` batches already wait."""
        self._raise_failure()
        self._batches.put(batch)

    def close(self) -> None:
        """Wait until every batch handed over is written (or dropped after a failure)."""
        for _ in self._threads:
            self._batches.put(None)
        for thread in self._threads:
            thread.join()
        self._raise_failure()

    def _run(self) -> None:
        while (batch := self._batches.get()) is not None:
            if self._failure is not None:
                continue
            try:
                self._write(batch)
            except BaseException as exc:  # handed to the caller by put or close
                self._failure = exc

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

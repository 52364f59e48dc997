"""Exact cosine search over an in-memory float32 matrix (vectors are unit length).

Exact search keeps recall at 100% and is fast enough at the sizes one agent reaches (a 100k x 384
matrix-vector product is ~10 ms on one core). The matrix grows by a quarter at a time, so
appends are cheap and the slack stays small.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


class VectorIndex:
    def __init__(self, dim: int, version: int) -> None:
        self.version = version
        self._dim = dim
        self._matrix = np.zeros((0, dim), dtype=np.float32)
        self._seqs = np.zeros(0, dtype=np.int64)
        self._size = 0

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[int, bytes]], count: int, version: int) -> VectorIndex:
        """Build from (seq, float32 blob) rows streamed from the database, one copy in memory."""
        index = cls(0, version)
        for position, (seq, blob) in enumerate(rows):
            if position == count:
                break
            vector = np.frombuffer(blob, dtype=np.float32)
            if index._dim == 0:
                index._dim = len(vector)
                index._matrix = np.empty((count, index._dim), dtype=np.float32)
                index._seqs = np.empty(count, dtype=np.int64)
            index._matrix[position] = vector
            index._seqs[position] = seq
            index._size = position + 1
        return index

    def __len__(self) -> int:
        return self._size

    def add(self, seqs: np.ndarray, vectors: np.ndarray) -> None:
        if self._dim == 0:
            self._dim = vectors.shape[1]
            self._matrix = np.zeros((0, self._dim), dtype=np.float32)
        needed = self._size + len(seqs)
        if needed > len(self._matrix):
            capacity = max(needed, len(self._matrix) + len(self._matrix) // 4, 64)
            matrix = np.zeros((capacity, self._dim), dtype=np.float32)
            matrix[: self._size] = self._matrix[: self._size]
            ids = np.zeros(capacity, dtype=np.int64)
            ids[: self._size] = self._seqs[: self._size]
            self._matrix, self._seqs = matrix, ids
        self._matrix[self._size : needed] = vectors
        self._seqs[self._size : needed] = seqs
        self._size = needed

    def scored(self, vector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every (seq, cosine to `vector`), in storage order."""
        if self._size == 0 or len(vector) != self._dim:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        return self._seqs[: self._size], self._matrix[: self._size] @ vector.astype(np.float32)

    def search(
        self, vector: np.ndarray, limit: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Top `limit` (seq, cosine) pairs, optionally only among the `allowed` seqs."""
        seqs, scores = self.scored(vector)
        return best(seqs, scores, limit, allowed)


def best(
    seqs: np.ndarray, scores: np.ndarray, limit: int, allowed: np.ndarray | None = None
) -> list[tuple[int, float]]:
    """The top `limit` (seq, score) pairs, best first, optionally only among `allowed` seqs."""
    if len(seqs) == 0 or limit <= 0:
        return []
    if allowed is not None:
        mask = np.isin(seqs, allowed)
        scores = np.where(mask, scores, -np.inf)
        limit = min(limit, int(mask.sum()))
        if limit == 0:
            return []
    limit = min(limit, len(seqs))
    top = np.argpartition(-scores, limit - 1)[:limit]
    top = top[np.argsort(-scores[top])]
    return [(int(seqs[i]), float(scores[i])) for i in top]


def ranked(seqs: np.ndarray, scores: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The best `count` (seq, score), best first; equal scores in seq order."""
    if count < len(seqs):
        kept = np.argpartition(-scores, count - 1)[:count]
        seqs, scores = seqs[kept], scores[kept]
    order = np.lexsort((seqs, -scores))
    return seqs[order], scores[order]

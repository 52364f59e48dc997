"""Exact cosine search over an in-memory float32 matrix (vectors are unit length).

Exact search keeps recall at 100% and is fast enough at the sizes one agent reaches (a 100k x 384
matrix-vector product is ~10 ms on one core); the matrix grows by doubling so appends are cheap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class VectorIndex:
    def __init__(self, dim: int, version: int) -> None:
        self.version = version
        self._dim = dim
        self._matrix = np.zeros((0, dim), dtype=np.float32)
        self._seqs = np.zeros(0, dtype=np.int64)
        self._size = 0

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[int, bytes]], version: int) -> VectorIndex:
        if not rows:
            return cls(0, version)
        vectors = np.stack([np.frombuffer(blob, dtype=np.float32) for _, blob in rows])
        index = cls(vectors.shape[1], version)
        index.add(np.array([seq for seq, _ in rows], dtype=np.int64), vectors)
        return index

    def __len__(self) -> int:
        return self._size

    def add(self, seqs: np.ndarray, vectors: np.ndarray) -> None:
        if self._dim == 0:
            self._dim = vectors.shape[1]
            self._matrix = np.zeros((0, self._dim), dtype=np.float32)
        needed = self._size + len(seqs)
        if needed > len(self._matrix):
            capacity = max(needed, 2 * len(self._matrix), 64)
            matrix = np.zeros((capacity, self._dim), dtype=np.float32)
            matrix[: self._size] = self._matrix[: self._size]
            ids = np.zeros(capacity, dtype=np.int64)
            ids[: self._size] = self._seqs[: self._size]
            self._matrix, self._seqs = matrix, ids
        self._matrix[self._size : needed] = vectors
        self._seqs[self._size : needed] = seqs
        self._size = needed

    def search(
        self, vector: np.ndarray, limit: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Top `limit` (seq, cosine) pairs, optionally only among the `allowed` seqs."""
        if self._size == 0 or limit <= 0 or len(vector) != self._dim:
            return []
        seqs = self._seqs[: self._size]
        scores = self._matrix[: self._size] @ vector.astype(np.float32)
        if allowed is not None:
            mask = np.isin(seqs, allowed)
            scores = np.where(mask, scores, -np.inf)
            limit = min(limit, int(mask.sum()))
            if limit == 0:
                return []
        limit = min(limit, self._size)
        top = np.argpartition(-scores, limit - 1)[:limit]
        top = top[np.argsort(-scores[top])]
        return [(int(seqs[i]), float(scores[i])) for i in top]

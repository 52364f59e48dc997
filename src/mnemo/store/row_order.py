"""The order a bulk load leaves its passages in, so that the HNSW index builds faster.

pgvector builds the graph by inserting rows in heap order. Each insert walks the graph near its
own vector; when the rows just inserted are its neighbours, that walk runs from the CPU's
caches. So the load gives every passage a key, the nearest of `CENTRES` k-means centres
(learned from its first `SAMPLE` rows), and the store clusters the table by that key before
building the index.

A graph grown one neighbourhood after another is a worse graph: the first neighbourhoods' nodes
fill their links before the others exist, and recall falls. So a random `BACKBONE` share of the
rows goes first, in random order (negative keys), and spans the space before the
neighbourhoods fill in. Build times and recall for each choice: docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from threadpoolctl import ThreadpoolController

CENTRES = 256
SAMPLE = 10_000  # the load's first rows: centres come from them; smaller loads stay as loaded
SAMPLE_PER_CENTRE = 20
ROUNDS = 8  # of k-means: ordering needs neighbourhoods, not the best partition
BACKBONE = 0.02


class Neighbourhoods:
    """Labels one bulk load's vectors by their nearest centre. Rows seen before the centres
    exist are remembered and labelled by `backlog`, once the caller's rows are in."""

    def __init__(self, sample: int = SAMPLE, centres: int | None = None, seed: int = 0) -> None:
        centres = centres or max(1, min(CENTRES, sample // SAMPLE_PER_CENTRE))
        if sample < centres:
            raise ValueError(f"a sample of {sample} rows cannot place {centres} centres")
        self.sample = sample
        self.count = centres
        self.seed = seed
        self._random = np.random.default_rng(seed)
        self.centres: np.ndarray | None = None
        self._blas = ThreadpoolController()
        self._waiting_ids: list[str] = []
        self._waiting: list[np.ndarray] = []

    @property
    def learned(self) -> bool:
        return self.centres is not None

    def assign(self, ids: Sequence[str], vectors: np.ndarray) -> list[int | None]:
        """Each row's key, or None while the centres are still being sampled."""
        # One BLAS thread: OpenBLAS's idle threads spin, and take the CPU the database needs
        # for the load's COPY.
        with self._blas.limit(limits=1, user_api="blas"):
            if self.centres is not None:
                return self._keys(vectors)
            self._waiting_ids.extend(ids)
            self._waiting.append(np.asarray(vectors, dtype=np.float32))
            if len(self._waiting_ids) >= self.sample:
                self.centres = kmeans(np.concatenate(self._waiting), self.count, self.seed)
            return [None] * len(ids)

    def backlog(self) -> tuple[list[str], list[int]]:
        """The ids that went in without a key, with their keys: empty if the load stayed below
        the sample (too small to be worth ordering)."""
        if self.centres is None or not self._waiting_ids:
            return [], []
        ids = self._waiting_ids
        with self._blas.limit(limits=1, user_api="blas"):
            keys = self._keys(np.concatenate(self._waiting))
        self._waiting_ids, self._waiting = [], []
        return ids, keys

    def _keys(self, vectors: np.ndarray) -> list[int]:
        """The nearest centre, or for the backbone a random negative number."""
        assert self.centres is not None
        keys = np.argmax(np.asarray(vectors, dtype=np.float32) @ self.centres.T, axis=1)
        backbone = self._random.random(len(keys)) < BACKBONE
        keys[backbone] = -1 - self._random.integers(0, 2**31 - 1, int(backbone.sum()))
        return keys.tolist()


def kmeans(vectors: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """`count` unit-length centres for unit-length vectors (spherical k-means, seeded by
    k-means++ so that no two centres start in one cluster)."""
    rng = np.random.default_rng(seed)
    centres = np.empty((count, vectors.shape[1]), dtype=np.float32)
    centres[0] = vectors[rng.integers(len(vectors))]
    distance = np.maximum(1.0 - vectors @ centres[0], 0.0)
    for j in range(1, count):
        cumulative = np.cumsum(distance**2)
        pick = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
        centres[j] = vectors[min(pick, len(vectors) - 1)]
        distance = np.minimum(distance, np.maximum(1.0 - vectors @ centres[j], 0.0))
    for _ in range(ROUNDS):
        nearest = np.argmax(vectors @ centres.T, axis=1)
        members = np.zeros((len(vectors), count), dtype=np.float32)
        members[np.arange(len(vectors)), nearest] = 1.0
        sums = members.T @ vectors
        used = members.any(axis=0)
        centres[used] = sums[used]  # an empty centre keeps its place
        centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
    return centres

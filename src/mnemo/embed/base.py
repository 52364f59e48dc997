"""The embedder protocol. Vectors are float32, L2-normalised, so cosine = dot product."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Embedder(Protocol):
    handle: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """Return a (len(texts), dim) float32 array of unit vectors."""
        ...

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """The same for search queries, which a model may read differently (local.py)."""
        ...


def normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (vectors / norms).astype(np.float32)

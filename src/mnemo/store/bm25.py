"""BM25 over postings fetched from PostgreSQL, scored in the replica with numpy.

PostgreSQL spends about a microsecond per posting hashing and summing per passage; a query of
common words at 1,000,000 passages has some 240,000 postings (329 ms). Fetched packed, eight
bytes a posting, and summed here, the same ranking took 77 ms, and the work lands on the
replicas, which scale out, instead of the shared database. How the postings are stored and read:
store/postgres_postings.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# As SQLite's FTS5 computes it.
K1 = 1.2
B = 0.75

SEQ_SHIFT = 24
TF_SHIFT = 16
TF_MAX = 255
LENGTH_MAX = 65_535
# One posting as one bigint: passage seq (below 2^39), term frequency and passage length.
# Frequencies above 255 and lengths above 65,535 tokens are capped; BM25 has all but saturated
# long before.
PACKED_POSTING = (
    f"int8send(t.passage_seq * {1 << SEQ_SHIFT} + least(t.tf, {TF_MAX}) * {1 << TF_SHIFT}"
    f" + least(t.doclen, {LENGTH_MAX}))"
)
# The passage seq of a PACKED_POSTING value `{packed}` (8 bytes of a block, read back in SQL).
PACKED_SEQ = f"(('x' || encode({{packed}}, 'hex'))::bit(64)::bigint >> {SEQ_SHIFT})"


@dataclass(frozen=True)
class TermPostings:
    """One query lexeme: how many of the searched passages hold it, and the postings to rank
    (all of them, or only those of passages that pass the search's filters), packed."""

    frequency: int
    postings: np.ndarray


def unpack(data: bytes | None) -> np.ndarray:
    """PACKED_POSTING values as PostgreSQL sends them (big-endian), as int64."""
    if not data:
        return np.empty(0, dtype=np.int64)
    return np.frombuffer(data, dtype=">i8").astype(np.int64)


def lengths(postings: np.ndarray) -> np.ndarray:
    return postings & LENGTH_MAX


def idf(corpus: int, frequency: int) -> float:
    """FTS5's IDF: log((N - n + 0.5) / (n + 0.5)), floored just above zero so a lexeme in most
    passages still counts for a little."""
    return max(math.log((corpus - frequency + 0.5) / (frequency + 0.5)), 1e-6)


def top_passages(
    terms: Sequence[TermPostings], corpus: int, average_length: float, limit: int
) -> list[tuple[int, float]]:
    """(passage seq, score) of the `limit` best passages, best first, ties to the lower seq."""
    seqs, contributions = [], []
    norm = K1 * B / max(average_length, 1e-9)
    for term in terms:
        packed = term.postings
        if not len(packed):
            continue
        tf = ((packed >> TF_SHIFT) & TF_MAX).astype(np.float64)
        length = lengths(packed).astype(np.float64)
        weight = idf(corpus, term.frequency) * (K1 + 1)
        seqs.append(packed >> SEQ_SHIFT)
        contributions.append(weight * tf / (tf + K1 * (1 - B) + norm * length))
    if not seqs:
        return []
    seq = np.concatenate(seqs)
    # Each lexeme's postings arrive in seq order; a stable sort merges those runs cheaply.
    order = np.argsort(seq, kind="stable")
    seq = seq[order]
    starts = np.flatnonzero(np.r_[True, seq[1:] != seq[:-1]])
    passages = seq[starts]
    scores = np.add.reduceat(np.concatenate(contributions)[order], starts)
    if len(scores) > limit:
        floor = -np.partition(-scores, limit - 1)[limit - 1]
        keep = scores >= floor  # every tie at the cut, so the lowest seqs win it
        passages, scores = passages[keep], scores[keep]
    best = np.lexsort((passages, -scores))[:limit]
    return [(int(passages[i]), float(scores[i])) for i in best]

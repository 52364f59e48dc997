"""BM25 over postings fetched from the store, scored in the server with numpy.

Both stores hand `rank` the same postings (term frequency and passage length, packed), so they
rank alike. PostgreSQL spends about a microsecond per posting hashing and summing per passage;
fetched packed, eight bytes a posting, and summed here, the work lands on the replicas, which
scale out, instead of the shared database. How the postings are stored and read:
store/postgres_postings.py, store/sqlite.py.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

K1 = 1.2
B = 0.4  # passages are short and their lengths vary less than documents': less length penalty

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


def term_frequencies(terms: Sequence[str]) -> tuple[dict[str, int], int]:
    """A passage's postings as both stores keep them: each term's frequency, capped at TF_MAX
    as PostgreSQL's tsvector positions are, and the passage's length, the sum of those."""
    capped = {term: min(count, TF_MAX) for term, count in Counter(terms).items()}
    return capped, sum(capped.values())


def passages_of(postings: Sequence[np.ndarray]) -> np.ndarray:
    """The distinct passage seqs the postings belong to."""
    return np.unique(np.concatenate([packed >> SEQ_SHIFT for packed in postings]))


def restricted(postings: dict[str, np.ndarray], seqs: np.ndarray) -> dict[str, np.ndarray]:
    """Each term's postings of the passages in `seqs` only (those passing a search's filters)."""
    return {term: packed[np.isin(packed >> SEQ_SHIFT, seqs)] for term, packed in postings.items()}


def idf(corpus: int, frequency: int) -> float:
    """Lucene's IDF, log(1 + (N - n + 0.5) / (n + 0.5)): positive however common the term (a
    name in half the passages still counts)."""
    return math.log(1 + (max(corpus, frequency) - frequency + 0.5) / (frequency + 0.5))


def rank(
    terms: Sequence[tuple[np.ndarray, np.ndarray]], corpus: int, limit: int
) -> list[tuple[int, float]]:
    """(passage seq, score) of the best `limit` passages. `terms` holds, per query term, its
    postings in the searched passages and those of the passages that pass the search's other
    filters. A term's frequency and the average length come from the first: the average length
    is that of the passages holding a query term, counted once per term they hold."""
    held = [(found, passing) for found, passing in terms if len(found)]
    if not held:
        return []
    frequency = sum(len(found) for found, _ in held)
    length = sum(int(lengths(found).sum()) for found, _ in held)
    return top_passages(
        [TermPostings(len(found), passing) for found, passing in held],
        corpus=corpus,
        average_length=length / frequency,
        limit=limit,
    )


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

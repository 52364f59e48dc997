"""Ranking packed postings: the part of PostgreSQL keyword search that runs in the replica."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from mnemo.store import bm25


def _packed(postings: list[tuple[int, int, int]]) -> np.ndarray:
    """(seq, tf, length) as PostgreSQL's bm25.PACKED_POSTING sends them, unpacked."""
    values = [(seq << 24) + (min(tf, 255) << 16) + min(n, 65_535) for seq, tf, n in postings]
    return bm25.unpack(np.array(values, dtype=">i8").tobytes())


def _score(corpus: int, frequency: int, tf: int, length: int, average: float) -> float:
    k1, b = bm25.K1, bm25.B
    weight = bm25.idf(corpus, frequency) * (k1 + 1)
    return weight * tf / (tf + k1 * (1 - b + b * length / average))


def test_scores_sum_over_lexemes_and_rank_best_first() -> None:
    helm = bm25.TermPostings(2, _packed([(10, 1, 4), (11, 2, 8)]))
    pod = bm25.TermPostings(1, _packed([(11, 1, 8)]))
    ranked = bm25.top_passages([helm, pod], corpus=6, average_length=6.0, limit=10)
    assert [seq for seq, _ in ranked] == [11, 10]
    assert ranked[0][1] == pytest.approx(_score(6, 2, 2, 8, 6.0) + _score(6, 1, 1, 8, 6.0))
    assert ranked[1][1] == pytest.approx(_score(6, 2, 1, 4, 6.0))


def test_ties_at_the_cut_go_to_the_lowest_seqs() -> None:
    same = bm25.TermPostings(5, _packed([(seq, 1, 5) for seq in (40, 7, 23, 3, 90)]))
    ranked = bm25.top_passages([same], corpus=100, average_length=5.0, limit=3)
    assert [seq for seq, _ in ranked] == [3, 7, 23]


def test_term_frequency_is_capped_where_bm25_has_saturated() -> None:
    spam = bm25.TermPostings(1, _packed([(1, 10_000, 10_000)]))
    [(seq, score)] = bm25.top_passages([spam], corpus=10, average_length=10_000.0, limit=5)
    assert seq == 1
    assert score == pytest.approx(_score(10, 1, 255, 10_000, 10_000.0))
    assert score == pytest.approx(_score(10, 1, 10_000, 10_000, 10_000.0), rel=0.01)


def test_no_postings_rank_nothing() -> None:
    assert bm25.top_passages([bm25.TermPostings(0, bm25.unpack(b""))], 10, 5.0, 5) == []


def test_a_term_in_most_passages_still_counts() -> None:
    assert 0 < bm25.idf(100, 90) < bm25.idf(100, 10)


def test_sqlite_packs_postings_as_postgresql_does() -> None:
    from mnemo.store.sqlite import _PACKED

    conn = sqlite3.connect(":memory:")
    rows = [(10, 1, 4), (11, 300, 70_000), (2**38, 7, 9)]
    select = f"SELECT {_PACKED.format(t='p')} FROM (SELECT ? AS seq, ? AS tf, ? AS doclen) p"
    packed = [conn.execute(select, row).fetchone()[0] for row in rows]
    assert packed == _packed(rows).tolist()


def test_frequencies_are_capped_and_the_length_is_their_sum() -> None:
    frequencies, length = bm25.term_frequencies(["a"] * 300 + ["b", "b"])
    assert frequencies == {"a": 255, "b": 2}
    assert length == 257


def test_rank_takes_frequencies_from_all_postings_and_ranks_only_passing_ones() -> None:
    found = _packed([(1, 1, 4), (2, 1, 4), (3, 1, 4)])
    passing = found[1:2]
    ranked = bm25.rank([(found, passing)], corpus=10, limit=5)
    assert [seq for seq, _ in ranked] == [2]
    assert ranked[0][1] == pytest.approx(_score(10, 3, 1, 4, 4.0))


def test_corpus_sizes_count_small_scopes_each_time_and_reuse_a_large_ones_count() -> None:
    from mnemo.store.shared import CorpusSizes

    sizes = CorpusSizes(exact_max=10, ttl=60)
    documents = {("small",): 4, ("large",): 500}
    asked: list[tuple[tuple[str, ...] | None, int | None]] = []

    def counter(scope: tuple[str, ...]):  # type: ignore[no-untyped-def]
        def count(limit: int | None) -> int:
            asked.append((scope, limit))
            return documents[scope] if limit is None else min(documents[scope], limit)

        return count

    assert sizes.size(("small",), counter(("small",))) == 4
    documents[("small",)] = 5
    assert sizes.size(("small",), counter(("small",))) == 5  # counted again
    assert sizes.size(("large",), counter(("large",))) == 500
    documents[("large",)] = 510
    assert sizes.size(("large",), counter(("large",))) == 500  # reused
    assert asked == [(("small",), 11), (("small",), 11), (("large",), 11), (("large",), None)]

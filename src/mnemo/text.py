"""Turning free text into lexical terms: one analyzer for every store's keyword search.

Passages are analysed here, in Python, and the stores keep and score the resulting terms, so
SQLite and PostgreSQL index and rank exactly alike. The analysis:

- words are runs of letters and digits; identifiers are split as well as kept whole
  (`snake_case` -> `snake`, `case`, `snake_case`; `getUserName` -> `get`, `user`, `name`,
  `getusername`; `src/app.py` -> `src`, `app`, `py`);
- lower-cased, English stop words dropped, Snowball English stems (`painted` -> `paint`);
- a passage is indexed with its own terms counted OWN_WEIGHT times and the terms of its context
  (the two passages before it, see `service.py`) once: a two-field BM25 in one posting list.

Change anything here and bump ANALYZER_VERSION: stores re-analyse their passages at start.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import Stemmer

ANALYZER_VERSION = "snowball-en-2"

_WORD = re.compile(r"\w+", re.UNICODE)
# A letter inside a word that is not ASCII lower case (getUserName, HTTPServer, also café):
# such text takes the careful path through _parts.
_INNER_CAPITAL = re.compile(r"\w[^\W\d_a-z]", re.UNICODE)

# Function words carry no signal for BM25 and make "match any term" queries touch most rows.
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves""".split()
)

MAX_TERMS = 64  # distinct terms a query is searched with
MAX_TERM_CHARS = 64  # longer "words" (hashes, base64) are not indexed
OWN_WEIGHT = 3  # a passage's own terms count this many times against its context's once

_stemmer = Stemmer.Stemmer("english", 0)  # its own cache is slower than none; ours is a dict
_stems: dict[str, str] = {}
STEM_CACHE_SIZE = 200_000


def _parts(token: str) -> list[str]:
    """An identifier's parts: split at underscores, at a lower-case letter followed by an
    upper-case one, and before the last capital of a run followed by lower case (HTTPServer)."""
    rest = token[1:]
    if "_" not in token and rest == rest.lower():
        return [token]  # no place to split: most words
    parts: list[str] = []
    current = ""
    for i, char in enumerate(token):
        if char == "_":
            parts.append(current)
            current = ""
            continue
        if current and char.isupper():
            before = current[-1]
            after = token[i + 1] if i + 1 < len(token) else ""
            if before.islower() or (before.isupper() and after.islower()):
                parts.append(current)
                current = ""
        current += char
    parts.append(current)
    return [part for part in parts if part]


def _words(text: str) -> list[str]:
    if "_" not in text and not _INNER_CAPITAL.search(text):
        # No identifier to split (most prose): one pass over the lower-cased text.
        return [
            w
            for w in _WORD.findall(text.lower())
            if len(w) <= MAX_TERM_CHARS and w not in STOPWORDS
        ]
    words: list[str] = []
    for token in _WORD.findall(text):
        parts = _parts(token)
        words.extend(part.lower() for part in parts)
        if len(parts) > 1:
            words.append("".join(parts).lower())
    return [w for w in words if len(w) <= MAX_TERM_CHARS and w not in STOPWORDS]


def analyze(text: str) -> list[str]:
    """The terms of `text`, in order, repeats kept."""
    terms = []
    for word in _words(text):
        stem = _stems.get(word)
        if stem is None:
            if len(_stems) >= STEM_CACHE_SIZE:
                _stems.clear()
            stem = _stems[word] = _stemmer.stemWord(word)
        terms.append(stem)
    return terms


def search_terms(query: str) -> list[str]:
    """Distinct terms of a query, at most MAX_TERMS."""
    return list(dict.fromkeys(analyze(query)))[:MAX_TERMS]


def index_terms(text: str, context: Sequence[str] = ()) -> list[str]:
    """What a passage is indexed under: its own terms OWN_WEIGHT times, then its context's."""
    return analyze(text) * OWN_WEIGHT + list(context)

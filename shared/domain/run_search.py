"""Finding a run by what a person remembers of it: a word or the start of its name, its id, its
description, the model, who made it. Pure.

Firestore has no substring query, so a run carries `search_tokens`: the lowercase prefixes of each of
those values from each of its words on. A search asks Firestore for one of its terms with
`array-contains` (served by the (team, search_tokens, created_at) index, terraform/firestore.tf) and
checks every term against the run the same way here, so "movie recs" finds "Movie recs, weekly".
The tokens are recomputed on every write (run_document.check), so they never lag the fields.
"""
from __future__ import annotations

import re

FIELD = "search_tokens"
VERSION = 1  # raise it when `tokens` changes: the backfill (shared/services/search_index.py) sweeps again
# A prefix longer than this is not stored; a longer term is matched on its first MAX_PREFIX characters
# in the query and in full against the run's text here. Bounded so a run's tokens stay a few hundred
# (each is an index entry: https://firebase.google.com/docs/firestore/quotas#indexes).
MAX_PREFIX = 24
MAX_WORDS = 40  # of a long description, the first words only
_WORD = re.compile(r"[a-z0-9]+")
# What a search looks in (a run has no tags field): its names, where a search may run across words
# ("recs-week" in "recs-weekly-v2"), then its description, word by word (a long text would otherwise
# cost hundreds of tokens, each a stored index entry and bytes in every listener's snapshot).
PHRASED = ("id", "name", "ml_model", "created_by")
NAMED = (("dataset", "name"), ("base_experiment", "name"), ("base_experiment", "display_name"))


def _phrases(doc: dict) -> list[str]:
    values = [doc.get(key) for key in PHRASED]
    values += [(doc.get(part) or {}).get(key) if isinstance(doc.get(part), dict) else None for part, key in NAMED]
    if doc.get("run_number") is not None:
        values.append(f"#{doc['run_number']}")
    return [str(v).lower().strip() for v in values if v]


def _words(doc: dict) -> list[str]:
    return _WORD.findall(str(doc.get("description") or "").lower())[:MAX_WORDS]


def _values(doc: dict) -> list[str]:
    return _phrases(doc) + _words(doc)


def _prefixes(text: str) -> set[str]:
    return {text[:n] for n in range(1, min(len(text), MAX_PREFIX) + 1)}


def tokens(doc: dict) -> list[str]:
    """The run's search tokens: the prefixes of each name from each of its words on ("recs-weekly-v2"
    gives "recs-w", "weekly-v", "v2", …), and of each word of its description."""
    found: set[str] = set()
    for value in _phrases(doc):
        found |= _prefixes(value)
        for word in list(_WORD.finditer(value))[:MAX_WORDS]:
            found |= _prefixes(value[word.start():])
    for word in _words(doc):
        found |= _prefixes(word)
    return sorted(found)


def indexed(doc: dict) -> dict:
    """The document with its search tokens as its fields say now."""
    return {**doc, FIELD: tokens(doc)}


def terms(text: str) -> list[str]:
    """The terms of a search: lowercase, split on whitespace, each one a token or longer."""
    return [t for t in (text or "").lower().split() if t]


def query_token(search_terms: list[str]) -> str:
    """The token Firestore is asked for: the longest term's (the most selective)."""
    return max(search_terms, key=len)[:MAX_PREFIX]


def matches(doc: dict, search_terms: list[str]) -> bool:
    """Every term starts at a word of one of the run's values (computed from the fields, so a run
    written before it had tokens matches too); a term past MAX_PREFIX must also appear in full."""
    have = set(tokens(doc))
    text = " ".join(_values(doc))
    return all(term[:MAX_PREFIX] in have and (len(term) <= MAX_PREFIX or term in text) for term in search_terms)

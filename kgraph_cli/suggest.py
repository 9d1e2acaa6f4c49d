"""Did-you-mean suggestions."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, candidates: Iterable[str], n: int = 1) -> list[str]:
    """The candidates closest to `word`, case-insensitively, best first."""
    pool = list(candidates)
    lowered = {c.lower(): c for c in pool}
    exact = lowered.get(word.lower())
    if exact is not None and exact != word:
        return [exact]
    matches = difflib.get_close_matches(word.lower(), list(lowered), n=n, cutoff=0.6)
    return [lowered[m] for m in matches]


def listed(names: Iterable[str], limit: int = 10) -> str:
    """Names for a hint, comma-separated: the first `limit`, then "and N more",
    so that a CSV of 785 columns does not print all of them."""
    shown = list(names)
    if len(shown) <= limit:
        return ", ".join(shown)
    return f"{', '.join(shown[:limit])} and {len(shown) - limit:,} more"


def did_you_mean(word: str, candidates: Iterable[str], fallback: str = "") -> str:
    """A hint sentence: 'did you mean X?', or `fallback` when nothing is close."""
    return _hint(word, sorted(set(candidates)), fallback)


class Suggester:
    """did_you_mean for many words against one pool of candidates (every
    unknown ref of a graph of thousands of nodes): the pool is sorted once,
    each word's hint is found once, and after the first `limit` distinct
    words only the fallback is given, so hints cost at most `limit` scans of
    the pool however many names are wrong."""

    def __init__(self, candidates: Iterable[str], fallback: str = "", limit: int = 25):
        self.pool = sorted(set(candidates))
        self.fallback = fallback
        self.limit = limit
        self.hints: dict[str, str] = {}

    def __call__(self, word: str) -> str:
        hint = self.hints.get(word)
        if hint is None:
            hint = _hint(word, self.pool, self.fallback, len(self.hints) < self.limit)
            self.hints[word] = hint
        return hint


def _hint(word: str, pool: list[str], fallback: str, suggest: bool = True) -> str:
    match = closest(word, pool) if suggest else []
    if match:
        return f"did you mean '{match[0]}'?"
    if fallback:
        return fallback
    if not pool:
        return ""
    return f"expected one of: {listed(pool)}"

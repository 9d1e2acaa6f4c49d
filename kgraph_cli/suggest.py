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


def did_you_mean(word: str, candidates: Iterable[str], fallback: str = "") -> str:
    """A hint sentence: 'did you mean X?', or `fallback` when nothing is close."""
    pool = sorted(set(candidates))
    match = closest(word, pool)
    if match:
        return f"did you mean '{match[0]}'?"
    if fallback:
        return fallback
    if not pool:
        return ""
    shown = ", ".join(pool[:8]) + (", ..." if len(pool) > 8 else "")
    return f"expected one of: {shown}"

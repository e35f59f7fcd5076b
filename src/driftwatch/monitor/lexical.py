"""Words for matching text against text without any model: lower-cased tokens split on
everything that is not a letter or a digit (so ``oversight_config.yaml`` gives
``oversight config yaml``), English stop words dropped, a light suffix stemmer
(``changed``/``changes`` → ``chang``), and a prefix match for abbreviations
(``config`` ~ ``configuration``).

This is deliberately crude: it knows no synonyms ("settings" is not "configuration"),
no negation and no word order. The monitors that use it say so. Pure functions.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Final

__all__ = ["STOPWORDS", "TermIndex", "overlapping", "stem", "terms", "words"]

_TOKEN = re.compile(r"[a-z0-9]+")
_MIN_PREFIX: Final = 4

STOPWORDS: Final = frozenset(
    """a about above after again against all also am an and any anything are as at be
    because been before being below between both but by can could did do does doing done
    down during each either else even ever every everything few for from further had has
    have having he her here hers him his how i if in into is it its itself just keep kept
    let like ll made make many may me might more most much must my myself need neither
    never no nor not nothing now of off on once one only or other our ours out over own
    please re same shall she should so some something still such than that the their them
    then there these they this those through to too under until up us very ve was way we
    were what when where which while who whom why will with won would yes yet you your
    okay ok sure certainly going gonna""".split()  # noqa: SIM905 - a word list reads as text
)


def words(text: str) -> list[str]:
    """Lower-cased tokens without stop words and single characters."""
    return [w for w in _TOKEN.findall(text.lower()) if len(w) > 1 and w not in STOPWORDS]


@functools.lru_cache(maxsize=16_384)  # a run's vocabulary is small and repeats
def stem(word: str) -> str:
    """A light English suffix stripper (plural, -ing, -ed, final e); not Porter."""
    if word.isdigit() or len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if word.endswith("ing") and len(word) >= 6:
        word = word[:-3]
    elif word.endswith("ed") and len(word) >= 5:
        word = word[:-2]
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    return word


def terms(text: str) -> list[str]:
    """Stemmed content words of ``text``, in order (duplicates kept)."""
    return [stem(w) for w in words(text)]


class TermIndex:
    """A set of terms to match others against: equal, or one abbreviates the other (a
    shared prefix of at least four letters, e.g. ``config`` ~ ``configuration``).
    Indexed by that prefix, so matching is about linear in the terms looked up."""

    def __init__(self, available: Iterable[str]) -> None:
        self.terms = frozenset(available)
        self._by_prefix: dict[str, list[str]] = {}
        for term in self.terms:
            if len(term) >= _MIN_PREFIX and not term.isdigit():
                self._by_prefix.setdefault(term[:_MIN_PREFIX], []).append(term)

    def __len__(self) -> int:
        return len(self.terms)

    def shared(self, wanted: Iterable[str]) -> set[str]:
        """The terms of ``wanted`` that match some indexed term."""
        out: set[str] = set()
        for term in set(wanted):
            if term in self.terms:
                out.add(term)
            elif len(term) >= _MIN_PREFIX and not term.isdigit():
                candidates = self._by_prefix.get(term[:_MIN_PREFIX], ())
                if any(c.startswith(term) or term.startswith(c) for c in candidates):
                    out.add(term)
        return out


def overlapping(wanted: Iterable[str], available: Iterable[str]) -> set[str]:
    """The terms of ``wanted`` that equal, or abbreviate / are abbreviated by (a shared
    prefix of at least four letters), some term of ``available``."""
    return TermIndex(available).shared(wanted)

"""Character perturbations: keyboard typos, inserted, deleted and transposed characters, dropped punctuation.

Public through :mod:`overfit_lab.diagnostics.perturb`.
"""

from __future__ import annotations

import re
import string

import numpy as np

from ..data.augment import KEYBOARD_NEIGHBOURS
from ._perturb_base import _choose, _splice

_ALNUM_RUN = re.compile(r"[^\W_]+")
_PUNCTUATION = frozenset(string.punctuation)


def _with_case_of(ch: str, replacement: str) -> str:
    return replacement.upper() if ch.isupper() else replacement


def _neighbour(ch: str, rng: np.random.Generator) -> str:
    near = KEYBOARD_NEIGHBOURS[ch.lower()]
    return _with_case_of(ch, near[int(rng.integers(len(near)))])


def _delete_chars(text: str, positions: list[int], severity: float, rng: np.random.Generator) -> str:
    chosen = _choose(len(positions), severity, rng)
    return _splice(text, [(positions[i], positions[i] + 1, "") for i in chosen])


def _keyboard_positions(text: str) -> list[int]:
    return [i for i, ch in enumerate(text) if ch.lower() in KEYBOARD_NEIGHBOURS]


def keyboard_typo(text: str, severity: float, rng: np.random.Generator) -> str:
    """Replace letters by a random QWERTY neighbour (same row or adjacent row, column +- 1).

    Eligible units: the ASCII letters. Case is kept; the length of the text does not change.
    """
    positions = _keyboard_positions(text)
    chosen = sorted(positions[i] for i in _choose(len(positions), severity, rng))
    return _splice(text, [(p, p + 1, _neighbour(text[p], rng)) for p in chosen])


def char_insert(text: str, severity: float, rng: np.random.Generator) -> str:
    """Insert a keyboard neighbour of a letter right after it (a "fat finger" double strike).

    Eligible units: the ASCII letters; each touched letter is followed by one inserted letter.
    """
    positions = _keyboard_positions(text)
    chosen = sorted(positions[i] for i in _choose(len(positions), severity, rng))
    return _splice(text, [(p + 1, p + 1, _neighbour(text[p], rng)) for p in chosen])


def char_delete(text: str, severity: float, rng: np.random.Generator) -> str:
    """Delete letters or digits, never the first one of an alphanumeric run.

    Eligible units: every alphanumeric character but the first of its run, so each word keeps at
    least one character and the text never empties.
    """
    positions = [i for m in _ALNUM_RUN.finditer(text) for i in range(m.start() + 1, m.end())]
    return _delete_chars(text, positions, severity, rng)


def char_transpose(text: str, severity: float, rng: np.random.Generator) -> str:
    """Swap adjacent characters inside words ("teh" for "the").

    Eligible units: adjacent pairs of distinct alphanumeric characters in the same run. The
    ``k`` drawn pairs are swapped in the order drawn, skipping any pair that shares a character
    with one already swapped, so up to ``k`` pairs move.
    """
    pairs = [i for m in _ALNUM_RUN.finditer(text) for i in range(m.start(), m.end() - 1)
             if text[i] != text[i + 1]]
    used: set[int] = set()
    spans = []
    for i in _choose(len(pairs), severity, rng):
        p = pairs[i]
        if p not in used and p + 1 not in used:
            used.update((p, p + 1))
            spans.append((p, p + 2, text[p + 1] + text[p]))
    return _splice(text, spans)


def punctuation_strip(text: str, severity: float, rng: np.random.Generator) -> str:
    """Delete ASCII punctuation characters (apostrophes and hyphens inside words included).

    Eligible units: the characters of ``string.punctuation``; a text without any is unchanged.
    """
    positions = [i for i, ch in enumerate(text) if ch in _PUNCTUATION]
    return _delete_chars(text, positions, severity, rng)

"""Word perturbations: casing, added punctuation, extra whitespace, dropped and swapped words.

Public through :mod:`overfit_lab.diagnostics.perturb`.
"""

from __future__ import annotations

import re

import numpy as np

from ._perturb_base import _choose, _splice

_WORD = re.compile(r"\S+")
_ADDED_PUNCTUATION = (",", ".", "!", "?", ";", ":", "...")


def _words(text: str) -> list[re.Match[str]]:
    return list(_WORD.finditer(text))


def casing(text: str, severity: float, rng: np.random.Generator) -> str:
    """Flip the case of every letter of a word (``str.swapcase``: "Good" -> "gOOD").

    Eligible units: whitespace-separated words with at least one cased letter.
    """
    words = [m for m in _words(text) if m.group().swapcase() != m.group()]
    return _splice(text, [(words[i].start(), words[i].end(), words[i].group().swapcase())
                          for i in _choose(len(words), severity, rng)])


def punctuation_add(text: str, severity: float, rng: np.random.Generator) -> str:
    """Append a random mark from ``, . ! ? ; : ...`` to words.

    Eligible units: whitespace-separated words; each touched word gets one mark right after it.
    """
    words = _words(text)
    chosen = sorted(_choose(len(words), severity, rng))
    return _splice(text, [(words[i].end(), words[i].end(),
                           _ADDED_PUNCTUATION[int(rng.integers(len(_ADDED_PUNCTUATION)))]) for i in chosen])


def extra_whitespace(text: str, severity: float, rng: np.random.Generator) -> str:
    """Widen the gaps between words by one to three extra spaces.

    Eligible units: the whitespace gaps between consecutive words (a single word is unchanged).
    """
    words = _words(text)
    gaps = [words[i].end() for i in range(len(words) - 1)]
    chosen = sorted(_choose(len(gaps), severity, rng))
    return _splice(text, [(gaps[i], gaps[i], " " * int(rng.integers(1, 4))) for i in chosen])


def word_dropout(text: str, severity: float, rng: np.random.Generator) -> str:
    """Delete words with the whitespace that follows them (precedes them, for the last word).

    Eligible units: whitespace-separated words; at most ``n - 1`` are dropped, so the text never
    empties and a one-word text is unchanged.
    """
    words = _words(text)
    dropped = set(_choose(len(words), severity, rng, cap=len(words) - 1))
    if not dropped:
        return text
    last_kept = max(i for i in range(len(words)) if i not in dropped)
    spans = [(words[i].start(), words[i + 1].start(), "") for i in sorted(dropped) if i < last_kept]
    if last_kept < len(words) - 1:  # the tail after the last kept word goes, with its leading gap
        spans.append((words[last_kept].end(), words[-1].end(), ""))
    return _splice(text, spans)


def word_swap(text: str, severity: float, rng: np.random.Generator) -> str:
    """Move words to each other's places: the touched words are rotated one step along the order drawn.

    Eligible units: whitespace-separated words; at least two are touched when ``severity > 0``
    (a single pair is an ordinary swap). The gaps stay where they are and the multiset of words
    is kept; a text of fewer than two words is unchanged.
    """
    words = _words(text)
    if len(words) < 2:
        return text
    chosen = _choose(len(words), severity, rng)
    if len(chosen) == 1:
        chosen.append(int(rng.choice([i for i in range(len(words)) if i != chosen[0]])))
    moved = chosen[1:] + chosen[:1]
    return _splice(text, [(words[dst].start(), words[dst].end(), words[src].group())
                          for dst, src in zip(chosen, moved, strict=True)])

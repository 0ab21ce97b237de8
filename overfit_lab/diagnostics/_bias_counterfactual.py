"""Counterfactual identity swaps: how predictions move when identity words are swapped.

* ``counterfactual_flips``: flip rate and mean probability change between inputs and their
  counterfactuals;
* ``swap_identity_terms``: the counterfactual text (she <-> he, ...).

Public through :mod:`overfit_lab.diagnostics.bias`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ._validation import check_proba

GENDER_PAIRS: tuple[tuple[str, str], ...] = (
    ("she", "he"), ("her", "his"), ("her", "him"), ("hers", "his"), ("herself", "himself"),
    ("woman", "man"), ("women", "men"), ("girl", "boy"), ("girls", "boys"),
    ("mother", "father"), ("mothers", "fathers"), ("mom", "dad"), ("moms", "dads"),
    ("sister", "brother"), ("sisters", "brothers"), ("daughter", "son"), ("daughters", "sons"),
    ("wife", "husband"), ("wives", "husbands"), ("girlfriend", "boyfriend"),
    ("aunt", "uncle"), ("niece", "nephew"), ("grandmother", "grandfather"),
    ("lady", "gentleman"), ("ladies", "gentlemen"), ("queen", "king"), ("female", "male"),
    ("mrs", "mr"), ("ms", "mr"), ("madam", "sir"),
)
"""English gender pairs for :func:`swap_identity_terms`. The first pair naming a word wins, so
``her -> his`` (never ``him``), ``his -> her`` (never ``hers``), ``him -> her``, ``hers -> his``
and ``mr -> mrs``: "I saw her" becomes the ungrammatical "I saw his"."""

def counterfactual_flips(
    proba_original: np.ndarray, proba_counterfactual: np.ndarray, *, positive_label: int = 1
) -> dict[str, float]:
    """How predictions move between inputs and their identity-swapped counterfactuals.

    ``flip_rate = (1/n) Σ_i 1[argmax p_i ≠ argmax p'_i]`` and
    ``mean_abs_change = (1/n) Σ_i |p_i,pos - p'_i,pos|``; both 0 for a model that ignores the
    swapped words, lower is better.

    Parameters
    ----------
    proba_original, proba_counterfactual : ndarray of shape (n, K)
        Predicted probabilities on the original texts and on their counterfactuals (same order).
    positive_label : int, default 1
        Class whose probability change is averaged.

    Examples
    --------
    >>> p = np.array([[0.4, 0.6], [0.9, 0.1]])
    >>> q = np.array([[0.7, 0.3], [0.8, 0.2]])
    >>> {k: round(v, 6) for k, v in counterfactual_flips(p, q).items()}
    {'flip_rate': 0.5, 'mean_abs_change': 0.2}
    """
    p = check_proba(proba_original, name="proba_original")
    q = check_proba(proba_counterfactual, name="proba_counterfactual")
    if p.shape != q.shape:
        raise ValueError(f"proba_counterfactual must have shape {p.shape} like proba_original; got {q.shape}")
    if not 0 <= positive_label < p.shape[1]:
        raise ValueError(f"positive_label must be in 0..{p.shape[1] - 1}, got {positive_label}")
    return {
        "flip_rate": float((p.argmax(axis=1) != q.argmax(axis=1)).mean()),
        "mean_abs_change": float(np.abs(p[:, positive_label] - q[:, positive_label]).mean()),
    }


def _swap_map(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        if len(pair) != 2 or not all(isinstance(w, str) and w.strip() for w in pair):
            raise ValueError(f"pairs must hold (word, word) pairs of non-empty strings; got {pair!r}")
        a, b = (w.lower() for w in pair)
        if a == b:
            raise ValueError(f"pairs must swap two different words; got {pair!r}")
        mapping.setdefault(a, b)
        mapping.setdefault(b, a)
    return mapping


def _match_case(source: str, target: str) -> str:
    if len(source) > 1 and source.isupper():
        return target.upper()
    if source[:1].isupper():
        return target[:1].upper() + target[1:]
    return target


def swap_identity_terms(text: str, pairs: Sequence[tuple[str, str]] = GENDER_PAIRS) -> str:
    """Swap whole words of ``pairs`` both ways (``a -> b`` and ``b -> a``) in one pass.

    Matching is case-insensitive on word boundaries (``\\b``), so "he" inside "the" or "shell"
    is untouched while "he's" becomes "she's". The case of each replaced word is kept: all
    caps ("HE" -> "SHE"), capitalized ("He" -> "She"), otherwise lowercase. When a word appears
    in several pairs the first pair wins (see :data:`GENDER_PAIRS`).

    Parameters
    ----------
    text : str
        Text to rewrite.
    pairs : sequence of (str, str), default GENDER_PAIRS
        Words to swap, for example ``[("she", "he"), ("mary", "john")]``.

    Examples
    --------
    >>> swap_identity_terms("She told the man: HE is her brother.")
    'He told the woman: SHE is his sister.'
    """
    mapping = _swap_map(pairs)
    if not mapping:
        return text
    words = sorted(mapping, key=len, reverse=True)
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE)
    return pattern.sub(lambda m: _match_case(m.group(0), mapping[m.group(0).lower()]), text)

"""The registry of perturbations, readable severities, the headline table and batch helpers.

Public through :mod:`overfit_lab.diagnostics.perturb`, whose docstring justifies the headline table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from ._perturb_base import Perturbation, _check_severity
from ._perturb_char import char_delete, char_insert, char_transpose, keyboard_typo, punctuation_strip
from ._perturb_lexicon import contraction, identity_swap, synonym
from ._perturb_word import casing, extra_whitespace, punctuation_add, word_dropout, word_swap
from ._validation import check_texts

PERTURBATIONS: dict[str, Perturbation] = {
    "keyboard_typo": keyboard_typo,
    "char_insert": char_insert,
    "char_delete": char_delete,
    "char_transpose": char_transpose,
    "casing": casing,
    "punctuation_add": punctuation_add,
    "punctuation_strip": punctuation_strip,
    "extra_whitespace": extra_whitespace,
    "word_dropout": word_dropout,
    "word_swap": word_swap,
    "synonym": synonym,
    "contraction": contraction,
    "identity_swap": identity_swap,
}


# -- readable severities and the headline table -------------------------------------------------------

LETTERS_PER_WORD = 4.8  # English word tokens (Norvig 2013: 4.79)
# eligible units per word of the character ops: deletion spares, and transposition needs, a first letter
_UNITS_PER_WORD = {"keyboard_typo": LETTERS_PER_WORD, "char_insert": LETTERS_PER_WORD,
                   "char_delete": LETTERS_PER_WORD - 1, "char_transpose": LETTERS_PER_WORD - 1}
CHARACTER_OPS = tuple(_UNITS_PER_WORD)
WORD_OPS = ("casing", "punctuation_add", "extra_whitespace", "word_dropout", "word_swap")
SEVERITY_UNITS: dict[str, str] = {
    "keyboard_typo": "letters", "char_insert": "letters", "char_delete": "letters and digits",
    "char_transpose": "adjacent letter pairs", "punctuation_strip": "punctuation marks",
    "casing": "words", "punctuation_add": "words", "extra_whitespace": "gaps between words",
    "word_dropout": "words", "word_swap": "words", "synonym": "lexicon words",
    "contraction": "contractions and their long forms", "identity_swap": "gendered words and names",
}
# op -> severity of the headline figure, None for curves only (see the module docstring)
HEADLINE_SEVERITY: dict[str, float | None] = {
    **dict.fromkeys(CHARACTER_OPS, 0.05),
    "casing": 1.0, "punctuation_strip": 1.0, "extra_whitespace": 1.0, "punctuation_add": 0.1,
    "synonym": 1.0, "contraction": 1.0, "identity_swap": 1.0,
    "word_dropout": None, "word_swap": None,
}


def describe_severity(op: str, severity: float) -> str:
    """``severity`` of ``op`` in readable terms: the share of its units, and per word where it applies.

    Examples
    --------
    >>> describe_severity("keyboard_typo", 0.05)
    '5% of letters ≈ 0.24 edits per word (one every 4.2 words)'
    >>> describe_severity("word_dropout", 0.1)
    '10% of words (one in 10)'
    >>> describe_severity("synonym", 1.0)
    'every match among lexicon words'
    """
    severity = _check_severity(severity)
    unit = SEVERITY_UNITS.get(op, "the op's units")
    if severity == 0:
        return "unchanged"
    if op in CHARACTER_OPS:
        per_word = severity * _UNITS_PER_WORD[op]
        every = f" (one every {1 / per_word:.2g} words)" if per_word < 1 else ""
        return f"{severity:.0%} of {unit} ≈ {per_word:.2g} edits per word{every}"
    if op in WORD_OPS or op == "punctuation_strip":
        return f"all {unit}" if severity == 1 else f"{severity:.0%} of {unit} (one in {1 / severity:.2g})"
    return f"every match among {unit}" if severity == 1 else f"{severity:.0%} of {unit}"


def headline_severities(ops: Iterable[str], overrides: Mapping[str, float | None] | None = None
                        ) -> dict[str, float | None]:
    """The severity at which each op enters the headline worst drop (``None``: curves only).

    ``overrides`` (a suite's ``robustness.headline``) wins over :data:`HEADLINE_SEVERITY`, with 0 or
    ``None`` for curves only; an op in neither (a registered custom op) has ``None`` until the
    suite states a severity for it.

    Examples
    --------
    >>> headline_severities(["keyboard_typo", "word_dropout"], {"word_dropout": 0.1})
    {'keyboard_typo': 0.05, 'word_dropout': 0.1}
    """
    overrides = dict(overrides or {})
    out = {}
    for op in ops:
        value = overrides[op] if op in overrides else HEADLINE_SEVERITY.get(op)
        if value is not None and not 0 <= float(value) <= 1:
            raise ValueError(f"headline severity of {op!r} must be in (0, 1], or 0 for curves only; "
                             f"got {value}")
        out[op] = None if value is None or float(value) == 0 else float(value)
    return out


def register_perturbation(name: str, fn: Perturbation, *, replace: bool = False) -> Perturbation:
    """Add ``fn`` to :data:`PERTURBATIONS` under ``name`` (an existing name needs ``replace=True``)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string; got {name!r}")
    if not callable(fn):
        raise ValueError(f"fn must be callable as fn(text, severity, rng); got {type(fn).__name__}")
    if name in PERTURBATIONS and not replace:
        raise ValueError(f"perturbation {name!r} is already registered; pass replace=True to override it")
    PERTURBATIONS[name] = fn
    return fn


def get_perturbation(name: str) -> Perturbation:
    """The registered op called ``name``."""
    try:
        return PERTURBATIONS[name]
    except KeyError:
        known = ", ".join(sorted(PERTURBATIONS))
        raise ValueError(f"unknown perturbation {name!r}; known: {known}") from None


def perturb_texts(texts: Sequence[str], op: str | Perturbation, severity: float, *, seed: int) -> list[str]:
    """Apply one op to every text with a generator of its own, ``np.random.default_rng(seed)``.

    The generator is created per call and used on the texts in order, so the result depends only
    on ``(texts, op, severity, seed)``, not on any other random state.
    """
    texts = check_texts(texts)
    _check_severity(severity)
    fn = get_perturbation(op) if isinstance(op, str) else op
    if not callable(fn):
        raise ValueError(f"op must be a registered name or a callable; got {type(op).__name__}")
    rng = np.random.default_rng(seed)
    return [fn(text, severity, rng) for text in texts]


def changed_mask(texts: Sequence[str], perturbed: Sequence[str]) -> np.ndarray:
    """Boolean mask of the texts an op actually changed (the ``changed`` of ``robustness_report``)."""
    if len(texts) != len(perturbed):
        raise ValueError(f"perturbed must have len(texts) = {len(texts)} entries; got {len(perturbed)}")
    return np.array([a != b for a, b in zip(texts, perturbed, strict=True)], dtype=bool)

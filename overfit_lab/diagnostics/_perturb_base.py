"""Shared machinery of the text perturbations: the op type, severity -> touched units, splicing.

Public through :mod:`overfit_lab.diagnostics.perturb`, whose docstring defines severity.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

Perturbation = Callable[[str, float, np.random.Generator], str]
Span = tuple[int, int, str]  # replace text[start:end] by the string


def _check_severity(severity: float) -> float:
    severity = float(severity)
    if not 0.0 <= severity <= 1.0:
        raise ValueError(f"severity must be in [0, 1]; got {severity}")
    return severity


def _n_touched(severity: float, n: int) -> int:
    """``max(1, round(severity * n))`` for ``severity > 0`` and ``n > 0``, else 0."""
    return max(1, int(round(severity * n))) if severity > 0 and n > 0 else 0


def _choose(n: int, severity: float, rng: np.random.Generator, *, cap: int | None = None) -> list[int]:
    """Indices of the touched units among ``n`` eligible ones, in the order they were drawn."""
    k = _n_touched(_check_severity(severity), n)
    if cap is not None:
        k = min(k, cap)
    return [int(i) for i in rng.choice(n, size=k, replace=False)] if k > 0 else []


def _splice(text: str, spans: Iterable[Span]) -> str:
    """Apply non-overlapping ``(start, end, replacement)`` edits to ``text``."""
    out, last = [], 0
    for start, end, replacement in sorted(spans, key=lambda s: (s[0], s[1])):
        out.append(text[last:start])
        out.append(replacement)
        last = end
    out.append(text[last:])
    return "".join(out)

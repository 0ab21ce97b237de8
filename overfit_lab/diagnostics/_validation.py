"""Input validators shared by the diagnostics modules (internal).

Each validator returns its argument converted (an array, a float, an int) and raises
``ValueError`` with a message that starts with the offending argument's name, so a test can
match it with ``pytest.raises(ValueError, match="proba_clean")``. Where modules accept different
inputs on purpose, the difference is a parameter (``atol`` of :func:`check_proba`,
``allow_empty`` of :func:`check_texts`) and each module states its own value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ROW_SUM_TOLERANCE = 1e-5
"""Default largest ``|Σ_k p_ik - 1|`` that :func:`check_proba` accepts for a row of probabilities."""


def check_open_unit_interval(value: float, name: str) -> float:
    """``value`` as a float strictly between 0 and 1 (a confidence level, a probability floor).

    Examples
    --------
    >>> check_open_unit_interval(0.95, "confidence")
    0.95
    >>> check_open_unit_interval(1, "confidence")
    Traceback (most recent call last):
    ...
    ValueError: confidence must be in (0, 1); got 1
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in (0, 1); got {value!r}") from None
    if not 0 < number < 1:
        raise ValueError(f"{name} must be in (0, 1); got {value}")
    return number


def check_positive_int(value: int, name: str) -> int:
    """``value`` as an int ``>= 1``; a bool or a float (even ``2.0``) is rejected.

    Examples
    --------
    >>> check_positive_int(15, "n_bins")
    15
    >>> check_positive_int(2.0, "n_bins")
    Traceback (most recent call last):
    ...
    ValueError: n_bins must be a positive integer; got 2.0
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def check_proba(proba: np.ndarray, *, name: str = "proba", atol: float = ROW_SUM_TOLERANCE) -> np.ndarray:
    """``proba`` as a float64 ``(n, K)`` array, ``n >= 1`` and ``K >= 2``, of finite, non-negative
    values whose rows sum to 1 within ``atol`` (so no entry exceeds ``1 + atol``).

    Calibration and the counterfactual flips use the default ``atol``; robustness has always
    accepted ``1e-4``.

    Examples
    --------
    >>> check_proba([[0.2, 0.8]]).dtype
    dtype('float64')
    >>> check_proba([[0.2, 0.9]], name="proba_clean")
    Traceback (most recent call last):
    ...
    ValueError: proba_clean rows must sum to 1 (probabilities, not logits); largest deviation 0.1
    """
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[0] == 0 or proba.shape[1] < 2:
        raise ValueError(f"{name} must be a non-empty (n, classes >= 2) array; got shape {proba.shape}")
    if not np.all(np.isfinite(proba)) or proba.min() < 0:
        raise ValueError(f"{name} must hold finite, non-negative probabilities")
    worst = float(np.abs(proba.sum(axis=1) - 1.0).max())
    if worst > atol:
        raise ValueError(f"{name} rows must sum to 1 (probabilities, not logits); "
                         f"largest deviation {worst:.3g}")
    return proba


def check_class_labels(labels: np.ndarray, *, n: int, n_classes: int, name: str = "y_true",
                       rows_of: str = "proba") -> np.ndarray:
    """``labels`` as ``n`` integer class labels in ``0..n_classes-1`` (one per row of ``rows_of``).

    Examples
    --------
    >>> check_class_labels([0, 2], n=2, n_classes=2)
    Traceback (most recent call last):
    ...
    ValueError: y_true labels must be in 0..1; got 0..2
    """
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"{name} must be 1-D with len({rows_of}) = {n} labels; got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} must hold integer labels; got dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"{name} labels must be in 0..{n_classes - 1}; got {labels.min()}..{labels.max()}")
    return labels


def check_same_length(**arrays: np.ndarray) -> list[np.ndarray]:
    """Non-empty 1-D arrays of one length, in the order given (the first one sets the length).

    Examples
    --------
    >>> check_same_length(y_true=[1, 0], groups=["f"])
    Traceback (most recent call last):
    ...
    ValueError: groups must have the length of y_true (2); got 1
    """
    out = [np.asarray(a) for a in arrays.values()]
    names = list(arrays)
    for name, a in zip(names, out, strict=True):
        if a.ndim != 1 or a.size == 0:
            raise ValueError(f"{name} must be a non-empty 1-D array; got shape {a.shape}")
        if len(a) != len(out[0]):
            raise ValueError(f"{name} must have the length of {names[0]} ({len(out[0])}); got {len(a)}")
    return out


def check_texts(texts: Sequence[str], *, name: str = "texts", allow_empty: bool = True) -> list[str]:
    """``texts`` as a list of strings; a single string (not a sequence of them) is rejected.

    Examples
    --------
    >>> check_texts("one text")
    Traceback (most recent call last):
    ...
    ValueError: texts must be a sequence of strings, not a single string
    """
    if isinstance(texts, str):
        raise ValueError(f"{name} must be a sequence of strings, not a single string")
    texts = list(texts)
    if not texts and not allow_empty:
        raise ValueError(f"{name} must not be empty")
    if not all(isinstance(t, str) for t in texts):
        raise ValueError(f"{name} must hold only strings")
    return texts

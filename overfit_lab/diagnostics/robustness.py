"""Robustness of predictions to text perturbations: clean vs perturbed class probabilities.

For ``n`` inputs with true labels ``y_i``, clean probabilities ``p_i`` and perturbed ones ``q_i``
(rows of ``(n, classes)`` arrays), clean predictions ``c_i = argmax p_i`` and perturbed ones
``d_i = argmax q_i``, and the set ``C`` of inputs the perturbation actually changed:

* ``accuracy_clean = (1/n) Σ_i 1[c_i = y_i]``, ``accuracy_perturbed = (1/n) Σ_i 1[d_i = y_i]``;
* ``robustness_drop = accuracy_clean - accuracy_perturbed`` (positive: the op hurts);
* ``flip_rate = (1/|C|) Σ_{i in C} 1[d_i != c_i]``, the failure rate of an invariance (INV) test,
  counted only over the changed inputs as CheckList does, so that an op which leaves most texts
  untouched (a lexicon op on texts without lexicon words) is not credited with their stable
  predictions; NaN when ``C`` is empty;
* ``mean_confidence_change = (1/|C|) Σ_{i in C} (q_i[c_i] - p_i[c_i])``, the change of the
  probability of the originally predicted class (negative: the op makes the model less sure);
  NaN when ``C`` is empty.

Both accuracies are over all ``n`` inputs, so ``robustness_drop`` is the effect on the data set
as perturbed, while ``flip_rate`` is the effect per changed input.

The two accuracies are measured on the same ``n`` inputs, so the drop is a difference of paired
proportions: with ``b`` the inputs right on the clean text and wrong on the perturbed one and
``c`` the reverse, ``robustness_drop = (b - c) / n``, and :func:`paired_drop_interval` gives its
Newcombe score interval. The worst drop over several ops is a maximum of noisy estimates and
is biased upward (even ops with no effect give a positive maximum), more so for a small ``n``;
its interval is that of the chosen op alone and ignores the selection.
Reference: Ribeiro et al. 2020, "Beyond Accuracy: Behavioral Testing of NLP Models with
CheckList" (ACL); the perturbations come from :mod:`overfit_lab.diagnostics.perturb`.
"""

from __future__ import annotations

import numpy as np

from ._validation import check_class_labels, check_open_unit_interval, check_proba
from .bias import wilson_interval

__all__ = ["REPORT_KEYS", "paired_difference_interval", "paired_drop_interval", "robustness_report"]

REPORT_KEYS = ("accuracy_clean", "accuracy_perturbed", "robustness_drop", "flip_rate",
               "mean_confidence_change", "n_changed", "n")
_ROW_SUM_TOLERANCE = 1e-4  # looser than calibration's 1e-5


def _validate(y_true: np.ndarray, proba_clean: np.ndarray, proba_perturbed: np.ndarray,
              changed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    clean = check_proba(proba_clean, name="proba_clean", atol=_ROW_SUM_TOLERANCE)
    perturbed = check_proba(proba_perturbed, name="proba_perturbed", atol=_ROW_SUM_TOLERANCE)
    if perturbed.shape != clean.shape:
        raise ValueError(f"proba_perturbed must have the shape of proba_clean {clean.shape}; "
                         f"got {perturbed.shape}")
    n, classes = clean.shape
    labels = check_class_labels(y_true, n=n, n_classes=classes, name="y_true", rows_of="proba_clean")
    mask = np.asarray(changed)
    if mask.shape != (n,) or not (mask.dtype == bool or np.isin(mask, (0, 1)).all()):
        raise ValueError(f"changed must be a boolean mask of {n} entries; got shape {mask.shape}")
    return labels, clean, perturbed, mask.astype(bool)


def robustness_report(y_true: np.ndarray, proba_clean: np.ndarray, proba_perturbed: np.ndarray,
                      changed: np.ndarray) -> dict[str, float]:
    """Accuracy drop, flip rate and confidence change of one perturbation (see the module docstring).

    Parameters
    ----------
    y_true : (n,) int array
        True labels.
    proba_clean, proba_perturbed : (n, classes) float arrays
        Class probabilities (rows summing to 1) on the clean and the perturbed texts.
    changed : (n,) bool array
        Whether the perturbation changed input ``i`` (e.g. ``perturb.changed_mask``).

    Returns
    -------
    dict
        ``accuracy_clean``, ``accuracy_perturbed``, ``robustness_drop``, ``flip_rate``,
        ``mean_confidence_change`` (NaN without changed inputs), ``n_changed`` and ``n``.
    """
    labels, clean, perturbed, mask = _validate(y_true, proba_clean, proba_perturbed, changed)
    pred_clean, pred_perturbed = clean.argmax(axis=1), perturbed.argmax(axis=1)
    acc_clean = float((pred_clean == labels).mean())
    acc_perturbed = float((pred_perturbed == labels).mean())
    rows = np.flatnonzero(mask)
    if rows.size:
        flip_rate = float((pred_clean[rows] != pred_perturbed[rows]).mean())
        confidence = float((perturbed[rows, pred_clean[rows]] - clean[rows, pred_clean[rows]]).mean())
    else:
        flip_rate = confidence = float("nan")
    return {
        "accuracy_clean": acc_clean,
        "accuracy_perturbed": acc_perturbed,
        "robustness_drop": acc_clean - acc_perturbed,
        "flip_rate": flip_rate,
        "mean_confidence_change": confidence,
        "n_changed": int(rows.size),
        "n": len(labels),
    }


def paired_difference_interval(
    a: np.ndarray | int, b: np.ndarray | int, c: np.ndarray | int, d: np.ndarray | int, *,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe's score interval for ``p1 - p2 = (b - c) / n`` from a paired 2x2 table, vectorised.

    ``a`` pairs succeed twice, ``b`` only in the first condition, ``c`` only in the second, ``d``
    never; ``n = a + b + c + d``, ``p1 = (a + b) / n``, ``p2 = (a + c) / n``. With ``[l_i, u_i]``
    the Wilson intervals of ``p_i`` and ``φ`` the continuity-corrected correlation of the table
    (``A = ad - bc``; ``φ = (A - n/2) / sqrt((a+b)(c+d)(a+c)(b+d))`` for ``A > n/2``, 0 for
    ``0 <= A <= n/2``, ``A / sqrt(...)`` for ``A < 0``, and 0 when a margin is empty):

    ``low  = (p1 - p2) - sqrt((p1 - l1)² - 2φ (p1 - l1)(u2 - p2) + (u2 - p2)²)``,
    ``high = (p1 - p2) + sqrt((u1 - p1)² - 2φ (u1 - p1)(p2 - l2) + (p2 - l2)²)``.

    Unlike the Wald interval ``(b - c)/n ± z sqrt(b + c - (b - c)²/n) / n`` it is not empty when
    there are no discordant pairs (``b = c = 0``) and keeps close to nominal coverage when they
    are few, which is the usual case for a mild perturbation.

    Parameters
    ----------
    a, b, c, d : int or ndarray of int
        Cell counts (``>= 0``, ``n >= 1``), broadcast together.
    confidence : float, default 0.95
        Coverage, in (0, 1).

    Returns
    -------
    (low, high) : ndarray
        Bounds, inside [-1, 1].

    References
    ----------
    Newcombe, "Improved confidence intervals for the difference between binomial proportions
    based on paired data", Statist. Med. 17, 2635-2650 (1998), method 10; Fagerland, Lydersen &
    Laake, "Statistical Analysis of Contingency Tables" (2017), ch. 8, "Newcombe square-and-add".

    Examples
    --------
    Fagerland et al.'s example (Cavo et al. 2012; also the test of the R package
    ``contingencytables``): ``[[59, 6], [16, 80]]`` gives -0.0621 (-0.1186 to -0.0046).

    >>> low, high = paired_difference_interval(59, 6, 16, 80)
    >>> round(float(low), 4), round(float(high), 4)
    (-0.1186, -0.0046)
    """
    confidence = check_open_unit_interval(confidence, "confidence")
    cells = [np.asarray(x) for x in (a, b, c, d)]
    for name, x in zip("abcd", cells, strict=True):
        if x.dtype.kind not in "iu" or np.any(x < 0):
            raise ValueError(f"{name} must hold non-negative integer counts; got {x!r}")
    a, b, c, d = np.broadcast_arrays(*(x.astype(np.float64) for x in cells))
    n = a + b + c + d
    if np.any(n < 1):
        raise ValueError("a + b + c + d must be at least 1")

    p1, p2 = (a + b) / n, (a + c) / n
    (l1, u1), (l2, u2) = (wilson_interval(k, n, confidence=confidence) for k in (a + b, a + c))
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    det = a * d - b * c
    corrected = np.where(det > n / 2, det - n / 2, np.where(det < 0, det, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        phi = np.where(margins > 0, corrected / np.sqrt(margins), 0.0)
    difference = p1 - p2
    below, above = (p1 - l1, u2 - p2), (u1 - p1, p2 - l2)
    low = difference - np.sqrt(np.maximum(below[0] ** 2 - 2 * phi * below[0] * below[1] + below[1] ** 2, 0))
    high = difference + np.sqrt(np.maximum(above[0] ** 2 - 2 * phi * above[0] * above[1] + above[1] ** 2, 0))
    return np.clip(low, -1.0, 1.0), np.clip(high, -1.0, 1.0)


def paired_drop_interval(correct_clean: np.ndarray, correct_perturbed: np.ndarray, *,
                         confidence: float = 0.95) -> tuple[float, float]:
    """Interval for ``robustness_drop`` = accuracy clean - accuracy perturbed on the same inputs.

    Tabulates the ``n`` inputs by (right on the clean text, right on the perturbed one) and
    returns :func:`paired_difference_interval` of that table.

    Examples
    --------
    >>> clean = np.array([True] * 8 + [False] * 2)
    >>> perturbed = np.array([True] * 5 + [False] * 5)  # 3 lost, none gained: drop 0.3, n = 10
    >>> [round(v, 3) for v in paired_drop_interval(clean, perturbed)]
    [-0.053, 0.567]
    """
    clean, perturbed = np.asarray(correct_clean), np.asarray(correct_perturbed)
    if clean.ndim != 1 or clean.size == 0 or clean.dtype != bool:
        raise ValueError(f"correct_clean must be a non-empty boolean vector; got shape {clean.shape}, "
                         f"dtype {clean.dtype}")
    if perturbed.shape != clean.shape or perturbed.dtype != bool:
        raise ValueError(f"correct_perturbed must be a boolean vector of {clean.size} entries; "
                         f"got shape {perturbed.shape}, dtype {perturbed.dtype}")
    counts = [int(np.sum(x & y)) for x, y in ((clean, perturbed), (clean, ~perturbed),
                                               (~clean, perturbed), (~clean, ~perturbed))]
    low, high = paired_difference_interval(*counts, confidence=confidence)
    return float(low), float(high)

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
Reference: Ribeiro et al. 2020, "Beyond Accuracy: Behavioral Testing of NLP Models with
CheckList" (ACL); the perturbations come from :mod:`overfit_lab.diagnostics.perturb`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

REPORT_KEYS = ("accuracy_clean", "accuracy_perturbed", "robustness_drop", "flip_rate",
               "mean_confidence_change", "n_changed", "n")
_ROW_COLUMNS = ("op", "severity", "robustness_drop")


def _probabilities(name: str, proba: np.ndarray, *, atol: float = 1e-4) -> np.ndarray:
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[0] == 0 or proba.shape[1] < 2:
        raise ValueError(f"{name} must be a non-empty (n, classes >= 2) array; got shape {proba.shape}")
    if not np.isfinite(proba).all() or (proba < 0).any():
        raise ValueError(f"{name} must hold finite, non-negative probabilities")
    deviation = float(np.abs(proba.sum(axis=1) - 1.0).max())
    if deviation > atol:
        raise ValueError(f"{name} rows must sum to 1 (probabilities, not logits); "
                         f"max deviation {deviation:.3g}")
    return proba


def _validate(y_true: np.ndarray, proba_clean: np.ndarray, proba_perturbed: np.ndarray,
              changed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    clean = _probabilities("proba_clean", proba_clean)
    perturbed = _probabilities("proba_perturbed", proba_perturbed)
    if perturbed.shape != clean.shape:
        raise ValueError(f"proba_perturbed must have the shape of proba_clean {clean.shape}; "
                         f"got {perturbed.shape}")
    labels, (n, classes) = np.asarray(y_true), clean.shape
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"y_true must be {n} integer labels; got shape {labels.shape}, dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= classes:
        raise ValueError(f"y_true labels must be in [0, {classes}); got {labels.min()}..{labels.max()}")
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


def _check_rows(report_rows: pd.DataFrame) -> None:
    if not isinstance(report_rows, pd.DataFrame):
        raise ValueError(f"report_rows must be a pandas DataFrame; got {type(report_rows).__name__}")
    missing = [c for c in _ROW_COLUMNS if c not in report_rows.columns]
    if missing:
        raise ValueError(f"report_rows lacks the column(s) {', '.join(missing)}")
    if report_rows.empty:
        raise ValueError("report_rows must not be empty")


def worst_perturbation(report_rows: pd.DataFrame) -> pd.Series:
    """The (op, severity) row with the largest ``robustness_drop`` (the first one on ties; NaN skipped).

    ``report_rows`` has one row per (op, severity) with at least the columns ``op``, ``severity``
    and ``robustness_drop`` (e.g. one :func:`robustness_report` per row plus its op and severity).
    """
    _check_rows(report_rows)
    drops = pd.to_numeric(report_rows["robustness_drop"], errors="coerce").to_numpy(dtype=float)
    if np.isnan(drops).all():
        raise ValueError("report_rows has no finite robustness_drop")
    return report_rows.iloc[int(np.nanargmax(drops))]


def severity_curve(report_rows: pd.DataFrame, op: str) -> pd.DataFrame:
    """The rows of one ``op``, sorted by severity (a fresh 0..k-1 index), for a drop-vs-severity plot."""
    _check_rows(report_rows)
    rows = report_rows[report_rows["op"] == op]
    if rows.empty:
        known = ", ".join(sorted(map(str, report_rows["op"].unique())))
        raise ValueError(f"op {op!r} has no rows; report_rows has: {known}")
    return rows.sort_values("severity", kind="stable").reset_index(drop=True)

"""Learning curves: :func:`fit_power_law` and :func:`learning_curves`, the generalization gap
against the training size, ``gap(n) = a · n^(-b)``, and the size at which it falls below a
threshold, with its interval.

Part of :mod:`overfit_lab.stats`; import from there.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ._intervals import _check_confidence

__all__ = ["CURVE_STATUSES", "MAX_EXTRAPOLATION", "MIN_CURVE_SIZES", "PowerLaw", "fit_power_law",
           "learning_curves"]

MIN_CURVE_SIZES = 3
"""A power law has two parameters: with fewer distinct sizes it is exactly determined and says
nothing about its own error, so no curve is fitted."""
MAX_EXTRAPOLATION = 10.0
"""Sizes beyond this multiple of the largest size run are not estimated."""
CURVE_STATUSES = ("estimated", "already below at the smallest size",
                  f"beyond {MAX_EXTRAPOLATION:g}× the largest size",
                  "never: the gap does not shrink with size", f"needs {MIN_CURVE_SIZES} sizes",
                  "no fit: the gap is not positive at enough sizes")
"""What :func:`learning_curves` says about each curve, in its ``status`` column."""


@dataclass(frozen=True)
class PowerLaw:
    """``value(n) = a · n^(-b)`` fitted to (size, value) points.

    ``min_size``/``max_size``: the smallest and largest size fitted; ``n_sizes``: how many
    distinct sizes; ``covariance``: ``(var a, cov(a, b), var b)`` of the least-squares estimate
    (``scipy.optimize.curve_fit``, residual variance with ``n_points - 2`` degrees of freedom).
    """

    a: float
    b: float
    n_points: int
    min_size: float = 1.0
    max_size: float = np.nan
    n_sizes: int = 0
    covariance: tuple[float, float, float] = (np.nan, np.nan, np.nan)

    def __call__(self, n: np.ndarray | float) -> np.ndarray | float:
        return self.a * np.power(n, -self.b)

    def size_for(self, threshold: float) -> float:
        """The size from which the curve is at or below ``threshold``: ``(a / threshold)^(1/b)``.

        ``min_size`` when the curve is already at or below it there (whatever its slope), ``inf``
        when it is above it there and does not decrease (``b <= 0``); NaN for a bad fit.
        """
        if threshold <= 0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        if not np.isfinite(self.a) or not np.isfinite(self.b):
            return np.nan
        if self(self.min_size) <= threshold:
            return float(self.min_size)
        if self.b <= 0:
            return np.inf
        return float((self.a / threshold) ** (1.0 / self.b))

    def size_interval(self, threshold: float, confidence: float = 0.95) -> tuple[float, float]:
        """Interval of :meth:`size_for` by the delta method on its logarithm.

        ``log n* = log(a / threshold) / b`` has gradient ``g = (1 / (a b), -log(a / threshold) / b²)``
        in ``(a, b)``, so ``se = √(gᵀ Σ g)`` with ``Σ`` the fit's covariance, and the interval is
        ``exp(log n* ± t_{1-α/2, n_points-2} · se)``. NaN where the size is not estimated (bad fit,
        not decreasing) or the covariance is undefined.
        """
        _check_confidence(confidence)
        size = self.size_for(threshold)
        var_a, cov_ab, var_b = self.covariance
        if (not np.isfinite(size) or self.b <= 0 or self.a <= 0 or self.n_points <= 2
                or not np.all(np.isfinite(self.covariance))):
            return np.nan, np.nan
        log_size = np.log(self.a / threshold) / self.b
        g = np.array([1.0 / (self.a * self.b), -np.log(self.a / threshold) / self.b ** 2])
        sigma = np.array([[var_a, cov_ab], [cov_ab, var_b]])
        se = float(np.sqrt(max(g @ sigma @ g, 0.0)))
        q = stats.t.ppf(0.5 + confidence / 2, self.n_points - 2)
        with np.errstate(over="ignore"):
            return float(np.exp(log_size - q * se)), float(np.exp(log_size + q * se))


def fit_power_law(sizes: Sequence[float], values: Sequence[float]) -> PowerLaw:
    """Least-squares fit of ``value = a · n^(-b)`` with ``scipy.optimize.curve_fit``.

    Started from the straight-line fit of ``log value`` on ``log n`` over the positive values.
    Needs :data:`MIN_CURVE_SIZES` distinct sizes (two would determine the curve exactly, leaving
    no residual to judge it by), at least two of them with positive values; else ``a`` and ``b``
    are NaN.

    Examples
    --------
    >>> n = np.array([100, 300, 1000, 3000])
    >>> fit = fit_power_law(n, 2.0 * n ** -0.5)
    >>> round(fit.a, 6), round(fit.b, 6), round(fit.size_for(0.05))
    (2.0, 0.5, 1600)
    >>> bool(np.isnan(fit_power_law([100, 1000], [0.3, 0.1]).a))  # two sizes: no fit
    True
    """
    n, y = np.asarray(sizes, dtype=float), np.asarray(values, dtype=float)
    if n.shape != y.shape:
        raise ValueError(f"sizes and values must have the same shape, got {n.shape} and {y.shape}")
    if (n <= 0).any():
        raise ValueError("sizes must be positive")
    keep = ~np.isnan(y)
    n, y = n[keep], y[keep]
    span = {"min_size": float(n.min()) if n.size else 1.0, "max_size": float(n.max()) if n.size else np.nan,
            "n_sizes": int(np.unique(n).size)}
    positive = y > 0
    if span["n_sizes"] < MIN_CURVE_SIZES or np.unique(n[positive]).size < 2:
        return PowerLaw(np.nan, np.nan, int(n.size), **span)
    slope, intercept = np.polyfit(np.log(n[positive]), np.log(y[positive]), 1)
    start = (float(np.exp(intercept)), float(-slope))
    covariance = (np.nan, np.nan, np.nan)
    try:
        with warnings.catch_warnings():  # an exact fit leaves the covariance undefined: not an error here
            warnings.simplefilter("ignore", optimize.OptimizeWarning)
            (a, b), pcov = optimize.curve_fit(lambda x, a, b: a * np.power(x, -b), n, y, p0=start,
                                              maxfev=10000)
        covariance = (float(pcov[0, 0]), float(pcov[0, 1]), float(pcov[1, 1]))
    except RuntimeError:
        a, b = start
    return PowerLaw(float(a), float(b), int(n.size), covariance=covariance, **span)


def learning_curves(scores: pd.DataFrame, metric: str = "gap_accuracy", *, threshold: float = 0.05,
                    confidence: float = 0.95) -> pd.DataFrame:
    """Per strategy (and label noise), the power law of ``metric`` against train size, fitted to
    every cell, and the size at which it falls below ``threshold``.

    Returns
    -------
    DataFrame
        One row per label noise x strategy: ``a``, ``b``, ``n_points`` (cells), ``n_sizes``,
        ``threshold``, ``size_below_threshold`` (:meth:`PowerLaw.size_for`, uncapped), ``cap``
        (:data:`MAX_EXTRAPOLATION` x the largest size), ``status`` (one of
        :data:`CURVE_STATUSES`), ``estimate`` (the size, where the status is *estimated* or
        *already below at the smallest size*, else NaN) and ``estimate_low``/``estimate_high``
        (its ``confidence`` interval, :meth:`PowerLaw.size_interval`; ``estimate_high`` is
        ``inf`` where the interval reaches beyond the cap).

    Examples
    --------
    >>> frame = pd.DataFrame({"label_noise": 0.0, "strategy": "s", "train_size": [100, 1000],
    ...                       "gap_accuracy": [0.30, 0.20]})
    >>> learning_curves(frame)["status"].iloc[0]
    'needs 3 sizes'
    """
    _check_confidence(confidence)
    rows = []
    for (noise, strategy), group in scores.groupby(["label_noise", "strategy"], sort=False):
        fit = fit_power_law(group["train_size"].to_numpy(), group[metric].to_numpy())
        size = fit.size_for(threshold)
        cap = MAX_EXTRAPOLATION * fit.max_size
        status, estimate, low, high = _curve_status(fit, size, cap), np.nan, np.nan, np.nan
        if status == CURVE_STATUSES[1]:
            estimate = size
        elif status == CURVE_STATUSES[0]:
            estimate = size
            low, high = fit.size_interval(threshold, confidence)
            high = np.inf if high > cap else high
        rows.append({"label_noise": noise, "strategy": strategy, "metric": metric, "a": fit.a, "b": fit.b,
                     "n_points": fit.n_points, "n_sizes": fit.n_sizes, "threshold": threshold,
                     "size_below_threshold": size, "cap": cap, "status": status, "estimate": estimate,
                     "estimate_low": low, "estimate_high": high})
    return pd.DataFrame(rows)


def _curve_status(fit: PowerLaw, size: float, cap: float) -> str:
    if fit.n_sizes < MIN_CURVE_SIZES:
        return CURVE_STATUSES[4]
    if np.isnan(size):
        return CURVE_STATUSES[5]
    if size <= fit.min_size:
        return CURVE_STATUSES[1]
    if np.isinf(size):
        return CURVE_STATUSES[3]
    if size > cap:
        return CURVE_STATUSES[2]
    return CURVE_STATUSES[0]

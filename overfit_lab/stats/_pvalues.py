"""p-values over seeds: the one test rule (:func:`_seed_test`) and multiple-testing correction.

Part of :mod:`overfit_lab.stats`; import from there.

The test rule (:func:`_seed_test`, used by both comparisons) is described in the package
docstring of :mod:`overfit_lab.stats`.

:func:`adjust_pvalues` corrects a family of p-values: Holm's step-down family-wise correction or
Benjamini-Hochberg's false discovery rate (``scipy.stats.false_discovery_control``).

References
----------
.. [2] Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scand. J. Stat. 6.
.. [3] Benjamini, Y. & Hochberg, Y. (1995). Controlling the false discovery rate. JRSS B 57(1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

__all__ = ["TESTS", "adjust_pvalues"]

TESTS = ("paired t", "Wilcoxon signed-rank (exact)", "Welch t", "Mann-Whitney U (exact)", "all equal", "none")
"""Names of the test behind a p-value (see :func:`_seed_test`); ``none``: fewer than 2 values a side."""
_FLOAT_NOISE = 1e-12  # differences this small are float noise, not variation


def _seed_test(after: np.ndarray, before: np.ndarray, *, paired: bool) -> tuple[float, str]:
    """Two-sided p-value of ``after`` against ``before`` and the name of the test that gave it.

    The module's one rule (see the module docstring): the t-test where it is defined, the exact
    rank test where it is not (no variation), p = 1 when nothing differs, NaN with fewer than two
    values a side. ``paired``: ``after[i]`` and ``before[i]`` share a seed (NaN pairs dropped).

    Examples
    --------
    >>> _seed_test(np.array([0.81, 0.82, 0.83]), np.array([0.80, 0.81, 0.82]), paired=True)
    (0.25, 'Wilcoxon signed-rank (exact)')
    """
    a, b = np.asarray(after, dtype=float), np.asarray(before, dtype=float)
    if paired:
        keep = ~(np.isnan(a) | np.isnan(b))
        a, b = a[keep], b[keep]
        if a.size < 2:
            return np.nan, "none"
        d = a - b
        if np.all(np.abs(d) <= _FLOAT_NOISE):
            return 1.0, "all equal"
        if np.ptp(d) <= _FLOAT_NOISE:  # t = mean / 0: rank the (equal) differences instead
            constant = np.full(d.size, d.mean())
            return float(stats.wilcoxon(constant, method="exact").pvalue), "Wilcoxon signed-rank (exact)"
        return float(stats.ttest_rel(a, b).pvalue), "paired t"
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if a.size < 2 or b.size < 2:
        return np.nan, "none"
    if np.ptp(a) <= _FLOAT_NOISE and np.ptp(b) <= _FLOAT_NOISE:  # Welch's standard error is 0
        if abs(a.mean() - b.mean()) <= _FLOAT_NOISE:
            return 1.0, "all equal"
        return float(stats.mannwhitneyu(a, b, method="exact").pvalue), "Mann-Whitney U (exact)"
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue), "Welch t"


def adjust_pvalues(pvalues: Sequence[float], method: str = "holm") -> np.ndarray:
    """Correct p-values for multiple comparisons; NaNs stay NaN and are not counted.

    ``"holm"``: sort ascending, ``p'_(i) = max_{j<=i} min(1, (m - j + 1) p_(j))`` (family-wise
    error rate [2]_). ``"bh"``: Benjamini-Hochberg false discovery rate [3]_ through
    ``scipy.stats.false_discovery_control``.
    """
    if method not in ("holm", "bh"):
        raise ValueError(f"method must be 'holm' or 'bh', got {method!r}")
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if not ok.any():
        return out
    if ((p[ok] < 0) | (p[ok] > 1)).any():
        raise ValueError("pvalues must lie in [0, 1]")
    valid = p[ok]
    if method == "bh":
        out[ok] = stats.false_discovery_control(valid, method="bh")
        return out
    m = valid.size
    order = np.argsort(valid, kind="stable")
    stepped = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * valid[order]))
    adjusted = np.empty(m)
    adjusted[order] = stepped
    out[ok] = adjusted
    return out


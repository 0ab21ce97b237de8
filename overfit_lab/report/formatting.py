"""How numbers and intervals read, in every report: the one place that turns a mean over seeds
and its interval (a row of :meth:`overfit_lab.analysis.RunResult.over_seeds`) into text.

With exactly two seeds a t interval has 1 degree of freedom (t = 12.71) and says little, so the
two seeds' values are shown instead. From three seeds on, ``mean ± half-width``; where the
interval is not symmetric (BCa, or cut at the metric's range) ``mean [low, high]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["NONMEMBERS", "compact", "compact_mean", "interval", "mean_ends", "p_value", "seed_rows",
           "signed_interval"]


NONMEMBERS = {"pool": "unused training rows", "test": "test rows", None: "test rows"}
"""The membership attack's non-members in words, by ``RunResult.membership_nonmembers``."""


def _finite(values: Sequence[float] | None) -> list[float]:
    return [float(v) for v in (values if values is not None else ()) if math.isfinite(v)]


def interval(mean: float, low: float, high: float, values: Sequence[float] | None = None,
             digits: int = 3) -> str:
    """The HTML form: ``mean ± half-width``, ``mean [low, high]`` where the interval is not
    symmetric, ``mean (seeds a, b)`` with two seeds, ``–`` without a mean.

    Examples
    --------
    >>> interval(0.5, 0.4, 0.6)
    '0.500 ± 0.100'
    >>> interval(0.05, 0.0, 0.15)
    '0.050 [0.000, 0.150]'
    >>> interval(0.5, 0.0, 1.0, values=[0.4, 0.6])
    '0.500 (seeds 0.400, 0.600)'
    """
    if math.isnan(mean):
        return "–"
    text = f"{mean:.{digits}f}"
    finite = _finite(values)
    if len(finite) == 2:
        return text + f" (seeds {finite[0]:.{digits}f}, {finite[1]:.{digits}f})"
    if math.isnan(low):
        return text
    if abs((high - mean) - (mean - low)) > 10.0 ** -digits:
        return text + f" [{low:.{digits}f}, {high:.{digits}f}]"
    return text + f" ± {(high - low) / 2:.{digits}f}"


def compact(row, digits: int = 3) -> str:
    """The terminal form of an :meth:`~overfit_lab.analysis.RunResult.over_seeds` row, one column
    wide: ``a/b`` with two seeds, ``mean±half-width``, ``mean[low,high]`` where the interval was
    cut at the metric's range, ``-`` without a mean.

    Examples
    --------
    >>> compact({"mean": 0.5, "low": 0.4, "high": 0.6, "n": 3, "clipped": False, "values": (0.4, 0.5, 0.6)})
    '0.500±0.100'
    >>> compact({"mean": 0.02, "low": 0.0, "high": 0.07, "n": 3, "clipped": True, "values": (0, 0, 0.06)})
    '0.020[0.00,0.07]'
    """
    finite = _finite(row["values"])
    if len(finite) == 2:
        return f"{finite[0]:.{digits}f}/{finite[1]:.{digits}f}"
    mean, low, high = row["mean"], row["low"], row["high"]
    if math.isnan(mean):
        return "-"
    text = f"{mean:.{digits}f}"
    if row["n"] < 2 or math.isnan(low):
        return text
    if row["clipped"]:
        return f"{text}[{low:.2f},{high:.2f}]"
    return f"{text}±{(high - low) / 2:.{digits}f}"


def compact_mean(mean: float, low: float, high: float, digits: int = 3) -> str:
    """``mean±half-width`` (terminal), the mean alone without an interval, ``-`` without a mean.

    Examples
    --------
    >>> compact_mean(0.81, 0.79, 0.83)
    '0.810±0.020'
    """
    if math.isnan(mean):
        return "-"
    return f"{mean:.{digits}f}" + ("" if math.isnan(low) else f"±{(high - low) / 2:.{digits}f}")


def signed_interval(mean: float, low: float, high: float, *, compact_form: bool = False,
                    digits: int = 3) -> str:
    """A difference with its interval: ``+0.012 [-0.010, +0.034]`` (HTML) or ``+0.012±0.022``
    (terminal, ``compact_form``); the difference alone without an interval."""
    text = f"{mean:+.{digits}f}"
    if math.isnan(low):
        return text
    if compact_form:
        return text + f"±{(high - low) / 2:.{digits}f}"
    return text + f" [{low:+.{digits}f}, {high:+.{digits}f}]"


def mean_ends(low: float, high: float, spec: str = ".3f") -> str:
    """A within-cell interval averaged over seeds (the means of its ends), ``–`` without one."""
    return "–" if math.isnan(low) else f"[{low:{spec}}, {high:{spec}}]"


def p_value(value: float, missing: str = "–", spec: str = ".3g") -> str:
    """A p-value, ``missing`` where no test was possible."""
    return missing if math.isnan(value) else f"{value:{spec}}"


def seed_rows(frame, keys: tuple[str, ...]) -> dict:
    """An :meth:`~overfit_lab.analysis.RunResult.over_seeds` frame as a lookup: (``keys``...,
    metric) -> its row as a dict, for tables that fill their cells one key at a time."""
    return {(*(getattr(r, k) for k in keys), r.metric): r._asdict() for r in frame.itertuples(index=False)}

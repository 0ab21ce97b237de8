"""Intervals over seeds: :func:`mean_ci` (BCa bootstrap or Student's t) and :func:`summarize`.

Part of :mod:`overfit_lab.stats`; import from there.

References
----------
.. [1] Efron, B. (1987). Better bootstrap confidence intervals. JASA 82(397).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["BOOTSTRAP_MIN_SEEDS", "MeanCI", "mean_ci", "summarize"]

BOOTSTRAP_MIN_SEEDS = 10
"""From this many values on, intervals are bootstrapped; below, Student's t is used."""


@dataclass(frozen=True)
class MeanCI:
    """A mean over ``n`` values with its confidence interval ``[low, high]``.

    ``method`` is ``"t"``, ``"bootstrap"`` or ``"none"`` (fewer than two values).
    """

    mean: float
    low: float
    high: float
    n: int
    method: str = "t"

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def _finite(values: Sequence[float], name: str) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {x.shape}")
    return x[~np.isnan(x)]


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def mean_ci(values: Sequence[float], *, confidence: float = 0.95, method: str = "auto",
            n_resamples: int = 9999, seed: int = 0) -> MeanCI:
    """Mean and confidence interval of ``values`` (NaNs dropped).

    Parameters
    ----------
    values : sequence of float
        One value per seed.
    confidence : float, default 0.95
        Coverage of the interval, in (0, 1).
    method : {"auto", "t", "bootstrap"}, default "auto"
        ``"auto"`` bootstraps (BCa) from :data:`BOOTSTRAP_MIN_SEEDS` values on, else uses t.
    n_resamples, seed : int
        Bootstrap resamples and the seed of its generator.
    """
    _check_confidence(confidence)
    if method not in ("auto", "t", "bootstrap"):
        raise ValueError(f"method must be 'auto', 't' or 'bootstrap', got {method!r}")
    x = _finite(values, "values")
    n = int(x.size)
    if n == 0:
        return MeanCI(np.nan, np.nan, np.nan, 0, "none")
    mean = float(x.mean())
    if n == 1:
        return MeanCI(mean, np.nan, np.nan, 1, "none")
    if method == "auto":
        method = "bootstrap" if n >= BOOTSTRAP_MIN_SEEDS else "t"
    if np.ptp(x) <= 1e-12:
        return MeanCI(mean, mean, mean, n, method)
    if method == "bootstrap":
        result = stats.bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                                 method="BCa", rng=np.random.default_rng(seed))
        low, high = result.confidence_interval
        return MeanCI(mean, float(low), float(high), n, "bootstrap")
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=stats.sem(x))
    return MeanCI(mean, float(low), float(high), n, "t")



def summarize(scores: pd.DataFrame, metrics: Sequence[str], *, confidence: float = 0.95,
              bounds: Mapping[str, tuple[float, float]] | None = None,
              by: Sequence[str] = ("train_size", "label_noise", "strategy")) -> pd.DataFrame:
    """Mean and interval over seeds per group of ``by`` (train size x label noise x strategy by
    default) and metric.

    ``bounds`` (metric -> (lowest, highest) value it can take, e.g. ``Score.bounds``) clips each
    interval to the metric's range: a t-interval of a proportion from 2 seeds can reach below 0.

    Returns one row per group and metric: the ``by`` columns, ``metric, mean, low, high, n, method,
    clipped`` (whether the range cut the interval) and ``values`` (the seeds' values, in seed order).

    Examples
    --------
    >>> frame = pd.DataFrame({"train_size": 100, "label_noise": 0.0, "strategy": "s", "seed": [0, 1],
    ...                       "flip_rate": [0.0, 0.042]})
    >>> row = summarize(frame, ["flip_rate"], bounds={"flip_rate": (0.0, 1.0)}).iloc[0]
    >>> float(row["low"]), bool(row["clipped"]), row["values"]
    (0.0, True, (0.0, 0.042))
    """
    bounds = dict(bounds or {})
    keys = list(by)
    rows = []
    for key, group in scores.groupby(keys, sort=False):
        group = group.sort_values("seed") if "seed" in group else group
        for metric in metrics:
            ci = asdict(mean_ci(group[metric].to_numpy(), confidence=confidence))
            lowest, highest = bounds.get(metric, (-np.inf, np.inf))
            ci["clipped"] = bool(not np.isnan(ci["low"]) and (ci["low"] < lowest or ci["high"] > highest))
            ci["low"], ci["high"] = (float(np.clip(ci[k], lowest, highest)) if not np.isnan(ci[k]) else ci[k]
                                     for k in ("low", "high"))
            rows.append({**dict(zip(keys, key, strict=True)), "metric": metric, **ci,
                         "values": tuple(float(x) for x in group[metric])})
    columns = [*keys, "metric", "mean", "low", "high", "n", "method", "clipped", "values"]
    return pd.DataFrame(rows, columns=columns)

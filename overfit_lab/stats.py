"""Statistics over seeds: means with confidence intervals.

``mean_ci`` uses Student's t interval, ``mean ± t_{1-α/2, n-1} · s / √n`` (scipy.stats.t),
which is exact for normally distributed seed-to-seed variation and honest (wide) for few seeds.
With one seed there is no interval: the bounds are NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class MeanCI:
    """A mean over ``n`` values with its confidence interval ``[low, high]``."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def mean_ci(values: Sequence[float], *, confidence: float = 0.95) -> MeanCI:
    """Mean and t confidence interval of ``values`` (NaNs dropped).

    Parameters
    ----------
    values : sequence of float
        One value per seed.
    confidence : float, default 0.95
        Coverage of the interval, in (0, 1).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        return MeanCI(np.nan, np.nan, np.nan, 0)
    mean = float(x.mean())
    if n == 1:
        return MeanCI(mean, np.nan, np.nan, 1)
    sem = float(stats.sem(x))
    if sem == 0:
        return MeanCI(mean, mean, mean, n)
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=sem)
    return MeanCI(mean, float(low), float(high), n)

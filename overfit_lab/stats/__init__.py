"""Statistics over seeds: confidence intervals, paired comparisons, corrections, learning curves.

Everything here is built on :mod:`scipy.stats` and works on plain arrays or on the per-cell
score frame of :func:`overfit_lab.scores.cell_scores`.

* :func:`mean_ci` -- mean with a 95% interval: BCa bootstrap
  (``scipy.stats.bootstrap``) from :data:`BOOTSTRAP_MIN_SEEDS` values up, otherwise Student's
  t interval ``mean ± t_{1-α/2, n-1} · s / √n``, which is exact for normal seed-to-seed
  variation and honest (wide) for few seeds. With one value there is no interval.
* :func:`paired_comparison` -- a candidate against a reference paired by seed (same subset,
  same initialisation): mean difference with its interval, paired t-test
  (``scipy.stats.ttest_rel``), Wilcoxon signed-rank test (``scipy.stats.wilcoxon``) and the
  effect size Cohen's d_z = mean(d) / sd(d).
* :func:`adjust_pvalues` -- Holm's step-down family-wise correction or Benjamini-Hochberg's
  false discovery rate (``scipy.stats.false_discovery_control``).
* :func:`compare_strategies` -- every strategy against the reference at every size and metric,
  corrected across all comparisons of the run, with a verdict that never calls a difference a
  win without the test.
* :func:`compare_runs` -- two runs (or a run and a saved baseline) side by side: paired by
  seed where both have the same seeds, otherwise unpaired, corrected across the comparison; a
  change is *improved* or *regressed* only beyond a tolerance and, with two seeds or more,
  significant.
* :func:`fit_power_law` / :func:`learning_curves` -- the generalization gap against the training
  size, ``gap(n) = a · n^(-b)``, and the size at which it falls below a threshold, with its
  interval, from :data:`MIN_CURVE_SIZES` sizes on and never beyond :data:`MAX_EXTRAPOLATION`
  times the largest size run.

The test rule (one function, used by both comparisons): paired seeds get the paired t-test
(``scipy.stats.ttest_rel``), unpaired ones Welch's t-test (``scipy.stats.ttest_ind(equal_var=
False)``). Where the t statistic is undefined -- every paired difference the same, or both
unpaired samples constant -- the p-value comes from the exact rank test instead: Wilcoxon
signed-rank (``scipy.stats.wilcoxon(method="exact")``; ``2 / 2^n`` when all ``n`` differences
share a sign: 0.25 with 3 seeds, 0.03125 with 6) or Mann-Whitney U
(``scipy.stats.mannwhitneyu(method="exact")``). When every difference is 0 (or both samples are
the same constant) p = 1. An undefined test never gives p = 0. The ``test`` column of both frames
names the test whose p-value the verdict used.

References
----------
.. [1] Efron, B. (1987). Better bootstrap confidence intervals. JASA 82(397).
.. [2] Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scand. J. Stat. 6.
.. [3] Benjamini, Y. & Hochberg, Y. (1995). Controlling the false discovery rate. JRSS B 57(1).
.. [4] Lakens, D. (2013). Calculating and reporting effect sizes. Front. Psychol. 4:863 (d_z).
"""

from ._comparisons import (
    RUN_VERDICTS,
    VERDICTS,
    PairedComparison,
    compare_runs,
    compare_strategies,
    paired_comparison,
)
from ._curves import (
    CURVE_STATUSES,
    MAX_EXTRAPOLATION,
    MIN_CURVE_SIZES,
    PowerLaw,
    fit_power_law,
    learning_curves,
)
from ._intervals import BOOTSTRAP_MIN_SEEDS, MeanCI, mean_ci, summarize
from ._pvalues import TESTS, adjust_pvalues

__all__ = [
    "BOOTSTRAP_MIN_SEEDS",
    "CURVE_STATUSES",
    "MAX_EXTRAPOLATION",
    "MIN_CURVE_SIZES",
    "RUN_VERDICTS",
    "TESTS",
    "VERDICTS",
    "MeanCI",
    "PairedComparison",
    "PowerLaw",
    "adjust_pvalues",
    "compare_runs",
    "compare_strategies",
    "fit_power_law",
    "learning_curves",
    "mean_ci",
    "paired_comparison",
    "summarize",
]

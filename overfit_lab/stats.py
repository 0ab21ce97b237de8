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

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

BOOTSTRAP_MIN_SEEDS = 10
"""From this many values on, intervals are bootstrapped; below, Student's t is used."""

VERDICTS = ("better", "worse", "no evidence", "one seed: no test")
RUN_VERDICTS = ("improved", "regressed", "no change")
TESTS = ("paired t", "Wilcoxon signed-rank (exact)", "Welch t", "Mann-Whitney U (exact)", "all equal", "none")
"""Names of the test behind a p-value (see :func:`_seed_test`); ``none``: fewer than 2 values a side."""
_FLOAT_NOISE = 1e-12  # differences this small are float noise, not variation

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


@dataclass(frozen=True)
class PairedComparison:
    """A candidate minus a reference over paired seeds (see :func:`paired_comparison`)."""

    n: int
    mean_difference: float
    low: float
    high: float
    ci_method: str
    t_pvalue: float
    wilcoxon_pvalue: float
    effect_size: float


def paired_comparison(candidate: Sequence[float], reference: Sequence[float], *,
                      confidence: float = 0.95) -> PairedComparison:
    """Compare paired values: ``d_i = candidate_i - reference_i``.

    Returns the mean of ``d`` with its interval (:func:`mean_ci`), the two-sided paired t-test
    p-value (``t = mean(d) / (sd(d)/√n)``, n - 1 degrees of freedom), the two-sided Wilcoxon
    signed-rank p-value (exact for small n; it cannot go below 0.25 with 3 pairs) and Cohen's
    ``d_z = mean(d) / sd(d)``. Tests that are undefined (fewer than 2 pairs, no variation in
    ``d``) give NaN. Pairs with a NaN on either side are dropped.
    """
    _check_confidence(confidence)
    a, b = np.asarray(candidate, dtype=float), np.asarray(reference, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"candidate and reference must be 1-D of the same length, got shapes "
                         f"{a.shape} and {b.shape}")
    keep = ~(np.isnan(a) | np.isnan(b))
    d = a[keep] - b[keep]
    n = int(d.size)
    ci = mean_ci(d, confidence=confidence)
    t_p = wilcoxon_p = effect = np.nan
    if n >= 2 and np.ptp(d) > 1e-12:  # float noise is not variation
        t_p = float(stats.ttest_rel(a[keep], b[keep]).pvalue)
        effect = float(d.mean() / d.std(ddof=1))
    if n >= 1 and np.any(d != 0):
        with warnings.catch_warnings():  # scipy warns that small samples have low power
            warnings.simplefilter("ignore")
            wilcoxon_p = float(stats.wilcoxon(d).pvalue)
    return PairedComparison(n, ci.mean, ci.low, ci.high, ci.method, t_p, wilcoxon_p, effect)


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


def summarize(scores: pd.DataFrame, metrics: Sequence[str], *, confidence: float = 0.95,
              bounds: Mapping[str, tuple[float, float]] | None = None) -> pd.DataFrame:
    """Mean and interval over seeds per train size x label noise x strategy and metric.

    ``bounds`` (metric -> (lowest, highest) value it can take, e.g. ``Score.bounds``) clips each
    interval to the metric's range: a t-interval of a proportion from 2 seeds can reach below 0.

    Returns one row per group and metric: ``train_size, label_noise, strategy, metric, mean, low,
    high, n, method, values`` (the seeds' values, in seed order).

    Examples
    --------
    >>> frame = pd.DataFrame({"train_size": 100, "label_noise": 0.0, "strategy": "s", "seed": [0, 1],
    ...                       "flip_rate": [0.0, 0.042]})
    >>> row = summarize(frame, ["flip_rate"], bounds={"flip_rate": (0.0, 1.0)}).iloc[0]
    >>> float(row["low"]), row["values"]
    (0.0, (0.0, 0.042))
    """
    bounds = dict(bounds or {})
    rows = []
    keys = ["train_size", "label_noise", "strategy"]
    for (size, noise, strategy), group in scores.groupby(keys, sort=False):
        group = group.sort_values("seed") if "seed" in group else group
        for metric in metrics:
            ci = asdict(mean_ci(group[metric].to_numpy(), confidence=confidence))
            lowest, highest = bounds.get(metric, (-np.inf, np.inf))
            ci["low"], ci["high"] = (float(np.clip(ci[k], lowest, highest)) if not np.isnan(ci[k]) else ci[k]
                                     for k in ("low", "high"))
            rows.append({"train_size": size, "label_noise": noise, "strategy": strategy, "metric": metric,
                         **ci, "values": tuple(float(x) for x in group[metric])})
    return pd.DataFrame(rows, columns=[*keys, "metric", "mean", "low", "high", "n", "method", "values"])


def compare_strategies(scores: pd.DataFrame, higher_is_better: Mapping[str, bool], *,
                       reference: str = "baseline", alpha: float = 0.05, correction: str = "holm",
                       confidence: float = 0.95) -> pd.DataFrame:
    """Every strategy against ``reference`` at each train size (and label noise), for each metric.

    Parameters
    ----------
    scores : DataFrame
        One row per cell with ``train_size, label_noise, strategy, seed`` and a column per metric.
    higher_is_better : mapping of str to bool
        The metrics to compare and their direction.
    reference : str
        The strategy others are compared with; it must be in ``scores``.
    alpha : float
        Significance level applied to the corrected paired t-test p-values.
    correction : {"holm", "bh"}
        Correction across all comparisons of the frame (see :func:`adjust_pvalues`).

    Returns
    -------
    DataFrame
        One row per size x noise x strategy x metric: the :class:`PairedComparison` fields
        (``t_pvalue`` and ``wilcoxon_pvalue`` for display), the candidate's and the reference's
        means over the seeds both have (``mean``, ``reference_mean``), the per-seed differences
        (``differences``, a tuple in seed order), ``pvalue`` and ``test`` from the module's test
        rule (the paired t-test, or the exact Wilcoxon test where t is undefined; p = 1 when
        every difference is 0), ``p_adjusted`` (``pvalue`` corrected) and ``verdict`` (one of
        :data:`VERDICTS`): *better*/*worse* only when ``p_adjusted`` is below ``alpha``; with
        fewer than two paired seeds, *one seed: no test*.

    Examples
    --------
    >>> rows = [{"train_size": 100, "label_noise": 0.0, "strategy": s, "seed": i, "acc": v + i / 100}
    ...         for i in range(3) for s, v in (("baseline", 0.80), ("new", 0.81))]
    >>> row = compare_strategies(pd.DataFrame(rows), {"acc": True}).iloc[0]
    >>> row.test, float(row.pvalue), row.verdict
    ('Wilcoxon signed-rank (exact)', 0.25, 'no evidence')
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if reference not in set(scores["strategy"]):
        raise ValueError(f"reference strategy {reference!r} is not in the scores "
                         f"(strategies: {', '.join(map(str, scores['strategy'].unique()))})")
    missing = [m for m in higher_is_better if m not in scores.columns]
    if missing:
        raise ValueError(f"metrics not in the scores: {', '.join(missing)}")
    rows = []
    for (size, noise), group in scores.groupby(["train_size", "label_noise"], sort=True):
        ref = group[group["strategy"] == reference].set_index("seed")
        for strategy in group["strategy"].unique():
            if strategy == reference:
                continue
            cand = group[group["strategy"] == strategy].set_index("seed")
            seeds = sorted(set(cand.index) & set(ref.index))
            for metric in higher_is_better:
                a = cand.loc[seeds, metric].to_numpy(dtype=float)
                b = ref.loc[seeds, metric].to_numpy(dtype=float)
                keep = ~(np.isnan(a) | np.isnan(b))  # the pairs the comparison uses
                a, b = a[keep], b[keep]
                result = paired_comparison(a, b, confidence=confidence)
                pvalue, test = _seed_test(a, b, paired=True)
                rows.append({"train_size": size, "label_noise": noise, "strategy": strategy, "metric": metric,
                             "mean": float(a.mean()) if a.size else np.nan,
                             "reference_mean": float(b.mean()) if b.size else np.nan,
                             **asdict(result), "differences": tuple(float(x) for x in a - b),
                             "pvalue": pvalue, "test": test})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["p_adjusted"] = adjust_pvalues(frame["pvalue"].to_numpy(), correction)
    frame["verdict"] = [_verdict(r, higher_is_better[r.metric], alpha) for r in frame.itertuples()]
    return frame


def _verdict(row, higher_is_better: bool, alpha: float) -> str:
    if row.n < 2:
        return "one seed: no test"
    if np.isnan(row.p_adjusted) or row.p_adjusted >= alpha or row.mean_difference == 0:
        return "no evidence"
    return "better" if (row.mean_difference > 0) == higher_is_better else "worse"


def compare_runs(before: pd.DataFrame, after: pd.DataFrame, higher_is_better: Mapping[str, bool], *,
                 tolerance: float | Mapping[str, float] = 0.0, alpha: float = 0.05,
                 correction: str = "holm", confidence: float = 0.95) -> pd.DataFrame:
    """Each metric of ``after`` against ``before``, per train size x label noise x strategy.

    Parameters
    ----------
    before, after : DataFrame
        One row per cell with ``train_size, label_noise, strategy, seed`` and a column per metric
        (:func:`overfit_lab.scores.cell_scores`, or a baseline read back).
    higher_is_better : mapping of str to bool
        The metrics to compare and their direction.
    tolerance : float or mapping of str to float
        A change of at most this much (absolute) either way is *no change*.
    alpha : float
        Significance level for the corrected p-values.
    correction : {"holm", "bh"}
        Correction across every tested row of the result (see :func:`adjust_pvalues`).

    Returns
    -------
    DataFrame
        One row per group and metric present in both: ``before_mean``, ``before_low``,
        ``before_high``, ``after_*`` likewise, ``n_before``, ``n_after``, ``difference`` (after -
        before) with ``low``/``high``, ``before_values``/``after_values`` (tuples in seed order),
        ``test`` and ``pvalue`` from the module's test rule (``paired t`` when the seeds match,
        ``Welch t`` otherwise; the exact Wilcoxon or Mann-Whitney test where t is undefined;
        ``all equal`` with p = 1 when nothing differs; ``none`` with fewer than two values a
        side), ``p_adjusted`` and ``verdict``: *regressed*/*improved* when the change in the
        worse/better direction exceeds the tolerance and, where a test was possible,
        ``p_adjusted < alpha``; else *no change*. ``significant`` says whether the test passed
        (NaN without a test).

    Examples
    --------
    >>> before = pd.DataFrame({"train_size": 100, "label_noise": 0.0, "strategy": "s", "seed": [0, 1, 2],
    ...                        "acc": [0.80, 0.81, 0.82]})
    >>> after = before.assign(acc=before["acc"] + 0.01)  # +0.01 on every seed
    >>> row = compare_runs(before, after, {"acc": True}).iloc[0]
    >>> row.test, float(row.pvalue), row.verdict
    ('Wilcoxon signed-rank (exact)', 0.25, 'no change')
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    _check_confidence(confidence)
    keys = ["train_size", "label_noise", "strategy"]
    rows = []
    for key, after_group in after.groupby(keys, sort=True):
        mask = np.logical_and.reduce([before[k] == v for k, v in zip(keys, key, strict=True)])
        before_group = before[mask]
        if before_group.empty:
            continue
        for metric in higher_is_better:
            if metric not in after_group.columns or metric not in before_group.columns:
                continue
            b = before_group.set_index("seed")[metric].astype(float).dropna()
            a = after_group.set_index("seed")[metric].astype(float).dropna()
            if a.empty or b.empty:
                continue
            rows.append({**dict(zip(keys, key, strict=True)), "metric": metric,
                         **_two_runs(b, a, confidence)})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["p_adjusted"] = adjust_pvalues(frame["pvalue"].to_numpy(), correction)
    tolerances = frame["metric"].map(lambda m: tolerance.get(m, 0.0) if isinstance(tolerance, Mapping)
                                     else tolerance)
    frame["tolerance"] = tolerances.astype(float)
    frame["significant"] = np.where(frame["p_adjusted"].isna(), np.nan, frame["p_adjusted"] < alpha)
    verdicts = []
    for row in frame.itertuples():
        better = row.difference if higher_is_better[row.metric] else -row.difference
        tested_ok = row.test == "none" or row.p_adjusted < alpha
        if abs(better) > row.tolerance and tested_ok:
            verdicts.append("improved" if better > 0 else "regressed")
        else:
            verdicts.append("no change")
    frame["verdict"] = verdicts
    return frame


def _two_runs(before: pd.Series, after: pd.Series, confidence: float) -> dict:
    """Summary and test of one metric in two runs (indexed by seed)."""
    before, after = before.sort_index(), after.sort_index()
    b_ci, a_ci = mean_ci(before.to_numpy(), confidence=confidence), mean_ci(after.to_numpy(),
                                                                            confidence=confidence)
    out = {"before_mean": b_ci.mean, "before_low": b_ci.low, "before_high": b_ci.high, "n_before": b_ci.n,
           "after_mean": a_ci.mean, "after_low": a_ci.low, "after_high": a_ci.high, "n_after": a_ci.n,
           "before_values": tuple(float(x) for x in before), "after_values": tuple(float(x) for x in after),
           "difference": a_ci.mean - b_ci.mean, "low": np.nan, "high": np.nan, "test": "none",
           "pvalue": np.nan}
    if len(before) < 2 or len(after) < 2:
        return out
    if set(before.index) == set(after.index):
        seeds = sorted(before.index)
        a, b = after.loc[seeds].to_numpy(), before.loc[seeds].to_numpy()
        paired = paired_comparison(a, b, confidence=confidence)
        pvalue, test = _seed_test(a, b, paired=True)
        return {**out, "low": paired.low, "high": paired.high, "test": test, "pvalue": pvalue}
    with warnings.catch_warnings():  # constant samples: scipy warns and returns NaN
        warnings.simplefilter("ignore")
        result = stats.ttest_ind(after.to_numpy(), before.to_numpy(), equal_var=False)
        interval = result.confidence_interval(confidence)
    pvalue, test = _seed_test(after.to_numpy(), before.to_numpy(), paired=False)
    return {**out, "low": float(interval.low), "high": float(interval.high), "test": test, "pvalue": pvalue}


def rank_strategies(summary: pd.DataFrame, comparisons: pd.DataFrame, metric: str, *,
                    higher_is_better: bool) -> pd.DataFrame:
    """Strategies per train size (and noise) ordered by their mean ``metric``, with the verdict
    against the reference beside each (the reference itself reads ``reference``).

    The order is only a display of means; a strategy is a winner only where its verdict is
    *better*.
    """
    part = summary[summary["metric"] == metric].copy()
    verdicts = comparisons[comparisons["metric"] == metric] if not comparisons.empty else comparisons
    key = ["train_size", "label_noise", "strategy"]
    if not verdicts.empty:
        part = part.merge(verdicts[key + ["mean_difference", "p_adjusted", "verdict"]], on=key, how="left")
    else:
        part = part.assign(mean_difference=np.nan, p_adjusted=np.nan, verdict=np.nan)
    part["verdict"] = part["verdict"].fillna("reference")
    part = part.sort_values(["train_size", "label_noise", "mean"],
                            ascending=[True, True, not higher_is_better])
    part["rank"] = part.groupby(["train_size", "label_noise"]).cumcount() + 1
    return part.reset_index(drop=True)


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

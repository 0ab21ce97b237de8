"""Comparisons over seeds: paired (:func:`paired_comparison`, :func:`compare_strategies`) and
between runs (:func:`compare_runs`), corrected across each frame, with their verdicts.

Part of :mod:`overfit_lab.stats`; import from there. The p-value behind every verdict comes from
the test rule of :mod:`overfit_lab.stats._pvalues`.

References
----------
.. [4] Lakens, D. (2013). Calculating and reporting effect sizes. Front. Psychol. 4:863 (d_z).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ._intervals import _check_confidence, mean_ci
from ._pvalues import _seed_test, adjust_pvalues

__all__ = ["RUN_VERDICTS", "VERDICTS", "PairedComparison", "compare_runs", "compare_strategies",
           "paired_comparison"]

VERDICTS = ("better", "worse", "no evidence", "one seed: no test")
RUN_VERDICTS = ("improved", "regressed", "no change")


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


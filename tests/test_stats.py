"""Statistics against scipy and hand computations on fixed inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from overfit_lab.stats import (
    BOOTSTRAP_MIN_SEEDS,
    adjust_pvalues,
    compare_runs,
    compare_strategies,
    fit_power_law,
    learning_curves,
    mean_ci,
    paired_comparison,
    summarize,
)

# --- mean_ci -----------------------------------------------------------------------------------


def test_t_interval_by_hand():
    x = np.array([0.70, 0.74, 0.71, 0.79])
    ci = mean_ci(x)
    half = stats.t.ppf(0.975, 3) * x.std(ddof=1) / np.sqrt(4)
    assert (ci.mean, ci.low, ci.high, ci.n, ci.method) == pytest.approx((x.mean(), x.mean() - half,
                                                                         x.mean() + half, 4, "t"))


def test_bootstrap_from_enough_seeds_matches_scipy():
    x = np.random.default_rng(3).normal(0.8, 0.05, size=BOOTSTRAP_MIN_SEEDS)
    ci = mean_ci(x, n_resamples=2000, seed=5)
    ref = stats.bootstrap((x,), np.mean, n_resamples=2000, method="BCa", rng=np.random.default_rng(5))
    assert ci.method == "bootstrap"
    assert (ci.low, ci.high) == pytest.approx(tuple(ref.confidence_interval))
    assert mean_ci(x[:-1]).method == "t"
    assert mean_ci(x[:3], method="bootstrap").method == "bootstrap"


def test_degenerate_inputs():
    assert mean_ci([0.5]).method == "none" and np.isnan(mean_ci([0.5]).low)
    assert mean_ci([np.nan, np.nan]).n == 0
    same = mean_ci([0.3, 0.3, 0.3])
    assert (same.low, same.high) == (0.3, 0.3)
    with pytest.raises(ValueError, match="confidence"):
        mean_ci([1, 2], confidence=1.5)
    with pytest.raises(ValueError, match="method"):
        mean_ci([1, 2], method="z")


# --- paired comparison -------------------------------------------------------------------------


def test_paired_comparison_matches_scipy():
    cand = np.array([0.82, 0.85, 0.80, 0.88, 0.84])
    ref = np.array([0.78, 0.80, 0.79, 0.83, 0.80])
    result = paired_comparison(cand, ref)
    d = cand - ref
    assert result.n == 5 and result.mean_difference == pytest.approx(d.mean())
    assert result.t_pvalue == pytest.approx(stats.ttest_rel(cand, ref).pvalue)
    assert result.wilcoxon_pvalue == pytest.approx(stats.wilcoxon(d).pvalue)
    assert result.wilcoxon_pvalue == pytest.approx(2 / 32)  # exact: all 5 signs positive
    assert result.effect_size == pytest.approx(d.mean() / d.std(ddof=1))
    half = stats.t.ppf(0.975, 4) * d.std(ddof=1) / np.sqrt(5)
    assert (result.low, result.high) == pytest.approx((d.mean() - half, d.mean() + half))


def test_paired_comparison_undefined_cases():
    one = paired_comparison([0.9], [0.8])
    assert one.n == 1 and np.isnan(one.t_pvalue) and np.isnan(one.effect_size)
    constant = paired_comparison([0.9, 0.8], [0.8, 0.7])  # every difference 0.1: no variance
    assert np.isnan(constant.t_pvalue)
    same = paired_comparison([0.5, 0.6], [0.5, 0.6])
    assert np.isnan(same.wilcoxon_pvalue) and same.mean_difference == 0
    dropped = paired_comparison([0.9, np.nan, 0.7], [0.8, 0.5, 0.5])
    assert dropped.n == 2
    with pytest.raises(ValueError, match="same length"):
        paired_comparison([1, 2], [1])


# --- corrections -------------------------------------------------------------------------------


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04, 0.5 (m = 4): 4*0.01, 3*0.03, max(0.09, 2*0.04), max(0.09, 1*0.5)
    got = adjust_pvalues([0.01, 0.04, 0.03, np.nan, 0.5], "holm")
    np.testing.assert_allclose(got, [0.04, 0.09, 0.09, np.nan, 0.5])
    np.testing.assert_allclose(adjust_pvalues([0.3, 0.6], "holm"), [0.6, 0.6])


def test_bh_matches_scipy_and_by_hand():
    p = np.array([0.01, 0.04, 0.03, 0.5])
    got = adjust_pvalues(p, "bh")
    np.testing.assert_allclose(got, stats.false_discovery_control(p, method="bh"))
    # p_(i) * m / i, then the running minimum from the top: 0.04, 0.04*4/3, 0.03*4/2 -> min, 0.5
    np.testing.assert_allclose(got, [0.04, 0.16 / 3, 0.16 / 3, 0.5])


def test_adjust_validation():
    with pytest.raises(ValueError, match="method"):
        adjust_pvalues([0.1], "bonferroni")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        adjust_pvalues([1.2])
    assert np.isnan(adjust_pvalues([np.nan])).all()


# --- comparing strategies ------------------------------------------------------------------------


def _scores() -> pd.DataFrame:
    rows = []
    base = {0: 0.70, 1: 0.72, 2: 0.69, 3: 0.71}
    for seed, acc in base.items():
        rows.append({"train_size": 100, "label_noise": 0.0, "strategy": "baseline", "seed": seed,
                     "test_accuracy": acc, "gap_accuracy": 0.30})
        rows.append({"train_size": 100, "label_noise": 0.0, "strategy": "strong", "seed": seed,
                     "test_accuracy": acc + 0.10 + 0.001 * seed, "gap_accuracy": 0.10 + 0.01 * seed})
        rows.append({"train_size": 100, "label_noise": 0.0, "strategy": "noise", "seed": seed,
                     "test_accuracy": acc + (0.01 if seed % 2 else -0.01), "gap_accuracy": 0.30})
    return pd.DataFrame(rows)


def test_compare_strategies_verdicts_and_correction():
    scores = _scores()
    directions = {"test_accuracy": True, "gap_accuracy": False}
    table = compare_strategies(scores, directions, reference="baseline", correction="holm")
    assert len(table) == 4  # 2 strategies x 2 metrics
    got = table.set_index(["strategy", "metric"])
    assert got.loc[("strong", "test_accuracy"), "verdict"] == "better"
    assert got.loc[("strong", "gap_accuracy"), "verdict"] == "better"  # a lower gap is better
    assert got.loc[("noise", "test_accuracy"), "verdict"] == "no evidence"
    expected = adjust_pvalues(table["pvalue"].to_numpy(), "holm")
    np.testing.assert_allclose(table["p_adjusted"], expected)
    # identical on every seed: no t statistic, so "all equal" with p = 1 counts in the correction
    assert got.loc[("noise", "gap_accuracy"), "test"] == "all equal"
    assert got.loc[("noise", "gap_accuracy"), "pvalue"] == 1.0
    strong = scores[scores.strategy == "strong"]["test_accuracy"].to_numpy()
    base = scores[scores.strategy == "baseline"]["test_accuracy"].to_numpy()
    expected_p = stats.ttest_rel(strong, base).pvalue
    assert got.loc[("strong", "test_accuracy"), "t_pvalue"] == pytest.approx(expected_p)


def test_worse_and_one_seed():
    scores = _scores()
    scores.loc[scores.strategy == "strong", "test_accuracy"] -= 0.2  # now clearly worse
    table = compare_strategies(scores, {"test_accuracy": True}).set_index("strategy")
    assert table.loc["strong", "verdict"] == "worse"
    single = compare_strategies(scores[scores.seed == 0], {"test_accuracy": True})
    assert set(single["verdict"]) == {"one seed: no test"}


def test_pairs_only_shared_seeds():
    scores = _scores()
    scores = scores[~((scores.strategy == "strong") & (scores.seed == 3))]
    table = compare_strategies(scores, {"test_accuracy": True}).set_index("strategy")
    assert table.loc["strong", "n"] == 3


def test_compare_validation():
    with pytest.raises(ValueError, match="reference strategy 'nope'"):
        compare_strategies(_scores(), {"test_accuracy": True}, reference="nope")
    with pytest.raises(ValueError, match="not in the scores: ece"):
        compare_strategies(_scores(), {"ece": False})
    with pytest.raises(ValueError, match="alpha"):
        compare_strategies(_scores(), {"test_accuracy": True}, alpha=2)


def test_summarize():
    scores = _scores()
    summary = summarize(scores, ["test_accuracy"])
    strong = summary.set_index("strategy").loc["strong"]
    assert strong["mean"] == pytest.approx(scores[scores.strategy == "strong"]["test_accuracy"].mean())
    assert strong["n"] == 4 and strong["method"] == "t"


# --- learning curves ---------------------------------------------------------------------------


def test_power_law_recovers_exact_curve_and_threshold_size():
    sizes = np.array([100, 300, 1000, 3000])
    fit = fit_power_law(sizes, 2.0 * sizes ** -0.5)
    assert (fit.a, fit.b) == pytest.approx((2.0, 0.5), rel=1e-6)
    assert fit.size_for(0.05) == pytest.approx((2.0 / 0.05) ** 2, rel=1e-5)  # 1600


def test_power_law_degenerate():
    flat = fit_power_law([100, 100], [0.2, 0.3])
    assert np.isnan(flat.a) and np.isnan(flat.size_for(0.05))
    rising = fit_power_law([100, 300, 1000], [0.1, 0.15, 0.2])
    assert rising.b < 0 and rising.size_for(0.05) == np.inf
    with pytest.raises(ValueError, match="positive"):
        fit_power_law([0, 10], [0.1, 0.2])


def test_learning_curves_per_strategy():
    rows = [{"train_size": n, "label_noise": 0.0, "strategy": s, "seed": 0, "gap_accuracy": a * n ** -0.5}
            for s, a in (("baseline", 3.0), ("strong", 1.0)) for n in (100, 400, 1600)]
    curves = learning_curves(pd.DataFrame(rows), threshold=0.05).set_index("strategy")
    assert curves.loc["baseline", "size_below_threshold"] == pytest.approx(3600, rel=1e-4)
    assert curves.loc["strong", "size_below_threshold"] == pytest.approx(400, rel=1e-4)


# --- one test rule, paired means, learning-curve limits (issue 11, points 6 and 8) ---------------


def _constant_shift(n_seeds: int, shift: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    base = pd.DataFrame({"train_size": 100, "label_noise": 0.0, "strategy": "s", "seed": range(n_seeds),
                         "acc": 0.80 + 0.01 * np.arange(n_seeds)})
    return base, base.assign(acc=base["acc"] + shift)


@pytest.mark.parametrize("n_seeds", [3, 6])
def test_zero_variance_difference_gets_one_rule_in_both_comparisons(n_seeds):
    before, after = _constant_shift(n_seeds, 0.01)
    # the exact signed-rank test of n equal positive differences (scipy), never p = 0
    expected = stats.wilcoxon(np.full(n_seeds, 0.01), method="exact").pvalue
    assert expected == pytest.approx(2 / 2 ** n_seeds)
    runs = compare_runs(before, after, {"acc": True}).iloc[0]
    both = pd.concat([before.assign(strategy="baseline"), after.assign(strategy="new")])
    strategies = compare_strategies(both, {"acc": True}, reference="baseline").iloc[0]
    for row in (runs, strategies):
        assert row.test == "Wilcoxon signed-rank (exact)"
        assert row.pvalue == pytest.approx(expected) and row.pvalue > 0
    assert strategies.verdict == ("better" if expected < 0.05 else "no evidence")


def test_no_difference_at_all_is_p_one_in_both_comparisons():
    before, after = _constant_shift(3, 0.0)
    both = pd.concat([before.assign(strategy="baseline"), after.assign(strategy="new")])
    for row in (compare_runs(before, after, {"acc": True}).iloc[0],
                compare_strategies(both, {"acc": True}, reference="baseline").iloc[0]):
        assert (row.test, row.pvalue) == ("all equal", 1.0)


def test_unpaired_constant_samples_use_mann_whitney():
    before = pd.DataFrame({"train_size": 100, "label_noise": 0.0, "strategy": "s", "seed": [0, 1, 2],
                           "acc": 0.80})
    after = before.assign(seed=[3, 4, 5], acc=0.82)
    row = compare_runs(before, after, {"acc": True}).iloc[0]
    expected = stats.mannwhitneyu([0.82] * 3, [0.80] * 3, method="exact").pvalue
    assert row.test == "Mann-Whitney U (exact)" and row.pvalue == pytest.approx(expected) and row.pvalue > 0


def test_compare_strategies_means_are_over_the_paired_seeds():
    rows = [{"train_size": 100, "label_noise": 0.0, "strategy": s, "seed": i, "acc": v}
            for s, values in (("baseline", [0.70, 0.72, 0.74]), ("new", [0.75, 0.77, 0.79, 0.99]))
            for i, v in enumerate(values)]
    row = compare_strategies(pd.DataFrame(rows), {"acc": True}, reference="baseline").iloc[0]
    assert row["mean"] == pytest.approx(0.77)  # seed 3 has no baseline to pair with
    assert row["reference_mean"] == pytest.approx(0.72)
    assert row["differences"] == pytest.approx((0.05, 0.05, 0.05))


def test_size_for_a_curve_below_the_threshold_everywhere():
    sizes = np.array([100, 300, 1000])
    for b in (0.3, -0.1):  # falling or rising, it is below 0.05 from the smallest size on
        fit = fit_power_law(sizes, 0.01 * sizes ** -b)
        assert fit.size_for(0.05) == 100.0


def test_two_sizes_are_not_extrapolated():
    frame = pd.DataFrame({"label_noise": 0.0, "strategy": "freeze4", "train_size": [100, 1000, 100, 1000],
                          "seed": [0, 0, 1, 1], "gap_accuracy": [0.30, 0.29, 0.31, 0.30]})
    curve = learning_curves(frame).iloc[0]
    assert curve["status"] == "needs 3 sizes" and np.isnan(curve["estimate"])


def test_far_extrapolation_is_capped():
    sizes = np.array([100, 300, 1000])
    frame = pd.DataFrame({"label_noise": 0.0, "strategy": "s", "train_size": sizes, "seed": 0,
                          "gap_accuracy": 0.5 * sizes ** -0.05})
    curve = learning_curves(frame, threshold=0.05).iloc[0]
    assert curve["size_below_threshold"] > 1e10 * 1000
    assert curve["status"] == "beyond 10× the largest size" and np.isnan(curve["estimate"])


def test_size_interval_covers_the_true_size():
    # seeded simulation: gap = 2 n^-0.5 with 3% multiplicative noise at 5 sizes x 3 seeds; the true
    # size for 0.05 is 1600; nominal 95%, accepted 0.88-0.995 over 300 runs
    rng = np.random.default_rng(0)
    sizes = np.repeat([100, 200, 400, 800, 1600], 3)
    covered, runs = 0, 300
    for _ in range(runs):
        gap = 2.0 * sizes ** -0.5 * (1 + 0.03 * rng.standard_normal(sizes.size))
        low, high = fit_power_law(sizes, gap).size_interval(0.05)
        covered += low <= 1600 <= high
    assert 0.88 <= covered / runs <= 0.995


def test_summary_intervals_stay_inside_the_metric_range():
    # 2 seeds of a proportion: the t-interval (scipy) reaches below 0; the summary clips it to [0, 1]
    values = np.array([0.0, 0.042])
    t_low = stats.t.interval(0.95, 1, loc=values.mean(), scale=stats.sem(values))[0]
    assert t_low < 0
    frame = pd.DataFrame({"train_size": 100, "label_noise": 0.0, "strategy": "s", "seed": [1, 0],
                          "flip": values[::-1]})
    row = summarize(frame, ["flip"], bounds={"flip": (0.0, 1.0)}).iloc[0]
    assert row["low"] == 0.0 and row["high"] <= 1.0 and row["values"] == (0.0, 0.042)
    unclipped = summarize(frame, ["flip"]).iloc[0]
    assert unclipped["low"] == pytest.approx(t_low)

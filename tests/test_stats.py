"""Statistics against scipy and hand computations on fixed inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from overfit_lab.stats import (
    BOOTSTRAP_MIN_SEEDS,
    adjust_pvalues,
    compare_strategies,
    fit_power_law,
    learning_curves,
    mean_ci,
    paired_comparison,
    rank_strategies,
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
    expected = adjust_pvalues(table["t_pvalue"].to_numpy(), "holm")
    np.testing.assert_allclose(table["p_adjusted"], expected)
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


def test_summarize_and_rank():
    scores = _scores()
    summary = summarize(scores, ["test_accuracy"])
    strong = summary.set_index("strategy").loc["strong"]
    assert strong["mean"] == pytest.approx(scores[scores.strategy == "strong"]["test_accuracy"].mean())
    assert strong["n"] == 4 and strong["method"] == "t"
    ranked = rank_strategies(summary, compare_strategies(scores, {"test_accuracy": True}), "test_accuracy",
                             higher_is_better=True)
    assert ranked["strategy"].tolist()[0] == "strong" and ranked["rank"].tolist() == [1, 2, 3]
    assert ranked.set_index("strategy").loc["baseline", "verdict"] == "reference"


# --- learning curves ---------------------------------------------------------------------------


def test_power_law_recovers_exact_curve_and_threshold_size():
    sizes = np.array([100, 300, 1000, 3000])
    fit = fit_power_law(sizes, 2.0 * sizes ** -0.5)
    assert (fit.a, fit.b) == pytest.approx((2.0, 0.5), rel=1e-6)
    assert fit.size_for(0.05) == pytest.approx((2.0 / 0.05) ** 2, rel=1e-5)  # 1600


def test_power_law_degenerate():
    flat = fit_power_law([100, 100], [0.2, 0.3])
    assert np.isnan(flat.a) and np.isnan(flat.size_for(0.05))
    rising = fit_power_law([100, 1000], [0.1, 0.2])
    assert rising.b < 0 and rising.size_for(0.05) == np.inf
    with pytest.raises(ValueError, match="positive"):
        fit_power_law([0, 10], [0.1, 0.2])


def test_learning_curves_per_strategy():
    rows = [{"train_size": n, "label_noise": 0.0, "strategy": s, "seed": 0, "gap_accuracy": a * n ** -0.5}
            for s, a in (("baseline", 3.0), ("strong", 1.0)) for n in (100, 400, 1600)]
    curves = learning_curves(pd.DataFrame(rows), threshold=0.05).set_index("strategy")
    assert curves.loc["baseline", "size_below_threshold"] == pytest.approx(3600, rel=1e-4)
    assert curves.loc["strong", "size_below_threshold"] == pytest.approx(400, rel=1e-4)

"""Subgroup metrics, bias amplification and counterfactual swaps against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from overfit_lab.diagnostics.bias import (
    GENDER_PAIRS,
    MIN_GROUP_SIZE,
    bias_amplification_zhao,
    counterfactual_flips,
    demographic_parity,
    demographic_parity_difference,
    directional_bias_amplification,
    equalized_odds,
    equalized_odds_difference,
    group_metrics,
    newcombe_interval,
    swap_identity_terms,
    wilson_interval,
)

# y_true / y_pred per group:  f: y 1 1 0 0, ŷ 1 0 1 0;  m: y 1 0 0 0, ŷ 1 1 1 0.
Y_TRUE = np.array([1, 1, 0, 0, 1, 0, 0, 0])
Y_PRED = np.array([1, 0, 1, 0, 1, 1, 1, 0])
GROUPS = np.array(["f"] * 4 + ["m"] * 4)


def _repeat(*pairs: tuple[object, int]) -> np.ndarray:
    return np.array([value for value, times in pairs for _ in range(times)])


# --- subgroup metrics ---------------------------------------------------------------------------


def test_group_metrics_by_hand():
    """f: accuracy 2/4, selected 2/4, TPR 1/2, FPR 1/2; m: accuracy 2/4, selected 3/4, TPR 1/1, FPR 2/3.

    Counts: f 4 examples, 2 positives, 2 negatives; m 4, 1, 3.
    """
    table = group_metrics(Y_TRUE, Y_PRED, GROUPS, min_group_size=1)
    assert list(table.columns) == ["accuracy", "selection_rate", "true_positive_rate",
                                   "false_positive_rate", "count", "positives", "negatives"]
    assert table.index.tolist() == ["f", "m"] and table.index.name == "group"
    assert table.loc["f"].tolist() == pytest.approx([0.5, 0.5, 0.5, 0.5, 4, 2, 2])
    assert table.loc["m"].tolist() == pytest.approx([0.5, 0.75, 1.0, 2 / 3, 4, 1, 3])
    assert table["count"].dtype == np.int64
    # at the default least size (10) every rate of these 4-example groups is too small
    assert MIN_GROUP_SIZE == 10
    assert group_metrics(Y_TRUE, Y_PRED, GROUPS)[["accuracy", "true_positive_rate"]].isna().all().all()


def test_dp_and_eo_differences_by_hand():
    """DP: 0.75 - 0.5 = 0.25.  EO: max(TPR gap 1 - 0.5, FPR gap 2/3 - 1/2) = 0.5."""
    assert demographic_parity_difference(Y_TRUE, Y_PRED, GROUPS, min_group_size=1) == pytest.approx(0.25)
    assert equalized_odds_difference(Y_TRUE, Y_PRED, GROUPS, min_group_size=1) == pytest.approx(0.5)
    equal_rates = np.array([1, 0, 1, 0])  # selection rate 1/2 in both groups
    assert demographic_parity_difference(equal_rates, equal_rates, np.array(["f", "f", "m", "m"]),
                                         min_group_size=1) == 0
    assert np.isnan(demographic_parity_difference(Y_TRUE, Y_PRED, GROUPS))  # 4 < 10 examples per group


def test_multiclass_binarizes_on_positive_label():
    """positive_label 2: a: y 2 0 / ŷ 2 1 -> selected 1/2, TPR 1; b: y 1 2 / ŷ 1 0 -> selected 0, TPR 0.

    Accuracy uses the raw labels: 1/2 in both groups.
    """
    y, pred, g = np.array([2, 0, 1, 2]), np.array([2, 1, 1, 0]), np.array(["a", "a", "b", "b"])
    table = group_metrics(y, pred, g, positive_label=2, min_group_size=1)
    assert table["accuracy"].tolist() == [0.5, 0.5]
    assert table["selection_rate"].tolist() == [0.5, 0.0]
    assert table["true_positive_rate"].tolist() == [1.0, 0.0]
    assert table["false_positive_rate"].tolist() == [0.0, 0.0]
    assert demographic_parity_difference(y, pred, g, positive_label=2, min_group_size=1) == pytest.approx(0.5)
    assert equalized_odds_difference(y, pred, g, positive_label=2, min_group_size=1) == pytest.approx(1.0)


def test_group_inputs_are_validated():
    with pytest.raises(ValueError, match="groups"):
        group_metrics(Y_TRUE, Y_PRED, GROUPS[:-1])
    with pytest.raises(ValueError, match="y_pred"):
        demographic_parity_difference(Y_TRUE, Y_PRED[:3], GROUPS)
    with pytest.raises(ValueError, match="y_true"):
        equalized_odds_difference(np.array([]), np.array([]), np.array([]))
    with pytest.raises(ValueError, match="min_group_size"):
        group_metrics(Y_TRUE, Y_PRED, GROUPS, min_group_size=0)
    with pytest.raises(ValueError, match="confidence"):
        demographic_parity(Y_TRUE, Y_PRED, GROUPS, confidence=1.0)
    with pytest.raises(ValueError, match="k and n"):
        wilson_interval(3, 2)


# --- intervals: Wilson, Newcombe, and the coverage of the parity intervals -----------------------

# Newcombe (1998), "Interval estimation for the difference between independent proportions",
# Statist. Med. 17, Table II, method 10 (hybrid score, no continuity correction): (k1, n1, k2, n2, low, high)
NEWCOMBE_TABLE_II = [
    (56, 70, 48, 80, 0.0524, 0.3339),
    (9, 10, 3, 10, 0.1705, 0.8090),
    (6, 7, 2, 7, 0.0582, 0.8062),
    (0, 10, 0, 20, -0.1611, 0.2775),
    (0, 10, 0, 10, -0.2775, 0.2775),
    (10, 10, 0, 20, 0.6791, 1.0000),
    (10, 10, 0, 10, 0.6075, 1.0000),
]


@pytest.mark.parametrize(("k1", "n1", "k2", "n2", "low", "high"), NEWCOMBE_TABLE_II)
def test_newcombe_interval_matches_newcombe_1998_table_ii(k1, n1, k2, n2, low, high):
    difference, lo, hi = newcombe_interval(k1, n1, k2, n2)
    assert difference == pytest.approx(k1 / n1 - k2 / n2)
    assert (round(lo, 4), round(hi, 4)) == (low, high)


def test_wilson_and_newcombe_agree_with_scipy_wilson():
    """statsmodels is not installed: scipy's binomtest(...).proportion_ci(method="wilson") is the
    reference for the Wilson interval, and Newcombe's formula built on it for the difference."""
    from scipy.stats import binomtest

    def scipy_wilson(k: int, n: int, confidence: float) -> tuple[float, float]:
        ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
        return ci.low, ci.high

    cases = [(0, 1), (1, 1), (0, 7), (3, 7), (7, 7), (12, 40), (56, 70), (48, 80), (199, 200)]
    for confidence in (0.9, 0.95, 0.99):
        k, n = np.array(cases).T
        low, high = wilson_interval(k, n, confidence=confidence)
        expected = np.array([scipy_wilson(int(a), int(b), confidence) for a, b in cases])
        np.testing.assert_allclose(np.c_[low, high], expected, atol=1e-12)
        for (k1, n1), (k2, n2) in zip(cases, cases[::-1], strict=True):
            (l1, u1), (l2, u2) = scipy_wilson(k1, n1, confidence), scipy_wilson(k2, n2, confidence)
            p1, p2 = k1 / n1, k2 / n2
            ref = (p1 - p2 - np.hypot(p1 - l1, u2 - p2), p1 - p2 + np.hypot(u1 - p1, p2 - l2))
            interval = newcombe_interval(k1, n1, k2, n2, confidence=confidence)[1:]
            assert interval == pytest.approx(ref, abs=1e-12)


COVERAGE_REPS = 1000  # binomial standard error of a 0.95 coverage: 0.007; tolerance 0.93 = 0.95 - 3 SE


@pytest.mark.parametrize("true_difference", [0.0, 0.1, 0.3])
def test_demographic_parity_interval_covers_the_true_difference(true_difference):
    """Seeded simulation: two groups of 200, selection rates 0.3 + d and 0.3, 1000 repetitions.

    The interval must hold d about 95% of the time (at least 0.93, and not trivially wide: at most
    0.99). The percentile bootstrap of max - min it replaces held 0 in none of 40 at d = 0.
    """
    rng = np.random.default_rng(20240 + int(true_difference * 10))
    groups = np.repeat(np.array(["a", "b"]), 200)
    rates = np.r_[np.full(200, 0.3 + true_difference), np.full(200, 0.3)]
    predictions = (rng.random((COVERAGE_REPS, 400)) < rates).astype(np.int64)
    y = np.zeros(400, dtype=np.int64)  # y_true is not used by demographic parity
    results = [demographic_parity(y, pred, groups) for pred in predictions]
    covered = np.mean([r.low <= true_difference <= r.high for r in results])
    assert 0.93 <= covered <= 0.99, covered


@pytest.mark.parametrize("true_difference", [0.0, 0.3])
def test_equalized_odds_interval_covers_the_true_difference(true_difference):
    """Two groups of 100 positives and 100 negatives; TPR 0.6 + d vs 0.6, FPR 0.2 in both; the
    Bonferroni pair of Newcombe intervals must hold max(ΔTPR, ΔFPR) = d at least 93% of the time."""
    rng = np.random.default_rng(7)
    y = np.tile(np.r_[np.ones(100, dtype=np.int64), np.zeros(100, dtype=np.int64)], 2)
    groups = np.repeat(np.array(["a", "b"]), 200)
    rates = np.r_[np.full(100, 0.6 + true_difference), np.full(100, 0.2),  # a: positives, negatives
                  np.full(100, 0.6), np.full(100, 0.2)]  # b
    predictions = (rng.random((COVERAGE_REPS, 400)) < rates).astype(np.int64)
    results = [equalized_odds(y, pred, groups) for pred in predictions]
    covered = np.mean([r.low <= true_difference <= r.high for r in results])
    assert covered >= 0.93, covered


def test_demographic_parity_names_the_pair_and_its_counts():
    """a: 30/50 selected, b: 10/50, c: 20/50 -> a vs b, interval of 30/50 - 10/50 (Newcombe)."""
    groups = np.repeat(np.array(["a", "b", "c"]), 50)
    pred = np.r_[np.ones(30), np.zeros(20), np.ones(10), np.zeros(40), np.ones(20), np.zeros(30)].astype(int)
    r = demographic_parity(pred, pred, groups)
    assert r.difference == pytest.approx(0.4)
    assert (r.rate, r.high_group, r.low_group) == ("selection_rate", "a", "b")
    assert (r.high_counts, r.low_counts) == ((30, 50), (10, 50))
    assert (r.low, r.high) == pytest.approx(newcombe_interval(30, 50, 10, 50)[1:])
    none = demographic_parity(pred, pred, groups, confidence=None)
    assert none.difference == r.difference and np.isnan(none.low) and np.isnan(none.high)


def test_one_positive_is_too_small_not_an_equalized_odds_of_one():
    """Group m has a single positive, which the model misses: fairlearn gives m a TPR of 0 and an
    equalized odds difference of 1.0; here m's TPR is too small (NaN) and left out."""
    from fairlearn.metrics import equalized_odds_difference as fairlearn_eo

    y = np.r_[np.ones(40), np.zeros(40), np.ones(1), np.zeros(79), np.ones(40), np.zeros(40)].astype(int)
    groups = np.repeat(np.array(["f", "m", "x"]), 80)
    pred = y.copy()
    pred[80] = 0  # m's one positive missed
    assert fairlearn_eo(y[:160], pred[:160], sensitive_features=groups[:160]) == 1.0
    table = group_metrics(y, pred, groups)
    assert np.isnan(table.loc["m", "true_positive_rate"]) and table.loc["m", "positives"] == 1
    assert table.loc["m", "false_positive_rate"] == 0.0  # its 79 negatives are enough
    two = equalized_odds(y[:160], pred[:160], groups[:160])  # f and m: no TPR difference to claim
    assert np.isnan(two.difference) and two.too_small == (("true_positive_rate", "m", 1),)
    three = equalized_odds(y, pred, groups)  # f and x remain for the TPR
    assert three.difference == 0.0 and three.too_small == (("true_positive_rate", "m", 1),)
    assert equalized_odds_difference(y, pred, groups, min_group_size=1) == 1.0  # fairlearn's reading


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_differences_equal_fairlearn_when_every_group_is_large(seed):
    from fairlearn.metrics import demographic_parity_difference as fairlearn_dp
    from fairlearn.metrics import equalized_odds_difference as fairlearn_eo

    rng = np.random.default_rng(seed)
    y, p = rng.integers(0, 3, 300), rng.integers(0, 3, 300)
    g = rng.choice(["a", "b", "c"], 300)
    assert group_metrics(y, p, g, positive_label=2)[["positives", "negatives"]].min().min() >= MIN_GROUP_SIZE
    y2, p2 = (y == 2).astype(int), (p == 2).astype(int)
    assert demographic_parity_difference(y, p, g, positive_label=2) == pytest.approx(
        fairlearn_dp(y2, p2, sensitive_features=g), abs=1e-12)
    assert equalized_odds_difference(y, p, g, positive_label=2) == pytest.approx(
        fairlearn_eo(y2, p2, sensitive_features=g), abs=1e-12)


# --- Zhao et al. bias amplification -------------------------------------------------------------

# Training: label 1 with 3 f + 1 m (b*(1, f) = 0.75), label 0 with 1 f + 3 m (b*(0, m) = 0.75).
TRAIN_LABELS = _repeat((1, 4), (0, 4))
TRAIN_GROUPS = _repeat(("f", 3), ("m", 1), ("f", 1), ("m", 3))


def test_zhao_amplification_by_hand():
    """Predictions: 1 for 9 f + 1 m (b̃(1, f) = 0.9), 0 for 1 f + 3 m (b̃(0, m) = 0.75).

    Skewed pairs (b* > 1/|G| = 0.5): (1, f) and (0, m).
    BiasAmp = (1/|O|) [(0.9 - 0.75) + (0.75 - 0.75)] = 0.15 / 2 = 0.075.
    """
    pred = _repeat((1, 10), (0, 4))
    groups = _repeat(("f", 9), ("m", 1), ("f", 1), ("m", 3))
    assert bias_amplification_zhao(TRAIN_LABELS, TRAIN_GROUPS, pred, groups) == pytest.approx(0.075)


def test_zhao_no_amplification_with_training_proportions():
    """Predictions reproduce b*: 1 for 6 f + 2 m, 0 for 2 f + 6 m -> b̃ = b* -> 0."""
    pred = _repeat((1, 8), (0, 8))
    groups = _repeat(("f", 6), ("m", 2), ("f", 2), ("m", 6))
    assert bias_amplification_zhao(TRAIN_LABELS, TRAIN_GROUPS, pred, groups) == pytest.approx(0.0)


def test_zhao_reduction_and_unpredicted_output():
    """1 for 1 f + 1 m: (0.5 - 0.75) / 2 = -0.125. Only label 1 predicted (9 f, 1 m): 0.15 / 1."""
    pred = _repeat((1, 2), (0, 4))
    groups = _repeat(("f", 1), ("m", 1), ("f", 1), ("m", 3))
    assert bias_amplification_zhao(TRAIN_LABELS, TRAIN_GROUPS, pred, groups) == pytest.approx(-0.125)
    only_one = _repeat((1, 10)), _repeat(("f", 9), ("m", 1))
    assert bias_amplification_zhao(TRAIN_LABELS, TRAIN_GROUPS, *only_one) == pytest.approx(0.15)


def test_zhao_three_groups_threshold_is_one_third():
    """Train b*(1, ·) = (a 0.5, b 0.25, c 0.25), b*(0, ·) = (0.25, 0.25, 0.5): skewed (1, a), (0, c).

    Predicted 1: a 3, b 1 -> b̃(1, a) = 0.75 (+0.25); predicted 0 as in training (+0). 0.25 / 2 = 0.125.
    """
    train_labels = _repeat((1, 4), (0, 4))
    train_groups = np.array(["a", "a", "b", "c", "a", "b", "c", "c"])
    pred = _repeat((1, 4), (0, 4))
    groups = np.array(["a", "a", "a", "b", "a", "b", "c", "c"])
    assert bias_amplification_zhao(train_labels, train_groups, pred, groups) == pytest.approx(0.125)


def test_zhao_validation():
    with pytest.raises(ValueError, match="eval_groups"):
        bias_amplification_zhao(TRAIN_LABELS, TRAIN_GROUPS, np.array([1, 0]), np.array(["f", "x"]))
    with pytest.raises(ValueError, match="train_groups"):
        bias_amplification_zhao(TRAIN_LABELS, TRAIN_GROUPS[:3], np.array([1]), np.array(["f"]))


@pytest.mark.parametrize("rho", [0.1, 0.2, 0.3])
def test_zhao_label_noise_attenuation_shows_up_as_amplification(rho):
    """Seeded simulation: two groups of 20,000, clean label 1 for 80% of f and 20% of m (b*(1, f) =
    b*(0, m) = 0.8), training labels flipped at rate ρ with the pipeline's flip_labels. The model
    reproduces the clean association exactly (its predictions are the clean labels).

    Against the noisy labels b* is attenuated to 1/2 + (1 - 2ρ) 0.3, and BiasAmp ≈ 2ρ · 0.3 (0.06,
    0.12, 0.18) although nothing is amplified; against the clean labels it is 0. Tolerance 0.01
    (the noise in b* is about 0.003).
    """
    from overfit_lab.data.splits import flip_labels

    rng = np.random.default_rng(5)
    groups = np.repeat(np.array(["f", "m"]), 20_000)
    clean = (rng.random(groups.size) < np.where(groups == "f", 0.8, 0.2)).astype(np.int64)
    noisy = flip_labels(clean, rho, n_classes=2, seed=3)
    b_noisy = np.mean(groups[noisy == 1] == "f")
    b_clean = np.mean(groups[clean == 1] == "f")
    assert b_noisy - 0.5 == pytest.approx((1 - 2 * rho) * (b_clean - 0.5), abs=0.01)
    assert bias_amplification_zhao(noisy, groups, clean, groups) == pytest.approx(2 * rho * 0.3, abs=0.01)
    assert bias_amplification_zhao(clean, groups, clean, groups) == pytest.approx(0.0, abs=1e-12)


# --- Wang & Russakovsky directional bias amplification ------------------------------------------

EVAL_GROUPS = _repeat(("f", 4), ("m", 4))
EVAL_TRUE = np.array([1, 1, 1, 0, 0, 0, 0, 1])  # P(T_1 | f) = 0.75, P(T_1 | m) = 0.25


def test_directional_amplification_by_hand():
    """Test labels: P(f, T_1) = 3/8 > P(f) P(T_1) = 1/4, so y_f1 = y_m0 = +1, y_f0 = y_m1 = -1 (the
    training labels, as for Zhao, have the same directions).

    Amplifying predictions, f: 1 1 1 1 (m as true):  Δ_f1 = 1 - 0.75 = +0.25, Δ_f0 = 0 - 0.25 = -0.25,
    Δ_m· = 0;  terms y_f1 Δ_f1 = 0.25 and -Δ_f0 = 0.25;  BiasAmp = 0.5 / (|A||T| = 4) = +0.125.
    Damping predictions, f: 1 1 0 0:  Δ_f1 = 0.5 - 0.75 = -0.25, Δ_f0 = +0.25;  BiasAmp = -0.5 / 4 = -0.125.
    """
    amplifying = np.array([1, 1, 1, 1, 0, 0, 0, 1])
    damping = np.array([1, 1, 0, 0, 0, 0, 0, 1])
    args = (TRAIN_LABELS, TRAIN_GROUPS, EVAL_TRUE)
    assert directional_bias_amplification(*args, amplifying, EVAL_GROUPS) == pytest.approx(0.125)
    assert directional_bias_amplification(*args, damping, EVAL_GROUPS) == pytest.approx(-0.125)


def test_directional_amplification_zero_when_predictions_are_true():
    assert directional_bias_amplification(TRAIN_LABELS, TRAIN_GROUPS, EVAL_TRUE, EVAL_TRUE, EVAL_GROUPS) == 0


def test_directional_amplification_validation():
    with pytest.raises(ValueError, match="eval_groups"):  # group m missing from the evaluation split
        directional_bias_amplification(TRAIN_LABELS, TRAIN_GROUPS, [1], [1], np.array(["f"]))
    with pytest.raises(ValueError, match="eval_pred"):
        directional_bias_amplification(TRAIN_LABELS, TRAIN_GROUPS, EVAL_TRUE, EVAL_TRUE[:2], EVAL_GROUPS)
    with pytest.raises(ValueError, match="association"):
        directional_bias_amplification(TRAIN_LABELS, TRAIN_GROUPS, EVAL_TRUE, EVAL_TRUE, EVAL_GROUPS,
                                       association="test")


# Values produced by the reference code, biasamp_attribute_to_task of
# github.com/princetonvisualai/directional-bias-amp (directional_biasamp.py), run on these arrays
# one-hot encoded (tasks = classes, attributes = groups): called without the training arrays (y_at
# from the test labels, its default) -> "eval"; with task_labels_train / attribute_labels_train
# -> "train". Each case: (train_labels, train_groups, eval_true, eval_pred, eval_groups, eval, train).
_FM = ["f"] * 4 + ["m"] * 4
REFERENCE_CASES = {
    # the (noisy) training labels reverse the association the test labels show
    "reversed_by_training_labels": ([1, 0, 0, 0, 1, 1, 1, 0], _FM, [1, 1, 1, 0, 0, 0, 0, 1],
                                    [1, 1, 1, 1, 0, 0, 0, 0], _FM, 0.25, -0.25),
    # every group has half positives in the test labels: y_at = 0 everywhere, BiasAmp 0
    "tie_in_test_labels": ([1, 0, 0, 0, 1, 1, 1, 0], _FM, [1, 1, 0, 0, 1, 1, 0, 0],
                           [1, 1, 1, 0, 1, 0, 0, 0], _FM, 0.0, -0.25),
    # three classes; class 2 is tied with the groups in the training labels (1 of 2 in f, f half)
    "tie_in_training_labels": ([0, 0, 1, 2, 1, 1, 1, 2], _FM, [0, 0, 1, 2, 1, 1, 2, 2],
                               [0, 2, 2, 2, 1, 1, 2, 2], _FM, -0.08333333333333333, 0.0),
    # three classes and three groups of unequal size (seeded random arrays)
    "three_by_three": ([2, 1, 2, 2, 1, 2, 2, 0, 0, 0, 0, 2, 2, 0, 1, 2, 0, 2, 0, 1, 2, 0, 1, 0],
                       ["c", "a", "c", "b", "b", "b", "b", "b", "b", "c", "c", "c", "c", "b", "b", "c", "b",
                        "a", "c", "a", "c", "b", "a", "a"],
                       [1, 0, 0, 1, 2, 1, 2, 2, 2, 1, 1, 1, 0, 1, 1, 0, 2, 0],
                       [0, 0, 2, 2, 2, 0, 2, 1, 1, 0, 1, 2, 1, 0, 1, 0, 2, 2],
                       ["a"] * 6 + ["b"] * 5 + ["c"] * 7, -0.19470899470899472, -0.003174603174603182),
}


@pytest.mark.parametrize("case", sorted(REFERENCE_CASES))
def test_directional_amplification_matches_the_reference_code(case):
    *arrays, eval_value, train_value = REFERENCE_CASES[case]
    train_y, train_g, y, pred, g = (np.asarray(a) for a in arrays)
    args = (train_y, train_g, y, pred, g)
    assert directional_bias_amplification(*args) == pytest.approx(eval_value, abs=1e-12)
    assert directional_bias_amplification(*args, association="eval") == pytest.approx(eval_value, abs=1e-12)
    assert directional_bias_amplification(*args, association="train") == pytest.approx(train_value, abs=1e-12)


# --- counterfactual swaps -----------------------------------------------------------------------


def test_counterfactual_flips_by_hand():
    """Argmax 1->0, 0->0, 1->1: flip rate 1/3; |Δp_1| = 0.3, 0.1, 0.1: mean 0.5/3."""
    p = np.array([[0.4, 0.6], [0.9, 0.1], [0.2, 0.8]])
    q = np.array([[0.7, 0.3], [0.8, 0.2], [0.1, 0.9]])
    result = counterfactual_flips(p, q)
    assert result == {"flip_rate": pytest.approx(1 / 3), "mean_abs_change": pytest.approx(0.5 / 3)}
    assert counterfactual_flips(p, p) == {"flip_rate": 0.0, "mean_abs_change": 0.0}


def test_counterfactual_flips_validation():
    p = np.array([[0.4, 0.6], [0.9, 0.1]])
    with pytest.raises(ValueError, match="proba_counterfactual"):
        counterfactual_flips(p, p[:1])
    with pytest.raises(ValueError, match="proba_original"):
        counterfactual_flips(np.array([[0.4, 0.4], [0.9, 0.1]]), p)
    with pytest.raises(ValueError, match="positive_label"):
        counterfactual_flips(p, p, positive_label=2)


def test_swap_identity_terms_preserves_case_and_word_boundaries():
    text = "She said he was the man. HE thanked her mother; the theme, shell and Mrs. Smith stayed."
    expected = "He said she was the woman. SHE thanked his father; the theme, shell and Mr. Smith stayed."
    assert swap_identity_terms(text) == expected
    assert swap_identity_terms("he's his own boss") == "she's her own boss"
    assert swap_identity_terms("Hers, not his.") == "His, not her."


def test_swap_identity_terms_custom_pairs_single_pass():
    pairs = [("mary", "john"), ("she", "he")]
    assert swap_identity_terms("Mary told John she would call him.", pairs) == (
        "John told Mary he would call him."
    )
    assert swap_identity_terms("no identity words", pairs) == "no identity words"


def test_gender_pairs_first_pair_wins():
    assert all(a.islower() and b.islower() for a, b in GENDER_PAIRS)
    assert swap_identity_terms("her him his hers mr mrs") == "his her her his mrs mr"


@pytest.mark.parametrize("pairs", [[("she",)], [("she", "")], [("he", "HE")]])
def test_swap_identity_terms_invalid_pairs(pairs):
    with pytest.raises(ValueError, match="pairs"):
        swap_identity_terms("she", pairs)


# --- the bias adapter on a checkpoint ------------------------------------------------------------


def _bias_context(tiny_model, correlated: bool, group_columns: list[str], bias: dict | None = None):
    import pandas as pd
    import torch
    from conftest import make_sentences

    from overfit_lab.data import TaskData
    from overfit_lab.diagnostics.checkpoint import CheckpointContext
    from overfit_lab.models import load_classifier, load_tokenizer
    from overfit_lab.predict import encode, predict_logits
    from overfit_lab.suite import validate_suite

    frames = {name: make_sentences(n, seed=s) for name, n, s in
              (("train", 40, 1), ("validation", 20, 2), ("test", 30, 3), ("correlated", 30, 4))}
    frames["correlated"]["gender"] = "female"  # unlike test, a single group: Zhao must differ
    data = TaskData(train=frames["train"], validation=frames["validation"], test=frames["test"],
                    label_names=["neg", "pos"], group_columns=group_columns,
                    correlated_test=frames["correlated"] if correlated else None)
    suite = validate_suite({"model": {"name": str(tiny_model), "max_length": 32},
                            "data": {"builtin": "reviews"}, "grid": {"train_sizes": [10], "epochs": [1]},
                            "diagnostics": {"bias": {"subsample": 30, **(bias or {})}}})
    tokenizer = load_tokenizer(str(tiny_model))
    torch.manual_seed(0)
    model = load_classifier(str(tiny_model), data.label_names).eval()
    encoded = {name: encode(tokenizer, f["text"].tolist(), f["label"], max_length=32)
               for name, f in frames.items() if name != "correlated"}
    logits = {name: predict_logits(model, e) for name, e in encoded.items()}
    train_rows = pd.DataFrame({**frames["train"], "clean_label": frames["train"]["label"]})
    return CheckpointContext(checkpoint="final", model=model, tokenizer=tokenizer, suite=suite, data=data,
                             train_rows=train_rows, encoded=encoded, logits=logits,
                             pretrained_path=str(tiny_model))


def test_bias_adapter_scores_zhao_on_the_correlated_split(tiny_model):
    from overfit_lab.diagnostics.checkpoint import _bias

    for correlated in (True, False):
        ctx = _bias_context(tiny_model, correlated, ["gender"])
        rows = {r["metric"]: r["value"] for r in _bias(ctx) if r.get("group") == "gender"}
        train = ctx.train_rows
        if correlated:
            split = ctx.data.correlated_test
            pred = ctx.predict_texts(split["text"].tolist()).argmax(1)
        else:
            split, pred = ctx.data.test, ctx.proba("test").argmax(1)
        expected = bias_amplification_zhao(train["label"].to_numpy(), train["gender"].to_numpy(), pred,
                                           split["gender"].to_numpy())
        assert rows["bias_amplification_zhao"] == pytest.approx(expected)
        test_pred = ctx.proba("test").argmax(1)  # BiasAmp-> always on the (balanced) test split
        assert rows["bias_amplification"] == pytest.approx(directional_bias_amplification(
            train["label"].to_numpy(), train["gender"].to_numpy(), ctx.data.test["label"].to_numpy(),
            test_pred, ctx.data.test["gender"].to_numpy()))


def test_counterfactual_swaps_need_no_group_column(tiny_model):
    from overfit_lab.diagnostics.checkpoint import _bias

    ctx = _bias_context(tiny_model, False, [])
    metrics = {r["metric"] for r in _bias(ctx)}
    assert metrics == {"counterfactual_flip_rate", "counterfactual_n", "counterfactual_abs_change"}


def test_bias_adapter_rows_newcombe_too_small_and_clean_labels(tiny_model):
    """With 30% of the training labels flipped: Zhao's BiasAmp is measured against the clean labels
    (the noisy variant beside it), BiasAmp→ takes its directions from the test labels (unmoved by
    the noise); DP and EO carry Newcombe's interval and the named groups; groups of the 30-row
    test split with fewer than 10 positives are too small for the TPR."""
    from overfit_lab.data.splits import flip_labels
    from overfit_lab.diagnostics.checkpoint import _bias

    ctx = _bias_context(tiny_model, False, ["gender"], bias={"counterfactual": False})
    clean = ctx.train_rows["clean_label"].to_numpy()
    noisy = flip_labels(clean, 0.3, n_classes=2, seed=0)
    ctx.train_rows["label"] = noisy
    rows = {(r["metric"], r.get("group")): r for r in _bias(ctx)}
    test, pred = ctx.data.test, ctx.proba("test").argmax(1)
    y, g, train_g = test["label"].to_numpy(), test["gender"].to_numpy(), ctx.train_rows["gender"].to_numpy()

    zhao = bias_amplification_zhao(clean, train_g, pred, g)
    zhao_noisy = bias_amplification_zhao(noisy, train_g, pred, g)
    assert zhao != zhao_noisy
    assert rows["bias_amplification_zhao", "gender"]["value"] == pytest.approx(zhao)
    assert rows["bias_amplification_zhao_noisy", "gender"]["value"] == pytest.approx(zhao_noisy)
    directional = directional_bias_amplification(clean, train_g, y, pred, g)
    assert directional == directional_bias_amplification(noisy, train_g, y, pred, g)
    assert rows["bias_amplification", "gender"]["value"] == pytest.approx(directional)

    dp = demographic_parity(y, pred, g)
    for end, value in (("", dp.difference), ("_low", dp.low), ("_high", dp.high)):
        assert rows[f"demographic_parity_difference{end}", "gender"]["value"] == pytest.approx(value)
    for end, group, (hits, n) in (("high", dp.high_group, dp.high_counts),
                                  ("low", dp.low_group, dp.low_counts)):
        row = rows[f"demographic_parity_{end}_group", f"gender={group}"]
        assert (row["value"], row["op"]) == (pytest.approx(hits / n), "selection_rate")
    table = group_metrics(y, pred, g)
    assert (table["positives"] < 10).any()  # the 30-row test split: about 7 positives per group
    for group, r in table.iterrows():
        tpr = rows["true_positive_rate", f"gender={group}"]["value"]
        assert np.isnan(tpr) if r["positives"] < 10 else tpr == pytest.approx(r["true_positive_rate"])
        assert rows["group_positives", f"gender={group}"]["value"] == r["positives"]
    assert np.isnan(rows["equalized_odds_difference", "gender"]["value"])
    assert np.isnan(equalized_odds(y, pred, g).difference)


def test_bias_adapter_follows_min_group_size_and_intervals(tiny_model):
    from overfit_lab.diagnostics.checkpoint import _bias

    ctx = _bias_context(tiny_model, False, ["gender"], bias={"counterfactual": False, "intervals": False,
                                                             "min_group_size": 1})
    rows = {(r["metric"], r.get("group")): r["value"] for r in _bias(ctx)}
    assert not any(metric.endswith(("_low", "_high")) for metric, _ in rows)
    test, pred = ctx.data.test, ctx.proba("test").argmax(1)
    expected = equalized_odds_difference(test["label"].to_numpy(), pred, test["gender"].to_numpy(),
                                         min_group_size=1)
    assert rows["equalized_odds_difference", "gender"] == pytest.approx(expected)
    assert "bias_amplification_zhao_noisy" not in {metric for metric, _ in rows}  # no label noise


def test_report_bias_rows_show_newcombe_groups_too_small_and_label_noise():
    """The report's bias table (html._bias_rows) on hand-made rows of two seeds at label noise 0.2:
    the DP difference with the mean of the seeds' Newcombe ends and the pair compared, EO too
    small in every seed, Zhao against clean and noisy labels, and the attenuation 1 - 2ρ noted."""
    from pathlib import Path

    import pandas as pd

    from overfit_lab.analysis import RunResult
    from overfit_lab.report.sections import bias_rows, bias_settings
    from overfit_lab.store import StoredRun
    from overfit_lab.suite import validate_suite

    suite = validate_suite({"model": {"name": "m"}, "data": {"builtin": "reviews"},
                            "grid": {"train_sizes": [10], "epochs": [1], "label_noise": [0.2]}})
    cells = pd.DataFrame({"cell_id": ["s0", "s1"], "train_size": 10, "label_noise": 0.2,
                          "strategy": "baseline", "seed": [0, 1]})
    rows = []
    seeds = {"s0": (0.2, 0.1, 0.3, 0.0, 0.1), "s1": (0.4, 0.2, 0.5, 0.02, 0.12)}
    for cell, (dp, low, high, zhao, noisy) in seeds.items():
        rows += [(cell, "bias_amplification", 0.01, "gender", None),
                 (cell, "bias_amplification_zhao", zhao, "gender", None),
                 (cell, "bias_amplification_zhao_noisy", noisy, "gender", None),
                 (cell, "demographic_parity_difference", dp, "gender", None),
                 (cell, "demographic_parity_difference_low", low, "gender", None),
                 (cell, "demographic_parity_difference_high", high, "gender", None),
                 (cell, "demographic_parity_high_group", 0.5 + dp, "gender=f", "selection_rate"),
                 (cell, "demographic_parity_low_group", 0.5, "gender=m", "selection_rate"),
                 (cell, "equalized_odds_difference", np.nan, "gender", None)]
    diag = pd.DataFrame(rows, columns=["cell_id", "metric", "value", "group", "op"])
    diag["checkpoint"] = "final"
    run = RunResult(StoredRun(run_dir=Path("."), suite=suite, environment={}, meta={}, cells=cells,
                              metrics=pd.DataFrame(), diagnostics=diag, examples=pd.DataFrame()))
    (row,) = bias_rows(run)
    assert (row["column"], row["size"], row["noise"], row["strategy"]) == ("gender", 10, "0.2", "baseline")
    assert row["zhao"].startswith("0.010") and row["zhao_noisy"].startswith("0.110")
    dp, eo = row["parity"]
    assert dp["difference"].startswith("0.300") and dp["interval"] == "[0.150, 0.400]"
    assert dp["groups"] == "f > m"
    assert eo == {"difference": "too small", "interval": "–", "groups": ""}
    settings = bias_settings(run)
    assert (settings["label_noise"], settings["attenuation"]) == ("0.2", "0.6")
    assert settings["min_group_size"] == 10


# --- group columns as real data sets ship them: multi-valued, unseen in training, rare ----------


def test_group_indicators_split_multi_valued_columns():
    """With a separator each value is one binary attribute (stripped, repeats once, an empty part
    none); without one the whole value is the group."""
    from overfit_lab.diagnostics.bias import group_indicators

    values = np.array(["gay", "black;muslim", " lesbian ; gay;american", "none", "", "black;black"])
    names, attributes = group_indicators(values, ";")
    assert names == ["american", "black", "gay", "lesbian", "muslim", "none"]
    assert attributes.astype(int).tolist() == [[0, 0, 1, 0, 0, 0], [0, 1, 0, 0, 1, 0], [1, 0, 1, 1, 0, 0],
                                               [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0]]
    names, attributes = group_indicators(values[:2])
    assert names == ["black;muslim", "gay"] and attributes.sum(axis=1).tolist() == [1, 1]
    names, attributes = group_indicators(values, ";", names=["gay", "hindu"])
    assert names == ["gay", "hindu"] and attributes[:, 0].tolist() == [1, 0, 1, 0, 0, 0]
    assert not attributes[:, 1].any()
    with pytest.raises(ValueError, match="separator"):
        group_indicators(values, "")
    with pytest.raises(ValueError, match="groups"):
        group_indicators(np.array([]), ";")


def test_amplification_groups_keep_groups_seen_often_enough_in_both_splits():
    """black/gay/none: 10+ in both; hindu: only in the evaluation split; jewish: twice in
    training; muslim: 10 in training, 3 in evaluation (kept once the least size is 3)."""
    from overfit_lab.diagnostics.bias import amplification_groups

    train = np.array(["none"] * 12 + ["gay"] * 10 + ["black;muslim"] * 10 + ["jewish"] * 2)
    test = np.array(["none"] * 10 + ["gay;black"] * 10 + ["muslim"] * 3 + ["hindu"] * 4)
    counts = amplification_groups(train, test, separator=";")
    assert counts.index.tolist() == ["black", "gay", "hindu", "jewish", "muslim", "none"]
    assert counts["train"].tolist() == [10, 10, 0, 2, 10, 12]
    assert counts["eval"].tolist() == [10, 10, 4, 0, 3, 10]
    assert counts["reason"].tolist() == ["", "", "not in training", "too small", "too small", ""]
    assert counts["kept"].tolist() == [True, True, False, False, False, True]
    three = amplification_groups(train, test, separator=";", min_group_size=3)
    assert three.index[three["kept"]].tolist() == ["black", "gay", "muslim", "none"]
    with pytest.raises(ValueError, match="min_group_size"):
        amplification_groups(train, test, min_group_size=0)


def _directional_by_loops(train_y, train_a, y, pred, a, association="eval"):
    """BiasAmp→ straight from Wang & Russakovsky's definition, one (a, t) at a time, with exact
    fractions for the direction (so a tie is 0 as in the reference code's np.sign)."""
    from fractions import Fraction

    labels, attributes = (y, a) if association == "eval" else (train_y, train_a)
    n = len(labels)
    terms = []
    for j in range(a.shape[1]):
        for t in np.unique(np.concatenate([train_y, y, pred])):
            has, is_t = attributes[:, j] == 1, labels == t
            p_at, p_a, p_t = (Fraction(int(m.sum()), n) for m in (has & is_t, has, is_t))
            direction = (p_at > p_a * p_t) - (p_at < p_a * p_t)
            rows = a[:, j] == 1
            terms.append(direction * (np.mean(pred[rows] == t) - np.mean(y[rows] == t)))
    return float(np.mean(terms))


@pytest.mark.parametrize("seed", range(4))
def test_multilabel_directional_amplification_follows_the_definition(seed):
    """Random multi-label attributes (a row may have several or none), three classes."""
    from overfit_lab.diagnostics.bias import directional_bias_amplification_multilabel

    rng = np.random.default_rng(seed)
    train_y, y, pred = rng.integers(3, size=50), rng.integers(3, size=40), rng.integers(3, size=40)
    train_a, a = rng.random((50, 4)) < 0.3, rng.random((40, 4)) < 0.3
    a[np.arange(4), np.arange(4)] = True  # every attribute holds for some evaluation row
    for association in ("eval", "train"):
        got = directional_bias_amplification_multilabel(train_y, train_a, y, pred, a,
                                                        association=association)
        expected = _directional_by_loops(train_y, train_a, y, pred, a, association)
        assert got == pytest.approx(expected, abs=1e-12)
    # every probability is over all rows: an attribute left out leaves the others' terms as they were
    alone = [directional_bias_amplification_multilabel(train_y, train_a[:, [j]], y, pred, a[:, [j]])
             for j in range(4)]
    both = directional_bias_amplification_multilabel(train_y, train_a, y, pred, a)
    assert both == pytest.approx(np.mean(alone))


@pytest.mark.parametrize("case", sorted(REFERENCE_CASES))
def test_multilabel_directional_amplification_on_one_hot_rows_is_the_one_group_version(case):
    from overfit_lab.diagnostics.bias import directional_bias_amplification_multilabel

    *arrays, eval_value, train_value = REFERENCE_CASES[case]
    train_y, train_g, y, pred, g = (np.asarray(a) for a in arrays)
    names = np.unique(train_g)
    args = (train_y, train_g[:, None] == names, y, pred, g[:, None] == names)
    assert directional_bias_amplification_multilabel(*args) == pytest.approx(eval_value, abs=1e-12)
    train = directional_bias_amplification_multilabel(*args, association="train")
    assert train == pytest.approx(train_value, abs=1e-12)


def test_multilabel_directional_amplification_validation():
    from overfit_lab.diagnostics.bias import directional_bias_amplification_multilabel as amp

    y, a = np.array([1, 0, 1, 0]), np.array([[1, 0], [1, 0], [1, 1], [0, 1]])
    with pytest.raises(ValueError, match="eval_attributes columns \\[1\\]"):  # Δ of attribute 1 undefined
        amp(y, a, y, y, np.array([[1, 0], [1, 0], [1, 0], [0, 0]]))
    with pytest.raises(ValueError, match="eval_attributes must have the 2 columns"):
        amp(y, a, y, y, a[:, :1])
    with pytest.raises(ValueError, match="train_attributes must be an"):
        amp(y, a[:3], y, y, a)
    with pytest.raises(ValueError, match="eval_attributes must hold 0/1"):
        amp(y, a, y, y, a * 2)
    with pytest.raises(ValueError, match="eval_pred"):
        amp(y, a, y, y[:2], a)
    with pytest.raises(ValueError, match="association"):
        amp(y, a, y, y, a, association="test")


# Train 40 and test 30 rows; with min_group_size 5. Split on ";": train none 14, gay 10, black 14,
# muslim 8, jewish 2; test none 8, gay 9, black 7, muslim 5, jewish 3, hindu 3, lesbian 3.
IDENTITY_TRAIN = ["none"] * 14 + ["gay"] * 10 + ["black;muslim"] * 8 + ["black"] * 6 + ["jewish"] * 2
IDENTITY_TEST = (["none"] * 8 + ["gay"] * 6 + ["black;muslim"] * 5 + ["black"] * 2 + ["jewish"] * 3
                 + ["hindu"] * 3 + ["lesbian;gay"] * 3)


def _identity_context(tiny_model, separator: str | None):
    """The adapter's context with an ``identity`` column as real data ships one: values only in
    the test split (hindu, lesbian), one seen twice in training (jewish), several values per row
    ("black;muslim") and "none"."""
    ctx = _bias_context(tiny_model, False, ["identity"],
                        bias={"counterfactual": False, "min_group_size": 5})
    rng = np.random.default_rng(7)
    ctx.train_rows["identity"] = rng.permutation(np.array(IDENTITY_TRAIN, dtype=object))
    ctx.data.test["identity"] = rng.permutation(np.array(IDENTITY_TEST, dtype=object))
    ctx.suite = ctx.suite.model_copy(update={"data": ctx.suite.data.model_copy(
        update={"group_separator": separator})})
    return ctx


def test_bias_adapter_leaves_out_unseen_and_rare_groups_of_a_multi_valued_column(tiny_model):
    """identity split on ";": black, gay, muslim and none enter BiasAmp→ (as multi-label
    attributes, over every test row); hindu and lesbian (test only) and jewish (2 training rows)
    are left out and reported; subgroup rates are per value over the rows having it; Zhao's
    BiasAmp, defined for one group per row, is not computed. The code before would raise."""
    from overfit_lab.diagnostics.bias import directional_bias_amplification_multilabel
    from overfit_lab.diagnostics.checkpoint import _bias

    ctx = _identity_context(tiny_model, ";")
    rows = _bias(ctx)
    left = {r["group"]: r["value"] for r in rows if r["metric"] == "amplification_left_out"}
    assert left == {"identity=hindu": 0.0, "identity=jewish": 2.0, "identity=lesbian": 0.0}
    kept = ["black", "gay", "muslim", "none"]
    train_a = np.array([[v in s.split(";") for v in kept] for s in ctx.train_rows["identity"]])
    test_a = np.array([[v in s.split(";") for v in kept] for s in ctx.data.test["identity"]])
    y, pred = ctx.data.test["label"].to_numpy(), ctx.proba("test").argmax(1)
    expected = directional_bias_amplification_multilabel(ctx.train_rows["label"].to_numpy(), train_a, y, pred,
                                                         test_a)
    by = {(r["metric"], r.get("group")): r["value"] for r in rows}
    assert np.isfinite(expected) and by["bias_amplification", "identity"] == pytest.approx(expected)
    counts = {g: by["group_count", f"identity={g}"]
              for g in ("none", "gay", "black", "muslim", "hindu", "lesbian")}
    assert counts == {"none": 8, "gay": 9, "black": 7, "muslim": 5, "hindu": 3, "lesbian": 3}
    gay = np.array(["gay" in s.split(";") for s in ctx.data.test["identity"]])
    assert by["selection_rate", "identity=gay"] == pytest.approx(float((pred[gay] == 1).mean()))
    assert not any(m.startswith("bias_amplification_zhao") for m, _ in by)


def test_bias_adapter_leaves_out_unseen_and_rare_groups_of_a_one_valued_column(tiny_model):
    """Without a separator "black;muslim" is one group: black (6 training, 2 test rows) and jewish
    are too small, hindu and "lesbian;gay" not in training; Zhao's BiasAmp over the kept groups'
    rows, BiasAmp→ over every row. The code before raised "eval_groups holds groups absent"."""
    from overfit_lab.diagnostics.bias import directional_bias_amplification_multilabel
    from overfit_lab.diagnostics.checkpoint import _bias

    ctx = _identity_context(tiny_model, None)
    rows = _bias(ctx)
    left = {r["group"]: r["value"] for r in rows if r["metric"] == "amplification_left_out"}
    assert left == {"identity=black": 6.0, "identity=jewish": 2.0, "identity=hindu": 0.0,
                    "identity=lesbian;gay": 0.0}
    kept = np.array(["black;muslim", "gay", "none"], dtype=object)
    train_y, train_g = ctx.train_rows["label"].to_numpy(), ctx.train_rows["identity"].to_numpy()
    y, g = ctx.data.test["label"].to_numpy(), ctx.data.test["identity"].to_numpy()
    pred = ctx.proba("test").argmax(1)
    by = {(r["metric"], r.get("group")): r["value"] for r in rows}
    expected = directional_bias_amplification_multilabel(train_y, train_g[:, None] == kept, y, pred,
                                                         g[:, None] == kept)
    assert by["bias_amplification", "identity"] == pytest.approx(expected)
    train_in, test_in = np.isin(train_g, kept), np.isin(g, kept)
    zhao = bias_amplification_zhao(train_y[train_in], train_g[train_in], pred[test_in], g[test_in])
    assert by["bias_amplification_zhao", "identity"] == pytest.approx(zhao)


def test_report_notes_the_groups_left_out():
    """The bias note lists each left-out subgroup with why and its counts, over seeds (hand-made
    rows of two cells: hindu never in training, jewish too small in one cell only)."""
    from pathlib import Path

    import pandas as pd

    from overfit_lab.analysis import RunResult
    from overfit_lab.report.sections import bias_settings, left_out_notes
    from overfit_lab.store import StoredRun
    from overfit_lab.suite import validate_suite

    data = {"builtin": "reviews", "group_columns": ["identity"], "group_separator": ";"}
    suite = validate_suite({"model": {"name": "m"}, "data": data,
                            "grid": {"train_sizes": [10], "epochs": [1], "seeds": [0, 1]}})
    cells = pd.DataFrame({"cell_id": ["s0", "s1"], "train_size": 10, "label_noise": 0.0,
                          "strategy": "baseline", "seed": [0, 1]})
    rows = []
    for cell in ("s0", "s1"):
        rows += [(cell, "bias_amplification", 0.01, "identity"),
                 (cell, "amplification_left_out", 0.0, "identity=hindu"),
                 (cell, "group_count", 3.0 if cell == "s0" else 4.0, "identity=hindu")]
    rows += [("s1", "amplification_left_out", 2.0, "identity=jewish"),
             ("s1", "group_count", 12.0, "identity=jewish")]
    diag = pd.DataFrame(rows, columns=["cell_id", "metric", "value", "group"]).assign(checkpoint="final")
    run = RunResult(StoredRun(run_dir=Path("."), suite=suite, environment={}, meta={}, cells=cells,
                              metrics=pd.DataFrame(), diagnostics=diag, examples=pd.DataFrame()))
    assert left_out_notes(run) == [
        "identity=hindu: not in training (test n = 3–4)",
        "identity=jewish: too small (training n = 2, test n = 12; in 1 of 2 cells)"]
    settings = bias_settings(run)
    assert settings["left_out"] == left_out_notes(run) and settings["group_separator"] == ";"

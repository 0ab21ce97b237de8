"""Subgroup metrics, bias amplification and counterfactual swaps against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from overfit_lab.diagnostics.bias import (
    GENDER_PAIRS,
    bias_amplification_zhao,
    bootstrap_ci,
    counterfactual_flips,
    demographic_parity_difference,
    directional_bias_amplification,
    equalized_odds_difference,
    group_metrics,
    swap_identity_terms,
)

# y_true / y_pred per group:  f: y 1 1 0 0, ŷ 1 0 1 0;  m: y 1 0 0 0, ŷ 1 1 1 0.
Y_TRUE = np.array([1, 1, 0, 0, 1, 0, 0, 0])
Y_PRED = np.array([1, 0, 1, 0, 1, 1, 1, 0])
GROUPS = np.array(["f"] * 4 + ["m"] * 4)


def _repeat(*pairs: tuple[object, int]) -> np.ndarray:
    return np.array([value for value, times in pairs for _ in range(times)])


# --- subgroup metrics ---------------------------------------------------------------------------


def test_group_metrics_by_hand():
    """f: accuracy 2/4, selected 2/4, TPR 1/2, FPR 1/2; m: accuracy 2/4, selected 3/4, TPR 1/1, FPR 2/3."""
    table = group_metrics(Y_TRUE, Y_PRED, GROUPS)
    assert list(table.columns) == ["accuracy", "selection_rate", "true_positive_rate",
                                   "false_positive_rate", "count"]
    assert table.index.tolist() == ["f", "m"] and table.index.name == "group"
    assert table.loc["f"].tolist() == pytest.approx([0.5, 0.5, 0.5, 0.5, 4])
    assert table.loc["m"].tolist() == pytest.approx([0.5, 0.75, 1.0, 2 / 3, 4])
    assert table["count"].dtype == np.int64


def test_dp_and_eo_differences_by_hand():
    """DP: 0.75 - 0.5 = 0.25.  EO: max(TPR gap 1 - 0.5, FPR gap 2/3 - 1/2) = 0.5."""
    assert demographic_parity_difference(Y_TRUE, Y_PRED, GROUPS) == pytest.approx(0.25)
    assert equalized_odds_difference(Y_TRUE, Y_PRED, GROUPS) == pytest.approx(0.5)
    equal_rates = np.array([1, 0, 1, 0])  # selection rate 1/2 in both groups
    assert demographic_parity_difference(equal_rates, equal_rates, np.array(["f", "f", "m", "m"])) == 0


def test_multiclass_binarizes_on_positive_label():
    """positive_label 2: a: y 2 0 / ŷ 2 1 -> selected 1/2, TPR 1; b: y 1 2 / ŷ 1 0 -> selected 0, TPR 0.

    Accuracy uses the raw labels: 1/2 in both groups.
    """
    y, pred, g = np.array([2, 0, 1, 2]), np.array([2, 1, 1, 0]), np.array(["a", "a", "b", "b"])
    table = group_metrics(y, pred, g, positive_label=2)
    assert table["accuracy"].tolist() == [0.5, 0.5]
    assert table["selection_rate"].tolist() == [0.5, 0.0]
    assert table["true_positive_rate"].tolist() == [1.0, 0.0]
    assert table["false_positive_rate"].tolist() == [0.0, 0.0]
    assert demographic_parity_difference(y, pred, g, positive_label=2) == pytest.approx(0.5)
    assert equalized_odds_difference(y, pred, g, positive_label=2) == pytest.approx(1.0)


def test_group_inputs_are_validated():
    with pytest.raises(ValueError, match="groups"):
        group_metrics(Y_TRUE, Y_PRED, GROUPS[:-1])
    with pytest.raises(ValueError, match="y_pred"):
        demographic_parity_difference(Y_TRUE, Y_PRED[:3], GROUPS)
    with pytest.raises(ValueError, match="y_true"):
        equalized_odds_difference(np.array([]), np.array([]), np.array([]))


# --- bootstrap ----------------------------------------------------------------------------------


def test_bootstrap_ci_contains_estimate_and_is_seeded():
    rng = np.random.default_rng(0)
    y = rng.integers(2, size=200)
    pred = np.where(rng.random(200) < 0.8, y, 1 - y)
    groups = rng.choice(["f", "m"], size=200)

    def accuracy(a: np.ndarray, b: np.ndarray, g: np.ndarray) -> float:
        return float((a == b).mean())

    estimate, low, high = bootstrap_ci(accuracy, y, pred, groups, n_resamples=300, seed=1)
    assert estimate == accuracy(y, pred, groups)
    assert low < estimate < high and high - low < 0.2
    assert bootstrap_ci(accuracy, y, pred, groups, n_resamples=300, seed=1) == (estimate, low, high)
    assert bootstrap_ci(accuracy, y, pred, groups, n_resamples=300, seed=2) != (estimate, low, high)
    wide = bootstrap_ci(accuracy, y, pred, groups, n_resamples=300, seed=1, confidence=0.99)
    assert wide[1] <= low and wide[2] >= high


def test_bootstrap_ci_resamples_rows_jointly_for_2d_arrays():
    """Rows of (n, K) probabilities travel with their labels: a constant metric gives a point interval."""
    proba = np.array([[0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.9, 0.1]])
    y = proba.argmax(axis=1)

    def accuracy(labels: np.ndarray, p: np.ndarray) -> float:
        return float((p.argmax(axis=1) == labels).mean())

    assert bootstrap_ci(accuracy, y, proba, n_resamples=100) == (1.0, 1.0, 1.0)


def test_bootstrap_ci_validation():
    with pytest.raises(ValueError, match="arrays"):
        bootstrap_ci(np.mean, np.arange(3), np.arange(4))
    with pytest.raises(ValueError, match="arrays"):
        bootstrap_ci(np.mean, np.arange(1))
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(np.mean, np.arange(3), confidence=1.0)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci(np.mean, np.arange(3), n_resamples=0)


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


# --- Wang & Russakovsky directional bias amplification ------------------------------------------

EVAL_GROUPS = _repeat(("f", 4), ("m", 4))
EVAL_TRUE = np.array([1, 1, 1, 0, 0, 0, 0, 1])  # P(T_1 | f) = 0.75, P(T_1 | m) = 0.25


def test_directional_amplification_by_hand():
    """Training (as for Zhao): P(f, T_1) = 3/8 > P(f) P(T_1) = 1/4, so y_f1 = y_m0 = 1, y_f0 = y_m1 = 0.

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


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numpy_parity_differences_equal_fairlearn(seed):
    from overfit_lab.diagnostics.bias import parity_differences

    rng = np.random.default_rng(seed)
    y, p = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    g = rng.choice(["a", "b", "c"], 200)
    dp, eo = parity_differences(y, p, g, positive_label=2)
    assert dp == pytest.approx(demographic_parity_difference(y, p, g, positive_label=2), abs=1e-12)
    assert eo == pytest.approx(equalized_odds_difference(y, p, g, positive_label=2), abs=1e-12)


# --- the bias adapter on a checkpoint ------------------------------------------------------------


def _bias_context(tiny_model, correlated: bool, group_columns: list[str]):
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
                            "diagnostics": {"bias": {"bootstrap": 0, "subsample": 30}}})
    tokenizer = load_tokenizer(str(tiny_model))
    torch.manual_seed(0)
    model = load_classifier(str(tiny_model), data.label_names).eval()
    encoded = {name: encode(tokenizer, f["text"].tolist(), f["label"], max_length=32)
               for name, f in frames.items() if name != "correlated"}
    logits = {name: predict_logits(model, e) for name, e in encoded.items()}
    train_rows = pd.DataFrame({**frames["train"], "clean_label": frames["train"]["label"]})
    return CheckpointContext(checkpoint="final", model=model, tokenizer=tokenizer, suite=suite, data=data,
                             train_rows=train_rows, encoded=encoded, logits=logits,
                             model_path=str(tiny_model))


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
    assert metrics == {"counterfactual_flip_rate", "counterfactual_abs_change"}

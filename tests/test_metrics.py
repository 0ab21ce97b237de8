"""Behavioural tests for classification metrics, seed statistics and generalization diagnostics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, log_loss

from overfit_lab.diagnostics.classification import classification_metrics, cross_entropy_loss
from overfit_lab.diagnostics.generalization import (
    best_epoch,
    fit_verdict,
    generalization_table,
    loss_rise,
    overfitting_onset,
)
from overfit_lab.stats import mean_ci
from overfit_lab.suite import VerdictSpec

# --- classification metrics ---------------------------------------------------------------------


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _macro_f1(labels: np.ndarray, preds: np.ndarray, k: int) -> float:
    scores = []
    for c in range(k):
        tp = np.sum((preds == c) & (labels == c))
        fp = np.sum((preds == c) & (labels != c))
        fn = np.sum((preds != c) & (labels == c))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cross_entropy_matches_sklearn_log_loss(seed: int) -> None:
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(60, 3))
    labels = rng.integers(3, size=60)
    expected = log_loss(labels, _softmax(logits), labels=[0, 1, 2])
    assert cross_entropy_loss(labels, logits) == pytest.approx(expected, rel=1e-9)
    single = cross_entropy_loss(labels, logits.astype(np.float32))
    assert single == pytest.approx(expected, rel=1e-5)


def test_cross_entropy_is_stable_for_large_logits() -> None:
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 500.0, 0.0]])
    labels = np.array([1, 1])
    # by hand: row 0 -> log-sum-exp = 1000, so -log p = 1000; row 1 -> ~ 0
    assert cross_entropy_loss(labels, logits) == pytest.approx(500.0)
    with pytest.raises(ValueError):
        cross_entropy_loss(labels, logits[0])
    with pytest.raises(ValueError):
        cross_entropy_loss(np.array([0, 1, 2]), logits)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_metrics_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(80, 3))
    labels = rng.integers(3, size=80)
    preds = logits.argmax(axis=1)
    got = classification_metrics(labels, logits)
    assert set(got) == {"loss", "accuracy", "macro_f1"}
    assert got["accuracy"] == pytest.approx(accuracy_score(labels, preds))
    assert got["accuracy"] == pytest.approx(np.mean(preds == labels))
    assert got["macro_f1"] == pytest.approx(f1_score(labels, preds, average="macro"))
    assert got["macro_f1"] == pytest.approx(_macro_f1(labels, preds, 3))
    assert got["loss"] == pytest.approx(log_loss(labels, _softmax(logits), labels=[0, 1, 2]))
    assert all(isinstance(v, float) for v in got.values())


def test_macro_f1_counts_a_class_never_predicted_nor_present() -> None:
    labels = np.array([0, 0, 1, 1])
    logits = np.array([[3.0, 0, 0], [0, 3.0, 0], [0, 3.0, 0], [0, 3.0, 0]])
    got = classification_metrics(labels, logits)
    # class 0: f1 2/3; class 1: f1 0.8; class 2: absent, 0 by convention
    assert got["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 0.0) / 3)
    assert got["accuracy"] == pytest.approx(0.75)


# --- mean_ci ------------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [[0.81, 0.84, 0.79], [1.0, 2.0, 4.0, 8.0, 16.0], [0.5, 0.7]])
def test_mean_ci_matches_hand_computation(values: list[float]) -> None:
    x = np.array(values)
    n = len(x)
    half = stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / math.sqrt(n)
    ci = mean_ci(values)
    assert ci.n == n
    assert ci.mean == pytest.approx(x.mean())
    assert ci.low == pytest.approx(x.mean() - half)
    assert ci.high == pytest.approx(x.mean() + half)
    assert ci.half_width == pytest.approx(half)
    half90 = stats.t.ppf(0.95, n - 1) * x.std(ddof=1) / math.sqrt(n)
    assert mean_ci(values, confidence=0.9).half_width == pytest.approx(half90)


def test_mean_ci_one_value_nan_and_empty() -> None:
    one = mean_ci([0.7])
    assert one.mean == 0.7 and one.n == 1
    assert math.isnan(one.low) and math.isnan(one.high)
    dropped = mean_ci([1.0, float("nan"), 3.0])
    reference = mean_ci([1.0, 3.0])
    assert dropped == reference and dropped.n == 2
    empty = mean_ci([float("nan")])
    assert empty.n == 0 and math.isnan(empty.mean)
    flat = mean_ci([0.5, 0.5, 0.5])
    assert (flat.mean, flat.low, flat.high) == (0.5, 0.5, 0.5)


@pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5, -0.1])
def test_mean_ci_bad_confidence(confidence: float) -> None:
    with pytest.raises(ValueError):
        mean_ci([1.0, 2.0], confidence=confidence)


# --- curve diagnostics --------------------------------------------------------------------------

SST2_1000 = [0.413, 0.399, 0.511, 0.753, 0.870]
SST2_100 = [0.685, 0.677, 0.662, 0.627, 0.561]
BOUNCE = [0.69, 0.66, 0.57, 0.41, 0.36, 0.34, 0.45, 0.54, 0.46]


def test_best_epoch_and_loss_rise() -> None:
    assert best_epoch(SST2_1000) == 2
    assert best_epoch(SST2_100) == 5
    assert best_epoch(BOUNCE) == 6
    assert best_epoch([0.5, 0.4, 0.4, 0.6]) == 2  # first on ties
    assert best_epoch([float("nan"), 0.5, 0.3]) == 3
    with pytest.raises(ValueError):
        best_epoch([])
    assert loss_rise(SST2_1000) == pytest.approx((0.870 - 0.399) / 0.399)
    assert loss_rise(BOUNCE) == pytest.approx((0.46 - 0.34) / 0.34)
    assert loss_rise(SST2_100) == 0.0


def test_overfitting_onset() -> None:
    assert overfitting_onset(SST2_1000) == 3
    assert overfitting_onset(BOUNCE) == 7
    assert overfitting_onset(SST2_100) is None
    assert overfitting_onset([0.5, 0.4, 0.45, 0.4, 0.5]) == 5  # back to the minimum at epoch 4
    # with a tolerance, 0.46 at the last epoch is within 40% of 0.34: no lasting rise
    assert overfitting_onset(BOUNCE, tolerance=0.4) is None
    assert overfitting_onset(SST2_1000, tolerance=0.5) == 4


def test_verdict_sst2_1000_overfit() -> None:
    verdict, reason = fit_verdict(SST2_1000, gap_accuracy=0.167)
    assert verdict == "overfit"
    assert "epoch 2" in reason and "0.399" in reason


def test_verdict_sst2_100_under_trained() -> None:
    verdict, reason = fit_verdict(SST2_100, gap_accuracy=0.265)
    assert verdict == "under-trained"
    assert "epoch 5" in reason


def test_verdict_bounce_overfit() -> None:
    verdict, reason = fit_verdict(BOUNCE, gap_accuracy=0.05)
    assert verdict == "overfit"
    assert "epoch 6" in reason


def test_verdict_flat_curve() -> None:
    flat = [0.60, 0.50, 0.498, 0.497]
    assert fit_verdict(flat, gap_accuracy=0.05)[0] == "well fit"
    verdict, reason = fit_verdict(flat, gap_accuracy=0.3)
    assert verdict == "overfit" and "0.300" in reason
    strict = VerdictSpec(accuracy_gap=0.01)
    assert fit_verdict(flat, gap_accuracy=0.05, thresholds=strict)[0] == "overfit"


def test_verdict_thresholds_and_single_epoch() -> None:
    assert fit_verdict([0.5], gap_accuracy=0.5)[0] == "undetermined"
    # an 8.75% rise is below the default loss_rise of 0.10
    assert fit_verdict([0.5, 0.4, 0.435], gap_accuracy=0.0)[0] == "well fit"
    assert fit_verdict([0.5, 0.4, 0.435], gap_accuracy=0.0,
                       thresholds=VerdictSpec(loss_rise=0.05))[0] == "overfit"
    assert fit_verdict(SST2_100, gap_accuracy=0.0,
                       thresholds=VerdictSpec(still_falling=0.2))[0] == "well fit"


def test_verdict_past_its_best_is_well_fit_not_under_trained() -> None:
    # the two curves: the minimum came earlier and the loss ended within loss_rise of it
    verdict, reason = fit_verdict([0.40, 0.44, 0.43], gap_accuracy=0.0)
    assert verdict == "well fit" and "passed its minimum at epoch 1" in reason
    # where the built-in early_stopping (patience 2) stops
    verdict, reason = fit_verdict([0.50, 0.40, 0.42, 0.41], gap_accuracy=0.0)
    assert verdict == "well fit" and "+2.5%" in reason
    assert overfitting_onset([0.50, 0.40, 0.42, 0.41]) is None


def test_verdict_under_trained_only_at_or_near_the_minimum() -> None:
    assert fit_verdict([0.60, 0.50, 0.45], gap_accuracy=0.3)[0] == "under-trained"  # best is last
    # falling again and within still_falling (1%) of an earlier minimum: still improving
    assert fit_verdict([0.50, 0.400, 0.45, 0.403], gap_accuracy=0.0)[0] == "under-trained"
    # at its minimum but no longer falling (-0.2%): levelled off
    verdict, reason = fit_verdict([0.60, 0.50, 0.499], gap_accuracy=0.0)
    assert verdict == "well fit" and "levelled off" in reason


def test_verdict_transient_spike_that_recovered_is_not_overfit() -> None:
    spike = [0.50, 0.40, 0.60, 0.42]  # +50% at epoch 3, back to +5% at epoch 4
    verdict, reason = fit_verdict(spike, gap_accuracy=0.0)
    assert verdict == "well fit" and "transient rise of +50% at epoch 3" in reason
    assert overfitting_onset(spike) is None
    assert fit_verdict(spike[:3], gap_accuracy=0.0)[0] == "overfit"  # judged at epoch 3


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_verdict_non_finite_loss_is_never_well_fit(bad: float) -> None:
    for curve in ([0.5, bad, 0.4, 0.39], [0.5, 0.45, bad], [bad, bad]):
        verdict, reason = fit_verdict(curve, gap_accuracy=0.0)
        assert verdict == "undetermined" and "diverged" in reason
        assert overfitting_onset(curve) is None


def test_onset_exactly_when_the_loss_rise_calls_overfit() -> None:
    rng = np.random.default_rng(0)
    spec = VerdictSpec()
    for _ in range(2000):
        curve = np.cumsum(rng.normal(0, 0.05, size=rng.integers(2, 8))) + 1.0
        verdict, reason = fit_verdict(curve, gap_accuracy=0.0, thresholds=spec)
        by_loss = verdict == "overfit" and "rose" in reason
        assert (overfitting_onset(curve, tolerance=spec.loss_rise) is not None) == by_loss, curve
        # under-trained only when the last epoch is (within still_falling of) the minimum
        if verdict == "under-trained":
            assert curve[-1] <= curve.min() * (1 + spec.still_falling) and curve[-1] < curve[-2]


# --- generalization_table -----------------------------------------------------------------------

CURVES = {
    # cell id: {epoch: (train loss, acc, f1, validation loss, acc, f1, test loss, acc)}
    "n100-baseline-s0": {1: (0.65, 0.70, 0.68, 0.60, 0.66, 0.64, 0.61, 0.65),
                         2: (0.40, 0.85, 0.84, 0.50, 0.75, 0.74, 0.52, 0.74),
                         3: (0.20, 0.97, 0.97, 0.58, 0.76, 0.75, 0.59, 0.75)},
    "n100-early_stopping-s0": {1: (0.66, 0.69, 0.69, 0.70, 0.60, 0.58, 0.71, 0.59),
                               2: (0.45, 0.85, 0.85, 0.60, 0.68, 0.67, 0.61, 0.67),
                               3: (0.30, 0.95, 0.95, 0.65, 0.70, 0.69, 0.66, 0.69)},
    "n100-dropout-s0": {1: (0.70, 0.50, 0.40, 0.70, 0.50, 0.40, 0.70, 0.50)},
}


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    cells = pd.DataFrame([
        {"cell_id": "n100-baseline-s0", "train_size": 100, "strategy": "baseline", "seed": 0,
         "label_noise": 0.0, "epochs": 3, "record_epochs": [1, 2, 3], "epoch_mode": "shared",
         "status": "finished", "reason": ""},
        {"cell_id": "n100-dropout-s0", "train_size": 100, "strategy": "dropout", "seed": 0,
         "label_noise": 0.0, "epochs": 3, "record_epochs": [1, 2, 3], "epoch_mode": "shared",
         "status": "failed", "reason": "non-finite training loss"},
        {"cell_id": "n100-early_stopping-s0", "train_size": 100, "strategy": "early_stopping",
         "seed": 0, "label_noise": 0.0, "epochs": 5, "record_epochs": [1, 2, 3, 4, 5],
         "epoch_mode": "shared", "status": "finished", "reason": ""},
    ])
    rows = []
    for cell_id, curve in CURVES.items():
        for epoch, values in curve.items():
            tl, ta, tf, vl, va, vf, sl, sa = values
            rows += [(cell_id, epoch, "train", "loss", tl),
                     (cell_id, epoch, "train", "accuracy", ta),
                     (cell_id, epoch, "train", "macro_f1", tf),
                     (cell_id, epoch, "train", "running_loss", tl + 0.05),
                     (cell_id, epoch, "validation", "loss", vl),
                     (cell_id, epoch, "validation", "accuracy", va),
                     (cell_id, epoch, "validation", "macro_f1", vf),
                     (cell_id, epoch, "test", "loss", sl), (cell_id, epoch, "test", "accuracy", sa),
                     (cell_id, epoch, "test", "macro_f1", sa - 0.01)]
    metrics = pd.DataFrame(rows, columns=["cell_id", "epoch", "split", "metric", "value"])
    return cells, metrics


def test_generalization_table_rows_and_values() -> None:
    cells, metrics = _frames()
    table = generalization_table(cells, metrics)
    assert "n100-dropout-s0" not in set(table.cell_id)  # failed cells are left out
    keys = list(zip(table.cell_id, table.epochs, strict=True))
    assert keys == [("n100-baseline-s0", e) for e in (1, 2, 3)] + \
        [("n100-early_stopping-s0", e) for e in (1, 2, 3, 4, 5)]
    for row in table.itertuples(index=False):
        curve = CURVES[row.cell_id]
        trained = min(row.epochs, max(curve))
        assert row.trained_epochs == trained
        tl, ta, tf, vl, va, vf, sl, sa = curve[trained]
        assert row.train_loss == pytest.approx(tl) and row.validation_accuracy == pytest.approx(va)
        assert row.test_loss == pytest.approx(sl) and row.test_macro_f1 == pytest.approx(sa - 0.01)
        assert row.gap_accuracy == pytest.approx(ta - va)
        assert row.gap_loss == pytest.approx(vl - tl)
        assert row.gap_macro_f1 == pytest.approx(tf - vf)
        losses = [curve[e][3] for e in range(1, trained + 1)]
        assert row.best_validation_loss == pytest.approx(min(losses))
        assert row.best_epoch == int(np.argmin(losses)) + 1
        assert (row.train_size, row.seed, row.label_noise) == (100, 0, 0.0)


def test_generalization_table_verdicts() -> None:
    cells, metrics = _frames()
    table = generalization_table(cells, metrics).set_index(["cell_id", "epochs"])
    base = "n100-baseline-s0"
    assert table.loc[(base, 1), "verdict"] == "undetermined"
    assert table.loc[(base, 2), "verdict"] == "under-trained"  # 0.60 -> 0.50
    assert table.loc[(base, 3), "verdict"] == "overfit"  # 0.50 -> 0.58: +16%
    assert table.loc[(base, 3), "loss_rise"] == pytest.approx(0.08 / 0.50)
    assert table.loc[(base, 3), "onset_epoch"] == 3
    assert pd.isna(table.loc[(base, 2), "onset_epoch"])
    early = "n100-early_stopping-s0"
    for epochs in (3, 4, 5):  # 4 and 5 read the last trained epoch, 3
        row = table.loc[(early, epochs)]
        assert row["trained_epochs"] == 3
        assert row["verdict"] == "overfit"  # +8% loss rise, but accuracy gap 0.25 > 0.15
        assert "accuracy gap 0.250" in row["reason"]
        assert row["validation_loss"] == pytest.approx(0.65)
    lenient = generalization_table(cells, metrics, VerdictSpec(accuracy_gap=0.3)).set_index(
        ["cell_id", "epochs"])
    assert lenient.loc[(early, 5), "verdict"] == "well fit"

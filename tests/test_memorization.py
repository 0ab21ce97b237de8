"""Membership inference and noisy-label memorization against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from overfit_lab.diagnostics.memorization import (
    membership_advantage,
    membership_advantage_in_sample,
    membership_advantage_interval,
    membership_advantage_yeom,
    membership_auc,
    membership_roc,
    noise_memorization_rate,
)


def test_perfect_separation():
    members, nonmembers = np.array([0.1, 0.2, 0.05]), np.array([1.0, 2.0])
    assert membership_advantage_in_sample(members, nonmembers) == 1.0
    assert membership_auc(members, nonmembers) == 1.0


def test_members_with_higher_loss_give_no_advantage_and_auc_zero():
    """The attack only flags low losses: advantage stays at its floor 0, AUC drops to 0."""
    members, nonmembers = np.array([1.0, 2.0]), np.array([0.1, 0.2])
    assert membership_advantage_in_sample(members, nonmembers) == 0.0
    assert membership_auc(members, nonmembers) == 0.0


def test_identical_losses_leak_nothing():
    losses = np.array([0.3, 0.1, 0.7, 0.7, 1.2])
    assert membership_advantage_in_sample(losses, losses.copy()) == 0.0
    assert membership_auc(losses, losses.copy()) == 0.5


def test_three_versus_three_by_hand():
    """Members 0.1, 0.3, 0.5; non-members 0.2, 0.6, 0.7; flag loss <= τ.

    τ = 0.1: TPR 1/3, FPR 0 -> 1/3;  τ = 0.2: 1/3 - 1/3 = 0;  τ = 0.3: 2/3 - 1/3 = 1/3;
    τ = 0.5: 1 - 1/3 = 2/3 (best);  τ = 0.6: 1 - 2/3 = 1/3;  τ = 0.7: 0.  Advantage 2/3.
    AUC: member losses below non-member losses in 3 + 2 + 2 = 7 of 9 pairs -> 7/9.
    """
    members, nonmembers = np.array([0.1, 0.3, 0.5]), np.array([0.2, 0.6, 0.7])
    assert membership_advantage_in_sample(members, nonmembers) == pytest.approx(2 / 3)
    assert membership_auc(members, nonmembers) == pytest.approx(7 / 9)


def test_ties_count_half_in_auc():
    """Members 0.2, 0.2; non-members 0.2, 0.5: 2 ties (½ each) + 2 wins of 4 pairs -> 0.75.

    τ = 0.2 flags both members and one non-member: advantage 1 - 1/2 = 0.5.
    """
    members, nonmembers = np.array([0.2, 0.2]), np.array([0.2, 0.5])
    assert membership_auc(members, nonmembers) == pytest.approx(0.75)
    assert membership_advantage_in_sample(members, nonmembers) == pytest.approx(0.5)


def test_roc_table_and_brute_force_advantage():
    rng = np.random.default_rng(0)
    members, nonmembers = rng.exponential(0.5, 40), rng.exponential(1.0, 60)
    roc = membership_roc(members, nonmembers)
    assert list(roc.columns) == ["fpr", "tpr", "threshold"]
    assert roc["threshold"].iloc[0] == -np.inf
    assert (roc[["fpr", "tpr"]].iloc[0] == 0).all() and (roc[["fpr", "tpr"]].iloc[-1] == 1).all()
    assert roc["threshold"].is_monotonic_increasing and roc["tpr"].is_monotonic_increasing
    for fpr, tpr, tau in roc.iloc[1:].itertuples(index=False, name=None):
        assert tpr == pytest.approx((members <= tau).mean())
        assert fpr == pytest.approx((nonmembers <= tau).mean())
    thresholds = np.concatenate([members, nonmembers])
    brute = max((members <= t).mean() - (nonmembers <= t).mean() for t in thresholds)
    assert membership_advantage_in_sample(members, nonmembers) == pytest.approx(max(brute, 0.0))


def test_noise_memorization_by_hand():
    """Flipped labels at rows 0 (1 vs clean 0), 2 (2 vs 0) and 4 (0 vs 1); only row 0 predicts it."""
    y_pred = np.array([1, 0, 0, 1, 1])
    noisy = np.array([1, 1, 2, 0, 0])
    clean = np.array([0, 1, 0, 0, 1])
    assert noise_memorization_rate(y_pred, noisy, clean) == pytest.approx(1 / 3)
    assert noise_memorization_rate(noisy, noisy, clean) == 1.0
    assert noise_memorization_rate(clean, noisy, clean) == 0.0
    assert math.isnan(noise_memorization_rate(y_pred, clean, clean))


@pytest.mark.parametrize(
    ("members", "nonmembers", "argument"),
    [
        (np.array([]), np.array([0.1]), "member_losses"),
        (np.array([0.1, np.nan]), np.array([0.1]), "member_losses"),
        (np.array([0.1]), np.array([[0.1, 0.2]]), "nonmember_losses"),
        (np.array([0.1]), np.array([np.inf]), "nonmember_losses"),
    ],
)
@pytest.mark.parametrize("metric", [membership_advantage_in_sample, membership_advantage_yeom, membership_auc,
                                    membership_roc])
def test_invalid_losses(metric, members, nonmembers, argument):
    with pytest.raises(ValueError, match=argument):
        metric(members, nonmembers)


def test_invalid_noise_inputs():
    with pytest.raises(ValueError, match="clean_labels"):
        noise_memorization_rate(np.array([0, 1]), np.array([0, 1]), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="y_pred"):
        noise_memorization_rate(np.array([[0, 1]]), np.array([0, 1]), np.array([0, 1]))


# ---------------------------------------------------------------- cross-fitted advantage (issue 11.2)
def _simulate(metric, n: int, repetitions: int, *, member_scale: float = 1.0, seed: int = 0) -> np.ndarray:
    """``metric`` on ``repetitions`` seeded draws of n exponential member and n non-member losses
    (non-member scale 1; members scaled by ``member_scale``, < 1 = a real leak)."""
    rng = np.random.default_rng(seed)
    members = rng.exponential(member_scale, (repetitions, n))
    nonmembers = rng.exponential(1.0, (repetitions, n))
    return np.array([metric(m, o, seed=i) for i, (m, o) in enumerate(zip(members, nonmembers, strict=True))])


def _population_advantage(member_scale: float) -> float:
    """max_t F_member(t) - F_nonmember(t) for exponential losses, on a fine grid (scipy)."""
    from scipy.stats import expon

    t = np.linspace(0.0, 20.0, 200_001)
    return float((expon.cdf(t, scale=member_scale) - expon.cdf(t)).max())


@pytest.mark.parametrize(("n", "repetitions"), [(100, 2000), (500, 400)])
def test_cross_fitted_advantage_is_zero_without_a_leak(n, repetitions):
    """Same-distribution losses, n members and n non-members: the mean cross-fitted advantage is
    within ±0.01 of 0 (its standard error here is about 0.0013). The old figure, the in-sample
    best threshold (``membership_advantage`` before issue 11), averaged about 0.085 at 100 and 0.04
    at 500: it fails this test, and is shown biased above 0.03 here."""
    advantage = _simulate(membership_advantage, n, repetitions)
    assert abs(advantage.mean()) < 0.01
    assert (advantage < 0).any()  # not clipped: a single run below 0 is noise
    in_sample = _simulate(lambda m, o, seed: membership_advantage_in_sample(m, o), n, 200)
    assert in_sample.mean() > 0.03


def test_in_sample_advantage_is_biased_at_100_members():
    """The optimism of fitting the threshold on the scored losses: about 0.085 at 100 vs 100."""
    in_sample = _simulate(lambda m, o, seed: membership_advantage_in_sample(m, o), 100, 300)
    assert 0.07 < in_sample.mean() < 0.10


@pytest.mark.parametrize(("n", "member_scale", "excluded"), [(100, 0.5, 0.85), (500, 0.7, 0.9)])
def test_cross_fitted_advantage_detects_a_loss_shift(n, member_scale, excluded):
    """Members' losses scaled down (0.5 or 0.7 of the non-members'): population advantage 0.25 or
    0.13. The mean estimate is clearly above 0, near (a little below) the population value, and
    the 95% interval excludes 0 in most runs."""
    truth = _population_advantage(member_scale)
    advantage = _simulate(membership_advantage, n, 200, member_scale=member_scale, seed=1)
    assert advantage.mean() > 0.08
    assert truth - 0.03 < advantage.mean() <= truth + 0.005
    low = _simulate(lambda m, o, seed: membership_advantage_interval(m, o, seed=seed)[0], n, 200,
                    member_scale=member_scale, seed=1)
    assert (low > 0).mean() >= excluded


@pytest.mark.parametrize(("n", "member_scale"), [(100, 1.0), (500, 1.0), (100, 0.5), (500, 0.5)])
def test_interval_coverage(n, member_scale):
    """95% intervals over 300 seeded runs cover the true advantage (0 without a leak, the population
    optimum with one) in 90-99.5% of runs: the binomial standard error of a coverage near 0.95 over
    300 runs is 0.013, and the interval is conservative without a leak (the split averaging is
    ignored) and a little low with one (the estimate sits below the optimum). The mean half-width
    matches 1.96 x the spread of the estimates over runs (within 20%), and stays below the
    binomial bound 1.96 sqrt(0.5 / n): ±0.14 at 100 members (±0.11 to ±0.13 in these runs), ±0.06
    at 500."""
    truth = 0.0 if member_scale == 1.0 else _population_advantage(member_scale)
    intervals = _simulate(lambda m, o, seed: np.array(membership_advantage_interval(m, o, seed=seed)), n, 300,
                          member_scale=member_scale, seed=2)
    covered = ((intervals[:, 0] <= truth) & (truth <= intervals[:, 1])).mean()
    assert 0.90 <= covered <= 0.995
    half_width = (intervals[:, 1] - intervals[:, 0]).mean() / 2
    spread = 1.96 * _simulate(membership_advantage, n, 300, member_scale=member_scale, seed=2).std()
    assert half_width == pytest.approx(spread, rel=0.2)
    assert half_width <= 1.96 * math.sqrt(0.5 / n)


def test_interval_contains_its_estimate_and_stays_in_range():
    members, nonmembers = np.linspace(0.0, 1.0, 20), np.linspace(2.0, 3.0, 20)
    assert membership_advantage(members, nonmembers) == 1.0
    assert membership_advantage_interval(members, nonmembers) == (1.0, 1.0)  # no binomial variance left
    rng = np.random.default_rng(3)
    members, nonmembers = rng.exponential(0.8, 60), rng.exponential(1.0, 60)
    low, high = membership_advantage_interval(members, nonmembers, seed=5)
    assert -1 <= low <= membership_advantage(members, nonmembers, seed=5) <= high <= 1
    narrow = membership_advantage_interval(members, nonmembers, seed=5, confidence=0.5)
    assert low < narrow[0] < narrow[1] < high


def test_fitted_threshold_is_the_in_sample_optimum():
    """The threshold each fold picks attains the in-sample maximum of TPR - FPR (sklearn's ROC),
    ties included, or flags nobody when no threshold beats 0."""
    from overfit_lab.diagnostics.memorization import _best_thresholds

    rng = np.random.default_rng(4)
    members = np.round(rng.exponential(0.8, (50, 15)), 1)  # rounded: many ties
    nonmembers = np.round(rng.exponential(1.0, (50, 12)), 1)
    tau = _best_thresholds(members, nonmembers)
    for m, o, t in zip(members, nonmembers, tau, strict=True):
        best = membership_advantage_in_sample(m, o)
        assert (m <= t).mean() - (o <= t).mean() == pytest.approx(best, abs=1e-12)
        if best == 0:
            assert t == -np.inf
        else:
            assert not np.isin(t, np.concatenate([m, o]))  # halfway between two losses


def test_yeom_threshold_against_sklearn_confusion_matrix():
    """TPR - FPR at τ = mean member loss, from sklearn's confusion matrix of "loss <= τ"."""
    from sklearn.metrics import confusion_matrix

    rng = np.random.default_rng(6)
    for member_scale in (0.5, 1.0, 2.0):
        members, nonmembers = rng.exponential(member_scale, 80), rng.exponential(1.0, 120)
        tau = members.mean()
        nonmembers[:3] = tau  # losses exactly at the threshold are flagged
        is_member = np.r_[np.ones(80, dtype=int), np.zeros(120, dtype=int)]
        flagged = (np.r_[members, nonmembers] <= tau).astype(int)
        tn, fp, fn, tp = confusion_matrix(is_member, flagged, labels=[0, 1]).ravel()
        expected = tp / (tp + fn) - fp / (fp + tn)
        assert membership_advantage_yeom(members, nonmembers) == pytest.approx(expected, abs=1e-12)
    assert membership_advantage_yeom(members, nonmembers, threshold=0.0) == 0.0  # flags nobody
    assert membership_advantage_yeom(members, nonmembers, threshold=1e9) == 0.0  # flags everybody
    # by hand: τ = 0.25 (exact in binary); flags members 0, 0.25 and non-member 0.25 -> 2/3 - 1/3
    by_hand = membership_advantage_yeom(np.array([0.0, 0.25, 0.5]), np.array([0.25, 0.75, 1.0]))
    assert by_hand == pytest.approx(1 / 3)


def test_yeom_is_zero_on_average_without_a_leak():
    """Only the mean is fitted, so the bias is O(1/m²): mean over 1000 runs of 100 vs 100 within ±0.01."""
    advantage = _simulate(lambda m, o, seed: membership_advantage_yeom(m, o), 100, 1000, seed=7)
    assert abs(advantage.mean()) < 0.01


@pytest.mark.parametrize(
    ("metric", "kwargs", "argument"),
    [
        (membership_advantage, {"member_losses": np.array([0.1])}, "member_losses"),
        (membership_advantage, {"nonmember_losses": np.array([0.1, np.nan])}, "nonmember_losses"),
        (membership_advantage, {"n_splits": 0}, "n_splits"),
        (membership_advantage, {"n_splits": 2.0}, "n_splits"),
        (membership_advantage_interval, {"confidence": 1.0}, "confidence"),
        (membership_advantage_interval, {"nonmember_losses": np.array([[0.1, 0.2]])}, "nonmember_losses"),
        (membership_advantage_yeom, {"threshold": np.nan}, "threshold"),
    ],
)
def test_invalid_cross_fitted_arguments(metric, kwargs, argument):
    arguments = {"member_losses": np.array([0.1, 0.2, 0.3]), "nonmember_losses": np.array([0.4, 0.5]),
                 **kwargs}
    with pytest.raises(ValueError, match=argument):
        metric(**arguments)


# ---------------------------------------------------------------- the checkpoint adapter
def _context(n_train: int, n_test: int, *, seed: int = 3):
    """A CheckpointContext without a model: two-class logits whose per-row loss is known."""
    from types import SimpleNamespace

    from overfit_lab.diagnostics.checkpoint import CheckpointContext
    from overfit_lab.predict import Encoded

    def split(losses: np.ndarray) -> tuple[Encoded, np.ndarray]:
        # label 0 with logits (0, log(exp(loss) - 1)): -log softmax[0] = loss exactly
        logits = np.c_[np.zeros(len(losses)), np.log(np.expm1(losses))]
        return Encoded(input_ids=[[1]] * len(losses), labels=np.zeros(len(losses), dtype=np.int64),
                       pad_token_id=0), logits

    rng = np.random.default_rng(0)
    losses = {"train": np.full(n_train, 0.2) if n_train > n_test else rng.uniform(0.05, 0.5, n_train),
              "validation": np.full(30, 5.0),  # would dominate every figure if it were used
              "test": rng.uniform(0.1, 2.0, n_test)}
    encoded, logits = {}, {}
    for name, values in losses.items():
        encoded[name], logits[name] = split(values)
    suite = SimpleNamespace(data=SimpleNamespace(seed=seed))
    data = SimpleNamespace(test=pd.DataFrame({"label": np.zeros(n_test, dtype=int)}))
    labels = np.zeros(n_train, dtype=int)
    train_rows = pd.DataFrame({"label": labels, "clean_label": labels})
    ctx = CheckpointContext(checkpoint="final", model=None, tokenizer=None, suite=suite, data=data,
                            train_rows=train_rows, encoded=encoded, logits=logits, model_path="")
    return ctx, losses


@pytest.mark.parametrize(("n_train", "n_test"), [(12, 30), (30, 12), (20, 20)])
def test_adapter_compares_equal_numbers_of_members_and_test_rows(n_train, n_test):
    """m = min(members, test rows); the non-members are m test rows (ctx.test_subsample(m), the same
    rows for every cell), never validation rows; AUC checked with sklearn on those rows."""
    from sklearn.metrics import roc_auc_score

    from overfit_lab.diagnostics.checkpoint import _memorization

    ctx, losses = _context(n_train, n_test)
    rows = {r["metric"]: r["value"] for r in _memorization(ctx) if r["metric"] != "membership_roc_tpr"}
    m = min(n_train, n_test)
    assert rows["membership_n"] == m
    # with more members than test rows every member loss is 0.2, so any m of them are the same
    members = losses["train"] if n_train <= n_test else np.full(m, 0.2)
    others = losses["test"][ctx.test_subsample(m)]
    assert len(others) == m
    expected_auc = roc_auc_score(np.r_[np.ones(m), np.zeros(m)], -np.r_[members, others])
    assert rows["membership_auc"] == pytest.approx(expected_auc, abs=1e-9)
    seed = ctx.suite.data.seed
    assert rows["membership_advantage"] == pytest.approx(membership_advantage(members, others, seed=seed))
    assert (rows["membership_advantage_low"], rows["membership_advantage_high"]) == pytest.approx(
        membership_advantage_interval(members, others, seed=seed))
    assert rows["membership_advantage_yeom"] == pytest.approx(membership_advantage_yeom(members, others))
    assert rows["membership_advantage_low"] <= rows["membership_advantage"]
    assert rows["membership_advantage"] <= rows["membership_advantage_high"]

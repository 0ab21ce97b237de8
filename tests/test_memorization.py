"""Membership inference and noisy-label memorization against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from overfit_lab.diagnostics.memorization import (
    membership_advantage,
    membership_auc,
    membership_roc,
    noise_memorization_rate,
)


def test_perfect_separation():
    members, nonmembers = np.array([0.1, 0.2, 0.05]), np.array([1.0, 2.0])
    assert membership_advantage(members, nonmembers) == 1.0
    assert membership_auc(members, nonmembers) == 1.0


def test_members_with_higher_loss_give_no_advantage_and_auc_zero():
    """The attack only flags low losses: advantage stays at its floor 0, AUC drops to 0."""
    members, nonmembers = np.array([1.0, 2.0]), np.array([0.1, 0.2])
    assert membership_advantage(members, nonmembers) == 0.0
    assert membership_auc(members, nonmembers) == 0.0


def test_identical_losses_leak_nothing():
    losses = np.array([0.3, 0.1, 0.7, 0.7, 1.2])
    assert membership_advantage(losses, losses.copy()) == 0.0
    assert membership_auc(losses, losses.copy()) == 0.5


def test_three_versus_three_by_hand():
    """Members 0.1, 0.3, 0.5; non-members 0.2, 0.6, 0.7; flag loss <= τ.

    τ = 0.1: TPR 1/3, FPR 0 -> 1/3;  τ = 0.2: 1/3 - 1/3 = 0;  τ = 0.3: 2/3 - 1/3 = 1/3;
    τ = 0.5: 1 - 1/3 = 2/3 (best);  τ = 0.6: 1 - 2/3 = 1/3;  τ = 0.7: 0.  Advantage 2/3.
    AUC: member losses below non-member losses in 3 + 2 + 2 = 7 of 9 pairs -> 7/9.
    """
    members, nonmembers = np.array([0.1, 0.3, 0.5]), np.array([0.2, 0.6, 0.7])
    assert membership_advantage(members, nonmembers) == pytest.approx(2 / 3)
    assert membership_auc(members, nonmembers) == pytest.approx(7 / 9)


def test_ties_count_half_in_auc():
    """Members 0.2, 0.2; non-members 0.2, 0.5: 2 ties (½ each) + 2 wins of 4 pairs -> 0.75.

    τ = 0.2 flags both members and one non-member: advantage 1 - 1/2 = 0.5.
    """
    members, nonmembers = np.array([0.2, 0.2]), np.array([0.2, 0.5])
    assert membership_auc(members, nonmembers) == pytest.approx(0.75)
    assert membership_advantage(members, nonmembers) == pytest.approx(0.5)


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
    assert membership_advantage(members, nonmembers) == pytest.approx(max(brute, 0.0))


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
@pytest.mark.parametrize("metric", [membership_advantage, membership_auc, membership_roc])
def test_invalid_losses(metric, members, nonmembers, argument):
    with pytest.raises(ValueError, match=argument):
        metric(members, nonmembers)


def test_invalid_noise_inputs():
    with pytest.raises(ValueError, match="clean_labels"):
        noise_memorization_rate(np.array([0, 1]), np.array([0, 1]), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="y_pred"):
        noise_memorization_rate(np.array([[0, 1]]), np.array([0, 1]), np.array([0, 1]))

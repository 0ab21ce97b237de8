"""Memorization: can an attacker tell training examples from unseen ones, and are noisy labels learnt?

Loss-threshold membership inference (Yeom et al. 2018) guesses "member" for an example whose
loss is at most a threshold ``τ``. With ``TPR(τ) = P(loss <= τ | member)`` and
``FPR(τ) = P(loss <= τ | non-member)``, the attack's advantage is ``TPR(τ) - FPR(τ)``:

* ``membership_advantage``: the advantage of a threshold chosen on one half of the examples and
  scored on the other half (cross-fitted), in ``[-1, 1]``; 0 = no leak, and its expectation is
  exactly 0 when members and non-members have the same loss distribution;
* ``membership_advantage_interval``: a normal-approximation interval for it;
* ``membership_advantage_yeom``: Yeom et al.'s threshold adversary, ``τ`` = the mean member loss;
* ``membership_advantage_in_sample``: ``max_τ TPR(τ) - FPR(τ)`` on the very losses it scores.
  Optimistic: with finite samples it is positive even without any leak (about 0.085 at 100
  members and 100 non-members, 0.04 at 500 and 500), so it is not a headline figure;
* ``membership_auc``: ROC AUC of the score ``-loss``, ``P(loss_m < loss_n) + ½ P(loss_m = loss_n)``
  for a random member ``m`` and non-member ``n`` (0.5 = no leak; nothing is fitted, so it is
  unbiased at 0.5);
* ``membership_roc``: the ROC curve behind them;
* ``noise_memorization_rate``: among training examples whose label was flipped, the share whose
  prediction is the flipped label (Zhang et al. 2017; Arpit et al. 2017).

Compare members with as many non-members that selected nothing (no early stopping, no best
checkpoint): the adapter in :mod:`overfit_lab.diagnostics.checkpoint` draws equal numbers of
training-subset and test rows.

References
----------
Yeom, Giacomelli, Fredrikson & Jha, "Privacy Risk in Machine Learning: Analyzing the Connection
to Overfitting", IEEE CSF 2018. Jayaraman, Wang, Knipmeyer, Gu & Evans, "Revisiting Membership
Inference Under Realistic Assumptions", PETS 2021. Zhang, Bengio, Hardt, Recht & Vinyals,
"Understanding Deep Learning Requires Rethinking Generalization", ICLR 2017. Arpit et al.,
"A Closer Look at Memorization in Deep Networks", ICML 2017.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.metrics import roc_auc_score, roc_curve

from ._validation import check_open_unit_interval, check_positive_int

__all__ = [
    "membership_advantage",
    "membership_advantage_in_sample",
    "membership_advantage_interval",
    "membership_advantage_yeom",
    "membership_auc",
    "membership_roc",
    "noise_memorization_rate",
]


def _check_losses(losses: np.ndarray, name: str, *, min_size: int = 1) -> np.ndarray:
    losses = np.asarray(losses, dtype=np.float64)
    if losses.ndim != 1 or losses.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array; got shape {losses.shape}")
    if losses.size < min_size:
        raise ValueError(f"{name} needs at least {min_size} losses; got {losses.size}")
    if not np.all(np.isfinite(losses)):
        raise ValueError(f"{name} must be finite")
    return losses


def _membership_scores(member_losses: np.ndarray, nonmember_losses: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(is_member, score = -loss)`` over members then non-members."""
    member = _check_losses(member_losses, "member_losses")
    nonmember = _check_losses(nonmember_losses, "nonmember_losses")
    is_member = np.concatenate([np.ones(member.size, dtype=int), np.zeros(nonmember.size, dtype=int)])
    return is_member, -np.concatenate([member, nonmember])


def membership_roc(member_losses: np.ndarray, nonmember_losses: np.ndarray) -> pd.DataFrame:
    """ROC curve of the loss-threshold membership attack.

    Parameters
    ----------
    member_losses : ndarray of shape (m,)
        Per-example losses on training (member) examples.
    nonmember_losses : ndarray of shape (n,)
        Per-example losses on held-out (non-member) examples.

    Returns
    -------
    pandas.DataFrame
        Columns ``fpr``, ``tpr`` and ``threshold``, one row per distinct loss plus a first row
        ``threshold = -inf`` (nobody flagged). Row ``j`` flags as member every example with
        ``loss <= threshold_j``; thresholds increase, so ``fpr`` and ``tpr`` do too.

    Examples
    --------
    >>> membership_roc(np.array([0.1]), np.array([0.5]))["tpr"].tolist()
    [0.0, 1.0, 1.0]
    """
    is_member, score = _membership_scores(member_losses, nonmember_losses)
    fpr, tpr, thresholds = roc_curve(is_member, score, drop_intermediate=False)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": -thresholds})


def membership_advantage_in_sample(member_losses: np.ndarray, nonmember_losses: np.ndarray) -> float:
    """In-sample advantage of the best loss threshold, ``max_τ TPR(τ) - FPR(τ)`` (optimistic).

    The maximum is over every threshold, including "flag nobody" (advantage 0), so the result
    is in ``[0, 1]``; it is Youden's J of the membership ROC. The threshold is chosen on the
    losses it scores, so the figure is biased upward: with members and non-members from the
    same distribution its mean is about 0.085 at 100 of each and 0.04 at 500 of each. Use
    :func:`membership_advantage` for a figure whose chance level is 0.

    Parameters
    ----------
    member_losses : ndarray of shape (m,)
        Per-example losses on training (member) examples.
    nonmember_losses : ndarray of shape (n,)
        Per-example losses on held-out (non-member) examples.

    References
    ----------
    Yeom et al., "Privacy Risk in Machine Learning: Analyzing the Connection to Overfitting",
    IEEE CSF 2018 (Definition 4: membership advantage).

    Examples
    --------
    >>> round(membership_advantage_in_sample(np.array([0.1, 0.3, 0.5]), np.array([0.2, 0.6, 0.7])), 6)
    0.666667
    """
    roc = membership_roc(member_losses, nonmember_losses)
    return float(max((roc["tpr"] - roc["fpr"]).max(), 0.0))


def _best_thresholds(member: np.ndarray, nonmember: np.ndarray) -> np.ndarray:
    """Row by row of ``member`` (k, p) and ``nonmember`` (k, q): the threshold with the largest
    TPR - FPR on these losses, halfway between the last loss it flags and the next one;
    ``-inf`` (flag nobody) where no threshold beats 0."""
    k, p = member.shape
    q = nonmember.shape[1]
    values = np.concatenate([member, nonmember], axis=1)
    is_member = np.concatenate([np.ones((k, p), dtype=np.int64), np.zeros((k, q), dtype=np.int64)], axis=1)
    order = np.argsort(values, axis=1, kind="stable")
    values = np.take_along_axis(values, order, axis=1)
    is_member = np.take_along_axis(is_member, order, axis=1)
    # (TPR - FPR) * p * q in integers, so that "beats 0" is exact
    gain = np.cumsum(is_member, axis=1) * q - np.cumsum(1 - is_member, axis=1) * p
    # a threshold flags every tied loss at once: only the last of a run of ties is a candidate
    gain[:, :-1][values[:, 1:] == values[:, :-1]] = np.iinfo(np.int64).min
    best = gain.argmax(axis=1)
    rows = np.arange(k)
    above = values[rows, np.minimum(best + 1, p + q - 1)]  # exists where the gain is positive
    return np.where(gain[rows, best] > 0, (values[rows, best] + above) / 2, -np.inf)


def _cross_fitted(member_losses: np.ndarray, nonmember_losses: np.ndarray, n_splits: int,
                  seed: int) -> tuple[float, float]:
    """The cross-fitted advantage and its normal-approximation standard error."""
    member = _check_losses(member_losses, "member_losses", min_size=2)
    nonmember = _check_losses(nonmember_losses, "nonmember_losses", min_size=2)
    n_splits = check_positive_int(n_splits, "n_splits")
    rng = np.random.default_rng(seed)
    p, q = member.size, nonmember.size
    members = member[rng.permuted(np.tile(np.arange(p), (n_splits, 1)), axis=1)]
    nonmembers = nonmember[rng.permuted(np.tile(np.arange(q), (n_splits, 1)), axis=1)]
    a_m, b_m, a_n, b_n = slice(None, p // 2), slice(p // 2, None), slice(None, q // 2), slice(q // 2, None)
    advantage, variance = [], []
    for fit_m, fit_n, score_m, score_n in ((a_m, a_n, b_m, b_n), (b_m, b_n, a_m, a_n)):
        tau = _best_thresholds(members[:, fit_m], nonmembers[:, fit_n])[:, None]
        scored_m, scored_n = members[:, score_m], nonmembers[:, score_n]
        tpr, fpr = (scored_m <= tau).mean(axis=1), (scored_n <= tau).mean(axis=1)
        advantage.append(tpr - fpr)
        variance.append(tpr * (1 - tpr) / scored_m.shape[1] + fpr * (1 - fpr) / scored_n.shape[1])
    # the two folds score disjoint halves: the variance of their mean is about a quarter of the
    # sum of theirs; averaging over splits is ignored (it can only shrink the variance)
    return float(np.mean(advantage)), float(np.sqrt(np.mean(variance) / 2))


def membership_advantage(member_losses: np.ndarray, nonmember_losses: np.ndarray, *, n_splits: int = 10,
                         seed: int = 0) -> float:
    """Cross-fitted membership advantage of the loss-threshold attack, in ``[-1, 1]``.

    Members and non-members are each split at random into halves ``A`` and ``B``. The threshold
    with the largest ``TPR - FPR`` on ``A`` (Youden's J; "flag nobody" when none beats 0) is
    scored on ``B``, and the other way round:

    ``adv_s = ½ [J_B(τ_A) + J_A(τ_B)]``, ``J_H(τ) = TPR_H(τ) - FPR_H(τ)``,
    ``τ_H = argmax_τ J_H(τ)``, and the result is ``mean_s adv_s`` over ``n_splits`` random splits.

    A threshold never scores the losses it was chosen on, so when members and non-members have
    the same loss distribution the expectation is exactly 0 (chance level), whatever the sample
    sizes; it is not clipped at 0, so single runs below 0 are noise. With a real leak it is
    slightly below the population ``max_τ TPR(τ) - FPR(τ)`` (a threshold fitted on half the
    data is not quite the best one).

    Parameters
    ----------
    member_losses : ndarray of shape (m,)
        Per-example losses on training (member) examples, at least 2.
    nonmember_losses : ndarray of shape (n,)
        Per-example losses on held-out (non-member) examples, at least 2. Use as many as
        members, and rows that did not choose the model (no early stopping on them).
    n_splits : int, default 10
        Random half splits to average over.
    seed : int, default 0
        Seed of the splits.

    Returns
    -------
    float
        Advantage in ``[-1, 1]``; 0 = members indistinguishable by loss.

    References
    ----------
    Yeom et al., "Privacy Risk in Machine Learning: Analyzing the Connection to Overfitting",
    IEEE CSF 2018 (Definition 4; Experiment 1 with a threshold adversary).

    Examples
    --------
    >>> membership_advantage(np.linspace(0.0, 1.0, 20), np.linspace(2.0, 3.0, 20))  # separated
    1.0
    >>> members, nonmembers = np.arange(10) / 10, 0.85 + np.arange(10) / 10
    >>> round(membership_advantage(members, nonmembers), 6)  # in sample: 0.9
    0.72
    """
    return _cross_fitted(member_losses, nonmember_losses, n_splits, seed)[0]


def membership_advantage_interval(member_losses: np.ndarray, nonmember_losses: np.ndarray, *,
                                  confidence: float = 0.95, n_splits: int = 10,
                                  seed: int = 0) -> tuple[float, float]:
    """Normal-approximation interval for :func:`membership_advantage`, clipped to ``[-1, 1]``.

    ``adv ± z · se`` with ``z`` the ``(1 + confidence) / 2`` normal quantile and
    ``se² = ½ · mean_{s, fold} [TPR(1 - TPR) / m_B + FPR(1 - FPR) / n_B]``, the binomial
    variances at each fold's chosen threshold on the half it scores (``m_B`` members and ``n_B``
    non-members), halved because each split averages two folds on disjoint halves. With ``m``
    members and ``m`` non-members it is at most ``±1.96 · sqrt(0.5 / m)``: ±0.14 at 100, ±0.06
    at 500 (±0.11 to ±0.13 at 100 in simulations, narrower without a leak, where folds often
    flag nobody or nearly everybody). In seeded simulations (2000 repetitions of exponential losses, 100 and
    500 of each) it covered the true value 0 in 97% of runs without a leak (conservative: the
    averaging over splits is ignored) and the population optimum in 92-93% of runs with a leak
    (the estimate is a little below that optimum). A fold that flags nobody adds no variance.

    Parameters
    ----------
    member_losses : ndarray of shape (m,)
        Per-example losses on training (member) examples, at least 2.
    nonmember_losses : ndarray of shape (n,)
        Per-example losses on held-out (non-member) examples, at least 2.
    confidence : float, default 0.95
        Nominal coverage, in ``(0, 1)``.
    n_splits : int, default 10
        Random half splits, as in :func:`membership_advantage`.
    seed : int, default 0
        Seed of the splits (the same seed gives the interval around the same estimate).

    Returns
    -------
    tuple of float
        ``(low, high)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> low, high = membership_advantage_interval(rng.exponential(1.0, 500), rng.exponential(1.0, 500))
    >>> bool(low < 0 < high)
    True
    """
    confidence = check_open_unit_interval(confidence, "confidence")
    estimate, se = _cross_fitted(member_losses, nonmember_losses, n_splits, seed)
    half = float(norm.ppf((1 + confidence) / 2)) * se
    return max(estimate - half, -1.0), min(estimate + half, 1.0)


def membership_advantage_yeom(member_losses: np.ndarray, nonmember_losses: np.ndarray, *,
                              threshold: float | None = None) -> float:
    """Advantage of Yeom et al.'s threshold adversary: flag ``loss <= τ``, ``τ`` = mean member loss.

    ``TPR(τ) - FPR(τ)`` with ``τ = mean(member_losses)`` (the average training loss, which the
    adversary is assumed to know) unless ``threshold`` is given. Only one number is fitted, so
    without a leak the mean is 0 up to ``O(1/m²)``; it is in ``[-1, 1]``, usually below
    :func:`membership_advantage` (the mean loss is rarely the best threshold).

    Parameters
    ----------
    member_losses : ndarray of shape (m,)
        Per-example losses on training (member) examples.
    nonmember_losses : ndarray of shape (n,)
        Per-example losses on held-out (non-member) examples.
    threshold : float, optional
        The threshold ``τ`` (default: the mean of ``member_losses``).

    References
    ----------
    Yeom et al., "Privacy Risk in Machine Learning: Analyzing the Connection to Overfitting",
    IEEE CSF 2018 (the threshold adversary of the experiments). Jayaraman et al., "Revisiting
    Membership Inference Under Realistic Assumptions", PETS 2021 (Section 3: Yeom's attack
    flags a record whose loss is below the expected training loss).

    Examples
    --------
    >>> round(membership_advantage_yeom(np.array([0.1, 0.3, 0.5]), np.array([0.2, 0.6, 0.7])), 6)
    0.333333
    """
    member = _check_losses(member_losses, "member_losses")
    nonmember = _check_losses(nonmember_losses, "nonmember_losses")
    tau = float(member.mean()) if threshold is None else float(threshold)
    if not np.isfinite(tau):
        raise ValueError(f"threshold must be finite; got {threshold}")
    return float((member <= tau).mean() - (nonmember <= tau).mean())


def membership_auc(member_losses: np.ndarray, nonmember_losses: np.ndarray) -> float:
    """ROC AUC of the loss-threshold membership attack (score ``-loss``).

    0.5 means members and non-members are indistinguishable by loss, 1 that every member has a
    lower loss than every non-member; below 0.5, members have *higher* losses.

    Parameters
    ----------
    member_losses : ndarray of shape (m,)
        Per-example losses on training (member) examples.
    nonmember_losses : ndarray of shape (n,)
        Per-example losses on held-out (non-member) examples.

    Examples
    --------
    >>> round(membership_auc(np.array([0.1, 0.3, 0.5]), np.array([0.2, 0.6, 0.7])), 6)
    0.777778
    """
    is_member, score = _membership_scores(member_losses, nonmember_losses)
    return float(roc_auc_score(is_member, score))


def noise_memorization_rate(y_pred: np.ndarray, noisy_labels: np.ndarray, clean_labels: np.ndarray) -> float:
    """Share of flipped training labels that the model reproduces.

    ``Σ_i 1[ŷ_i = ỹ_i, ỹ_i ≠ y_i] / Σ_i 1[ỹ_i ≠ y_i]`` with ``ỹ`` the (noisy) training labels
    and ``y`` the clean ones. 1 means every corrupted label was memorized; lower is better.
    NaN when no label was flipped.

    Parameters
    ----------
    y_pred : ndarray of shape (n,)
        Predicted labels on the training examples.
    noisy_labels : ndarray of shape (n,)
        Labels the model was trained on.
    clean_labels : ndarray of shape (n,)
        Labels before the noise was injected.

    Examples
    --------
    >>> noise_memorization_rate(np.array([1, 0, 1]), np.array([1, 1, 1]), np.array([0, 0, 1]))
    0.5
    """
    y_pred, noisy, clean = (np.asarray(a) for a in (y_pred, noisy_labels, clean_labels))
    if y_pred.ndim != 1:
        raise ValueError(f"y_pred must be 1-D; got shape {y_pred.shape}")
    for name, labels in (("noisy_labels", noisy), ("clean_labels", clean)):
        if labels.shape != y_pred.shape:
            raise ValueError(f"{name} must have the shape of y_pred {y_pred.shape}; got {labels.shape}")
    flipped = noisy != clean
    return float((y_pred[flipped] == noisy[flipped]).mean()) if flipped.any() else float("nan")

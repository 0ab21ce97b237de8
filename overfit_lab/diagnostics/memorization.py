"""Memorization: can an attacker tell training examples from unseen ones, and are noisy labels learnt?

Loss-threshold membership inference (Yeom et al. 2018) guesses "member" for an example whose
loss is at most a threshold ``τ``. With ``TPR(τ) = P(loss <= τ | member)`` and
``FPR(τ) = P(loss <= τ | non-member)``:

* ``membership_advantage``: ``max_τ TPR(τ) - FPR(τ)``, in ``[0, 1]`` (0 = no leak);
* ``membership_auc``: ROC AUC of the score ``-loss``, ``P(loss_m < loss_n) + ½ P(loss_m = loss_n)``
  for a random member ``m`` and non-member ``n`` (0.5 = no leak);
* ``membership_roc``: the ROC curve behind both;
* ``noise_memorization_rate``: among training examples whose label was flipped, the share whose
  prediction is the flipped label (Zhang et al. 2017; Arpit et al. 2017).

The advantage picks the best threshold on the very losses it scores, so it is optimistic: with
finite samples it is positive even when members and non-members have the same distribution.

References
----------
Yeom, Giacomelli, Fredrikson & Jha, "Privacy Risk in Machine Learning: Analyzing the Connection
to Overfitting", IEEE CSF 2018. Zhang, Bengio, Hardt, Recht & Vinyals, "Understanding Deep
Learning Requires Rethinking Generalization", ICLR 2017. Arpit et al., "A Closer Look at
Memorization in Deep Networks", ICML 2017.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve


def _check_losses(losses: np.ndarray, name: str) -> np.ndarray:
    losses = np.asarray(losses, dtype=np.float64)
    if losses.ndim != 1 or losses.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array; got shape {losses.shape}")
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


def membership_advantage(member_losses: np.ndarray, nonmember_losses: np.ndarray) -> float:
    """Membership advantage of the best loss threshold, ``max_τ TPR(τ) - FPR(τ)``.

    The maximum is over every threshold, including "flag nobody" (advantage 0), so the result
    is in ``[0, 1]``; higher means more leakage (it is Youden's J of the membership ROC).

    Parameters
    ----------
    member_losses : ndarray of shape (m,)
        Per-example losses on training (member) examples.
    nonmember_losses : ndarray of shape (n,)
        Per-example losses on held-out (non-member) examples.

    References
    ----------
    Yeom et al., "Privacy Risk in Machine Learning: Analyzing the Connection to Overfitting",
    IEEE CSF 2018 (Definition 4, Experiment 1 with a threshold adversary).

    Examples
    --------
    >>> round(membership_advantage(np.array([0.1, 0.3, 0.5]), np.array([0.2, 0.6, 0.7])), 6)
    0.666667
    """
    roc = membership_roc(member_losses, nonmember_losses)
    return float(max((roc["tpr"] - roc["fpr"]).max(), 0.0))


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

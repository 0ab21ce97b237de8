"""Per-split classification metrics of one evaluation pass.

* ``loss``: mean cross-entropy of the true labels, ``-(1/n) Σ_i log softmax(z_i)[y_i]``, from
  the logits without label smoothing (so it is comparable across strategies);
* ``accuracy``: ``(1/n) Σ_i 1[argmax z_i = y_i]`` (scikit-learn ``accuracy_score``);
* ``macro_f1``: unweighted mean of per-class F1 (scikit-learn ``f1_score(average="macro")``).
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax
from sklearn.metrics import accuracy_score, f1_score

__all__ = ["classification_metrics", "cross_entropy_loss"]


def cross_entropy_loss(labels: np.ndarray, logits: np.ndarray) -> float:
    """Mean cross-entropy of ``labels`` under ``softmax(logits)`` (natural log)."""
    labels = np.asarray(labels)
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or len(labels) != len(logits):
        raise ValueError(f"logits must be (n, classes) with n = len(labels); got {logits.shape}")
    return float(-log_softmax(logits, axis=1)[np.arange(len(labels)), labels].mean())


def classification_metrics(labels: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    """``loss``, ``accuracy`` and ``macro_f1`` of one split."""
    preds = np.asarray(logits).argmax(axis=1)
    classes = np.arange(np.asarray(logits).shape[1])
    return {
        "loss": cross_entropy_loss(labels, logits),
        "accuracy": float(accuracy_score(labels, preds)),
        "macro_f1": float(f1_score(labels, preds, labels=classes, average="macro", zero_division=0)),
    }

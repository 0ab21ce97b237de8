"""Per-split metrics of a causal language model, from per-sequence next-token statistics.

A causal LM assigns each token ``x_t`` of a sequence a probability ``p(x_t | x_<t)``. Over a
split of sequences ``s`` with ``N_s`` predicted tokens each (every token but the first), and
``NLL_s = Σ_t -log p(x_t | x_<t)`` (natural log):

* ``loss``: the mean negative log-likelihood per token, ``L = Σ_s NLL_s / Σ_s N_s`` (a
  micro-average: every token weighs the same, so a long document counts for its tokens);
* ``perplexity``: ``exp(L)``, the effective number of equally likely next tokens;
* ``accuracy``: the share of predicted tokens that are the model's top-1 prediction
  (next-token accuracy).

The statistics come from :func:`overfit_lab.predict.predict_token_statistics`, one row
``(NLL_s, N_s, correct_s)`` per sequence. The per-sequence loss ``NLL_s / N_s`` is what the
membership attack on a language model thresholds (Carlini et al. 2021, section 5.1).

References
----------
Jurafsky & Martin, *Speech and Language Processing* (3rd ed. draft), chapter 3 (perplexity).
Carlini et al., "Extracting Training Data from Large Language Models", USENIX Security 2021.
"""

from __future__ import annotations

import numpy as np

__all__ = ["language_model_metrics", "perplexity", "sequence_losses", "token_accuracy", "token_loss"]


def _check_statistics(statistics: np.ndarray) -> np.ndarray:
    statistics = np.asarray(statistics, dtype=np.float64)
    if statistics.ndim != 2 or statistics.shape[1] != 3:
        raise ValueError("statistics must have shape (n, 3): NLL sum, tokens, correct; "
                         f"got {statistics.shape}")
    if not np.isfinite(statistics[:, 1:]).all() or (statistics[:, 1:] < 0).any():
        raise ValueError("statistics: token and correct counts must be finite and non-negative")
    if (statistics[:, 2] > statistics[:, 1]).any():
        raise ValueError("statistics: a sequence has more correct predictions than predicted tokens")
    return statistics


def token_loss(statistics: np.ndarray) -> float:
    """Mean negative log-likelihood per predicted token, ``Σ_s NLL_s / Σ_s N_s``.

    Parameters
    ----------
    statistics : array of shape (n, 3)
        Per sequence: summed token NLL, predicted tokens, correct top-1 predictions.

    Returns
    -------
    float
        NaN when no token was predicted.

    Examples
    --------
    >>> token_loss([[6.0, 3, 1], [2.0, 1, 1]])  # (6 + 2) / (3 + 1)
    2.0
    """
    statistics = _check_statistics(statistics)
    tokens = statistics[:, 1].sum()
    return float(statistics[:, 0].sum() / tokens) if tokens > 0 else float("nan")


def perplexity(statistics: np.ndarray) -> float:
    """``exp`` of :func:`token_loss`: the perplexity of the sequences as one text.

    Examples
    --------
    >>> round(perplexity([[6.0, 3, 1], [2.0, 1, 1]]), 4)  # exp(2)
    7.3891
    """
    return float(np.exp(token_loss(statistics)))


def token_accuracy(statistics: np.ndarray) -> float:
    """Share of predicted tokens that are the model's top-1 prediction, ``Σ_s correct_s / Σ_s N_s``.

    Examples
    --------
    >>> token_accuracy([[6.0, 3, 1], [2.0, 1, 1]])
    0.5
    """
    statistics = _check_statistics(statistics)
    tokens = statistics[:, 1].sum()
    return float(statistics[:, 2].sum() / tokens) if tokens > 0 else float("nan")


def sequence_losses(statistics: np.ndarray) -> np.ndarray:
    """Per sequence, the mean NLL of its predicted tokens, ``NLL_s / N_s`` (NaN with none).

    Examples
    --------
    >>> sequence_losses([[6.0, 3, 1], [0.0, 0, 0]]).tolist()
    [2.0, nan]
    """
    statistics = _check_statistics(statistics)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(statistics[:, 1] > 0, statistics[:, 0] / statistics[:, 1], np.nan)


def language_model_metrics(labels: np.ndarray, statistics: np.ndarray) -> dict[str, float]:
    """``loss``, ``perplexity`` and ``accuracy`` (next-token) of one split; ``labels`` is unused
    (a language model's targets are its own tokens) and kept for the task interface."""
    return {"loss": token_loss(statistics), "perplexity": perplexity(statistics),
            "accuracy": token_accuracy(statistics)}

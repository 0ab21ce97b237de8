"""Temperature scaling: one scalar that undoes a classifier's over- (or under-) confidence.

``logits`` holds the ``(n, K)`` pre-softmax outputs ``z_i`` and ``labels`` the integer classes
``0..K-1``. Temperature scaling (Guo et al. 2017) replaces ``softmax(z_i)`` by ``softmax(z_i / T)``
with one ``T > 0`` fitted on held-out data by minimising the negative log-likelihood:

``T* = argmin_T -(1/n) Σ_i log softmax(z_i / T)_{y_i}``.

``T > 1`` softens overconfident probabilities, ``T < 1`` sharpens underconfident ones. Dividing
every logit by the same positive number keeps their order, so predictions (argmax) and accuracy
do not change. Fit ``T`` on a validation split, never on the training data (where an overfit
model is confidently right) nor on the test data you then score.

* ``fit_temperature``: ``T*`` on held-out logits;
* ``temperature_scale``: ``z / T``, to pass through a softmax and on to
  :mod:`overfit_lab.diagnostics.calibration`.

References
----------
Guo, Pleiss, Sun & Weinberger, "On Calibration of Modern Neural Networks", ICML 2017
(Section 4.2, temperature scaling).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from ._validation import check_class_labels

__all__ = ["LOG_TEMPERATURE_BOUNDS", "fit_temperature", "temperature_scale"]

LOG_TEMPERATURE_BOUNDS = (-4.0, 4.0)
"""Search interval of ``log T`` in :func:`fit_temperature`: ``T`` in ``[e^-4, e^4] ≈ [0.018, 54.6]``."""

_LOG_T_TOLERANCE = 1e-8
"""Absolute tolerance on ``log T`` of the bounded search (a relative ``1e-8`` on ``T``)."""


def _check_logits(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[0] == 0 or logits.shape[1] < 2:
        raise ValueError(f"logits must be a non-empty (n, classes >= 2) array; got shape {logits.shape}")
    if not np.all(np.isfinite(logits)):
        raise ValueError("logits must be finite")
    return logits


def _nll(labels: np.ndarray, logits: np.ndarray, temperature: float) -> float:
    """``-(1/n) Σ_i log softmax(z_i / T)_{y_i}``, in float64."""
    log_p = log_softmax(logits / temperature, axis=1)
    return float(-log_p[np.arange(len(labels)), labels].mean())


def fit_temperature(labels: np.ndarray, logits: np.ndarray) -> float:
    """Temperature ``T > 0`` minimising the NLL of ``softmax(logits / T)`` on held-out data.

    ``T* = argmin_T -(1/n) Σ_i log softmax(z_i / T)_{y_i}``, searched over ``u = log T`` in
    :data:`LOG_TEMPERATURE_BOUNDS` ``= [-4, 4]`` with ``scipy.optimize.minimize_scalar``
    (bounded Brent, tolerance ``1e-8`` on ``log T``), in float64. The NLL is convex in ``1/T``
    (a log-sum-exp of linear functions minus a linear one), so it has a single minimum in
    ``log T`` and the bounded search finds it. When the minimum lies outside the interval the
    search ends at the nearest bound: ``e^4`` when the logits carry no information about the
    labels (the NLL keeps decreasing as ``T → ∞``); when every example is classified correctly
    the NLL keeps decreasing as ``T → 0``, and a small ``T`` is returned (``e^-4``, or larger
    where the NLL already rounds to 0 in float64, flat to the search).

    Parameters
    ----------
    labels : ndarray of shape (n,)
        Integer labels in ``0..K-1`` of held-out examples.
    logits : ndarray of shape (n, K)
        Finite pre-softmax outputs for them, ``K >= 2``.

    Returns
    -------
    float
        The fitted temperature ``T`` in ``[e^-4, e^4]``; ``> 1`` means the model was
        overconfident.

    References
    ----------
    Guo, Pleiss, Sun & Weinberger, "On Calibration of Modern Neural Networks", ICML 2017
    (Section 4.2).

    Examples
    --------
    Every example has confidence ``σ(2/T)`` and 3 of 4 are right, so the NLL is minimal where
    ``σ(2/T) = 3/4``, at ``T = 2 / ln 3 = 1.8204784...``:

    >>> logits = np.array([[2.0, 0.0], [2.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    >>> labels = np.array([0, 0, 1, 1])
    >>> T = fit_temperature(labels, logits)
    >>> round(T, 6)
    1.820478
    >>> temperature_scale(logits, T).argmax(axis=1).tolist()  # predictions unchanged
    [0, 0, 0, 1]
    """
    logits = _check_logits(logits)
    labels = check_class_labels(labels, n=len(logits), n_classes=logits.shape[1], name="labels",
                                rows_of="logits")
    result = minimize_scalar(lambda u: _nll(labels, logits, float(np.exp(u))), bounds=LOG_TEMPERATURE_BOUNDS,
                             method="bounded", options={"xatol": _LOG_T_TOLERANCE})
    return float(np.exp(result.x))


def temperature_scale(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Temperature-scaled logits ``z / T``; apply a softmax to get calibrated probabilities.

    Parameters
    ----------
    logits : ndarray of shape (n, K)
        Finite pre-softmax outputs, ``K >= 2``.
    temperature : float
        ``T > 0``, e.g. from :func:`fit_temperature`.

    Returns
    -------
    ndarray of shape (n, K)
        ``logits / temperature`` in float64; each row keeps its order, hence its argmax.

    References
    ----------
    Guo, Pleiss, Sun & Weinberger, "On Calibration of Modern Neural Networks", ICML 2017.

    Examples
    --------
    >>> from scipy.special import softmax
    >>> softmax(temperature_scale(np.array([[4.0, 0.0]]), 2.0), axis=1).round(4).tolist()
    [[0.8808, 0.1192]]
    """
    logits = _check_logits(logits)
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise ValueError(f"temperature must be a positive number; got {temperature!r}") from None
    if not (np.isfinite(t) and t > 0):
        raise ValueError(f"temperature must be finite and > 0; got {temperature}")
    return logits / t

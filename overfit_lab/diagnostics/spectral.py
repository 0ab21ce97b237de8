"""Data-free weight spectra: power-law exponents of each layer's eigenvalue spectrum.

Heavy-Tailed Self-Regularization (HT-SR) theory reads the training quality of a layer off the
empirical spectral density (ESD) of its weight matrix, without any data:

* ESD: for a weight matrix ``W`` of shape (N, M) with ``N >= M`` (transposed otherwise), the
  eigenvalues of the correlation matrix ``X = W^T W / N``, i.e. ``lambda_i = s_i^2 / N`` for the
  singular values ``s_i`` of ``W`` (``M`` eigenvalues);
* power-law tail: ``p(lambda) ~ lambda^(-alpha)`` for ``lambda >= xmin``, fitted by the continuous
  maximum-likelihood estimator ``alpha = 1 + n / sum_{lambda_i >= xmin} ln(lambda_i / xmin)`` with
  ``xmin`` chosen to minimise the Kolmogorov-Smirnov distance ``D = max |S(x) - P(x)|`` between the
  empirical CDF ``S`` of the tail and the fitted CDF ``P(x) = 1 - (x / xmin)^(1 - alpha)``
  (Clauset, Shalizi & Newman 2009);
* reading: ``2 <= alpha <= 6`` is the range of well-trained layers; ``alpha < 2`` (very heavy
  tail) signals an over-trained / over-fitted layer, ``alpha > 6`` an under-trained, close to
  random one (the warnings WeightWatcher prints).

Agreement with WeightWatcher 0.7.7 (``weightwatcher.WeightWatcher().analyze()`` defaults, its own
``pl_package="ww"`` fitter), read from its source:

* WeightWatcher 0.7.7 computes ``evals = s^2`` *without* the ``1/N`` of the papers (its
  ``normalize`` option was removed in 0.6.5). ``alpha``, ``D`` and the tail size do not depend on
  that scale (``ln(lambda_i / xmin)`` is scale free), but its reported ``xmin`` and
  ``lambda_max`` are ``N`` times ours;
* it drops eigenvalues ``s^2 <= 1e-5`` before fitting (``EVALS_THRESH``); :func:`weight_alphas`
  drops ``lambda <= 1e-5 / N``, the same ones;
* candidate ``xmin``: every remaining eigenvalue except the largest (tail size >= 2), the first
  minimum of ``D`` wins; its empirical CDF at the sorted tail values is ``0, 1/n, ..., (n-1)/n``
  (the value just below each step, as the ``powerlaw`` package does), reproduced here;
* it analyses dense layers with ``min(N, M) >= 8`` (``min_evals``), ``min(N, M) <= 15000`` and
  ``max(N, M) <= 50000``, plus ``nn.Embedding`` tables; :func:`weight_alphas` has the same lower
  bound, no upper bound, and embeddings only on request;
* difference: with fewer than 20 eigenvalues to fit, WeightWatcher 0.7.7 switches to a
  bias-corrected estimator ``1 + (n - 1) / sum ln(lambda_i / xmin)`` with a tail-size bonus in the
  ``xmin`` objective; this module keeps the plain estimator, so alphas of matrices with
  ``8 <= min(N, M) < 20`` can differ (transformer layers have hundreds of eigenvalues);
* the ``powerlaw`` package 2.0 (WeightWatcher's older ``pl_package="powerlaw"``) only accepts
  candidate ``xmin`` whose ``alpha`` lies in its default range (0, 3), so its alphas stay below 3
  and differ from these wherever the least-``D`` fit has ``alpha >= 3``.

References
----------
Martin & Mahoney, "Implicit Self-Regularization in Deep Neural Networks: Evidence from Random
Matrix Theory and Implications for Learning", JMLR 22(165), 2021.
Martin, Peng & Mahoney, "Predicting trends in the quality of state-of-the-art neural networks
without access to training or testing data", Nature Communications 12, 4122 (2021).
Clauset, Shalizi & Newman, "Power-law distributions in empirical data", SIAM Review 51(4), 2009.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

__all__ = [
    "FLAG_HEAVY",
    "FLAG_LIGHT",
    "WW_EVALS_THRESHOLD",
    "WW_MIN_EVALS",
    "esd",
    "powerlaw_alpha",
    "weight_alphas",
]

#: WeightWatcher's floor on the unnormalised eigenvalues ``s^2`` (``EVALS_THRESH``).
WW_EVALS_THRESHOLD = 1e-5
#: WeightWatcher's default ``min_evals``: smallest ``min(N, M)`` it analyses.
WW_MIN_EVALS = 8
FLAG_HEAVY = "alpha<2: over-trained/heavy-tailed"
FLAG_LIGHT = "alpha>6: under-trained"


def esd(weight: torch.Tensor | np.ndarray) -> np.ndarray:
    """Eigenvalues of the correlation matrix ``X = W^T W / N`` of a weight matrix.

    Parameters
    ----------
    weight : torch.Tensor or array_like, shape (N, M) or (M, N)
        A 2-D weight matrix; it is transposed if needed so that ``N >= M``.

    Returns
    -------
    np.ndarray
        The ``M`` eigenvalues ``lambda_i = s_i^2 / N`` in ascending order (float64), from the
        singular values ``s_i`` of ``W`` (``torch.linalg.svdvals`` in float64, on the weight's
        device), which avoids forming ``W^T W`` and squaring its condition number.
        WeightWatcher 0.7.7 reports ``s_i^2`` (no ``1/N``); see the module notes.
    """
    w = weight.detach() if isinstance(weight, torch.Tensor) else torch.as_tensor(np.asarray(weight))
    if w.ndim != 2:
        raise ValueError(f"weight must be a 2-D matrix; got shape {tuple(w.shape)}")
    if min(w.shape) == 0:
        raise ValueError(f"weight must not be empty; got shape {tuple(w.shape)}")
    w = w.to(torch.float64)
    if not bool(torch.isfinite(w).all()):
        raise ValueError("weight must be finite")
    n = max(w.shape)
    s = torch.linalg.svdvals(w).cpu().numpy()
    return np.sort(s * s / n)


def powerlaw_alpha(eigenvalues: np.ndarray, *, xmin: float | None = None, min_tail: int = 2,
                   threshold: float = 0.0) -> dict[str, float | int]:
    """Fit a power law ``p(lambda) ~ lambda^(-alpha)`` to the tail of a spectrum.

    For a lower cutoff ``xmin`` with tail ``{lambda_i >= xmin}`` of size ``n``, the continuous
    maximum-likelihood exponent (Clauset et al. 2009, eq. 3.1) is

    ``alpha = 1 + n / sum_i ln(lambda_i / xmin)``,

    with standard error ``sigma = (alpha - 1) / sqrt(n)``, and the fit's Kolmogorov-Smirnov
    distance is ``D = max_k |S_k - P(x_k)|`` over the sorted tail ``x_0 <= ... <= x_{n-1}``, with
    ``P(x) = 1 - (x / xmin)^(1 - alpha)`` and empirical CDF ``S_k = k / n`` (the WeightWatcher /
    ``powerlaw`` convention). Without ``xmin``, every value whose tail holds at least ``min_tail``
    values is tried and the first one with the least ``D`` is kept (Clauset et al. 2009, sec. 3.3).

    Parameters
    ----------
    eigenvalues : array_like, 1-D
        The spectrum (e.g. from :func:`esd`); values ``<= threshold`` are dropped first
        (non-positive values have no logarithm).
    xmin : float, optional
        A known cutoff: fit only the tail ``lambda >= xmin`` (no search).
    min_tail : int
        Smallest tail size a searched ``xmin`` may leave; 2 (every value but the largest is a
        candidate) is WeightWatcher's choice.
    threshold : float
        Floor below which values are ignored (WeightWatcher: ``1e-5`` on ``s^2``).

    Returns
    -------
    dict
        ``alpha``, ``xmin``, ``ks_distance``, ``n_tail`` and ``sigma``.
    """
    values = np.asarray(eigenvalues, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"eigenvalues must be 1-D; got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("eigenvalues must be finite")
    if min_tail < 2:
        raise ValueError(f"min_tail must be >= 2; got {min_tail}")
    if not np.isfinite(threshold) or threshold < 0:
        raise ValueError(f"threshold must be a finite number >= 0; got {threshold}")
    data = np.sort(values[values > threshold])
    if xmin is not None:
        if not (np.isfinite(xmin) and xmin > threshold):
            raise ValueError(f"xmin must be finite and > threshold ({threshold}); got {xmin}")
        tail = data[data >= xmin]
        if tail.size == 0 or not np.any(tail > xmin):
            raise ValueError(f"xmin={xmin} leaves no tail above it to fit")
        alpha = 1.0 + tail.size / float(np.sum(np.log(tail / xmin)))
        return _result(alpha, float(xmin), _ks_distance(tail, float(xmin), alpha), tail.size)
    if data.size < min_tail:
        raise ValueError(f"eigenvalues hold {data.size} values above threshold={threshold}; "
                         f"need at least min_tail={min_tail}")
    logs = np.log(data)
    tail_log_sums = np.cumsum(logs[::-1])[::-1]  # sum_{j >= i} ln x_j
    best = (np.inf, np.nan, np.nan, 0)
    for i in range(data.size - min_tail + 1):
        n = data.size - i
        log_ratio_sum = tail_log_sums[i] - n * logs[i]
        if log_ratio_sum <= 0:  # a tail of equal values: no exponent
            continue
        alpha = 1.0 + n / log_ratio_sum
        d = _ks_distance(data[i:], data[i], alpha)
        if d < best[0]:
            best = (d, alpha, data[i], n)
    d, alpha, cut, n = best
    if not np.isfinite(d):
        raise ValueError("eigenvalues: every candidate tail is constant; no power law can be fitted")
    return _result(alpha, float(cut), d, n)


def _conv1d() -> tuple[type[nn.Module], ...]:
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # transformers absent: plain PyTorch models only
        return ()
    return (Conv1D,)


def weight_alphas(model: nn.Module, *, min_size: int = WW_MIN_EVALS,
                  include_embeddings: bool = False) -> pd.DataFrame:
    """Power-law exponent of the ESD of every ``nn.Linear`` weight matrix of a model (and every
    transformers ``Conv1D``, GPT-2's linear layer with the weight stored transposed, which has the
    same singular values).

    Parameters
    ----------
    model : nn.Module
        Any PyTorch model; every ``nn.Linear`` (and with ``include_embeddings`` every
        ``nn.Embedding``) weight is analysed, the task head included.
    min_size : int
        Skip matrices whose smaller side (the number of eigenvalues) is below this;
        WeightWatcher's default ``min_evals`` is 8.
    include_embeddings : bool
        Also analyse embedding tables, as WeightWatcher does.

    Returns
    -------
    pandas.DataFrame
        One row per matrix in module order: ``name`` (parameter name), ``shape``, ``alpha``,
        ``xmin`` (on the ``s^2 / N`` scale), ``ks_distance``, ``n_tail`` and ``flag``
        (``"alpha<2: over-trained/heavy-tailed"``, ``"alpha>6: under-trained"`` or ``""``).
        ``alpha`` is NaN (and ``flag`` empty) where no fit is possible (e.g. a zero matrix).
        Eigenvalues ``<= 1e-5 / N`` are ignored, as WeightWatcher ignores ``s^2 <= 1e-5``.
    """
    if min_size < 2:
        raise ValueError(f"min_size must be >= 2; got {min_size}")
    embeddings = (nn.Embedding,) if include_embeddings else ()
    kinds: tuple[type[nn.Module], ...] = (nn.Linear, *_conv1d(), *embeddings)
    rows = []
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if not isinstance(module, kinds) or weight is None or weight.ndim != 2:
            continue
        if min(weight.shape) < min_size:
            continue
        lambdas = esd(weight)
        try:
            fit = powerlaw_alpha(lambdas, threshold=WW_EVALS_THRESHOLD / max(weight.shape))
        except ValueError:
            fit = {"alpha": np.nan, "xmin": np.nan, "ks_distance": np.nan, "n_tail": 0}
        alpha = fit["alpha"]
        flag = FLAG_HEAVY if alpha < 2 else FLAG_LIGHT if alpha > 6 else ""
        rows.append({"name": f"{name}.weight" if name else "weight", "shape": tuple(weight.shape),
                     "alpha": alpha, "xmin": fit["xmin"], "ks_distance": fit["ks_distance"],
                     "n_tail": fit["n_tail"], "flag": flag})
    return pd.DataFrame(rows, columns=["name", "shape", "alpha", "xmin", "ks_distance", "n_tail", "flag"])


def _ks_distance(tail: np.ndarray, xmin: float, alpha: float) -> float:
    """``max_k |k / n - P(x_k)|`` over the sorted tail, ``P(x) = 1 - (x / xmin)^(1 - alpha)``."""
    n = tail.size
    fitted = 1.0 - (tail / xmin) ** (1.0 - alpha)
    return float(np.max(np.abs(fitted - np.arange(n) / n)))


def _result(alpha: float, xmin: float, ks_distance: float, n_tail: int) -> dict[str, float | int]:
    return {"alpha": float(alpha), "xmin": xmin, "ks_distance": float(ks_distance), "n_tail": int(n_tail),
            "sigma": float((alpha - 1.0) / np.sqrt(n_tail))}

"""Forgetting and drift of a fine-tuned encoder from its pretrained starting point.

Two views, both per layer, both free of labels:

* representation drift, ``layer_cka``: linear Centered Kernel Alignment between the pretrained
  and the fine-tuned model's mean-pooled hidden states on a fixed probe set of texts. With the
  linear kernels ``K = X X^T``, ``L = Y Y^T`` of column-centred ``X`` (n x p) and ``Y`` (n x q),

  ``CKA(X, Y) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))``.

  The default is the debiased CKA (Nguyen, Raghu & Kornblith 2021), with the unbiased estimator
  ``HSIC_1`` of Song et al. (2012); the biased plug-in ``HSIC(K, L) = tr(K H L H) / (n - 1)^2``,
  ``H = I - 1 1^T / n``, which gives ``||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)`` (Kornblith et
  al. 2019, equation 5), stays available with ``debiased=False``. The biased value is far above
  0 for unrelated representations when the probe set is not much larger than the width (about
  0.75 for independent isotropic Gaussians at n = 128 texts, 384 dimensions); the debiased one is
  near 0 there (within about 0.03), but it is not bounded to [0, 1] and can fall slightly below 0.
  Both are 1 for identical representations and invariant to orthogonal transforms and isotropic
  scaling of either side (not to arbitrary invertible linear maps). Values well below 1 in the
  top layers with high values at the bottom are the usual signature of fine-tuning; low values
  at the bottom mean the general-purpose features were overwritten (forgetting).
  References: Kornblith, Norouzi, Lee & Hinton, "Similarity of Neural Network Representations
  Revisited", ICML 2019; Song, Smola, Gretton, Bedo & Borgwardt, "Feature Selection via
  Dependence Maximization", JMLR 2012; Nguyen, Raghu & Kornblith, "Do Wide and Deep Networks
  Learn the Same Things?", ICLR 2021.

* weight drift, ``weight_distance``: per module, the relative L2 distance of the concatenated
  parameters, ``||theta_ft - theta_pre||_2 / ||theta_pre||_2``, for the embeddings and each
  encoder layer (the task head has no pretrained counterpart and is skipped). Frozen modules
  have distance exactly 0. Reference: Li, Grandvalet & Davoine, "Explicit Inductive Bias for
  Transfer Learning with Convolutional Networks" (L2-SP), ICML 2018, which penalises the same
  distance.

Layer numbering: ``layer_cka`` row ``k`` is hidden state ``k`` of a transformers encoder
(``k = 0``: embeddings output; ``k >= 1``: output of encoder layer ``k - 1``), so the modules
that produce it are ``weight_distance`` rows ``0 .. k``. When all of those have distance exactly 0
(frozen), state ``k`` is unchanged and its CKA is 1 by construction, whatever training did
(``frozen_states``): a mean CKA over every layer rewards freezing, so the headline ``mean_cka``
averages only the states that training could change.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..models import base_model, embeddings_module, encoder_layers
from ._validation import check_texts

__all__ = ["frozen_states", "hidden_states", "layer_cka", "linear_cka", "weight_distance"]


def linear_cka(x: np.ndarray, y: np.ndarray, *, debiased: bool = True) -> float:
    """Linear CKA between two representations of the same ``n`` examples.

    With column-centred ``X`` (n x p), ``Y`` (n x q), Gram matrices ``K = X X^T``, ``L = Y Y^T``
    and ``CKA = S(K, L) / sqrt(S(K, K) S(L, L))``, the similarity ``S`` is

    * ``debiased=True`` (default): ``n (n - 3)`` times the unbiased HSIC estimator ``HSIC_1`` of
      Song et al. (2012), in its feature-space form (Kornblith's reference code),

      ``S(K, L) = ||Y^T X||_F^2 - n / (n - 2) * r_x . r_y + (1^T r_x)(1^T r_y) / ((n - 1)(n - 2))``,

      with ``r_x = diag(K)`` (squared row norms of the centred ``X``); equivalently, with ``K~``
      and ``L~`` the Gram matrices with their diagonal set to 0,
      ``HSIC_1 = [tr(K~ L~) + 1^T K~ 1 1^T L~ 1 / ((n - 1)(n - 2)) - 2 / (n - 2) 1^T K~ L~ 1] / (n (n - 3))``;
    * ``debiased=False``: the biased (plug-in) ``S(K, L) = tr(K H L H) = ||Y^T X||_F^2``,
      ``H = I - 1 1^T / n`` (Kornblith et al. 2019, equation 5).

    The biased value is far from 0 for unrelated representations when ``n`` is not much larger
    than the feature count: for independent isotropic Gaussian ``X`` and ``Y`` with ``n = 128``,
    ``p = q = 384`` it is about 0.75, while the debiased value is within about 0.02 of 0.

    Parameters
    ----------
    x, y : array_like, shapes (n, p) and (n, q)
        Rows are examples (in the same order in both), columns are features.
    debiased : bool, default True
        Use the unbiased HSIC estimator (needs ``n >= 4``); False gives the biased estimator
        (``n >= 2``), kept for comparison with earlier results.

    Returns
    -------
    float
        The CKA, computed in float64 (through the n x n Gram matrices when ``n`` is smaller than a
        feature count, which gives the same value). The biased value lies in [0, 1]. The debiased
        one estimates the population CKA with less bias but is not bounded: it can fall slightly
        below 0 (unrelated representations) or, rarely, above 1, since its similarity ``S`` is not
        an inner product. Both are 1 for identical representations and invariant to orthogonal
        transforms and isotropic scaling of either side. NaN when either side is constant over
        the examples or its debiased self-similarity ``S(K, K)`` is not positive.

    References
    ----------
    Kornblith, Norouzi, Lee & Hinton, "Similarity of Neural Network Representations Revisited",
    ICML 2019. Song, Smola, Gretton, Bedo & Borgwardt, "Feature Selection via Dependence
    Maximization", JMLR 13, 2012 (unbiased HSIC, ``HSIC_1``). Nguyen, Raghu & Kornblith, "Do Wide
    and Deep Networks Learn the Same Things?", ICLR 2021 (debiased CKA).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.standard_normal((128, 384)), rng.standard_normal((128, 384))
    >>> round(linear_cka(x, y, debiased=False), 2), abs(linear_cka(x, y)) < 0.05
    (0.74, True)
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"x must be a 2-D (examples, features) array; got shape {x.shape}")
    if y.ndim != 2:
        raise ValueError(f"y must be a 2-D (examples, features) array; got shape {y.shape}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same number of rows (examples); got {x.shape[0]} and "
                         f"{y.shape[0]}")
    minimum = 4 if debiased else 2
    if x.shape[0] < minimum:
        raise ValueError(f"x and y need at least {minimum} examples"
                         f"{' for the debiased estimator' if debiased else ''}; got {x.shape[0]}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite")
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    n, p, q = x.shape[0], x.shape[1], y.shape[1]
    if n < max(p, q):
        k, l_ = x @ x.T, y @ y.T
        cross, self_x, self_y = float(np.sum(k * l_)), float(np.sum(k * k)), float(np.sum(l_ * l_))
    else:
        cross = float(np.linalg.norm(y.T @ x) ** 2)
        self_x, self_y = float(np.linalg.norm(x.T @ x) ** 2), float(np.linalg.norm(y.T @ y) ** 2)
    if debiased:
        rows_x, rows_y = np.einsum("ij,ij->i", x, x), np.einsum("ij,ij->i", y, y)

        def unbiased(dot: float, r_a: np.ndarray, r_b: np.ndarray) -> float:
            return dot - n / (n - 2) * float(r_a @ r_b) + float(r_a.sum() * r_b.sum()) / ((n - 1) * (n - 2))

        cross = unbiased(cross, rows_x, rows_y)
        self_x, self_y = unbiased(self_x, rows_x, rows_x), unbiased(self_y, rows_y, rows_y)
    if not (self_x > 0 and self_y > 0):
        return float("nan")
    return float(cross / (np.sqrt(self_x) * np.sqrt(self_y)))


def hidden_states(model: nn.Module, tokenizer, texts: Sequence[str], *, max_length: int = 64,
                  batch_size: int = 64) -> list[np.ndarray]:
    """Mean-pooled hidden states of every layer of a transformers encoder.

    Runs the base model (``overfit_lab.models.base_model``, so the task head of an
    ``AutoModelForSequenceClassification`` is skipped) with ``output_hidden_states=True`` in eval
    mode under ``torch.inference_mode`` (the model's train/eval mode is restored afterwards), in
    batches of texts sorted by token length.

    Parameters
    ----------
    model : nn.Module
        A transformers encoder (``AutoModel``) or a model with a task head around one.
    tokenizer
        Its tokenizer; texts are truncated to ``max_length`` tokens.
    texts : sequence of str
        The probe set; the output keeps its order.
    max_length, batch_size : int
        Truncation length and texts per forward pass.

    Returns
    -------
    list of np.ndarray
        One float64 array of shape (len(texts), hidden) per hidden state: index 0 is the
        embeddings output, index ``k`` the output of encoder layer ``k - 1``. Each row is
        ``sum_t m_t h_t / sum_t m_t`` over token positions ``t`` with attention mask ``m``
        (special tokens included).
    """
    texts = check_texts(texts, allow_empty=False)
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1; got {max_length}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    encoder = base_model(model)
    accepted = set(inspect.signature(encoder.forward).parameters)
    device = next(encoder.parameters()).device
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
    order = np.argsort(lengths, kind="stable")
    pooled: list[list[np.ndarray]] = []
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = [texts[i] for i in order[start:start + batch_size]]
                enc = tokenizer(batch, truncation=True, max_length=max_length, padding=True,
                                return_tensors="pt")
                inputs = {k: v.to(device) for k, v in enc.items() if k in accepted}
                out = encoder(**inputs, output_hidden_states=True, return_dict=True)
                mask = enc["attention_mask"].to(device).unsqueeze(-1).to(torch.float64)
                states = [((h.to(torch.float64) * mask).sum(1) / mask.sum(1)).cpu().numpy()
                          for h in out.hidden_states]
                if pooled and len(states) != len(pooled):
                    raise RuntimeError("the encoder returned a varying number of hidden states")
                if not pooled:
                    pooled = [[] for _ in states]
                for layer, state in zip(pooled, states, strict=True):
                    layer.append(state)
    finally:
        encoder.train(was_training)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return [np.concatenate(chunks)[inverse] for chunks in pooled]


def layer_cka(pretrained: nn.Module | None, finetuned: nn.Module, tokenizer, texts: Sequence[str], *,
              max_length: int = 64, batch_size: int = 64,
              pretrained_states: list[np.ndarray] | None = None, debiased: bool = True) -> pd.DataFrame:
    """Per-layer linear CKA between the pretrained and the fine-tuned encoder on a probe set.

    Parameters
    ----------
    pretrained, finetuned : nn.Module
        The model before and after fine-tuning (either may carry a task head; only the base
        encoder runs). They must have the same number of layers and share ``tokenizer``.
    tokenizer
        The tokenizer of both models.
    texts : sequence of str
        A fixed probe set (at least 4 texts for the debiased estimator, 2 for the biased one; a
        hundred or more give values within a few hundredths of 0 for unrelated representations).
    max_length, batch_size : int
        As in :func:`hidden_states`.
    pretrained_states : list of arrays, optional
        ``hidden_states(pretrained, tokenizer, texts)`` computed earlier: the pretrained side is
        the same for every cell of a grid, so callers compute it once.
    debiased : bool, default True
        As in :func:`linear_cka`: the debiased CKA, or the biased one with False.

    Returns
    -------
    pandas.DataFrame
        Columns ``layer`` (0 = embeddings output, ``k`` = output of encoder layer ``k - 1``) and
        ``cka`` = ``linear_cka(H_pre[k], H_ft[k], debiased=debiased)`` on mean-pooled states.
    """
    texts = check_texts(texts, allow_empty=False)
    minimum = 4 if debiased else 2
    if len(texts) < minimum:
        raise ValueError(f"texts must hold at least {minimum} texts for "
                         f"{'debiased ' if debiased else ''}CKA; got {len(texts)}")
    before = pretrained_states if pretrained_states is not None else hidden_states(
        pretrained, tokenizer, texts, max_length=max_length, batch_size=batch_size)
    after = hidden_states(finetuned, tokenizer, texts, max_length=max_length, batch_size=batch_size)
    if len(before) != len(after):
        raise ValueError(f"pretrained and finetuned differ in depth: {len(before) - 1} and "
                         f"{len(after) - 1} layers")
    return pd.DataFrame({"layer": np.arange(len(before)),
                         "cka": [linear_cka(x, y, debiased=debiased)
                                 for x, y in zip(before, after, strict=True)]})


def weight_distance(pretrained: nn.Module, finetuned: nn.Module) -> pd.DataFrame:
    """Relative L2 distance of each module's parameters from their pretrained values.

    For the embeddings module and each encoder layer ``m`` (found with
    ``overfit_lab.models.embeddings_module`` / ``encoder_layers`` on ``pretrained``),

    ``d_m = ||theta_m^ft - theta_m^pre||_2 / ||theta_m^pre||_2``,

    where ``theta_m`` concatenates all parameters of ``m`` (weights, biases, LayerNorm), matched
    by their names inside the base model, computed in float64. Parameters outside those modules
    (pooler, task head) are not reported.

    Parameters
    ----------
    pretrained, finetuned : nn.Module
        Models of the same architecture; either may carry a task head.

    Returns
    -------
    pandas.DataFrame
        Columns ``layer`` (module name inside the base model, e.g. ``"embeddings"``,
        ``"encoder.layer.0"``; row ``k`` produces ``layer_cka`` hidden state ``k``) and
        ``relative_distance`` (NaN where the pretrained parameters are all zero).
    """
    pre_base, ft_base = base_model(pretrained), base_model(finetuned)
    names = {id(module): name for name, module in pre_base.named_modules()}
    modules = [embeddings_module(pretrained), *encoder_layers(pretrained)]
    ft_params = dict(ft_base.named_parameters())
    rows = []
    for module in modules:
        prefix = names.get(id(module))
        if prefix is None:
            raise ValueError("pretrained: cannot locate its embeddings/encoder layers in the base model")
        diff_sq = base_sq = 0.0
        for local, param in module.named_parameters():
            full = f"{prefix}.{local}" if prefix else local
            other = ft_params.get(full)
            if other is None:
                raise ValueError(f"finetuned has no parameter '{full}' of the pretrained base model")
            if other.shape != param.shape:
                raise ValueError(f"finetuned parameter '{full}' has shape {tuple(other.shape)}, "
                                 f"pretrained {tuple(param.shape)}")
            with torch.no_grad():
                ref = param.detach().to("cpu", torch.float64)
                diff_sq += float(((other.detach().to("cpu", torch.float64) - ref) ** 2).sum())
                base_sq += float((ref ** 2).sum())
        rows.append({"layer": prefix,
                     "relative_distance": float(np.sqrt(diff_sq / base_sq)) if base_sq > 0 else float("nan")})
    return pd.DataFrame(rows, columns=["layer", "relative_distance"])


def frozen_states(relative_distance: Sequence[float]) -> np.ndarray:
    """Which hidden states a fine-tuning run could not change, from the weight distances.

    Hidden state ``k`` is produced by modules ``0 .. k`` (embeddings, then encoder layers), so it
    is frozen when every one of them has relative distance exactly 0:
    ``frozen_k = all(d_m == 0 for m <= k)``. Frozen-ness is read from the weights, not from
    ``requires_grad``, so it holds for any pair of checkpoints. A NaN distance (all-zero
    pretrained parameters) counts as possibly moved.

    Parameters
    ----------
    relative_distance : sequence of float
        ``weight_distance(...)["relative_distance"]`` in module order.

    Returns
    -------
    np.ndarray of bool
        ``frozen[k]`` for hidden state ``k`` (same length as ``relative_distance``).

    Examples
    --------
    >>> frozen_states([0.0, 0.0, 0.02, 0.0]).tolist()
    [True, True, False, False]
    """
    distance = np.asarray(relative_distance, dtype=np.float64)
    if distance.ndim != 1:
        raise ValueError(f"relative_distance must be 1-D; got shape {distance.shape}")
    return np.logical_and.accumulate(distance == 0) if len(distance) else np.zeros(0, dtype=bool)

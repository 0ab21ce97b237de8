"""Bias amplification: does the model exaggerate label/group correlations of its training data?

* ``bias_amplification_zhao`` (Zhao et al. 2017) and ``directional_bias_amplification``
  (Wang & Russakovsky 2021): positive is amplification, 0 none, negative a reduction;
* ``directional_bias_amplification_multilabel``: BiasAmp→ on binary attributes that may hold
  together (a multi-valued group column), the paper's general setting.

Public through :mod:`overfit_lab.diagnostics.bias`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ._validation import check_same_length


def _cooccurrence(
    labels: np.ndarray, groups: np.ndarray, outputs: np.ndarray, group_values: np.ndarray
) -> np.ndarray:
    """``c[o, g]``: number of examples with label ``outputs[o]`` and group ``group_values[g]``."""
    o_index = {v: i for i, v in enumerate(outputs.tolist())}
    g_index = {v: i for i, v in enumerate(group_values.tolist())}
    counts = np.zeros((len(outputs), len(group_values)), dtype=np.int64)
    for label, group in zip(labels.tolist(), groups.tolist(), strict=True):
        if label in o_index:
            counts[o_index[label], g_index[group]] += 1
    return counts


def _check_eval_groups(train_groups: np.ndarray, eval_groups: np.ndarray) -> np.ndarray:
    """Sorted training groups; every evaluation group must be one of them."""
    group_values = np.unique(train_groups)
    unknown = np.setdiff1d(np.unique(eval_groups), group_values)
    if unknown.size:
        raise ValueError(f"eval_groups holds groups absent from train_groups: {unknown.tolist()}")
    return group_values


def bias_amplification_zhao(
    train_labels: np.ndarray, train_groups: np.ndarray, eval_pred: np.ndarray, eval_groups: np.ndarray
) -> float:
    """Bias amplification of Zhao et al. (2017).

    With ``c(o, g)`` the number of examples with output ``o`` and group ``g``, the bias is
    ``b(o, g) = c(o, g) / Σ_g' c(o, g')``: ``b*`` from the training labels, ``b̃`` from the
    predictions on the evaluation split. Then

    ``BiasAmp = (1/|O|) Σ_o Σ_g 1[b*(o, g) > 1/|G|] (b̃(o, g) - b*(o, g))``,

    the mean over outputs of how much the predictions push each output further towards the
    group it was already skewed to in training. ``O`` is the set of training labels and ``G``
    the set of training groups. An output never predicted on the evaluation split has no
    ``b̃`` and is left out (of the sum and of ``|O|``); NaN when no output is left.

    Label noise inflates it. Flipping binary training labels at rate ``ρ`` (each label to the
    other class with probability ``ρ``) attenuates the training association towards
    ``1/|G|``: with two groups of equal size and balanced labels, in expectation
    ``b*_noisy - 1/2 = (1 - 2ρ)(b*_clean - 1/2)`` (approximately otherwise). A model that
    learns the clean association (``b̃ = b*_clean``) then scores ``BiasAmp = 2ρ (b*_clean -
    1/2)``, amplification that is only the noise's attenuation (0.12 at ``ρ = 0.2`` and
    ``b*_clean = 0.8``; a test simulates it). Pass the clean training labels where they are
    known: the cell's diagnostics do when its training labels carry injected noise.

    Parameters
    ----------
    train_labels, train_groups : ndarray of shape (n_train,)
        Training labels (clean ones where label noise was injected) and their groups.
    eval_pred, eval_groups : ndarray of shape (n_eval,)
        Predicted labels on the evaluation split and their groups (all seen in training).

    References
    ----------
    Zhao, Wang, Yatskar, Ordonez & Chang, "Men Also Like Shopping: Reducing Gender Bias
    Amplification using Corpus-level Constraints", EMNLP 2017.

    Examples
    --------
    >>> train_y, train_g = np.array([1, 1, 1, 1, 0, 0]), np.array(["f", "f", "f", "m", "m", "m"])
    >>> bias_amplification_zhao(train_y, train_g, np.array([1, 1, 0]), np.array(["f", "f", "m"]))
    0.125
    """
    train_labels, train_groups = check_same_length(train_labels=train_labels, train_groups=train_groups)
    eval_pred, eval_groups = check_same_length(eval_pred=eval_pred, eval_groups=eval_groups)
    outputs = np.unique(train_labels)
    group_values = _check_eval_groups(train_groups, eval_groups)
    train_counts = _cooccurrence(train_labels, train_groups, outputs, group_values)
    eval_counts = _cooccurrence(eval_pred, eval_groups, outputs, group_values)
    predicted = eval_counts.sum(axis=1) > 0
    if not predicted.any():
        return float("nan")
    b_star = train_counts[predicted] / train_counts[predicted].sum(axis=1, keepdims=True)
    b_tilde = eval_counts[predicted] / eval_counts[predicted].sum(axis=1, keepdims=True)
    skewed = b_star > 1 / len(group_values)
    return float((skewed * (b_tilde - b_star)).sum() / predicted.sum())


def directional_bias_amplification(
    train_labels: np.ndarray,
    train_groups: np.ndarray,
    eval_true: np.ndarray,
    eval_pred: np.ndarray,
    eval_groups: np.ndarray,
    *,
    association: Literal["eval", "train"] = "eval",
) -> float:
    """Directional bias amplification, attribute → task, of Wang & Russakovsky (2021).

    Each label ``t`` is a binary task ``T_t = 1[y = t]`` and each group ``a`` an attribute
    ``A_a = 1[group = a]``. The direction of their association is

    ``y_at = sign(P(A_a=1, T_t=1) - P(A_a=1) P(T_t=1))``

    (+1 positively associated, -1 negatively, 0 independent), from the evaluation split's
    true labels (``association="eval"``, the paper's definition and its reference code's
    default) or from the training labels (``association="train"``; noisy training labels then
    set it). On the evaluation split, ``Δ_at = P(T̂_t=1 | A_a=1) - P(T_t=1 | A_a=1)``
    (predicted minus true rate of ``t`` within group ``a``). Then

    ``BiasAmp→ = (1/(|A||T|)) Σ_a Σ_t y_at Δ_at``.

    The paper writes the summand ``y_at Δ_at + (1 - y_at)(-Δ_at)`` with ``y_at ∈ {0, 1}``;
    that is the same except at an exact tie, which it would count as ``-Δ_at``. Its reference
    code (``np.sign``) gives a tie 0, as here: no association, nothing to amplify. ``A`` is the
    set of training groups, each of which must occur in the evaluation split; ``T`` the
    labels occurring in any of the three label arrays.

    Parameters
    ----------
    train_labels, train_groups : ndarray of shape (n_train,)
        Training labels and their groups (``A``, ``T`` and, with ``association="train"``, ``y_at``).
    eval_true, eval_pred, eval_groups : ndarray of shape (n_eval,)
        True and predicted labels on the evaluation split and their groups.
    association : {"eval", "train"}, default "eval"
        Which labels set the direction ``y_at``.

    References
    ----------
    Wang & Russakovsky, "Directional Bias Amplification", ICML 2021 (equation 2, A → T);
    reference code ``biasamp_attribute_to_task`` in github.com/princetonvisualai/directional-bias-amp.

    Examples
    --------
    >>> train_y, train_g = np.array([1, 1, 0, 0]), np.array(["f", "f", "m", "m"])
    >>> y, g = np.array([1, 1, 0, 1]), np.array(["f", "f", "m", "m"])
    >>> directional_bias_amplification(train_y, train_g, y, np.array([1, 1, 0, 0]), g)
    0.25
    """
    if association not in ("eval", "train"):
        raise ValueError(f"association must be 'eval' or 'train', got {association!r}")
    train_labels, train_groups = check_same_length(train_labels=train_labels, train_groups=train_groups)
    eval_true, eval_pred, eval_groups = check_same_length(eval_true=eval_true, eval_pred=eval_pred,
                                                           eval_groups=eval_groups)
    group_values = _check_eval_groups(train_groups, eval_groups)
    missing = np.setdiff1d(group_values, eval_groups)
    if missing.size:
        raise ValueError(f"eval_groups lacks training groups {missing.tolist()}: their Δ is undefined")
    # the groups as one-hot attributes: the multi-label form with one attribute per example
    return _directional(train_labels, train_groups[:, None] == group_values, eval_true, eval_pred,
                        eval_groups[:, None] == group_values, association)


def _directional(train_labels: np.ndarray, train_attributes: np.ndarray, eval_true: np.ndarray,
                 eval_pred: np.ndarray, eval_attributes: np.ndarray, association: str) -> float:
    """BiasAmp→ on validated arrays: labels of shape (n,), attributes (n, |A|) of 0/1."""
    tasks = np.unique(np.concatenate([train_labels, eval_true, eval_pred]))
    labels, attributes = ((eval_true, eval_attributes) if association == "eval"
                          else (train_labels, train_attributes))
    a = attributes.astype(np.int64)
    t = (labels[:, None] == tasks).astype(np.int64)
    # sign(n c_at - c_a c_t) on counts: a tie is exact, not at the mercy of rounding
    y_at = np.sign(len(labels) * (a.T @ t) - a.sum(axis=0)[:, None] * t.sum(axis=0)[None, :])
    e = eval_attributes.astype(np.int64)
    true_counts = e.T @ (eval_true[:, None] == tasks).astype(np.int64)
    pred_counts = e.T @ (eval_pred[:, None] == tasks).astype(np.int64)
    delta = (pred_counts - true_counts) / e.sum(axis=0)[:, None]
    return float((y_at * delta).mean())


def _check_attributes(name: str, attributes: np.ndarray, n: int) -> np.ndarray:
    attributes = np.asarray(attributes)
    if attributes.ndim != 2 or attributes.shape[0] != n or attributes.shape[1] == 0:
        raise ValueError(f"{name} must be an (n = {n}, attributes >= 1) array; got shape {attributes.shape}")
    if not np.isin(attributes, (0, 1)).all():
        raise ValueError(f"{name} must hold 0/1 (or bool) indicators")
    return attributes.astype(bool)


def directional_bias_amplification_multilabel(
    train_labels: np.ndarray,
    train_attributes: np.ndarray,
    eval_true: np.ndarray,
    eval_pred: np.ndarray,
    eval_attributes: np.ndarray,
    *,
    association: Literal["eval", "train"] = "eval",
) -> float:
    """Directional bias amplification, attribute → task, on attributes that may hold together.

    Wang & Russakovsky define BiasAmp→ for binary attributes ``A_a`` of which an example may
    have several (a comment mentioning ``black`` and ``muslim``) or none, and binary tasks
    ``T_t = 1[y = t]``. Over the ``n`` examples of the split that sets the direction,

    ``y_at = sign(P(A_a=1, T_t=1) - P(A_a=1) P(T_t=1))``

    (the evaluation split's true labels with ``association="eval"``, the training labels with
    ``"train"``); on the evaluation split, ``Δ_at = P(T̂_t=1 | A_a=1) - P(T_t=1 | A_a=1)``; and

    ``BiasAmp→ = (1/(|A||T|)) Σ_a Σ_t y_at Δ_at``.

    Every probability is over all ``n`` examples, so leaving an attribute out (a column of the
    arrays) leaves the others' terms unchanged. With one attribute per example (one-hot rows) it
    is :func:`directional_bias_amplification`. ``T`` is the set of labels occurring in any of
    the three label arrays; a tie in ``y_at`` counts 0, as in the reference code (``np.sign``).

    Parameters
    ----------
    train_labels : ndarray of shape (n_train,)
        Training labels (``T`` and, with ``association="train"``, ``y_at``).
    train_attributes : ndarray of shape (n_train, n_attributes)
        0/1 (or bool): whether each training example has each attribute.
    eval_true, eval_pred : ndarray of shape (n_eval,)
        True and predicted labels on the evaluation split.
    eval_attributes : ndarray of shape (n_eval, n_attributes)
        The same attributes (columns) on the evaluation split; each must hold for at least one
        example, or its ``Δ`` is undefined.
    association : {"eval", "train"}, default "eval"
        Which labels set the direction ``y_at``.

    References
    ----------
    Wang & Russakovsky, "Directional Bias Amplification", ICML 2021 (equation 2, A → T, with
    ``A ∈ {0, 1}^{n × |A|}``); reference code ``biasamp_attribute_to_task`` in
    github.com/princetonvisualai/directional-bias-amp, which takes the same ``n × |A|`` arrays.

    Examples
    --------
    Attributes ``black`` and ``muslim``; the third example has both. ``black`` goes with label 1
    (``y = +1`` for ``t = 1``, ``-1`` for ``t = 0``), ``muslim`` with neither (``y = 0``), and the
    predictions raise ``P(T̂_1 | black)`` from 2/3 to 1: ``(1/3 + 1/3) / 4``.

    >>> A = np.array([[1, 0], [1, 0], [1, 1], [0, 1]])
    >>> y, pred = np.array([1, 0, 1, 0]), np.array([1, 1, 1, 0])
    >>> round(directional_bias_amplification_multilabel(y, A, y, pred, A), 4)
    0.1667
    """
    if association not in ("eval", "train"):
        raise ValueError(f"association must be 'eval' or 'train', got {association!r}")
    (train_labels,) = check_same_length(train_labels=train_labels)
    eval_true, eval_pred = check_same_length(eval_true=eval_true, eval_pred=eval_pred)
    train_attributes = _check_attributes("train_attributes", train_attributes, len(train_labels))
    eval_attributes = _check_attributes("eval_attributes", eval_attributes, len(eval_true))
    if train_attributes.shape[1] != eval_attributes.shape[1]:
        raise ValueError(f"eval_attributes must have the {train_attributes.shape[1]} columns of "
                         f"train_attributes; got {eval_attributes.shape[1]}")
    empty = np.flatnonzero(~eval_attributes.any(axis=0))
    if empty.size:
        raise ValueError(f"eval_attributes columns {empty.tolist()} hold for no example: "
                         "their Δ is undefined")
    return _directional(train_labels, train_attributes, eval_true, eval_pred, eval_attributes, association)

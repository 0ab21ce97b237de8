"""Training-data extraction: does greedy decoding from a prefix reproduce the training text?

A token sequence ``x`` is *extractable* with a ``k``-token prefix and an ``m``-token suffix when
greedy (argmax) decoding from its first ``k`` tokens reproduces its next ``m`` tokens exactly:

``E(x) = 1[ ĝ_j(x_{<k}) = x_{k+j} for j = 0 .. m-1 ]``, where ``ĝ(p)`` is the greedy
continuation of ``p``: ``ĝ_0 = argmax_v P(v | p)``, ``ĝ_j = argmax_v P(v | p, ĝ_0 .. ĝ_{j-1})``.

This is the "k-extractable" definition of Carlini et al. (2023) with the prefix taken at the
start of each sequence, the discoverable-memorization test of Carlini et al. (2021):

* ``greedy_continuations``: the ``length`` argmax tokens after each prefix (a KV-cached loop);
* ``extractable``: ``E(x)`` per sequence, NaN where a sequence is shorter than ``k + m``;
* ``extraction_rate``: the share of eligible sequences that are extractable;
* ``extraction_advantage``: the rate on training (member) sequences minus the rate on unseen
  (non-member) ones, and ``extraction_advantage_interval``: Newcombe's interval for it.

The rate on members alone is not a measure of memorization: text the model never saw can be
reproduced when it is predictable (boilerplate, lists, formulaic sentences), so the rate on
comparable non-members is the chance level and the advantage, whose chance level is 0, is the
figure to report.

References
----------
Carlini, Tramèr, Wallace, Jagielski, Herbert-Voss, Lee, Roberts, Brown, Song, Erlingsson, Oprea
& Raffel, "Extracting Training Data from Large Language Models", USENIX Security 2021.
Carlini, Ippolito, Jagielski, Lee, Tramèr & Zhang, "Quantifying Memorization Across Neural
Language Models", ICLR 2023 (Section 2: k-extractable with greedy decoding).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ._validation import check_open_unit_interval, check_positive_int
from .bias import newcombe_interval

__all__ = [
    "extractable",
    "extraction_advantage",
    "extraction_advantage_interval",
    "extraction_rate",
    "greedy_continuations",
]


def _check_token_sequences(sequences: Sequence[Sequence[int]], name: str, *,
                           min_length: int = 0) -> list[np.ndarray]:
    """``sequences`` as a list of 1-D int64 arrays of non-negative token ids, each at least
    ``min_length`` long."""
    if isinstance(sequences, (str, bytes)) or not isinstance(sequences, (Sequence, np.ndarray)):
        raise ValueError(f"{name} must be a sequence of token-id sequences; got {type(sequences).__name__}")
    out = []
    for i, sequence in enumerate(sequences):
        try:
            tokens = None if isinstance(sequence, (str, bytes)) else np.asarray(sequence)
        except ValueError:  # ragged
            tokens = None
        if tokens is None or tokens.ndim != 1:
            raise ValueError(f"{name} must be a sequence of token-id sequences; item {i} is {sequence!r}")
        if tokens.size and (tokens.dtype.kind not in "iu" or tokens.min() < 0):
            raise ValueError(f"{name} must hold non-negative integer token ids; item {i} is {sequence!r}")
        if tokens.size < min_length:
            raise ValueError(f"{name} must each hold at least {min_length} token(s); "
                             f"item {i} has {tokens.size}")
        out.append(tokens.astype(np.int64))
    return out


def _cache_argument(model: nn.Module) -> str:
    """The keyword of the key/value cache: ``cache`` (transformers >= 5.x, where
    ``past_key_values`` is deprecated) when ``model.forward`` names it, else ``past_key_values``."""
    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in parameters else "past_key_values"


def _returned_cache(output: object) -> object:
    """The key/value cache of a forward pass's output (``.cache`` or ``.past_key_values``)."""
    cache = getattr(output, "cache", None)
    if cache is None:
        cache = getattr(output, "past_key_values", None)
    if cache is None:
        raise ValueError("model returned no key/value cache (.cache or .past_key_values); "
                         "greedy decoding needs a causal LM that supports use_cache=True")
    return cache


def _greedy(model: nn.Module, prefixes: list[np.ndarray], length: int, batch_size: int) -> np.ndarray:
    """:func:`greedy_continuations` on validated arguments."""
    out = np.zeros((len(prefixes), length), dtype=np.int64)
    if not prefixes:
        return out
    device = next(model.parameters()).device
    argument = _cache_argument(model)
    by_length: dict[int, list[int]] = {}
    for i, prefix in enumerate(prefixes):
        by_length.setdefault(prefix.size, []).append(i)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for rows in by_length.values():
                for start in range(0, len(rows), batch_size):
                    batch = rows[start:start + batch_size]
                    input_ids = torch.from_numpy(np.stack([prefixes[i] for i in batch])).to(device)
                    mask = torch.ones_like(input_ids)
                    cache, generated = None, []
                    for _ in range(length):
                        output = model(input_ids=input_ids, attention_mask=mask, **{argument: cache},
                                       use_cache=True)
                        cache = _returned_cache(output)
                        input_ids = output.logits[:, -1, :].argmax(dim=-1, keepdim=True)
                        generated.append(input_ids)
                        mask = torch.cat([mask, torch.ones_like(input_ids)], dim=1)
                    out[batch] = torch.cat(generated, dim=1).cpu().numpy()
    finally:
        model.train(was_training)
    return out


def greedy_continuations(model: nn.Module, prefixes: Sequence[Sequence[int]], *, length: int,
                         batch_size: int = 32) -> np.ndarray:
    """The ``length`` greedy (argmax) tokens that a causal language model appends to each prefix.

    ``ĝ_0 = argmax_v logits(p)_v``, ``ĝ_j = argmax_v logits(p, ĝ_0 .. ĝ_{j-1})_v`` at the last
    position, computed with the model's key/value cache (one forward pass over the prefix, then
    one per new token). Exactly ``length`` tokens are produced: no end-of-sequence stop,
    repetition penalty or other setting of the model's ``generation_config`` applies (which is
    why ``model.generate`` is not used). Ties go to the lowest token id (``torch.argmax``
    returns the first maximal index).

    Prefixes of equal length are batched together without padding (in practice all prefixes
    have the same length ``k``); the model runs in eval mode under ``torch.inference_mode`` on
    its own device, and its train/eval mode is restored afterwards. The model must accept
    ``prefix length + length`` positions.

    Parameters
    ----------
    model : torch.nn.Module
        A causal language model such as a transformers ``AutoModelForCausalLM``: called as
        ``model(input_ids=..., attention_mask=..., past_key_values=..., use_cache=True)``, it
        returns an object with ``.logits`` of shape (batch, positions, vocabulary) and
        ``.past_key_values``. Where ``model.forward`` has a ``cache`` parameter (recent
        transformers, which deprecate ``past_key_values``), ``cache=`` is passed instead and
        ``.cache`` is read.
    prefixes : sequence of sequences of int
        Token ids, each prefix at least one token long.
    length : int
        Tokens to generate after each prefix, ``>= 1``.
    batch_size : int, default 32
        Prefixes per forward pass, ``>= 1``.

    Returns
    -------
    ndarray of int64, shape (len(prefixes), length)
        Row ``i`` continues ``prefixes[i]`` (input order).

    Examples
    --------
    >>> from transformers import GPT2Config, GPT2LMHeadModel
    >>> _ = torch.manual_seed(0)
    >>> model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=20, n_positions=16))
    >>> greedy_continuations(model, [[1, 2, 3], [4, 5], [6, 7, 8]], length=4).shape
    (3, 4)
    """
    prefixes = _check_token_sequences(prefixes, "prefixes", min_length=1)
    length = check_positive_int(length, "length")
    batch_size = check_positive_int(batch_size, "batch_size")
    return _greedy(model, prefixes, length, batch_size)


def extractable(model: nn.Module, sequences: Sequence[Sequence[int]], *, prefix_length: int,
                suffix_length: int, batch_size: int = 32) -> np.ndarray:
    """Per sequence, 1.0 if greedy decoding from its first ``k`` tokens reproduces the next ``m``.

    With ``k = prefix_length`` and ``m = suffix_length``:
    ``E(x) = 1[greedy_continuations(x[:k], length=m) = x[k:k+m]]`` (every one of the ``m``
    tokens must match); tokens after ``x[k + m - 1]`` are ignored. A sequence shorter than
    ``k + m`` is not eligible and gets NaN.

    Parameters
    ----------
    model : torch.nn.Module
        A causal language model, as in :func:`greedy_continuations`.
    sequences : sequence of sequences of int
        Token ids, for example the training texts tokenized without special tokens.
    prefix_length : int
        ``k``, the tokens given to the model, ``>= 1``.
    suffix_length : int
        ``m``, the tokens it must reproduce, ``>= 1``.
    batch_size : int, default 32
        Sequences per forward pass, ``>= 1``.

    Returns
    -------
    ndarray of float64, shape (len(sequences),)
        1.0 (extracted), 0.0 (not) or NaN (too short).

    References
    ----------
    Carlini et al., "Quantifying Memorization Across Neural Language Models", ICLR 2023
    (Definition: k-extractable, greedy decoding).

    Examples
    --------
    A sequence built from the model's own greedy continuation is extractable by construction.

    >>> from transformers import GPT2Config, GPT2LMHeadModel
    >>> _ = torch.manual_seed(0)
    >>> model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=20, n_positions=16))
    >>> greedy = greedy_continuations(model, [[1, 2, 3]], length=2)[0].tolist()
    >>> other = [(greedy[0] + 1) % 20, greedy[1]]
    >>> extractable(model, [[1, 2, 3, *greedy], [1, 2, 3, *other], [1, 2, 3, 4]],
    ...             prefix_length=3, suffix_length=2).tolist()
    [1.0, 0.0, nan]
    """
    sequences = _check_token_sequences(sequences, "sequences")
    prefix_length = check_positive_int(prefix_length, "prefix_length")
    suffix_length = check_positive_int(suffix_length, "suffix_length")
    batch_size = check_positive_int(batch_size, "batch_size")
    total = prefix_length + suffix_length
    result = np.full(len(sequences), np.nan)
    eligible = [i for i, tokens in enumerate(sequences) if tokens.size >= total]
    if eligible:
        greedy = _greedy(model, [sequences[i][:prefix_length] for i in eligible], suffix_length, batch_size)
        targets = np.stack([sequences[i][prefix_length:total] for i in eligible])
        result[eligible] = np.all(greedy == targets, axis=1).astype(np.float64)
    return result


def extraction_rate(model: nn.Module, sequences: Sequence[Sequence[int]], *, prefix_length: int,
                    suffix_length: int, batch_size: int = 32) -> float:
    """Share of the eligible sequences that are extractable, in ``[0, 1]``.

    ``Σ_i E(x_i) / #{i : |x_i| >= k + m}`` with ``E`` as in :func:`extractable`; NaN when no
    sequence is at least ``k + m`` tokens long.

    Parameters
    ----------
    model : torch.nn.Module
        A causal language model, as in :func:`greedy_continuations`.
    sequences : sequence of sequences of int
        Token ids.
    prefix_length : int
        ``k``, the tokens given to the model, ``>= 1``.
    suffix_length : int
        ``m``, the tokens it must reproduce, ``>= 1``.
    batch_size : int, default 32
        Sequences per forward pass, ``>= 1``.

    Returns
    -------
    float
        The rate; compare it with the rate on unseen sequences (:func:`extraction_advantage`).

    References
    ----------
    Carlini et al., "Quantifying Memorization Across Neural Language Models", ICLR 2023.

    Examples
    --------
    >>> from transformers import GPT2Config, GPT2LMHeadModel
    >>> _ = torch.manual_seed(0)
    >>> model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=20, n_positions=16))
    >>> greedy = greedy_continuations(model, [[1, 2, 3]], length=2)[0].tolist()
    >>> other = [(greedy[0] + 1) % 20, greedy[1]]
    >>> extraction_rate(model, [[1, 2, 3, *greedy], [1, 2, 3, *other], [1, 2, 3, 4]],
    ...                 prefix_length=3, suffix_length=2)
    0.5
    """
    extracted = extractable(model, sequences, prefix_length=prefix_length, suffix_length=suffix_length,
                            batch_size=batch_size)
    return _counts(extracted, "sequences")[2]


def _counts(extracted: np.ndarray, name: str) -> tuple[int, int, float]:
    """``(extracted, eligible, rate)`` of an array like :func:`extractable` returns."""
    extracted = np.asarray(extracted, dtype=np.float64)
    if extracted.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array; got shape {extracted.shape}")
    eligible = extracted[~np.isnan(extracted)]
    if not np.all((eligible == 0) | (eligible == 1)):
        raise ValueError(f"{name} must hold 0, 1 or NaN (as extractable returns)")
    k, n = int(eligible.sum()), int(eligible.size)
    return k, n, k / n if n else float("nan")


def extraction_advantage(member_extracted: np.ndarray, nonmember_extracted: np.ndarray) -> float:
    """Extraction rate on training (member) sequences minus the rate on unseen ones, in ``[-1, 1]``.

    ``k_m / n_m - k_n / n_n`` with ``k`` the extractable and ``n`` the eligible sequences of
    each side (NaN entries are ignored). Its chance level is 0: unseen text is reproduced too
    when it is predictable, so only the excess over the non-members is attributable to
    training. NaN when either side has no eligible sequence. Draw non-members from the same
    source as the members (held-out rows of the same data set) and use the same ``k`` and ``m``.

    Parameters
    ----------
    member_extracted : ndarray of shape (m,)
        :func:`extractable` on training sequences: 1.0, 0.0 or NaN.
    nonmember_extracted : ndarray of shape (n,)
        :func:`extractable` on held-out sequences.

    Returns
    -------
    float
        The difference of the two rates.

    References
    ----------
    Carlini et al., "Extracting Training Data from Large Language Models", USENIX Security 2021;
    Carlini et al., "Quantifying Memorization Across Neural Language Models", ICLR 2023 (both
    compare with text the model did not train on).

    Examples
    --------
    Two of the three eligible members against one of four non-members:

    >>> round(extraction_advantage(np.array([1.0, 1.0, 0.0, np.nan]), np.array([0.0, 1.0, 0.0, 0.0])), 6)
    0.416667
    """
    return _counts(member_extracted, "member_extracted")[2] - _counts(nonmember_extracted,
                                                                     "nonmember_extracted")[2]


def extraction_advantage_interval(member_extracted: np.ndarray, nonmember_extracted: np.ndarray, *,
                                  confidence: float = 0.95) -> tuple[float, float]:
    """Newcombe's hybrid score interval for :func:`extraction_advantage`.

    The members and non-members are two independent samples with ``k_m`` of ``n_m`` and ``k_n``
    of ``n_n`` eligible sequences extracted; with ``p = k / n`` and ``[l, u]`` the Wilson interval
    of each rate,

    ``low = (p_m - p_n) - sqrt((p_m - l_m)² + (u_n - p_n)²)``,
    ``high = (p_m - p_n) + sqrt((u_m - p_m)² + (p_n - l_n)²)``

    (:func:`overfit_lab.diagnostics.bias.newcombe_interval`). It stays inside ``[-1, 1]`` and
    keeps close to nominal coverage when the rates are near 0 or 1, the usual case here. Each
    sequence counts as one independent trial.

    Parameters
    ----------
    member_extracted : ndarray of shape (m,)
        :func:`extractable` on training sequences: 1.0, 0.0 or NaN.
    nonmember_extracted : ndarray of shape (n,)
        :func:`extractable` on held-out sequences.
    confidence : float, default 0.95
        Coverage, in ``(0, 1)``.

    Returns
    -------
    tuple of float
        ``(low, high)``; ``(nan, nan)`` when either side has no eligible sequence.

    References
    ----------
    Newcombe, "Interval estimation for the difference between independent proportions:
    comparison of eleven methods", Statist. Med. 17, 873-890 (1998), method 10.

    Examples
    --------
    Newcombe's Table II example, 56/70 against 48/80: 0.0524 to 0.3339.

    >>> members = np.r_[np.ones(56), np.zeros(14)]
    >>> nonmembers = np.r_[np.ones(48), np.zeros(32)]
    >>> [round(v, 4) for v in extraction_advantage_interval(members, nonmembers)]
    [0.0524, 0.3339]
    """
    confidence = check_open_unit_interval(confidence, "confidence")
    k_m, n_m, _ = _counts(member_extracted, "member_extracted")
    k_n, n_n, _ = _counts(nonmember_extracted, "nonmember_extracted")
    if not (n_m and n_n):
        return float("nan"), float("nan")
    _, low, high = newcombe_interval(k_m, n_m, k_n, n_n, confidence=confidence)
    return low, high

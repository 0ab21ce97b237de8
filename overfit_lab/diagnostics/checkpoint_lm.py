"""The diagnostics of a causal language model at one checkpoint, as adapters (see
:mod:`overfit_lab.diagnostics.checkpoint`, whose conventions they follow).

A causal LM's clean outputs of a split (``ctx.logits[split]``) are per-document next-token
statistics (:data:`overfit_lab.predict.TOKEN_STATISTICS`), so every figure here is computed from
token log-likelihoods:

* ``memorization``: the loss-threshold membership attack on per-document losses (as for a
  classifier, with the same estimator and non-members), and training-data extraction: the share
  of documents whose greedy continuation of their first ``prefix_length`` tokens reproduces the
  next ``suffix_length`` exactly, training documents against as many non-members
  (:mod:`overfit_lab.diagnostics.extraction`);
* ``robustness``: the relative change of perplexity on test documents under each perturbation,
  beside the pretrained model's change on the same texts (the change any model shows, since a
  perturbed text is less likely text);
* ``forgetting``: perplexity on a general-text probe after over before fine-tuning
  (:mod:`overfit_lab.diagnostics.forgetting`);
* ``drift`` and ``spectral``: the classifier's adapters, which only read hidden states and weights.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

from .checkpoint import (
    CheckpointContext,
    Row,
    drift,
    member_sample,
    membership_rows,
    nonmember_source,
    pretrained_key,
    pretrained_model,
    spectral,
)

__all__ = ["LM_DIAGNOSTICS"]


@lru_cache(maxsize=4)
def _pretrained_outputs(key: tuple, tokenizer, texts: tuple[str, ...], max_length: int,
                        batch_size: int) -> np.ndarray:
    """The pretrained model's token statistics on ``texts``, once per process (the same for every
    cell of a run)."""
    from ..tasks import TASKS

    task = TASKS[key[0]]
    encoded = task.encode(tokenizer, list(texts), None, max_length=max_length)
    return task.predict(pretrained_model(*key), encoded, batch_size=batch_size)


def _pretrained_outputs_of(ctx: CheckpointContext, texts: list[str], diagnostic: str) -> np.ndarray:
    return _pretrained_outputs(pretrained_key(ctx, diagnostic), ctx.tokenizer, tuple(texts),
                               ctx.suite.model.max_length, ctx.suite.evaluation.batch_size)


def _nonmembers(ctx: CheckpointContext, n_members: int) -> tuple[str, np.ndarray, list[list[int]]]:
    """Up to ``n_members`` non-member documents: their source, token statistics and token ids (the
    same documents for every cell of a run; see ``checkpoint.nonmember_source``)."""
    seed = ctx.suite.data.seed
    source = nonmember_source(ctx.suite, ctx.data)
    if source == "pool":
        positions = ctx.data.unused_positions(ctx.suite.grid.train_sizes, seed=seed)[:n_members]
        texts = ctx.data.train["text"].iloc[positions].tolist()
        encoded = ctx.task.encode(ctx.tokenizer, texts, None, max_length=ctx.suite.model.max_length)
        with ctx.forward_pass(len(texts)):
            statistics = ctx.task.predict(ctx.model, encoded, batch_size=ctx.suite.evaluation.batch_size)
        return source, statistics, encoded.input_ids
    positions = ctx.test_subsample(n_members)
    return source, ctx.logits["test"][positions], [ctx.encoded["test"].input_ids[i] for i in positions]


def _memorization(ctx: CheckpointContext) -> list[Row]:
    from .language import sequence_losses

    spec, seed = ctx.suite.diagnostics.memorization, ctx.suite.data.seed
    train = ctx.logits["train"]
    source, others, other_ids = _nonmembers(ctx, len(train))
    chosen = member_sample(len(train), len(others), seed=seed)
    members, nonmembers = sequence_losses(train[chosen]), sequence_losses(others)
    # a document with one token has no predicted token, hence no loss: left out on both sides
    rows = membership_rows(members[np.isfinite(members)], nonmembers[np.isfinite(nonmembers)], seed=seed)
    rows.append({"metric": "membership_nonmembers_unused", "value": float(source == "pool")})
    if spec.extraction:
        rows += _extraction_rows(ctx, [ctx.encoded["train"].input_ids[i] for i in chosen], other_ids)
    return rows


def _extraction_rows(ctx: CheckpointContext, member_ids: list[list[int]],
                     nonmember_ids: list[list[int]]) -> list[Row]:
    from .extraction import extractable, extraction_advantage, extraction_advantage_interval

    spec = ctx.suite.diagnostics.memorization
    size = {"prefix_length": spec.prefix_length, "suffix_length": spec.suffix_length,
            "batch_size": ctx.suite.evaluation.batch_size}
    with ctx.forward_pass(len(member_ids) + len(nonmember_ids)):
        members = extractable(ctx.model, member_ids, **size)
        others = extractable(ctx.model, nonmember_ids, **size)
    eligible = int(np.isfinite(members).sum()), int(np.isfinite(others).sum())
    rows: list[Row] = [{"metric": "extraction_n", "value": float(eligible[0])},
                       {"metric": "extraction_n_heldout", "value": float(eligible[1])}]
    if min(eligible) == 0:  # documents shorter than prefix + suffix: nothing to measure
        return rows
    low, high = extraction_advantage_interval(members, others)
    return rows + [{"metric": "extraction_rate", "value": float(np.nanmean(members))},
                   {"metric": "extraction_rate_heldout", "value": float(np.nanmean(others))},
                   {"metric": "extraction_advantage", "value": extraction_advantage(members, others)},
                   {"metric": "extraction_advantage_low", "value": low},
                   {"metric": "extraction_advantage_high", "value": high}]


def _robustness(ctx: CheckpointContext) -> list[Row]:
    from .language import perplexity
    from .perturb import changed_mask, headline_severities, perturb_texts

    spec = ctx.suite.diagnostics.robustness
    idx = ctx.test_subsample(spec.subsample)
    texts = ctx.data.test["text"].to_numpy()[idx].tolist()
    clean = ctx.logits["test"][idx]
    headline = headline_severities(spec.ops, spec.headline)
    grid = {op: sorted({*spec.severities, *([headline[op]] if headline[op] is not None else [])})
            for op in spec.ops}
    variants = {(op, severity): perturb_texts(texts, op, severity, seed=ctx.suite.data.seed)
                for op in spec.ops for severity in grid[op]}
    changed_by = {key: changed_mask(texts, perturbed) for key, perturbed in variants.items()}
    # every distinct changed text once, through the fine-tuned and the pretrained model
    distinct = list(dict.fromkeys(t for key, perturbed in variants.items()
                                  for t, c in zip(perturbed, changed_by[key], strict=True) if c))
    at = {t: i for i, t in enumerate(distinct)}
    models: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if distinct:
        models["fine-tuned"] = (clean, ctx.outputs_of(distinct))
        if ctx.pretrained_path is not None:
            models["pretrained"] = (_pretrained_outputs_of(ctx, texts, "robustness"),
                                    _pretrained_outputs_of(ctx, distinct, "robustness"))
    rows: list[Row] = []
    worst: tuple | None = None  # (change, op, severity) of the fine-tuned model, headline severities only
    for (op, severity), perturbed in variants.items():
        changed = changed_by[(op, severity)]
        positions = [at[t] for t, c in zip(perturbed, changed, strict=True) if c]
        for model, (base, scored) in models.items():
            statistics = base.copy()  # a text the op left alone keeps its clean statistics
            statistics[changed] = scored[positions]
            change = perplexity(statistics) / perplexity(base) - 1
            where = {"op": op, "severity": severity}
            if model == "pretrained":
                rows.append({"metric": "perplexity_change_pretrained", "value": change, **where})
                continue
            rows += [{"metric": "perplexity_change", "value": change, **where},
                     {"metric": "perplexity_perturbed", "value": perplexity(statistics), **where}]
            if severity == headline[op] and (worst is None or change > worst[0]):
                worst = (change, op, severity)
    if worst is not None:
        change, op, severity = worst
        rows += [{**r, "metric": f"worst_{r['metric']}"} for r in list(rows)
                 if r["metric"] in ("perplexity_change", "perplexity_change_pretrained")
                 and (r["op"], r["severity"]) == (op, severity)]
    rows.append({"metric": "perplexity_clean", "value": perplexity(clean)})
    return rows


def _forgetting(ctx: CheckpointContext) -> list[Row]:
    from .forgetting import forgetting_ratio, probe_texts
    from .language import perplexity

    spec = ctx.suite.diagnostics.forgetting
    texts = probe_texts(spec.probe, max_documents=spec.max_documents)
    before = perplexity(_pretrained_outputs_of(ctx, texts, "forgetting"))
    after = perplexity(ctx.outputs_of(texts))
    return [{"metric": "forgetting_ratio", "value": forgetting_ratio(before, after)},
            {"metric": "probe_perplexity_before", "value": before},
            {"metric": "probe_perplexity_after", "value": after},
            {"metric": "probe_documents", "value": float(len(texts))}]


LM_DIAGNOSTICS: dict[str, Callable[[CheckpointContext], list[Row]]] = {
    "memorization": _memorization,
    "robustness": _robustness,
    "forgetting": _forgetting,
    "drift": drift,
    "spectral": spectral,
}

"""Where the model fails and what its data does, at one checkpoint, as adapters (see
:mod:`overfit_lab.diagnostics.checkpoint`, whose conventions they follow):

* ``slices``: weak slices of the test split (:mod:`.slices`), from text properties, the group
  columns and their pairs, each also within each class; a causal LM's on document losses;
* ``labels``: label shares of every split and of the predictions, per-class recall, the
  training-to-test label shift and the classes (almost) never predicted (:mod:`.labels`);
* ``cartography``: every training example's place on the data map from its predictions after
  each epoch (:mod:`.cartography`; final checkpoint, at least two epochs), the most likely
  mislabeled with their text, the memorised ones, and, where the harness flipped labels, how
  well the mislabel score finds them.

Rows name a slice in ``group`` (a slice of the test split is a subgroup it was not told about;
a per-class slice is ``"SLICE & label=CLASS"``) and a class in ``group``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.special import softmax

from ..rows import REGIONS, DynamicsRow, ExampleRow
from .checkpoint import CheckpointContext, Row

__all__ = ["DATA_DIAGNOSTICS", "LM_DATA_DIAGNOSTICS", "cartography", "label_balance", "language_model_slices",
           "slice_name", "slices"]

WEAK_SLICES_SHOWN = 5  # weak slices per cell whose misclassified texts are kept for the report


@lru_cache(maxsize=4)
def _test_slices(fingerprint: str, texts: tuple[str, ...], groups: tuple[tuple[str, tuple[str, ...]], ...],
                 separator: str | None, frequent_tokens: int, min_count: int) -> pd.DataFrame:
    """The slices of a data set's test split, once per process (the same for every cell)."""
    from .slices import group_slices, text_properties

    properties = text_properties(list(texts), frequent_tokens=frequent_tokens, min_count=min_count)
    if not groups:
        return properties
    frame = pd.DataFrame({column: list(values) for column, values in groups})
    return pd.concat([properties, group_slices(frame, [c for c, _ in groups], separator=separator,
                                               min_count=min_count)], axis=1)


def _slices_of(ctx: CheckpointContext) -> pd.DataFrame:
    spec, test = ctx.suite.diagnostics.slices, ctx.data.test
    columns = [c for c in ctx.data.group_columns if c in test.columns]
    groups = tuple((c, tuple(test[c].astype(str))) for c in columns)
    return _test_slices(ctx.data.fingerprint(), tuple(test["text"]), groups, ctx.suite.data.group_separator,
                        spec.frequent_tokens, spec.min_count)


def slice_name(row: dict) -> str:
    """A tested slice's name as stored: the slice, and ``& label=CLASS`` for a per-class one."""
    if row["class"] is None or pd.isna(row["class"]):
        return row["slice"]
    return f"{row['slice']} & label={row['class']}"


def _slice_rows(report: pd.DataFrame) -> list[Row]:
    """Every slice tried (its value, size, gap and corrected p-value) and the headline figures."""
    from .slices import worst_slice_gap

    rows: list[Row] = []
    for r in report.to_dict("records"):
        name = slice_name(r)
        rows += [{"metric": "slice_value", "value": r["value"], "group": name},
                 {"metric": "slice_n", "value": float(r["n"]), "group": name},
                 {"metric": "slice_gap", "value": r["gap"], "group": name},
                 {"metric": "slice_p_adjusted", "value": r["p_adjusted"], "group": name},
                 {"metric": "slice_weak", "value": float(r["weak"]), "group": name}]
    return rows + [{"metric": "worst_slice_gap", "value": worst_slice_gap(report)},
                   {"metric": "weak_slices", "value": float(report["weak"].sum())},
                   {"metric": "slices_tested", "value": float(len(report))}]


def slices(ctx: CheckpointContext) -> list[Row]:
    """Weak slices of the test split by accuracy, overall and within each class."""
    from .slices import find_weak_slices

    spec, test = ctx.suite.diagnostics.slices, ctx.data.test
    masks = _slices_of(ctx)
    y = test["label"].to_numpy()
    proba = ctx.proba("test")
    pred = proba.argmax(axis=1)
    report = find_weak_slices((pred == y).astype(float), masks, labels=y, label_names=ctx.data.label_names,
                              kind="accuracy", min_count=spec.min_count, tolerance=spec.tolerance,
                              alpha=spec.alpha, correction=spec.correction)
    texts = test["text"].tolist()
    shown = report[report["weak"]].head(WEAK_SLICES_SHOWN if ctx.checkpoint == "final" else 0)
    for r in shown.to_dict("records"):
        inside = masks[r["slice"]].to_numpy()
        if slice_name(r) != r["slice"]:
            inside = inside & (y == ctx.data.label_names.index(r["class"]))
        ctx.examples += [ExampleRow(kind="slice", op=slice_name(r), severity=float(r["gap"]), text=texts[i],
                                    variant="", label=int(y[i]), pred=int(pred[i]),
                                    confidence=float(proba[i].max()), variant_pred=int(pred[i]),
                                    variant_confidence=float(proba[i].max()))
                         for i in np.flatnonzero(inside & (pred != y))[:spec.examples]]
    return _slice_rows(report)


def language_model_slices(ctx: CheckpointContext) -> list[Row]:
    """Weak slices of a causal LM's test documents by mean token loss."""
    from .language import sequence_losses
    from .slices import find_weak_slices

    spec = ctx.suite.diagnostics.slices
    losses = sequence_losses(ctx.logits["test"])
    masks = _slices_of(ctx)
    keep = np.isfinite(losses)
    report = find_weak_slices(losses[keep], masks[keep].reset_index(drop=True), kind="loss",
                              min_count=spec.min_count, tolerance=spec.tolerance, alpha=spec.alpha,
                              correction=spec.correction)
    return _slice_rows(report)


def label_balance(ctx: CheckpointContext) -> list[Row]:
    """Label shares per split and of the test predictions, per-class recall, label shift and
    collapsed classes."""
    from .labels import collapsed_classes, label_distribution, label_shift, per_class_recall

    spec, names, k = ctx.suite.diagnostics.labels, ctx.data.label_names, ctx.data.n_classes
    labels = {"train": ctx.train_rows["label"].to_numpy(), **{split: ctx.data.split(split)["label"].to_numpy()
                                                              for split in ("validation", "test")}}
    y, pred = labels["test"], ctx.logits["test"].argmax(axis=1)
    rows: list[Row] = []
    for split, values in (*labels.items(), ("predicted", pred)):
        rows += [{"metric": f"class_share_{split}", "value": share, "group": name}
                 for name, share in zip(names, label_distribution(values, k), strict=True)]
    recall = per_class_recall(y, pred, k)
    collapsed = collapsed_classes(y, pred, k, recall_threshold=spec.recall_threshold,
                                  share_ratio=spec.share_ratio, min_count=spec.min_count)
    rows += [{"metric": "class_recall", "value": value, "group": name}
             for name, value in zip(names, recall, strict=True)]
    rows += [{"metric": "class_collapsed", "value": float(flag), "group": name}
             for name, flag in zip(names, collapsed, strict=True)]
    tvd, p = label_shift(labels["train"], y, k)
    present = recall[np.isfinite(recall)]
    return rows + [{"metric": "min_class_recall", "value": float(present.min()) if present.size else np.nan},
                   {"metric": "collapsed_classes", "value": float(collapsed.sum())},
                   {"metric": "label_shift_tvd", "value": tvd},
                   {"metric": "label_shift_p", "value": p}]


def cartography(ctx: CheckpointContext) -> list[Row]:
    """The data map of the training subset from its predictions after every epoch (final
    checkpoint; nothing with fewer than two epochs, as in an audit)."""
    from .cartography import (
        data_map_regions,
        memorised,
        mislabel_detection,
        mislabel_scores,
        training_dynamics,
    )

    epochs = sorted(ctx.history)
    if ctx.checkpoint != "final" or len(epochs) < 2:
        return []
    spec = ctx.suite.diagnostics.cartography
    probabilities = softmax(np.stack([ctx.history[e] for e in epochs]).astype(np.float64), axis=2)
    labels = ctx.train_rows["label"].to_numpy()
    clean = ctx.train_rows["clean_label"].to_numpy()
    dynamics = training_dynamics(probabilities, labels)
    regions = data_map_regions(dynamics).to_numpy()
    losses = {e: ctx.validation_losses[e] for e in epochs if e in ctx.validation_losses}
    best = min(losses, key=lambda e: (losses[e], e)) if losses else epochs[-1]
    learned_late = memorised(dynamics, best)
    scores = mislabel_scores(dynamics)
    positions = ctx.train_rows["position"].to_numpy()
    learned = dynamics["learned_epoch"].to_numpy()
    ctx.dynamics += [DynamicsRow(position=int(positions[i]), label=int(labels[i]), clean_label=int(clean[i]),
                                 confidence=float(d.confidence), variability=float(d.variability),
                                 correctness=float(d.correctness), margin=float(d.margin),
                                 learned_epoch=None if np.isnan(learned[i]) else int(learned[i]),
                                 region=regions[i], memorised=bool(learned_late[i]))
                     for i, d in enumerate(dynamics.itertuples())]
    preferred = probabilities.mean(axis=0).argmax(axis=1)
    texts = ctx.train_rows["text"].tolist()
    for i in np.argsort(-scores, kind="stable")[:spec.examples]:
        where = regions[i] + (", memorised" if learned_late[i] else "")
        ctx.examples.append(ExampleRow(kind="mislabeled", op=where, severity=float(scores[i]), text=texts[i],
                                       variant="", label=int(labels[i]), pred=int(preferred[i]),
                                       confidence=float(dynamics["confidence"].iloc[i]),
                                       variant_pred=int(preferred[i]),
                                       variant_confidence=float(dynamics["confidence"].iloc[i])))
    rows: list[Row] = [{"metric": f"cartography_{region.split('-')[0]}",
                        "value": float((regions == region).mean())} for region in REGIONS]
    rows += [{"metric": "memorised_share", "value": float(learned_late.mean())},
             {"metric": "cartography_best_epoch", "value": float(best)}]
    flipped = labels != clean
    if flipped.any():
        found = mislabel_detection(scores, flipped)
        rows += [{"metric": "mislabel_auc", "value": found["auc"]},
                 {"metric": "mislabel_precision", "value": found["precision_at_noise"]},
                 {"metric": "mislabel_k", "value": float(found["k"])}]
    return rows


DATA_DIAGNOSTICS: dict[str, Callable[[CheckpointContext], list[Row]]] = {
    "slices": slices, "labels": label_balance, "cartography": cartography}
LM_DATA_DIAGNOSTICS: dict[str, Callable[[CheckpointContext], list[Row]]] = {"slices": language_model_slices}

"""The HTML report's sections on where the model fails and what its data does, as template rows:
weak slices (with the texts they got wrong), label balance and class collapse, calibration
after temperature scaling, and the training dynamics (data-map regions, mislabel detection, the
most likely mislabeled training texts). Each reads the analysis of a
:class:`~overfit_lab.analysis.RunResult` and words it; nothing is computed here."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .formatting import seed_rows
from .sections import fmt_row

if TYPE_CHECKING:
    from ..analysis import RunResult

__all__ = ["calibration_rows", "class_rows", "dynamics_rows", "mislabeled_examples", "slice_examples",
           "slice_rows", "slices_tested"]

EXAMPLES_SHOWN = 20
SHARES = ("train", "validation", "test", "predicted")


def _label(run: RunResult, value) -> str:
    names = run.meta.get("label_names") or []
    return names[int(value)] if 0 <= int(value) < len(names) else str(int(value))


def _percent(value: float) -> str:
    return "–" if pd.isna(value) else f"{value:.0%}"


def slice_rows(run: RunResult) -> list[dict]:
    """Every slice weak in some cell, per size x strategy: its value against the rest (as the mean
    gap), its size, the largest corrected p-value and how many seeds found it weak."""
    table = run.weak_slices
    return [{"slice": r.slice, "size": int(r.train_size), "strategy": r.strategy, "value": f"{r.value:.3f}",
             "gap": f"{r.gap:+.3f}", "n": f"{r.n:.0f}", "p": f"{r.p_adjusted:.3g}",
             "weak": f"{int(r.weak)}/{int(r.seeds)}", "kind": "bad" if r.weak else "neutral"}
            for r in table.itertuples()]


def slices_tested(run: RunResult) -> int:
    """The most slices (and slice x class cells) one cell tested: the correction's family size."""
    scores = run.cell_scores(extra=True)
    return int(scores["slices_tested"].max()) if "slices_tested" in scores and len(scores) else 0


def slice_examples(run: RunResult) -> list[dict]:
    """Test texts of weak slices that the model got wrong (at most :data:`EXAMPLES_SHOWN`)."""
    rows = run.examples[run.examples["kind"] == "slice"] if not run.examples.empty else run.examples
    return [{"cell": r.cell_id, "slice": r.op, "text": r.text, "label": _label(run, r.label),
             "pred": f"{_label(run, r.pred)} ({r.confidence:.2f})"}
            for r in rows.head(EXAMPLES_SHOWN).itertuples()]


def class_rows(run: RunResult) -> list[dict]:
    """Per size x strategy x class: its share of each split's labels and of the test predictions,
    its recall, and in how many seeds it was (almost) never predicted."""
    table = run.class_balance
    return [{"size": int(r["train_size"]), "strategy": r["strategy"], "class": r["class"],
             **{split: _percent(r.get(f"class_share_{split}")) for split in SHARES},
             "recall": "–" if pd.isna(r.get("class_recall")) else f"{r['class_recall']:.2f}",
             "collapsed": f"{r['collapsed']}/{r['seeds']}", "kind": "bad" if r["collapsed"] else "neutral"}
            for r in table.to_dict("records")] if not table.empty else []


def _over_seeds(run: RunResult, metrics: tuple[str, ...]) -> tuple[list[tuple], dict]:
    by = ("train_size", "strategy")
    seeds = seed_rows(run.over_seeds(metrics, by=by), by)
    order = {name: i for i, name in enumerate(run.suite.grid.strategies)}
    keys = sorted({(size, strategy) for size, strategy, _ in seeds},
                  key=lambda key: (key[0], order.get(key[1], len(order))))
    return keys, seeds


def calibration_rows(run: RunResult) -> list[dict]:
    """Per size x strategy: test ECE before and after temperature scaling, the temperature, and the
    NLL before and after (mean ± interval over seeds)."""
    metrics = ("ece", "ece_temperature_scaled", "temperature", "nll", "nll_temperature_scaled")
    keys, seeds = _over_seeds(run, metrics)
    return [{"size": int(size), "strategy": strategy,
             **{name: fmt_row(seeds.get((size, strategy, name))) for name in metrics}}
            for size, strategy in keys if (size, strategy, "ece_temperature_scaled") in seeds]


DYNAMICS_SCORES = ("cartography_easy", "cartography_ambiguous", "cartography_hard", "memorised_share",
                   "mislabel_auc", "mislabel_precision", "mislabel_k")


def dynamics_rows(run: RunResult) -> list[dict]:
    """Per size x strategy: the shares of the data map's regions, the memorised share and, with
    label noise, how well the mislabel score finds the flipped labels."""
    keys, seeds = _over_seeds(run, DYNAMICS_SCORES)
    return [{"size": int(size), "strategy": strategy,
             **{name: fmt_row(seeds.get((size, strategy, name))) for name in DYNAMICS_SCORES}}
            for size, strategy in keys if (size, strategy, "cartography_easy") in seeds]


def mislabeled_examples(run: RunResult) -> list[dict]:
    """The training texts the model kept preferring another label for, highest mislabel score
    first, with whether the harness itself flipped their label (when it did, as label noise)."""
    examples = run.examples
    if examples.empty:
        return []
    rows = examples[examples["kind"] == "mislabeled"].sort_values("severity", ascending=False)
    return [{"cell": r.cell_id, "text": r.text, "label": _label(run, r.label),
             "preferred": _label(run, r.pred), "confidence": f"{r.confidence:.2f}",
             "score": f"{r.severity:+.2f}", "where": r.op}
            for r in rows.head(EXAMPLES_SHOWN).itertuples() if not np.isnan(r.severity)]

"""Per-cell scores: one row per finished cell, one column per headline metric.

The generalization figures are read at the grid's largest epoch value, the diagnostics at the
cell's final checkpoint (the same model). :data:`SCORES` names each score, says where it comes
from and which direction is better; statistics, reports and checks all read scores from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

CELL_KEYS = ["cell_id", "train_size", "label_noise", "strategy", "seed"]


@dataclass(frozen=True)
class Score:
    """A headline metric: its short label, direction and source."""

    label: str
    higher_is_better: bool | None  # None: no better direction (not compared)
    source: str  # "generalization" (a column of run.generalization) or "diagnostics" (a metric)
    reduce: str = "mean"  # how a diagnostic's rows of one cell reduce to one value
    description: str = ""


SCORES: dict[str, Score] = {
    "test_accuracy": Score("test acc", True, "generalization", description="accuracy on the test split"),
    "validation_accuracy": Score("val acc", True, "generalization", description="accuracy on validation"),
    "test_macro_f1": Score("test F1", True, "generalization", description="macro-F1 on the test split"),
    "gap_accuracy": Score("acc gap", False, "generalization",
                          description="train - validation accuracy"),
    "gap_loss": Score("loss gap", False, "generalization", description="validation - train loss"),
    "worst_robustness_drop": Score("worst drop", False, "diagnostics", "max",
                                   "largest accuracy drop under a perturbation"),
    "bias_amplification": Score("bias amp", False, "diagnostics", "mean",
                                "directional BiasAmp→ (attribute → task), mean over group columns"),
    "counterfactual_flip_rate": Score("cf flips", False, "diagnostics", "mean",
                                      "share of predictions flipped by identity swaps"),
    "ece": Score("ECE", False, "diagnostics", "mean", "expected calibration error"),
    "membership_advantage": Score("MIA adv", False, "diagnostics", "mean",
                                  "loss-threshold membership inference advantage"),
    "mean_cka": Score("mean CKA", True, "diagnostics", "mean",
                      "linear CKA with the pretrained model, mean over layers"),
    "mean_alpha": Score("alpha", None, "diagnostics", "mean", "mean power-law exponent of weight spectra"),
}


def cell_scores(run, *, checkpoint: str = "final") -> pd.DataFrame:
    """One row per finished cell: ``CELL_KEYS`` and every score in :data:`SCORES` it has."""
    general = run.generalization
    if general.empty:
        return pd.DataFrame(columns=CELL_KEYS)
    last = general[general["epochs"] == general["epochs"].max()]
    columns = [name for name, s in SCORES.items() if s.source == "generalization"]
    frame = last[CELL_KEYS + columns].reset_index(drop=True)
    diag = run.diagnostics
    if diag.empty:
        return frame
    diag = diag[diag["checkpoint"] == checkpoint]
    for name, score in SCORES.items():
        if score.source != "diagnostics":
            continue
        rows = diag[diag["metric"] == name]
        if rows.empty:
            continue
        values = rows.groupby("cell_id")["value"].agg(score.reduce).rename(name)
        frame = frame.merge(values, left_on="cell_id", right_index=True, how="left")
    return frame

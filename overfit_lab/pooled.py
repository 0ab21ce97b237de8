"""Tables pooled over seeds or averaged per subgroup from a run's stored diagnostics: pure
functions of the ``diagnostics`` and ``cells`` frames, which :class:`overfit_lab.analysis.RunResult`
computes once and keeps (``reliability_pooled``, ``group_rates``, ``counterfactual_pooled``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["group_rates", "pooled_flip_rates", "pooled_reliability"]


def pooled_reliability(diagnostics: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """The reliability diagram per strategy at the largest size: per confidence bin, the mean
    confidence and the accuracy pooled over seeds (each seed's bin weighted by its count), and
    the count. Columns: ``strategy, bin_low, bin_high, confidence, accuracy, count, train_size``,
    bins in order of confidence."""
    columns = ["strategy", "bin_low", "bin_high", "confidence", "accuracy", "count", "train_size"]
    diag = diagnostics
    metrics = ["reliability_count", "reliability_confidence", "reliability_accuracy"]
    if diag.empty or metrics[0] not in set(diag["metric"]):
        return pd.DataFrame(columns=columns)
    rows = diag[(diag["checkpoint"] == "final") & diag["metric"].isin(metrics)]
    wide = rows.pivot_table(index=["cell_id", "bin_low", "bin_high"], columns="metric",
                            values="value").reset_index()
    wide = wide.merge(cells[["cell_id", "train_size", "strategy", "seed"]], on="cell_id")
    wide = wide[wide["train_size"] == wide["train_size"].max()]
    parts = []
    for strategy, part in wide.groupby("strategy", sort=False):
        part = part[part["reliability_count"] > 0]
        weighted = part.assign(conf=part["reliability_confidence"] * part["reliability_count"],
                               acc=part["reliability_accuracy"] * part["reliability_count"])
        pooled = weighted.groupby(["bin_low", "bin_high"])[["conf", "acc", "reliability_count"]].sum()
        parts.append(pd.DataFrame({"strategy": strategy,
                                   "confidence": pooled["conf"] / pooled["reliability_count"],
                                   "accuracy": pooled["acc"] / pooled["reliability_count"],
                                   "count": pooled["reliability_count"]}).sort_values("confidence")
                     .reset_index())
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns[:-1])
    return frame.assign(train_size=wide["train_size"].max())[columns]


def group_rates(diagnostics: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Per size x strategy x subgroup: accuracy and the selection, true and false positive
    rates at the final checkpoint, each the mean over seeds (NaN where the group was too small
    in every seed)."""
    diag = diagnostics
    metrics = ["accuracy", "selection_rate", "true_positive_rate", "false_positive_rate"]
    if diag.empty:
        return pd.DataFrame()
    rows = diag[(diag["checkpoint"] == "final") & diag["metric"].isin(metrics) & diag["group"].notna()]
    if rows.empty:
        return pd.DataFrame()
    rows = rows.merge(cells[["cell_id", "train_size", "strategy"]], on="cell_id")
    return rows.pivot_table(index=["train_size", "strategy", "group"], columns="metric", values="value",
                            aggfunc="mean").reset_index()


def pooled_flip_rates(diagnostics: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Per size x strategy: the identity-swap flip rate pooled over seeds (flipped / swapped
    texts, ``k`` of ``n``) with its Wilson 95% interval, the seeds' own rates, and how many seeds
    and texts per seed were pooled. Runs stored before ``counterfactual_n`` existed have no
    counts: ``n`` is NaN there."""
    from .diagnostics.bias import wilson_interval

    columns = ["train_size", "strategy", "seeds", "k", "n", "rate", "low", "high", "texts", "rates"]
    diag = diagnostics
    if diag.empty:
        return pd.DataFrame(columns=columns)
    final = diag[diag["checkpoint"] == "final"].merge(cells[["cell_id", "train_size", "strategy"]],
                                                      on="cell_id")
    rows = []
    for (size, strategy), part in sorted(final.groupby(["train_size", "strategy"])):
        rates = part.loc[part["metric"] == "counterfactual_flip_rate", "value"]
        if rates.empty:
            continue
        counts = part.loc[part["metric"] == "counterfactual_n", "value"]
        row = {"train_size": size, "strategy": strategy, "seeds": len(rates), "rates": tuple(rates),
               "k": np.nan, "n": np.nan, "rate": np.nan, "low": np.nan, "high": np.nan,
               "texts": float(counts.mean()) if len(counts) else np.nan}
        if len(counts) == len(rates):  # runs stored before the counts have none
            k, n = int(np.round(rates.to_numpy() * counts.to_numpy()).sum()), int(counts.sum())
            low, high = wilson_interval(k, n)
            row.update(k=k, n=n, rate=k / n, low=float(low), high=float(high))
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)

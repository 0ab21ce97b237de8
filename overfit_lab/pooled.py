"""Tables pooled over seeds or averaged per subgroup from a run's stored diagnostics: pure
functions of the ``diagnostics`` and ``cells`` frames, which :class:`overfit_lab.analysis.RunResult`
computes once and keeps (``reliability_pooled``, ``group_rates``, ``counterfactual_pooled``,
``weak_slices``, ``class_balance``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["class_table", "group_rates", "pooled_flip_rates", "pooled_reliability", "weak_slice_table"]


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


SLICE_METRICS = ("slice_value", "slice_n", "slice_gap", "slice_p_adjusted", "slice_weak")


def weak_slice_table(diagnostics: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Every slice found weak in at least one cell, at the final checkpoint, per size x strategy:
    the mean over seeds of its value, size and gap, the largest corrected p-value, and in how many
    of the seeds it was weak (``weak``, of ``seeds``). Strategies where it was weak in no seed are
    kept, so a table shows whether a strategy shrank the slice or only the average gap. Columns:
    ``slice, train_size, strategy, value, n, gap, p_adjusted, weak, seeds``, the slices in order
    of their largest mean gap."""
    columns = ["slice", "train_size", "strategy", "value", "n", "gap", "p_adjusted", "weak", "seeds"]
    if diagnostics.empty or "slice_weak" not in set(diagnostics["metric"]):
        return pd.DataFrame(columns=columns)
    rows = diagnostics[(diagnostics["checkpoint"] == "final") & diagnostics["metric"].isin(SLICE_METRICS)]
    wide = rows.pivot_table(index=["cell_id", "group"], columns="metric", values="value").reset_index()
    flagged = set(wide.loc[wide["slice_weak"] > 0, "group"])
    wide = wide[wide["group"].isin(flagged)].merge(cells[["cell_id", "train_size", "strategy"]], on="cell_id")
    if wide.empty:
        return pd.DataFrame(columns=columns)
    table = wide.groupby(["group", "train_size", "strategy"]).agg(
        value=("slice_value", "mean"), n=("slice_n", "mean"), gap=("slice_gap", "mean"),
        p_adjusted=("slice_p_adjusted", "max"), weak=("slice_weak", "sum"), seeds=("cell_id", "count"))
    table = table.reset_index().rename(columns={"group": "slice"})
    order = table.groupby("slice")["gap"].max().sort_values(ascending=False).index
    table["slice"] = pd.Categorical(table["slice"], categories=list(order), ordered=True)
    table = table.sort_values(["slice", "train_size", "strategy"]).astype({"slice": str, "weak": int})
    return table[columns].reset_index(drop=True)


def class_table(diagnostics: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Per size x strategy x class, at the final checkpoint, the mean over seeds of the class's
    share of the training, validation and test labels and of the test predictions, its recall,
    and in how many seeds it was (almost) never predicted (``collapsed``, of ``seeds``)."""
    metrics = [f"class_share_{s}" for s in ("train", "validation", "test", "predicted")]
    metrics += ["class_recall", "class_collapsed"]
    if diagnostics.empty or "class_recall" not in set(diagnostics["metric"]):
        return pd.DataFrame()
    rows = diagnostics[(diagnostics["checkpoint"] == "final") & diagnostics["metric"].isin(metrics)]
    rows = rows.merge(cells[["cell_id", "train_size", "strategy"]], on="cell_id")
    table = rows.pivot_table(index=["train_size", "strategy", "group"], columns="metric", values="value",
                             aggfunc="mean").reset_index().rename(columns={"group": "class"})
    counts = (rows[rows["metric"] == "class_collapsed"].groupby(["train_size", "strategy", "group"])["value"]
              .agg(collapsed="sum", seeds="count").reset_index().rename(columns={"group": "class"}))
    table = table.drop(columns="class_collapsed").merge(counts, on=["train_size", "strategy", "class"])
    return table.astype({"collapsed": int})

"""The HTML report's diagnostic sections as template rows: robustness, the examples, bias and
fairness, counterfactual flips, membership inference and subgroup rates. Each reads the
analysis of a :class:`~overfit_lab.analysis.RunResult` and words it; nothing is computed here."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..analysis import SEED_GROUPS as SEED_KEYS
from .formatting import interval, mean_ends, seed_rows

if TYPE_CHECKING:
    from ..analysis import RunResult

__all__ = ["bias_rows", "bias_settings", "counterfactual_rows", "examples", "fmt_row", "group_rows",
           "left_out_notes", "membership_rows", "robustness_headline"]

EXAMPLES_SHOWN = 10


def fmt_row(row) -> str:
    """An :meth:`~overfit_lab.analysis.RunResult.over_seeds` row as the tables show it."""
    return "–" if row is None else interval(row["mean"], row["low"], row["high"], row["values"])


def _label(run: RunResult, value) -> str:
    names = run.meta.get("label_names") or []
    return names[int(value)] if 0 <= int(value) < len(names) else str(int(value))


def robustness_headline(run: RunResult) -> dict:
    """Each op's headline severity in readable terms, and per size x strategy the worst drop at
    those severities: mean over seeds, the op(s) it came from, the within-cell paired interval
    (mean of its ends over seeds) and the number of test texts."""
    from ..diagnostics.perturb import describe_severity, headline_severities

    spec = run.suite.diagnostics.robustness
    severities = [{"op": op, "severity": "–" if value is None else f"{value:g}",
                   "readable": "curves only (not in the headline)" if value is None
                   else describe_severity(op, value)}
                  for op, value in headline_severities(spec.ops, spec.headline).items()]
    if run.diagnostics.empty:
        return {"severities": severities, "rows": []}
    worst = run.final_rows("worst_robustness_drop")
    by = ("train_size", "strategy")
    seeds = seed_rows(run.over_seeds([f"worst_robustness_drop{end}" for end in ("", "_low", "_high", "_n")],
                                      by=by), by)
    order = {name: i for i, name in enumerate(run.suite.grid.strategies)}
    rows = []
    for size, strategy in sorted({(r.train_size, r.strategy) for r in worst.itertuples()},
                                 key=lambda key: (key[0], order.get(key[1], len(order)))):
        cells = worst[(worst["train_size"] == size) & (worst["strategy"] == strategy)]
        low, high, n = (seeds.get((size, strategy, f"worst_robustness_drop_{end}"), {}).get("mean", np.nan)
                        for end in ("low", "high", "n"))
        ops = pd.Series([f"{r.op} at {r.severity:g}" for r in cells.itertuples()]).value_counts()
        rows.append({"size": int(size), "strategy": strategy,
                     "drop": fmt_row(seeds.get((size, strategy, "worst_robustness_drop"))),
                     "ops": ", ".join(k if c == 1 else f"{k} (×{c})" for k, c in ops.items()),
                     "interval": mean_ends(low, high),
                     "n": "–" if np.isnan(n) else f"{n:.0f}"})
    return {"severities": severities, "rows": rows}


def examples(run: RunResult, kind: str) -> list[dict]:
    examples = run.examples
    if examples.empty:
        return []
    rows = examples[examples["kind"] == kind].copy()
    if rows.empty:
        return []
    rows["flipped"] = rows["pred"] != rows["variant_pred"]
    rows["change"] = (rows["confidence"] - rows["variant_confidence"]).abs()
    if kind == "robustness":  # the cells that suffered most first
        worst = run.diagnostics[(run.diagnostics["metric"] == "worst_robustness_drop")
                                & (run.diagnostics["checkpoint"] == "final")].set_index("cell_id")["value"]
        rows["rank"] = rows["cell_id"].map(worst).fillna(0)
        rows = rows.sort_values(["flipped", "rank", "change"], ascending=False)
    else:
        rows = rows.sort_values(["flipped", "change"], ascending=False)
    out = []
    for r in rows.head(EXAMPLES_SHOWN).itertuples():
        out.append({"cell": r.cell_id, "op": r.op or "identity swap",
                    "severity": "" if pd.isna(r.severity) else f"{r.severity:g}", "text": r.text,
                    "variant": r.variant, "label": _label(run, r.label),
                    "pred": f"{_label(run, r.pred)} ({r.confidence:.2f})",
                    "variant_pred": f"{_label(run, r.variant_pred)} ({r.variant_confidence:.2f})",
                    "flipped": bool(r.flipped)})
    return out


def bias_settings(run: RunResult) -> dict:
    """What the bias table's note needs: the least group size, the label-noise rates > 0, the
    separator of multi-valued group columns, and the subgroups left out of the amplification
    (:func:`left_out_notes`)."""
    spec = run.suite.diagnostics.bias
    noise = sorted(rate for rate in run.suite.grid.label_noise if rate > 0)
    return {"min_group_size": spec.min_group_size, "intervals": spec.intervals,
            "label_noise": ", ".join(f"{rate:g}" for rate in noise),
            "attenuation": ", ".join(f"{1 - 2 * rate:g}" for rate in noise),
            "group_separator": run.suite.data.group_separator or "",
            "left_out": left_out_notes(run)}


def _count_range(low: int, high: int) -> str:
    return f"{low}" if low == high else f"{low}–{high}"


def left_out_notes(run: RunResult) -> list[str]:
    """One phrase per subgroup left out of the bias amplification, e.g. ``identity=jewish: not in
    training (test n = 3)`` or ``identity=lesbian: too small (training n = 2, test n = 4; in 2 of 4
    cells)``."""
    notes = []
    for r in run.amplification_left_out.itertuples():
        counts = f"test n = {_count_range(r.test_min, r.test_max)}"
        if r.reason != "not in training":
            counts = f"training n = {_count_range(r.train_min, r.train_max)}, {counts}"
        where = "" if r.cells == r.of else f"; in {r.cells} of {r.of} cells"
        notes.append(f"{r.group}: {r.reason} ({counts}{where})")
    return notes


def bias_rows(run: RunResult) -> list[dict]:
    """Per group column x size x label noise x strategy: BiasAmp→ and Zhao's BiasAmp (against the
    clean training labels; against the noisy ones too where the cell has label noise), mean ±
    interval over seeds; and the demographic parity and equalized odds differences with the two
    groups they compare and Newcombe's within-cell 95% interval (mean of its ends over seeds),
    "too small" where fewer than two groups reach ``min_group_size``."""
    diag = run.diagnostics
    if diag.empty:
        return []
    columns = [c for c in run.suite.data.group_columns] or sorted(
        diag[diag["metric"] == "bias_amplification"]["group"].dropna().unique())
    final = diag[diag["checkpoint"] == "final"].merge(
        run.cells[["cell_id", "train_size", "label_noise", "strategy"]], on="cell_id")
    rows = []
    amplification = ("bias_amplification", "bias_amplification_zhao", "bias_amplification_zhao_noisy")
    parity = [f"{name}_difference{end}" for name in ("demographic_parity", "equalized_odds")
              for end in ("", "_low", "_high")]
    for column in columns:
        present = final[(final["metric"] == "bias_amplification") & (final["group"] == column)]
        keys = sorted({(r.train_size, r.label_noise, r.strategy) for r in present.itertuples()})
        seeds = seed_rows(run.over_seeds(amplification + tuple(parity), group=column), SEED_KEYS)
        for size, noise, strategy in keys:
            cell = final[(final["train_size"] == size) & (final["label_noise"] == noise)
                         & (final["strategy"] == strategy)]
            values = {m: fmt_row(seeds.get((size, noise, strategy, m))) for m in amplification}
            rows.append({"column": column, "size": int(size), "noise": f"{noise:g}", "strategy": strategy,
                         "directional": values["bias_amplification"],
                         "zhao": values["bias_amplification_zhao"],
                         "zhao_noisy": values["bias_amplification_zhao_noisy"],
                         "parity": [_parity_cell(cell, name, column, {m: seeds.get((size, noise, strategy, m))
                                                                      for m in parity})
                                    for name in ("demographic_parity", "equalized_odds")]})
    return rows


RATE_NAMES = {"selection_rate": "selection rate", "true_positive_rate": "TPR", "false_positive_rate": "FPR"}


def _parity_cell(cell: pd.DataFrame, name: str, column: str, seeds: dict) -> dict:
    """One size x noise x strategy's ``name`` difference (mean ± interval over the seeds where it
    is defined), Newcombe's interval (mean of its ends) and the pair of groups most often compared."""
    difference = cell[(cell["metric"] == f"{name}_difference") & (cell["group"] == column)]["value"]
    summary = seeds.get(f"{name}_difference")
    if summary is None or summary["n"] == 0:
        return {"difference": "too small" if len(difference) else "–", "interval": "–", "groups": ""}
    text = fmt_row(summary)
    if summary["n"] < len(difference):
        text += f" ({len(difference) - summary['n']} of {len(difference)} seeds too small)"
    low, high = (seeds.get(f"{name}_difference_{end}") or {"mean": np.nan} for end in ("low", "high"))
    pairs = []
    for _, part in cell[cell["group"].fillna("").str.startswith(f"{column}=")].groupby("cell_id"):
        ends = {r.metric: (str(r.group).split("=", 1)[1], r.op, r.value) for r in part.itertuples()
                if r.metric in (f"{name}_high_group", f"{name}_low_group")}
        if len(ends) == 2:
            (high_group, rate, high_rate), (low_group, _, low_rate) = (ends[f"{name}_{end}_group"]
                                                                       for end in ("high", "low"))
            relation = ">" if high_rate > low_rate else "="
            pairs.append(f"{high_group} {relation} {low_group}" + (
                "" if name == "demographic_parity" else f" ({RATE_NAMES.get(rate, rate)})"))
    groups = ""
    if pairs:
        common = pd.Series(pairs).value_counts()
        count = int(common.iloc[0])
        groups = common.index[0] + ("" if count == len(pairs) else f" ({count} of {len(pairs)} seeds)")
    return {"difference": text, "interval": mean_ends(low["mean"], high["mean"]), "groups": groups}


def counterfactual_rows(run: RunResult) -> list[dict]:
    """Per size x strategy: the flip rate pooled over seeds (flipped texts / swapped texts) with
    its Wilson 95% interval, the texts counted, the seeds' own rates, and the mean |Δ p|."""
    by = ("train_size", "strategy")
    seeds = seed_rows(run.over_seeds(["counterfactual_flip_rate", "counterfactual_abs_change"], by=by), by)
    rows = []
    for r in run.counterfactual_pooled.itertuples():
        summary = {m: seeds.get((r.train_size, r.strategy, m)) for m in ("counterfactual_flip_rate",
                                                                          "counterfactual_abs_change")}
        row = {"size": int(r.train_size), "strategy": r.strategy,
               "seeds": ", ".join(f"{x:.3f}" for x in r.rates),
               "change": fmt_row(summary["counterfactual_abs_change"])}
        if np.isnan(r.n):  # runs stored before the counts have none
            row.update(rate=fmt_row(summary["counterfactual_flip_rate"]), n="–")
        else:
            row.update(rate=f"{r.rate:.3f} [{r.low:.3f}, {r.high:.3f}]",
                       n=f"{int(r.k)} of {int(r.n)}" + ("" if r.seeds == 1 else
                                                       f" ({r.seeds} seeds × {r.texts:.0f} texts)"))
        rows.append(row)
    return rows


def membership_rows(run: RunResult) -> list[dict]:
    """Per size x strategy: the cross-fitted advantage (mean ± interval over seeds), the 95%
    interval of one cell averaged over seeds, Yeom's variant, the AUC and m (members, and as many
    non-members)."""
    metrics = ("membership_advantage", "membership_advantage_low", "membership_advantage_high",
               "membership_advantage_yeom", "membership_auc", "membership_n")
    rows = []
    present = run.final_rows("membership_advantage")
    by = ("train_size", "strategy")
    seeds = seed_rows(run.over_seeds(metrics, by=by), by)
    for size, strategy in sorted({(r.train_size, r.strategy) for r in present.itertuples()}):
        cell = {metric: seeds.get((size, strategy, metric)) for metric in metrics}
        counts = cell["membership_n"]["values"] if cell["membership_n"] else ()
        counts = [c for c in counts if np.isfinite(c)]
        m = "–" if not counts else (f"{int(min(counts))}" if min(counts) == max(counts)
                                    else f"{int(min(counts))}–{int(max(counts))}")
        low, high = (cell[f"membership_advantage_{end}"] for end in ("low", "high"))
        rows.append({"size": int(size), "strategy": strategy, "m": m,
                     "seeds": len(cell["membership_advantage"]["values"]),
                     "advantage": fmt_row(cell["membership_advantage"]),
                     "interval": "–" if low is None else mean_ends(low["mean"], high["mean"], "+.3f"),
                     "yeom": fmt_row(cell["membership_advantage_yeom"]),
                     "auc": fmt_row(cell["membership_auc"])})
    return rows


def group_rows(run: RunResult) -> list[dict]:
    metrics = ["accuracy", "selection_rate", "true_positive_rate", "false_positive_rate"]
    # a rate is NaN (stored as NULL) where its group had fewer than min_group_size examples,
    # positives (TPR) or negatives (FPR) in every seed
    return [{"size": int(r["train_size"]), "strategy": r["strategy"], "group": r["group"],
             "values": ["too small" if pd.isna(r.get(m)) else f"{r[m]:.3f}" for m in metrics]}
            for _, r in run.group_rates.iterrows()]

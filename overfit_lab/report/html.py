"""The self-contained HTML report of a run: jinja2 template, plotly with its JavaScript inlined.

The file makes no network request when viewed: plotly.js is embedded once, figures are JSON in
the page, and there are no web fonts or external styles. Every piece of text from the data, the
suite or the run goes through jinja2's autoescaping (tables) or is JSON-encoded with ``<``, ``>``
and ``&`` escaped (figures), so a dataset containing ``<script>`` cannot run anything.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from ..scores import ALL_SCORES, SCORES
from ..stats import BOOTSTRAP_MIN_SEEDS, mean_ci
from ..store import write_text_atomic
from . import figures

REPORT_NAME = "report.html"
EXAMPLES_SHOWN = 10
SUMMARY_SCORES = ("test_accuracy", "validation_accuracy", "gap_accuracy", "gap_loss", "worst_robustness_drop",
                  "bias_amplification", "ece", "membership_advantage", "mean_cka")


def write_report(run, output: str | Path | None = None) -> Path:
    """Render the run's report to ``output`` (default: ``report.html`` in the run directory)."""
    path = Path(output) if output is not None else Path(run.run_dir) / REPORT_NAME
    return write_text_atomic(path, render_report(run))


def render_report(run) -> str:
    """The report as one HTML string."""
    from plotly.offline import get_plotlyjs

    scores, summary, comparisons, curves = run.scores, run.summary, run.comparisons, run.learning_curves
    plots = {
        "curves": figures.learning_curves(run),
        "gap": figures.gap_vs_size(run, scores, curves),
        "heatmap": figures.heatmaps(run, summary),
        "robustness": figures.robustness_curves(run),
        "reliability": figures.reliability(run),
        "roc": figures.membership_roc(run),
        "drift": figures.drift(run),
        "spectral": figures.spectral(run),
    }
    context = {
        "run": run,
        "title": run.suite.name,
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "headline": _headline(run, scores, comparisons),
        "summary": _summary_rows(run, summary),
        "summary_columns": [SCORES[m].label for m in SUMMARY_SCORES if m in set(summary.get("metric", []))],
        "comparisons": _comparison_rows(comparisons),
        "reference": run.suite.reference_strategy,
        "statistics": run.suite.statistics,
        "ci_method": _ci_method(run),
        "curves": _curve_rows(curves),
        "robustness_headline": _robustness_headline(run),
        "robustness_examples": _examples(run, "robustness"),
        "counterfactual_examples": _examples(run, "counterfactual"),
        "bias": _bias_rows(run),
        "bias_settings": _bias_settings(run),
        "groups": _group_rows(run),
        "counterfactual": _counterfactual_rows(run),
        "membership": _membership_rows(run),
        "membership_source": run.membership_nonmembers,
        "failed": run.cells[run.cells["status"] != "finished"][["cell_id", "reason"]].to_dict("records"),
        "suite_json": run.suite.to_json(),
        "environment": _environment(run),
        "plots": {name: _figure_json(fig) for name, fig in plots.items() if fig is not None},
        "plotly_js": get_plotlyjs(),
    }
    return _templates().get_template("report.html.j2").render(**context)


def _templates() -> Environment:
    """The package's templates, every value autoescaped."""
    return Environment(loader=PackageLoader("overfit_lab", "report/templates"),
                       autoescape=select_autoescape(default=True, default_for_string=True))


def _figure_json(fig) -> str:
    # JSON inside <script>: escape what could close the tag or start markup
    text = fig.to_json()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _fmt(values, metric: str | None = None) -> str:
    """Mean over seeds with its interval (clipped to ``metric``'s range), as :func:`_fmt_interval`."""
    x = np.asarray(values, dtype=float)
    ci = mean_ci(x)
    low, high = ci.low, ci.high
    if metric in ALL_SCORES and not np.isnan(low):
        low, high = np.clip([low, high], *ALL_SCORES[metric].bounds)
    return _fmt_interval(ci.mean, low, high, x)


def _ci_method(run) -> str:
    seeds = len(run.suite.grid.seeds)
    if seeds < 2:
        return "one seed: no confidence intervals and no significance can be claimed"
    if seeds == 2:
        return ("mean, and the two seeds' values in brackets: a t interval over 2 seeds has 1 degree "
                "of freedom (t = 12.71, half-width 12.7 × half their difference) and says little")
    method = "BCa bootstrap" if seeds >= BOOTSTRAP_MIN_SEEDS else "Student's t"
    return (f"mean ± half-width of the 95% {method} interval over {seeds} seeds; [low, high] where "
            "the interval is not symmetric (BCa, or cut at the metric's range)")


def _headline(run, scores: pd.DataFrame, comparisons: pd.DataFrame) -> dict:
    """What a reader needs first: who wins where (with significance), the worst overfitting."""
    reference = run.suite.reference_strategy
    per_size = []
    if not scores.empty:
        for size in sorted(scores["train_size"].unique()):
            rows = pd.DataFrame() if comparisons.empty else comparisons[
                (comparisons["train_size"] == size) & (comparisons["metric"] == "test_accuracy")]
            better = rows[rows["verdict"] == "better"] if not rows.empty else rows
            worse = rows[rows["verdict"] == "worse"] if not rows.empty else rows
            if run.audit is not None:
                audit = scores.iloc[0]
                text = (f"audit of an existing model (no training): training vs held-out "
                        f"{run.audit.held_out} data, accuracy gap {audit['gap_accuracy']:.3f}, "
                        f"loss gap {audit['gap_loss']:.3f}")
                kind = "bad" if audit["gap_accuracy"] > run.suite.verdict.accuracy_gap else "neutral"
            elif rows.empty:
                text, kind = "only one strategy: nothing to compare", "neutral"
            elif (rows["verdict"] == "one seed: no test").all():
                text, kind = "one seed: no significance can be claimed", "neutral"
            elif not better.empty:
                best = better.sort_values("mean_difference", ascending=False).iloc[0]
                text = (f"{best.strategy} beats {reference} on test accuracy by {best.mean_difference:+.3f} "
                        f"(adjusted p = {best.p_adjusted:.3g})")
                others = [s for s in better["strategy"] if s != best.strategy]
                if others:
                    text += f"; also better: {', '.join(others)}"
                kind = "good"
            else:
                text = f"no strategy is significantly better than {reference} on test accuracy"
                kind = "neutral"
            if not worse.empty:
                text += f"; significantly worse: {', '.join(worse['strategy'])}"
            per_size.append({"size": int(size), "text": text, "kind": kind})
    worst = None
    general = run.generalization
    if not general.empty:
        last = general[general["epochs"] == general["epochs"].max()]
        row = last.loc[last["gap_accuracy"].idxmax()]
        worst = {"cell": row.cell_id, "gap": row.gap_accuracy, "verdict": row.verdict, "reason": row.reason,
                 "overfit": int((last["verdict"] == "overfit").sum()), "cells": len(last)}
    cells = run.cells
    power = _power_note(comparisons, run.suite.statistics.alpha)
    return {"per_size": per_size, "worst": worst, "power": power,
            "finished": int((cells["status"] == "finished").sum()),
            "failed": int((cells["status"] != "finished").sum()), "total": len(cells)}


def _power_note(comparisons: pd.DataFrame, alpha: float) -> dict | None:
    """Why nothing is significant: how many p-values were corrected together, and the closest call.

    The correction multiplies the smallest p-value by the number of tested comparisons, so with few
    seeds and many metrics even a consistent difference may not survive it.
    """
    tested = comparisons.dropna(subset=["p_adjusted"]) if not comparisons.empty else comparisons
    if tested.empty or (tested["p_adjusted"] < alpha).any():
        return None
    closest = tested.loc[tested["t_pvalue"].idxmin()]
    return {"tested": len(tested), "seeds": int(tested["n"].max()), "p_adjusted": _p(closest.p_adjusted),
            "t_p": _p(closest.t_pvalue), "strategy": closest.strategy, "size": int(closest.train_size),
            "metric": SCORES[closest.metric].label, "difference": f"{closest.mean_difference:+.3f}"}


def _summary_rows(run, summary: pd.DataFrame) -> list[dict]:
    if summary.empty:
        return []
    order = {s: i for i, s in enumerate(run.suite.grid.strategies)}
    rows = []
    for (size, noise, strategy), part in sorted(summary.groupby(["train_size", "label_noise", "strategy"]),
                                                key=lambda kv: (kv[0][0], kv[0][1], order.get(kv[0][2], 99))):
        values = part.set_index("metric")
        cells = [_fmt_row(values.loc[m]) for m in SUMMARY_SCORES if m in values.index]
        rows.append({"size": int(size), "noise": noise, "strategy": strategy, "values": cells})
    return rows


def _fmt_row(row) -> str:
    return _fmt_interval(row["mean"], row["low"], row["high"], row.get("values"))


def _comparison_rows(comparisons: pd.DataFrame) -> list[dict]:
    if comparisons.empty:
        return []
    rows = []
    order = {name: i for i, name in enumerate(SCORES)}
    ordered = comparisons.assign(order=comparisons["metric"].map(order))
    for r in ordered.sort_values(["train_size", "label_noise", "order", "strategy"]).itertuples():
        ci = "" if np.isnan(r.low) else f" [{r.low:+.3f}, {r.high:+.3f}]"
        rows.append({"size": int(r.train_size), "metric": SCORES[r.metric].label, "strategy": r.strategy,
                     "mean": f"{r.mean:.3f}", "reference": f"{r.reference_mean:.3f}",
                     "difference": f"{r.mean_difference:+.3f}{ci}", "t_p": _p(r.t_pvalue),
                     "wilcoxon_p": _p(r.wilcoxon_pvalue), "effect": "–" if np.isnan(r.effect_size)
                     else f"{r.effect_size:+.2f}", "p_adjusted": _p(r.p_adjusted), "verdict": r.verdict,
                     "n": int(r.n)})
    return rows


def _p(value: float) -> str:
    return "–" if np.isnan(value) else f"{value:.3g}"


def _curve_rows(curves: pd.DataFrame) -> list[dict]:
    rows = []
    for r in curves.itertuples() if not curves.empty else []:
        if r.status == "estimated":
            high = "more than the cap" if np.isinf(r.estimate_high) else f"{r.estimate_high:,.0f}"
            size = f"≈ {r.estimate:,.0f} examples (95% interval {r.estimate_low:,.0f} to {high})"
        elif r.status == "already below at the smallest size":
            size = f"already below at the smallest size ({r.estimate:,.0f})"
        else:
            size = r.status
        fit = "–" if not np.isfinite(r.a) else f"{r.a:.3g} · n^(−{r.b:.3g})"
        rows.append({"strategy": r.strategy, "fit": fit, "size": size})
    return rows


def _label(run, value) -> str:
    names = run.meta.get("label_names") or []
    return names[int(value)] if 0 <= int(value) < len(names) else str(int(value))


def _mean_ends(low: pd.Series, high: pd.Series, spec: str = ".3f") -> str:
    """A within-cell interval averaged over seeds: the mean of each end, "–" without one."""
    return "–" if low.empty else f"[{low.mean():{spec}}, {high.mean():{spec}}]"


def _robustness_headline(run) -> dict:
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
    worst = _per_cell(run, "worst_robustness_drop")
    order = {name: i for i, name in enumerate(run.suite.grid.strategies)}
    rows = []
    for size, strategy in sorted({(r.train_size, r.strategy) for r in worst.itertuples()},
                                 key=lambda key: (key[0], order.get(key[1], len(order)))):
        cells = worst[(worst["train_size"] == size) & (worst["strategy"] == strategy)]
        low, high, n = (_cell_values(run, f"worst_robustness_drop_{end}", None, size, strategy)
                        for end in ("low", "high", "n"))
        ops = pd.Series([f"{r.op} at {r.severity:g}" for r in cells.itertuples()]).value_counts()
        rows.append({"size": int(size), "strategy": strategy,
                     "drop": _fmt(cells["value"], "worst_robustness_drop"),
                     "ops": ", ".join(k if c == 1 else f"{k} (×{c})" for k, c in ops.items()),
                     "interval": _mean_ends(low, high),
                     "n": "–" if n.empty else f"{n.mean():.0f}"})
    return {"severities": severities, "rows": rows}


def _examples(run, kind: str) -> list[dict]:
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


def _per_cell(run, metric: str, group: str | None = None) -> pd.DataFrame:
    diag = run.diagnostics
    rows = diag[(diag["checkpoint"] == "final") & (diag["metric"] == metric)]
    if group is not None:
        rows = rows[rows["group"] == group]
    return rows.merge(run.cells[["cell_id", "train_size", "strategy"]], on="cell_id")


def _cell_values(run, metric: str, group: str | None, size: int, strategy: str) -> pd.Series:
    rows = _per_cell(run, metric, group)
    return rows[(rows["train_size"] == size) & (rows["strategy"] == strategy)]["value"]


def _bias_settings(run) -> dict:
    """What the bias table's note needs: the least group size and the label-noise rates > 0."""
    spec = run.suite.diagnostics.bias
    noise = sorted(rate for rate in run.suite.grid.label_noise if rate > 0)
    return {"min_group_size": spec.min_group_size, "intervals": spec.intervals,
            "label_noise": ", ".join(f"{rate:g}" for rate in noise),
            "attenuation": ", ".join(f"{1 - 2 * rate:g}" for rate in noise)}


def _bias_rows(run) -> list[dict]:
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
    for column in columns:
        present = final[(final["metric"] == "bias_amplification") & (final["group"] == column)]
        keys = sorted({(r.train_size, r.label_noise, r.strategy) for r in present.itertuples()})
        for size, noise, strategy in keys:
            cell = final[(final["train_size"] == size) & (final["label_noise"] == noise)
                         & (final["strategy"] == strategy)]
            values = [_fmt(cell.loc[(cell["metric"] == m) & (cell["group"] == column), "value"], m)
                      for m in amplification]
            rows.append({"column": column, "size": int(size), "noise": f"{noise:g}", "strategy": strategy,
                         "values": values, "parity": [_parity_cell(cell, name, column)
                                                      for name in ("demographic_parity", "equalized_odds")]})
    return rows


RATE_NAMES = {"selection_rate": "selection rate", "true_positive_rate": "TPR", "false_positive_rate": "FPR"}


def _parity_cell(cell: pd.DataFrame, name: str, column: str) -> dict:
    """One size x noise x strategy's ``name`` difference (mean ± interval over the seeds where it
    is defined), Newcombe's interval (mean of its ends) and the pair of groups most often compared."""
    def values(metric: str) -> pd.Series:
        return cell[(cell["metric"] == metric) & (cell["group"] == column)]["value"]

    difference = values(f"{name}_difference")
    defined = difference.dropna()
    if defined.empty:
        return {"difference": "too small" if len(difference) else "–", "interval": "–", "groups": ""}
    text = _fmt(defined, f"{name}_difference")
    if len(defined) < len(difference):
        text += f" ({len(difference) - len(defined)} of {len(difference)} seeds too small)"
    low, high = values(f"{name}_difference_low").dropna(), values(f"{name}_difference_high").dropna()
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
    return {"difference": text, "interval": _mean_ends(low, high),
            "groups": groups}


def _counterfactual_rows(run) -> list[dict]:
    """Per size x strategy: the flip rate pooled over seeds (flipped texts / swapped texts) with
    its Wilson 95% interval, the texts counted, the seeds' own rates, and the mean |Δ p|."""
    from ..diagnostics.bias import wilson_interval

    flips = _per_cell(run, "counterfactual_flip_rate")
    rows = []
    for size, strategy in sorted({(r.train_size, r.strategy) for r in flips.itertuples()}):
        rates = _cell_values(run, "counterfactual_flip_rate", None, size, strategy)
        counts = _cell_values(run, "counterfactual_n", None, size, strategy)
        row = {"size": int(size), "strategy": strategy, "seeds": ", ".join(f"{r:.3f}" for r in rates),
               "change": _fmt(_cell_values(run, "counterfactual_abs_change", None, size, strategy),
                              "counterfactual_abs_change")}
        if len(counts) == len(rates) and len(rates):  # runs stored before the counts have none
            k, n = int(np.round(rates.to_numpy() * counts.to_numpy()).sum()), int(counts.sum())
            low, high = wilson_interval(k, n)
            row.update(rate=f"{k / n:.3f} [{float(low):.3f}, {float(high):.3f}]",
                       n=f"{k} of {n}" + ("" if len(counts) == 1 else
                                          f" ({len(counts)} seeds × {counts.mean():.0f} texts)"))
        else:
            row.update(rate=_fmt(rates, "counterfactual_flip_rate"), n="–")
        rows.append(row)
    return rows


def _membership_rows(run) -> list[dict]:
    """Per size x strategy: the cross-fitted advantage (mean ± interval over seeds), the 95%
    interval of one cell averaged over seeds, Yeom's variant, the AUC and m (members, and as many
    non-members)."""
    metrics = ("membership_advantage", "membership_advantage_low", "membership_advantage_high",
               "membership_advantage_yeom", "membership_auc", "membership_n")
    rows = []
    present = _per_cell(run, "membership_advantage")
    for size, strategy in sorted({(r.train_size, r.strategy) for r in present.itertuples()}):
        cell = {metric: _cell_values(run, metric, None, size, strategy) for metric in metrics}
        low, high, counts = (cell[f"membership_{k}"] for k in ("advantage_low", "advantage_high", "n"))
        m = "–" if counts.empty else (f"{int(counts.min())}" if counts.min() == counts.max()
                                      else f"{int(counts.min())}–{int(counts.max())}")
        rows.append({"size": int(size), "strategy": strategy, "m": m,
                     "seeds": len(cell["membership_advantage"]),
                     "advantage": _fmt(cell["membership_advantage"], "membership_advantage"),
                     "interval": _mean_ends(low, high, "+.3f"),
                     "yeom": _fmt(cell["membership_advantage_yeom"], "membership_advantage_yeom"),
                     "auc": _fmt(cell["membership_auc"], "membership_auc")})
    return rows


def _group_rows(run) -> list[dict]:
    diag = run.diagnostics
    metrics = ["accuracy", "selection_rate", "true_positive_rate", "false_positive_rate"]
    rows = diag[(diag["checkpoint"] == "final") & diag["metric"].isin(metrics) & diag["group"].notna()]
    if rows.empty:
        return []
    rows = rows.merge(run.cells[["cell_id", "train_size", "strategy"]], on="cell_id")
    table = rows.pivot_table(index=["train_size", "strategy", "group"], columns="metric", values="value",
                             aggfunc="mean").reset_index()
    # a rate is NaN (stored as NULL) where its group had fewer than min_group_size examples,
    # positives (TPR) or negatives (FPR) in every seed
    return [{"size": int(r["train_size"]), "strategy": r["strategy"], "group": r["group"],
             "values": ["too small" if pd.isna(r.get(m)) else f"{r[m]:.3f}" for m in metrics]}
            for _, r in table.iterrows()]


def _environment(run) -> dict:
    env = dict(run.environment)
    cells = run.cells
    timing = {}
    for key in ("train_s", "eval_s", "diagnostics_s", "wall_s"):
        if key in cells:
            timing[key] = f"{cells[key].sum():.1f} s"
    return {"facts": {k: v for k, v in env.items() if k != "versions"}, "versions": env.get("versions", {}),
            "timing": timing, "json": json.dumps(env, indent=2)}


def write_comparison(run_a, run_b, frame: pd.DataFrame, output: str | Path) -> Path:
    """Write the side-by-side of two runs (``frame`` from
    :func:`overfit_lab.checks.compare_run_scores`) as one self-contained HTML file."""
    kinds = {"improved": "good", "regressed": "bad", "no change": "neutral", "one seed: no test": "neutral"}
    rows, lines = [], {"improved": [], "regressed": []}
    for r in frame.itertuples():
        label = SCORES[r.metric].label
        rows.append({"size": int(r.train_size), "strategy": r.strategy, "score": label,
                     "a": _fmt_interval(r.before_mean, r.before_low, r.before_high),
                     "b": _fmt_interval(r.after_mean, r.after_low, r.after_high),
                     "diff": f"{r.difference:+.3f}"
                     + ("" if np.isnan(r.low) else f" [{r.low:+.3f}, {r.high:+.3f}]"),
                     "test": r.test, "p": _p(r.p_adjusted), "verdict": r.verdict, "kind": kinds[r.verdict]})
        if r.verdict in lines:
            lines[r.verdict].append(f"{label} at {int(r.train_size)} examples, {r.strategy}: "
                                    f"{r.before_mean:.3f} → {r.after_mean:.3f}")
    counts = {v: int((frame["verdict"] == v).sum()) if not frame.empty else 0 for v in kinds}
    counts["untested"] = counts.pop("one seed: no test")
    spec = run_b.suite.statistics
    html = _templates().get_template("compare.html.j2").render(
        name_a=run_a.suite.name, name_b=run_b.suite.name, dir_a=str(run_a.run_dir), dir_b=str(run_b.run_dir),
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), rows=rows, counts=counts,
        regressed=lines["regressed"], improved=lines["improved"],
        method=(f"Paired t-test where both runs have the same seeds, Welch's t-test otherwise; p-values "
                f"{spec.correction}-corrected across the table; improved/regressed needs p < {spec.alpha:g}; "
                "with one seed a side no test is possible and no change is called either."))
    return write_text_atomic(output, html)


def _fmt_interval(mean: float, low: float, high: float, values=None, digits: int = 3) -> str:
    """``mean ± half-width``, or ``mean [low, high]`` where the interval is not symmetric (BCa, or
    clipped to the metric's range). With exactly two seeds, their values instead: a t interval
    over two values has 1 degree of freedom (t = 12.71) and says little."""
    if np.isnan(mean):
        return "–"
    text = f"{mean:.{digits}f}"
    finite = [v for v in (values if values is not None else ()) if np.isfinite(v)]
    if len(finite) == 2:
        return text + f" (seeds {finite[0]:.{digits}f}, {finite[1]:.{digits}f})"
    if np.isnan(low):
        return text
    if abs((high - mean) - (mean - low)) > 10.0 ** -digits:
        return text + f" [{low:.{digits}f}, {high:.{digits}f}]"
    return text + f" ± {(high - low) / 2:.{digits}f}"

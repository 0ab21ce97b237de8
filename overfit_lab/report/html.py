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
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from ..analysis import SEED_GROUPS as SEED_KEYS
from ..scores import SCORES
from ..store import write_text_atomic
from . import figures
from .formatting import interval, mean_ends, p_value, signed_interval

if TYPE_CHECKING:
    from ..analysis import RunResult

__all__ = ["render_report", "write_comparison", "write_report"]

REPORT_NAME = "report.html"
EXAMPLES_SHOWN = 10
SUMMARY_SCORES = ("test_accuracy", "validation_accuracy", "gap_accuracy", "gap_loss", "worst_robustness_drop",
                  "bias_amplification", "ece", "membership_advantage", "mean_cka")


def write_report(run: RunResult, output: str | Path | None = None) -> Path:
    """Render the run's report to ``output`` (default: ``report.html`` in the run directory)."""
    path = Path(output) if output is not None else Path(run.run_dir) / REPORT_NAME
    return write_text_atomic(path, render_report(run))


def render_report(run: RunResult) -> str:
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
        "headline": _headline(run),
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


def _fmt_row(row) -> str:
    """An :meth:`~overfit_lab.analysis.RunResult.over_seeds` row as the tables show it."""
    return "–" if row is None else interval(row["mean"], row["low"], row["high"], row["values"])


def _seed_rows(frame: pd.DataFrame, keys: tuple[str, ...]) -> dict:
    """An ``over_seeds`` frame by (``keys``..., metric)."""
    return {(*(getattr(r, k) for k in keys), r.metric): r._asdict() for r in frame.itertuples(index=False)}


def _ci_method(run: RunResult) -> str:
    method, seeds = run.interval_method, len(run.suite.grid.seeds)
    if method == "none":
        return "one seed: no confidence intervals and no significance can be claimed"
    if method == "two seeds":
        return ("mean, and the two seeds' values in brackets: a t interval over 2 seeds has 1 degree "
                "of freedom (t = 12.71, half-width 12.7 × half their difference) and says little")
    name = "BCa bootstrap" if method == "bootstrap" else "Student's t"
    return (f"mean ± half-width of the 95% {name} interval over {seeds} seeds; [low, high] where "
            "the interval is not symmetric (BCa, or cut at the metric's range)")


def _headline(run: RunResult) -> dict:
    """The analysis' headline (who wins where, the worst overfitting, the power note) in words."""
    facts, reference = run.headline, run.suite.reference_strategy
    per_size = []
    for item in facts["per_size"]:
        status = item["status"]
        if status == "audit":
            audited = item["scores"]
            text = (f"audit of an existing model (no training): training vs held-out "
                    f"{run.audit.held_out} data, accuracy gap {audited['gap_accuracy']:.3f}, "
                    f"loss gap {audited['gap_loss']:.3f}")
            kind = "bad" if item["overfit"] else "neutral"
        elif status == "one strategy":
            text, kind = "only one strategy: nothing to compare", "neutral"
        elif status == "one seed":
            text, kind = "one seed: no significance can be claimed", "neutral"
        elif status == "better":
            best, *others = item["better"]
            text = (f"{best.strategy} beats {reference} on test accuracy by {best.mean_difference:+.3f} "
                    f"(adjusted p = {best.p_adjusted:.3g})")
            if others:
                text += f"; also better: {', '.join(r.strategy for r in others)}"
            kind = "good"
        else:
            text, kind = f"no strategy is significantly better than {reference} on test accuracy", "neutral"
        if item["worse"]:
            text += f"; significantly worse: {', '.join(item['worse'])}"
        per_size.append({"size": item["size"], "text": text, "kind": kind})
    power = None
    if facts["power"] is not None:
        closest = facts["power"]["closest"]
        power = {"tested": facts["power"]["tested"], "seeds": facts["power"]["seeds"],
                 "p_adjusted": p_value(closest.p_adjusted), "t_p": p_value(closest.t_pvalue),
                 "strategy": closest.strategy, "size": int(closest.train_size),
                 "metric": SCORES[closest.metric].label, "difference": f"{closest.mean_difference:+.3f}"}
    return {**facts, "per_size": per_size, "power": power}


def _summary_rows(run: RunResult, summary: pd.DataFrame) -> list[dict]:
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


def _comparison_rows(comparisons: pd.DataFrame) -> list[dict]:
    if comparisons.empty:
        return []
    rows = []
    order = {name: i for i, name in enumerate(SCORES)}
    ordered = comparisons.assign(order=comparisons["metric"].map(order))
    for r in ordered.sort_values(["train_size", "label_noise", "order", "strategy"]).itertuples():
        rows.append({"size": int(r.train_size), "metric": SCORES[r.metric].label, "strategy": r.strategy,
                     "mean": f"{r.mean:.3f}", "reference": f"{r.reference_mean:.3f}",
                     "difference": signed_interval(r.mean_difference, r.low, r.high),
                     "t_p": p_value(r.t_pvalue), "wilcoxon_p": p_value(r.wilcoxon_pvalue),
                     "effect": p_value(r.effect_size, spec="+.2f"), "p_adjusted": p_value(r.p_adjusted),
                     "verdict": r.verdict, "n": int(r.n)})
    return rows


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


def _label(run: RunResult, value) -> str:
    names = run.meta.get("label_names") or []
    return names[int(value)] if 0 <= int(value) < len(names) else str(int(value))


def _robustness_headline(run: RunResult) -> dict:
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
    by = ("train_size", "strategy")
    seeds = _seed_rows(run.over_seeds([f"worst_robustness_drop{end}" for end in ("", "_low", "_high", "_n")],
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
                     "drop": _fmt_row(seeds.get((size, strategy, "worst_robustness_drop"))),
                     "ops": ", ".join(k if c == 1 else f"{k} (×{c})" for k, c in ops.items()),
                     "interval": mean_ends(low, high),
                     "n": "–" if np.isnan(n) else f"{n:.0f}"})
    return {"severities": severities, "rows": rows}


def _examples(run: RunResult, kind: str) -> list[dict]:
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


def _per_cell(run: RunResult, metric: str, group: str | None = None) -> pd.DataFrame:
    diag = run.diagnostics
    rows = diag[(diag["checkpoint"] == "final") & (diag["metric"] == metric)]
    if group is not None:
        rows = rows[rows["group"] == group]
    return rows.merge(run.cells[["cell_id", "train_size", "strategy"]], on="cell_id")


def _bias_settings(run: RunResult) -> dict:
    """What the bias table's note needs: the least group size and the label-noise rates > 0."""
    spec = run.suite.diagnostics.bias
    noise = sorted(rate for rate in run.suite.grid.label_noise if rate > 0)
    return {"min_group_size": spec.min_group_size, "intervals": spec.intervals,
            "label_noise": ", ".join(f"{rate:g}" for rate in noise),
            "attenuation": ", ".join(f"{1 - 2 * rate:g}" for rate in noise)}


def _bias_rows(run: RunResult) -> list[dict]:
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
        seeds = _seed_rows(run.over_seeds(amplification + tuple(parity), group=column), SEED_KEYS)
        for size, noise, strategy in keys:
            cell = final[(final["train_size"] == size) & (final["label_noise"] == noise)
                         & (final["strategy"] == strategy)]
            values = [_fmt_row(seeds.get((size, noise, strategy, m))) for m in amplification]
            rows.append({"column": column, "size": int(size), "noise": f"{noise:g}", "strategy": strategy,
                         "values": values,
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
    text = _fmt_row(summary)
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


def _counterfactual_rows(run: RunResult) -> list[dict]:
    """Per size x strategy: the flip rate pooled over seeds (flipped texts / swapped texts) with
    its Wilson 95% interval, the texts counted, the seeds' own rates, and the mean |Δ p|."""
    by = ("train_size", "strategy")
    seeds = _seed_rows(run.over_seeds(["counterfactual_flip_rate", "counterfactual_abs_change"], by=by), by)
    rows = []
    for r in run.counterfactual_pooled.itertuples():
        summary = {m: seeds.get((r.train_size, r.strategy, m)) for m in ("counterfactual_flip_rate",
                                                                          "counterfactual_abs_change")}
        row = {"size": int(r.train_size), "strategy": r.strategy,
               "seeds": ", ".join(f"{x:.3f}" for x in r.rates),
               "change": _fmt_row(summary["counterfactual_abs_change"])}
        if np.isnan(r.n):  # runs stored before the counts have none
            row.update(rate=_fmt_row(summary["counterfactual_flip_rate"]), n="–")
        else:
            row.update(rate=f"{r.rate:.3f} [{r.low:.3f}, {r.high:.3f}]",
                       n=f"{int(r.k)} of {int(r.n)}" + ("" if r.seeds == 1 else
                                                       f" ({r.seeds} seeds × {r.texts:.0f} texts)"))
        rows.append(row)
    return rows


def _membership_rows(run: RunResult) -> list[dict]:
    """Per size x strategy: the cross-fitted advantage (mean ± interval over seeds), the 95%
    interval of one cell averaged over seeds, Yeom's variant, the AUC and m (members, and as many
    non-members)."""
    metrics = ("membership_advantage", "membership_advantage_low", "membership_advantage_high",
               "membership_advantage_yeom", "membership_auc", "membership_n")
    rows = []
    present = _per_cell(run, "membership_advantage")
    by = ("train_size", "strategy")
    seeds = _seed_rows(run.over_seeds(metrics, by=by), by)
    for size, strategy in sorted({(r.train_size, r.strategy) for r in present.itertuples()}):
        cell = {metric: seeds.get((size, strategy, metric)) for metric in metrics}
        counts = cell["membership_n"]["values"] if cell["membership_n"] else ()
        counts = [c for c in counts if np.isfinite(c)]
        m = "–" if not counts else (f"{int(min(counts))}" if min(counts) == max(counts)
                                    else f"{int(min(counts))}–{int(max(counts))}")
        low, high = (cell[f"membership_advantage_{end}"] for end in ("low", "high"))
        rows.append({"size": int(size), "strategy": strategy, "m": m,
                     "seeds": len(cell["membership_advantage"]["values"]),
                     "advantage": _fmt_row(cell["membership_advantage"]),
                     "interval": "–" if low is None else mean_ends(low["mean"], high["mean"], "+.3f"),
                     "yeom": _fmt_row(cell["membership_advantage_yeom"]),
                     "auc": _fmt_row(cell["membership_auc"])})
    return rows


def _group_rows(run: RunResult) -> list[dict]:
    metrics = ["accuracy", "selection_rate", "true_positive_rate", "false_positive_rate"]
    # a rate is NaN (stored as NULL) where its group had fewer than min_group_size examples,
    # positives (TPR) or negatives (FPR) in every seed
    return [{"size": int(r["train_size"]), "strategy": r["strategy"], "group": r["group"],
             "values": ["too small" if pd.isna(r.get(m)) else f"{r[m]:.3f}" for m in metrics]}
            for _, r in run.group_rates.iterrows()]


def _environment(run: RunResult) -> dict:
    env = dict(run.environment)
    cells = run.cells
    timing = {}
    for key in ("train_s", "eval_s", "diagnostics_s", "wall_s"):
        if key in cells:
            timing[key] = f"{cells[key].sum():.1f} s"
    return {"facts": {k: v for k, v in env.items() if k != "versions"}, "versions": env.get("versions", {}),
            "timing": timing, "json": json.dumps(env, indent=2)}


def write_comparison(run_a: RunResult, run_b: RunResult, frame: pd.DataFrame, output: str | Path) -> Path:
    """Write the side-by-side of two runs (``frame`` from
    :func:`overfit_lab.checks.compare_run_scores`) as one self-contained HTML file."""
    kinds = {"improved": "good", "regressed": "bad", "no change": "neutral", "one seed: no test": "neutral"}
    rows, lines = [], {"improved": [], "regressed": []}
    for r in frame.itertuples():
        label = SCORES[r.metric].label
        rows.append({"size": int(r.train_size), "strategy": r.strategy, "score": label,
                     "a": interval(r.before_mean, r.before_low, r.before_high),
                     "b": interval(r.after_mean, r.after_low, r.after_high),
                     "diff": signed_interval(r.difference, r.low, r.high),
                     "test": r.test, "p": p_value(r.p_adjusted), "verdict": r.verdict,
                     "kind": kinds[r.verdict]})
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

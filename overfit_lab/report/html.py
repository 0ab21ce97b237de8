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

from ..scores import ALL_SCORES, SCORES
from ..store import write_text_atomic
from . import figures, sections, sections_data, sections_lm
from .formatting import interval, p_value, signed_interval
from .sections import fmt_row

if TYPE_CHECKING:
    from ..analysis import RunResult

__all__ = ["render_report", "write_comparison", "write_report"]

REPORT_NAME = "report.html"
SUMMARY_SCORES = {
    "sequence-classification": ("test_accuracy", "validation_accuracy", "gap_accuracy", "gap_loss",
                                "worst_robustness_drop", "bias_amplification", "ece", "membership_advantage",
                                "mean_cka"),
    "causal-lm": ("test_perplexity", "perplexity_ratio", "test_accuracy", "gap_loss",
                  "worst_perplexity_change", "forgetting_ratio", "membership_advantage",
                  "extraction_advantage", "mean_cka"),
}
"""The scores of the report's summary table, per task type."""


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
        "datamap": figures.data_map(run),
    }
    context = {
        "run": run,
        "title": run.suite.name,
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "headline": _headline(run),
        "summary": _summary_rows(run, summary),
        "summary_columns": [SCORES[m].label for m in SUMMARY_SCORES[run.task.name]
                            if m in set(summary.get("metric", []))],
        "comparisons": _comparison_rows(comparisons),
        "reference": run.suite.reference_strategy,
        "statistics": run.suite.statistics,
        "ci_method": _ci_method(run),
        "curves": _curve_rows(curves),
        "robustness_headline": sections.robustness_headline(run),
        "robustness_examples": sections.examples(run, "robustness"),
        "counterfactual_examples": sections.examples(run, "counterfactual"),
        "bias": sections.bias_rows(run),
        "bias_settings": sections.bias_settings(run),
        "groups": sections.group_rows(run),
        "counterfactual": sections.counterfactual_rows(run),
        "membership": sections.membership_rows(run),
        "membership_source": run.membership_nonmembers,
        "language": sections_lm.language_rows(run) if run.task.name == "causal-lm" else [],
        "perplexity_changes": sections_lm.perplexity_change_rows(run) if run.task.name == "causal-lm" else [],
        "skipped": run.task.skipped,
        "trainer_run": run.trainer_run,
        "slices": sections_data.slice_rows(run),
        "slice_examples": sections_data.slice_examples(run),
        "slice_settings": run.suite.diagnostics.slices,
        "slices_tested": sections_data.slices_tested(run),
        "classes": sections_data.class_rows(run),
        "temperature": sections_data.calibration_rows(run),
        "dynamics": sections_data.dynamics_rows(run),
        "mislabeled": sections_data.mislabeled_examples(run),
        "failed": run.cells[run.cells["status"] != "finished"][["cell_id", "reason"]].to_dict("records"),
        "suite_json": run.suite.to_json(),
        "leakage": run.leakage.lines(),
        "diagnostic_failures": run.diagnostic_failures.to_dict("records"),
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
    quality = SCORES[facts["quality"]].description.split(" (")[0]
    per_size = []
    for item in facts["per_size"]:
        status = item["status"]
        if status == "audit":
            audited = item["scores"]
            text = (f"audit of an existing model (no training): training vs held-out "
                    f"{run.audit.held_out} data, {ALL_SCORES['gap_accuracy'].description} "
                    f"{audited['gap_accuracy']:.3f}, loss gap {audited['gap_loss']:.3f}")
            if "perplexity_ratio" in audited:
                text += f", perplexity ratio {audited['perplexity_ratio']:.3f}"
            kind = "bad" if item["overfit"] else "neutral"
        elif status == "one strategy":
            text, kind = "only one strategy: nothing to compare", "neutral"
        elif status == "one seed":
            text, kind = "one seed: no significance can be claimed", "neutral"
        elif status == "better":
            best, *others = item["better"]
            text = (f"{best.strategy} beats {reference} on {quality} by {best.mean_difference:+.3f} "
                    f"(adjusted p = {best.p_adjusted:.3g})")
            if others:
                text += f"; also better: {', '.join(r.strategy for r in others)}"
            kind = "good"
        else:
            text, kind = f"no strategy is significantly better than {reference} on {quality}", "neutral"
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
    worst = facts["worst"]
    if worst is not None:
        worst = {**worst, "gap_label": ALL_SCORES[worst["gap_name"]].description}
    return {**facts, "per_size": per_size, "power": power, "worst": worst}


def _summary_rows(run: RunResult, summary: pd.DataFrame) -> list[dict]:
    if summary.empty:
        return []
    order = {s: i for i, s in enumerate(run.suite.grid.strategies)}
    rows = []
    for (size, noise, strategy), part in sorted(summary.groupby(["train_size", "label_noise", "strategy"]),
                                                key=lambda kv: (kv[0][0], kv[0][1], order.get(kv[0][2], 99))):
        values = part.set_index("metric")
        cells = [fmt_row(values.loc[m]) for m in SUMMARY_SCORES[run.task.name] if m in values.index]
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

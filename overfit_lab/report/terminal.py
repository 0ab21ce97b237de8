"""Rich terminal output: the end-of-run summary, comparison, diagnostics and checks tables (the
progress display is in :mod:`.console`; both are importable from here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from rich import box
from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table

from ..scores import ALL_SCORES, SCORES
from .console import GridProgress, TerminalProgress, make_console
from .failure_modes import failure_modes_table
from .formatting import compact, compact_mean, p_value, seed_rows, signed_interval
from .notes import (
    extraction_note,
    forgetting_note,
    left_out_note,
    membership_note,
    perplexity_change_note,
    robustness_note,
)

if TYPE_CHECKING:
    from ..analysis import RunResult

__all__ = ["GridProgress", "TerminalProgress", "checks_table", "comparison_table", "diagnostics_table",
           "failed_cells", "failed_diagnostics", "make_console", "print_summary", "run_comparison_table",
           "summary_table"]

VERDICT_STYLE = {"overfit": "red", "under-trained": "yellow", "well fit": "green", "undetermined": "dim"}
VERDICT_CODE = {"overfit": "O", "under-trained": "U", "well fit": "W", "undetermined": "?"}


def _fmt(seeds: dict, key: tuple) -> str:
    """One table cell: the ``over_seeds`` row at ``key`` in compact form, ``-`` without one."""
    row = seeds.get(key)
    return "-" if row is None else compact(row)


def _verdicts(values: pd.Series) -> str:
    """One seed: the verdict in words. Several: one letter per seed, in the order of ``best ep``,
    so that a row stays one line in a 100-column terminal (the legend is the table's caption)."""
    if len(values) == 1:
        verdict = values.iloc[0]
        return f"[{VERDICT_STYLE.get(verdict, '')}]{verdict}[/]"
    return ",".join(f"[{VERDICT_STYLE.get(v, '')}]{VERDICT_CODE.get(v, '?')}[/]" for v in values)


def summary_table(run: RunResult) -> Table:
    """Per train size x strategy at the largest epoch value: mean ± 95% CI over seeds of the
    task's summary scores (``TaskType.summary``)."""
    columns = run.task.summary
    table_rows = run.generalization
    epochs = max(run.suite.grid.epochs)
    seeds = len(run.suite.grid.seeds)
    method = "bootstrap" if run.interval_method == "bootstrap" else "t"
    spread = "the 2 seeds' values" if seeds == 2 else f"mean ± 95% CI ({method}) over {seeds} seed(s)"
    title = f"{run.suite.name}: after {epochs} epochs, {spread}"
    if run.audit is not None:
        title = (f"{run.suite.name}: no training; 'val' and the gaps use the held-out "
                 f"{run.audit.held_out} data")
    notes = []
    if seeds > 1:
        notes.append("verdict per seed: " + ", ".join(f"{c} {v}" for v, c in VERDICT_CODE.items()))
    if run.task.name == "causal-lm":
        notes.append("PPL: perplexity (exp of the mean token loss); acc: next-token accuracy; PPL ratio: "
                     "validation / train perplexity")
    table = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True, caption="\n".join(notes) or None, caption_justify="left")
    for column in ("size", "strategy", *(ALL_SCORES[m].label for m in columns), "best ep", "verdict"):
        table.add_column(column, justify="left" if column in ("strategy", "verdict") else "right",
                         no_wrap=column != "verdict")
    if table_rows.empty:
        return table
    last = table_rows[table_rows["epochs"] == epochs]
    keys = ["train_size", "label_noise", "strategy"]
    order = {name: i for i, name in enumerate(run.suite.grid.strategies)}
    noisy = last["label_noise"].nunique() > 1
    groups = sorted(last.groupby(keys), key=lambda kv: (kv[0][0], kv[0][1], order.get(kv[0][2], 99)))
    seeds = seed_rows(run.over_seeds(columns), tuple(keys))
    for (size, noise, strategy), rows in groups:
        size_text = f"{size}" + (f" (noise {noise:g})" if noisy else "")
        table.add_row(size_text, strategy,
                      *(_fmt(seeds, (size, noise, strategy, m)) for m in columns),
                      ",".join(str(int(e)) for e in rows["best_epoch"]),
                      _verdicts(rows["verdict"]))
    return table


DIAGNOSTIC_SCORES = ("worst_robustness_drop", "worst_perplexity_change", "bias_amplification", "ece",
                     "membership_advantage", "extraction_advantage", "forgetting_ratio", "mean_cka",
                     "mean_alpha")
MARK = {"better": "[green]▲[/]", "worse": "[red]▼[/]"}
CORRECTIONS = {"holm": "Holm", "bh": "Benjamini-Hochberg"}


def diagnostics_table(run: RunResult, scores: pd.DataFrame | None = None) -> Table | None:
    """Per train size x strategy: the headline figure of each diagnostic at the final checkpoint,
    mean ± 95% CI over seeds."""
    scores = run.scores if scores is None else scores
    present = [name for name in DIAGNOSTIC_SCORES if name in scores.columns]
    if not present:
        return None
    table = Table(title="diagnostics at the final checkpoint (test split)", title_justify="left",
                  header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True)
    table.add_column("size", justify="right")
    table.add_column("strategy", overflow="ellipsis", max_width=16)
    for name in present:
        table.add_column(SCORES[name].label, justify="right", no_wrap=True)
    seeds = seed_rows(run.over_seeds(present, by=("train_size", "strategy")), ("train_size", "strategy"))
    for (size, strategy), _ in _ordered_groups(run, scores, ["train_size", "strategy"]):
        table.add_row(str(size), strategy, *(_fmt(seeds, (size, strategy, name)) for name in present))
    described = {
        "mean_cka": lambda run: ("mean CKA: debiased linear CKA with the pretrained model, mean over "
                                 "trainable layers (frozen layers score 1 by construction and are left "
                                 "out; '-': every layer frozen)"),
        "worst_robustness_drop": robustness_note, "worst_perplexity_change": perplexity_change_note,
        "membership_advantage": membership_note, "extraction_advantage": extraction_note,
        "forgetting_ratio": forgetting_note, "bias_amplification": left_out_note}
    notes = [describe(run) for name, describe in described.items() if name in present]
    notes = [note for note in notes if note]
    if run.task.skipped:
        notes.append(f"not measured for a {run.task.name} task: "
                     + "; ".join(f"{name} ({why})" for name, why in run.task.skipped.items()))
    if notes:
        table.caption, table.caption_justify = "\n".join(notes), "left"
    return table


def _ordered_groups(run: RunResult, frame: pd.DataFrame, keys: list[str]):
    order = {name: i for i, name in enumerate(run.suite.grid.strategies)}
    return sorted(frame.groupby(keys), key=lambda kv: (*kv[0][:-1], order.get(kv[0][-1], 99)))


def comparison_table(run: RunResult, scores: pd.DataFrame | None = None,
                     comparisons: pd.DataFrame | None = None) -> Table | None:
    """Per size, strategies ranked by the task's test score (``TaskType.compared``: test accuracy,
    a causal LM's test perplexity), with the paired difference from the reference strategy for it
    and for the gap (accuracy gap, perplexity ratio), the corrected p-value and a mark where the
    difference is significant (▲ better, ▼ worse)."""
    scores = run.scores if scores is None else scores
    if scores.empty or scores["strategy"].nunique() < 2:
        return None
    comparisons = run.comparisons if comparisons is None else comparisons
    spec, reference = run.suite.statistics, run.suite.reference_strategy
    table = Table(title=f"strategies against '{reference}', paired by seed", title_justify="left",
                  header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True)
    quality, gap = run.task.compared
    labels = [SCORES[quality].label, SCORES[gap].label]
    columns = ("size", "#", "strategy", labels[0], f"Δ {labels[0]}", "p adj", labels[1], f"Δ {labels[1]}",
               "p adj")
    for column in columns:
        table.add_column(column, justify="left" if column == "strategy" else "right", no_wrap=True,
                         overflow="ellipsis", max_width=16 if column == "strategy" else None)
    by_key = {} if comparisons.empty else {
        (r.train_size, r.label_noise, r.strategy, r.metric): r for r in comparisons.itertuples()}
    groups = sorted(scores.groupby(["train_size", "label_noise"]), key=lambda kv: kv[0])
    noisy = scores["label_noise"].nunique() > 1
    seeds = seed_rows(run.summary, ("train_size", "label_noise", "strategy"))
    for i, ((size, noise), rows) in enumerate(groups):
        means = pd.Series({name: seeds[(size, noise, name, quality)]["mean"]
                           for name in sorted(rows["strategy"].unique())})
        means = means.sort_values(ascending=not SCORES[quality].higher_is_better)
        for rank, strategy in enumerate(means.index, start=1):
            parts = []
            for metric in (quality, gap):
                parts.append(_fmt(seeds, (size, noise, strategy, metric)))
                parts += _difference(by_key.get((size, noise, strategy, metric)), strategy == reference)
            label = f"{size}" + (f" n{noise:g}" if noisy else "")
            table.add_row(label if rank == 1 else "", str(rank), strategy, *parts,
                          end_section=rank == len(means) and i < len(groups) - 1)
    fewest_seeds = scores.groupby(["train_size", "strategy"])["seed"].nunique().min()
    correction = CORRECTIONS[spec.correction]
    if fewest_seeds < 2:
        table.caption = "one seed: no significance can be claimed; run more seeds to compare strategies."
    else:
        table.caption = (f"▲ better / ▼ worse than '{reference}': paired t-test, {correction}-corrected "
                         f"p < {spec.alpha:g}; no mark: no evidence of a difference.")
    table.caption_justify = "left"
    return table


def _difference(row, is_reference: bool) -> list[str]:
    if is_reference:
        return ["[dim]reference[/]", ""]
    if row is None or np.isnan(row.mean_difference):
        return ["-", "-"]
    text = signed_interval(row.mean_difference, row.low if row.n > 1 else np.nan, row.high, compact_form=True)
    p = p_value(row.p_adjusted, "-", ".3f")
    return [f"{text} {MARK.get(row.verdict, ' ')}", p]


def failed_cells(run: RunResult) -> Table | None:
    failed = run.cells[run.cells["status"] != "finished"]
    if failed.empty:
        return None
    table = Table(title="failed cells", title_justify="left", header_style="bold red")
    table.add_column("cell")
    table.add_column("reason", overflow="fold")
    for row in failed.itertuples():
        table.add_row(row.cell_id, row.reason)
    return table


def failed_diagnostics(run: RunResult) -> Table | None:
    """The diagnostics that raised: cell, checkpoint, diagnostic and reason (the cells finished)."""
    failures = run.diagnostic_failures
    if failures.empty:
        return None
    table = Table(title="failed diagnostics (the cells finished without them)", title_justify="left",
                  header_style="bold red")
    for column in ("cell", "checkpoint", "diagnostic"):
        table.add_column(column)
    table.add_column("reason", overflow="fold")
    for row in failures.itertuples():
        table.add_row(row.cell_id, row.checkpoint, row.diagnostic, row.reason)
    return table


def print_summary(run: RunResult, console: Console | None = None) -> None:
    """Print the summary table, the strategy comparison, the diagnostics, failed cells and failed
    diagnostics, the suite's checks (if it has any) and where the run is stored."""
    console = console or make_console()
    parts = [summary_table(run)]
    scores = run.scores
    for extra in (comparison_table(run, scores), diagnostics_table(run, scores), failure_modes_table(run),
                  failed_cells(run), failed_diagnostics(run)):
        if extra is not None:
            parts.append(extra)
    if run.check_report is not None:
        parts.append(checks_table(run.check_report))
    console.print(Group(*parts))
    modes = run.cells.drop_duplicates("strategy")[["strategy", "epoch_mode", "epoch_mode_reason"]]
    separate = modes[modes["epoch_mode"] == "separate"]
    if not separate.empty and len(run.suite.grid.epochs) > 1:
        console.print(f"[dim]epoch values ran as separate runs: {separate.iloc[0]['epoch_mode_reason']}[/]")
    for line in run.leakage.lines():
        console.print(f"[yellow]leakage:[/] {escape(line)}", highlight=False)
    for line in trainer_run_lines(run):
        console.print(line, highlight=False)
    console.print(f"[dim]run stored in {run.run_dir}[/]")


def trainer_run_lines(run: RunResult) -> list[str]:
    """For an audit of a Trainer output directory: what its logs say, what they cannot judge, and
    which checkpoint to ship and why."""
    facts = run.trainer_run
    if facts is None:
        return []
    logs = facts["logs"]
    style = VERDICT_STYLE.get(logs["verdict"], "")
    where = f"evaluation {logs['best_evaluation']} at step {logs['best_step']}"
    lines = [f"[bold]Trainer run[/] {escape(facts['output_dir'])}: its logs say "
             f"[{style}]{logs['verdict']}[/] ({escape(logs['reason'])}); lowest evaluation loss at {where}"]
    lines += [f"[yellow]not judged:[/] {escape(line)}" for line in logs.get("missing", [])]
    lines += [f"[dim]{escape(line)}[/]" for line in logs.get("notes", [])]
    ship = facts["ship"]
    lines.append(f"[bold]ship {escape(ship['checkpoint'])}[/]: {escape(ship['why'])}")
    return lines


def checks_table(report, *, conditions: bool = True) -> Table:
    """Every condition of a check with its figures (unless ``conditions`` is false), then the
    regressions against a baseline."""
    from ..checks import regression_message, scope_label

    status = "[green]passed[/]" if report.passed else "[bold red]FAILED[/]"
    table = Table(title=f"checks of {report.suite_name}: {status}", title_justify="left", header_style="bold",
                  box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("", no_wrap=True)
    table.add_column("check", overflow="fold", max_width=24)
    table.add_column("scope", no_wrap=True, overflow="ellipsis", max_width=24)
    table.add_column("result", overflow="fold")
    shown = report.conditions if conditions else report.conditions.iloc[:0]
    last = len(shown) - 1
    for i, row in enumerate(shown.itertuples()):
        table.add_row("[green]ok[/]" if row.passed else "[red]FAIL[/]", row.check,
                      scope_label(row.train_size, row.strategy), row.message,
                      end_section=i == last)
    marks = {"regressed": "[red]REGR[/]", "improved": "[green]up[/]"}
    regressions = report.regressions
    changed = regressions[regressions["verdict"] != "no change"] if not regressions.empty else regressions
    for row in changed.itertuples():
        table.add_row(marks[row.verdict], f"{row.metric} vs baseline",
                      scope_label(row.train_size, row.strategy), f"{row.verdict}: {regression_message(row)}")
    if not regressions.empty:
        table.caption = (f"against the baseline: {len(changed)} of {len(regressions)} metric x scope "
                         "comparisons changed beyond their tolerance; the rest are within it or not "
                         "significant.")
        table.caption_justify = "left"
    return table


def run_comparison_table(frame: pd.DataFrame, name_a: str, name_b: str, *, alpha: float = 0.05,
                         correction: str = "holm") -> Table:
    """Two runs side by side: per size x strategy x score, both means, the change and the verdict."""
    table = Table(title=f"{name_b} against {name_a}", title_justify="left", header_style="bold",
                  box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for column in ("size", "strategy", "score", "A", "B", "change", "p adj", ""):
        table.add_column(column, justify="left" if column in ("strategy", "score", "") else "right",
                         no_wrap=True, overflow="ellipsis", max_width=16 if column == "strategy" else None)
    marks = {"improved": "[green]▲ improved[/]", "regressed": "[red]▼ regressed[/]", "no change": "[dim]-[/]",
             "one seed: no test": "[dim]no test[/]"}
    for row in frame.itertuples():
        label = SCORES[row.metric].label if row.metric in SCORES else row.metric
        table.add_row(str(row.train_size), row.strategy, label,
                      compact_mean(row.before_mean, row.before_low, row.before_high),
                      compact_mean(row.after_mean, row.after_low, row.after_high),
                      f"{row.difference:+.3f}", p_value(row.p_adjusted, "-", ".3f"), marks[row.verdict])
    tests = sorted(set(frame["test"])) if not frame.empty else []
    need = f"▲/▼ need a {CORRECTIONS[correction]}-corrected p < {alpha:g}"
    table.caption = (f"tests: {', '.join(tests)}; {need}"
                     if tests and tests != ["none"]
                     else "one seed a side: changes are shown, no test is possible")
    table.caption_justify = "left"
    return table

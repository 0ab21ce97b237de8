"""The terminal's table of where the model fails and which labels it struggles with: weak slices,
class recall and collapse, calibration after temperature scaling and the training dynamics, per
size x strategy, with the weakest slices, label shift and collapsed classes named under it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich import box
from rich.markup import escape
from rich.table import Table

from ..scores import ALL_SCORES
from .formatting import compact, seed_rows

if TYPE_CHECKING:
    from ..analysis import RunResult

__all__ = ["FAILURE_SCORES", "failure_modes_table"]

FAILURE_SCORES = ("worst_slice_gap", "min_class_recall", "ece_temperature_scaled", "mislabel_auc",
                  "memorised_share")
SLICES_NAMED = 3


def failure_modes_table(run: RunResult) -> Table | None:
    """Per train size x strategy, mean ± 95% CI over seeds of the figures of
    :data:`FAILURE_SCORES` the run has, at the final checkpoint; ``None`` when it has none."""
    scores = run.cell_scores(extra=True)
    present = [name for name in FAILURE_SCORES if name in scores.columns and scores[name].notna().any()]
    if not present:
        return None
    table = Table(title="where it fails, which labels (final checkpoint)", title_justify="left",
                  header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("size", justify="right")
    table.add_column("strategy", overflow="ellipsis", max_width=16)
    for name in present:
        table.add_column(ALL_SCORES[name].label, justify="right", no_wrap=True)
    by = ("train_size", "strategy")
    seeds = seed_rows(run.over_seeds(present, by=by), by)
    order = {name: i for i, name in enumerate(run.suite.grid.strategies)}
    for size, strategy in sorted({(r.train_size, r.strategy) for r in scores.itertuples()},
                                 key=lambda key: (key[0], order.get(key[1], 99))):
        table.add_row(str(size), strategy, *(_cell(seeds.get((size, strategy, name))) for name in present))
    notes = [*_slice_notes(run), *_label_notes(run)]
    if "ece_temperature_scaled" in present:
        notes.append("ECE (T-scaled): test ECE after one temperature fitted on validation (Guo et al. 2017), "
                     "beside the ECE above: the overconfidence that rescaling fixes without retraining")
    if "mislabel_auc" in present:
        notes.append("mislabel AUC: how well the mislabel score (a training label the model kept preferring "
                     "another class over) ranks the labels the harness flipped; chance 0.5")
    if notes:
        table.caption, table.caption_justify = "\n".join(notes), "left"
    return table


def _cell(row) -> str:
    return "-" if row is None else compact(row)


def _slice_notes(run: RunResult) -> list[str]:
    """The weakest slices by mean gap, where they were weak, and how they were tested."""
    table = run.weak_slices
    if table.empty:
        spec = run.suite.diagnostics.slices
        correction = "Benjamini-Hochberg" if spec.correction == "bh" else "Holm"
        return [] if "worst_slice_gap" not in run.scores else [
            f"weak slices: none worse than the rest by more than {spec.tolerance:g} with a {correction}-"
            f"corrected one-sided p < {spec.alpha:g}"]
    lines = []
    for name in list(dict.fromkeys(table["slice"]))[:SLICES_NAMED]:
        rows = table[(table["slice"] == name) & (table["weak"] > 0)]
        where = ", ".join(f"{int(r.train_size)} {r.strategy} ({int(r.weak)}/{int(r.seeds)})"
                          for r in rows.itertuples())
        worst = rows.loc[rows["gap"].idxmax()]
        lines.append(f"weak slice '{escape(name)}': {worst['gap']:.3f} worse (n ≈ {worst['n']:.0f}); "
                     f"weak in {where} seeds")
    return lines


def _label_notes(run: RunResult) -> list[str]:
    """A training-to-test label shift and the classes (almost) never predicted, where they occur."""
    lines = []
    scores = run.cell_scores(extra=True)
    if "label_shift_p" in scores and (scores["label_shift_p"] < run.suite.statistics.alpha).any():
        tvd = scores["label_shift_tvd"].mean()
        lines.append(f"label shift: the test labels are distributed unlike the training labels (total "
                     f"variation {tvd:.2f}, chi-square p < {run.suite.statistics.alpha:g}); accuracy alone "
                     "hides it")
    classes = run.class_balance
    if not classes.empty and (classes["collapsed"] > 0).any():
        for r in classes[classes["collapsed"] > 0].to_dict("records"):
            lines.append(f"class '{escape(str(r['class']))}' (almost) never predicted at "
                         f"{int(r['train_size'])} {r['strategy']} ({int(r['collapsed'])}/{int(r['seeds'])} "
                         f"seeds): recall {r['class_recall']:.2f}, predicted "
                         f"{r['class_share_predicted']:.0%} of the time against "
                         f"{r['class_share_test']:.0%} of the labels")
    return lines

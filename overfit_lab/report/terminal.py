"""Rich terminal output: the grid's progress display and the end-of-run summary table."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
from rich import box
from rich.console import Console, Group
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ..stats import mean_ci

VERDICT_STYLE = {"overfit": "red", "under-trained": "yellow", "well fit": "green", "undetermined": "dim"}


def make_console(**kwargs) -> Console:
    """A rich console; when output is not a terminal (logs, pipes) tables get 120 columns."""
    console = Console(**kwargs)
    if not console.is_terminal:
        console.width = 120
    return console


class GridProgress:
    """Progress of a grid: cells done/total, the current cell and its epoch, and an ETA.

    The ETA weighs each epoch by its work (see :func:`epoch_work`), so it stays sensible when
    later cells train on more examples than earlier ones.
    """

    def __init__(self, console: Console, *, total_cells: int, done_cells: int, total_work: float):
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
            TextColumn("{task.fields[detail]}"), TextColumn("elapsed"), TimeElapsedColumn(),
            TextColumn("eta"), TimeRemainingColumn(), console=console, transient=False,
        )
        self.total_cells, self.done_cells = total_cells, done_cells
        self.grid = self.progress.add_task(self._grid_text(), total=max(total_work, 1e-9), detail="")
        self.cell = self.progress.add_task("", total=1, visible=False, detail="")
        self._epochs = 0
        self._work_per_epoch = 0.0
        self._work_left = 0.0

    def _grid_text(self) -> str:
        return f"cells {self.done_cells}/{self.total_cells}"

    def __enter__(self) -> GridProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def start_cell(self, cell_id: str, epochs: int, work_per_epoch: float) -> None:
        self._epochs, self._work_per_epoch = epochs, work_per_epoch
        self._work_left = epochs * work_per_epoch
        self.progress.reset(self.cell, total=epochs, description=f"[bold]{cell_id}[/]", visible=True,
                            detail=f"epoch 0/{epochs}")

    def epoch_done(self, epoch: int) -> None:
        self._work_left -= self._work_per_epoch
        self.progress.update(self.cell, completed=epoch, detail=f"epoch {epoch}/{self._epochs}")
        self.progress.advance(self.grid, self._work_per_epoch)

    def finish_cell(self, cell_id: str, status: str, seconds: float, reason: str = "") -> None:
        """Advance past the cell and log one line (the only output when not on a terminal)."""
        self.progress.advance(self.grid, max(self._work_left, 0.0))  # early stop or failure
        self.done_cells += 1
        self.progress.update(self.grid, description=self._grid_text())
        mark = "[green]done[/]" if status == "finished" else f"[red]failed[/] ({reason})"
        self.progress.console.print(f"[{self.done_cells}/{self.total_cells}] {cell_id} {mark} "
                                    f"in {seconds:.1f} s", highlight=False)


def epoch_work(train_size: int, n_validation: int) -> float:
    """Relative cost of one epoch: training examples, plus evaluated ones at about 1/5 the cost.

    (On CPU a forward pass in eval mode costs about a fifth of a training step per example.)
    """
    return train_size + (train_size + n_validation) / 5


def _fmt(values: pd.Series, digits: int = 3) -> str:
    ci = mean_ci(values.to_numpy(dtype=float))
    if np.isnan(ci.mean):
        return "-"
    text = f"{ci.mean:.{digits}f}"
    if ci.n > 1 and not np.isnan(ci.low):
        text += f"±{ci.half_width:.{digits}f}"
    return text


def _verdicts(values: pd.Series) -> str:
    counts = Counter(values)
    parts = []
    for verdict, n in counts.most_common():
        style = VERDICT_STYLE.get(verdict, "")
        label = verdict if len(values) == 1 else f"{verdict} {n}/{len(values)}"
        parts.append(f"[{style}]{label}[/]")
    return ", ".join(parts)


def summary_table(run) -> Table:
    """Per train size x strategy at the largest epoch value: mean ± 95% CI over seeds."""
    table_rows = run.generalization
    epochs = max(run.suite.grid.epochs)
    seeds = len(run.suite.grid.seeds)
    title = f"{run.suite.name}: after {epochs} epochs, mean ± 95% CI over {seeds} seed(s)"
    table = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD)
    for column in ("size", "strategy", "val acc", "test acc", "acc gap", "loss gap", "best ep", "verdict"):
        table.add_column(column, justify="left" if column in ("strategy", "verdict") else "right",
                         no_wrap=column != "verdict")
    if table_rows.empty:
        return table
    last = table_rows[table_rows["epochs"] == epochs]
    keys = ["train_size", "label_noise", "strategy"]
    order = {name: i for i, name in enumerate(run.suite.grid.strategies)}
    noisy = last["label_noise"].nunique() > 1
    groups = sorted(last.groupby(keys), key=lambda kv: (kv[0][0], kv[0][1], order.get(kv[0][2], 99)))
    for (size, noise, strategy), rows in groups:
        size_text = f"{size}" + (f" (noise {noise:g})" if noisy else "")
        table.add_row(size_text, strategy, _fmt(rows["validation_accuracy"]), _fmt(rows["test_accuracy"]),
                      _fmt(rows["gap_accuracy"]), _fmt(rows["gap_loss"]),
                      ",".join(str(int(e)) for e in rows["best_epoch"]),
                      _verdicts(rows["verdict"]))
    return table


DIAGNOSTIC_COLUMNS = {  # column -> (metric, how rows of one cell reduce to one figure)
    "worst drop": ("worst_robustness_drop", "max"),
    "bias amp": ("bias_amplification", "mean"),
    "ECE": ("ece", "mean"),
    "MIA adv": ("membership_advantage", "mean"),
    "mean CKA": ("mean_cka", "mean"),
    "alpha": ("mean_alpha", "mean"),
}


def diagnostics_table(run, checkpoint: str = "final") -> Table | None:
    """Per train size x strategy: the headline figure of each diagnostic, mean ± 95% CI."""
    diag = run.diagnostics
    if diag.empty:
        return None
    diag = diag[diag["checkpoint"] == checkpoint].merge(run.cells[["cell_id", "train_size", "strategy"]])
    table = Table(title=f"diagnostics at the {checkpoint} checkpoint (test split)", title_justify="left",
                  header_style="bold", box=box.SIMPLE_HEAD)
    table.add_column("size", justify="right")
    table.add_column("strategy")
    present = {col: spec for col, spec in DIAGNOSTIC_COLUMNS.items() if spec[0] in set(diag["metric"])}
    for column in present:
        table.add_column(column, justify="right", no_wrap=True)
    order = {name: i for i, name in enumerate(run.suite.grid.strategies)}
    keys = sorted(diag.groupby(["train_size", "strategy"]).groups, key=lambda k: (k[0], order.get(k[1], 99)))
    for size, strategy in keys:
        rows = diag[(diag["train_size"] == size) & (diag["strategy"] == strategy)]
        cells = []
        for metric, how in present.values():
            per_cell = rows[rows["metric"] == metric].groupby("cell_id")["value"].agg(how)
            cells.append(_fmt(per_cell))
        table.add_row(str(size), strategy, *cells)
    return table


def failed_cells(run) -> Table | None:
    failed = run.cells[run.cells["status"] != "finished"]
    if failed.empty:
        return None
    table = Table(title="failed cells", title_justify="left", header_style="bold red")
    table.add_column("cell")
    table.add_column("reason", overflow="fold")
    for row in failed.itertuples():
        table.add_row(row.cell_id, row.reason)
    return table


def print_summary(run, console: Console | None = None) -> None:
    """Print the summary table, failed cells and where the run is stored."""
    console = console or make_console()
    parts = [summary_table(run)]
    for extra in (diagnostics_table(run), failed_cells(run)):
        if extra is not None:
            parts.append(extra)
    console.print(Group(*parts))
    modes = run.cells.drop_duplicates("strategy")[["strategy", "epoch_mode", "epoch_mode_reason"]]
    separate = modes[modes["epoch_mode"] == "separate"]
    if not separate.empty and len(run.suite.grid.epochs) > 1:
        console.print(f"[dim]epoch values ran as separate runs: {separate.iloc[0]['epoch_mode_reason']}[/]")
    console.print(f"[dim]run stored in {run.run_dir}[/]")

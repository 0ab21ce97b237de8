"""The terminal while a grid runs: a rich console, the grid's progress display and the runner's
observer that drives it."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..progress import RunObserver

__all__ = ["GridProgress", "TerminalProgress", "make_console"]


def make_console(**kwargs) -> Console:
    """A rich console; when output is not a terminal (logs, pipes) tables get 100 columns."""
    console = Console(**kwargs)
    if not console.is_terminal:
        console.width = 100
    return console


class GridProgress:
    """Progress of a grid: cells done/total and an ETA, and a row per running cell with its epoch
    (several at once under a parallel executor).

    The ETA weighs each epoch by its work (see :func:`overfit_lab.progress.epoch_work`), so it
    stays sensible when later cells train on more examples than earlier ones.
    """

    def __init__(self, console: Console, *, total_cells: int, done_cells: int, total_work: float):
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
            TextColumn("{task.fields[detail]}"), TextColumn("elapsed"), TimeElapsedColumn(),
            TextColumn("eta"), TimeRemainingColumn(), console=console, transient=False,
        )
        self.total_cells, self.done_cells = total_cells, done_cells
        self.total_work = max(total_work, 1e-9)
        self.grid = self.progress.add_task(self._grid_text(), total=self.total_work, detail="")
        self.running: dict[str, _RunningCell] = {}

    def _grid_text(self) -> str:
        return f"cells {self.done_cells}/{self.total_cells}"

    def __enter__(self) -> GridProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def start_cell(self, cell_id: str, epochs: int, work_per_epoch: float) -> None:
        """A cell starts, or starts again after its worker died (its epochs are counted again)."""
        if cell_id in self.running:
            again = self.running.pop(cell_id)
            self.progress.remove_task(again.task)
            self.total_work += again.epochs * again.work_per_epoch - again.work_left
            self.progress.update(self.grid, total=self.total_work)
        task = self.progress.add_task(f"[bold]{cell_id}[/]", total=epochs, detail=f"epoch 0/{epochs}")
        self.running[cell_id] = _RunningCell(task, epochs, work_per_epoch, epochs * work_per_epoch)

    def epoch_done(self, cell_id: str, epoch: int) -> None:
        cell = self.running[cell_id]
        cell.work_left -= cell.work_per_epoch
        self.progress.update(cell.task, completed=epoch, detail=f"epoch {epoch}/{cell.epochs}")
        self.progress.advance(self.grid, cell.work_per_epoch)

    def finish_cell(self, cell_id: str, status: str, seconds: float, reason: str = "") -> None:
        """Advance past the cell and log one line (the only output when not on a terminal)."""
        cell = self.running.pop(cell_id, None)
        if cell is not None:
            self.progress.advance(self.grid, max(cell.work_left, 0.0))  # early stop or failure
            self.progress.remove_task(cell.task)
        self.done_cells += 1
        self.progress.update(self.grid, description=self._grid_text())
        mark = "[green]done[/]" if status == "finished" else f"[red]failed[/] ({escape(reason)})"
        self.progress.console.print(f"[{self.done_cells}/{self.total_cells}] {cell_id} {mark} "
                                    f"in {seconds:.1f} s", highlight=False)


@dataclass
class _RunningCell:
    task: TaskID
    epochs: int
    work_per_epoch: float
    work_left: float


class TerminalProgress(RunObserver):
    """The runner's observer on a terminal: one line to start, the progress display, one line
    per cell, and where the saved cells are on Ctrl-C."""

    def __init__(self, console: Console) -> None:
        self.console, self.display, self.work = console, None, {}

    def data_warning(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)

    def run_started(self, *, name, run_dir, total_cells, todo, work) -> None:
        self.console.print(f"[bold]{name}[/]: {total_cells} cells, {len(todo)} to run -> {run_dir}")
        self.work = work
        self.display = GridProgress(self.console, total_cells=total_cells, done_cells=total_cells - len(todo),
                                    total_work=sum(c.epochs * work[c.cell_id] for c in todo))
        self.display.__enter__()

    def executing(self, description: str) -> None:
        self.display.progress.console.print(f"cells run: {escape(description)}", highlight=False)

    def cell_started(self, cell) -> None:
        self.display.start_cell(cell.cell_id, cell.epochs, self.work[cell.cell_id])

    def epoch_done(self, cell, epoch: int) -> None:
        self.display.epoch_done(cell.cell_id, epoch)

    def cell_finished(self, cell, result) -> None:
        self.display.finish_cell(cell.cell_id, result.status, result.info["wall_s"], result.reason)

    def interrupted(self, run_dir, finished: int) -> None:
        self.display.progress.stop()
        self.console.print(f"[yellow]interrupted[/]: {finished} finished cells are saved in "
                           f"{run_dir}; continue with: overfit-lab run --resume {run_dir}")

    def run_ended(self) -> None:
        if self.display is not None:
            self.display.__exit__(None, None, None)

"""What the runner reports while it works, and how much work an epoch is.

The runner calls a :class:`RunObserver`; it imports no user interface. The terminal's progress
display (:class:`overfit_lab.report.terminal.TerminalProgress`) is one observer; a parallel
executor or a notebook widget can be another.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["Observers", "RunObserver", "epoch_work"]


class RunObserver:
    """Hooks the runner calls, in order; each does nothing unless overridden."""

    def data_warning(self, message: str) -> None:
        """Something about the data the user should know before the results (one line), such as
        held-out texts that are also in the training pool."""

    def run_started(self, *, name: str, run_dir: Path, total_cells: int, todo: list, work: dict) -> None:
        """``todo``: the cells about to run; ``work``: cell_id -> relative cost of one epoch."""

    def executing(self, description: str) -> None:
        """How the cells run (``local, 2 cells at a time x 1 threads, cpu``)."""

    def cell_started(self, cell) -> None:
        """A cell starts training."""

    def epoch_done(self, cell, epoch: int) -> None:
        """``cell`` finished training epoch ``epoch``."""

    def cell_finished(self, cell, result) -> None:
        """A cell's result (finished or failed) is committed."""

    def interrupted(self, run_dir: Path, finished: int) -> None:
        """The run stopped on Ctrl-C with ``finished`` cells saved."""

    def run_ended(self) -> None:
        """The last cell is done (or the run was interrupted)."""


def epoch_work(train_size: int, n_validation: int) -> float:
    """Relative cost of one epoch: training examples, plus evaluated ones at about 1/5 the cost.

    (On CPU a forward pass in eval mode costs about a fifth of a training step per example.)
    """
    return train_size + (train_size + n_validation) / 5


class Observers(RunObserver):
    """Several observers heard in order, as one (the terminal's display and a tracker, say)."""

    def __init__(self, *observers: RunObserver | None):
        self.observers = [o for o in observers if o is not None]

    def data_warning(self, message: str) -> None:
        for o in self.observers:
            o.data_warning(message)

    def run_started(self, **facts) -> None:
        for o in self.observers:
            o.run_started(**facts)

    def executing(self, description: str) -> None:
        for o in self.observers:
            o.executing(description)

    def cell_started(self, cell) -> None:
        for o in self.observers:
            o.cell_started(cell)

    def epoch_done(self, cell, epoch: int) -> None:
        for o in self.observers:
            o.epoch_done(cell, epoch)

    def cell_finished(self, cell, result) -> None:
        for o in self.observers:
            o.cell_finished(cell, result)

    def interrupted(self, run_dir: Path, finished: int) -> None:
        for o in self.observers:
            o.interrupted(run_dir, finished)

    def run_ended(self) -> None:
        for o in self.observers:
            o.run_ended()

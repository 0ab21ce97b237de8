"""The grid: a suite expanded into cells, one fine-tuning run each.

A :class:`Cell` is a frozen value holding everything a worker needs (the suite included), so
it can run in this process, a process pool or on a cluster. Epoch values share one run when
that is exact (see :func:`overfit_lab.strategies.schedule_depends_on_length`): the cell then
trains for the largest value and records the metrics at every smaller one. Otherwise each
epoch value is its own cell.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from .rows import CellRow, Checkpoint, EpochMode
from .strategies import (
    resolve_strategies,
    resolve_strategy,
    schedule_depends_on_length,
    strategy_library,
)
from .suite import StrategySpec, Suite


@dataclass(frozen=True, eq=False)
class Cell:
    """One fine-tuning run of the grid."""

    suite: Suite
    train_size: int
    strategy: str
    seed: int
    label_noise: float
    epochs: int
    record_epochs: tuple[int, ...]
    epoch_mode: EpochMode  # "shared" or "separate"
    epoch_mode_reason: str = ""
    # where the worker saves the trained model (save_pretrained), and at which checkpoint: set by
    # the runner for [output] save_models, and by overfit-lab export model (None: not kept)
    model_dir: str | None = None
    save_model: Checkpoint | None = None

    @property
    def cell_id(self) -> str:
        parts = [f"n{self.train_size}", self.strategy, f"s{self.seed}"]
        if self.label_noise:
            parts.append(f"noise{self.label_noise:g}")
        if self.epoch_mode == "separate":
            parts.append(f"e{self.epochs}")
        return "-".join(parts)

    @property
    def strategy_spec(self) -> StrategySpec:
        return resolve_strategy(self.strategy, strategy_library(self.suite))

    def describe(self) -> CellRow:
        """The plain fields of the cell (what the store keeps)."""
        return CellRow(cell_id=self.cell_id, train_size=self.train_size, strategy=self.strategy,
                       seed=self.seed, label_noise=self.label_noise, epochs=self.epochs,
                       record_epochs=tuple(self.record_epochs), epoch_mode=self.epoch_mode,
                       epoch_mode_reason=self.epoch_mode_reason)


def build_grid(suite: Suite) -> list[Cell]:
    """Every cell of ``suite``, smallest sizes first, paired seeds adjacent."""
    strategies = resolve_strategies(suite)
    grid = suite.grid
    cells = []
    for size, noise, name, seed in itertools.product(grid.train_sizes, grid.label_noise,
                                                      grid.strategies, grid.seeds):
        reason = schedule_depends_on_length(suite, strategies[name])
        common = dict(suite=suite, train_size=size, strategy=name, seed=seed, label_noise=noise)
        if reason is None or len(grid.epochs) == 1:
            why = "constant learning-rate schedule" if reason is None else "one epoch value"
            cells.append(Cell(**common, epochs=max(grid.epochs), record_epochs=tuple(grid.epochs),
                              epoch_mode="shared", epoch_mode_reason=why))
        else:
            cells.extend(Cell(**common, epochs=e, record_epochs=(e,), epoch_mode="separate",
                              epoch_mode_reason=reason) for e in grid.epochs)
    return cells

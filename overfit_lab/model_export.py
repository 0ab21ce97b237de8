"""Take the winner home: retrain one cell of a finished run and save its model.

A grid keeps figures, not models (unless ``[output] save_models`` asked for them). To deploy the
strategy a run found best, :func:`export_model` trains that cell again, in this process, with
the thread count it was trained with (its floats depend on it), saves the model at its final or
best checkpoint with ``save_pretrained`` (safetensors, tokenizer, label names; LoRA adapters
merged), and compares every per-epoch metric of the new training with the stored ones: on the
same CPU setup they are bit-identical, and the result says so, or by how much they differ.
The diagnostics are not run again (they come after training and change nothing in it).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import OverfitLabError

__all__ = ["ModelExport", "export_model"]


@dataclass(frozen=True)
class ModelExport:
    """What :func:`export_model` did: where the model went, which checkpoint and epoch, how long the
    training took, and how the retrained metrics compare with the stored ones (``identical``:
    every value equal; else ``max_difference``, the largest absolute difference)."""

    directory: Path
    cell_id: str
    checkpoint: str
    epoch: int
    seconds: float
    metrics_compared: int
    identical: bool
    max_difference: float
    threads: int | None
    bytes: int


def export_model(run_dir: str | Path, cell_id: str, *, to: str | Path,
                 checkpoint: str = "final") -> ModelExport:
    """Retrain ``cell_id`` of the run in ``run_dir`` and save its model at ``checkpoint``
    (``"final"`` or ``"best"``) in the new directory ``to``.

    Raises
    ------
    OverfitLabError
        An unknown or failed cell, a bad checkpoint, or a ``to`` that is not empty.
    """
    import torch

    from .analysis import load_run
    from .grid import build_grid
    from .suite import Suite
    from .training import run_cell

    if checkpoint not in ("final", "best"):
        raise OverfitLabError(f"unknown checkpoint '{checkpoint}'.", key="--checkpoint",
                              fix="use final or best.")
    target = Path(to)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise OverfitLabError(f"{target} exists and is not an empty directory.", key="--to",
                              fix="give a new directory.")
    run = load_run(run_dir)
    cells = run.cells.set_index("cell_id")
    if cell_id not in cells.index:
        raise OverfitLabError(f"the run has no cell '{cell_id}'.", key="CELL_ID",
                              fix=f"use one of: {', '.join(cells.index)}.")
    if cells.loc[cell_id, "status"] != "finished":
        raise OverfitLabError(f"cell '{cell_id}' failed ({cells.loc[cell_id, 'reason']}).", key="CELL_ID",
                              fix=f"retry it first: overfit-lab run --resume {run.run_dir}.")
    # the diagnostics come after training and change nothing in it: not run again
    raw = run.suite.model_dump()
    raw["diagnostics"]["checkpoints"] = []
    suite = Suite.model_validate(raw)
    (cell,) = [c for c in build_grid(suite) if c.cell_id == cell_id]
    threads = cells.loc[cell_id, "threads"] if "threads" in cells.columns else None
    threads = None if threads is None or pd.isna(threads) else int(threads)
    before = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        started = time.perf_counter()
        # save_model writes beside the target and renames into place: nothing half-written there
        result = run_cell(dataclasses.replace(cell, model_dir=str(target.resolve()), save_model=checkpoint))
        seconds = time.perf_counter() - started
    finally:
        torch.set_num_threads(before)
    if result.status != "finished":
        if (target / "config.json").exists():  # saved before the cell failed: not the cell's model
            shutil.rmtree(target)
        raise OverfitLabError(f"retraining cell '{cell_id}' failed: {result.reason}", key="CELL_ID",
                              fix="see the reason; the stored run is unchanged.")
    compared, identical, difference = _compare(run.metrics[run.metrics["cell_id"] == cell_id], result.metrics)
    return ModelExport(directory=target, cell_id=cell_id, checkpoint=checkpoint,
                       epoch=int(result.info["model_epoch"]), seconds=seconds, metrics_compared=compared,
                       identical=identical, max_difference=difference, threads=threads,
                       bytes=int(result.info["model_bytes"]))


def _compare(stored: pd.DataFrame, retrained: list) -> tuple[int, bool, float]:
    """How many stored per-epoch metrics there are, whether the retrained ones equal them all,
    and the largest absolute difference (the running training loss included)."""
    new = pd.DataFrame([dataclasses.asdict(row) for row in retrained])
    keys = ["epoch", "split", "metric"]
    merged = stored[[*keys, "value"]].merge(new[[*keys, "value"]], on=keys, how="outer",
                                            suffixes=("_stored", "_new"), indicator=True)
    a, b = merged["value_stored"].to_numpy(float), merged["value_new"].to_numpy(float)
    same = (merged["_merge"] == "both").all() and bool(np.array_equal(a, b, equal_nan=True))
    difference = float(np.nanmax(np.abs(a - b))) if len(merged) else 0.0
    return len(stored), same, difference

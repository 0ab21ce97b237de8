"""Which diagnostic adapters each task type runs: :data:`ADAPTERS`, task name -> the registries
whose adapters it runs, in order (a classifier's in :mod:`.checkpoint`, a causal LM's in
:mod:`.checkpoint_lm`, weak slices, label balance and training dynamics in
:mod:`.checkpoint_data`); :func:`adapters` merges them when a checkpoint is scored, so an entry
replaced in one of them (a test's stand-in) is the one that runs. Their names are the task's
``TaskType.diagnostics``."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .checkpoint import DIAGNOSTICS, CheckpointContext, Row
from .checkpoint_data import DATA_DIAGNOSTICS, LM_DATA_DIAGNOSTICS
from .checkpoint_lm import LM_DIAGNOSTICS

__all__ = ["ADAPTERS", "adapters"]

Adapter = Callable[[CheckpointContext], list[Row]]

ADAPTERS: dict[str, tuple[Mapping[str, Adapter], ...]] = {
    "sequence-classification": (DIAGNOSTICS, DATA_DIAGNOSTICS),
    "causal-lm": (LM_DIAGNOSTICS, LM_DATA_DIAGNOSTICS),
}


def adapters(task: str) -> dict[str, Adapter]:
    """Every adapter of ``task``, by diagnostic name, in the order they run."""
    merged: dict[str, Adapter] = {}
    for registry in ADAPTERS[task]:
        merged.update(registry)
    return merged

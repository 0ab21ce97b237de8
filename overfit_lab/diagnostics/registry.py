"""Which diagnostic adapters each task type runs: :data:`ADAPTERS`, task name -> the adapters of
its diagnostics (a classifier's in :mod:`.checkpoint`, a causal LM's in :mod:`.checkpoint_lm`),
in the order they run. Their names are the task's ``TaskType.diagnostics``."""

from __future__ import annotations

from collections.abc import Callable

from .checkpoint import DIAGNOSTICS, CheckpointContext, Row
from .checkpoint_lm import LM_DIAGNOSTICS

__all__ = ["ADAPTERS"]

ADAPTERS: dict[str, dict[str, Callable[[CheckpointContext], list[Row]]]] = {
    "sequence-classification": DIAGNOSTICS,
    "causal-lm": LM_DIAGNOSTICS,
}

"""Executors: who runs a run's cells, one interface for all (``run(cells, events)``).

* ``local`` with one worker: in this process, one cell after another;
* ``local`` with N workers: a pool of N spawned processes of T torch threads each;
* ``ray``: each cell a Ray task (``num_cpus`` = threads, ``num_gpus`` = 1 on CUDA), on a local Ray
  or a cluster (``address``).

In every one the driver is the only writer of the run: an executor returns each cell's
:class:`~overfit_lab.training.CellResult` through :class:`CellEvents` and the runner commits it.
"""

from __future__ import annotations

from ._base import (
    CellEvents,
    Execution,
    default_layout,
    describe_exit,
    effective_suite,
    resolve_execution,
    worker_died,
)
from .local import InProcessExecutor, ProcessPoolExecutor

__all__ = ["CellEvents", "Execution", "InProcessExecutor", "ProcessPoolExecutor", "check_available",
           "default_layout",
           "describe_exit", "effective_suite", "make_executor", "resolve_execution", "worker_died"]


def check_available(execution: Execution) -> None:
    """Fail before a run directory is created when the executor cannot run here: Ray missing,
    nobody listening at its ``address``."""
    if execution.executor == "ray":
        from .ray import check_reachable, import_ray

        import_ray()
        if execution.address:
            check_reachable(execution.address)


def make_executor(execution: Execution):
    """The executor ``execution`` names."""
    if execution.executor == "ray":
        from .ray import RayExecutor

        return RayExecutor(execution)
    if execution.workers == 1:
        return InProcessExecutor(execution)
    return ProcessPoolExecutor(execution)

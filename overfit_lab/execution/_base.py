"""What every executor shares: the events it reports, the settings it runs with, and the failed
result of a cell whose worker died."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import OverfitLabError
from ..grid import Cell
from ..suite import ExecutionSpec, Suite

__all__ = ["CellEvents", "Execution", "default_layout", "describe_exit", "effective_suite",
           "resolve_execution", "worker_died"]


@dataclass
class CellEvents:
    """The driver's side of a run: an executor calls these, in the driver process, as its cells
    start, finish epochs and end. ``result`` commits the cell; it is the only writer."""

    started: Callable[[Cell], None]
    epoch: Callable[[Cell, int], None]
    result: Callable[[object], None]


@dataclass(frozen=True)
class Execution:
    """An executor's settings once defaults are filled in."""

    executor: str
    workers: int
    threads: int
    device: str  # "cpu" or "cuda"
    address: str | None
    retries: int
    gpus: int  # CUDA devices visible to the driver

    def describe(self) -> str:
        if self.executor == "ray":  # Ray decides how many run at once
            return f"ray ({self.address or 'local'}), {self.threads} threads per cell, {self.device}"
        unit = "cell" if self.workers == 1 else "cells"
        return f"local, {self.workers} {unit} at a time x {self.threads} threads, {self.device}"


def cpu_count() -> int:
    """Cores this process may use (its affinity, not the machine's total)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def resolve_execution(spec: ExecutionSpec, *, source: str = "<suite>", cells: int | None = None) -> Execution:
    """Fill in ``spec``'s defaults for this machine.

    On CPU the default is :func:`default_layout` (measured: README, "Running faster"); given
    one of workers and threads, the other shares the cores out; on CUDA one cell per device.
    Under Ray a cell takes ``threads`` CPUs (default 1) and Ray decides how many run at once.
    ``cells``: how many are to run; by default no more workers start than there are cells.
    """
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if spec.device == "cuda" and gpus == 0:
        raise OverfitLabError("device cuda was asked for, but torch sees no CUDA device.",
                              file=source, key="execution.device",
                              fix="use --device cpu (or auto), or install a CUDA build of torch.")
    device = "cuda" if spec.device == "cuda" or (spec.device == "auto" and gpus) else "cpu"
    cores = cpu_count()
    if device == "cuda":
        workers = spec.workers or gpus
        threads = spec.threads or max(cores // workers, 1)
    elif spec.workers is None and spec.threads is None:
        workers, threads = default_layout(cores)
        if cells is not None and 0 < cells < workers:  # fewer cells than workers: more threads each
            workers, threads = cells, max(cores // cells, 1)
    elif spec.workers is None:
        threads, workers = spec.threads, max(cores // spec.threads, 1)
    else:
        workers, threads = spec.workers, spec.threads or max(cores // spec.workers, 1)
    return Execution(executor=spec.executor, workers=workers, threads=threads, device=device,
                     address=spec.address, retries=spec.retries, gpus=gpus)


def default_layout(cores: int, memory_gib: float | None = None) -> tuple[int, int]:
    """(cells at a time, threads per cell) on ``cores`` CPU cores when the user names neither:
    one single-threaded cell per core, as many as fit at 2 GiB each.

    Measured on 2 cores (README, "Running faster"): two 1-thread workers ran the SST-2 reference
    grid 1.19x faster than one 2-thread cell (a second torch thread gives only ~1.5-1.6x); on the
    6-cell quickstart the two were within the machine's noise.
    """
    memory_gib = physical_memory_gib() if memory_gib is None else memory_gib
    return max(min(cores, int(memory_gib // 2)), 1), 1


def physical_memory_gib() -> float:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 1024**3
    except (ValueError, OSError, AttributeError):
        return 4.0


def effective_suite(suite: Suite, execution: Execution) -> Suite:
    """``suite`` with the device a cell trains on filled in (cells read it, their ids do not)."""
    spec = suite.execution.model_copy(update={"device": execution.device, "executor": execution.executor,
                                              "workers": execution.workers, "threads": execution.threads})
    return suite.model_copy(update={"execution": spec})


def describe_exit(exitcode: int | None) -> str:
    """How a worker process ended, in words (``killed by SIGKILL``)."""
    if exitcode is None:
        return "stopped answering"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (the kernel's out-of-memory killer sends it)" if name == "SIGKILL" else ""
        return f"killed by {name}{hint}"
    return f"exited with status {exitcode}"


def worker_died(cell: Cell, how: str, *, attempts: int):
    """The failed result of a cell whose worker died ``attempts`` times."""
    from ..training import CellResult

    times = "once" if attempts == 1 else f"{attempts} times"
    return CellResult(cell=cell.describe(), status="failed",
                      reason=f"its worker process died {times}: {how}",
                      info={"wall_s": 0.0, "train_s": 0.0, "eval_s": 0.0, "attempts": attempts,
                            "worker_died": how})

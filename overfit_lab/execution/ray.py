"""Cells as Ray tasks, on a local Ray or a cluster (``--executor ray [--address ...]``).

Design
------
* **The driver is the only writer.** Each cell is one Ray task that returns the cell's
  :class:`~overfit_lab.training.CellResult`; the driver (this process) hands it to
  ``events.result``, which commits it, as soon as ``ray.wait`` says it is ready. A result is
  committed once: each task's reference maps to one cell and is collected once.
* **What travels.** The suite's JSON goes to the object store once (``ray.put``); a task gets a
  cell id and rebuilds its cells from the suite, once per worker process.
* **Progress.** A task pushes ``("started" | "epoch", cell_id, value)`` to a small actor, which the
  driver drains between waits; pushes are not waited for (a task blocked in ``ray.get`` lends its
  CPUs out), so the result also lists the epochs pushed and the driver tells those not yet told
  before it commits: a cell's events come before its result, and later pushes of a committed
  cell are dropped. A retried cell is told started once and its epochs only forward.
* **Retries.** A task whose worker process dies (killed, out of memory, its node lost) is run
  again by Ray, ``execution.retries`` times (``max_retries``); exceptions are not retried. A cell
  whose worker died every time is stored failed (:func:`worker_died`) and the run goes on. A
  user error (:class:`~overfit_lab.errors.OverfitLabError`) in a task stops the run: it is
  raised in the driver.
* **Cancellation.** At most twice the cluster's cell slots are in flight, so Ctrl-C loses little
  work. On Ctrl-C or any error every task still out is force-cancelled, Ray is shut down if this
  executor started it, and the exception goes on; the results received so far are committed.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import Counter, deque
from contextlib import suppress
from functools import lru_cache

from ..errors import OverfitLabError
from ..grid import Cell
from ._base import CellEvents, Execution, cpu_count, worker_died

__all__ = ["RayExecutor"]

FORWARDED_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM")
OBJECT_STORE_BYTES = 512 * 1024**2  # results are small; Ray's default takes 30% of the memory
POLL_S = 0.5  # how often the driver looks for progress while no result comes
CONNECT_TIMEOUT_S = 10.0


def import_ray():
    """The ``ray`` module, or a user error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise OverfitLabError("--executor ray needs Ray.", key="execution.executor",
                              fix="pip install 'overfit-lab[ray]'.") from None
    return ray


class RayExecutor:
    """Each cell one Ray task of ``execution.threads`` CPUs (and one GPU on CUDA)."""

    def __init__(self, execution: Execution) -> None:
        self.execution = execution

    def run(self, cells: list[Cell], events: CellEvents) -> None:
        if not cells:
            return
        ray = import_ray()
        started_here = connect(ray, self.execution)
        try:
            _Run(ray, self.execution, cells, events).run()
        finally:
            if started_here:
                ray.shutdown()


# --------------------------------------------------------------------------- connecting
def connect(ray, execution: Execution) -> bool:
    """Use the running Ray, join the cluster at ``execution.address`` or start a local Ray;
    True when this call did (so the caller shuts it down)."""
    if ray.is_initialized():
        return False
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine unasked
    if execution.address:
        check_reachable(execution.address)
        # a local Ray's workers inherit this environment; a cluster's get these for this job
        env = {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}
        try:
            ray.init(address=execution.address, runtime_env={"env_vars": env}, **quiet)
        except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError...
            raise unreachable(execution.address, first_line(exc)) from None
        return True
    # more threads than cores run oversubscribed, as locally; Ray would wait forever for the cores
    cpus = max(cpu_count(), execution.threads)
    ray.init(num_cpus=cpus, include_dashboard=False, object_store_memory=OBJECT_STORE_BYTES, **quiet)
    return True


def check_reachable(address: str) -> None:
    """Fail fast on a ``HOST:PORT`` (or ``ray://HOST:PORT``) nobody listens on: Ray itself
    retries for minutes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if address == "auto" or not host or not port.isdigit():
        return  # Ray resolves these itself, and says quickly when it cannot
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise unreachable(address, exc.strerror or str(exc)) from None


def unreachable(address: str, reason: str) -> OverfitLabError:
    return OverfitLabError(
        f"could not connect to the Ray cluster at {address} ({reason}).", key="--address",
        fix="start it (ray start --head) and pass the address it prints, HOST:6379 (or auto on one of "
            "its nodes, ray://HOST:10001 from outside), or leave --address out for a local Ray.")


def first_line(exc: BaseException) -> str:
    """The first non-empty line of ``exc``'s message, or its type's name."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


# --------------------------------------------------------------------------- the worker side
@lru_cache(maxsize=2)
def _cells(suite_json: str) -> dict[str, Cell]:
    """The cells of a suite by id, once per worker process."""
    from ..grid import build_grid
    from ..suite import Suite

    return {cell.cell_id: cell for cell in build_grid(Suite.from_json(suite_json))}


def _run_cell_task(suite_json: str, cell_id: str, threads: int, progress) -> tuple[str, object, dict]:
    """One cell in a Ray worker: ``("result", CellResult, facts)``, or ``("error", message, facts)``
    for a user error (returned, not raised: no exception pickling involved). ``facts``: the
    epochs pushed and which attempt this is."""
    import torch

    from ..training import run_cell

    epochs: list[int] = []

    def on_epoch(_: Cell, epoch: int) -> None:
        epochs.append(epoch)
        progress.push.remote("epoch", cell_id, epoch)

    # pushes are not waited for: a task blocked in ray.get gives its CPUs back, and Ray would
    # start a worker for the next cell meanwhile
    progress.push.remote("started", cell_id, os.getpid())
    torch.set_num_threads(threads)
    facts = {"epochs": epochs, "attempt": _attempt()}
    try:
        return "result", run_cell(_cells(suite_json)[cell_id], on_epoch=on_epoch), facts
    except OverfitLabError as exc:
        return "error", str(exc), facts


def _attempt() -> int | None:
    """Which run of this task this is (1 the first), when this Ray says."""
    import ray

    core = getattr(ray._private.worker.global_worker, "core_worker", None)
    attempt = getattr(core, "get_current_task_attempt_number", None)
    return attempt() + 1 if attempt is not None else None


class _Progress:
    """The actor tasks tell their progress to; the driver drains it."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, int]] = []

    def push(self, kind: str, cell_id: str, value: int) -> None:
        self.events.append((kind, cell_id, value))

    def drain(self) -> list[tuple[str, str, int]]:
        events, self.events = self.events, []
        return events


# --------------------------------------------------------------------------- the driver side
class _Run:
    """One ``RayExecutor.run``: submits the cells, relays progress, collects the results."""

    def __init__(self, ray, execution: Execution, cells: list[Cell], events: CellEvents) -> None:
        self.ray, self.execution, self.events = ray, execution, events
        self.cells = cells
        self.by_id = {cell.cell_id: cell for cell in cells}
        self.pending: dict = {}  # ObjectRef -> Cell
        self.told: dict[str, int] = {}  # cell id -> last epoch told (0: started)
        self.starts: Counter[str] = Counter()
        self.done: set[str] = set()
        self.progress = None  # the actor, once started

    def run(self) -> None:
        ray = self.ray
        self.progress = ray.remote(num_cpus=0)(_Progress).remote()
        suite = ray.put(self.cells[0].suite.to_json())
        task = ray.remote(_run_cell_task)
        gpus = 1 if self.execution.device == "cuda" else 0
        options = {"num_cpus": self.execution.threads, "num_gpus": gpus,
                   "max_retries": self.execution.retries, "retry_exceptions": False}
        queue = deque(self.cells)
        try:
            while queue or self.pending:
                limit = 2 * self.slots() if queue else 0
                while queue and len(self.pending) < limit:
                    cell = queue.popleft()
                    ref = task.options(**options, name=f"overfit-lab:{cell.cell_id}").remote(
                        suite, cell.cell_id, self.execution.threads, self.progress)
                    self.pending[ref] = cell
                ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=POLL_S)
                self.relay_progress()
                for ref in ready:
                    self.collect(ref, self.pending.pop(ref))
        finally:
            self.cancel()

    def slots(self) -> int:
        """Cells the cluster can run at once now (it may grow)."""
        total = self.ray.cluster_resources()
        if self.execution.device == "cuda":
            return max(int(total.get("GPU", 0)), 1)
        return max(int(total.get("CPU", 0) // self.execution.threads), 1)

    def relay_progress(self) -> None:
        for kind, cell_id, value in self.ray.get(self.progress.drain.remote()):
            if cell_id in self.done:
                continue
            cell = self.by_id[cell_id]
            if kind == "started":
                self.starts[cell_id] += 1
                self.catch_up(cell, [])
            else:  # a retry goes through the epochs again: catch_up tells each once
                self.catch_up(cell, [value])

    def collect(self, ref, cell: Cell) -> None:
        """Commit the cell of a finished task: its result, or failed when its worker died."""
        try:
            kind, payload, facts = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as exc:  # raised by our task code, not retried
            cause = exc.cause if exc.cause is not None else exc
            how = f"{type(cause).__name__}: {first_line(cause)}"
            self.commit(worker_died(cell, how, attempts=max(self.starts[cell.cell_id], 1)))
            return
        except self.ray.exceptions.RayError as exc:  # its worker or node died, retries spent
            self.commit(worker_died(cell, first_line(exc), attempts=self.execution.retries + 1))
            return
        if kind == "error":
            raise OverfitLabError(payload)
        self.catch_up(cell, facts["epochs"])
        attempts = facts["attempt"] or self.starts[cell.cell_id]
        if attempts > 1:
            payload.info["attempts"] = attempts
        self.commit(payload)

    def catch_up(self, cell: Cell, epochs: list[int]) -> None:
        """Tell the progress of ``cell`` its pushes have not told yet (they may land after its result)."""
        if cell.cell_id not in self.told:
            self.told[cell.cell_id] = 0
            self.events.started(cell)
        for epoch in epochs:
            if epoch > self.told[cell.cell_id]:
                self.told[cell.cell_id] = epoch
                self.events.epoch(cell, epoch)

    def commit(self, result) -> None:
        self.done.add(result.cell.cell_id)
        self.events.result(result)

    def cancel(self) -> None:
        """Stop every task still out and the progress actor (nothing is left when all went well)."""
        # the run is ending, maybe on an error: a failing cleanup must not hide it
        for ref in self.pending:
            with suppress(Exception):
                self.ray.cancel(ref, force=True)
        self.pending.clear()
        if self.progress is not None:
            with suppress(Exception):
                self.ray.kill(self.progress)

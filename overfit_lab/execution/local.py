"""Cells on this machine: in this process one after another, or in a pool of spawned worker
processes, each running one cell at a time with its own torch threads.

A worker is a ``multiprocessing`` spawn process that reads cell ids from a pipe and sends back
epoch events and the cell's :class:`~overfit_lab.training.CellResult`; the driver (this process)
commits each result, so it stays the only writer of the run. A pool is written here rather than
taken from ``concurrent.futures`` because that one cannot say which cell a dead worker was
running: here the cell is run again (``execution.retries`` times) or stored as failed with how
the worker died, and the other workers go on.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from collections import Counter, deque
from contextlib import contextmanager
from multiprocessing.connection import wait

from ..errors import OverfitLabError
from ..grid import Cell
from ._base import CellEvents, Execution, describe_exit, worker_died

__all__ = ["InProcessExecutor", "ProcessPoolExecutor"]


@contextmanager
def torch_threads(threads: int):
    """Run with ``threads`` torch threads, then restore the previous number."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class InProcessExecutor:
    """One cell after another in this process (``--workers 1``)."""

    def __init__(self, execution: Execution) -> None:
        self.execution = execution

    def run(self, cells: list[Cell], events: CellEvents) -> None:
        from ..training import run_cell

        with torch_threads(self.execution.threads):
            for cell in cells:
                events.started(cell)
                events.result(run_cell(cell, on_epoch=events.epoch))


# --------------------------------------------------------------------------- the worker side
def _die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when the driver dies (Linux), so a driver killed with
    SIGKILL leaves no worker training on; elsewhere a worker ends when its pipe closes."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            return
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)


def _worker(conn, suite_json: str, threads: int, cuda_device: str | None, parent: int) -> None:
    """A worker process: run the cells whose ids arrive on ``conn`` until it sends ``None``."""
    _die_with_parent(parent)
    conn.send(("ready", None, None))  # it got this far: a later death is the cell's, not the start's
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    if cuda_device is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = cuda_device
    import torch

    torch.set_num_threads(threads)
    from ..grid import build_grid
    from ..suite import Suite
    from ..training import run_cell

    cells = {cell.cell_id: cell for cell in build_grid(Suite.from_json(suite_json))}
    def on_epoch(cell: Cell, epoch: int) -> None:
        conn.send(("epoch", cell.cell_id, epoch))

    while (cell_id := conn.recv()) is not None:
        try:
            result = run_cell(cells[cell_id], on_epoch=on_epoch)
        except OverfitLabError as exc:
            conn.send(("error", cell_id, str(exc)))
            return
        conn.send(("result", cell_id, result))


class _Worker:
    def __init__(self, context, suite_json: str, execution: Execution, slot: int) -> None:
        self.conn, child = context.Pipe()
        cuda = str(slot % execution.gpus) if execution.device == "cuda" and execution.gpus else None
        self.process = context.Process(target=_worker,
                                       args=(child, suite_json, execution.threads, cuda, os.getpid()),
                                       name=f"overfit-lab-worker-{slot}", daemon=True)
        self.process.start()
        child.close()
        self.slot = slot
        self.cell: Cell | None = None
        self.ready = False

    def give(self, cell: Cell) -> None:
        self.cell = cell
        self.conn.send(cell.cell_id)

    def stop(self, *, timeout: float = 5.0) -> None:
        """Ask the worker to end; terminate it if it does not (a cell is running), then kill it."""
        if self.process.is_alive():
            try:
                if self.cell is None:
                    self.conn.send(None)
                    self.process.join(timeout)
            except (BrokenPipeError, OSError):
                pass
        for end in (self.process.terminate, self.process.kill):
            if not self.process.is_alive():
                break
            end()
            self.process.join(timeout)
        self.conn.close()


class ProcessPoolExecutor:
    """``execution.workers`` spawned processes, one cell each at a time."""

    def __init__(self, execution: Execution) -> None:
        self.execution = execution

    def run(self, cells: list[Cell], events: CellEvents) -> None:
        if not cells:
            return
        context = multiprocessing.get_context("spawn")
        suite_json = cells[0].suite.to_json()
        # longest first, so that the last cells to finish are short ones and no worker idles long
        queue = deque(sorted(cells, key=lambda cell: cell.train_size * cell.epochs, reverse=True))
        self.attempts: Counter[str] = Counter()
        workers: list[_Worker] = []
        try:
            for slot in range(min(self.execution.workers, len(cells))):
                workers.append(_Worker(context, suite_json, self.execution, slot))
            for worker in workers:
                self._next(worker, queue, events)
            while any(w.cell is not None for w in workers):
                busy = [w for w in workers if w.cell is not None]
                ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
                for worker in busy:
                    if (worker.conn in ready or worker.conn.poll()) and self._receive(worker, events):
                        self._next(worker, queue, events)
                        continue
                    if worker.process.sentinel in ready and not worker.process.is_alive():
                        replacement = self._died(worker, queue, events, context, suite_json)
                        workers[workers.index(worker)] = replacement
                        self._next(replacement, queue, events)
        finally:
            for worker in workers:
                worker.stop()

    def _next(self, worker: _Worker, queue: deque, events: CellEvents) -> None:
        worker.cell = None
        if queue:
            worker.give(queue.popleft())
            events.started(worker.cell)

    def _receive(self, worker: _Worker, events: CellEvents) -> bool:
        """Handle the worker's messages; True when its cell's result came."""
        while worker.conn.poll():
            try:
                kind, cell_id, payload = worker.conn.recv()
            except (EOFError, OSError):
                return False  # it died: its sentinel says so
            if kind == "ready":
                worker.ready = True
            elif kind == "epoch":
                events.epoch(worker.cell, payload)
            elif kind == "error":
                raise OverfitLabError(payload)
            else:
                if self.attempts[cell_id]:  # a retry after its worker died
                    payload.info["attempts"] = self.attempts[cell_id] + 1
                events.result(payload)
                return True
        return False

    def _died(self, worker: _Worker, queue: deque, events: CellEvents, context, suite_json: str) -> _Worker:
        """The worker's process ended mid-cell: run the cell again or store it as failed, and start
        a new worker in its slot."""
        cell, how = worker.cell, describe_exit(worker.process.exitcode)
        worker.cell = None
        worker.stop()
        if not worker.ready:  # it died importing the caller's script: every new worker would too
            raise OverfitLabError(f"a worker process ended before it could start ({how}), so no cell ran.",
                                  key="execution.workers",
                                  fix='a Python script that starts a run must do so under if __name__ == '
                                      '"__main__": (workers are spawned processes that import it); '
                                      "otherwise see the worker's error above, or use workers = 1.")
        self.attempts[cell.cell_id] += 1
        if self.attempts[cell.cell_id] <= self.execution.retries:
            queue.appendleft(cell)
        else:
            events.result(worker_died(cell, how, attempts=self.attempts[cell.cell_id]))
        return _Worker(context, suite_json, self.execution, worker.slot) if queue else worker

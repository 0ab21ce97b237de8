"""The driver: expand a suite into cells, run the ones not yet finished, commit each one."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from rich.console import Console

from .analysis import RunResult, load_run
from .data import load_task_data
from .environment import environment_facts
from .errors import OverfitLabError
from .grid import build_grid
from .models import resolve_model_path
from .report.terminal import GridProgress, epoch_work, make_console, print_summary
from .store import RunStore
from .suite import Suite, load_suite
from .training import run_cell

DEFAULT_REPORTS = Path("reports")


def default_run_dir(suite: Suite, root: Path = DEFAULT_REPORTS) -> Path:
    """``reports/<suite>-<timestamp>``."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", suite.name).strip("-") or "suite"
    return root / f"{slug}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def run_suite(suite: Suite | str | Path | None = None, *, output: str | Path | None = None,
              resume: str | Path | None = None, console: Console | None = None,
              quiet: bool = False) -> RunResult:
    """Run every cell of a suite and return the stored results.

    Parameters
    ----------
    suite : Suite, path, or None
        The suite to run; ``None`` with ``resume`` continues that run.
    output : path, optional
        The run directory (default ``reports/<suite>-<timestamp>``).
    resume : path, optional
        A run directory to continue: finished cells are skipped, failed ones tried again.
    console : rich Console, optional
        Where progress and the summary go.
    quiet : bool
        No progress display and no summary.
    """
    console = console or make_console()
    if resume is not None:
        store = RunStore.open(resume)
        suite = store.suite()
        _check_data_unchanged(store, suite)
    else:
        if suite is None:
            raise ValueError("give a suite or a run directory to resume")
        source = "<suite>"
        if not isinstance(suite, Suite):
            source, suite = str(suite), load_suite(suite)
        run_dir = Path(output) if output is not None else default_run_dir(suite)
        resolve_model_path(suite.model.name, source=source)  # fail before creating anything
        data = load_task_data(suite, source=source)
        environment = {**environment_facts(), "seeds": suite.grid.seeds, "data_seed": suite.data.seed}
        store = RunStore.create(run_dir, suite, environment,
                                meta={"data_fingerprint": data.fingerprint(),
                                      "label_names": data.label_names})

    cells = build_grid(suite)
    finished = store.finished_ids()
    todo = [c for c in cells if c.cell_id not in finished]
    if quiet:
        for cell in todo:
            store.commit(run_cell(cell))
    else:
        console.print(f"[bold]{suite.name}[/]: {len(cells)} cells, {len(todo)} to run -> {store.run_dir}")
        n_validation = len(load_task_data(suite).validation)
        work = {c.cell_id: epoch_work(c.train_size, n_validation) for c in todo}
        with GridProgress(console, total_cells=len(cells), done_cells=len(cells) - len(todo),
                          total_work=sum(c.epochs * work[c.cell_id] for c in todo)) as progress:
            for cell in todo:
                progress.start_cell(cell.cell_id, cell.epochs, work[cell.cell_id])
                try:
                    result = run_cell(cell, on_epoch=lambda _cell, epoch: progress.epoch_done(epoch))
                except KeyboardInterrupt:
                    progress.progress.stop()
                    done = len(store.finished_ids())
                    console.print(f"[yellow]interrupted[/]: {done} finished cells are saved in "
                                  f"{store.run_dir}; continue with: overfit-lab run --resume {store.run_dir}")
                    raise
                store.commit(result)
                progress.finish_cell(cell.cell_id, result.status, result.info["wall_s"], result.reason)
    return finish_run(store.run_dir, console, quiet=quiet)


def finish_run(run_dir: Path, console: Console, *, quiet: bool = False) -> RunResult:
    """Read the stored run back, write its HTML report and (unless quiet) print its summary."""
    run = load_run(run_dir)
    report = write_run_report(run, console)
    if not quiet:
        print_summary(run, console)
        if report is not None:
            console.print(f"[dim]report: {report}[/]")
    return run


def write_run_report(run: RunResult, console: Console) -> Path | None:
    """Write report.html into the run directory; a failure is reported, never fatal (the run's
    results are already stored, and `overfit-lab report` can try again)."""
    from .report.html import write_report

    try:
        return write_report(run)
    except Exception as exc:  # noqa: BLE001 - the stored run matters more than its report
        console.print(f"[yellow]warning: the HTML report could not be written ({type(exc).__name__}: {exc}); "
                      f"retry with: overfit-lab report {run.run_dir}[/]")
        return None


def _check_data_unchanged(store: RunStore, suite: Suite) -> None:
    recorded = store.meta().get("data_fingerprint")
    if recorded is not None and json.loads(recorded) != load_task_data(suite).fingerprint():
        raise OverfitLabError("the data changed since this run started, so its cells would not compare.",
                              file=store.run_dir, key="data",
                              fix="restore the original data, or start a new run.")

"""The driver: expand a suite into cells, run the ones not yet finished, commit each one.

It reports progress to a :class:`~overfit_lab.progress.RunObserver` and imports no user
interface; :func:`overfit_lab.app.run_suite` is the public entry point around it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
from datetime import datetime
from pathlib import Path

from .data import load_task_data
from .environment import environment_facts
from .errors import OverfitLabError
from .execution import (
    CellEvents,
    Execution,
    check_available,
    effective_suite,
    make_executor,
    resolve_execution,
)
from .grid import build_grid
from .model_checks import check_suite_model
from .progress import RunObserver, epoch_work
from .store import RunStore
from .suite import ExecutionSpec, Suite, load_suite

DEFAULT_REPORTS = Path("reports")


def default_run_dir(suite: Suite, root: Path = DEFAULT_REPORTS) -> Path:
    """``reports/<suite>-<timestamp>``."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", suite.name).strip("-") or "suite"
    return root / f"{slug}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def execution_of(suite: Suite, overrides: dict | None = None, *, source: str | Path = "<suite>",
                 cells: int | None = None) -> Execution:
    """How ``suite``'s cells run: its ``[execution]`` section, ``overrides`` (the command line's
    ``--workers``, ``--threads``, ``--executor``, ``--address``, ``--device``) winning."""
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    try:
        spec = ExecutionSpec.model_validate({**suite.execution.model_dump(), **given})
    except ValueError as exc:
        error = exc.errors()[0] if hasattr(exc, "errors") else {"loc": (), "msg": str(exc)}
        key = ".".join(str(part) for part in error["loc"])
        raise OverfitLabError(f"{error['msg']}.", key=f"--{key}" if key in given else f"execution.{key}",
                              fix="see overfit-lab run --help.") from None
    chosen = resolve_execution(spec, source=str(source), cells=cells)
    check_available(chosen)
    return chosen


def open_store(suite: Suite | str | Path | None, *, output: str | Path | None = None,
               resume: str | Path | None = None, execution: dict | None = None) -> RunStore:
    """The run directory to fill, locked for this process: a new one for ``suite`` (checked
    before anything is created), or ``resume``'s, whose data must not have changed.
    ``execution``: overrides of the suite's ``[execution]``, checked here too."""
    if resume is not None:
        store = RunStore.open(resume).lock()
        try:
            execution_of(store.suite(), execution, source=store.run_dir / "suite.json")
            check_suite_model(store.suite(), source=store.run_dir / "suite.json")
            _check_data_unchanged(store, store.suite())
        except BaseException:
            store.close()
            raise
        return store
    if suite is None:
        raise ValueError("give a suite or a run directory to resume")
    source = "<suite>"
    if not isinstance(suite, Suite):
        source, suite = str(suite), load_suite(suite)
    run_dir = Path(output) if output is not None else default_run_dir(suite)
    execution_of(suite, execution, source=source)  # fail before creating anything
    check_suite_model(suite, source=source)
    data = load_task_data(suite, source=source)
    environment = {**environment_facts(), "seeds": suite.grid.seeds, "data_seed": suite.data.seed}
    return RunStore.create(run_dir, suite, environment,
                           meta={"data_fingerprint": data.fingerprint(), "label_names": data.label_names,
                                 "leakage": data.leakage.to_dict()})


def run_grid(store: RunStore, observer: RunObserver | None = None, *, execution: dict | None = None) -> Path:
    """Run every cell of the store's suite that has not finished, committing each one as it
    comes (this process is the only writer); returns the run directory. ``execution``: overrides
    of the suite's ``[execution]`` (any executor can continue any run). On Ctrl-C the workers
    stop, the observer hears how many cells are saved, then it re-raises."""
    observer = observer or RunObserver()
    suite = store.suite()
    finished = store.finished_ids()
    left = sum(c.cell_id not in finished for c in build_grid(suite))
    chosen = execution_of(suite, execution, source=store.run_dir / "suite.json", cells=left)
    cells = _with_model_dirs(build_grid(effective_suite(suite, chosen)), suite, store.run_dir)
    todo = [c for c in cells if c.cell_id not in finished]
    data = load_task_data(suite)
    n_validation = len(data.validation)
    for line in data.leakage.lines():
        observer.data_warning(line)
    observer.run_started(name=suite.name, run_dir=store.run_dir, total_cells=len(cells), todo=todo,
                         work={c.cell_id: epoch_work(c.train_size, n_validation) for c in todo})
    observer.executing(chosen.describe() + _saving_note(suite, len(todo)))

    by_id = {cell.cell_id: cell for cell in todo}

    def result(cell_result) -> None:
        cell_result.info.setdefault("execution", chosen.describe())
        commit_cell(store, cell_result)
        observer.cell_finished(by_id[cell_result.cell.cell_id], cell_result)

    try:
        make_executor(chosen).run(todo, CellEvents(started=observer.cell_started, epoch=observer.epoch_done,
                                                   result=result))
    except KeyboardInterrupt:
        observer.interrupted(store.run_dir, len(store.finished_ids()))
        raise
    finally:
        observer.run_ended()
    return store.run_dir


MODELS_DIR = "models"


def _with_model_dirs(cells: list, suite: Suite, run_dir: Path) -> list:
    """The cells with where to save their model, for ``[output] save_models``."""
    checkpoint = suite.output.save_models
    if checkpoint == "none":
        return cells
    return [dataclasses.replace(c, model_dir=str((run_dir / MODELS_DIR / c.cell_id).resolve()),
                                save_model=checkpoint) for c in cells]


def _saving_note(suite: Suite, cells: int) -> str:
    """The disk the saved models will take, told before they are trained."""
    if suite.output.save_models == "none" or cells == 0:
        return ""
    from .models import resolve_model_path

    path = Path(resolve_model_path(suite.model.name))
    size = sum(f.stat().st_size for f in path.glob("*.safetensors")) if path.is_dir() else 0
    about = f" (about {size / 1e6:,.0f} MB each, {cells * size / 1e9:.1f} GB in all)" if size else ""
    return f"; saving each cell's {suite.output.save_models} model in {MODELS_DIR}/{about}"


def commit_cell(store: RunStore, result) -> None:
    """Store one cell; when that fails (disk full, a read-only disk) the run stops there, the cell
    not stored (its transaction rolled back) and every earlier one kept."""
    try:
        store.commit(result)
    except (OSError, sqlite3.Error) as exc:
        reason = getattr(exc, "strerror", None) or " ".join(str(exc).split())
        raise OverfitLabError(
            f"cell {result.cell.cell_id} could not be stored ({reason}); the run stopped with "
            f"{len(store.finished_ids())} cells stored.", file=store.db_path, key="RUN_DIR",
            fix=f"free disk space, then continue with: overfit-lab run --resume {store.run_dir}") from None


def _check_data_unchanged(store: RunStore, suite: Suite) -> None:
    recorded = store.meta().get("data_fingerprint")
    if recorded is not None and json.loads(recorded) != load_task_data(suite).fingerprint():
        raise OverfitLabError("the data changed since this run started, so its cells would not compare.",
                              file=store.run_dir, key="data",
                              fix="restore the original data, or start a new run.")

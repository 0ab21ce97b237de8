"""A run directory exported to MLflow: a parent run per run directory, a nested run per cell.

Needs ``mlflow-skinny`` (``pip install 'overfit-lab[mlflow]'``); only the client API is used
(:class:`mlflow.MlflowClient` with explicit run ids, never the global active run), so nothing
carries over between calls.

What is logged
--------------
The parent run (named after the run directory, in the experiment named after the suite unless
``experiment`` is given): the resolved suite flattened into params (``model.name``,
``grid.train_sizes``, ``recipe.learning_rate``...; lists as JSON, values cut at MLflow's 6000
characters), the environment as ``overfit_lab.*`` tags with ``overfit_lab.run_dir``, and the
artifacts ``suite.json``, ``environment.json``, ``report.html`` (when written) and a consistent
copy of ``run.sqlite`` (taken with SQLite's backup API, so a writer may be at work).

A nested run per cell (run name = cell id, tag ``mlflow.parentRunId``): params ``train_size``,
``strategy``, ``seed``, ``label_noise``, ``epochs``, ``record_epochs``, ``epoch_mode``; the split
metrics after every epoch as ``{split}_{metric}`` (``validation_loss``) with ``step`` = epoch; at
the cell's last epoch, its finite headline and extra scores (``gap_accuracy``, ``ece``...; those
that are a split metric's last value are already in its history) and its diagnostics that are
one figure per cell and checkpoint (rows without a group, op, layer, bin or FPR) not already
logged as a score; the ``best`` checkpoint's as ``best/{metric}`` at the best epoch. Tags
``overfit_lab.status``, ``overfit_lab.reason``, ``overfit_lab.verdict`` (at the largest epoch value)
and ``overfit_lab.logged_metrics`` (a digest of the (name, step) pairs logged, so a later export
that finds them unchanged reads no metric history back); the MLflow status is ``FINISHED`` or
``FAILED``. The parent is terminated (``FINISHED``, or ``FAILED`` when a cell failed) by
:func:`export_run` only, so it stays ``RUNNING`` while :func:`export_cell` adds cells.

Exporting again updates the same runs: their ids are kept in the run directory's store (meta key
``mlflow``: ``{tracking_uri, experiment_id, parent_run_id, cells: {cell_id: run_id}}``). A stored
run that no longer exists in the tracking store (reset, deleted, another store) or lives in
another experiment is created anew. Params already logged keep their value (MLflow cannot change
them), tags are overwritten, and a metric is logged once per (name, step): figures of a cell that
failed and was later run again keep their first values where they were already logged.

The tracking store is ``tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else MLflow's default
(``sqlite:///mlflow.db``, which mlflow-skinny cannot open: give a server's ``http(s)://`` URI or a
``file:`` URI; a ``file:`` store named here is allowed unless ``MLFLOW_ALLOW_FILE_STORE=false``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sqlite3
import tempfile
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import OverfitLabError
from ..scores import CELL_KEYS
from ..store import DB_NAME, RunStore

if TYPE_CHECKING:
    from collections.abc import Iterable

    from mlflow import MlflowClient

    from ..analysis import RunResult

__all__ = ["META_KEY", "export_cell", "export_run"]

META_KEY = "mlflow"
"""The run store's meta key holding the MLflow ids of a run directory's export."""

_CELL_PARAMS = ("train_size", "strategy", "seed", "label_noise", "epochs", "record_epochs", "epoch_mode")
_ROW_FIELDS = ("group", "op", "severity", "layer", "bin_low", "bin_high", "fpr")
_MAX_KEY, _MAX_PARAM, _MAX_TAG = 250, 6000, 8000  # MLflow's limits
_BAD_KEY_CHARS = re.compile(r"[^\w./\- ]")  # MLflow names: alphanumerics, _ - . / and space
# a cell run's tag: a digest of the (name, step) pairs logged to it, so an export that finds it
# unchanged skips reading every metric's history back
_LOGGED_TAG = "overfit_lab.logged_metrics"
_DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
_FIX_URI = ("give an MLflow server's http(s):// URI (or set MLFLOW_TRACKING_URI); a local file: store "
            "also needs MLFLOW_ALLOW_FILE_STORE=true")


def export_run(run_dir: str | Path, *, tracking_uri: str | None = None, experiment: str | None = None,
               cells: Iterable[str] | None = None, store: RunStore | None = None) -> dict[str, Any]:
    """Export a run directory to MLflow, creating or updating its parent and cell runs.

    Parameters
    ----------
    run_dir : str or Path
        A run directory written by :func:`overfit_lab.run_suite` or :func:`overfit_lab.audit`.
    tracking_uri : str, optional
        The tracking store; ``None``: ``$MLFLOW_TRACKING_URI`` or MLflow's default.
    experiment : str, optional
        The experiment's name (created if missing); ``None``: the suite's name.
    cells : iterable of str, optional
        The cell ids to export; ``None``: every stored cell.
    store : RunStore, optional
        ``run_dir``'s store when this process already holds its lock (the runner's); without it
        the run directory is locked for the export (refused while another process writes it).

    Returns
    -------
    dict
        ``tracking_uri``, ``experiment_id``, ``parent_run_id``, ``cell_runs`` (cell id -> run id,
        the exported cells), ``created`` and ``updated`` (MLflow runs, the parent included).
    """
    return _export(run_dir, cells, tracking_uri=tracking_uri, experiment=experiment, store=store,
                   whole_run=True)


def export_cell(run_dir: str | Path, cell_id: str, *, tracking_uri: str | None = None,
                experiment: str | None = None, store: RunStore | None = None) -> dict[str, Any]:
    """Export one cell as it finishes (``[tracking] mlflow = true``): its nested run, and the
    parent run if missing (with ``suite.json`` and ``environment.json``; the report and the
    database are logged by :func:`export_run`). Parameters and result as :func:`export_run`."""
    return _export(run_dir, [cell_id], tracking_uri=tracking_uri, experiment=experiment, store=store,
                   whole_run=False)


@dataclass
class _Session:
    """One export: the client, where the runs go and the ids found or made so far."""

    client: MlflowClient
    store: RunStore  # locked by this process
    ids: dict[str, Any]
    created: int = 0
    updated: int = 0
    cell_runs: dict[str, str] = field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        return self.store.run_dir


def _export(run_dir: str | Path, cell_ids: Iterable[str] | None, *, tracking_uri: str | None,
            experiment: str | None, store: RunStore | None, whole_run: bool) -> dict[str, Any]:
    from ..analysis import load_run

    mlflow = _mlflow()
    from mlflow.exceptions import MlflowException

    run_dir = Path(run_dir)
    owned = store is None
    store = RunStore.open(run_dir).lock() if store is None else store
    try:
        run = load_run(run_dir)
        wanted = _wanted_cells(run, cell_ids)
        uri = tracking_uri or mlflow.get_tracking_uri()
        if uri.startswith("file:"):  # named by the user: MLflow 3 wants this said explicitly
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        try:
            session = _open(mlflow, uri, experiment or run.suite.name, store)
            parent_new = _parent(session, run, whole_run)
            tables = _CellTables.of(run)
            for cell_id in wanted:
                _cell(session, tables, cell_id, parent_new)
            if whole_run:
                _run_artifacts(session)
            _save_ids(session)
        except (MlflowException, OSError) as exc:
            raise OverfitLabError(f"the MLflow export to {uri} failed ({_one_line(exc)}).",
                                  key="export mlflow",
                                  fix="check the tracking store (and the server's logs), then export again."
                                  ) from None
    finally:
        if owned:
            store.close()
    return {"tracking_uri": uri, "experiment_id": session.ids["experiment_id"],
            "parent_run_id": session.ids["parent_run_id"], "cell_runs": session.cell_runs,
            "created": session.created, "updated": session.updated}


def _mlflow():
    # offline by default, as the rest of overfit-lab: no usage telemetry unless the user enables it
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        import mlflow
    except ImportError:
        raise OverfitLabError("MLflow export needs mlflow-skinny.", key="export mlflow",
                              fix="pip install 'overfit-lab[mlflow]'") from None
    return mlflow


def _wanted_cells(run: RunResult, cell_ids: Iterable[str] | None) -> list[str]:
    stored = list(run.cells["cell_id"])
    if cell_ids is None:
        return stored
    wanted = list(dict.fromkeys([cell_ids] if isinstance(cell_ids, str) else cell_ids))
    unknown = [c for c in wanted if c not in set(stored)]
    if unknown:
        raise OverfitLabError(f"{run.run_dir} holds no cell {', '.join(unknown)}.", key="cell",
                              fix=f"give cells it holds: {', '.join(stored) or '(none yet)'}.")
    return wanted


def _open(mlflow, uri: str, experiment: str, store: RunStore) -> _Session:
    """A client of ``uri`` and the experiment's id (created if missing)."""
    try:
        client = mlflow.MlflowClient(tracking_uri=uri)
    except mlflow.exceptions.MlflowException as exc:
        # MLflow's default (sqlite:///mlflow.db) and other database stores need the full mlflow package
        why = "a database store needs the full mlflow package, not mlflow-skinny" \
            if uri.split(":", 1)[0].split("+", 1)[0] in _DATABASE_SCHEMES else _one_line(exc)
        raise OverfitLabError(f"MLflow cannot open the tracking store {uri} ({why}).",
                              key="export mlflow", fix=_FIX_URI + ".") from None
    found = client.get_experiment_by_name(experiment)
    if found is not None and found.lifecycle_stage == "deleted":
        raise OverfitLabError(f"the MLflow experiment {experiment!r} is deleted in {uri}.",
                              key="export mlflow", fix="restore it, or export to another experiment.")
    experiment_id = found.experiment_id if found is not None else client.create_experiment(experiment)
    saved = json.loads(store.meta().get(META_KEY, "{}"))
    ids = {"tracking_uri": uri, "experiment_id": experiment_id, "parent_run_id": saved.get("parent_run_id"),
           "cells": dict(saved.get("cells") or {})}
    return _Session(client=client, store=store, ids=ids)


def _existing(session: _Session, run_id: str | None, parent: str | None = None):
    """The stored run ``run_id`` if the tracking store still has it, alive, in this experiment (and
    under ``parent``), else ``None``."""
    from mlflow.exceptions import MlflowException

    if not run_id:
        return None
    try:
        found = session.client.get_run(run_id)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    if (found.info.lifecycle_stage == "deleted" or found.info.experiment_id != session.ids["experiment_id"]
            or (parent is not None and found.data.tags.get("mlflow.parentRunId") != parent)):
        return None
    return found


def _parent(session: _Session, run: RunResult, whole_run: bool) -> bool:
    """Find or create the parent run, log its params and tags; ``True`` if it was created."""
    client, run_dir = session.client, session.run_dir
    found = _existing(session, session.ids["parent_run_id"])
    tags = {"overfit_lab.run_dir": str(run_dir.resolve()), "overfit_lab.task": run.task.name,
            "overfit_lab.kind": "audit" if run.audit is not None else "grid",
            **_flat(run.environment, "overfit_lab.")}
    if "data_fingerprint" in run.meta:
        tags["overfit_lab.data_fingerprint"] = run.meta["data_fingerprint"]
    cells = run.cells
    tags["overfit_lab.cells_finished"] = int((cells["status"] == "finished").sum())
    tags["overfit_lab.cells_failed"] = int((cells["status"] != "finished").sum())
    if found is None:
        started = _millis(run.environment.get("started_at"))
        found = client.create_run(session.ids["experiment_id"], start_time=started, run_name=run_dir.name)
        session.ids.update(parent_run_id=found.info.run_id, cells={})  # the old cells' parent is gone
        _save_ids(session)
        session.created += 1
        created = True
    else:
        session.updated += 1
        created = False
    params = {key: v for k, v in _flat(run.suite.model_dump(mode="json")).items()
              if (key := _key(k)) not in found.data.params}
    _log(client, found.info.run_id, params=params, tags=tags)
    if created and not whole_run:  # the whole run's export logs every file (_run_artifacts)
        for name in ("suite.json", "environment.json"):
            if (run_dir / name).is_file():
                client.log_artifact(found.info.run_id, str(run_dir / name))
    if whole_run:
        status = "FINISHED" if (cells["status"] == "finished").all() else "FAILED"
        client.set_terminated(found.info.run_id, status, end_time=_millis(cells["finished_at"].max()))
    return created


@dataclass(frozen=True)
class _CellTables:
    """The run's rows split by cell once, so each cell's export reads only its own."""

    cells: pd.DataFrame  # indexed by cell_id
    metrics: dict[str, pd.DataFrame]
    scores: dict[str, dict[str, Any]]
    scalars: dict[str, pd.DataFrame]  # diagnostics with one row per cell x checkpoint x metric
    verdicts: dict[str, str]  # at the largest epoch value

    @classmethod
    def of(cls, run: RunResult) -> _CellTables:
        scores = run.cell_scores(extra=True)
        diag = run.diagnostics
        if not diag.empty:
            diag = diag[diag[list(_ROW_FIELDS)].isna().all(axis=1)]
            diag = diag[diag.groupby(["cell_id", "checkpoint", "metric"])["metric"].transform("size") == 1]
        general = run.generalization
        last = general.sort_values("epochs").groupby("cell_id")["verdict"].last() if not general.empty else {}
        return cls(cells=run.cells.set_index("cell_id"),
                   metrics=dict(tuple(run.metrics.groupby("cell_id"))) if not run.metrics.empty else {},
                   scores={row["cell_id"]: row for row in scores.to_dict(orient="records")},
                   scalars=dict(tuple(diag.groupby("cell_id"))) if not diag.empty else {},
                   verdicts=dict(last))


def _cell(session: _Session, tables: _CellTables, cell_id: str, parent_new: bool) -> None:
    """Find or create one cell's nested run and log what it lacks."""
    client, parent = session.client, session.ids["parent_run_id"]
    cell = tables.cells.loc[cell_id]
    found = None if parent_new else _existing(session, session.ids["cells"].get(cell_id), parent)
    if found is None:
        wall = cell.get("wall_s")
        finished = _millis(cell["finished_at"])
        started = finished - int(1000 * wall) if finished is not None and _finite(wall) else finished
        found = session.client.create_run(session.ids["experiment_id"], start_time=started, run_name=cell_id,
                                          tags={"mlflow.parentRunId": parent})
        session.ids["cells"][cell_id] = found.info.run_id
        _save_ids(session)
        session.created += 1
    else:
        session.updated += 1
    run_id = found.info.run_id
    params = {name: cell[name] for name in _CELL_PARAMS if name not in found.data.params}
    tags = {"overfit_lab.cell_id": cell_id, "overfit_lab.status": cell["status"],
            "overfit_lab.reason": cell["reason"] or "",
            "overfit_lab.verdict": tables.verdicts.get(cell_id, "")}
    metrics = _cell_metrics(tables, cell_id, cell)
    digest = hashlib.sha256(json.dumps(sorted((key, step) for key, _, step in metrics)).encode()).hexdigest()
    if found.data.tags.get(_LOGGED_TAG) == digest:  # every (name, step) is there already
        metrics = []
    elif found.data.metrics:  # an existing run: each (name, step) once
        logged = {key: {m.step for m in client.get_metric_history(run_id, key)}
                  for key in {key for key, *_ in metrics} & set(found.data.metrics)}
        metrics = [m for m in metrics if m[2] not in logged.get(m[0], ())]
    _log(client, run_id, params=params, tags=tags, metrics=metrics, time=_millis(cell["finished_at"]))
    if found.data.tags.get(_LOGGED_TAG) != digest:  # only once the metrics are in
        client.set_tag(run_id, _LOGGED_TAG, digest)
    client.set_terminated(run_id, "FINISHED" if cell["status"] == "finished" else "FAILED",
                          end_time=_millis(cell["finished_at"]))
    session.cell_runs[cell_id] = run_id


def _cell_metrics(tables: _CellTables, cell_id: str, cell: pd.Series) -> list[tuple[str, float, int]]:
    """``(name, value, step)`` of the cell: split metrics per epoch, then scores and per-cell
    diagnostics at the last epoch (the best checkpoint's at the best epoch), each name once."""
    out: dict[tuple[str, int], float] = {}
    names: set[str] = set()
    rows = tables.metrics.get(cell_id)
    last = 0
    if rows is not None:
        for epoch, split, metric, value in zip(rows["epoch"], rows["split"], rows["metric"], rows["value"],
                                               strict=True):
            if _finite(value):
                name = _key(f"{split}_{metric}")
                out[(name, int(epoch))] = float(value)
                names.add(name)
        last = int(rows["epoch"].max())
    best = int(cell["best_epoch"]) if _finite(cell.get("best_epoch")) else last
    scalars = {k: (v, last) for k, v in tables.scores.get(cell_id, {}).items() if k not in CELL_KEYS}
    own = tables.scalars.get(cell_id, pd.DataFrame(columns=["checkpoint", "metric", "value"]))
    for checkpoint, metric, value in zip(own["checkpoint"], own["metric"], own["value"], strict=True):
        if checkpoint == "final":
            scalars.setdefault(metric, (value, last))
        else:
            scalars.setdefault(f"{checkpoint}/{metric}", (value, best if checkpoint == "best" else last))
    for name, (value, step) in scalars.items():
        key = _key(name)
        if key not in names and _finite(value):
            out[(key, step)] = float(value)
            names.add(key)
    return [(name, value, step) for (name, step), value in out.items()]


def _run_artifacts(session: _Session) -> None:
    """Log the run directory's files to the parent, the database as a consistent copy."""
    client, run_dir, parent = session.client, session.run_dir, session.ids["parent_run_id"]
    for name in ("suite.json", "environment.json", "report.html"):
        if (run_dir / name).is_file():
            client.log_artifact(parent, str(run_dir / name))
    with tempfile.TemporaryDirectory(prefix="overfit-lab-mlflow-") as tmp:
        copy = Path(tmp) / DB_NAME
        with closing(sqlite3.connect(run_dir / DB_NAME, timeout=30)) as source, \
                closing(sqlite3.connect(copy)) as target:
            source.backup(target)
        client.log_artifact(parent, str(copy))


def _save_ids(session: _Session) -> None:
    """Keep the export's MLflow ids in the run's meta table, as soon as a run is made (so an
    interrupted export does not make it again)."""
    session.store.set_meta(META_KEY, session.ids)


def _log(client: MlflowClient, run_id: str, *, params: dict[str, Any] | None = None,
         tags: dict[str, Any] | None = None, metrics: list[tuple[str, float, int]] | None = None,
         time: int | None = None) -> None:
    from mlflow.entities import Metric, Param, RunTag

    stamp = time if time is not None else int(datetime.now().timestamp() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, v, stamp, step) for k, v, step in metrics or ()],
                     params=[Param(_key(k), _text(v)[:_MAX_PARAM]) for k, v in (params or {}).items()],
                     tags=[RunTag(_key(k), _text(v)[:_MAX_TAG]) for k, v in (tags or {}).items()],
                     synchronous=True)


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as ``{"a.b.c": leaf}`` (lists and empty mappings are leaves)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def _key(name: str) -> str:
    """``name`` as a valid MLflow param, metric or tag name: other characters become ``_``, and
    no empty, ``.`` or ``..`` path segment is left (MLflow may treat names as paths)."""
    parts = [p if p not in (".", "..") else p.replace(".", "_")
             for p in _BAD_KEY_CHARS.sub("_", str(name)).split("/") if p]
    return "/".join(parts)[:_MAX_KEY].rstrip("/") or "_"


def _text(value: Any) -> str:
    """A param or tag value: strings as they are, everything else as JSON."""
    if isinstance(value, str):
        return value
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    return json.dumps(value, default=str)


def _finite(value: Any) -> bool:
    try:
        return value is not None and not isinstance(value, (bool, str)) and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _millis(stamp: Any) -> int | None:
    """An ISO 8601 time as MLflow's milliseconds since the epoch (``None`` if absent)."""
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return int(datetime.fromisoformat(stamp).timestamp() * 1000)
    except ValueError:
        return None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(getattr(exc, "message", "") or exc).split())
    return text if len(text) <= 300 else text[:297] + "..."

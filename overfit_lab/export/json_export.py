"""A run's analysis as one JSON document, for dashboards and other programs.

:func:`run_to_json` turns a :class:`~overfit_lab.analysis.RunResult` into plain JSON values
(objects, arrays, strings, numbers, booleans, ``null``): NaN, infinities and missing values are
``null``, numpy and pandas values are Python ones, tables are arrays of row objects whose keys
are the table's columns in order. :func:`write_json` writes it atomically. The same run gives the
same bytes.

Schema ``overfit-lab/run-analysis``, version 1 (a new version only when a key changes meaning or
goes away; new keys may appear within a version). Top-level keys:

``schema`` : str
    ``"overfit-lab/run-analysis"``.
``version`` : int
    ``1``.
``run`` : object
    ``name`` (str, the suite's name), ``directory`` (str, the run directory as given to
    :func:`~overfit_lab.load_run`), ``task`` (str, ``[task] type``), ``suite`` (object, the resolved
    suite as ``suite.json`` holds it), ``environment`` (object, versions, threads, platform, start
    time), ``meta`` (object, the run's stored facts: ``leakage``, ``data_fingerprint``,
    ``label_names``, ``audit`` for an audit, ``mlflow`` once exported there...), ``interval_method``
    (str: ``none``, ``two seeds``, ``t`` or ``bootstrap``).
``cells`` : array of object
    One per stored cell, in the order they finished: ``cell_id``, ``train_size``, ``strategy``,
    ``seed``, ``label_noise``, ``epochs``, ``record_epochs`` (array of int), ``epoch_mode``,
    ``epoch_mode_reason``, ``status`` (``finished``/``failed``), ``reason`` (why it failed, else
    ``""``), ``finished_at`` (ISO 8601), ``info`` (object: the cell's run facts such as
    ``train_s``, ``wall_s``, ``best_epoch``, ``trainable_parameters``), ``metric_epochs`` (array of
    int: the epochs with split metrics, ascending) and ``metrics`` (object ``{split: {metric:
    [value per metric_epochs entry]}}``, e.g. ``metrics.validation.loss[i]`` is the validation loss
    after epoch ``metric_epochs[i]``; ``null`` where that epoch lacks the metric).
``generalization`` : array of object
    One per finished cell and grid epoch value (``RunResult.generalization``): the split metrics
    ``{split}_{metric}``, ``gap_loss``, ``gap_accuracy``, ``best_epoch``, ``onset_epoch``,
    ``verdict``, ``reason``...
``scores`` : array of object
    One per finished cell (``RunResult.cell_scores(extra=True)``): the cell keys (``cell_id``,
    ``train_size``, ``label_noise``, ``strategy``, ``seed``) and every headline and extra score the
    run has.
``score_info`` : object
    Per score column of ``scores``: ``label``, ``description``, ``higher_is_better`` (bool or
    ``null``: no better direction), ``bounds`` (``[low, high]``, ``null`` for an open end) and
    ``headline`` (bool: one of the headline scores the summary and comparisons cover).
``summary`` : array of object
    Mean and 95% interval over seeds per size x noise x strategy x headline score
    (``RunResult.summary``): ``metric``, ``mean``, ``low``, ``high``, ``n``, ``method``, ``clipped``,
    ``values`` (array: the seeds' values).
``comparisons`` : array of object
    Each strategy against the reference, paired by seed (``RunResult.comparisons``): ``metric``,
    ``mean``, ``reference_mean``, ``mean_difference``, ``low``, ``high``, p-values, ``p_adjusted``,
    ``differences`` (array), ``verdict``; empty with one strategy.
``headline`` : object
    What a reader needs first (``RunResult.headline``): ``quality`` (the score compared),
    ``per_size`` (array of ``{size, status, better, worse}``; ``better`` holds comparison row
    objects, largest improvement first, ``worse`` strategy names; an audit's entry adds ``scores``
    and ``overfit``), ``worst`` (object ``{cell, gap, gap_name, verdict, reason, overfit, cells}`` or
    ``null``), ``power`` (``{tested, seeds, closest}`` with ``closest`` a comparison row, or
    ``null``), ``finished``, ``failed``, ``total`` (cell counts).
``checks`` : object or null
    The suite's own checks (``RunResult.check_report``), ``null`` when it has none: ``passed``
    (bool), ``baseline`` (str or ``null``), ``conditions`` and ``regressions`` (arrays of row
    objects).
``failed_cells`` : array of object
    ``{cell_id, status, reason}`` of every cell that did not finish.
``diagnostic_failures`` : array of object
    ``{cell_id, checkpoint, diagnostic, reason}`` of every diagnostic that raised.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..store import write_text_atomic

if TYPE_CHECKING:
    from ..analysis import RunResult

__all__ = ["SCHEMA", "VERSION", "run_to_json", "to_plain", "write_json"]

SCHEMA = "overfit-lab/run-analysis"
VERSION = 1
# a cell's own columns; every other column of RunResult.cells is one of its run facts ("info")
_CELL_FIELDS = ("cell_id", "train_size", "strategy", "seed", "label_noise", "epochs", "record_epochs",
                "epoch_mode", "epoch_mode_reason", "status", "reason", "finished_at")


def run_to_json(run: RunResult) -> dict[str, Any]:
    """The run's analysis as plain JSON values, in the schema of this module's docstring.

    Parameters
    ----------
    run : RunResult
        A loaded run (:func:`overfit_lab.load_run`).

    Returns
    -------
    dict
        Serializable with ``json.dumps(..., allow_nan=False)``.
    """
    from ..scores import ALL_SCORES, SCORES

    cells = run.cells
    scores = run.cell_scores(extra=True)
    checks = run.check_report
    document = {
        "schema": SCHEMA,
        "version": VERSION,
        "run": {"name": run.suite.name, "directory": str(run.run_dir), "task": run.task.name,
                "suite": run.suite.model_dump(mode="json"), "environment": run.environment,
                "meta": run.meta, "interval_method": run.interval_method},
        "cells": _cells(cells, run.metrics),
        "generalization": run.generalization,
        "scores": scores,
        "score_info": {name: {"label": ALL_SCORES[name].label, "description": ALL_SCORES[name].description,
                              "higher_is_better": ALL_SCORES[name].higher_is_better,
                              "bounds": list(ALL_SCORES[name].bounds), "headline": name in SCORES}
                       for name in scores.columns if name in ALL_SCORES},
        "summary": run.summary,
        "comparisons": run.comparisons,
        "headline": run.headline,
        "checks": None if checks is None else {
            "passed": checks.passed, "baseline": checks.baseline, "conditions": checks.conditions,
            "regressions": checks.regressions},
        "failed_cells": cells.loc[cells["status"] != "finished", ["cell_id", "status", "reason"]],
        "diagnostic_failures": run.diagnostic_failures,
    }
    return to_plain(document)


def write_json(run: RunResult, path: str | Path) -> Path:
    """Write :func:`run_to_json` of ``run`` to ``path`` (atomically, UTF-8, indented); return the path."""
    text = json.dumps(run_to_json(run), indent=2, ensure_ascii=False, allow_nan=False)
    return write_text_atomic(path, text + "\n")


def _cells(cells: pd.DataFrame, metrics: pd.DataFrame) -> list[dict[str, Any]]:
    """One object per cell: its fields, its run facts under ``info`` and its per-epoch metrics."""
    by_cell = dict(tuple(metrics.groupby("cell_id", sort=False))) if not metrics.empty else {}
    rows = []
    for record in cells.to_dict(orient="records"):
        row = {name: record.get(name) for name in _CELL_FIELDS}
        row["info"] = {name: value for name, value in record.items() if name not in _CELL_FIELDS}
        own = by_cell.get(record["cell_id"])
        epochs = sorted(int(e) for e in own["epoch"].unique()) if own is not None else []
        series: dict[str, dict[str, list]] = {}
        for (split, metric), part in own.groupby(["split", "metric"]) if own is not None else ():
            values = dict(zip(part["epoch"].astype(int), part["value"], strict=True))
            series.setdefault(split, {})[metric] = [values.get(epoch) for epoch in epochs]
        rows.append({**row, "metric_epochs": epochs, "metrics": series})
    return rows


def to_plain(value: Any) -> Any:
    """``value`` as plain JSON values: tables as arrays of row objects, rows and named tuples as
    objects, numpy and pandas scalars as Python ones, NaN, infinities and missing values as ``None``.

    Examples
    --------
    >>> import numpy as np
    >>> to_plain({"a": np.float64("nan"), "b": (np.int64(2), float("inf")), "c": {1, 0}})
    {'a': None, 'b': [2, None], 'c': [0, 1]}
    """
    if isinstance(value, pd.DataFrame):
        return [to_plain(row) for row in value.to_dict(orient="records")]
    if isinstance(value, pd.Series):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):  # a DataFrame.itertuples row
        return {k: to_plain(v) for k, v in value._asdict().items() if k != "Index"}
    if isinstance(value, (set, frozenset)):
        return [to_plain(v) for v in sorted(value)]
    if isinstance(value, (list, tuple, np.ndarray)):
        return [to_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return None if pd.isna(value) else value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if pd.isna(value):  # pd.NA, pd.NaT
        return None
    return str(value)

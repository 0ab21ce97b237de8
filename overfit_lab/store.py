"""The run directory: the resolved suite, the environment and a SQLite database of results.

Layout of ``RUN_DIR``::

    suite.json        the resolved suite (absolute data paths, every default filled in)
    environment.json  versions, threads, platform, start time
    run.sqlite        tables ``meta``, ``cells``, ``metrics``, ``diagnostics`` and ``examples``
                      (long format)

The driver is the only writer. :meth:`RunStore.commit` writes one cell and all its rows (the
typed rows of :mod:`overfit_lab.rows`, by field name) in a single transaction, so an interrupted
run never holds half a cell, and ``--resume`` skips every finished cell. :func:`read_run` reads a
run back as pandas DataFrames (the analysis of it is :mod:`overfit_lab.analysis`).

Runs written before the diagnostics table had ``bin_low``, ``bin_high`` and ``fpr`` kept a
reliability bin (``"0.000-0.067"``) and a membership ROC point's FPR (``"0.05"``) as text in
``grp``; :func:`read_run` moves them into their columns, and committing into such a run (a
resume) adds the columns first.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import OverfitLabError
from .rows import CellRow, DiagnosticRow, ExampleRow, MetricRow, field_names
from .suite import Suite

DB_NAME = "run.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cells (
    cell_id TEXT PRIMARY KEY,
    train_size INTEGER NOT NULL,
    strategy TEXT NOT NULL,
    seed INTEGER NOT NULL,
    label_noise REAL NOT NULL,
    epochs INTEGER NOT NULL,
    record_epochs TEXT NOT NULL,
    epoch_mode TEXT NOT NULL,
    epoch_mode_reason TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    info TEXT NOT NULL,
    finished_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS metrics (
    cell_id TEXT NOT NULL REFERENCES cells(cell_id),
    epoch INTEGER NOT NULL,
    split TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (cell_id, epoch, split, metric)
);
CREATE TABLE IF NOT EXISTS diagnostics (
    cell_id TEXT NOT NULL REFERENCES cells(cell_id),
    checkpoint TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    grp TEXT,
    op TEXT,
    severity REAL,
    layer TEXT,
    bin_low REAL,
    bin_high REAL,
    fpr REAL
);
CREATE INDEX IF NOT EXISTS diagnostics_cell ON diagnostics(cell_id);
CREATE TABLE IF NOT EXISTS examples (
    cell_id TEXT NOT NULL REFERENCES cells(cell_id),
    kind TEXT NOT NULL,
    op TEXT,
    severity REAL,
    text TEXT NOT NULL,
    variant TEXT NOT NULL,
    label INTEGER NOT NULL,
    pred INTEGER NOT NULL,
    confidence REAL NOT NULL,
    variant_pred INTEGER NOT NULL,
    variant_confidence REAL NOT NULL
);
"""
# the table column of each row field where the two differ (GROUP is an SQL keyword)
_COLUMN = {"group": "grp"}
# columns the diagnostics table gained after its first version, and their type
_ADDED_DIAGNOSTIC_COLUMNS = {"bin_low": "REAL", "bin_high": "REAL", "fpr": "REAL"}
# before those columns, these metrics kept their bin ("0.000-0.067") or FPR ("0.05") in grp
_BIN_IN_GROUP = ("reliability_count", "reliability_confidence", "reliability_accuracy")
_FPR_IN_GROUP = ("membership_roc_tpr",)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file, so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


class RunStore:
    """Writes one run directory."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.db_path = self.run_dir / DB_NAME

    @classmethod
    def create(cls, run_dir: str | Path, suite: Suite, environment: dict[str, Any],
               meta: dict[str, Any] | None = None) -> RunStore:
        """Start a new run in ``run_dir`` (which must not already hold one)."""
        store = cls(run_dir)
        if store.db_path.exists():
            raise OverfitLabError(f"{store.run_dir} already holds a run.", key="--output",
                                  fix=f"continue it with overfit-lab run --resume {store.run_dir}, "
                                      "or choose another --output.")
        store.run_dir.mkdir(parents=True, exist_ok=True)
        (store.run_dir / "suite.json").write_text(suite.to_json(), encoding="utf-8")
        (store.run_dir / "environment.json").write_text(json.dumps(environment, indent=2), encoding="utf-8")
        with closing(store._connect()) as db, db:
            db.executescript(SCHEMA)
            rows = {"suite": suite.to_json(), "environment": json.dumps(environment), **{
                k: json.dumps(v) for k, v in (meta or {}).items()}}
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", rows.items())
        return store

    @classmethod
    def open(cls, run_dir: str | Path) -> RunStore:
        """Open an existing run (to resume or read it)."""
        store = cls(run_dir)
        if not store.db_path.is_file():
            raise OverfitLabError(f"{store.run_dir} holds no overfit-lab run ({DB_NAME} is missing).",
                                  key="RUN_DIR", fix="give the directory a run wrote.")
        with closing(store._connect()) as db, db:
            db.executescript(SCHEMA)  # a run from an earlier version gains the newer (empty) tables
        return store

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.db_path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def suite(self) -> Suite:
        return _stored_suite(self.meta())[0]

    def meta(self) -> dict[str, str]:
        with closing(self._connect()) as db:
            return dict(db.execute("SELECT key, value FROM meta").fetchall())

    def finished_ids(self) -> set[str]:
        with closing(self._connect()) as db:
            return {r[0] for r in db.execute("SELECT cell_id FROM cells WHERE status = 'finished'")}

    def commit(self, result) -> None:
        """Write one cell's row and all its rows atomically (replacing an earlier failed try).

        ``result`` is a :class:`~overfit_lab.training.CellResult`: a :class:`~overfit_lab.rows.CellRow`,
        its status, reason and info, and lists of metric, diagnostic and example rows."""
        cell: CellRow = result.cell
        cell_id = cell.cell_id
        with closing(self._connect()) as db, db:
            _add_diagnostic_columns(db)
            for table in ("metrics", "diagnostics", "examples"):
                db.execute(f"DELETE FROM {table} WHERE cell_id = ?", (cell_id,))
            fields = {**{name: getattr(cell, name) for name in field_names(CellRow)},
                      "record_epochs": json.dumps(list(cell.record_epochs)), "status": result.status,
                      "reason": result.reason, "info": json.dumps(result.info),
                      "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            db.execute(f"INSERT OR REPLACE INTO cells ({', '.join(fields)}) "
                       f"VALUES ({', '.join(':' + name for name in fields)})", fields)
            for table, row_type, rows in (("metrics", MetricRow, result.metrics),
                                          ("diagnostics", DiagnosticRow, result.diagnostics),
                                          ("examples", ExampleRow, result.examples)):
                names = field_names(row_type)
                columns = ["cell_id", *(_COLUMN.get(name, name) for name in names)]
                verb = "INSERT OR REPLACE" if table == "metrics" else "INSERT"  # metrics: the last per key
                db.executemany(f"{verb} INTO {table} ({', '.join(columns)}) "
                               f"VALUES ({', '.join('?' * len(columns))})",
                               [(cell_id, *(getattr(row, name) for name in names)) for row in rows])


@dataclass(frozen=True)
class StoredRun:
    """What a run directory holds, read back as it was stored (no analysis: see
    :class:`overfit_lab.analysis.RunResult`).

    Attributes
    ----------
    cells : DataFrame
        One row per cell: ``cell_id``, ``train_size``, ``strategy``, ``seed``, ``label_noise``,
        ``epochs``, ``record_epochs``, ``epoch_mode``, ``status`` (``finished``/``failed``),
        ``reason``, and the run facts (``train_s``, ``eval_s``, ``wall_s``, ...).
    metrics : DataFrame
        Long format, one row per cell x epoch x split x metric: ``cell_id``, ``epoch``,
        ``split`` (``train``, ``validation``, ``test``), ``metric``, ``value``.
    diagnostics : DataFrame
        Long format, one row per cell x checkpoint (``final``, ``best``) x metric, with what the
        figure belongs to where there is one: ``group`` (a subgroup ``gender=female`` or a group
        column ``gender``), ``op`` and ``severity`` (a perturbation), ``layer``, ``bin_low`` and
        ``bin_high`` (floats: the confidence bin of a ``reliability_*`` row) or ``fpr`` (float:
        the false positive rate of a ``membership_roc_tpr`` point).
    examples : DataFrame
        Example inputs at the final checkpoint, for the report: ``kind`` (``robustness``: the
        worst perturbation's flips; ``counterfactual``: the largest identity-swap changes),
        ``text``, ``variant``, ``label``, and both predictions with their confidence.
    """

    run_dir: Path
    suite: Suite
    environment: dict
    meta: dict
    cells: pd.DataFrame
    metrics: pd.DataFrame
    diagnostics: pd.DataFrame
    examples: pd.DataFrame


def read_run(run_dir: str | Path) -> StoredRun:
    """Read a run directory written by :func:`overfit_lab.run_suite`, as stored."""
    store = RunStore.open(run_dir)
    meta = store.meta()
    with closing(store._connect()) as db:
        cells = pd.read_sql_query("SELECT * FROM cells ORDER BY rowid", db)
        metrics = pd.read_sql_query("SELECT cell_id, epoch, split, metric, value FROM metrics", db)
        diagnostics = _read_diagnostics(db)
        examples = pd.read_sql_query("SELECT * FROM examples", db)
    cells["record_epochs"] = cells["record_epochs"].map(json.loads)
    info = pd.DataFrame([json.loads(x) for x in cells.pop("info")], index=cells.index)
    cells = pd.concat([cells.drop(columns="finished_at"), info, cells["finished_at"]], axis=1)
    suite, audit = _stored_suite(meta)
    facts = {k: json.loads(v) for k, v in meta.items() if k not in ("suite", "environment")}
    if audit is not None:
        facts.setdefault("audit", audit)
    return StoredRun(run_dir=Path(run_dir), suite=suite, environment=json.loads(meta["environment"]),
                     meta=facts, cells=cells, metrics=metrics, diagnostics=diagnostics, examples=examples)


def _stored_suite(meta: dict[str, str]) -> tuple[Suite, dict | None]:
    """The run's suite, and the audit settings that runs stored before audits became their own
    kind of run kept inside it (now they are ``meta["audit"]``)."""
    raw = json.loads(meta["suite"])
    return Suite.model_validate({k: v for k, v in raw.items() if k != "audit"}), raw.get("audit")


def _table_columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def _add_diagnostic_columns(db: sqlite3.Connection) -> None:
    """Give the diagnostics table of a run from an earlier version its newer columns."""
    present = _table_columns(db, "diagnostics")
    for name, kind in _ADDED_DIAGNOSTIC_COLUMNS.items():
        if name not in present:
            db.execute(f"ALTER TABLE diagnostics ADD COLUMN {name} {kind}")


def _read_diagnostics(db: sqlite3.Connection) -> pd.DataFrame:
    """The diagnostics table with every column of :class:`~overfit_lab.rows.DiagnosticRow`, also
    for a run written before ``bin_low``/``bin_high``/``fpr`` existed: its columns are filled from
    the text the older version kept in ``grp`` for exactly those metrics (and ``group`` emptied)."""
    present = _table_columns(db, "diagnostics")
    selected = [f"{_COLUMN.get(name, name)} AS '{name}'" if _COLUMN.get(name, name) in present
                else f"NULL AS '{name}'" for name in ("cell_id", *field_names(DiagnosticRow))]
    frame = pd.read_sql_query(f"SELECT {', '.join(selected)} FROM diagnostics", db)
    frame = frame.astype({name: float for name in _ADDED_DIAGNOSTIC_COLUMNS})
    old = frame["group"].notna()
    bins = old & frame["metric"].isin(_BIN_IN_GROUP) & frame["bin_low"].isna()
    if bins.any():
        edges = frame.loc[bins, "group"].str.split("-", n=1, expand=True).astype(float)
        frame.loc[bins, "bin_low"], frame.loc[bins, "bin_high"] = edges[0], edges[1]
    points = old & frame["metric"].isin(_FPR_IN_GROUP) & frame["fpr"].isna()
    if points.any():
        frame.loc[points, "fpr"] = frame.loc[points, "group"].astype(float)
    frame.loc[bins | points, "group"] = None
    return frame

"""The run directory: the resolved suite, the environment and a SQLite database of results.

Layout of ``RUN_DIR``::

    suite.json        the resolved suite (absolute data paths, every default filled in)
    environment.json  versions, threads, platform, start time
    run.sqlite        tables ``meta``, ``cells`` and ``metrics`` (long format)

The driver is the only writer. :meth:`RunStore.commit` writes one cell and all its metric rows
in a single transaction, so an interrupted run never holds half a cell, and ``--resume`` skips
every finished cell. :func:`read_run` reads a run back as pandas DataFrames (the analysis of it is
:mod:`overfit_lab.analysis`).
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
    layer TEXT
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
        """Write one cell's row and metric rows atomically (replacing an earlier failed try)."""
        cell = result.cell
        with closing(self._connect()) as db, db:
            db.execute("DELETE FROM metrics WHERE cell_id = ?", (cell["cell_id"],))
            db.execute("DELETE FROM diagnostics WHERE cell_id = ?", (cell["cell_id"],))
            db.execute("DELETE FROM examples WHERE cell_id = ?", (cell["cell_id"],))
            db.execute(
                "INSERT OR REPLACE INTO cells VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (cell["cell_id"], cell["train_size"], cell["strategy"], cell["seed"], cell["label_noise"],
                 cell["epochs"], json.dumps(cell["record_epochs"]), cell["epoch_mode"],
                 cell["epoch_mode_reason"], result.status, result.reason, json.dumps(result.info),
                 datetime.now(timezone.utc).isoformat(timespec="seconds")),
            )
            db.executemany(
                "INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?)",
                [(cell["cell_id"], e, s, m, v) for e, s, m, v in result.metrics],
            )
            db.executemany("INSERT INTO diagnostics VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           [(cell["cell_id"], *row) for row in result.diagnostics])
            db.executemany("INSERT INTO examples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           [(cell["cell_id"], *row) for row in result.examples])


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
        Long format, one row per cell x checkpoint (``final``, ``best``) x metric, with the
        ``group``, ``op``, ``severity`` or ``layer`` the figure belongs to where there is one.
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
        diagnostics = pd.read_sql_query(
            "SELECT cell_id, checkpoint, metric, value, grp AS 'group', op, severity, layer "
            "FROM diagnostics", db)
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

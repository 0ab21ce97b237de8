"""The run directory: the resolved suite, the environment and a SQLite database of results.

Layout of ``RUN_DIR``::

    suite.json        the resolved suite (absolute data paths, every default filled in)
    environment.json  versions, threads, platform, start time
    run.sqlite        tables ``meta``, ``cells``, ``metrics``, ``diagnostics``, ``examples`` and
                      ``dynamics`` (long format)

The driver is the only writer, and one process at a time: a store opened for writing holds an
exclusive lock on ``RUN_DIR/.lock`` (``flock``; the OS releases it when the process dies), and a
second process is refused with the holder's pid. :meth:`RunStore.create` builds the directory
under a hidden name beside it and renames it into place, so a run directory either holds a
complete, resumable start or does not exist. :meth:`RunStore.commit` writes one cell and all its rows (the
typed rows of :mod:`overfit_lab.rows`, by field name) in a single transaction, so an interrupted
run never holds half a cell, and ``--resume`` skips every finished cell. :func:`read_run` reads a
run back as pandas DataFrames (the analysis of it is :mod:`overfit_lab.analysis`).

Runs written before the diagnostics table had ``bin_low``, ``bin_high`` and ``fpr`` kept a
reliability bin (``"0.000-0.067"``) and a membership ROC point's FPR (``"0.05"``) as text in
``grp``; :func:`read_run` moves them into their columns, and committing into such a run (a
resume) adds the columns first. Runs written before the ``dynamics`` table existed read back
with an empty one.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import OverfitLabError
from .rows import CellRow, DiagnosticRow, DynamicsRow, ExampleRow, MetricRow, field_names
from .suite import Suite

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, runs are not guarded
    fcntl = None

DB_NAME = "run.sqlite"
LOCK_NAME = ".lock"
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
CREATE TABLE IF NOT EXISTS dynamics (
    cell_id TEXT NOT NULL REFERENCES cells(cell_id),
    position INTEGER NOT NULL,
    label INTEGER NOT NULL,
    clean_label INTEGER NOT NULL,
    confidence REAL NOT NULL,
    variability REAL NOT NULL,
    correctness REAL NOT NULL,
    margin REAL NOT NULL,
    learned_epoch INTEGER,
    region TEXT NOT NULL,
    memorised INTEGER NOT NULL
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
        self._lock_fd: int | None = None

    @classmethod
    def create(cls, run_dir: str | Path, suite: Suite, environment: dict[str, Any],
               meta: dict[str, Any] | None = None) -> RunStore:
        """Start a new run in ``run_dir`` (absent or empty) and hold its lock.

        Everything is written into a hidden directory beside ``run_dir`` that is then renamed to
        it, so an interrupted start leaves no run directory (at most the hidden one)."""
        store = cls(run_dir)
        _check_new_run_dir(store.run_dir)
        staging = _staging_dir(store.run_dir)
        try:
            (staging / "suite.json").write_text(suite.to_json(), encoding="utf-8")
            (staging / "environment.json").write_text(json.dumps(environment, indent=2), encoding="utf-8")
            with closing(sqlite3.connect(staging / DB_NAME)) as db, db:
                db.executescript(SCHEMA)
                rows = {"suite": suite.to_json(), "environment": json.dumps(environment), **{
                    k: json.dumps(v) for k, v in (meta or {}).items()}}
                db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", rows.items())
            store._lock_fd = _take_lock(staging, store.run_dir)  # the lock moves with the directory
            if store.run_dir.exists():
                store.run_dir.rmdir()  # empty, as checked
            staging.rename(store.run_dir)
        except (OSError, sqlite3.Error) as exc:
            store.close()
            shutil.rmtree(staging, ignore_errors=True)
            raise OverfitLabError(f"cannot write the run directory {store.run_dir} ({_reason(exc)}).",
                                  key="--output",
                                  fix="free disk space or choose a writable --output.") from None
        except BaseException:
            store.close()
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return store

    @classmethod
    def open(cls, run_dir: str | Path) -> RunStore:
        """Open an existing run (to resume or read it)."""
        store = cls(run_dir)
        if not store.db_path.is_file():
            fix = "give the directory a run wrote"
            if store.run_dir.is_dir():
                fix += f"; to start a run in it: overfit-lab run SUITE --output {store.run_dir}"
            raise OverfitLabError(f"{store.run_dir} holds no overfit-lab run ({DB_NAME} is missing).",
                                  key="RUN_DIR", fix=fix + ".")
        try:
            _check_run_database(store.db_path)  # read-only: a damaged or foreign file stays as it is
            with closing(store._connect()) as db, db:
                db.executescript(SCHEMA)  # a run from an earlier version gains the newer (empty) tables
        except sqlite3.Error as exc:
            raise OverfitLabError(f"{store.db_path} is not a readable run database ({_reason(exc)}).",
                                  key="RUN_DIR", fix="give an intact run directory (or start the run again)."
                                  ) from None
        return store

    def lock(self) -> RunStore:
        """Take the run directory's exclusive lock (to write it); refuse if another process holds it."""
        if self._lock_fd is None:
            try:
                self._lock_fd = _take_lock(self.run_dir, self.run_dir)
            except OSError as exc:
                raise OverfitLabError(f"cannot write to {self.run_dir} ({_reason(exc)}).", key="RUN_DIR",
                                      fix="make the run directory writable (or free disk space).") from None
        return self

    def close(self) -> None:
        """Release the lock (the OS also releases it when the process ends)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.db_path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def suite(self) -> Suite:
        return _stored_suite(self.meta())[0]

    def meta(self) -> dict[str, str]:
        with closing(self._connect()) as db:
            return dict(db.execute("SELECT key, value FROM meta").fetchall())

    def set_meta(self, key: str, value: Any) -> None:
        """Record one fact of the run (JSON-encoded) in the meta table, replacing an earlier one.
        Only the process that holds the lock writes (:meth:`lock`)."""
        if self._lock_fd is None:
            raise RuntimeError("lock the store before writing it")
        with closing(self._connect()) as db, db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

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
            db.executescript(_DYNAMICS_TABLE)  # a run started before the table existed gains it
            for table in ("metrics", "diagnostics", "examples", "dynamics"):
                db.execute(f"DELETE FROM {table} WHERE cell_id = ?", (cell_id,))
            fields = {**{name: getattr(cell, name) for name in field_names(CellRow)},
                      "record_epochs": json.dumps(list(cell.record_epochs)), "status": result.status,
                      "reason": result.reason, "info": json.dumps(result.info),
                      "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            db.execute(f"INSERT OR REPLACE INTO cells ({', '.join(fields)}) "
                       f"VALUES ({', '.join(':' + name for name in fields)})", fields)
            for table, row_type, rows in (("metrics", MetricRow, result.metrics),
                                          ("diagnostics", DiagnosticRow, result.diagnostics),
                                          ("examples", ExampleRow, result.examples),
                                          ("dynamics", DynamicsRow, result.dynamics)):
                names = field_names(row_type)
                columns = ["cell_id", *(_COLUMN.get(name, name) for name in names)]
                verb = "INSERT OR REPLACE" if table == "metrics" else "INSERT"  # metrics: the last per key
                db.executemany(f"{verb} INTO {table} ({', '.join(columns)}) "
                               f"VALUES ({', '.join('?' * len(columns))})",
                               [(cell_id, *(getattr(row, name) for name in names)) for row in rows])


def _check_run_database(path: Path) -> None:
    """Raise ``sqlite3.DatabaseError`` unless ``path`` is an intact SQLite database holding a
    run's suite, reading it only."""
    with open(path, "rb") as file:
        if file.read(16) != b"SQLite format 3\x00":
            raise sqlite3.DatabaseError("file is not a database")
    # immutable: no -wal/-shm files are made (the main file alone is checked; the meta table is
    # written there before the database is switched to WAL)
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)) as db:
        if db.execute("PRAGMA quick_check").fetchone() != ("ok",):
            raise sqlite3.DatabaseError("the database is damaged")
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables or db.execute("SELECT 1 FROM meta WHERE key = 'suite'").fetchone() is None:
            raise sqlite3.DatabaseError("it holds no overfit-lab run")


def _check_new_run_dir(run_dir: Path) -> None:
    if (run_dir / DB_NAME).exists():
        raise OverfitLabError(f"{run_dir} already holds a run.", key="--output",
                              fix=f"continue it with overfit-lab run --resume {run_dir}, "
                                  "or choose another --output.")
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise OverfitLabError(f"{run_dir} exists and is not an empty directory.", key="--output",
                              fix="choose a new or empty --output directory.")


def _staging_dir(run_dir: Path) -> Path:
    """A new hidden directory beside ``run_dir``, with the permissions a plain mkdir would give."""
    try:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.", suffix=".starting", dir=run_dir.parent))
    except OSError as exc:
        raise OverfitLabError(f"cannot create the run directory {run_dir} ({_reason(exc)}).", key="--output",
                              fix="choose a writable --output.") from None
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)
    return staging


def _take_lock(directory: Path, run_dir: Path) -> int | None:
    """Lock ``directory/.lock`` for this process and write its pid there; ``run_dir`` names it."""
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    if fcntl is None:  # pragma: no cover
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise OverfitLabError(f"{run_dir} is in use by another overfit-lab process (pid {holder}).",
                              key="RUN_DIR",
                              fix=f"wait for it to finish, or stop it (kill {holder}) and continue with: "
                                  f"overfit-lab run --resume {run_dir}") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _reason(exc: BaseException) -> str:
    """An OS or SQLite error in a few words (``No space left on device``)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return " ".join(str(exc).split()) or type(exc).__name__


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
        ``text``, ``variant``, ``label``, and both predictions with their confidence; ``slice``
        and ``mislabeled`` as :class:`~overfit_lab.rows.ExampleRow` says.
    dynamics : DataFrame
        One row per cell x training example (classifiers), its place on the data map:
        :class:`~overfit_lab.rows.DynamicsRow`'s fields (``memorised`` as bool).
    """

    run_dir: Path
    suite: Suite
    environment: dict
    meta: dict
    cells: pd.DataFrame
    metrics: pd.DataFrame
    diagnostics: pd.DataFrame
    examples: pd.DataFrame
    dynamics: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["cell_id", *field_names(DynamicsRow)]))


def read_run(run_dir: str | Path) -> StoredRun:
    """Read a run directory written by :func:`overfit_lab.run_suite`, as stored."""
    store = RunStore.open(run_dir)
    meta = store.meta()
    with closing(store._connect()) as db:
        cells = pd.read_sql_query("SELECT * FROM cells ORDER BY rowid", db)
        metrics = pd.read_sql_query("SELECT cell_id, epoch, split, metric, value FROM metrics", db)
        diagnostics = _read_diagnostics(db)
        examples = pd.read_sql_query("SELECT * FROM examples", db)
        dynamics = _read_dynamics(db)
    cells["record_epochs"] = cells["record_epochs"].map(json.loads)
    info = pd.DataFrame([json.loads(x) for x in cells.pop("info")], index=cells.index)
    cells = pd.concat([cells.drop(columns="finished_at"), info, cells["finished_at"]], axis=1)
    suite, audit = _stored_suite(meta)
    facts = {k: json.loads(v) for k, v in meta.items() if k not in ("suite", "environment")}
    if audit is not None:
        facts.setdefault("audit", audit)
    return StoredRun(run_dir=Path(run_dir), suite=suite, environment=json.loads(meta["environment"]),
                     meta=facts, cells=cells, metrics=metrics, diagnostics=diagnostics, examples=examples,
                     dynamics=dynamics)


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


_DYNAMICS_TABLE = SCHEMA[SCHEMA.index("CREATE TABLE IF NOT EXISTS dynamics"):]


def _read_dynamics(db: sqlite3.Connection) -> pd.DataFrame:
    """The dynamics table (empty, with its columns, for a run written before it existed)."""
    columns = ["cell_id", *field_names(DynamicsRow)]
    if "dynamics" not in {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}:
        return pd.DataFrame(columns=columns)
    frame = pd.read_sql_query(f"SELECT {', '.join(columns)} FROM dynamics", db)
    return frame.astype({"memorised": bool, "learned_epoch": "Int64"})


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

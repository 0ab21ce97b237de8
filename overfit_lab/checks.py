"""Pass/fail checks on a run, baselines, and regressions against a baseline.

* A **condition** (``[checks.NAME]`` in a suite) holds a stored metric to ``min``/``max`` for
  every training size x strategy in its scope; ``bound`` picks what is compared: the mean over
  seeds, or the lower/upper end of its 95% interval (:func:`overfit_lab.stats.mean_ci`), so a
  noisy pass is not a pass.
* A **baseline** (:func:`save_baseline`) is a JSON file with every score a run achieved per
  size x strategy: per-seed values, mean and interval.
* A **regression** is a baselined metric that got worse by more than its tolerance and, with
  two seeds or more on each side, significantly so (:func:`overfit_lab.stats.compare_runs`,
  corrected across the metrics compared).

:func:`check_run` does all three and returns a :class:`CheckReport` (DataFrames); the CLI's
``overfit-lab check``, the JUnit and Markdown writers (:mod:`overfit_lab.report.ci`) and the
pytest plugin read it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .errors import OverfitLabError
from .scores import ALL_SCORES
from .stats import compare_runs, mean_ci
from .store import write_text_atomic
from .suite import CheckSpec, RegressionSpec, Suite, read_toml, validate_suite

if TYPE_CHECKING:
    from .analysis import RunResult

BASELINE_FORMAT = "overfit-lab baseline 1"
CONDITION_COLUMNS = ["check", "metric", "train_size", "strategy", "bound", "min", "max", "value", "mean",
                     "low", "high", "n", "passed", "message"]


@dataclass
class CheckReport:
    """What ``overfit-lab check`` found.

    Attributes
    ----------
    conditions : DataFrame
        One row per condition x size x strategy in scope (see :data:`CONDITION_COLUMNS`), plus a
        row ``cells finished`` that fails when a cell of the run failed.
    regressions : DataFrame
        One row per baselined metric x size x strategy (:func:`overfit_lab.stats.compare_runs`),
        empty without a baseline.
    """

    suite_name: str
    run_dir: Path
    conditions: pd.DataFrame
    regressions: pd.DataFrame
    baseline: str | None = None

    @property
    def failed_conditions(self) -> pd.DataFrame:
        return self.conditions[~self.conditions["passed"].astype(bool)]

    @property
    def regressed(self) -> pd.DataFrame:
        if self.regressions.empty:
            return self.regressions
        return self.regressions[self.regressions["verdict"] == "regressed"]

    @property
    def passed(self) -> bool:
        return self.failed_conditions.empty and self.regressed.empty

    @property
    def exit_code(self) -> int:
        """0 when everything passed, 1 when a condition failed or a metric regressed."""
        return 0 if self.passed else 1

    def failures(self) -> list[str]:
        """One line per failing condition and regression, with its figures."""
        lines = [f"{r.check} [{scope_label(r.train_size, r.strategy)}]: {r.message}"
                 for r in self.failed_conditions.itertuples()]
        lines += [f"regression {r.metric} [{scope_label(r.train_size, r.strategy)}]: {regression_message(r)}"
                  for r in self.regressed.itertuples()]
        return lines


def scope_label(train_size, strategy) -> str:
    if train_size is None or (isinstance(train_size, float) and math.isnan(train_size)):
        return "run"
    return f"n={int(train_size)}, {strategy}"


# ------------------------------------------------------------------------------------------ conditions
def evaluate_checks(run: RunResult, checks: dict[str, CheckSpec] | None = None, *,
                    allow_failures: bool = False) -> pd.DataFrame:
    """Evaluate ``checks`` (default: the run's suite's) on a run; one row per check x scope
    (the run's per-cell scores at each check's checkpoint are computed once, by the run). The
    first row says whether every cell finished; with ``allow_failures`` failed cells pass it."""
    checks = run.suite.checks if checks is None else checks
    rows = [_cells_finished(run, allow_failures)]
    for name, spec in checks.items():
        frame = run.cell_scores(checkpoint=spec.checkpoint, extra=True)
        if spec.sizes:
            frame = frame[frame["train_size"].isin(spec.sizes)]
        if spec.strategies:
            frame = frame[frame["strategy"].isin(spec.strategies)]
        if frame.empty:
            rows.append(_row(name, spec, None, None, None, "no finished cell in scope."))
            continue
        for (size, strategy), group in frame.groupby(["train_size", "strategy"], sort=False):
            values = group[spec.metric].to_numpy(dtype=float) if spec.metric in group else np.array([])
            rows.append(_row(name, spec, size, strategy, values))
    return pd.DataFrame(rows, columns=CONDITION_COLUMNS)


def _cells_finished(run: RunResult, allow_failures: bool = False) -> dict:
    failed = run.cells[run.cells["status"] != "finished"]
    message = (f"all {len(run.cells)} cells finished." if failed.empty else
               f"{len(failed)} of {len(run.cells)} cells failed: " +
               "; ".join(f"{r.cell_id} ({r.reason})" for r in failed.itertuples()))
    if allow_failures and not failed.empty:
        message += " (allowed)"
    return {"check": "cells finished", "metric": "status", "train_size": None, "strategy": None,
            "bound": "", "min": None, "max": None, "value": float(len(failed)), "mean": np.nan, "low": np.nan,
            "high": np.nan, "n": len(run.cells), "passed": failed.empty or allow_failures,
            "message": message}


def _row(name: str, spec: CheckSpec, size, strategy, values: np.ndarray | None,
         problem: str | None = None) -> dict:
    base = {"check": name, "metric": spec.metric, "train_size": size, "strategy": strategy,
            "bound": spec.bound, "min": spec.min, "max": spec.max}
    values = np.array([]) if values is None else values[~np.isnan(values)]
    if problem is None and values.size == 0:
        problem = f"{spec.metric} was not computed (is its diagnostic switched off?)."
    if problem is not None:
        return {**base, "value": np.nan, "mean": np.nan, "low": np.nan, "high": np.nan, "n": 0,
                "passed": False, "message": problem}
    ci = mean_ci(values)
    value = {"mean": ci.mean, "lower95": ci.low, "upper95": ci.high}[spec.bound]
    passed = bool((spec.min is None or value >= spec.min) and (spec.max is None or value <= spec.max))
    return {**base, "value": value, "mean": ci.mean, "low": ci.low, "high": ci.high, "n": ci.n,
            "passed": passed, "message": condition_message(spec, value, ci, passed)}


def condition_message(spec: CheckSpec, value: float, ci, passed: bool) -> str:
    limits = []
    if spec.min is not None:
        limits.append(f">= {spec.min:g}")
    if spec.max is not None:
        limits.append(f"<= {spec.max:g}")
    what = f"{spec.metric} {spec.bound} {value:.4f}"
    spread = f" (mean {ci.mean:.4f}, 95% interval [{ci.low:.4f}, {ci.high:.4f}], {ci.n} seeds)" \
        if ci.n > 1 else f" ({ci.n} seed)"
    return f"{what}{spread} {'meets' if passed else 'fails'} {' and '.join(limits)}."


# ------------------------------------------------------------------------------------------ baselines
def save_baseline(run: RunResult, path: str | Path) -> Path:
    """Write every score of ``run`` (per size x strategy: per-seed values, mean and interval) to
    ``path`` as JSON."""
    scores = run.cell_scores(extra=True)
    if scores.empty:
        raise OverfitLabError("the run has no finished cell, so there is nothing to save.", file=run.run_dir,
                              key="RUN_DIR", fix="run the suite to the end first.")
    entries = []
    for (size, noise, strategy), group in scores.groupby(["train_size", "label_noise", "strategy"],
                                                         sort=True):
        for metric in ALL_SCORES:
            if metric not in group:
                continue
            values = group.set_index("seed")[metric].astype(float).dropna()
            if values.empty:
                continue
            ci = mean_ci(values.to_numpy())
            entries.append({"train_size": int(size), "label_noise": float(noise), "strategy": strategy,
                            "metric": metric, "mean": ci.mean, "low": _json_float(ci.low),
                            "high": _json_float(ci.high), "n": ci.n, "interval": ci.method,
                            "values": {str(int(seed)): v for seed, v in values.items()}})
    document = {"format": BASELINE_FORMAT, "suite": run.suite.name,
                "run_dir": str(Path(run.run_dir).resolve()),
                "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "seeds": sorted(int(s) for s in scores["seed"].unique()), "metrics": entries}
    return write_text_atomic(path, json.dumps(document, indent=2))


def _json_float(x: float) -> float | None:
    return None if x is None or math.isnan(x) else x


def load_baseline(path: str | Path) -> pd.DataFrame:
    """Read a baseline file back as a score frame (one row per size x strategy x seed)."""
    path = Path(path)
    if not path.is_file():
        raise OverfitLabError("no such baseline file.", file=path, key="--baseline",
                              fix="save one with overfit-lab baseline save RUN_DIR --to FILE.")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("format") != BASELINE_FORMAT:
            raise ValueError(f"format is {document.get('format')!r}, expected {BASELINE_FORMAT!r}")
        if not isinstance(document["metrics"], list):
            raise TypeError(f"metrics is {type(document['metrics']).__name__}, expected a list")
        rows = [{"train_size": e["train_size"], "label_noise": e["label_noise"], "strategy": e["strategy"],
                 "seed": int(seed), "metric": e["metric"], "value": _baseline_number(value, e["metric"])}
                for e in document["metrics"] for seed, value in e["values"].items()]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise OverfitLabError(f"not an overfit-lab baseline ({type(exc).__name__}: {exc}).", file=path,
                              key="--baseline", fix="save one with overfit-lab baseline save.") from None
    long = pd.DataFrame(rows, columns=["train_size", "label_noise", "strategy", "seed", "metric", "value"])
    keys = ["train_size", "label_noise", "strategy", "seed"]
    frame = long.pivot_table(index=keys, columns="metric", values="value", aggfunc="first").reset_index()
    frame.attrs["suite"] = document.get("suite")  # whose baseline it is, for check_run's message
    return frame


def _baseline_number(value, metric: str) -> float | None:
    """A baselined value: a number (or null); anything else means the file is not a baseline."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ValueError(f"the value {value!r} of {metric} is not a number")
    return value


def compare_with_baseline(run: RunResult, baseline: pd.DataFrame,
                          spec: RegressionSpec | None = None) -> pd.DataFrame:
    """Every baselined metric of ``run`` against ``baseline`` (see :func:`overfit_lab.stats.compare_runs`)."""
    spec = run.suite.regression if spec is None else spec
    names = spec.metrics or [m for m, s in ALL_SCORES.items() if s.higher_is_better is not None]
    directions = {m: ALL_SCORES[m].higher_is_better for m in names
                  if ALL_SCORES[m].higher_is_better is not None and m in baseline.columns}
    current = run.cell_scores(extra=True)
    if current.empty or not directions:
        return pd.DataFrame()
    tolerance = {m: spec.tolerances.get(m, spec.tolerance) for m in directions}
    return compare_runs(baseline, current, directions, tolerance=tolerance, alpha=spec.alpha,
                        correction=spec.correction)


def regression_message(row) -> str:
    """``before -> after`` with the change, tolerance and test of one regression row."""
    test = "one seed a side: no test" if row.test == "none" else \
        f"{row.test}, corrected p = {row.p_adjusted:.3g}"
    return (f"{row.before_mean:.4f} -> {row.after_mean:.4f} (change {row.difference:+.4f}, "
            f"tolerance {row.tolerance:g}; {test})")


# ------------------------------------------------------------------------------------------ all of it
def check_run(run: RunResult, *, checks: dict[str, CheckSpec] | None = None,
              baseline: str | Path | None = None, regression: RegressionSpec | None = None,
              allow_failures: bool = False) -> CheckReport:
    """Evaluate a run's conditions and, given a baseline file, look for regressions; failed
    cells fail the check unless ``allow_failures``."""
    regressions = pd.DataFrame()
    if baseline is not None:
        frame = load_baseline(baseline)
        _check_baseline_overlaps(run, frame, baseline)
        regressions = compare_with_baseline(run, frame, regression)
    return CheckReport(suite_name=run.suite.name, run_dir=Path(run.run_dir),
                       conditions=evaluate_checks(run, checks, allow_failures=allow_failures),
                       regressions=regressions,
                       baseline=None if baseline is None else str(baseline))


def _check_baseline_overlaps(run: RunResult, baseline: pd.DataFrame, path: str | Path) -> None:
    """A baseline sharing no training size x label noise x strategy with the run's finished cells
    (another suite's, or another grid's) would make every check against it pass unexamined."""
    current = run.cell_scores(extra=True)
    if current.empty:  # no finished cell: the "cells finished" condition fails the check already
        return
    keys = ["train_size", "label_noise", "strategy"]
    ours = {(int(s), float(n), str(t)) for s, n, t in current[keys].itertuples(index=False)}
    theirs = set() if baseline.empty else \
        {(int(s), float(n), str(t)) for s, n, t in baseline[keys].itertuples(index=False)}
    if ours & theirs:
        return
    owner = baseline.attrs.get("suite")
    raise OverfitLabError(
        f"the baseline{f' (of suite {owner!r})' if owner else ''} shares no training size x strategy with "
        f"the run of {run.suite.name!r}, so nothing could be compared.", file=path, key="--baseline",
        fix="give a baseline saved from a run of this grid (overfit-lab baseline save RUN_DIR --to FILE).")


def load_checks(path: str | Path, suite: Suite) -> Suite:
    """``suite`` with the ``[checks.*]`` and ``[regression]`` tables of a TOML file (a suite file
    or a file holding only those tables), validated against ``suite``'s grid."""
    path = Path(path)
    raw = read_toml(path, what="checks file", key="--checks",
                    fix="give a TOML file with [checks.NAME] tables.")
    return validate_suite({**json.loads(suite.to_json()), "checks": raw.get("checks", {}),
                           "regression": raw.get("regression", {})}, source=path)


def compare_run_scores(run_a: RunResult, run_b: RunResult) -> pd.DataFrame:
    """``run_b`` against ``run_a`` on every headline score with a better direction, per size x
    strategy, with no tolerance: improved/regressed only where significant; with one seed a side
    the verdict is *one seed: no test*."""
    from .scores import SCORES

    spec = run_b.suite.statistics
    a, b = run_a.cell_scores(), run_b.cell_scores()
    directions = {m: s.higher_is_better for m, s in SCORES.items()
                  if s.higher_is_better is not None and m in a.columns and m in b.columns}
    if a.empty or b.empty or not directions:
        return pd.DataFrame()
    frame = compare_runs(a, b, directions, alpha=spec.alpha, correction=spec.correction)
    if not frame.empty:  # no tolerance here, so without a test no change may be called a win or a loss
        frame.loc[frame["test"] == "none", "verdict"] = "one seed: no test"
    return frame

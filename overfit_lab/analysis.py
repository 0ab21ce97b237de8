"""The analysis of a stored run, computed once: what reports and checks read.

:func:`load_run` reads a run directory and returns a :class:`RunResult`, which holds the stored
frames (``cells``, ``metrics``, ``diagnostics``, ``examples``) and derives, on first use and then
kept, the per-epoch generalization table, the per-cell scores, their summary over seeds, the
strategy comparisons and the learning curves (in the manner of fairlearn's ``MetricFrame``: one
object that computes once and returns DataFrames). The store only stores; the reports only
render what this object computed.
"""

from __future__ import annotations

import dataclasses
from functools import cached_property
from pathlib import Path

import pandas as pd

from .store import StoredRun, read_run
from .suite import AuditSpec, Suite

__all__ = ["RunResult", "load_run"]


class RunResult:
    """A finished (or partial) run and its analysis.

    Attributes
    ----------
    run_dir, suite, environment, meta : the run's directory, resolved suite and facts.
    cells, metrics, diagnostics, examples : DataFrame
        The stored frames, as :class:`overfit_lab.store.StoredRun` documents them.
    generalization, scores, summary, comparisons, learning_curves : DataFrame
        Derived once, on first use (see each property).
    """

    def __init__(self, stored: StoredRun) -> None:
        self.stored = stored

    def __repr__(self) -> str:
        return f"RunResult({str(self.run_dir)!r}, {len(self.cells)} cells)"

    def replace(self, **changes) -> RunResult:
        """A new analysis of this run with some stored frames replaced (e.g. a subset of cells)."""
        return RunResult(dataclasses.replace(self.stored, **changes))

    # ------------------------------------------------------------------ the stored record
    @property
    def run_dir(self) -> Path:
        return self.stored.run_dir

    @property
    def suite(self) -> Suite:
        return self.stored.suite

    @property
    def environment(self) -> dict:
        return self.stored.environment

    @property
    def meta(self) -> dict:
        return self.stored.meta

    @property
    def audit(self) -> AuditSpec | None:
        """How an audit run was made (see :func:`overfit_lab.audit`); ``None`` for a trained grid."""
        spec = self.meta.get("audit")
        return None if spec is None else AuditSpec.model_validate(spec)

    @property
    def cells(self) -> pd.DataFrame:
        return self.stored.cells

    @property
    def metrics(self) -> pd.DataFrame:
        return self.stored.metrics

    @property
    def diagnostics(self) -> pd.DataFrame:
        return self.stored.diagnostics

    @property
    def examples(self) -> pd.DataFrame:
        return self.stored.examples

    # ------------------------------------------------------------------ derived, once
    @cached_property
    def generalization(self) -> pd.DataFrame:
        """Gap, best epoch, onset and verdict per cell and grid epoch value."""
        from .diagnostics.generalization import generalization_table

        return generalization_table(self.cells, self.metrics, self.suite.verdict)

    @cached_property
    def scores(self) -> pd.DataFrame:
        """One row per finished cell with every headline score (see :mod:`overfit_lab.scores`)."""
        return self.cell_scores()

    def cell_scores(self, *, checkpoint: str = "final", extra: bool = False) -> pd.DataFrame:
        """Per-cell scores at ``checkpoint``, with the extra scores too if asked (kept per choice)."""
        from .scores import cell_scores

        key = (checkpoint, extra)
        cache = self.__dict__.setdefault("_cell_scores", {})
        if key not in cache:
            cache[key] = cell_scores(self.generalization, self.diagnostics, checkpoint=checkpoint,
                                     extra=extra)
        return cache[key]

    @cached_property
    def summary(self) -> pd.DataFrame:
        """Mean and 95% confidence interval over seeds per size x strategy x score."""
        from .scores import SCORES
        from .stats import summarize

        scores = self.scores
        present = [m for m in SCORES if m in scores.columns]
        return summarize(scores, present, bounds={m: SCORES[m].bounds for m in present})

    @cached_property
    def comparisons(self) -> pd.DataFrame:
        """Each strategy against the reference, paired by seed, per size and score, corrected
        across the run (see :func:`overfit_lab.stats.compare_strategies`)."""
        from .scores import SCORES
        from .stats import compare_strategies

        scores, spec = self.scores, self.suite.statistics
        directions = {m: s.higher_is_better for m, s in SCORES.items()
                      if s.higher_is_better is not None and m in scores.columns}
        if scores.empty or self.suite.reference_strategy not in set(scores["strategy"]):
            return pd.DataFrame()
        return compare_strategies(scores, directions, reference=self.suite.reference_strategy,
                                  alpha=spec.alpha, correction=spec.correction)

    @cached_property
    def membership_nonmembers(self) -> str | None:
        """Where the membership attack's non-members came from: ``"pool"`` (training rows no cell
        trained on), ``"test"`` (test rows; also every run stored before the choice existed), or
        ``None`` when memorization was not measured."""
        diag = self.diagnostics
        if diag.empty or not (diag["metric"] == "membership_advantage").any():
            return None
        unused = diag[diag["metric"] == "membership_nonmembers_unused"]["value"]
        return "pool" if (unused == 1).any() else "test"

    @cached_property
    def learning_curves(self) -> pd.DataFrame:
        """The accuracy gap against train size per strategy, as a fitted power law."""
        from .stats import learning_curves

        scores = self.scores
        if scores.empty:
            return pd.DataFrame()
        return learning_curves(scores, "gap_accuracy", threshold=self.suite.statistics.gap_threshold)


def load_run(run_dir: str | Path) -> RunResult:
    """Read a run directory written by :func:`overfit_lab.run_suite`, with its analysis.

    Examples
    --------
    >>> run = load_run("reports/quickstart-20261203-094720")  # doctest: +SKIP
    >>> run.summary.query("metric == 'gap_accuracy'")  # doctest: +SKIP
    """
    return RunResult(read_run(run_dir))

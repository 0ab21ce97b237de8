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

import numpy as np
import pandas as pd

from .data.leakage import Leakage
from .store import StoredRun, read_run
from .suite import AuditSpec, Suite
from .tasks import TaskType, task_of

__all__ = ["SEED_GROUPS", "RunResult", "load_run", "power_note"]

SEED_GROUPS = ("train_size", "label_noise", "strategy")
"""What the seeds of a grid are repeats of: intervals over seeds are per these keys by default."""


class RunResult:
    """A finished (or partial) run and its analysis.

    Attributes
    ----------
    run_dir, suite, environment, meta : the run's directory, resolved suite and facts.
    cells, metrics, diagnostics, examples, dynamics : DataFrame
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
    def task(self) -> TaskType:
        """The run's task type (what its split metrics and diagnostics mean)."""
        return task_of(self.suite)

    @property
    def audit(self) -> AuditSpec | None:
        """How an audit run was made (see :func:`overfit_lab.audit`); ``None`` for a trained grid."""
        spec = self.meta.get("audit")
        return None if spec is None else AuditSpec.model_validate(spec)

    @property
    def trainer_run(self) -> dict | None:
        """For an audit of a Trainer output directory: what its logs say (``logs``: the verdict,
        best evaluation, onset, ``missing``), its logged ``curve``, the audited ``checkpoints``
        and which one to ``ship`` and why; ``None`` otherwise."""
        return self.meta.get("trainer_run")

    @property
    def leakage(self) -> Leakage:
        """Held-out rows whose text is also in the training pool, found when the data was loaded
        (empty for runs stored before the check existed)."""
        return Leakage.from_dict(self.meta.get("leakage"))

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

    @property
    def dynamics(self) -> pd.DataFrame:
        """Each training example's place on the data map, per cell (classifiers; see
        :class:`overfit_lab.rows.DynamicsRow`)."""
        return self.stored.dynamics

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

    def over_seeds(self, metrics: list[str] | tuple[str, ...], *, by: tuple[str, ...] = SEED_GROUPS,
                   group: str | None = None, checkpoint: str = "final") -> pd.DataFrame:
        """Mean and 95% interval over seeds of each of ``metrics`` per ``by`` (kept per choice).

        Without ``group`` the values are the per-cell scores (:meth:`cell_scores` with the extras);
        with ``group`` the stored diagnostic rows of that group column or subgroup. Intervals are
        cut at each score's range (``clipped`` says where). Columns: ``by``, ``metric, mean, low,
        high, n, method, clipped, values`` (the seeds' values in seed order), as
        :func:`overfit_lab.stats.summarize` returns them.
        """
        from .scores import ALL_SCORES
        from .stats import summarize

        key = (tuple(metrics), tuple(by), group, checkpoint)
        cache = self.__dict__.setdefault("_over_seeds", {})
        if key not in cache:
            frame = self._cell_values(list(metrics), group, checkpoint)
            present = [m for m in metrics if m in frame.columns]
            cache[key] = summarize(frame, present, by=list(by),
                                   bounds={m: ALL_SCORES[m].bounds for m in present if m in ALL_SCORES})
        return cache[key]

    def _cell_values(self, metrics: list[str], group: str | None, checkpoint: str) -> pd.DataFrame:
        """One row per cell (``CELL_KEYS``) and a column per metric it has."""
        from .scores import CELL_KEYS

        if group is None:
            return self.cell_scores(checkpoint=checkpoint, extra=True)
        diag = self.diagnostics
        if diag.empty:
            return pd.DataFrame(columns=CELL_KEYS)
        rows = diag[(diag["checkpoint"] == checkpoint) & diag["metric"].isin(metrics)
                    & (diag["group"] == group)]
        wide = rows.set_index(["cell_id", "metric"])["value"].unstack("metric")
        return self.cells[CELL_KEYS].merge(wide, left_on="cell_id", right_index=True)

    def final_rows(self, metric: str) -> pd.DataFrame:
        """The stored rows of ``metric`` at the final checkpoint, with each cell's size, strategy
        and seed."""
        diag = self.diagnostics
        if diag.empty:
            return diag
        rows = diag[(diag["checkpoint"] == "final") & (diag["metric"] == metric)]
        return rows.merge(self.cells[["cell_id", "train_size", "strategy", "seed"]], on="cell_id")

    def row_curve(self, metric: str, x: str, *, by: tuple[str, ...] = ("strategy",),
                  largest_size: bool = False, agg: str = "mean") -> pd.DataFrame:
        """A per-row metric (:data:`overfit_lab.scores.ROW_METRICS`) against one of its row fields
        ``x`` (``severity``, ``fpr``, ``layer``...), reduced over cells (``agg``, the mean by
        default) per ``by`` and ``x``, in the order the rows come; at the largest train size the
        metric has, with ``largest_size``. Columns: ``by``, ``x``, ``value`` (and ``train_size``)."""
        rows = self.final_rows(metric)
        if rows.empty:
            return pd.DataFrame(columns=[*by, x, "value", "train_size"])
        if largest_size:
            rows = rows[rows["train_size"] == rows["train_size"].max()]
        curve = rows.groupby([*by, x], sort=False)["value"].agg(agg).reset_index()
        return curve.assign(train_size=rows["train_size"].max())

    @cached_property
    def reliability_pooled(self) -> pd.DataFrame:
        """The reliability diagram's bins per strategy at the largest size, pooled over seeds
        (see :func:`overfit_lab.pooled.pooled_reliability`)."""
        from .pooled import pooled_reliability

        return pooled_reliability(self.diagnostics, self.cells)

    @cached_property
    def group_rates(self) -> pd.DataFrame:
        """Subgroup accuracy and rates per size x strategy, mean over seeds (see
        :func:`overfit_lab.pooled.group_rates`)."""
        from .pooled import group_rates

        return group_rates(self.diagnostics, self.cells)

    @cached_property
    def weak_slices(self) -> pd.DataFrame:
        """Every slice weak in some cell, per size x strategy over seeds (see
        :func:`overfit_lab.pooled.weak_slice_table`)."""
        from .pooled import weak_slice_table

        return weak_slice_table(self.diagnostics, self.cells)

    @cached_property
    def class_balance(self) -> pd.DataFrame:
        """Label shares per split and of the predictions, recall and collapse per class, per size x
        strategy over seeds (see :func:`overfit_lab.pooled.class_table`)."""
        from .pooled import class_table

        return class_table(self.diagnostics, self.cells)

    @cached_property
    def counterfactual_pooled(self) -> pd.DataFrame:
        """Identity-swap flips pooled over seeds with a Wilson interval (see
        :func:`overfit_lab.pooled.pooled_flip_rates`)."""
        from .pooled import pooled_flip_rates

        return pooled_flip_rates(self.diagnostics, self.cells)

    @cached_property
    def diagnostic_failures(self) -> pd.DataFrame:
        """The diagnostics that raised, one row per cell x checkpoint x diagnostic, in the order of
        the cells: ``cell_id``, ``checkpoint``, ``diagnostic`` and ``reason`` (the cells'
        ``diagnostic_failures``, see :func:`overfit_lab.diagnostics.checkpoint.run_diagnostics`)."""
        columns = ["cell_id", "checkpoint", "diagnostic", "reason"]
        if "diagnostic_failures" not in self.cells.columns:  # cells stored before the record existed
            return pd.DataFrame(columns=columns)
        stored = zip(self.cells["cell_id"], self.cells["diagnostic_failures"], strict=True)
        rows = [{"cell_id": cell, **failure} for cell, failures in stored
                if isinstance(failures, list) for failure in failures]
        return pd.DataFrame(rows, columns=columns)

    @cached_property
    def amplification_left_out(self) -> pd.DataFrame:
        """The subgroups left out of bias amplification at the final checkpoint (fewer than
        ``min_group_size`` examples in a cell's training data or the test split): per group column
        and subgroup, ``reason`` (``"not in training"`` where no such cell's training data had it,
        else ``"too small"``), ``cells`` (in how many cells) of ``of`` (the cells that measured the
        column), and the least and largest training and test counts over those cells
        (``train_min`` ... ``test_max``)."""
        columns = ["column", "group", "reason", "cells", "of", "train_min", "train_max", "test_min",
                   "test_max"]
        diag = self.diagnostics
        final = diag[diag["checkpoint"] == "final"] if not diag.empty else diag
        left = final[final["metric"] == "amplification_left_out"] if not final.empty else final
        if left.empty:
            return pd.DataFrame(columns=columns)
        test_counts = final[final["metric"] == "group_count"].set_index(["cell_id", "group"])["value"]
        measured = final[final["metric"] == "bias_amplification"].groupby("group")["cell_id"].nunique()
        test = [float(test_counts.get(key, 0.0)) for key in zip(left["cell_id"], left["group"], strict=True)]
        left = left.assign(column=left["group"].str.split("=", n=1).str[0], test=test)
        rows = []
        for (column, group), part in left.groupby(["column", "group"], sort=True):
            rows.append({"column": column, "group": group,
                         "reason": "not in training" if (part["value"] == 0).all() else "too small",
                         "cells": part["cell_id"].nunique(),
                         "of": int(measured.get(column, part["cell_id"].nunique())),
                         "train_min": int(part["value"].min()), "train_max": int(part["value"].max()),
                         "test_min": int(part["test"].min()), "test_max": int(part["test"].max())})
        return pd.DataFrame(rows, columns=columns)

    @cached_property
    def interval_method(self) -> str:
        """How the intervals over seeds are made: ``"none"`` (one seed), ``"two seeds"`` (their
        values are shown instead), ``"t"`` or ``"bootstrap"`` (BCa)."""
        from .stats import BOOTSTRAP_MIN_SEEDS

        seeds = len(self.suite.grid.seeds)
        if seeds < 3:
            return "none" if seeds < 2 else "two seeds"
        return "bootstrap" if seeds >= BOOTSTRAP_MIN_SEEDS else "t"

    @cached_property
    def best_epochs(self) -> pd.Series:
        """Per finished cell (index ``cell_id``): the epoch of its lowest validation loss over
        everything it trained."""
        general = self.generalization
        if general.empty:
            return pd.Series(dtype=float)
        return general.sort_values("epochs").groupby("cell_id")["best_epoch"].last()

    @cached_property
    def check_report(self):
        """The suite's own checks evaluated on this run (:func:`overfit_lab.check_run`), or
        ``None`` when the suite has none."""
        from .checks import check_run

        return check_run(self) if self.suite.checks else None

    def within_cell_interval(self, metric: str, count: str) -> dict:
        """Of a within-cell 95% interval stored as ``<metric>_low``/``_high`` with the rows it was
        measured on in ``count`` (final checkpoint): the mean half-width over the cells that have
        both ends (``half``, NaN if none), and the median, least and largest count."""
        def per_cell(name: str) -> pd.Series:
            rows = self.final_rows(name)
            return pd.Series(dtype=float) if rows.empty else rows.set_index("cell_id")["value"]

        half = ((per_cell(f"{metric}_high") - per_cell(f"{metric}_low")) / 2).dropna()
        n = per_cell(count)
        return {"half": float(half.mean()) if not half.empty else np.nan, "n_median": float(n.median()),
                "n_min": float(n.min()), "n_max": float(n.max())}

    @cached_property
    def headline(self) -> dict:
        """What a reader needs first, decided here and only worded by the reports.

        ``per_size``: per train size, ``status`` (``"audit"``, ``"one strategy"``, ``"one seed"``,
        ``"better"`` or ``"none better"``), the strategies significantly ``better`` (comparison
        rows, largest improvement first) and ``worse`` than the reference on the task's test
        score (``task.compared[0]``: test accuracy, a causal LM's test perplexity), and for an audit
        its ``scores`` row and whether its gap passes the verdict's ``accuracy_gap``. ``worst``:
        the cell with the largest gap (``task.compared[1]``) at the largest epoch value, with how
        many cells overfit there. ``power``: when nothing is significant, how many comparisons were
        corrected together and the closest one. ``finished``, ``failed``, ``total``: cell counts.
        """
        from .scores import SCORES

        scores, comparisons = self.scores, self.comparisons
        quality, gap = self.task.compared
        improvement = 1 if SCORES[quality].higher_is_better else -1
        per_size = []
        for size in sorted(scores["train_size"].unique()) if not scores.empty else []:
            rows = pd.DataFrame() if comparisons.empty else comparisons[
                (comparisons["train_size"] == size) & (comparisons["metric"] == quality)]
            better = rows[rows["verdict"] == "better"] if not rows.empty else rows
            worse = rows[rows["verdict"] == "worse"] if not rows.empty else rows
            item = {"size": int(size), "better": [], "worse": [] if worse.empty else list(worse["strategy"])}
            if self.audit is not None:
                audited = scores.iloc[0]
                item.update(status="audit", scores=audited,
                            overfit=bool(audited["gap_accuracy"] > self.suite.verdict.accuracy_gap))
            elif rows.empty:
                item["status"] = "one strategy"
            elif (rows["verdict"] == "one seed: no test").all():
                item["status"] = "one seed"
            elif not better.empty:
                ranked = better.assign(gain=improvement * better["mean_difference"]).sort_values(
                    "gain", ascending=False)
                item.update(status="better", better=list(ranked.itertuples()))
            else:
                item["status"] = "none better"
            per_size.append(item)
        worst = None
        general = self.generalization
        if not general.empty:
            last = general[general["epochs"] == general["epochs"].max()]
            row = last.loc[last[gap].idxmax()]
            worst = {"cell": row.cell_id, "gap": row[gap], "gap_name": gap, "verdict": row.verdict,
                     "reason": row.reason, "overfit": int((last["verdict"] == "overfit").sum()),
                     "cells": len(last)}
        cells = self.cells
        power = power_note(self.comparisons, self.suite.statistics.alpha)
        return {"per_size": per_size, "worst": worst, "power": power, "quality": quality,
                "finished": int((cells["status"] == "finished").sum()),
                "failed": int((cells["status"] != "finished").sum()), "total": len(cells)}

    @cached_property
    def learning_curves(self) -> pd.DataFrame:
        """The accuracy gap against train size per strategy, as a fitted power law."""
        from .stats import learning_curves

        scores = self.scores
        if scores.empty:
            return pd.DataFrame()
        return learning_curves(scores, "gap_accuracy", threshold=self.suite.statistics.gap_threshold)


def power_note(comparisons: pd.DataFrame, alpha: float) -> dict | None:
    """Why nothing is significant: how many p-values were corrected together (``tested``), the
    most seeds behind one (``seeds``) and the ``closest`` comparison (the smallest raw p-value);
    ``None`` when some comparison is significant or none was tested. The correction multiplies
    the smallest p-value by the number of tested comparisons, so with few seeds and many metrics
    even a consistent difference may not survive it."""
    tested = comparisons.dropna(subset=["p_adjusted"]) if not comparisons.empty else comparisons
    if tested.empty or (tested["p_adjusted"] < alpha).any():
        return None
    closest = tested.loc[tested["t_pvalue"].idxmin()]
    return {"tested": len(tested), "seeds": int(tested["n"].max()), "closest": closest}


def load_run(run_dir: str | Path) -> RunResult:
    """Read a run directory written by :func:`overfit_lab.run_suite`, with its analysis.

    Examples
    --------
    >>> run = load_run("reports/quickstart-20261203-094720")  # doctest: +SKIP
    >>> run.summary.query("metric == 'gap_accuracy'")  # doctest: +SKIP
    """
    return RunResult(read_run(run_dir))

"""The application layer: obtain a run (run a suite, resume one, read one) and finish it (its
HTML report, its summary). The CLI and the pytest plugin call these; the runner under them
knows nothing of terminals or reports."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from .analysis import RunResult, load_run
from .progress import Observers
from .runner import open_store, run_grid
from .suite import Suite

__all__ = ["audit", "audit_trainer_run", "check", "failed_cells_line", "finish_run", "obtain_run",
           "run_suite"]


def run_suite(suite: Suite | str | Path | None = None, *, output: str | Path | None = None,
              resume: str | Path | None = None, console: Console | None = None,
              quiet: bool = False, execution: dict | None = None) -> RunResult:
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
    execution : dict, optional
        Overrides of the suite's ``[execution]`` section (``executor``, ``workers``, ``threads``,
        ``device``, ``address``, ``retries``), for this invocation only; a run started under one
        executor can be resumed under another.
    """
    from .report.terminal import TerminalProgress, make_console

    _end_a_starting_worker()
    console = console or make_console()
    store = open_store(suite, output=output, resume=resume, execution=execution)
    tracking = store.suite().tracking
    try:
        display = None if quiet else TerminalProgress(console)
        tracker = _mlflow_tracking(store, tracking, console) if tracking.mlflow else None
        run_grid(store, Observers(display, tracker), execution=execution)
    finally:
        store.close()
    run = finish_run(store.run_dir, console, quiet=quiet)
    if tracking.mlflow and not (tracker and tracker.failed):
        _publish(run, tracking, console, quiet=quiet)
    return run


def _end_a_starting_worker() -> None:
    """End this process quietly if it is a spawned worker importing the caller's script: a script
    that starts a run at import time (no ``if __name__ == "__main__":``) would otherwise start a
    run in every worker. The driver then says why, in one line."""
    import multiprocessing

    # set by multiprocessing while a spawned child imports the parent's main module
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise SystemExit(1)


def _mlflow_tracking(store, tracking, console: Console):
    """The observer publishing each cell to MLflow; a failure is told on the console, once."""
    from .export.tracking import MlflowTracking

    return MlflowTracking(store, tracking, warn=lambda line: console.print(f"[yellow]warning:[/] {line}",
                                                                          highlight=False))


def _publish(run: RunResult, tracking, console: Console, *, quiet: bool) -> None:
    """The whole run (its report included) to MLflow at its end; a failure is a warning, even quiet."""
    from .errors import OverfitLabError
    from .export import export_run

    try:
        done = export_run(run.run_dir, tracking_uri=tracking.mlflow_tracking_uri,
                          experiment=tracking.mlflow_experiment)
        if not quiet:
            console.print(f"[dim]MLflow: parent run {done['parent_run_id']} ({done['tracking_uri']})[/]")
    except Exception as exc:  # noqa: BLE001 - the run is stored; publishing it can be retried
        reason = exc if isinstance(exc, OverfitLabError) else f"{type(exc).__name__}: {exc}"
        console.print(f"[yellow]warning:[/] MLflow export failed: {reason} (retry with: overfit-lab export "
                      f"mlflow {run.run_dir})", highlight=False)


def audit(model: str | Path, train: str | Path, test: str | Path, *, console: Console | None = None,
          quiet: bool = False, **options) -> RunResult:
    """Audit a fine-tuned model: gap, calibration, robustness, bias, memorization, spectra, drift
    (a causal LM: perplexity gap, memorization and extraction, robustness, forgetting, spectra, drift).

    Parameters
    ----------
    model : path
        Directory of the fine-tuned model (``save_pretrained``: config.json, model.safetensors,
        tokenizer files).
    task : str, default "sequence-classification"
        What the model is: ``"sequence-classification"`` or ``"causal-lm"`` (then ``train`` and
        ``test`` hold documents in ``text_column``, or are ``.txt`` files of one per line).
    train, test : path
        The data the model was fine-tuned on, and held-out data (CSV, JSONL, Parquet or a
        ``datasets`` directory) with ``text_column`` and ``label_column``.
    validation : path, optional
        Held-out data to measure the gap on instead of ``test``.
    groups : sequence of str
        Group columns for subgroup metrics and bias amplification (relative to ``train``'s labels).
        Bias amplification leaves out, and reports, the groups with fewer than
        ``diagnostics.bias.min_group_size`` (default 10) rows in ``train`` or ``test``, as "not in
        training" or "too small".
    group_separator : str, optional
        What separates the values of a multi-valued group column (``";"`` for ``"black;muslim"``):
        each value is then one binary attribute of the row (subgroup rates per value over the rows
        having it; BiasAmp→ over the attributes, as Wang & Russakovsky define it).
    reference : path, optional
        The pretrained model the fine-tuning started from, for drift (CKA, weight distance) and a
        causal LM's forgetting.
    checks : path, optional
        A TOML file with ``[checks.NAME]`` (and ``[regression]``) tables; see
        :func:`overfit_lab.checks.load_checks`. Evaluate them with :func:`overfit_lab.checks.check_run`.
    diagnostics : mapping, optional
        A ``[diagnostics]`` table (as in a suite) to configure or switch off diagnostics.
    text_column, label_column : str, default "text", "label"
        The data's columns.
    max_length : int, default 128
        Tokens per text.
    trust_remote_code : bool, default False
        Run code shipped with the model.
    allow_pickle : bool, default False
        Load pickle weights (``pytorch_model.bin``) when the model has no safetensors; unpickling
        can run code, so only for files you trust.
    output : path, optional
        The run directory (default ``reports/audit-<model>-<timestamp>``).
    console, quiet
        Where the summary goes; ``quiet``: no summary.

    Returns
    -------
    RunResult
        As :func:`overfit_lab.load_run` returns: one cell, ``audit``. A diagnostic that raised is
        in ``diagnostic_failures`` (with its reason), the others are stored as usual.
    """
    from .auditing import score_model
    from .report.terminal import make_console

    _end_a_starting_worker()
    console = console or make_console()
    run_dir = score_model(model, train, test, announce=None if quiet else console.print, **options)
    return finish_run(run_dir, console, quiet=quiet)


def audit_trainer_run(output_dir: str | Path, train: str | Path, test: str | Path, *,
                      console: Console | None = None, quiet: bool = False, **options) -> RunResult:
    """Audit a ``transformers.Trainer`` output directory without retraining: its logs (learning
    curve, best evaluation, onset and the grid's verdict rule, with what they cannot judge) and
    its best and last checkpoints, scored as :func:`audit` scores a model (two cells, ``best`` and
    ``last``), with which one to ship and why (``RunResult.trainer_run``). ``options``: as
    :func:`audit`'s."""
    from .auditing import score_trainer_run
    from .report.terminal import make_console

    _end_a_starting_worker()
    console = console or make_console()
    run_dir = score_trainer_run(output_dir, train, test, announce=None if quiet else console.print, **options)
    return finish_run(run_dir, console, quiet=quiet)


_audit = audit  # obtain_run's argument of that name hides it


def obtain_run(*, suite: Suite | str | Path | None = None, run: str | Path | None = None,
               audit: dict | None = None, output: str | Path | None = None, console: Console | None = None,
               quiet: bool = False, execution: dict | None = None) -> RunResult:
    """The run to look at, from exactly one of: a ``suite`` to run (``execution``: as in
    :func:`run_suite`), a finished ``run`` directory to read, or an ``audit`` (a mapping of
    :func:`overfit_lab.audit` arguments)."""
    if sum(x is not None for x in (suite, run, audit)) != 1:
        raise ValueError("give exactly one of suite, run= or audit=")
    if run is not None:
        return load_run(run)
    if audit is not None:
        return _audit(**{"output": output, "console": console, "quiet": quiet, **audit})
    if not isinstance(suite, Suite):
        from .suite import load_suite

        suite = load_suite(suite)
    return run_suite(suite, output=output, console=console, quiet=quiet, execution=execution)


def check(run: RunResult, *, checks: str | Path | None = None, baseline: str | Path | None = None,
          allow_failures: bool = False):
    """Evaluate the run's own checks, or those of the ``checks`` TOML file (a suite or a file of
    ``[checks.*]`` and ``[regression]`` tables, validated against the run's grid), and regressions
    against ``baseline``; returns the :class:`~overfit_lab.checks.CheckReport` (failed cells fail
    it unless ``allow_failures``)."""
    from .checks import check_run, load_checks

    spec = run.suite if checks is None else load_checks(checks, run.suite)
    return check_run(run, checks=spec.checks, regression=spec.regression, baseline=baseline,
                     allow_failures=allow_failures)


def failed_cells_line(run: RunResult) -> str | None:
    """One line saying how many cells failed and why the first did, and which diagnostics failed
    in how many cells and why the first did; ``None`` when nothing failed.

    A cell whose diagnostic raised still finished (its other figures are stored), so
    ``--resume`` does not run it again: the line suggests a retry for failed cells only.
    """
    parts = []
    failed = run.cells[run.cells["status"] != "finished"]
    if not failed.empty:
        first = failed.iloc[0]
        reason = " ".join(str(first["reason"]).split())  # one line, whatever the exception printed
        parts.append(f"{len(failed)} of {len(run.cells)} cells failed; first: {first['cell_id']}: {reason} "
                     f"(retry them with: overfit-lab run --resume {run.run_dir})")
    failures = run.diagnostic_failures
    if not failures.empty:
        names = list(dict.fromkeys(failures["diagnostic"]))
        first = failures.iloc[0]
        which = f" ({first['diagnostic']})" if len(names) > 1 else ""
        reason = " ".join(str(first["reason"]).split())
        parts.append(f"diagnostic{'s' if len(names) > 1 else ''} {', '.join(names)} failed in "
                     f"{failures['cell_id'].nunique()} of {len(run.cells)} cells; "
                     f"first: {first['cell_id']}{which}: {reason}")
    return "; ".join(parts) or None


def finish_run(run_dir: Path, console: Console, *, quiet: bool = False) -> RunResult:
    """Read the stored run back, write its HTML report and (unless quiet) print its summary."""
    from .report.terminal import print_summary

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

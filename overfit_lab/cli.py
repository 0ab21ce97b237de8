"""The ``overfit-lab`` command line: a thin layer over the Python API."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import OverfitLabError
from .report.terminal import make_console

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Tells whether and why a fine-tuned model overfits.")
console = make_console()
errors = Console(stderr=True)


@contextmanager
def _user_errors():
    """Bad input: one line on stderr, exit status 2, no traceback."""
    try:
        yield
    except OverfitLabError as exc:
        errors.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:  # the runner has said where the saved cells are
        raise typer.Exit(130) from None


def packaged_suites() -> dict[str, Path]:
    """The suite files shipped with overfit-lab (the repository's ``suites/`` folder)."""
    folder = resources.files("overfit_lab") / "suites"
    return {Path(str(p)).stem: Path(str(p)) for p in folder.iterdir() if str(p).endswith(".toml")}


def _suite_path(name: str | None) -> Path:
    if name is None:
        return packaged_suites()["quickstart"]
    path = Path(name)
    if not path.exists() and name in packaged_suites():
        return packaged_suites()[name]
    return path


# how cells run, shared by `run` and `check` (they win over the suite's [execution] section)
WORKERS = typer.Option(None, "--workers", min=1, help="Cells at a time (default: the machine's, see README).")
THREADS = typer.Option(None, "--threads", min=1, help="Torch threads per cell.")
EXECUTOR = typer.Option(None, "--executor", help="local (default) or ray.")
ADDRESS = typer.Option(None, "--address", help="Ray cluster: auto or HOST:PORT.")
DEVICE = typer.Option(None, "--device", help="auto (default), cpu or cuda.")


def _execution(workers, threads, executor, address, device) -> dict:
    return {"workers": workers, "threads": threads, "executor": executor, "address": address,
            "device": device}


@app.command()
def run(
    suite: str = typer.Argument(None, help="Suite file or packaged suite name (default: quickstart)."),
    output: Path = typer.Option(None, "--output", "-o", help="Run directory (default reports/NAME-TIME)"),
    resume: Path = typer.Option(None, "--resume", help="Continue the run in this directory."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display or summary."),
    allow_failures: bool = typer.Option(False, "--allow-failures",
                                        help="Exit 0 even when some cells failed."),
    workers: int = WORKERS, threads: int = THREADS, executor: str = EXECUTOR, address: str = ADDRESS,
    device: str = DEVICE,
) -> None:
    """Fine-tune every cell of a suite's grid and store the results.

    --workers, --threads, --executor, --address and --device win over the suite's [execution]
    section, for this invocation (a run can be resumed under another executor).

    Exit status: 0 every cell finished, 1 a cell failed (unless --allow-failures), 2 bad input.
    """
    from .app import run_suite

    with _user_errors():
        if resume is not None and (suite is not None or output is not None):
            raise OverfitLabError("--resume continues a run with its own suite and directory.",
                                  key="--resume", fix="give --resume RUN_DIR alone.")
        run = run_suite(None if resume else _suite_path(suite), output=output, resume=resume,
                        console=console, quiet=quiet,
                        execution=_execution(workers, threads, executor, address, device))
    _exit_on_failed_cells(run, allow_failures)


def _exit_on_failed_cells(run, allow_failures: bool) -> None:
    """Failed cells or failed diagnostics (a cell that finished without one of them): one line on
    stderr, the last one, and exit 1 (unless allowed)."""
    from .app import failed_cells_line

    line = failed_cells_line(run)
    if line is not None and not allow_failures:
        errors.print(f"[red]failed:[/] {escape(line)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


@app.command()
def show(run_dir: Path = typer.Argument(..., help="A run directory.")) -> None:
    """Print the summary of a finished run again."""
    from .analysis import load_run
    from .report.terminal import print_summary

    with _user_errors():
        print_summary(load_run(run_dir), console)


@app.command()
def report(run_dir: Path = typer.Argument(..., help="A run directory."),
           output: Path = typer.Option(None, "--output", "-o",
                                       help="Write the report here (default: RUN_DIR/report.html).")) -> None:
    """Write the self-contained HTML report of a run."""
    from .analysis import load_run
    from .report.html import write_report

    with _user_errors():
        path = write_report(load_run(run_dir), output)
    console.print(f"report written to {path} ({path.stat().st_size / 1e6:.1f} MB)")


baseline_app = typer.Typer(no_args_is_help=True,
                           help="Save the metrics a recipe achieved, to check later runs against.")
app.add_typer(baseline_app, name="baseline")


@baseline_app.command("save")
def baseline_save(run_dir: Path = typer.Argument(..., help="A finished run directory."),
                  to: Path = typer.Option(..., "--to", help="The baseline file to write (JSON).")) -> None:
    """Store every score of a run (per size x strategy: seeds, mean, 95% interval) as a baseline."""
    from .analysis import load_run
    from .checks import save_baseline

    with _user_errors():
        run = load_run(run_dir)
        path = save_baseline(run, to)
    console.print(f"baseline of {run.suite.name} ({run_dir}) written to {path}")


def _finish_check(report, junit: Path | None, markdown: Path | None, *,
                  conditions_shown: bool = False, run=None, allow_failures: bool = False) -> None:
    """Print the check table, write the CI files, exit 1 when something failed (a condition, a
    regression, or, given the ``run``, one of its cells unless ``allow_failures``)."""
    from .report.ci import junit_xml, markdown_summary
    from .report.terminal import checks_table
    from .store import write_text_atomic as write_text

    if not (conditions_shown and report.regressions.empty):
        console.print(checks_table(report, conditions=not conditions_shown))
    if junit is not None:
        console.print(f"[dim]JUnit XML: {write_text(junit, junit_xml(report))}[/]")
    if markdown is not None:
        console.print(f"[dim]Markdown summary: {write_text(markdown, markdown_summary(report))}[/]")
    if not report.passed:
        errors.print(f"[red]failed:[/] {len(report.failed_conditions)} condition(s) failed, "
                     f"{len(report.regressed)} metric(s) regressed against the baseline.", highlight=False)
    if run is not None:
        _exit_on_failed_cells(run, allow_failures)
    if not report.passed:
        raise typer.Exit(1)


@app.command()
def check(
    suite: str = typer.Argument(None, help="Suite file or packaged suite name; with --run, optional "
                                "(its checks replace the run's own)."),
    run_dir: Path = typer.Option(None, "--run", help="Check this finished run instead of running the suite."),
    baseline: Path = typer.Option(None, "--baseline", help="Baseline file (overfit-lab baseline save)."),
    junit: Path = typer.Option(None, "--junit", help="Write JUnit XML here."),
    markdown: Path = typer.Option(None, "--markdown", help="Write a Markdown summary here."),
    output: Path = typer.Option(None, "--output", "-o", help="Run directory when the suite is run."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display or run summary."),
    allow_failures: bool = typer.Option(False, "--allow-failures",
                                        help="Do not fail the check because some cells failed."),
    workers: int = WORKERS, threads: int = THREADS, executor: str = EXECUTOR, address: str = ADDRESS,
    device: str = DEVICE,
) -> None:
    """Run a suite (or take a finished run) and evaluate its checks and a baseline.

    Exit status: 0 all passed, 1 a check failed, a metric regressed or a cell failed (unless
    --allow-failures), 2 bad input.
    """
    from .app import check as check_run_against
    from .app import obtain_run

    with _user_errors():
        if run_dir is None and suite is None:
            raise OverfitLabError("give a suite to run, or --run RUN_DIR.", key="SUITE",
                                  fix="e.g. overfit-lab check suites/quickstart.toml "
                                      "--baseline baseline.json.")
        if baseline is not None:  # a bad baseline is told before a grid is trained to compare with it
            from .checks import load_baseline
            from .suite import load_suite

            if run_dir is None:
                load_suite(_suite_path(suite))  # a bad suite first, as without a baseline
            load_baseline(baseline)
        if run_dir is not None:  # SUITE, if given: a suite or a file of [checks.*] tables for the run
            run = obtain_run(run=run_dir)
            checks = None if suite is None else _suite_path(suite)
        else:
            run = obtain_run(suite=_suite_path(suite), output=output, console=console, quiet=quiet,
                             execution=_execution(workers, threads, executor, address, device))
            checks = None
        report = check_run_against(run, checks=checks, baseline=baseline, allow_failures=allow_failures)
    # a run's summary already lists its suite's conditions
    shown = run_dir is None and not quiet and bool(run.suite.checks)
    _finish_check(report, junit, markdown, conditions_shown=shown, run=run, allow_failures=allow_failures)


@app.command()
def compare(run_a: Path = typer.Argument(..., help="The run to compare against (A)."),
            run_b: Path = typer.Argument(..., help="The run compared (B)."),
            output: Path = typer.Option(None, "--output", "-o",
                                        help="HTML file (default: RUN_B/compare-<A's directory name>.html)."),
            ) -> None:
    """Side by side of two runs: what improved and what regressed, with significance."""
    from .analysis import load_run
    from .checks import compare_run_scores
    from .report.html import write_comparison
    from .report.terminal import run_comparison_table

    with _user_errors():
        a, b = load_run(run_a), load_run(run_b)
        frame = compare_run_scores(a, b)
        if frame.empty:
            raise OverfitLabError("the two runs share no training size x strategy with finished cells.",
                                  key="RUN_B", fix="compare runs of the same grid (or overlapping ones).")
    spec = b.suite.statistics
    console.print(run_comparison_table(frame, f"A ({run_a.name})", f"B ({run_b.name})", alpha=spec.alpha,
                                       correction=spec.correction))
    path = write_comparison(a, b, frame, output or Path(run_b) / f"compare-{Path(run_a).resolve().name}.html")
    console.print(f"comparison written to {path}")


@app.command("audit")
def audit_command(
    model: Path = typer.Option(None, "--model", help="The fine-tuned model directory (save_pretrained)."),
    trainer_run: Path = typer.Option(None, "--trainer-run",
                                     help="Instead of --model: a transformers Trainer output directory "
                                          "(trainer_state.json, checkpoint-*): its logs and its best and "
                                          "last checkpoints."),
    task: str = typer.Option("sequence-classification", "--task",
                             help="sequence-classification (default) or causal-lm."),
    train: Path = typer.Option(..., "--train", help="The data it was fine-tuned on."),
    test: Path = typer.Option(..., "--test", help="Held-out data."),
    validation: Path = typer.Option(None, "--validation",
                                    help="Held-out data for the gap (default: --test)."),
    groups: list[str] = typer.Option(None, "--groups", help="Group column(s): repeat or comma-separate."),
    group_separator: str = typer.Option(None, "--group-separator",
                                        help="Separates the values of a multi-valued group column "
                                             "(e.g. ';' for 'black;muslim': one attribute each)."),
    reference: Path = typer.Option(None, "--reference", help="The pretrained model, for drift."),
    checks: Path = typer.Option(None, "--checks", help="TOML file with [checks.NAME] tables."),
    baseline: Path = typer.Option(None, "--baseline", help="Baseline file of an earlier audit."),
    junit: Path = typer.Option(None, "--junit", help="Write JUnit XML here (with --checks/--baseline)."),
    markdown: Path = typer.Option(None, "--markdown", help="Write a Markdown summary here."),
    text_column: str = typer.Option("text", "--text-column"),
    label_column: str = typer.Option("label", "--label-column"),
    max_length: int = typer.Option(128, "--max-length", help="Tokens per text."),
    output: Path = typer.Option(None, "--output", "-o", help="Run directory (default reports/audit-...)."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code",
                                           help="Run code shipped with the model (off by default)."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle",
                                      help="Load pickle weights (pytorch_model.bin) of a trusted model."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
    allow_failures: bool = typer.Option(False, "--allow-failures",
                                        help="Exit 0 even when a diagnostic failed."),
) -> None:
    """Audit an already fine-tuned model, or a transformers Trainer run, without training it.

    --trainer-run OUTPUT_DIR reads the run's trainer_state.json (learning curve, best evaluation,
    onset, the verdict of the grid's rule and what the logs cannot judge), audits its best and
    its last checkpoint, and says which one to ship and why.

    A classifier: gap, calibration, robustness, bias, memorization, spectra and (with
    --reference) drift. A causal LM (--task causal-lm; --train/--test hold documents in the text
    column, or .txt files of one document per line): perplexity gap, memorization and
    extraction, robustness, spectra and (with --reference) forgetting and drift. The same store,
    summary, report and checks as a run.

    Exit status: 0 all done, 1 a diagnostic failed (unless --allow-failures; the others and the
    report are still written) or a check failed, 2 bad input.
    """
    from .app import audit
    from .app import check as check_run_against

    names = [g.strip() for item in (groups or []) for g in item.split(",") if g.strip()]
    with _user_errors():
        if (model is None) == (trainer_run is None):
            raise OverfitLabError("give --model (a fine-tuned model) or --trainer-run (a Trainer output "
                                  "directory), one of them.", key="--model",
                                  fix="e.g. overfit-lab audit --trainer-run out/ --train train.csv "
                                      "--test test.csv")
        if trainer_run is not None:
            from .app import audit_trainer_run as audit
        run = audit(model if trainer_run is None else trainer_run, train, test, task=task,
                    validation=validation, groups=names, group_separator=group_separator,
                    reference=reference, checks=checks,
                    text_column=text_column, label_column=label_column, max_length=max_length,
                    trust_remote_code=trust_remote_code, allow_pickle=allow_pickle, output=output,
                    console=console, quiet=quiet)
        wanted = checks or baseline or junit or markdown  # the audit's suite holds the --checks
        report = check_run_against(run, baseline=baseline) if wanted else None
    if report is not None:
        _finish_check(report, junit, markdown, run=run, allow_failures=allow_failures)
    _exit_on_failed_cells(run, allow_failures)


export_app = typer.Typer(no_args_is_help=True,
                         help="Take a run elsewhere: a cell's model, the analysis as JSON, MLflow.")
app.add_typer(export_app, name="export")


@export_app.command("model")
def export_model_command(
    run_dir: Path = typer.Argument(..., help="A finished run directory."),
    cell_id: str = typer.Argument(..., help="The cell whose model to keep (overfit-lab show lists them)."),
    to: Path = typer.Option(..., "--to", help="The new directory to save the model in."),
    checkpoint: str = typer.Option("final", "--checkpoint", help="final (default) or best (lowest "
                                                                   "validation loss)."),
) -> None:
    """Retrain one cell of a finished run and save its model (save_pretrained: safetensors,
    tokenizer, label names), checking the retrained metrics against the stored ones."""
    from .model_export import export_model

    with _user_errors():
        done = export_model(run_dir, cell_id, to=to, checkpoint=checkpoint)
    agreement = (f"its {done.metrics_compared} stored per-epoch metrics reproduced bit-identically"
                 if done.identical else
                 f"its per-epoch metrics differ from the stored ones by up to {done.max_difference:.3g} "
                 f"(another thread count or device than the run's; the model is the retrained one)")
    console.print(f"{done.cell_id} retrained in {done.seconds:.0f} s on {done.threads or 'the default'} "
                  f"thread(s): {agreement}.")
    console.print(f"model at its {done.checkpoint} checkpoint (epoch {done.epoch}) saved in {done.directory} "
                  f"({done.bytes / 1e6:.0f} MB); audit it with: overfit-lab audit --model {done.directory} "
                  "--train TRAIN --test TEST")


@export_app.command("json")
def export_json_command(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    output: Path = typer.Option(None, "--output", "-o",
                                help="The JSON file (default: RUN_DIR/analysis.json)."),
) -> None:
    """Write the run's analysis as one JSON document (schema: overfit_lab.export.json_export)."""
    from .analysis import load_run
    from .export import write_json

    with _user_errors():
        path = write_json(load_run(run_dir), output or Path(run_dir) / "analysis.json")
    console.print(f"analysis written to {path} ({path.stat().st_size / 1e3:,.0f} kB)")


@export_app.command("mlflow")
def export_mlflow_command(
    run_dir: Path = typer.Argument(..., help="A run directory (not being written by another process)."),
    tracking_uri: str = typer.Option(None, "--tracking-uri",
                                     help="MLflow tracking store: http(s)://SERVER or file:PATH (default: "
                                          "$MLFLOW_TRACKING_URI or MLflow's own)."),
    experiment: str = typer.Option(None, "--experiment",
                                   help="MLflow experiment (default: the suite's name)."),
) -> None:
    """Publish a run to MLflow: a parent run (suite as params, environment as tags, report,
    suite and database as artifacts) and a nested run per cell (per-epoch metrics, scores).
    Exporting again updates the same runs (their ids are kept in the run directory)."""
    from .export import export_run

    with _user_errors():
        done = export_run(run_dir, tracking_uri=tracking_uri, experiment=experiment)
    console.print(f"exported to MLflow ({done['tracking_uri']}): experiment {done['experiment_id']}, "
                  f"parent run {done['parent_run_id']}, {len(done['cell_runs'])} cell runs "
                  f"({done['created']} created, {done['updated']} updated)")


@app.command("list")
def list_things() -> None:
    """List packaged suites, strategies, built-in data sets and model aliases."""
    from .data.builtin import BUILTIN_NAME
    from .model_cache import GGUF_ALIASES
    from .models import MODEL_ALIASES
    from .strategies import BUILTIN_STRATEGIES
    from .suite import read_toml

    table = Table(title="suites", title_justify="left", header_style="bold")
    table.add_column("name")
    table.add_column("description")
    for name, path in sorted(packaged_suites().items()):
        raw = read_toml(path, what="suite file", fix="reinstall overfit-lab.")
        table.add_row(name, raw.get("description", ""))
    console.print(table)
    table = Table(title="strategies (use by name in grid.strategies)", title_justify="left",
                  header_style="bold")
    table.add_column("name")
    table.add_column("what it does")
    for name, spec in BUILTIN_STRATEGIES.items():
        table.add_row(name, spec.description)
    console.print(table)
    console.print(f"[bold]built-in data sets[/]: {BUILTIN_NAME} (generated review sentences with a "
                  "sentiment label and a gender subgroup; [data] builtin = \"reviews\")")
    for alias, (_, _, what) in {**MODEL_ALIASES, **GGUF_ALIASES}.items():
        console.print(f"[bold]model alias[/]: {alias} = {what}")


def main() -> None:
    """Console-script entry point."""
    app(prog_name="overfit-lab")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

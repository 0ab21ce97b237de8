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


@app.command()
def run(
    suite: str = typer.Argument(None, help="Suite file or packaged suite name (default: quickstart)."),
    output: Path = typer.Option(None, "--output", "-o", help="Run directory (default reports/NAME-TIME)"),
    resume: Path = typer.Option(None, "--resume", help="Continue the run in this directory."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display or summary."),
) -> None:
    """Fine-tune every cell of a suite's grid and store the results."""
    from .runner import run_suite

    with _user_errors():
        if resume is not None and (suite is not None or output is not None):
            raise OverfitLabError("--resume continues a run with its own suite and directory.",
                                  key="--resume", fix="give --resume RUN_DIR alone.")
        run_suite(None if resume else _suite_path(suite), output=output, resume=resume, console=console,
                  quiet=quiet)


@app.command()
def show(run_dir: Path = typer.Argument(..., help="A run directory.")) -> None:
    """Print the summary of a finished run again."""
    from .report.terminal import print_summary
    from .store import load_run

    with _user_errors():
        print_summary(load_run(run_dir), console)


@app.command()
def report(run_dir: Path = typer.Argument(..., help="A run directory."),
           output: Path = typer.Option(None, "--output", "-o",
                                       help="Write the report here (default: RUN_DIR/report.html).")) -> None:
    """Write the self-contained HTML report of a run."""
    from .report.html import write_report
    from .store import load_run

    with _user_errors():
        path = write_report(load_run(run_dir), output)
    console.print(f"report written to {path} ({path.stat().st_size / 1e6:.1f} MB)")


@app.command("list")
def list_things() -> None:
    """List packaged suites, strategies, built-in data sets and model aliases."""
    import tomllib

    from .data.builtin import BUILTIN_NAME
    from .models import MODEL_ALIASES
    from .strategies import BUILTIN_STRATEGIES

    table = Table(title="suites", title_justify="left", header_style="bold")
    table.add_column("name")
    table.add_column("description")
    for name, path in sorted(packaged_suites().items()):
        table.add_row(name, tomllib.loads(path.read_text()).get("description", ""))
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
    for alias, (_, _, what) in MODEL_ALIASES.items():
        console.print(f"[bold]model alias[/]: {alias} = {what}")


def main() -> None:
    """Console-script entry point."""
    app(prog_name="overfit-lab")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Benchmark: what MLflow export costs for the regularization suite's run.

The export's work grows with the run's cells, epochs, splits and diagnostic tables, not with
the model's size, so by default the suite (``suites/regularization.toml``: 72 cells, the same
data, grid, recipe and diagnostics) is run on a tiny randomly initialised BERT (6 layers as
MiniLM, hidden 32) instead of MiniLM, in minutes instead of 1 h 46 min. ``--run-dir`` exports an
existing run instead (a real MiniLM one, say).

Timed into a fresh local ``file:`` tracking store (interleaved over ``--repeats`` fresh stores,
medians reported):

- ``export_run`` into an empty store (every run created, ``run.sqlite`` and the report logged);
- ``export_run`` again with nothing changed (every run found and updated);
- ``export_cell`` for the run's last ``--cells`` cells into another empty store, as
  ``[tracking] mlflow = true`` does after each cell finishes (per cell).

With ``--tracking``, the tiny suite is also run twice more, with and without ``[tracking]
mlflow``, and the wall times compared (one run each; noisy: read the per-cell figure).

    python benchmarks/mlflow_export.py [--run-dir DIR] [--repeats 3] [--cells 8] [--tracking]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import string
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import write_tiny_bert  # noqa: E402

from overfit_lab import load_run, load_suite, run_suite  # noqa: E402
from overfit_lab.data.builtin import generate_reviews  # noqa: E402
from overfit_lab.export import export_cell, export_run  # noqa: E402
from overfit_lab.suite import Suite  # noqa: E402

SUITE = ROOT / "suites" / "regularization.toml"


def tiny_suite(workdir: Path, *, tracking: str | None = None) -> Suite:
    """The regularization suite with its model replaced by a tiny BERT on the reviews' words."""
    suite = load_suite(SUITE)
    model_dir = workdir / "tiny-bert"
    if not model_dir.exists():
        words: set[str] = set()
        options = suite.data.builtin_options
        for text in generate_reviews(options.n_train, options.n_validation, options.n_test,
                                     seed=options.seed)["text"]:
            words.update(w.strip(string.punctuation).lower() for w in text.split())
        write_tiny_bert(model_dir, sorted(w for w in words if w), layers=6)  # as MiniLM
    raw = suite.model_dump()
    raw["model"]["name"] = str(model_dir)
    if tracking:
        raw["tracking"] = {"mlflow": True, "mlflow_tracking_uri": tracking}
    return Suite.model_validate(raw)


def timed(action, *args, **kwargs) -> float:
    started = time.perf_counter()
    action(*args, **kwargs)
    return time.perf_counter() - started


def export_each(run_dir: Path, cell_ids: list[str], uri: str) -> None:
    for cell_id in cell_ids:
        export_cell(run_dir, cell_id, tracking_uri=uri)


def show(label: str, seconds: list[float]) -> None:
    print(f"{label:<30}{statistics.median(seconds):.2f} s  {[round(t, 2) for t in seconds]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", help="export this run instead of running the suite on a tiny model")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cells", type=int, default=8, help="cells exported one by one with export_cell")
    parser.add_argument("--tracking", action="store_true",
                        help="also time the tiny run with [tracking] mlflow")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="overfit-lab-mlflow-bench-"))
    if args.run_dir:
        run_dir = Path(args.run_dir)
    else:
        run_dir = workdir / "run"
        wall = timed(run_suite, tiny_suite(workdir), output=run_dir, quiet=True)
        print(f"regularization suite on a tiny BERT: {wall:.1f} s")
    run = load_run(run_dir)
    cells = list(run.cells["cell_id"])
    size = (run_dir / "run.sqlite").stat().st_size / 2**20
    print(f"run: {run_dir} ({len(cells)} cells, run.sqlite {size:.1f} MiB)")

    first, again, per_cell = [], [], []
    last = cells[-args.cells:]
    for repeat in range(args.repeats):
        # a fresh copy each time: the export keeps its MLflow run ids in the run directory
        copy = shutil.copytree(run_dir, workdir / f"copy-{repeat}")
        uri = (workdir / f"mlruns-{repeat}").as_uri()
        first.append(timed(export_run, copy, tracking_uri=uri))
        again.append(timed(export_run, copy, tracking_uri=uri))
        copy = shutil.copytree(run_dir, workdir / f"copy-cells-{repeat}")
        uri = (workdir / f"mlruns-cells-{repeat}").as_uri()
        per_cell.append(timed(export_each, copy, last, uri) / len(last))
    show("export_run, empty store:", first)
    show("export_run again (unchanged):", again)
    show("export_cell, per cell:", per_cell)

    if args.tracking:
        plain = timed(run_suite, tiny_suite(workdir), output=workdir / "plain", quiet=True)
        tracking = tiny_suite(workdir, tracking=(workdir / "mlruns-tracking").as_uri())
        tracked = timed(run_suite, tracking, output=workdir / "tracked", quiet=True)
        print(f"tiny suite without / with [tracking] mlflow: {plain:.1f} s / {tracked:.1f} s "
              f"({(tracked - plain) / len(cells):+.2f} s per cell)")


if __name__ == "__main__":
    main()

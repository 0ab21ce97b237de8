"""Snapshot what a run shows, to prove that a refactoring changed nothing a user sees.

    python benchmarks/snapshot.py RUN_DIR OUT_DIR            # a stored run, read and rendered
    python benchmarks/snapshot.py --run SUITE RUN_DIR OUT_DIR  # run the suite first (fresh RUN_DIR)

OUT_DIR receives ``cells.csv`` (timings and paths left out), ``metrics.csv``, ``diagnostics.csv``,
``examples.csv`` (every value, sorted), ``terminal.txt`` (the printed summary at 100 columns)
and ``report.html`` (the generation time and the run's own timings blanked). Take one snapshot
with the code before a change and one after, on the same stored run (reports) and on two fresh
runs of the same suite (training and diagnostics), then compare: ``diff -r BEFORE AFTER``.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from rich.console import Console

from overfit_lab import load_run, run_suite
from overfit_lab.report.html import render_report
from overfit_lab.report.terminal import print_summary

# measured, not computed: they differ between two runs of the same code
VOLATILE = re.compile(r"(_s|_at|^model|^reference|^forward.*|^diagnostics_forward.*)$")


def snapshot(run_dir: Path, out: Path) -> None:
    run = load_run(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    cells = run.cells[[c for c in run.cells.columns if not VOLATILE.search(c)]]
    tables = {"cells": cells, "metrics": run.metrics, "diagnostics": run.diagnostics,
              "examples": run.examples}
    for name, frame in tables.items():
        frame = frame.astype({c: str for c in frame.columns if frame[c].dtype == object})
        frame.sort_values(list(frame.columns)).to_csv(out / f"{name}.csv", index=False, float_format="%.17g")
    with open(os.devnull, "w") as sink:
        console = Console(width=100, record=True, force_terminal=False, file=sink)
        print_summary(run, console)
    text = console.export_text().replace(str(run.run_dir), "RUN_DIR")
    (out / "terminal.txt").write_text(text, encoding="utf-8")
    html = render_report(run)
    html = re.sub(r"generated \d{4}-\d\d-\d\d \d\d:\d\d UTC", "generated TIME", html)
    html = re.sub(r'<section id="setup">.*?</section>', '<section id="setup"></section>', html, flags=re.S)
    (out / "report.html").write_text(html.replace(str(run.run_dir), "RUN_DIR"), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", metavar="SUITE", help="run this suite into RUN_DIR first")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    if args.run:
        run_suite(args.run, output=args.run_dir, quiet=True)
    snapshot(args.run_dir, args.out)
    print(f"snapshot of {args.run_dir} in {args.out}")


if __name__ == "__main__":
    main()

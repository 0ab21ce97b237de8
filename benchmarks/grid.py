"""Benchmark: a whole grid's wall time under each local layout, beside plain Trainer-per-cell.

In one process and one invocation, each run measured alone (nothing else of this script runs
at the same time):

1. the suite run sequentially (``workers=1``, ``threads=<cores>``, in this process) and under
   each other layout given (``WxT``: W spawned worker processes of T torch threads), in the
   order given, ``--repeats`` times (interleaved: A B A B; this machine drifts by 10-20%
   between minutes, so only interleaved runs compare);
2. plain Trainer-per-cell (``../shared/bench/naive_grid.py``'s ``run_grid_cell``, imported):
   with ``--naive-subset K``, K cells of the grid measured here and scaled to the whole grid;
   otherwise the figure recorded in ``../shared/bench/naive_grid_summary.md`` (the SST-2
   reference grid's 12 runs: 1,398.8 s, its "all 12 runs" wall);
3. where the time goes (the cells' own train / eval / diagnostics seconds, the rest of each
   cell, and the worker-slot seconds outside any cell: process start, imports, data
   preparation outside cells, idle slots at the end, the report), the frozen cache's share of
   the frozen cells' time (when cells record ``frozen_cache_s``), and the arithmetic limit:
   the FLOP the grid needs (formula printed) over the run's wall time, beside a measured
   matmul rate of MiniLM's shapes on this machine;
   Each run also records the CPU that other processes used meanwhile (``/proc/stat`` less this
   benchmark's own) and a hash of ``overfit_lab``'s sources before and after it: the summary
   warns when either says the measurement is not clean;
4. whether the non-frozen cells' (no frozen parameters) per-epoch metrics are identical
   between the sequential run and every other run: the largest absolute difference per
   metric; the exit status is 1 when a run with as many threads per cell differs at all, one
   with another thread count by more than 1e-3 (float rounding that training grows), or a
   metric row is missing in one.

Writes the figures to ``--json`` (default ``reports/bench-grid-<time>.json``, a Markdown copy
beside it) and prints a Markdown summary; the runs go to ``reports/bench-grid-<time>/``.

    python benchmarks/grid.py [--suite benchmarks/sst2_reference.toml] [--layouts 1x2,2x1]
                              [--repeats 1] [--naive-subset K] [--smoke] [--per-epoch-only]
                              [--json PATH]

``--layouts`` is the order of the runs; ``naive`` may appear in it to place the Trainer-per-cell
cells (default: last). A layout with one worker is the reference ("sequential"); the first one
given is used, and ``1x<cores>`` is put first if none is given. ``--smoke``: a tiny built-in
suite (2 sizes of 16 and 32, 1 epoch, the real MiniLM) to check the script end to end (~2 min).
``--per-epoch-only``: every diagnostic off, so that the grid records what Trainer-per-cell
records (per-epoch metrics of the training subset, validation and test), like for like.
The full SST-2 grid takes 30+ minutes per layout on 2 cores: run it alone on the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
NAIVE_DIR = ROOT.parent / "shared" / "bench"
NAIVE_SUMMARY = NAIVE_DIR / "naive_grid_summary.md"
RECORDED_NAIVE_TOTAL_S = 1398.8  # naive_grid_summary.md, "Wall times": **all 12 runs** ... **1398.8**
# Non-frozen metrics of two runs with the same threads per cell must be identical. Across thread
# counts float32 sums run in another order and training grows that rounding over the epochs
# (measured on the SST-2 grid, 1x2 against 2x1: losses up to 1.7e-4 apart, accuracies identical).
TOLERANCE = {"same_threads": 0.0, "other_threads": 1e-3}

SMOKE_SUITE = """\
# written by benchmarks/grid.py --smoke: a tiny grid to check the benchmark script end to end
name = "bench-grid-smoke"
description = "built-in reviews, sizes 16 and 32, baseline / regularized / freeze4, 1 epoch, 1 seed"

[model]
name = "minilm"
max_length = 64

[data]
builtin = "reviews"
builtin_options = { n_train = 64, n_validation = 32, n_test = 32, label_noise = 0.1, seed = 0 }

[grid]
train_sizes = [16, 32]
epochs = [1]
strategies = ["baseline", "regularized", "freeze4"]
seeds = [0]

[recipe]
learning_rate = 1e-4
per_device_train_batch_size = 16
lr_scheduler_type = "constant"

[evaluation]
batch_size = 64

[diagnostics]
checkpoints = ["final"]
robustness = { severities = [0.2], subsample = 16 }
bias = { subsample = 16 }
drift = { probe_size = 16 }
"""


# --------------------------------------------------------------------------- small helpers
def cores() -> int:
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def log(*parts) -> None:
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


def parse_layouts(text: str, n_cores: int, naive: bool) -> list[str]:
    """The run order: ``WxT`` layouts and ``naive``; a sequential (1xT) layout comes first if none."""
    order = [t.strip().lower() for t in text.split(",") if t.strip()]
    for token in order:
        if token != "naive" and not re.fullmatch(r"[1-9]\d*x[1-9]\d*", token):
            raise SystemExit(f"--layouts: {token!r} is not WORKERSxTHREADS (e.g. 2x1) or 'naive'")
    if len(set(order)) != len(order):
        raise SystemExit(f"--layouts: a layout is named twice in {text!r}")
    if not any(t != "naive" and t.startswith("1x") for t in order):
        order.insert(0, f"1x{n_cores}")
    if naive and "naive" not in order:
        order.append("naive")
    if not naive:
        order = [t for t in order if t != "naive"]
    return order


def workers_threads(layout: str) -> tuple[int, int]:
    w, t = layout.split("x")
    return int(w), int(t)


def fnum(x, nd: int = 1) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:,.{nd}f}"


def clear_caches() -> None:
    """Forget this process's prepared data, so every in-process run pays its own preparation
    (as a fresh ``overfit-lab run`` would); worker processes start empty anyway."""
    from overfit_lab import data as data_module
    from overfit_lab import frozen, training

    for fn in (getattr(training, "_prepared", None), getattr(data_module, "_load_cached", None)):
        if hasattr(fn, "cache_clear"):
            fn.cache_clear()
    frozen.clear()  # the frozen layers' outputs too


# --------------------------------------------------------------------------- the suite
def suite_data_files(path: Path) -> list[Path]:
    """The data files a suite file names (resolved against its folder), before loading it."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    data = raw.get("data", {})
    return [(path.parent / data[k]).resolve() for k in ("path", "train", "validation", "test",
                                                       "correlated_test") if data.get(k)]


def prepare_suite(args, bench_dir: Path):
    from overfit_lab import load_suite
    from overfit_lab.errors import OverfitLabError

    if args.smoke:
        bench_dir.mkdir(parents=True, exist_ok=True)
        path = bench_dir / "smoke.toml"
        path.write_text(SMOKE_SUITE, encoding="utf-8")
    else:
        path = Path(args.suite).resolve()
        if not path.is_file():
            raise SystemExit(f"error: no suite file {path}")
        missing = [p for p in suite_data_files(path) if not p.exists()]
        if missing:
            raise SystemExit(
                f"error: the suite {path.name} reads data that is not here: "
                f"{', '.join(str(p) for p in missing)}.\n"
                "The SST-2 reference suite needs ../shared/datasets/sst2 beside the checkout "
                "(developers' machines have it). Run with --smoke, or give --suite another suite.")
    try:
        return path, load_suite(path)
    except OverfitLabError as exc:
        raise SystemExit(f"error: {exc}") from None


# --------------------------------------------------------------------------- one grid run
def per_epoch_only(suite):
    """``suite`` with every diagnostic off: the per-epoch metrics alone, as Trainer-per-cell records."""
    from overfit_lab.diagnostics.checkpoint import DIAGNOSTICS

    off = {name: getattr(suite.diagnostics, name).model_copy(update={"enabled": False})
           for name in DIAGNOSTICS}
    return suite.model_copy(update={"diagnostics": suite.diagnostics.model_copy(update=off)})


def run_layout(suite_path, layout: str, out: Path, device: str) -> dict:
    from overfit_lab import load_run, run_suite

    workers, threads = workers_threads(layout)
    if workers == 1:
        clear_caches()
    log(f"run {layout} ({workers} worker(s) x {threads} thread(s)) -> {out}")
    code_before, cpu_before = code_fingerprint(), cpu_seconds()
    started = time.perf_counter()
    run_suite(suite_path, output=out, quiet=True,
              execution={"workers": workers, "threads": threads, "device": device})
    wall = time.perf_counter() - started
    cpu_after, code_after = cpu_seconds(), code_fingerprint()
    others = None
    if cpu_before and cpu_after:  # machine-wide busy seconds less this process tree's
        others = max((cpu_after[0] - cpu_before[0]) - (cpu_after[1] - cpu_before[1]), 0.0) / wall
    run = load_run(out)
    busy = "" if others is None else f"; other processes used {others:.2f} cores"
    log(f"  {layout}: {wall:.1f} s{busy}")
    return {"layout": layout, "workers": workers, "threads": threads, "wall_s": wall, "run_dir": str(out),
            "other_processes_cores": others, "code_changed_during_run": code_before != code_after,
            "code_fingerprint": code_after, "cells": run.cells, "metrics": run.metrics}


def cpu_seconds() -> tuple[float, float] | None:
    """(the machine's busy CPU seconds, this process's and its reaped children's CPU seconds)."""
    import resource

    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    own = sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))
    return busy, own


def code_fingerprint() -> str:
    """A hash of the package's sources: a run whose code changed under it measures two versions."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((ROOT / "overfit_lab").rglob("*.py")):
        with contextlib.suppress(OSError):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def breakdown(record: dict) -> dict:
    """Where the time of one run went: the cells' own seconds and the slot seconds outside them."""
    cells = record["cells"]

    def total(column: str, frame=cells) -> float:
        return float(frame[column].fillna(0).sum()) if column in frame else 0.0

    cell_wall, train, evaluation = total("wall_s"), total("train_s"), total("eval_s")
    diagnostics = total("diagnostics_s")
    by_diagnostic: dict[str, float] = {}  # each diagnostic's seconds, summed over the cells
    for seconds in cells.get("diagnostic_s", []):
        for name, s in (seconds if isinstance(seconds, dict) else {}).items():
            by_diagnostic[name] = by_diagnostic.get(name, 0.0) + s
    slots = record["wall_s"] * record["workers"]
    frozen = cells[frozen_mask(cells)]
    out = {
        "cells": len(cells), "failed_cells": int((cells["status"] != "finished").sum()),
        "cells_per_min": len(cells) / record["wall_s"] * 60,
        "slot_s": slots, "cell_wall_s": cell_wall, "train_s": train, "eval_s": evaluation,
        "diagnostics_s": diagnostics, "diagnostic_s": by_diagnostic,
        "cell_other_s": cell_wall - train - evaluation - diagnostics,
        "outside_cells_s": slots - cell_wall,
        "frozen_cells": len(frozen), "frozen_wall_s": total("wall_s", frozen),
        "frozen_cache_s": total("frozen_cache_s", frozen) if "frozen_cache_s" in cells else None,
    }
    out["frozen_cache_share"] = (out["frozen_cache_s"] / out["frozen_wall_s"]
                                 if out["frozen_cache_s"] is not None and out["frozen_wall_s"] else None)
    return out


def frozen_mask(cells):
    """Cells with frozen parameters (fewer trainable parameters than parameters)."""
    if {"trainable_parameters", "parameters"} <= set(cells.columns):
        return (cells["trainable_parameters"] < cells["parameters"]).fillna(False).to_numpy()
    return cells["strategy"].str.startswith("freeze").to_numpy()


def compare_metrics(reference: dict, other: dict) -> dict:
    """Largest absolute difference per metric between two runs, non-frozen and frozen cells apart."""
    import pandas as pd

    out = {}
    for kind, want_frozen in (("non_frozen", False), ("frozen", True)):
        frames = []
        for record in (reference, other):
            cells = record["cells"]
            ids = set(cells.loc[frozen_mask(cells) == want_frozen, "cell_id"])
            frames.append(record["metrics"][record["metrics"]["cell_id"].isin(ids)])
        keys = ["cell_id", "epoch", "split", "metric"]
        merged = pd.merge(frames[0], frames[1], on=keys, how="outer", suffixes=("_a", "_b"), indicator=True)
        both = merged[merged["_merge"] == "both"]
        diff = (both["value_a"] - both["value_b"]).abs()
        per_metric = {}
        for metric, values in diff.groupby(both["metric"]):
            per_metric[metric] = {"max_abs_diff": float(values.max()), "compared": int(len(values)),
                                  "identical": int((values == 0).sum())}
        out[kind] = {"compared": int(len(both)), "identical": int((diff == 0).sum()),
                     "max_abs_diff": float(diff.max()) if len(diff) else 0.0,
                     "only_in_one": int((merged["_merge"] != "both").sum()), "per_metric": per_metric}
    return out


# --------------------------------------------------------------------------- plain Trainer-per-cell
def recorded_naive() -> tuple[float, dict[tuple[int, str, int], float], str]:
    """The recorded Trainer-per-cell total and per-run walls of the SST-2 reference grid."""
    per_run: dict[tuple[int, str, int], float] = {}
    total, source = RECORDED_NAIVE_TOTAL_S, "constant in benchmarks/grid.py (naive_grid_summary.md absent)"
    if NAIVE_SUMMARY.is_file():
        text = NAIVE_SUMMARY.read_text(encoding="utf-8")
        row = r"^\| (\d+) \| (\w+) \| (\d+) \| [\d,]+ \|(?: [\d.]+ \|){4} ([\d.]+) \|$"
        for m in re.finditer(row, text, re.M):
            per_run[(int(m[1]), m[2], int(m[3]))] = float(m[4])
        m = re.search(r"\*\*all (\d+) runs\*\*.*\*\*([\d.]+)\*\* \|$", text, re.M)
        if m:
            total = float(m[2])
            source = f"{NAIVE_SUMMARY.name}, 'Wall times' table, '**all {m[1]} runs**' wall"
    return total, per_run, source


def naive_cells(suite, k: int) -> list[tuple[int, str, int]]:
    """K cells spread over (size, strategy) groups: every group's first seed, then the next..."""
    grid = suite.grid
    order = [(size, strategy, seed) for seed in grid.seeds for size in grid.train_sizes
             for strategy in grid.strategies]
    supported = [c for c in order if c[1] in ("baseline", "regularized", "freeze4")]
    if len(supported) < len(order):
        log("naive: only baseline / regularized / freeze4 exist in naive_grid.py; other strategies skipped")
    return supported[:k]


def run_naive(suite, k: int, scratch: Path) -> dict:
    """K cells of plain Trainer-per-cell (naive_grid.py's run_grid_cell on this suite's data)."""
    import torch

    sys.path.insert(0, str(NAIVE_DIR))
    try:
        import naive_grid
    except ImportError as exc:
        raise SystemExit(f"error: --naive-subset needs {NAIVE_DIR / 'naive_grid.py'} ({exc})") from None
    finally:
        sys.path.remove(str(NAIVE_DIR))
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from overfit_lab.data import load_task_data
    from overfit_lab.models import resolve_model_path

    hf_logging.set_verbosity_error()
    torch.set_num_threads(cores())
    chosen = naive_cells(suite, k)
    epochs = max(suite.grid.epochs)
    a = SimpleNamespace(model_dir=resolve_model_path(suite.model.name), scratch=str(scratch),
                        eval_bs=suite.evaluation.batch_size)
    scratch.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(a.model_dir)
    data_frames = load_task_data(suite)

    def rows(frame):
        return [{"idx": i, "text": t, "label": int(y)}
                for i, (t, y) in enumerate(zip(frame["text"], frame["label"], strict=True))]

    max_length = suite.model.max_length
    data = {"val": naive_grid.tokenize(tok, rows(data_frames.validation), max_length),
            "test": naive_grid.tokenize(tok, rows(data_frames.test), max_length)}
    for size in sorted({c[0] for c in chosen}):
        subset = data_frames.training_subset(size, sizes=suite.grid.train_sizes, seed=suite.data.seed)
        data[size] = naive_grid.tokenize(tok, rows(subset), max_length)
    prep_s = time.perf_counter() - started
    measured = []
    for size, strategy, seed in chosen:
        log(f"naive Trainer-per-cell: size {size}, {strategy}, seed {seed}, {epochs} epochs")
        with contextlib.redirect_stdout(sys.stderr):  # Trainer prints its logs: keep stdout the summary's
            r = naive_grid.run_grid_cell(a, data, tok, size, strategy, seed, epochs=epochs)
        measured.append({"size": size, "strategy": strategy, "seed": seed, "wall_s": r["wall_s"],
                         "train_s": r["train_s"], "eval_s": r["eval_s"], "other_s": r["other_s"]})
        log(f"  wall {r['wall_s']:.1f} s (train {r['train_s']:.1f}, eval {r['eval_s']:.1f})")
    return {"cells": measured, "prep_s": prep_s, "epochs": epochs}


def naive_estimate(suite, measured: dict | None, is_reference: bool) -> dict:
    """The whole grid's Trainer-per-cell wall: recorded, or scaled from the measured cells."""
    recorded_total, per_run, source = recorded_naive()
    n_cells = len(suite.grid.train_sizes) * len(suite.grid.strategies) * len(suite.grid.seeds) * \
        len(suite.grid.label_noise)
    if not measured or not measured["cells"]:
        if not is_reference:
            return {"source": "none: the recorded figure is for the SST-2 reference grid only",
                    "wall_s": None}
        return {"source": f"recorded ({source})", "wall_s": recorded_total}
    cells = measured["cells"]
    walls = {(c["size"], c["strategy"], c["seed"]): c["wall_s"] for c in cells}
    if is_reference and all(key in per_run for key in walls):
        factor = sum(walls.values()) / sum(per_run[key] for key in walls)
        return {"source": f"measured here: {len(cells)} cell(s), scaled by their ratio to the same cells' "
                          f"recorded walls ({factor:.3f}) x the recorded {recorded_total:.1f} s",
                "wall_s": recorded_total * factor, "factor_vs_recorded": factor,
                "recorded_wall_s": recorded_total}
    # another grid: the mean of each (size, strategy) group measured, else of the same size, else of all
    all_mean = statistics.fmean(walls.values())
    estimate = 0.0
    for size in suite.grid.train_sizes:
        same_size = [w for (s, _, _), w in walls.items() if s == size]
        for strategy in suite.grid.strategies:
            group = [w for (s, st, _), w in walls.items() if s == size and st == strategy]
            mean = statistics.fmean(group or same_size or [all_mean])
            estimate += mean * len(suite.grid.seeds) * len(suite.grid.label_noise)
    return {"source": f"measured here: {len(cells)} of {n_cells} cell(s), group means x the grid's cells",
            "wall_s": estimate}


# --------------------------------------------------------------------------- arithmetic
def model_parameters(model_path: str, n_labels: int) -> dict:
    """MiniLM's parameter counts: embeddings, each encoder layer, the rest (pooler, head)."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=n_labels)
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    base = model.base_model
    total = sum(p.numel() for p in model.parameters())
    embeddings = sum(p.numel() for p in base.embeddings.parameters())
    layers = [sum(p.numel() for p in layer.parameters()) for layer in base.encoder.layer]
    return {"total": total, "embeddings": embeddings, "layers": layers,
            "non_embedding": total - embeddings, "hidden": model.config.hidden_size,
            "intermediate": model.config.intermediate_size}


def grid_flops(suite) -> dict:
    """Tokens the grid trains and evaluates on, and the FLOP they need (formulas in ``formula``)."""
    from overfit_lab.data import load_task_data
    from overfit_lab.grid import build_grid
    from overfit_lab.models import load_tokenizer, resolve_model_path

    path = resolve_model_path(suite.model.name)
    tokenizer = load_tokenizer(path)
    data = load_task_data(suite)
    params = model_parameters(path, data.n_classes)
    n = params["non_embedding"]

    def tokens(texts) -> int:
        return sum(len(ids) for ids in tokenizer(list(texts), truncation=True,
                                                 max_length=suite.model.max_length)["input_ids"])

    validation, test = tokens(data.validation["text"]), tokens(data.test["text"])
    train_tokens = {}
    trained = evaluated = nominal = needed_train = 0.0
    for cell in build_grid(suite):
        if cell.train_size not in train_tokens:
            rows = data.training_subset(cell.train_size, sizes=suite.grid.train_sizes, seed=suite.data.seed)
            train_tokens[cell.train_size] = tokens(rows["text"])
        t, e = train_tokens[cell.train_size], cell.epochs
        trained += t * e
        evaluated += e * (t + validation) + len(cell.record_epochs) * test
        nominal += 6 * n * t * e
        freeze = cell.strategy_spec.freeze
        frozen_layers = freeze.layers if freeze is not None else 0
        n_frozen = sum(params["layers"][:frozen_layers])
        # frozen layers: one forward pass, cached (2 N_f T); the rest forward + backward every epoch
        needed_train += 2 * n_frozen * t + 6 * (n - n_frozen) * t * e if frozen_layers else 6 * n * t * e
    flops = {"train_nominal": nominal, "train_needed": needed_train, "eval": 2 * n * evaluated}
    return {
        "parameters": params, "n_used": n, "train_tokens_per_size": train_tokens,
        "validation_tokens": validation, "test_tokens": test,
        "trained_tokens": trained, "evaluated_tokens": evaluated, "flop": flops,
        "needed_flop": flops["train_needed"] + flops["eval"],
        "formula": (f"N = {n:,} non-embedding parameters (of {params['total']:,}; embedding lookups "
                    f"are no matmul), i.e. {6 * n / 1e6:.1f} MFLOP per trained and {2 * n / 1e6:.1f} MFLOP "
                    "per evaluated token; training 6 N per token x epochs (nominal: every cell); "
                    "needed: a frozen cell's frozen layers once, forward only (2 N_frozen per token, "
                    "cached), the rest 6 (N - N_frozen) per token x epochs; evaluation 2 N per token "
                    "of the training subset and validation every epoch and of the test split at each "
                    "recorded epoch; real tokens (special tokens in, padding and attention's "
                    "~L/(3 d) extra left out), diagnostics not counted"),
    }


def matmul_rate(threads: int, seconds: float = 0.6) -> dict:
    """GFLOP/s of float32 matmuls of MiniLM's shapes (1024 tokens) at ``threads`` torch threads."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    shapes = {"1024x384@384x1536": (1024, 384, 1536), "1024x1536@1536x384": (1024, 1536, 384),
              "1024x384@384x384": (1024, 384, 384)}
    rates = {}
    try:
        for name, (m, k, n) in shapes.items():
            a, b = torch.randn(m, k), torch.randn(k, n)
            for _ in range(3):
                a @ b
            reps, started = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - started) < seconds:
                a @ b
                reps += 1
            rates[name] = 2 * m * k * n * reps / elapsed / 1e9
    finally:
        torch.set_num_threads(before)
    return {"threads": threads, "gflops": rates, "mean_gflops": statistics.fmean(rates.values())}


def import_cost() -> float | None:
    """Seconds a fresh Python process takes to import the training code (a worker pays it)."""
    code = "import time; t = time.perf_counter(); import overfit_lab.training; print(time.perf_counter() - t)"
    try:
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                             timeout=120, check=True)
        return float(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):
        return None


# --------------------------------------------------------------------------- report
def markdown(figures: dict) -> str:
    L = []
    suite = figures["suite"]
    L.append(f"# Grid benchmark: {suite['name']} ({suite['cells']} cells)\n")
    L.append(f"- machine: {figures['machine']['cores']} cores, torch {figures['machine']['torch']}, "
             f"transformers {figures['machine']['transformers']}, device {figures['device']}; "
             f"{figures['started_at']}")
    L.append(f"- run order: {', '.join(figures['order'])} x {figures['repeats']} (each run alone)")
    if suite.get("per_epoch_only"):
        L.append("- every diagnostic off (--per-epoch-only): per-epoch metrics alone, as Trainer-per-cell")
    naive = figures["naive"]
    L.append(f"- plain Trainer-per-cell: {fnum(naive['wall_s'])} s for the whole grid: {naive['source']}")
    if figures.get("import_cost_s") is not None:
        L.append(f"- a fresh process imports the training code in {figures['import_cost_s']:.1f} s (every "
                 "worker pays it; the in-process sequential run does not, this process already did)")
    L.append("")
    L.append("| layout | run | wall s | cells/min | × vs naive | × vs sequential | train s | eval s | "
             "diagnostics s | cell other s | outside cells s | frozen cache share | other processes |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in figures["runs"]:
        b = r["breakdown"]
        slot = b["slot_s"]

        def part(x, slot=slot):
            return f"{fnum(x)} ({x / slot:.0%})" if slot else fnum(x)

        share = "–" if b["frozen_cache_share"] is None else f"{b['frozen_cache_share']:.1%}"
        L.append(f"| {r['layout']} | {r['repeat']} | {fnum(r['wall_s'])} | {fnum(b['cells_per_min'], 2)} | "
                 f"{fnum(r.get('speedup_vs_naive'), 2)} | {fnum(r.get('speedup_vs_sequential'), 2)} | "
                 f"{part(b['train_s'])} | {part(b['eval_s'])} | {part(b['diagnostics_s'])} | "
                 f"{part(b['cell_other_s'])} | {part(b['outside_cells_s'])} | {share} | "
                 f"{fnum(r['other_processes_cores'], 2)} cores |")
    for r in figures["runs"]:
        if r["breakdown"].get("diagnostic_s"):
            L.append(f"\n{r['layout']} #{r['repeat']}, diagnostics by name (cell seconds): " + ", ".join(
                f"{name} {fnum(s)}" for name, s in sorted(r["breakdown"]["diagnostic_s"].items(),
                                                          key=lambda kv: -kv[1])))
    L.append("")
    L.append("× = wall of plain Trainer-per-cell (or of the sequential run) / this run's wall: above 1 is "
             "faster. Parts are seconds of worker slots (wall × workers; % of it): the cells' own "
             "train / eval / diagnostics seconds, the rest of each cell (model load, data preparation "
             "in a process's first cell, Trainer setup), and the slot time outside any cell (process "
             "start and imports, idle slots at the end, the report). Other processes: the machine's "
             "busy CPU seconds during the run less this benchmark's, per second of wall: above ~0.1 "
             "core, something else ran and the run's wall time is not clean.")
    busy = [r for r in figures["runs"] if (r["other_processes_cores"] or 0) > 0.1]
    if busy:
        L.append("\n**Warning: other processes ran during** " + ", ".join(
            f"{r['layout']} #{r['repeat']} ({r['other_processes_cores']:.2f} cores)" for r in busy)
            + ": measure again on an idle machine.")
    prints = {r["code_fingerprint"] for r in figures["runs"]} | {figures["code_fingerprint_at_start"]}
    if len(prints) > 1 or any(r["code_changed_during_run"] for r in figures["runs"]):
        L.append("\n**Warning: overfit_lab's sources changed during the benchmark** (fingerprints "
                 f"{', '.join(sorted(prints))}): the runs measured different code (an in-process run "
                 "uses the code this process imported at its start; workers import it anew).")
    if any(r["breakdown"]["failed_cells"] for r in figures["runs"]):
        L.append("\n**Some cells failed:** " + ", ".join(
            f"{r['layout']} #{r['repeat']}: {r['breakdown']['failed_cells']}" for r in figures["runs"]
            if r["breakdown"]["failed_cells"]))
    if figures["repeats"] > 1:
        L.append("\nMedian wall per layout: " + ", ".join(
            f"{layout} {fnum(w)} s" for layout, w in figures["median_wall_s"].items()))
    if naive.get("measured"):
        L.append("\nTrainer-per-cell cells measured here (naive_grid.run_grid_cell, "
                 f"{naive['measured']['epochs']} epochs, eval on train subset + validation + test "
                 "each epoch):\n")
        L.append("| size | strategy | seed | wall s | train s | eval s | other s |")
        L.append("|---:|---|---:|---:|---:|---:|---:|")
        for c in naive["measured"]["cells"]:
            L.append(f"| {c['size']} | {c['strategy']} | {c['seed']} | {fnum(c['wall_s'])} | "
                     f"{fnum(c['train_s'])} | {fnum(c['eval_s'])} | {fnum(c['other_s'])} |")

    ar = figures["arithmetic"]
    L.append("\n## Arithmetic limit\n")
    L.append(f"Formula: {ar['formula']}.\n")
    sizes = ", ".join(f"{s}: {t:,}" for s, t in ar["train_tokens_per_size"].items())
    L.append(f"- trained tokens {ar['trained_tokens']:,.0f}, evaluated tokens {ar['evaluated_tokens']:,.0f} "
             f"(training subsets per size: {sizes}; "
             f"validation {ar['validation_tokens']:,}, test {ar['test_tokens']:,})")
    fl = ar["flop"]
    L.append(f"- FLOP: training nominal {fl['train_nominal'] / 1e12:.2f} T, "
             f"needed {fl['train_needed'] / 1e12:.2f} T; evaluation {fl['eval'] / 1e12:.2f} T; "
             f"needed in all {ar['needed_flop'] / 1e12:.2f} TFLOP")
    for mm in figures["matmul"]:
        L.append(f"- measured float32 matmul, {mm['threads']} thread(s): "
                 + ", ".join(f"{k} {v:.1f}" for k, v in mm["gflops"].items())
                 + f" GFLOP/s (mean {mm['mean_gflops']:.1f})")
    L.append("")
    L.append("| layout | run | wall s | achieved GFLOP/s (needed FLOP / wall) | "
             "matmul GFLOP/s of the layout | share of it | arithmetic floor s |")
    L.append("|---|---:|---:|---:|---:|---:|---:|")
    for r in figures["runs"]:
        a = r["arithmetic"]
        L.append(f"| {r['layout']} | {r['repeat']} | {fnum(r['wall_s'])} | {fnum(a['achieved_gflops'], 2)} | "
                 f"{fnum(a['matmul_gflops'], 1)} | {a['share_of_matmul']:.1%} | {fnum(a['floor_s'])} |")
    L.append("\nThe layout's matmul rate: workers × the measured rate at its thread count (the nearest "
             "measured: 1 thread or all cores). Floor: the needed FLOP at that rate.")

    L.append("\n## Metrics: sequential vs each other run\n")
    L.append("| run | cells | compared values | identical | max abs diff | values in one run only | "
             "per metric (max abs diff) |")
    L.append("|---|---|---:|---:|---:|---:|---|")
    for c in figures["metric_checks"]:
        for kind in ("non_frozen", "frozen"):
            d = c[kind]
            per = ", ".join(f"{m} {v['max_abs_diff']:.3g}" for m, v in sorted(d["per_metric"].items()))
            L.append(f"| {c['run']} | {kind.replace('_', '-')} | {d['compared']} | {d['identical']} | "
                     f"{d['max_abs_diff']:.3g} | {d['only_in_one']} | {per} |")
    L.append("")
    L.append(figures["verdict"])
    return "\n".join(L) + "\n"


def layout_matmul(layout: str, matmul: list[dict]) -> float:
    workers, threads = workers_threads(layout)
    nearest = min(matmul, key=lambda mm: abs(mm["threads"] - threads))
    return workers * nearest["mean_gflops"]


# --------------------------------------------------------------------------- main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    n_cores = cores()
    default_layouts = f"1x{n_cores}" + (f",{n_cores}x1" if n_cores > 1 else "")
    if n_cores >= 4:
        default_layouts += f",{n_cores // 2}x2"
    parser.add_argument("--suite", default=str(ROOT / "benchmarks" / "sst2_reference.toml"))
    parser.add_argument("--layouts", default=default_layouts,
                        help=f"run order, WORKERSxTHREADS and 'naive' (default {default_layouts})")
    parser.add_argument("--repeats", type=int, default=1, help="run the whole order this many times")
    parser.add_argument("--naive-subset", type=int, default=0, metavar="K",
                        help="measure K cells of plain Trainer-per-cell here and scale them to the grid")
    parser.add_argument("--smoke", action="store_true", help="a tiny built-in suite instead of --suite")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--per-epoch-only", action="store_true",
                        help="every diagnostic off: per-epoch metrics alone, as Trainer-per-cell records")
    parser.add_argument("--json", default=None, help="figures' file (default reports/bench-grid-<time>.json)")
    args = parser.parse_args()
    if args.repeats < 1 or args.naive_subset < 0:
        parser.error("--repeats must be at least 1 and --naive-subset at least 0")
    order = parse_layouts(args.layouts, n_cores, naive=args.naive_subset > 0)

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    bench_dir = ROOT / "reports" / f"bench-grid-{stamp}"
    json_path = Path(args.json) if args.json else ROOT / "reports" / f"bench-grid-{stamp}.json"
    suite_path, suite = prepare_suite(args, bench_dir)
    bench_dir.mkdir(parents=True, exist_ok=True)
    if args.per_epoch_only:
        suite = per_epoch_only(suite)
        suite_path = suite  # run_suite takes the Suite itself

    import pandas as pd
    import torch
    import transformers

    from overfit_lab.grid import build_grid

    is_reference = (not args.smoke and suite.grid.train_sizes == [100, 1000] and suite.grid.seeds == [0, 1]
                    and suite.grid.strategies == ["baseline", "regularized", "freeze4"]
                    and max(suite.grid.epochs) == 5 and "sst2" in str(suite.data.train or ""))
    n_cells = len(build_grid(suite))
    log(f"suite {suite.name}: {n_cells} cells; order {', '.join(order)} x {args.repeats}; "
        f"runs in {bench_dir}")

    code_at_start = code_fingerprint()
    log("arithmetic: tokens, parameters, matmul rates")
    arithmetic = grid_flops(suite)
    matmul = [matmul_rate(t) for t in sorted({1, n_cores})]
    imports = import_cost()

    runs, naive_measured = [], None
    for repeat in range(1, args.repeats + 1):
        for layout in order:
            if layout == "naive":
                if naive_measured is None:  # once: its cells are scaled, not interleaved
                    clear_caches()
                    naive_measured = run_naive(suite, args.naive_subset, bench_dir / "naive-scratch")
                continue
            runs.append({**run_layout(suite_path, layout, bench_dir / f"{layout}-r{repeat}", args.device),
                         "repeat": repeat})

    naive = naive_estimate(suite, naive_measured, is_reference)
    naive["measured"] = naive_measured
    sequential = next(r for r in runs if r["workers"] == 1)
    seq_walls = [r["wall_s"] for r in runs if r["layout"] == sequential["layout"]]
    checks = []
    for r in runs:
        r["breakdown"] = breakdown(r)
        r["speedup_vs_naive"] = naive["wall_s"] / r["wall_s"] if naive["wall_s"] else None
        r["speedup_vs_sequential"] = statistics.median(seq_walls) / r["wall_s"]
        rate = layout_matmul(r["layout"], matmul)
        achieved = arithmetic["needed_flop"] / r["wall_s"] / 1e9
        r["arithmetic"] = {"achieved_gflops": achieved, "matmul_gflops": rate,
                           "share_of_matmul": achieved / rate,
                           "floor_s": arithmetic["needed_flop"] / rate / 1e9}
        if r is not sequential:
            kind = "same_threads" if r["threads"] == sequential["threads"] else "other_threads"
            c = {"run": f"{r['layout']} #{r['repeat']} vs {sequential['layout']} #{sequential['repeat']}",
                 "threads": kind, "tolerance": TOLERANCE[kind], **compare_metrics(sequential, r)}
            nf = c["non_frozen"]
            c["worst"] = math.inf if nf["only_in_one"] else nf["max_abs_diff"]
            c["passed"] = c["worst"] <= c["tolerance"]
            checks.append(c)
    failed = [c for c in checks if not c["passed"]]
    if not checks:
        verdict = "No other run to compare the sequential run's metrics with."
    elif all(c["worst"] == 0 for c in checks):
        verdict = "Non-frozen cells' per-epoch metrics: **identical** (max abs diff 0) in every run."
    else:
        verdict = "Non-frozen cells' per-epoch metrics: " + "; ".join(
            f"{c['run']}: max abs diff {c['worst']:.3g} "
            + ("(identical)" if c["worst"] == 0 else
               f"({'within' if c['passed'] else 'over'} the {c['tolerance']:g} allowed "
               + ("with as many threads per cell" if c["threads"] == "same_threads"
                  else "across thread counts: float rounding grown by training") + ")")
            for c in checks) + (": **FAILED**." if failed else ".")

    figures = {
        "started_at": stamp, "suite": {"name": suite.name, "path": args.suite if not args.smoke else "smoke",
                                        "cells": n_cells, "reference_grid": is_reference,
                                        "per_epoch_only": args.per_epoch_only},
        "device": args.device, "order": order, "repeats": args.repeats, "bench_dir": str(bench_dir),
        "machine": {"cores": n_cores, "torch": torch.__version__, "transformers": transformers.__version__,
                    "python": platform.python_version(), "platform": platform.platform()},
        "import_cost_s": imports, "code_fingerprint_at_start": code_at_start, "naive": naive,
        "matmul": matmul,
        "arithmetic": arithmetic, "metric_checks": checks, "verdict": verdict,
        "max_non_frozen_abs_diff": max((c["worst"] for c in checks), default=0.0), "tolerance": TOLERANCE,
        "median_wall_s": {layout: statistics.median(r["wall_s"] for r in runs if r["layout"] == layout)
                          for layout in dict.fromkeys(r["layout"] for r in runs)},
        "runs": [{k: v for k, v in r.items() if not isinstance(v, pd.DataFrame)} for r in runs],
    }
    text = markdown(figures)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(figures, indent=1, default=str), encoding="utf-8")
    json_path.with_suffix(".md").write_text(text, encoding="utf-8")
    print(text)
    print(f"figures: {json_path} (and {json_path.with_suffix('.md').name}); runs: {bench_dir}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

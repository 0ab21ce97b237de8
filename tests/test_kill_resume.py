"""Kill-and-resume torture test (issue 13): a tiny grid is killed with SIGKILL at random moments
ten times, started or resumed after each kill, and must end as an uninterrupted run does: every
cell once, the database intact, the metrics and diagnostics bit-identical. Run in this process
and with a pool of two workers, whose processes must die with the driver."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import tiny_suite_toml

from overfit_lab import load_run

KILLS = 10


def _suite(tmp_path: Path, model: Path, data: Path) -> Path:
    text = tiny_suite_toml(model, data).replace("train_sizes = [40]", "train_sizes = [30, 60]")
    text = text.replace("epochs = [1]", "epochs = [2]").replace("seeds = [0]", "seeds = [0, 1]")
    text = text.replace('strategies = ["baseline"]', 'strategies = ["baseline", "weight_decay"]')
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return path


def _command(suite: Path, run_dir: Path, flags: list[str]) -> list[str]:
    base = [sys.executable, "-m", "overfit_lab", "run", "--quiet", *flags]
    if (run_dir / "run.sqlite").exists():
        return [*base, "--resume", str(run_dir)]
    # a start cut short leaves no run directory (at most a hidden staging one beside it)
    assert not run_dir.exists(), f"{run_dir} exists without a run: a start was not atomic"
    return [*base, str(suite), "--output", str(run_dir)]


def _finished(run_dir: Path) -> int:
    if not (run_dir / "run.sqlite").exists():
        return -1
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        return db.execute("SELECT COUNT(*) FROM cells WHERE status = 'finished'").fetchone()[0]


def _stored(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    run = load_run(run_dir)
    metrics = run.metrics.sort_values(["cell_id", "epoch", "split", "metric"]).reset_index(drop=True)
    diagnostics = run.diagnostics.sort_values(
        ["cell_id", "checkpoint", "metric", "group", "op", "severity", "layer", "bin_low", "fpr"],
        na_position="first").reset_index(drop=True)
    return metrics, diagnostics


def _children(pid: int) -> set[int]:
    """The processes ``pid`` started (Linux ``/proc``)."""
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found.update(int(c) for c in (task / "children").read_text().split())
    return found


def _wait_for_stage(child: subprocess.Popen, run_dir: Path, stored: int, *, delay_s: float,
                    timeout: float = 600.0) -> None:
    """Return ``delay_s`` after ``run_dir`` holds ``stored`` finished cells (-1: at once); raise
    ``subprocess.TimeoutExpired`` then, unless ``child`` ended first (then return)."""
    deadline = time.monotonic() + timeout
    while _finished(run_dir) < stored:
        if child.poll() is not None:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{run_dir} never held {stored} finished cells")
        time.sleep(0.02)
    child.wait(timeout=delay_s)  # raises TimeoutExpired while it runs


def _gone(pids: set[int], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() for pid in pids):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("flags", [[], ["--workers", "2", "--threads", "1"]], ids=["in-process", "pool"])
def test_sigkill_ten_times_then_resume_matches_an_uninterrupted_run(tiny_model, tiny_csv, tmp_path, flags):
    suite = _suite(tmp_path, tiny_model, tiny_csv)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    reference = tmp_path / "reference"
    started = time.perf_counter()
    subprocess.run(_command(suite, reference, flags), env=env, check=True, timeout=600)
    n_cells = len(load_run(reference).cells)
    gap_s = (time.perf_counter() - started) / (n_cells + 1)  # between two commits, on average

    # each kill aims at a stage: the start-up (before run.sqlite exists, or before any cell is
    # stored) or a random moment after the j-th commit, up to the report after the last one.
    # Aiming by the store, not by the clock, keeps the stages apart on a fast or a slow machine,
    # and with a pool, whose cells overlap.
    # Kills count over as many tortured runs as it takes: one that finishes between two kills
    # is checked, and the next kill lands in a fresh run.
    rng, kills, stored_after_kill, runs = random.Random(13), 0, [], []
    (tmp_path / "reports").mkdir()
    run_dir = tmp_path / "reports" / "tortured-0"
    while kills < KILLS:
        child = subprocess.Popen(_command(suite, run_dir, flags), env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        # a fresh run anywhere; a resumed one once it stored one more cell at least (killing every
        # resume in its start-up would never advance the grid), one with every cell stored not
        # at all; n_cells: after the last commit, in the report
        stored = _finished(run_dir)
        try:
            if stored < n_cells:
                target = rng.randint(-1, n_cells) if stored < 0 else rng.randint(stored + 1, n_cells)
                _wait_for_stage(child, run_dir, target, delay_s=rng.uniform(0.0, gap_s))
            child.wait(timeout=600)
        except subprocess.TimeoutExpired:
            workers = _children(child.pid)
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=60)
            assert _gone(workers), "a worker outlived its killed driver"
            kills += 1
            stored_after_kill.append(_finished(run_dir))
            continue
        assert child.returncode == 0
        runs.append(run_dir)
        run_dir = tmp_path / "reports" / f"tortured-{len(runs)}"
    subprocess.run(_command(suite, run_dir, flags), env=env, check=True, timeout=600)
    runs.append(run_dir)

    expected = load_run(reference).cells
    for run_dir in runs:
        with sqlite3.connect(run_dir / "run.sqlite") as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        cells = load_run(run_dir).cells
        assert sorted(cells["cell_id"]) == sorted(expected["cell_id"]) and cells["cell_id"].is_unique
        assert (cells["status"] == "finished").all()
        for tortured, clean in zip(_stored(run_dir), _stored(reference), strict=True):
            pd.testing.assert_frame_equal(tortured, clean, check_exact=True)
    # the kills fell at different stages: the grid advanced between them
    assert len(set(stored_after_kill)) >= 3, stored_after_kill

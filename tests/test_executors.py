"""The local executors: a spawned pool gives the store the in-process executor gives, a worker that
dies leaves its cell retried or failed (never lost or doubled), Ctrl-C stops the workers, any
executor resumes any run, and the execution settings are checked before anything is created."""

from __future__ import annotations

import multiprocessing
import os
import signal

import pandas as pd
import pytest
from conftest import tiny_suite_dict
from typer.testing import CliRunner

from overfit_lab import load_run, run_suite
from overfit_lab.cli import app
from overfit_lab.errors import OverfitLabError
from overfit_lab.execution import default_layout, describe_exit, resolve_execution
from overfit_lab.progress import RunObserver
from overfit_lab.runner import open_store, run_grid
from overfit_lab.suite import ExecutionSpec, validate_suite

POOL = {"workers": 2, "threads": 1}
IN_PROCESS = {"workers": 1, "threads": 1}


def _suite(tiny_model, tiny_csv, **grid):
    grid = {"train_sizes": [40], "epochs": [2], "strategies": ["baseline"], "seeds": [0, 1, 2], **grid}
    return validate_suite(tiny_suite_dict(tiny_model, tiny_csv, **grid))


def _metrics(run_dir) -> pd.DataFrame:
    frame = load_run(run_dir).metrics
    return frame.sort_values(list(frame.columns.drop("value"))).reset_index(drop=True)


def _ids(run_dir) -> list[str]:
    return sorted(load_run(run_dir).cells["cell_id"])


def test_a_pool_of_workers_stores_what_the_in_process_executor_stores(tiny_model, tiny_csv, tmp_path):
    suite = _suite(tiny_model, tiny_csv, strategies=["baseline", "freeze1"], seeds=[0, 1])
    run_suite(suite, output=tmp_path / "pool", quiet=True, execution=POOL)
    run_suite(suite, output=tmp_path / "one", quiet=True, execution=IN_PROCESS)
    assert _ids(tmp_path / "pool") == _ids(tmp_path / "one") and len(_ids(tmp_path / "one")) == 4
    pd.testing.assert_frame_equal(_metrics(tmp_path / "pool"), _metrics(tmp_path / "one"), check_exact=True)
    info = load_run(tmp_path / "pool").cells
    assert (info["status"] == "finished").all()


class _KillWorkers(RunObserver):
    """Kills every worker process once, when ``victim`` has finished its first epoch."""

    def __init__(self, victim: str) -> None:
        self.victim, self.killed, self.started = victim, [], []
        self.running, self.hit = set(), set()

    def cell_started(self, cell) -> None:
        self.started.append(cell.cell_id)
        self.running.add(cell.cell_id)

    def cell_finished(self, cell, result) -> None:
        self.running.discard(cell.cell_id)

    def epoch_done(self, cell, epoch: int) -> None:
        if cell.cell_id == self.victim and not self.killed:
            self.hit = set(self.running)
            for child in multiprocessing.active_children():
                if child.name.startswith("overfit-lab-worker"):
                    os.kill(child.pid, signal.SIGKILL)
                    self.killed.append(child.pid)


@pytest.mark.parametrize("retries", [1, 0])
def test_a_worker_killed_mid_cell_is_retried_or_its_cell_stored_failed(tiny_model, tiny_csv, tmp_path,
                                                                      retries):
    suite = _suite(tiny_model, tiny_csv)
    victim = "n40-baseline-s0"
    observer = _KillWorkers(victim)
    store = open_store(suite, output=tmp_path / "run")
    try:
        run_grid(store, observer, execution={**POOL, "retries": retries})
    finally:
        store.close()
    assert len(observer.killed) == 2 and victim in observer.hit  # both workers, mid-cell
    cells = load_run(tmp_path / "run").cells.set_index("cell_id")
    assert sorted(cells.index) == sorted(set(observer.started))  # none lost, none doubled
    assert len(cells) == 3
    killed_cells, spared = cells.loc[sorted(observer.hit)], cells.drop(index=sorted(observer.hit))
    assert (spared["status"] == "finished").all()
    if retries:
        assert (cells["status"] == "finished").all()
        assert observer.started.count(victim) == 2
    else:
        assert (killed_cells["status"] == "failed").all()
        assert killed_cells["reason"].str.contains("worker process died once: killed by SIGKILL").all()
        again = run_suite(resume=tmp_path / "run", quiet=True, execution=IN_PROCESS)  # the failed ones
        assert (again.cells["status"] == "finished").all() and len(again.cells) == 3


class _Interrupt(RunObserver):
    def __init__(self) -> None:
        self.finished = 0

    def cell_finished(self, cell, result) -> None:
        self.finished += 1
        if self.finished == 1:
            raise KeyboardInterrupt


def test_ctrl_c_stops_the_workers_and_keeps_finished_cells(tiny_model, tiny_csv, tmp_path):
    suite = _suite(tiny_model, tiny_csv, seeds=[0, 1, 2, 3])
    store = open_store(suite, output=tmp_path / "run")
    try:
        with pytest.raises(KeyboardInterrupt):
            run_grid(store, _Interrupt(), execution=POOL)
    finally:
        store.close()
    assert not [c for c in multiprocessing.active_children() if c.name.startswith("overfit-lab-worker")]
    assert len(load_run(tmp_path / "run").cells) == 1
    # resumed in this process: the other three run once each, and the store equals a straight run
    run_suite(resume=tmp_path / "run", quiet=True, execution=IN_PROCESS)
    run_suite(suite, output=tmp_path / "straight", quiet=True, execution=IN_PROCESS)
    assert _ids(tmp_path / "run") == _ids(tmp_path / "straight")
    pd.testing.assert_frame_equal(_metrics(tmp_path / "run"), _metrics(tmp_path / "straight"),
                                  check_exact=True)


def test_defaults_share_the_cores_out(monkeypatch):
    import overfit_lab.execution._base as base

    assert default_layout(2, 24.0) == (2, 1) and default_layout(1, 24.0) == (1, 1)
    assert default_layout(16, 9.0) == (4, 1)  # as many as fit at 2 GiB
    monkeypatch.setattr(base, "cpu_count", lambda: 8)
    monkeypatch.setattr(base, "physical_memory_gib", lambda: 64.0)
    assert (resolve_execution(ExecutionSpec()).workers, resolve_execution(ExecutionSpec()).threads) == (8, 1)
    few = resolve_execution(ExecutionSpec(), cells=3)  # no idle workers: more threads each
    assert (few.workers, few.threads) == (3, 2)
    assert resolve_execution(ExecutionSpec(workers=4)).threads == 2
    assert resolve_execution(ExecutionSpec(threads=1)).workers == 8
    chosen = resolve_execution(ExecutionSpec(workers=3, threads=3))
    assert (chosen.workers, chosen.threads, chosen.device) == (3, 3, "cpu")
    assert "3 cells at a time x 3 threads" in chosen.describe()


def test_cuda_without_a_device_is_refused_before_anything_is_created(tiny_model, tiny_csv, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    suite = _suite(tiny_model, tiny_csv)
    with pytest.raises(OverfitLabError, match="execution.device"):
        resolve_execution(ExecutionSpec(device="cuda"))
    (tmp_path / "s.json").write_text("")
    result = CliRunner().invoke(app, ["run", str(tmp_path / "missing.toml"), "--device", "cuda"])
    assert result.exit_code == 2
    with pytest.raises(OverfitLabError, match="execution.device"):
        run_suite(suite, output=tmp_path / "run", quiet=True, execution={"device": "cuda"})
    assert not (tmp_path / "run").exists()


def test_bad_execution_flags_give_one_line_and_exit_2(tiny_model, tiny_csv, tmp_path):
    from conftest import tiny_suite_toml

    path = tmp_path / "suite.toml"
    path.write_text(tiny_suite_toml(tiny_model, tiny_csv))
    for flags, key in ((["--executor", "spark"], "--executor"), (["--device", "tpu"], "--device"),
                       (["--workers", "0"], "--workers")):
        result = CliRunner().invoke(app, ["run", str(path), "--output", str(tmp_path / "run"), *flags])
        assert result.exit_code == 2, result.output
        assert key in result.output and "Traceback" not in result.output
        assert not (tmp_path / "run").exists()


def test_describe_exit_names_the_signal():
    assert describe_exit(-9).startswith("killed by SIGKILL (the kernel's out-of-memory killer")
    assert describe_exit(3) == "exited with status 3"


def test_the_resolved_device_reaches_the_recipe_and_not_the_cell_ids(tiny_model, tiny_csv, tmp_path):
    from overfit_lab.execution import Execution, effective_suite
    from overfit_lab.grid import build_grid
    from overfit_lab.strategies import training_arguments

    raw = tiny_suite_dict(tiny_model, tiny_csv)
    raw["recipe"].pop("use_cpu")
    suite = validate_suite(raw)
    ids = [c.cell_id for c in build_grid(suite)]
    for device in ("cpu", "cuda"):
        chosen = Execution(executor="local", workers=1, threads=1, device=device, address=None, retries=1,
                           gpus=0)
        cells = build_grid(effective_suite(suite, chosen))
        assert [c.cell_id for c in cells] == ids
        args = training_arguments(cells[0].suite, cells[0].strategy_spec, seed=0, epochs=1,
                                  output_dir=str(tmp_path))
        assert args.use_cpu is (device == "cpu")


def test_the_progress_display_shows_every_running_cell_and_a_restart_once():
    from rich.console import Console

    from overfit_lab.report.console import GridProgress

    display = GridProgress(Console(file=open(os.devnull, "w")), total_cells=2, done_cells=0,  # noqa: SIM115
                           total_work=10.0)
    with display:
        display.start_cell("a", 2, 2.0)
        display.start_cell("b", 3, 2.0)
        rows = lambda: sorted(t.description for t in display.progress.tasks if t.id != display.grid)  # noqa: E731
        assert rows() == ["[bold]a[/]", "[bold]b[/]"]
        display.epoch_done("a", 1)
        display.start_cell("a", 2, 2.0)  # its worker died: one row again, its epoch counted twice
        assert rows() == ["[bold]a[/]", "[bold]b[/]"] and display.total_work == 12.0
        display.finish_cell("a", "finished", 1.0)
        assert rows() == ["[bold]b[/]"]


def test_a_script_without_a_main_guard_is_told_and_starts_nothing_in_its_workers(tiny_model, tiny_csv,
                                                                                  tmp_path):
    """Spawned workers import the calling script: one that starts a run at import time (no
    ``if __name__ == "__main__":``) must not start runs in its workers, nor fail every cell with
    "exited with status 1": the run stops with one line saying what to do, and nothing is stored."""
    import json
    import subprocess
    import sys

    suite = _suite(tiny_model, tiny_csv)
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from overfit_lab import run_suite\n"
        "from overfit_lab.suite import validate_suite\n"
        f"suite = validate_suite({json.loads(suite.to_json())!r})\n"
        f"run_suite(suite, output={str(tmp_path)!r} + '/run-' + __name__, quiet=True, "
        f"execution={POOL!r})\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert done.returncode != 0
    told = 'so no cell ran. Fix: a Python script that starts a run must do so under if __name__ == "__main__"'
    assert told in done.stderr, done.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.glob("run-*")) == ["run-__main__"]  # none by the workers
    assert load_run(tmp_path / "run-__main__").cells.empty  # no cell stored failed: resume runs them all

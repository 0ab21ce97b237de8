"""The Ray executor on a local 2-CPU Ray: the same store as a local run, a worker killed mid-cell,
Ctrl-C and a local resume, an unreachable address."""

from __future__ import annotations

import logging
import signal
import threading
import time
from contextlib import contextmanager

import pandas as pd
import psutil
import pytest
from conftest import tiny_suite_dict

import overfit_lab.runner as runner_module
import overfit_lab.training as training_module
from overfit_lab import OverfitLabError, load_run, run_suite
from overfit_lab.suite import validate_suite

ray = pytest.importorskip("ray")

RAY = {"executor": "ray", "threads": 1}
TASK_TITLE = "ray::overfit-lab:"  # a Ray worker's process title while it runs a cell's task


@pytest.fixture(scope="module")
def ray_cluster():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")  # no phoning home from the test's Ray
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024**2,
                 logging_level=logging.WARNING, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def suite(tiny_model, tiny_csv):
    """4 cells (2 strategies x 2 seeds), epochs 1 and 2 from one run."""
    return validate_suite(tiny_suite_dict(tiny_model, tiny_csv, train_sizes=[40], epochs=[1, 2]))


@pytest.fixture(scope="module")
def reference(suite, tmp_path_factory):
    """The suite run in this process, one cell after another."""
    return run_suite(suite, output=tmp_path_factory.mktemp("local") / "run", quiet=True,
                     execution={"workers": 1, "threads": 1})


def stored(run) -> tuple[pd.DataFrame, ...]:
    """A run's cells, metrics and diagnostics, sorted, without timings and execution facts."""
    cells = run.cells[["cell_id", "train_size", "strategy", "seed", "epochs", "status"]]
    metrics = run.metrics.sort_values(["cell_id", "epoch", "split", "metric"])
    diagnostics = run.diagnostics.sort_values(
        ["cell_id", "checkpoint", "metric", "group", "op", "severity", "layer", "bin_low", "fpr"],
        na_position="first")
    return tuple(frame.sort_values("cell_id", kind="stable").reset_index(drop=True)
                 for frame in (cells, metrics, diagnostics))


def assert_same_results(run, reference) -> None:
    for ours, theirs in zip(stored(run), stored(reference), strict=True):
        pd.testing.assert_frame_equal(ours, theirs, check_exact=True)


def cell_tasks() -> list[psutil.Process]:
    """This test's Ray workers running a cell now (only our Ray's: its processes are our children)."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.cmdline()[:1] and proc.cmdline()[0].startswith(TASK_TITLE):
                found.append(proc)
        except psutil.Error:
            pass
    return found


@contextmanager
def kill_one_cell():
    """SIGKILL the first Ray worker seen running a cell; yields the list its cell id goes into."""
    killed: list[str] = []
    stop = threading.Event()

    def hunt() -> None:
        while not stop.is_set():
            for proc in cell_tasks():
                try:
                    title = proc.cmdline()[0]
                    proc.send_signal(signal.SIGKILL)
                except psutil.Error:
                    continue
                killed.append(title.removeprefix(TASK_TITLE))
                return
            stop.wait(0.05)

    thread = threading.Thread(target=hunt, daemon=True)
    thread.start()
    try:
        yield killed
    finally:
        stop.set()
        thread.join()


def test_ray_run_stores_what_a_local_run_does(ray_cluster, suite, reference, tmp_path):
    run = run_suite(suite, output=tmp_path / "run", quiet=True, execution=RAY)
    assert_same_results(run, reference)  # bit for bit: one torch thread each, same seeds
    assert run.cells["execution"].str.startswith("ray (local)").all()


def test_ctrl_c_cancels_the_tasks_and_a_local_resume_does_the_rest(ray_cluster, suite, reference,
                                                                    tmp_path, monkeypatch):
    real_commit = runner_module.commit_cell

    def commit_then_interrupt(store, result):
        real_commit(store, result)
        raise KeyboardInterrupt  # Ctrl-C in the driver, right after the first cell is stored

    monkeypatch.setattr(runner_module, "commit_cell", commit_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, output=tmp_path / "run", quiet=True, execution=RAY)
    monkeypatch.undo()
    done = set(load_run(tmp_path / "run").cells["cell_id"])
    assert len(done) == 1
    deadline = time.monotonic() + 20
    while cell_tasks() and time.monotonic() < deadline:  # force-cancelled: their workers are killed
        time.sleep(0.2)
    assert not cell_tasks()

    calls: list[str] = []
    real_run_cell = training_module.run_cell

    def counted(cell, **kwargs):
        calls.append(cell.cell_id)
        return real_run_cell(cell, **kwargs)

    monkeypatch.setattr(training_module, "run_cell", counted)
    run = run_suite(resume=tmp_path / "run", quiet=True, execution={"workers": 1, "threads": 1})
    assert sorted(calls) == sorted(set(reference.cells["cell_id"]) - done)  # nothing redone
    assert_same_results(run, reference)


def test_a_killed_worker_is_retried(ray_cluster, suite, reference, tmp_path):
    with kill_one_cell() as killed:
        run = run_suite(suite, output=tmp_path / "run", quiet=True, execution={**RAY, "retries": 1})
    assert len(killed) == 1
    assert_same_results(run, reference)  # every cell once, the retried one as if never killed
    attempts = run.cells.set_index("cell_id")["attempts"]
    assert attempts[killed[0]] == 2 and attempts.drop(killed[0]).isna().all()


def test_a_worker_killed_without_retries_fails_its_cell_only(ray_cluster, suite, reference, tmp_path):
    with kill_one_cell() as killed:
        run = run_suite(suite, output=tmp_path / "run", quiet=True, execution={**RAY, "retries": 0})
    assert len(killed) == 1
    cells = run.cells.set_index("cell_id")
    assert sorted(cells.index) == sorted(reference.cells["cell_id"])  # each cell once
    assert cells.loc[killed[0], "status"] == "failed"
    assert "worker process died once" in cells.loc[killed[0], "reason"]
    assert (cells.drop(killed[0])["status"] == "finished").all()


def test_an_address_nobody_listens_on_is_one_line(suite, tmp_path, monkeypatch):
    import socket

    with socket.socket() as sock:  # a loopback port that is free, so nothing answers there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as in a fresh driver
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("ray.init was called"))
    with pytest.raises(OverfitLabError, match=f"--address: could not connect .* 127.0.0.1:{port}") as info:
        run_suite(suite, output=tmp_path / "run", quiet=True,
                  execution={**RAY, "address": f"127.0.0.1:{port}"})
    assert "\n" not in str(info.value)

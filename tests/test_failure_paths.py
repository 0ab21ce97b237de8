"""Issue 13.3-13.6: a bad model is refused before anything is created, a start that is cut short
leaves no half run directory, one process at a time works on a run directory, and a commit that
cannot be written stops the run with every earlier cell kept and resumable."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import tiny_suite_toml
from typer.testing import CliRunner

from overfit_lab import load_run, run_suite
from overfit_lab import training as runner_module  # where executors find run_cell
from overfit_lab.cli import app
from overfit_lab.errors import OverfitLabError
from overfit_lab.store import RunStore
from overfit_lab.suite import load_suite


def _suite_file(tmp_path: Path, model: Path, data: Path, *, extra: str = "", model_extra: str = "",
                strategies: str = '["baseline"]') -> Path:
    text = tiny_suite_toml(model, data, extra)
    text = text.replace('strategies = ["baseline"]', f"strategies = {strategies}")
    text = text.replace("max_length = 32\n", f"max_length = 32\n{model_extra}")
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return path


def _one_error_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert "Traceback" not in result.output
    return lines[0]


def _model_copy(tiny_model: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(tiny_model, target)
    return target


def _pickle_only(tiny_model: Path, tmp_path: Path) -> Path:
    import torch
    from safetensors.torch import load_file

    model = _model_copy(tiny_model, tmp_path, "pickled")
    torch.save(load_file(model / "model.safetensors"), model / "pytorch_model.bin")
    (model / "model.safetensors").unlink()
    return model


# ------------------------------------------------------------------ 13.3: the model, up front
def test_pickle_only_model_is_refused_in_one_unwrapped_line(tiny_model, tiny_csv, tmp_path):
    model = _pickle_only(tiny_model, tmp_path)
    suite = _suite_file(tmp_path, model, tiny_csv)
    out = tmp_path / "run"
    env = {**os.environ, "COLUMNS": "40", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "overfit_lab", "run", str(suite), "-o", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr  # one line even on a 40-column terminal
    assert f"no safetensors weights in {model}" in lines[0] and "model.allow_pickle = true" in lines[0]
    assert "pytorch_model.bin" in lines[0] and "save_pretrained" in lines[0]
    assert not out.exists() and "Traceback" not in done.stderr


def test_allow_pickle_loads_pickle_weights(tiny_model, tiny_csv, tmp_path):
    model = _pickle_only(tiny_model, tmp_path)
    suite = load_suite(_suite_file(tmp_path, model, tiny_csv, model_extra="allow_pickle = true\n"))
    run = run_suite(suite, output=tmp_path / "run", quiet=True)
    assert (run.cells["status"] == "finished").all(), run.cells["reason"].tolist()


def test_model_without_tokenizer_is_refused_up_front(tiny_model, tiny_csv, tmp_path):
    model = _model_copy(tiny_model, tmp_path, "no-tokenizer")
    for path in model.iterdir():
        if path.name not in ("config.json", "model.safetensors"):
            path.unlink()
    out = tmp_path / "run"
    suite = _suite_file(tmp_path, model, tiny_csv)
    result = CliRunner().invoke(app, ["run", str(suite), "-o", str(out), "-q"])
    line = _one_error_line(result)
    assert f"no tokenizer in {model}" in line and "model.name" in line
    assert not out.exists()


def test_unreadable_config_is_refused_up_front(tiny_model, tiny_csv, tmp_path):
    model = _model_copy(tiny_model, tmp_path, "bad-config")
    (model / "config.json").write_text("{ not json")
    out = tmp_path / "run"
    suite = _suite_file(tmp_path, model, tiny_csv)
    result = CliRunner().invoke(app, ["run", str(suite), "-o", str(out), "-q"])
    assert "config.json" in _one_error_line(result) and not out.exists()


def test_freeze_deeper_than_the_model_is_refused_up_front(tiny_model, tiny_csv, tmp_path):
    extra = "[strategies.deep]\nfreeze = { embeddings = true, layers = 3 }\n"
    suite = _suite_file(tmp_path, tiny_model, tiny_csv, extra=extra, strategies='["baseline", "deep"]')
    out = tmp_path / "run"
    line = _one_error_line(CliRunner().invoke(app, ["run", str(suite), "-o", str(out), "-q"]))
    assert "strategies.deep.freeze.layers" in line and "has 2" in line
    assert not out.exists()


def test_audit_refuses_a_pickle_only_model_before_scoring(tiny_model, tiny_csv, tmp_path):
    model = _pickle_only(tiny_model, tmp_path)
    out = tmp_path / "audit"
    result = CliRunner().invoke(app, ["audit", "--model", str(model), "--train", str(tiny_csv),
                                      "--test", str(tiny_csv), "-o", str(out), "-q"])
    line = _one_error_line(result)
    assert "--model" in line and "no safetensors weights" in line
    assert "AutoModelForSequenceClassification" in line  # the conversion keeps the fine-tuned head
    assert not out.exists()
    allowed = CliRunner().invoke(app, ["audit", "--model", str(model), "--train", str(tiny_csv),
                                       "--test", str(tiny_csv), "-o", str(out), "-q", "--allow-pickle",
                                       "--max-length", "32"])
    assert allowed.exit_code == 0, allowed.output
    assert list(load_run(out).cells["status"]) == ["finished"]


# ------------------------------------------------------------------ 13.4: the start, atomic
def test_a_start_cut_short_leaves_no_run_directory(tiny_model, tiny_csv, tmp_path, monkeypatch):
    """Interrupted while the run directory is being written (here: opening its database), the
    start leaves nothing that --resume would call "no run"; the next start works."""
    suite = load_suite(_suite_file(tmp_path, tiny_model, tiny_csv))
    out = tmp_path / "reports" / "run"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("overfit_lab.store.sqlite3.connect", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, output=out, quiet=True)
    assert not out.exists() and list(out.parent.iterdir()) == []
    monkeypatch.undo()
    assert len(run_suite(suite, output=out, quiet=True).cells) == 1


def test_a_directory_without_a_run_is_refused_with_the_command_to_start_one(tmp_path):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "suite.json").write_text("{}")
    line = _one_error_line(CliRunner().invoke(app, ["run", "--resume", str(tmp_path / "half")]))
    assert "holds no overfit-lab run" in line and f"--output {tmp_path / 'half'}" in line


def test_a_non_empty_output_directory_is_refused(tiny_model, tiny_csv, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    suite = _suite_file(tmp_path, tiny_model, tiny_csv)
    result = CliRunner().invoke(app, ["run", str(suite), "-o", str(out)])
    assert "not an empty directory" in _one_error_line(result)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_a_corrupt_database_is_one_line(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.sqlite").write_bytes(b"SQLite format 3\x00" + b"\x07" * 300)
    for command in (["show", str(run_dir)], ["run", "--resume", str(run_dir)]):
        assert "not a readable run database" in _one_error_line(CliRunner().invoke(app, command))


# ------------------------------------------------------------------ 13.5: one process per run
def _started_run(tiny_model, tiny_csv, tmp_path) -> Path:
    suite = load_suite(_suite_file(tmp_path, tiny_model, tiny_csv))
    return run_suite(suite, output=tmp_path / "run", quiet=True).run_dir


def test_a_second_process_is_refused_naming_the_holder(tiny_model, tiny_csv, tmp_path):
    run_dir = _started_run(tiny_model, tiny_csv, tmp_path)
    holder = RunStore.open(run_dir).lock()
    try:
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        done = subprocess.run([sys.executable, "-m", "overfit_lab", "run", "--resume", str(run_dir)],
                              capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and f"in use by another overfit-lab process (pid {os.getpid()})" in lines[0]
        with pytest.raises(OverfitLabError, match=f"pid {os.getpid()}"):  # in this process too
            run_suite(resume=run_dir, quiet=True)
    finally:
        holder.close()
    assert len(run_suite(resume=run_dir, quiet=True).cells) == 1  # free again once released


def test_the_lock_dies_with_its_process(tiny_model, tiny_csv, tmp_path):
    run_dir = _started_run(tiny_model, tiny_csv, tmp_path)
    script = textwrap.dedent(f"""
        import sys, time
        from overfit_lab.store import RunStore
        store = RunStore.open({str(run_dir)!r}).lock()
        print("locked", flush=True)
        time.sleep(120)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(OverfitLabError, match=f"pid {child.pid}"):
            RunStore.open(run_dir).lock()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    RunStore.open(run_dir).lock().close()


# ------------------------------------------------------------------ 13.6: disk full, read-only
def test_a_full_disk_stops_the_run_and_resume_continues(tiny_model, tiny_csv, tmp_path, monkeypatch):
    """After the first cell, SQLite may not grow the database (``max_page_count``: SQLite's own
    "database or disk is full"): the run stops with one line, the first cell kept, the second
    not marked finished; after "freeing space" --resume runs only the second."""
    suite = _suite_file(tmp_path, tiny_model, tiny_csv)
    suite.write_text(suite.read_text().replace("seeds = [0]", "seeds = [0, 1]"))
    out = tmp_path / "run"
    full = {"on": False}
    real_connect, real_run_cell = RunStore._connect, runner_module.run_cell

    def connect(self):
        db = real_connect(self)
        if full["on"]:
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            db.execute(f"PRAGMA max_page_count = {pages}")
        return db

    def run_cell(cell, **kwargs):
        result = real_run_cell(cell, **kwargs)
        full["on"] = cell.seed == 1  # the disk fills up while the second cell trains
        return result

    monkeypatch.setattr(RunStore, "_connect", connect)
    monkeypatch.setattr(runner_module, "run_cell", run_cell)
    line = _one_error_line(CliRunner().invoke(app, ["run", str(suite), "-o", str(out), "-q"]))
    assert "cell n40-baseline-s1 could not be stored" in line and "full" in line
    assert f"overfit-lab run --resume {out}" in line
    with sqlite3.connect(out / "run.sqlite") as db:
        cells = db.execute("SELECT cell_id, status FROM cells").fetchall()
        assert cells == [("n40-baseline-s0", "finished")]
        assert db.execute("SELECT COUNT(*) FROM metrics WHERE cell_id = 'n40-baseline-s1'").fetchone() == (0,)
    full["on"] = False
    monkeypatch.setattr(runner_module, "run_cell", real_run_cell)
    result = CliRunner().invoke(app, ["run", "--resume", str(out), "-q"])
    assert result.exit_code == 0, result.output
    run = load_run(out)
    assert sorted(run.cells["cell_id"]) == ["n40-baseline-s0", "n40-baseline-s1"]
    assert not run.metrics.duplicated(["cell_id", "epoch", "split", "metric"]).any()


def test_an_unwritable_output_fails_up_front(tiny_model, tiny_csv, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    suite = _suite_file(tmp_path, tiny_model, tiny_csv)
    result = CliRunner().invoke(app, ["run", str(suite), "-o", str(blocker / "run"), "-q"])
    line = _one_error_line(result)
    assert "cannot create the run directory" in line and "--output" in line

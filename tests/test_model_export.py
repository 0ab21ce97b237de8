"""Take the winner home: `overfit-lab export model` retrains a cell bit-identically and saves a
model whose audit reproduces the cell's stored test accuracy; `[output] save_models` keeps each
cell's model during the run."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from conftest import tiny_suite_dict
from typer.testing import CliRunner

from overfit_lab import audit, load_run, run_suite
from overfit_lab.cli import app
from overfit_lab.data import load_task_data
from overfit_lab.errors import OverfitLabError
from overfit_lab.model_export import export_model
from overfit_lab.suite import validate_suite

LIGHT = {"checkpoints": ["final", "best"], **{name: {"enabled": False} for name in
                                                ("robustness", "bias", "drift", "spectral", "memorization")}}


@pytest.fixture(scope="module")
def finished(tiny_model, tiny_csv, tmp_path_factory):
    raw = tiny_suite_dict(tiny_model, tiny_csv, train_sizes=[40], epochs=[1, 3],
                          strategies=["baseline", "freeze1"], seeds=[0])
    raw["diagnostics"] = LIGHT
    return run_suite(validate_suite(raw), output=tmp_path_factory.mktemp("export") / "run", quiet=True)


def _held_out_files(run, folder):
    """The run's own training subset and test split as CSV files, for an audit."""
    data = load_task_data(run.suite)
    names = data.label_names
    test = data.test.assign(label=[names[i] for i in data.test["label"]])
    test[["text", "label"]].to_csv(folder / "test.csv", index=False)
    train = data.train.assign(label=[names[i] for i in data.train["label"]])
    train[["text", "label"]].to_csv(folder / "train.csv", index=False)
    return folder / "train.csv", folder / "test.csv"


@pytest.mark.parametrize("cell_id", ["n40-baseline-s0", "n40-freeze1-s0"])
def test_export_reproduces_the_cell_and_its_audit_the_test_accuracy(finished, tmp_path, cell_id):
    done = export_model(finished.run_dir, cell_id, to=tmp_path / "model")
    assert done.identical and done.max_difference == 0.0 and done.metrics_compared > 0
    assert done.epoch == 3 and (tmp_path / "model" / "model.safetensors").is_file()
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert list(config["id2label"].values()) == finished.meta["label_names"]
    train, test = _held_out_files(finished, tmp_path)
    audited = audit(tmp_path / "model", train, test, output=tmp_path / "audit", quiet=True,
                    max_length=finished.suite.model.max_length,
                    diagnostics={name: {"enabled": False} for name in ("robustness", "bias", "calibration",
                                                                       "memorization", "spectral", "slices",
                                                                       "labels", "cartography")})
    stored = finished.generalization.query("cell_id == @cell_id and epochs == 3")["test_accuracy"].item()
    assert audited.generalization["test_accuracy"].item() == stored


def test_best_checkpoint_is_the_lowest_validation_loss(finished, tmp_path):
    done = export_model(finished.run_dir, "n40-baseline-s0", to=tmp_path / "best", checkpoint="best")
    metrics = finished.metrics
    curve = metrics[(metrics["cell_id"] == "n40-baseline-s0") & (metrics["split"] == "validation")
                    & (metrics["metric"] == "loss")]
    assert done.epoch == int(curve.loc[curve["value"].idxmin(), "epoch"])


def test_a_different_thread_count_is_reported_not_hidden(finished, tmp_path, monkeypatch):
    """Rerun on another thread count: the export still saves, and says how far the figures moved."""
    cells = finished.cells.copy()
    cells["threads"] = 1 if int(finished.cells["threads"].iloc[0]) != 1 else 2
    monkeypatch.setattr("overfit_lab.analysis.RunResult.cells", property(lambda self: cells))
    done = export_model(finished.run_dir, "n40-baseline-s0", to=tmp_path / "model")
    assert done.threads == cells["threads"].iloc[0]
    assert done.identical == (done.max_difference == 0.0)


@pytest.mark.parametrize(("args", "key"), [
    (["nope"], "CELL_ID"), (["n40-baseline-s0", "--checkpoint", "middle"], "--checkpoint")])
def test_bad_export_requests_are_one_line(finished, tmp_path, args, key):
    result = CliRunner().invoke(app, ["export", "model", str(finished.run_dir), *args, "--to",
                                      str(tmp_path / "m")])
    assert result.exit_code == 2 and key in result.output and "Traceback" not in result.output
    assert not (tmp_path / "m").exists()


def test_export_refuses_a_used_directory(finished, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(OverfitLabError) as error:
        export_model(finished.run_dir, "n40-baseline-s0", to=tmp_path / "full")
    assert error.value.key == "--to"


def test_save_models_keeps_every_cells_model_during_the_run(tiny_model, tiny_csv, tmp_path, finished):
    raw = tiny_suite_dict(tiny_model, tiny_csv, train_sizes=[40], epochs=[1, 3], strategies=["baseline"],
                          seeds=[0])
    raw["diagnostics"] = LIGHT
    raw["output"] = {"save_models": "final"}
    run = run_suite(validate_suite(raw), output=tmp_path / "run", quiet=True)
    directory = tmp_path / "run" / "models" / "n40-baseline-s0"
    assert (directory / "model.safetensors").is_file() and (directory / "tokenizer.json").is_file()
    info = run.cells.set_index("cell_id").loc["n40-baseline-s0"]
    assert info["model_checkpoint"] == "final" and info["model_epoch"] == 3 and info["model_bytes"] > 0
    # the saved weights are the same training's: equal to a fresh export of the same cell
    export_model(run.run_dir, "n40-baseline-s0", to=tmp_path / "again")
    from safetensors.torch import load_file

    a, b = load_file(directory / "model.safetensors"), load_file(tmp_path / "again" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not list((tmp_path / "run" / "models").glob(".*partial"))
    # and the metrics equal those of the same grid run without saving
    other = load_run(finished.run_dir).metrics.query("cell_id == 'n40-baseline-s0'")
    mine = run.metrics.query("cell_id == 'n40-baseline-s0'")
    keys = ["epoch", "split", "metric"]
    pd.testing.assert_frame_equal(other.sort_values(keys)[[*keys, "value"]].reset_index(drop=True),
                                  mine.sort_values(keys)[[*keys, "value"]].reset_index(drop=True),
                                  check_exact=True)


@pytest.mark.parametrize("strategy", ["baseline", "lora"])
def test_a_causal_lm_cell_exports_as_a_plain_model_whose_audit_reproduces_its_test_loss(tiny_gpt2, tmp_path,
                                                                                          strategy):
    """A LoRA cell is saved with its adapters merged (a plain model, no peft needed to load it):
    its audit's test loss equals the stored one up to the merge's float rounding; a fully
    fine-tuned cell's exactly."""
    from conftest import tiny_lm_suite_dict
    from transformers import AutoModelForCausalLM

    raw = tiny_lm_suite_dict(tiny_gpt2, epochs=[2], strategies=[strategy])
    raw["evaluation"] = {"batch_size": 64}  # as the audit's: the same batches, the same padding
    raw["diagnostics"] = {"checkpoints": ["final"], **{name: {"enabled": False} for name in
                                                       ("robustness", "drift", "spectral", "memorization",
                                                        "forgetting")}}
    run = run_suite(validate_suite(raw), output=tmp_path / "run", quiet=True)
    cell_id = run.cells["cell_id"].item()
    done = export_model(run.run_dir, cell_id, to=tmp_path / "model")
    assert done.identical
    assert not list((tmp_path / "model").glob("adapter_*"))
    assert not any("lora" in name for name, _ in AutoModelForCausalLM.from_pretrained(
        tmp_path / "model").named_parameters())
    data = load_task_data(run.suite)
    for split, frame in (("train", data.train), ("test", data.test)):
        (tmp_path / f"{split}.txt").write_text("\n".join(frame["text"]) + "\n")
    audited = audit(tmp_path / "model", tmp_path / "train.txt", tmp_path / "test.txt", task="causal-lm",
                    output=tmp_path / "audit", quiet=True, max_length=run.suite.model.max_length,
                    diagnostics=raw["diagnostics"])
    stored = run.generalization["test_loss"].item()
    if strategy == "lora":
        assert audited.generalization["test_loss"].item() == pytest.approx(stored, rel=1e-5)
    else:
        assert audited.generalization["test_loss"].item() == stored

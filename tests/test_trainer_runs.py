"""Reading a transformers Trainer output directory: real tiny Trainer runs, read back and judged."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import make_sentences

from overfit_lab.diagnostics.generalization import best_epoch, fit_verdict, overfitting_onset
from overfit_lab.errors import OverfitLabError
from overfit_lab.suite import VerdictSpec
from overfit_lab.trainer_runs import RUNNING_LOSS_LABEL, read_trainer_run

EPOCHS = 4
STEPS_PER_EPOCH = 3  # 24 training sentences, batch 8


def _train(model_dir: Path, output_dir: str | Path, *, dict_eval: bool = False, evaluate_after: bool = False,
           save_state: bool = False, with_tokenizer: bool = False, **arguments) -> None:
    """A user's own fine-tuning with plain transformers (overfit-lab is not involved)."""
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    def encode(frame):
        return [dict(tokenizer(text, truncation=True, max_length=32), label=int(label))
                for text, label in zip(frame["text"], frame["label"], strict=True)]

    def accuracy(prediction):
        logits, labels = prediction
        return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}

    train = make_sentences(24, seed=0)
    flipped = np.random.default_rng(0).random(len(train)) < 0.25  # noisy labels: the held-out loss rises
    train.loc[flipped, "label"] = 1 - train.loc[flipped, "label"]
    held_out = encode(make_sentences(32, seed=1))
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    settings = dict(output_dir=str(output_dir), eval_strategy="epoch", save_strategy="epoch",
                    logging_strategy="epoch", num_train_epochs=EPOCHS, per_device_train_batch_size=8,
                    learning_rate=3e-3, lr_scheduler_type="constant", use_cpu=True, report_to="none",
                    disable_tqdm=True, seed=0)
    settings.update(arguments)
    evaluated = {"validation": held_out, "train": encode(train)} if dict_eval else held_out
    trainer = Trainer(model=model, args=TrainingArguments(**settings), train_dataset=encode(train),
                      eval_dataset=evaluated, processing_class=tokenizer if with_tokenizer else None,
                      data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=accuracy)
    trainer.train()
    if evaluate_after:
        trainer.evaluate()  # logged at the last step again, on the best model
    if save_state:
        trainer.save_state()


@pytest.fixture(scope="module")
def runs(tiny_model, tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("trainer-runs")
    _train(tiny_model, base / "epoch")
    _train(tiny_model, base / "steps", eval_strategy="steps", save_strategy="steps", logging_strategy="steps",
           eval_steps=2, save_steps=2, logging_steps=1)
    _train(tiny_model, base / "dict", dict_eval=True, save_strategy="no", save_state=True)
    cwd = Path.cwd()
    os.chdir(base)  # a relative output_dir: trainer_state.json records relative paths
    try:
        _train(tiny_model, "best", load_best_model_at_end=True, metric_for_best_model="loss",
               evaluate_after=True, save_state=True)
    finally:
        os.chdir(cwd)
    return {name: base / name for name in ("epoch", "steps", "dict", "best")}


def _history(path: Path) -> list[dict]:
    return json.loads(path.read_text())["log_history"]


def _evaluations(history: list[dict], loss: str = "eval_loss") -> list[dict]:
    """The evaluations logged during training (before the final summary entry)."""
    during = []
    for entry in history:
        if "train_runtime" in entry and "total_flos" in entry:
            break
        if loss in entry:
            during.append(entry)
    return during


def _assert_one_line_error(excinfo) -> None:
    error = excinfo.value
    assert error.key == "--trainer-run"
    assert "\n" not in str(error) and "--trainer-run" in str(error)


# ---------------------------------------------------------------------------------------- reading
def test_checkpoints_are_found_with_their_steps_and_epochs(runs):
    run = read_trainer_run(runs["epoch"], require_checkpoints=True)
    steps = [STEPS_PER_EPOCH * e for e in range(1, EPOCHS + 1)]
    assert [c.step for c in run.checkpoints] == steps
    assert [c.path for c in run.checkpoints] == [runs["epoch"] / f"checkpoint-{s}" for s in steps]
    assert [c.epoch for c in run.checkpoints] == [1.0, 2.0, 3.0, 4.0]
    assert all(c.has_weights for c in run.checkpoints)
    # no root state (no save_state): the last checkpoint's, written before the final summary
    assert run.state_file == runs["epoch"] / f"checkpoint-{steps[-1]}" / "trainer_state.json"
    assert run.state == json.loads(run.state_file.read_text())
    assert run.summary == {}
    assert run.best_checkpoint is None  # no metric_for_best_model
    assert set(run.log.columns) == {"step", "epoch", "kind", "metric", "value"}
    assert set(run.log["kind"]) == {"train", "eval"}


def test_other_directories_are_ignored_and_checkpoints_sort_by_step(runs, tmp_path):
    copy = shutil.copytree(runs["steps"], tmp_path / "steps")
    (copy / "checkpoint-best").mkdir()
    (copy / "runs").mkdir()
    (copy / "checkpoint-99").write_text("a file, not a checkpoint")
    run = read_trainer_run(copy)
    assert [c.step for c in run.checkpoints] == [2, 4, 6, 8, 10, 12]  # numeric order, not 10 < 2
    assert run.output_dir == copy


def test_eval_and_train_curves_equal_the_logged_entries(runs):
    run = read_trainer_run(runs["epoch"])
    history = _history(run.state_file)
    evaluations = _evaluations(history)
    curve = run.eval_curve()
    assert len(curve) == len(evaluations) == EPOCHS
    assert curve["step"].tolist() == [e["step"] for e in evaluations]
    assert curve["epoch"].tolist() == [e["epoch"] for e in evaluations]
    for key in ("eval_loss", "eval_accuracy", "eval_runtime"):
        assert curve[key].tolist() == [e[key] for e in evaluations]
    training = [e for e in history if "loss" in e]
    train = run.train_curve()
    assert train["step"].tolist() == [e["step"] for e in training]
    assert train["loss"].tolist() == [e["loss"] for e in training]


def test_best_step_is_the_first_lowest_eval_loss_and_its_checkpoint(runs):
    run = read_trainer_run(runs["epoch"])
    evaluations = _evaluations(_history(run.state_file))
    losses = [e["eval_loss"] for e in evaluations]
    expected = evaluations[int(np.argmin(losses))]["step"]  # argmin: the first on ties
    assert run.best_step() == expected
    assert run.checkpoint_for(expected).step == expected
    assert run.checkpoint_for(expected + 1).step == expected  # the closest at or before
    assert run.checkpoint_for(0) is None


@pytest.mark.parametrize("thresholds", [VerdictSpec(), VerdictSpec(loss_rise=0.0), VerdictSpec(loss_rise=5.0),
                                        VerdictSpec(loss_rise=5.0, still_falling=0.0)])
def test_verdict_is_the_grid_rule_on_the_eval_loss_curve(runs, thresholds):
    run = read_trainer_run(runs["epoch"])
    evaluations = _evaluations(_history(run.state_file))
    losses = [e["eval_loss"] for e in evaluations]
    result = run.verdict(thresholds)
    # rule 4 skipped: NaN and -inf give the same verdict (the loss curve's alone)
    verdict, reason = fit_verdict(losses, gap_accuracy=math.nan, thresholds=thresholds)
    skipped = fit_verdict(losses, gap_accuracy=-math.inf, thresholds=thresholds)[0]
    assert result["verdict"] == verdict == skipped
    assert result["reason"] == reason.replace("accuracy gap nan", "accuracy gap not judged")
    assert "nan" not in result["reason"]
    assert result["per"] == "epoch" and result["evaluations"] == EPOCHS
    assert result["loss_metric"] == "eval_loss"
    best = best_epoch(losses)
    assert result["best_evaluation"] == best
    assert result["best_step"] == evaluations[best - 1]["step"] == run.best_step()
    assert result["best_epoch"] == evaluations[best - 1]["epoch"]
    assert result["checkpoint"] == runs["epoch"] / f"checkpoint-{result['best_step']}"
    onset = overfitting_onset(losses, tolerance=thresholds.loss_rise)
    assert result["onset_evaluation"] == onset
    assert result["onset_step"] == (evaluations[onset - 1]["step"] if onset else None)
    assert math.isnan(result["gap_accuracy"]) and math.isnan(result["gap_loss"])
    curve = result["curve"]
    assert curve["evaluation"].tolist() == list(range(1, EPOCHS + 1))
    assert curve["eval_loss"].tolist() == losses
    # logged once an epoch: the running loss at an evaluation is the one logged at the same step
    training = {e["step"]: e["loss"] for e in _history(run.state_file) if "loss" in e}
    assert curve["running_train_loss"].tolist() == [training[e["step"]] for e in evaluations]
    assert result["labels"]["running_train_loss"] == RUNNING_LOSS_LABEL
    assert "train mode" in RUNNING_LOSS_LABEL


def test_the_noisy_tiny_run_has_passed_its_minimum(runs):
    """The fixture's curve is not trivial (its minimum is not its last evaluation), so the best
    step, its checkpoint and the best checkpoint below are not simply the last ones."""
    result = read_trainer_run(runs["epoch"]).verdict()
    assert result["best_step"] < EPOCHS * STEPS_PER_EPOCH
    assert result["loss_rise"] > 0


def test_missing_says_the_accuracy_gap_is_not_judged(runs):
    result = read_trainer_run(runs["epoch"]).verdict()
    (line,) = result["missing"]
    assert "no training-split evaluation" in line and "the accuracy gap is not judged" in line
    assert "train mode with dropout" in line
    assert result["notes"] == []


def test_a_training_split_evaluation_is_judged(runs):
    """A dict eval_dataset with a training set: its accuracy enters rule 4, its loss the gap."""
    run = read_trainer_run(runs["dict"])
    assert run.checkpoints == [] and run.state_file == runs["dict"] / "trainer_state.json"
    history = _history(run.state_file)
    assert run.loss_metric == "eval_validation_loss"
    held_out = _evaluations(history, "eval_validation_loss")
    trained = _evaluations(history, "eval_train_loss")
    losses = [e["eval_validation_loss"] for e in held_out]
    gap = trained[-1]["eval_train_accuracy"] - held_out[-1]["eval_validation_accuracy"]
    result = run.verdict()
    assert result["gap_accuracy"] == pytest.approx(gap)
    assert result["gap_loss"] == pytest.approx(losses[-1] - trained[-1]["eval_train_loss"])
    assert (result["verdict"], result["reason"]) == fit_verdict(losses, gap_accuracy=gap)
    assert result["missing"] == []
    assert result["curve"]["eval_train_accuracy"].tolist() == [e["eval_train_accuracy"] for e in trained]
    assert len(run.eval_curve()) == EPOCHS  # the two sets of each evaluation in one row
    assert run.summary["train_runtime"] > 0  # saved after training: the final summary


def test_best_checkpoint_resolves_a_relative_path_inside_output_dir(runs, tmp_path):
    state = json.loads((runs["best"] / "trainer_state.json").read_text())
    recorded = state["best_model_checkpoint"]
    assert not Path(recorded).is_absolute() and recorded.startswith("best")  # relative to the training cwd
    run = read_trainer_run(runs["best"], require_checkpoints=True)
    assert run.state_file == runs["best"] / "trainer_state.json"  # save_state: the root's
    assert run.best_checkpoint == runs["best"] / Path(recorded).name
    assert run.best_checkpoint == run.checkpoint_for(run.best_step()).path
    assert run.verdict()["best_checkpoint"] == run.best_checkpoint
    # moved elsewhere: still found by its name inside the directory read
    moved = read_trainer_run(shutil.copytree(runs["best"], tmp_path / "moved"))
    assert moved.best_checkpoint == tmp_path / "moved" / Path(recorded).name


def test_an_evaluation_after_training_does_not_enter_the_curve(runs):
    run = read_trainer_run(runs["best"])
    history = _history(run.state_file)
    assert "train_runtime" in history[-2] and "eval_loss" in history[-1]  # evaluate() of the best model
    assert "train_runtime" not in set(run.log["metric"])  # the summary is not in the log
    evaluations = _evaluations(history)
    assert run.eval_curve()["eval_loss"].tolist() == [e["eval_loss"] for e in evaluations]
    result = run.verdict()
    assert result["curve"]["eval_loss"].tolist() == [e["eval_loss"] for e in evaluations]
    assert any("logged twice" in note for note in result["notes"])


def test_evaluations_per_steps_are_judged_per_evaluation(runs):
    run = read_trainer_run(runs["steps"])
    evaluations = _evaluations(_history(run.state_file))
    assert len(evaluations) == 6
    result = run.verdict()
    assert result["per"] == "steps" and result["evaluations"] == 6
    assert result["curve"]["step"].tolist() == [e["step"] for e in evaluations] == [2, 4, 6, 8, 10, 12]
    assert result["curve"]["epoch"].tolist() == [e["epoch"] for e in evaluations]
    losses = [e["eval_loss"] for e in evaluations]
    assert result["verdict"] == fit_verdict(losses, gap_accuracy=math.nan)[0]
    assert re.search(r"epoch \d", result["reason"]) is None  # "evaluation k at step s", not "epoch k"
    assert "evaluation" in result["reason"]
    assert any("per steps" in note and "judged per evaluation" in note for note in result["notes"])
    # logged every step: the running loss at an evaluation is the one of its step
    training = {e["step"]: e["loss"] for e in _history(run.state_file) if "loss" in e}
    assert result["curve"]["running_train_loss"].tolist() == [training[s] for s in [2, 4, 6, 8, 10, 12]]


def test_a_newer_checkpoint_wins_over_a_stale_root_state(runs, tmp_path):
    copy = shutil.copytree(runs["epoch"], tmp_path / "epoch")
    stale = json.loads((copy / "checkpoint-3" / "trainer_state.json").read_text())
    (copy / "trainer_state.json").write_text(json.dumps(stale))
    assert read_trainer_run(copy).state_file == copy / "checkpoint-12" / "trainer_state.json"


# ----------------------------------------------------------------------------------------- errors
def test_no_such_directory(tmp_path):
    with pytest.raises(OverfitLabError, match="no such directory") as excinfo:
        read_trainer_run(tmp_path / "absent")
    _assert_one_line_error(excinfo)


def test_an_empty_directory_has_no_state(tmp_path):
    (tmp_path / "checkpoint-5").mkdir()  # a checkpoint without its state does not count
    with pytest.raises(OverfitLabError, match="save_strategy='no'") as excinfo:
        read_trainer_run(tmp_path)
    _assert_one_line_error(excinfo)
    assert "trainer.save_state()" in excinfo.value.fix


def test_a_log_without_evaluations(tmp_path):
    (tmp_path / "checkpoint-4").mkdir()
    state = {"global_step": 4, "log_history": [{"loss": 0.7, "learning_rate": 1e-3, "epoch": 1.0, "step": 4}]}
    (tmp_path / "checkpoint-4" / "trainer_state.json").write_text(json.dumps(state))
    with pytest.raises(OverfitLabError, match="no evaluation entries") as excinfo:
        read_trainer_run(tmp_path)
    _assert_one_line_error(excinfo)
    assert "eval_strategy='epoch'" in excinfo.value.fix


def test_corrupt_json(runs, tmp_path):
    copy = shutil.copytree(runs["best"], tmp_path / "best")
    (copy / "trainer_state.json").write_text('{"log_history": [{"eval_loss": 0.5,')
    with pytest.raises(OverfitLabError, match="not valid JSON") as excinfo:
        read_trainer_run(copy)
    _assert_one_line_error(excinfo)
    assert excinfo.value.file == str(copy / "trainer_state.json")


def test_checkpoints_without_weights_only_when_required(runs, tmp_path):
    run = read_trainer_run(runs["dict"])  # save_strategy="no": readable, but no model to score
    assert run.checkpoints == []
    with pytest.raises(OverfitLabError, match="no checkpoint-<step> directory") as excinfo:
        read_trainer_run(runs["dict"], require_checkpoints=True)
    _assert_one_line_error(excinfo)
    copy = shutil.copytree(runs["epoch"], tmp_path / "epoch")
    for weights in copy.glob("checkpoint-*/model.safetensors"):
        weights.unlink()
    assert len(read_trainer_run(copy).checkpoints) == EPOCHS
    with pytest.raises(OverfitLabError, match="without model weights") as excinfo:
        read_trainer_run(copy, require_checkpoints=True)
    _assert_one_line_error(excinfo)

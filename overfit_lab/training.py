"""Fine-tune one cell with transformers ``Trainer`` and record its metrics after every epoch.

:func:`run_cell` takes a :class:`~overfit_lab.grid.Cell` and returns a :class:`CellResult`
(plain data); it never writes the store, so cells can run anywhere.

Evaluation replaces ``Trainer.evaluate`` (the documented extension point): after each epoch the
training subset (in eval mode), the validation split and, at the grid's epoch values, the test
split are scored by the cell's :class:`overfit_lab.scoring.CheckpointScorer` (batched
:func:`overfit_lab.predict.predict_logits`), which also runs the diagnostics at the final and
best checkpoints. The global RNG states are saved before and restored after each evaluation, so
a run that records epochs 1, 3 and 5 is bit-identical to separate runs of 1, 3 and 5 epochs when
the learning-rate schedule does not depend on the total number of steps. Early stopping is the
library's ``EarlyStoppingCallback``, fed by these evaluations.

A strategy that freezes the embeddings and the bottom layers (without dropout in them or text
augmentation) trains only the model's top on cached outputs of the frozen prefix, and is scored
on them after each epoch (:mod:`overfit_lab.frozen`); the cell's info says whether
(``frozen_cache``, ``frozen_cache_reason``, ``frozen_cache_s``).
"""

from __future__ import annotations

import math
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
from transformers import PrinterCallback, Trainer, TrainerCallback, set_seed

from . import frozen
from .batching import TokenDataset
from .data import TaskData, load_task_data
from .data.augment import augment_text, training_vocabulary
from .errors import CellFailure, OverfitLabError
from .grid import Cell
from .lora import add_adapters
from .models import count_parameters, freeze, load_tokenizer, resolve_model_path, save_model, set_dropout
from .predict import Encoded
from .rows import CellRow, CellStatus, DiagnosticRow, DynamicsRow, ExampleRow, MetricRow
from .scoring import CheckpointScorer, any_diagnostic, encode_splits
from .strategies import strategy_callbacks, training_arguments
from .suite import AugmentSpec, Suite
from .tasks import task_of

EpochHook = Callable[[Cell, int], None]


@dataclass
class CellResult:
    """What one cell produced: status, per-epoch metric rows and run facts."""

    cell: CellRow
    status: CellStatus
    reason: str = ""
    metrics: list[MetricRow] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    diagnostics: list[DiagnosticRow] = field(default_factory=list)
    examples: list[ExampleRow] = field(default_factory=list)
    dynamics: list[DynamicsRow] = field(default_factory=list)


def run_cell(cell: Cell, *, on_epoch: EpochHook | None = None) -> CellResult:
    """Fine-tune ``cell`` and return its results; a failure is returned, not raised.

    User errors (:class:`~overfit_lab.errors.OverfitLabError`) and interrupts still propagate.
    """
    started = time.perf_counter()
    recorder = _Recorder(cell, on_epoch)
    recorder.info["threads"] = torch.get_num_threads()  # floats depend on it: export model reruns with it
    status: CellStatus
    try:
        _train(cell, recorder)
        status, reason = "finished", ""
    except CellFailure as exc:
        status, reason = "failed", str(exc)
    except (torch.OutOfMemoryError, MemoryError) as exc:
        status, reason = "failed", f"out of memory: {exc}"
    except OverfitLabError:
        raise
    except Exception as exc:  # noqa: BLE001 - one broken cell must not stop the grid
        status, reason = "failed", f"{type(exc).__name__}: {exc}"
    info = {**recorder.info, "wall_s": time.perf_counter() - started,
            "train_s": sum(recorder.train_s), "eval_s": sum(recorder.eval_s)}
    return CellResult(cell=cell.describe(), status=status, reason=reason, metrics=recorder.rows, info=info,
                      diagnostics=recorder.diagnostics, examples=recorder.examples,
                      dynamics=recorder.dynamics)


# --------------------------------------------------------------------------- data per process
@lru_cache(maxsize=2)
def _prepared(suite_json: str) -> tuple[TaskData, str, object, dict[str, Encoded]]:
    """Load data, resolve the model and tokenize every split once per process."""
    suite = Suite.from_json(suite_json)
    data = load_task_data(suite)
    path = resolve_model_path(suite.model.name)
    tokenizer = load_tokenizer(path, trust_remote_code=suite.model.trust_remote_code)
    return data, path, tokenizer, encode_splits(task_of(suite), tokenizer, data,
                                                max_length=suite.model.max_length)


def _subset(pool: Encoded, positions: np.ndarray, labels: np.ndarray) -> Encoded:
    return Encoded(input_ids=[pool.input_ids[i] for i in positions], labels=np.asarray(labels),
                   pad_token_id=pool.pad_token_id)


class _TextDataset(torch.utils.data.Dataset):
    def __init__(self, texts: list[str], labels: np.ndarray):
        self.texts, self.labels = texts, labels

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> dict:
        return {"text": self.texts[i], "labels": int(self.labels[i])}


class _AugmentingCollator:
    """Augments the texts of each training batch, then tokenizes and pads them."""

    def __init__(self, tokenizer, spec: AugmentSpec, *, seed: int, max_length: int, vocabulary: list[str]):
        self.tokenizer, self.spec, self.max_length = tokenizer, spec, max_length
        self.vocabulary = vocabulary
        self.rng = np.random.default_rng(seed)

    def __call__(self, features: list[dict]) -> dict:
        texts = [augment_text(f["text"], self.spec, self.rng, vocabulary=self.vocabulary) for f in features]
        batch = self.tokenizer(texts, truncation=True, max_length=self.max_length, padding=True,
                               return_tensors="pt")
        batch["labels"] = torch.tensor([f["labels"] for f in features], dtype=torch.long)
        return batch


# --------------------------------------------------------------------------- recording
def _rng_state() -> tuple:
    return random.getstate(), np.random.get_state(), torch.get_rng_state()


def _set_rng_state(state: tuple) -> None:
    random.setstate(state[0])
    np.random.set_state(state[1])
    torch.set_rng_state(state[2])


class _Recorder(TrainerCallback):
    """Per-epoch timings and running loss; evaluation itself is called by the trainer, and
    scored by the cell's :class:`~overfit_lab.scoring.CheckpointScorer` (set once the data is)."""

    def __init__(self, cell: Cell, on_epoch: EpochHook | None):
        self.cell, self.on_epoch = cell, on_epoch
        self.rows: list[MetricRow] = []
        self.train_s: list[float] = []
        self.eval_s: list[float] = []
        self.info: dict = {}
        self.scorer: CheckpointScorer | None = None
        diagnostics = cell.suite.diagnostics
        self.keep_best = (("best" in diagnostics.checkpoints and any_diagnostic(cell.suite))
                          or (cell.save_model == "best" and cell.model_dir is not None))
        self.tested: set[int] = set()
        self._t0 = 0.0
        self.logits: dict[str, np.ndarray] = {}  # latest clean logits per split
        self.best: dict = {"loss": math.inf, "epoch": 0, "state": None, "logits": {}}
        self.diagnostics: list[DiagnosticRow] = []
        self.examples: list[ExampleRow] = []
        self.dynamics: list[DynamicsRow] = []

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.train_s.append(time.perf_counter() - self._t0)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            epoch = int(round(state.epoch or 0))
            self.rows.append(MetricRow(epoch=epoch, split="train", metric="running_loss",
                                       value=float(logs["loss"])))
            if not math.isfinite(logs["loss"]):
                raise CellFailure(f"non-finite training loss ({logs['loss']}) in epoch {epoch}")

    def evaluate(self, model, epoch: int, *, splits: tuple[str, ...]) -> dict[str, float]:
        """Score ``splits`` at ``epoch``; returns Trainer-style ``eval_<split>_<metric>`` keys."""
        started = time.perf_counter()
        rng = _rng_state()
        try:
            scores = self.scorer.score(model, epoch=epoch, splits=splits)
            self.logits.update(scores.logits)
            self.rows += scores.metrics
            self.scorer.record_epoch(epoch, scores)
            flat = {f"eval_{row.split}_{row.metric}": row.value for row in scores.metrics}
            if "test" in splits:
                self.tested.add(epoch)
            if self.keep_best and flat.get("eval_validation_loss", math.inf) < self.best["loss"]:
                self.best = {"loss": flat["eval_validation_loss"], "epoch": epoch,
                             "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
                             "logits": {s: self.logits[s] for s in ("train", "validation")}}
        finally:
            _set_rng_state(rng)
        self.eval_s.append(time.perf_counter() - started)
        losses = [v for k, v in flat.items() if k.endswith("_loss")]
        if not all(math.isfinite(v) for v in losses):
            raise CellFailure(f"non-finite evaluation loss after epoch {epoch}")
        return flat


class _EpochEvalTrainer(Trainer):
    """``Trainer`` whose per-epoch evaluation is the recorder's fast, RNG-neutral one."""

    def __init__(self, *args, recorder: _Recorder, scored: torch.nn.Module, **kwargs):
        super().__init__(*args, **kwargs)
        self.recorder = recorder
        self.scored = scored  # the full model, also when the trainer trains its frozen.FrozenSuffix

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict:
        epoch = int(round(self.state.epoch or 0))
        cell = self.recorder.cell
        splits = ("train", "validation") + (("test",) if epoch in cell.record_epochs else ())
        metrics = self.recorder.evaluate(self.scored, epoch, splits=splits)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        if self.recorder.on_epoch is not None:
            self.recorder.on_epoch(cell, epoch)
        return metrics


# --------------------------------------------------------------------------- one cell
def _train(cell: Cell, recorder: _Recorder) -> None:
    from transformers.utils import logging as hf_logging

    suite = cell.suite
    spec = cell.strategy_spec
    data, model_path, tokenizer, encoded = _prepared(suite.to_json())
    rows = data.training_subset(cell.train_size, sizes=suite.grid.train_sizes, seed=suite.data.seed,
                                label_noise=cell.label_noise, noise_seed=suite.data.seed)
    train_encoded = _subset(encoded["train"], rows["position"].to_numpy(), rows["label"].to_numpy())
    # the fine-tuning starts from model_path: drift compares with it
    recorder.scorer = CheckpointScorer(
        tokenizer=tokenizer, suite=suite, data=data, train_rows=rows, pretrained_path=model_path,
        encoded={"train": train_encoded, "validation": encoded["validation"], "test": encoded["test"]})
    recorder.info["flipped_labels"] = int((rows["label"] != rows["clean_label"]).sum())

    task = task_of(suite)
    set_seed(cell.seed)  # the classification head's and the LoRA adapters' initial weights come from here
    model = task.load_pretrained(model_path, data.label_names, allow_pickle=suite.model.allow_pickle,
                                 trust_remote_code=suite.model.trust_remote_code)
    if spec.dropout is not None:
        recorder.info["dropout_modules"] = set_dropout(model, **spec.dropout.model_dump())
    if spec.freeze is not None:
        freeze(model, embeddings=spec.freeze.embeddings, layers=spec.freeze.layers,
               dropout=spec.freeze.dropout)
    if spec.lora is not None:
        model = add_adapters(model, spec.lora, peft_task=task.peft_task)
    recorder.info["trainable_parameters"] = count_parameters(model, trainable_only=True)
    recorder.info["parameters"] = count_parameters(model)

    if spec.augment is not None:
        texts = rows["text"].tolist()
        train_dataset = _TextDataset(texts, rows["label"].to_numpy())
        collator = _AugmentingCollator(tokenizer, spec.augment, seed=cell.seed,
                                       max_length=suite.model.max_length,
                                       vocabulary=training_vocabulary(texts))
    else:
        train_dataset, collator = task.training_data(train_encoded, tokenizer, suite)

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with tempfile.TemporaryDirectory(prefix="overfit-lab-") as scratch:
            args = training_arguments(suite, spec, seed=cell.seed, epochs=cell.epochs, output_dir=scratch)
            trained = model
            cached = _frozen_cache(cell, recorder, model, args, data=data, model_path=model_path,
                                   encoded=encoded, train_encoded=train_encoded)
            if cached is not None:
                trained, train_dataset, collator = cached
            trainer = _EpochEvalTrainer(
                model=trained, args=args, train_dataset=train_dataset, data_collator=collator,
                eval_dataset=TokenDataset(encoded["validation"]),  # scored by the recorder
                processing_class=tokenizer, callbacks=[recorder, *strategy_callbacks(spec)],
                recorder=recorder, scored=model,
            )
            trainer.remove_callback(PrinterCallback)  # progress is the harness's job
            trainer.train()
            last = int(round(trainer.state.epoch or 0))
            recorder.info.update(last_epoch=last, early_stopped=last < cell.epochs,
                                 optimizer_steps=trainer.state.global_step,
                                 train_examples=len(train_dataset))
            if last not in recorder.tested:  # stopped early between two recorded epochs
                recorder.evaluate(model, last, splits=("test",))
            if cell.save_model == "final":  # before the diagnostics may load the best weights
                _save_model(cell, recorder, model, tokenizer, last)
            if any_diagnostic(suite):
                started = time.perf_counter()
                _checkpoint_diagnostics(cell, recorder, model, last)
                recorder.info["diagnostics_s"] = time.perf_counter() - started
            if cell.save_model == "best":
                best = recorder.best
                if best["state"] is not None and best["epoch"] != last:
                    model.load_state_dict(best["state"])
                _save_model(cell, recorder, model, tokenizer, best["epoch"] or last)
    finally:
        hf_logging.set_verbosity(verbosity)


def _save_model(cell: Cell, recorder: _Recorder, model, tokenizer, epoch: int) -> None:
    """Save the model at ``cell.save_model`` into ``cell.model_dir`` (see :func:`models.save_model`)."""
    if cell.model_dir is None:
        return
    started = time.perf_counter()
    size = save_model(model, tokenizer, cell.model_dir)
    recorder.info.update(model_dir=cell.model_dir, model_checkpoint=cell.save_model, model_epoch=epoch,
                         model_bytes=size, model_save_s=time.perf_counter() - started)


def _frozen_cache(cell: Cell, recorder: _Recorder, model, args, *, data: TaskData, model_path: str,
                  encoded: dict[str, Encoded], train_encoded: Encoded) -> tuple | None:
    """``(suffix, dataset, collator)`` to train on the frozen prefix's cached outputs, or ``None``
    to train the whole model; records the choice in the cell's info, points the scorer at the cache."""
    spec, suite = cell.strategy_spec, cell.suite
    reason = frozen.refusal(model, spec, args)
    recorder.info["frozen_cache"] = reason is None
    if reason is not None:
        if spec.freeze is not None:
            recorder.info["frozen_cache_reason"] = reason
        return None
    model.to(args.device)  # where Trainer would put it: the prefix pass runs there
    sizes = suite.grid.train_sizes
    cache, seconds = frozen.cell_features(
        model, model_path=model_path, layers=spec.freeze.layers, pool=encoded["train"],
        positions=recorder.scorer.train_rows["position"].to_numpy(),
        used=data.subsets(sizes, seed=suite.data.seed)[max(sizes)],
        held_out={"validation": encoded["validation"], "test": encoded["test"]},
        batch_size=suite.evaluation.batch_size)
    recorder.info["frozen_cache_s"] = seconds
    recorder.scorer.predict = cache.logits
    return (frozen.FrozenSuffix(model, spec.freeze.layers), frozen.FeatureDataset(cache.features["train"],
            train_encoded), frozen.collate)


def _checkpoint_diagnostics(cell: Cell, recorder: _Recorder, model, last: int) -> None:
    """Diagnostics at the final checkpoint and, if asked, at the best (lowest validation loss)."""
    checkpoints = cell.suite.diagnostics.checkpoints
    scorer = recorder.scorer
    failures = recorder.info.setdefault("diagnostic_failures", [])
    rng = _rng_state()
    try:
        final, final_failures = [], []
        if "final" in checkpoints:
            scores = scorer.score(model, checkpoint="final", logits=recorder.logits)
            final, final_failures = scores.diagnostics, scores.failures
            recorder.examples += scores.examples
            recorder.dynamics += scores.dynamics
        recorder.diagnostics += final
        failures += final_failures
        if "best" not in checkpoints:
            return
        best = recorder.best
        recorder.info["best_epoch"] = best["epoch"]
        if best["epoch"] == last and (final or final_failures):  # the best checkpoint is the final one
            recorder.diagnostics += [row.at("best") for row in final]
            failures += [{**failure, "checkpoint": "best"} for failure in final_failures]
            return
        model.load_state_dict(best["state"])
        # the best epoch's train and validation logits; its test logits are predicted here
        scores = scorer.score(model, checkpoint="best", logits=best["logits"])
        recorder.diagnostics += scores.diagnostics
        failures += scores.failures
    finally:
        _set_rng_state(rng)
        recorder.info["diagnostics_forward_examples"] = scorer.forward["examples"]
        recorder.info["diagnostics_forward_s"] = scorer.forward["seconds"]
        recorder.info["diagnostic_s"] = dict(scorer.seconds)

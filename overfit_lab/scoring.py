"""Scoring a model at a checkpoint: split metrics, diagnostics and example inputs, as rows.

One service for both paths that score a model: the trainer (:mod:`overfit_lab.training`) after
every epoch (the split metrics) and at its final and best checkpoints (the diagnostics), and the
audit (:mod:`overfit_lab.auditing`) at the one checkpoint of an existing model (both). A
:class:`CheckpointScorer` holds what stays fixed over a cell's checkpoints (tokenizer, suite,
data, the encoded splits, the pretrained model drift compares with); :meth:`CheckpointScorer.score`
takes the model at one checkpoint and returns a :class:`CheckpointScores`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from torch import nn

from .data import TaskData
from .diagnostics.checkpoint import run_diagnostics
from .diagnostics.context import CheckpointContext
from .diagnostics.registry import adapters
from .lora import merged
from .predict import Encoded
from .rows import SPLITS, Checkpoint, DiagnosticRow, DynamicsRow, ExampleRow, MetricRow, Split
from .suite import Suite
from .tasks import TaskType, task_of

__all__ = ["CheckpointScorer", "CheckpointScores", "any_diagnostic", "encode_splits"]


def encode_splits(task: TaskType, tokenizer, data: TaskData, *, max_length: int) -> dict[Split, Encoded]:
    """Tokenize the train, validation and test splits of ``data`` once, as ``task`` encodes."""
    return {split: task.encode(tokenizer, data.split(split)["text"].tolist(),
                               data.split(split)["label"].to_numpy(), max_length=max_length)
            for split in SPLITS}


def any_diagnostic(suite: Suite) -> bool:
    """Whether ``suite`` enables any diagnostic that applies to its task."""
    return any(getattr(suite.diagnostics, name).enabled for name in task_of(suite).diagnostics)


@dataclass(frozen=True)
class CheckpointScores:
    """What :meth:`CheckpointScorer.score` returns for one checkpoint."""

    metrics: list[MetricRow]  # the task's split metrics of the splits asked for
    diagnostics: list[DiagnosticRow]  # every enabled diagnostic (none when no checkpoint was named)
    examples: list[ExampleRow]  # example inputs for the report (final checkpoint only)
    logits: dict[str, np.ndarray]  # the task's clean outputs of every split scored or diagnosed
    failures: list[dict] = field(default_factory=list)  # diagnostics that raised (run_diagnostics)
    dynamics: list[DynamicsRow] = field(default_factory=list)  # the data map (final checkpoint only)
    metrics_s: float = 0.0  # seconds spent on predictions and split metrics
    diagnostics_s: float = 0.0  # seconds spent on the diagnostics


@dataclass
class CheckpointScorer:
    """Scores the checkpoints of one cell (or one audited model).

    ``encoded`` holds the splits to score, ``"train"`` being the cell's training subset and
    ``train_rows`` its rows (text, label as trained, ``clean_label``, group columns).
    ``pretrained_path`` is the model the fine-tuning started from: drift compares with it
    (``None``, as for an audit without a reference, only with drift switched off).
    ``forward`` counts the inputs the diagnostics ran through the model, over every checkpoint.
    ``task`` predicts, scores splits and names the diagnostics that apply (the suite's task).
    ``predict``, when set, gives the clean logits of a split in place of ``task.predict`` (the
    trainer's frozen-layer cache, :mod:`overfit_lab.frozen`); the diagnostics' own inputs still go
    through the model.
    """

    tokenizer: object
    suite: Suite
    data: TaskData
    encoded: dict[str, Encoded]
    train_rows: pd.DataFrame
    pretrained_path: str | None
    forward: dict = field(default_factory=lambda: {"examples": 0, "seconds": 0.0})
    seconds: dict[str, float] = field(default_factory=dict)  # per diagnostic, over every checkpoint
    task: TaskType | None = None  # None: the suite's (tasks.task_of)
    predict: Callable[[nn.Module, str], np.ndarray] | None = None
    # after each epoch (record_epoch): the training subset's outputs and the validation loss, for
    # the training-dynamics diagnostics (empty for an audit: nothing was trained)
    history: dict[int, np.ndarray] = field(default_factory=dict)
    validation_losses: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task is None:
            self.task = task_of(self.suite)

    def record_epoch(self, epoch: int, scores: CheckpointScores) -> None:
        """Keep what an epoch's scoring found that the training dynamics need."""
        if "train" in scores.logits:
            self.history[epoch] = scores.logits["train"]
        for row in scores.metrics:
            if row.split == "validation" and row.metric == "loss":
                self.validation_losses[epoch] = row.value

    def logits(self, model: nn.Module, split: str) -> np.ndarray:
        """Clean logits of ``split`` through ``model``."""
        if self.predict is not None:
            return self.predict(model, split)
        return self.task.predict(model, self.encoded[split], batch_size=self.suite.evaluation.batch_size)

    def score(self, model: nn.Module, *, epoch: int | None = None, splits: Iterable[Split] = (),
              checkpoint: Checkpoint | None = None,
              logits: dict[str, np.ndarray] | None = None) -> CheckpointScores:
        """Score ``model``: the classification metrics of ``splits`` (rows at ``epoch``) and, if a
        ``checkpoint`` is named, every enabled diagnostic on it.

        ``logits`` are clean logits already computed at this checkpoint; a split missing from them
        is predicted (the diagnostics need all three).
        """
        started = time.perf_counter()
        logits = dict(logits or {})
        metrics = []
        for split in splits:
            if split not in logits:
                logits[split] = self.logits(model, split)
            metrics += [MetricRow(epoch=epoch, split=split, metric=metric, value=value) for metric, value in
                        self.task.split_metrics(self.encoded[split].labels, logits[split]).items()]
        metrics_s = time.perf_counter() - started
        if checkpoint is None:
            return CheckpointScores(metrics=metrics, diagnostics=[], examples=[], logits=logits,
                                    metrics_s=metrics_s)
        started = time.perf_counter()
        for split in SPLITS:
            if split not in logits:
                logits[split] = self.logits(model, split)
        examples: list[ExampleRow] = []
        # LoRA adapters merged into the weights: drift and the spectra read W + (alpha / r) B A
        context = CheckpointContext(checkpoint=checkpoint, model=merged(model), tokenizer=self.tokenizer,
                                    suite=self.suite, data=self.data, train_rows=self.train_rows,
                                    encoded=self.encoded, logits=logits, pretrained_path=self.pretrained_path,
                                    forward=self.forward, seconds=self.seconds, examples=examples,
                                    task=self.task, history=self.history,
                                    validation_losses=self.validation_losses)
        applied = {name: adapter for name, adapter in adapters(self.task.name).items()
                   if name in self.task.diagnostics}
        diagnostics = run_diagnostics(context, applied)
        return CheckpointScores(metrics=metrics, diagnostics=diagnostics, examples=examples, logits=logits,
                                dynamics=context.dynamics, failures=context.failures, metrics_s=metrics_s,
                                diagnostics_s=time.perf_counter() - started)

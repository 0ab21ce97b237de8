"""What a diagnostic adapter sees of one checkpoint: :class:`CheckpointContext`.

The adapters of :mod:`overfit_lab.diagnostics.checkpoint` take one; :mod:`overfit_lab.scoring`
builds it, for the trainer and for the audit alike.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import softmax
from torch import nn

from ..data import TaskData
from ..predict import Encoded
from ..rows import Checkpoint, DynamicsRow, ExampleKind, ExampleRow
from ..suite import Suite
from ..tasks import TaskType, task_of

__all__ = ["EXAMPLES_PER_KIND", "CheckpointContext"]

EXAMPLES_PER_KIND = 5


@dataclass
class CheckpointContext:
    """What a diagnostic may use: the model at one checkpoint and the cell's data."""

    checkpoint: Checkpoint
    model: nn.Module
    tokenizer: object
    suite: Suite
    data: TaskData
    train_rows: pd.DataFrame  # the cell's training subset: text, label (as trained), clean_label, groups
    encoded: dict[str, Encoded]  # "train" (the subset), "validation", "test"
    # the task's clean outputs of the same splits at this checkpoint: logits for a classifier,
    # per-document next-token statistics for a causal LM (TaskType.predict)
    logits: dict[str, np.ndarray]
    # the pretrained model the fine-tuning started from: drift (CKA, weight distance) compares with
    # it (None: not known, as for an audit without a reference, where drift is switched off)
    pretrained_path: str | None
    # examples the diagnostics ran through the model and the seconds it took (for the benchmark)
    forward: dict = field(default_factory=lambda: {"examples": 0, "seconds": 0.0})
    # seconds each diagnostic took, over the checkpoints that share this dict (for the benchmark)
    seconds: dict[str, float] = field(default_factory=dict)
    # example inputs for the report (final checkpoint only): see add_examples
    examples: list[ExampleRow] = field(default_factory=list)
    # the diagnostics that raised at this checkpoint: {"checkpoint", "diagnostic", "reason"}
    failures: list[dict] = field(default_factory=list)
    task: TaskType | None = None  # None: the suite's (tasks.task_of)
    # the training subset's outputs after each epoch and the validation loss (empty for an audit)
    history: dict[int, np.ndarray] = field(default_factory=dict)
    validation_losses: dict[int, float] = field(default_factory=dict)
    # the training examples' places on the data map (final checkpoint only)
    dynamics: list[DynamicsRow] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.task is None:
            self.task = task_of(self.suite)

    @contextmanager
    def forward_pass(self, n_examples: int) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.forward["examples"] += n_examples
        self.forward["seconds"] += time.perf_counter() - started

    def proba(self, split: str) -> np.ndarray:
        return softmax(self.logits[split].astype(np.float64), axis=1)

    def outputs_of(self, texts: list[str]) -> np.ndarray:
        """The task's outputs (``TaskType.predict``) on arbitrary texts (perturbed,
        counterfactual or non-member inputs): a classifier's logits, a causal LM's per-document
        token statistics."""
        with self.forward_pass(len(texts)):
            encoded = self.task.encode(self.tokenizer, texts, np.zeros(len(texts), dtype=np.int64),
                                       max_length=self.suite.model.max_length)
            return self.task.predict(self.model, encoded, batch_size=self.suite.evaluation.batch_size)

    logits_of = outputs_of  # a classifier's outputs are its logits

    def predict_texts(self, texts: list[str]) -> np.ndarray:
        """Class probabilities of arbitrary texts."""
        return softmax(self.logits_of(texts).astype(np.float64), axis=1)

    def add_examples(self, kind: ExampleKind, texts: list[str], variants: list[str], labels: np.ndarray,
                     proba: np.ndarray, variant_proba: np.ndarray, order: np.ndarray, *,
                     op: str | None = None, severity: float | None = None,
                     limit: int = EXAMPLES_PER_KIND) -> None:
        """Keep up to ``limit`` inputs, in ``order``, with their variant and both predictions."""
        if self.checkpoint != "final":
            return
        for i in list(order)[:limit]:
            self.examples.append(ExampleRow(
                kind=kind, op=op, severity=severity, text=texts[i], variant=variants[i],
                label=int(labels[i]), pred=int(proba[i].argmax()), confidence=float(proba[i].max()),
                variant_pred=int(variant_proba[i].argmax()),
                variant_confidence=float(variant_proba[i].max())))

    def test_subsample(self, size: int) -> np.ndarray:
        """A fixed subsample of test positions (the same for every cell of a run)."""
        n = len(self.data.test)
        if size >= n:
            return np.arange(n)
        return np.sort(np.random.default_rng(self.suite.data.seed).permutation(n)[:size])

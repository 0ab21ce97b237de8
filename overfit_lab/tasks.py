"""Task types: what is specific to one kind of fine-tuning, behind one interface.

A :class:`TaskType` says how a model of the task is loaded (pretrained, with the head to train;
or already fine-tuned), how a split is encoded and predicted, which metrics a split gets after
each epoch, and which diagnostics of :data:`overfit_lab.diagnostics.checkpoint.DIAGNOSTICS`
apply. The trainer, the checkpoint scorer and the audit call the task; the store, the analysis
and the reports only see the rows it produces, so a new task (a causal language model: token
losses and perplexity per split, LoRA adapters) is a new :class:`TaskType` and its diagnostics'
adapters, and nothing downstream changes.

Today every suite is a sequence-classification task (:data:`SEQUENCE_CLASSIFICATION`);
:func:`task_of` is where a suite's ``model.task`` key will choose another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .suite import Suite

__all__ = ["SEQUENCE_CLASSIFICATION", "TASKS", "TaskType", "task_of"]


@dataclass(frozen=True)
class TaskType:
    """One kind of fine-tuning task.

    Attributes
    ----------
    name : str
        The task's name (the future ``model.task`` value).
    load_pretrained : callable ``(path, label_names, *, trust_remote_code, allow_pickle) -> nn.Module``
        The pretrained model with a fresh head for the task, ready for the ``Trainer``.
    load_finetuned : callable ``(path, *, trust_remote_code, allow_pickle) -> nn.Module``
        An already fine-tuned model of the task, head included (audits).
    encode : callable ``(tokenizer, texts, labels, *, max_length) -> Encoded``
        A split tokenized once.
    predict : callable ``(model, encoded, *, batch_size) -> np.ndarray``
        The model's outputs on an encoded split (logits for a classifier).
    split_metrics : callable ``(labels, outputs) -> dict[str, float]``
        The metrics of a split recorded after every epoch; ``loss`` and ``accuracy`` feed the
        generalization table and the verdict.
    diagnostics : tuple of str
        The diagnostics (names in ``DIAGNOSTICS``) that apply to the task.
    """

    name: str
    load_pretrained: Callable[..., Any]
    load_finetuned: Callable[..., Any]
    encode: Callable[..., Any]
    predict: Callable[..., np.ndarray]
    split_metrics: Callable[[np.ndarray, np.ndarray], dict[str, float]]
    diagnostics: tuple[str, ...]


def _load_pretrained(path: str, label_names: list[str], *, trust_remote_code: bool = False,
                     allow_pickle: bool = False):
    from .models import load_classifier

    return load_classifier(path, label_names, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)


def _load_finetuned(path: str, *, trust_remote_code: bool = False, allow_pickle: bool = False):
    from .models import load_finetuned

    return load_finetuned(path, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)


def _encode(tokenizer, texts, labels, *, max_length: int):
    from .predict import encode

    return encode(tokenizer, texts, labels, max_length=max_length)


def _predict(model, encoded, *, batch_size: int) -> np.ndarray:
    from .predict import predict_logits

    return predict_logits(model, encoded, batch_size=batch_size)


def _split_metrics(labels: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    from .diagnostics.classification import classification_metrics

    return classification_metrics(labels, logits)


SEQUENCE_CLASSIFICATION = TaskType(
    name="sequence-classification",
    load_pretrained=_load_pretrained,
    load_finetuned=_load_finetuned,
    encode=_encode,
    predict=_predict,
    split_metrics=_split_metrics,
    diagnostics=("calibration", "robustness", "bias", "memorization", "drift", "spectral"),
)
"""A text classifier (BERT-style encoder + classification head): cross-entropy, accuracy and
macro-F1 per split, every diagnostic."""

TASKS: dict[str, TaskType] = {SEQUENCE_CLASSIFICATION.name: SEQUENCE_CLASSIFICATION}


def task_of(suite: Suite) -> TaskType:
    """The task type a suite fine-tunes (every suite today: sequence classification)."""
    return SEQUENCE_CLASSIFICATION

"""Task types: what is specific to one kind of fine-tuning, behind one interface.

A :class:`TaskType` says how a model of the task is loaded (pretrained, with the head to train;
or already fine-tuned), how a split is encoded and predicted, what the ``Trainer`` trains on,
which metrics a split gets after each epoch, and which diagnostics apply (and why the others do
not). The trainer, the checkpoint scorer and the audit call the task; the store, the analysis
and the reports only see the rows it produces.

Two tasks, chosen by a suite's ``[task] type`` (:func:`task_of`):

* :data:`SEQUENCE_CLASSIFICATION` (the default): an encoder with a classification head;
  cross-entropy, accuracy and macro-F1 per split; every diagnostic.
* :data:`CAUSAL_LM`: a causal language model on documents; per split the token-level loss,
  perplexity and next-token accuracy (:mod:`overfit_lab.diagnostics.language`), so the
  generalization table, the verdict and the checks read a causal LM as they read a classifier;
  memorization (membership on sequence losses, extraction), robustness (perplexity under
  perturbations), forgetting, drift and spectra.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .suite import Suite

__all__ = ["CAUSAL_LM", "SEQUENCE_CLASSIFICATION", "TASKS", "TaskType", "task_of"]


@dataclass(frozen=True)
class TaskType:
    """One kind of fine-tuning task.

    Attributes
    ----------
    name : str
        The task's name, a ``[task] type`` value.
    load_pretrained : callable ``(path, label_names, *, trust_remote_code, allow_pickle) -> nn.Module``
        The pretrained model with what the task trains on top (a fresh head for a classifier),
        ready for the ``Trainer``; also the reference drift and forgetting compare with.
    load_finetuned : callable ``(path, *, trust_remote_code, allow_pickle) -> nn.Module``
        An already fine-tuned model of the task, head included (audits).
    encode : callable ``(tokenizer, texts, labels, *, max_length) -> Encoded``
        A split tokenized once (a causal LM: one sequence per document).
    predict : callable ``(model, encoded, *, batch_size) -> np.ndarray``
        The model's outputs on an encoded split: logits for a classifier, per-sequence
        next-token statistics for a causal LM (:data:`overfit_lab.predict.TOKEN_STATISTICS`).
    split_metrics : callable ``(labels, outputs) -> dict[str, float]``
        The metrics of a split recorded after every epoch; ``loss`` and ``accuracy`` feed the
        generalization table and the verdict.
    training_data : callable ``(encoded, tokenizer, suite) -> (Dataset, collator)``
        What the ``Trainer`` trains on, from the encoded training subset.
    diagnostics : tuple of str
        The diagnostics that apply (names of ``[diagnostics]`` sections); their adapters are
        ``overfit_lab.diagnostics.registry.ADAPTERS[name]``.
    skipped : dict
        The diagnostics that do not apply to the task, and why (shown in the reports).
    auto_class : str
        The transformers auto class of the task's models (the model checks look up its types).
    peft_task : str
        The ``peft.TaskType`` name of the task's LoRA adapters.
    compared : (str, str)
        The scores the reports rank strategies by and compare them on: the quality on test data,
        then the generalization gap.
    summary : tuple of str
        The generalization scores of the terminal summary.
    """

    name: str
    load_pretrained: Callable[..., Any]
    load_finetuned: Callable[..., Any]
    encode: Callable[..., Any]
    predict: Callable[..., np.ndarray]
    split_metrics: Callable[[np.ndarray, np.ndarray], dict[str, float]]
    training_data: Callable[..., tuple]
    diagnostics: tuple[str, ...]
    auto_class: str
    peft_task: str
    compared: tuple[str, str]
    summary: tuple[str, ...]
    skipped: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- sequence classification
def _load_classifier(path: str, label_names: list[str], *, trust_remote_code: bool = False,
                     allow_pickle: bool = False):
    from .models import load_classifier

    return load_classifier(path, label_names, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)


def _load_finetuned_classifier(path: str, *, trust_remote_code: bool = False, allow_pickle: bool = False):
    from .models import load_finetuned

    return load_finetuned(path, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)


def _encode_texts(tokenizer, texts, labels, *, max_length: int):
    from .predict import encode

    return encode(tokenizer, texts, labels, max_length=max_length)


def _predict_logits(model, encoded, *, batch_size: int) -> np.ndarray:
    from .predict import predict_logits

    return predict_logits(model, encoded, batch_size=batch_size)


def _classification_metrics(labels: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    from .diagnostics.classification import classification_metrics

    return classification_metrics(labels, logits)


def _classifier_training_data(encoded, tokenizer, suite: Suite) -> tuple:
    from transformers import DataCollatorWithPadding

    from .batching import TokenDataset

    return TokenDataset(encoded), DataCollatorWithPadding(tokenizer)


SEQUENCE_CLASSIFICATION = TaskType(
    name="sequence-classification",
    load_pretrained=_load_classifier,
    load_finetuned=_load_finetuned_classifier,
    encode=_encode_texts,
    predict=_predict_logits,
    split_metrics=_classification_metrics,
    training_data=_classifier_training_data,
    diagnostics=("calibration", "robustness", "bias", "memorization", "drift", "spectral", "slices", "labels",
                 "cartography"),
    auto_class="AutoModelForSequenceClassification",
    peft_task="SEQ_CLS",
    compared=("test_accuracy", "gap_accuracy"),
    summary=("validation_accuracy", "test_accuracy", "gap_accuracy", "gap_loss"),
)
"""A text classifier (BERT-style encoder + classification head): cross-entropy, accuracy and
macro-F1 per split; every diagnostic but forgetting (a causal LM's)."""


# --------------------------------------------------------------------------- causal language models
def _load_causal_lm(path: str, label_names: list[str] | None = None, *, trust_remote_code: bool = False,
                    allow_pickle: bool = False):
    from .models import load_causal_lm

    return load_causal_lm(path, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)


def _load_finetuned_causal_lm(path: str, *, trust_remote_code: bool = False, allow_pickle: bool = False):
    from .models import load_causal_lm

    return load_causal_lm(path, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle,
                          key="--model").eval()


def _encode_documents(tokenizer, texts, labels, *, max_length: int):
    from .predict import encode_documents

    return encode_documents(tokenizer, texts, labels, max_length=max_length)


def _predict_token_statistics(model, encoded, *, batch_size: int) -> np.ndarray:
    from .predict import predict_token_statistics

    return predict_token_statistics(model, encoded, batch_size=batch_size)


def _language_model_metrics(labels: np.ndarray, statistics: np.ndarray) -> dict[str, float]:
    from .diagnostics.language import language_model_metrics

    return language_model_metrics(labels, statistics)


def _causal_lm_training_data(encoded, tokenizer, suite: Suite) -> tuple:
    from .batching import CausalLMCollator, SequenceDataset
    from .predict import pack_documents

    if suite.task.sequences == "pack":
        encoded = pack_documents(encoded, max_length=suite.model.max_length)
    return SequenceDataset(encoded), CausalLMCollator(encoded.pad_token_id)


CAUSAL_LM = TaskType(
    name="causal-lm",
    load_pretrained=_load_causal_lm,
    load_finetuned=_load_finetuned_causal_lm,
    encode=_encode_documents,
    predict=_predict_token_statistics,
    split_metrics=_language_model_metrics,
    training_data=_causal_lm_training_data,
    diagnostics=("memorization", "robustness", "forgetting", "drift", "spectral", "slices"),
    auto_class="AutoModelForCausalLM",
    peft_task="CAUSAL_LM",
    compared=("test_perplexity", "perplexity_ratio"),
    summary=("validation_perplexity", "test_perplexity", "perplexity_ratio", "gap_accuracy"),
    skipped={"calibration": "class-probability calibration needs class labels; a language model has none",
             "bias": "subgroup rates and bias amplification are over label classes; a language model "
                     "has none",
             "labels": "label shift and class collapse are over label classes; a language model has none",
             "cartography": "the data map follows the probability of each example's label; a language "
                            "model's documents have none"},
)
"""A causal language model (GPT-2- or Llama-style) fine-tuned on documents: token-level loss,
perplexity and next-token accuracy per split."""

TASKS: dict[str, TaskType] = {task.name: task for task in (SEQUENCE_CLASSIFICATION, CAUSAL_LM)}


def task_of(suite: Suite) -> TaskType:
    """The task type a suite fine-tunes (its ``[task] type``)."""
    return TASKS[suite.task.type]

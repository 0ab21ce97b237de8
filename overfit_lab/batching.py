"""Training batches: the datasets and collators a task's ``Trainer`` reads.

A classifier trains on token ids with their label (:class:`TokenDataset`, padded by
transformers' ``DataCollatorWithPadding``); a causal LM on token sequences that are their own
targets (:class:`SequenceDataset`, :class:`CausalLMCollator`: every real token is a target,
padding is not). :func:`overfit_lab.tasks.TaskType.training_data` picks them.
"""

from __future__ import annotations

import torch

from .predict import Encoded, pad_batch

__all__ = ["IGNORE_INDEX", "CausalLMCollator", "SequenceDataset", "TokenDataset"]

IGNORE_INDEX = -100
"""The label transformers' losses skip."""


class TokenDataset(torch.utils.data.Dataset):
    """Encoded texts with their class labels."""

    def __init__(self, encoded: Encoded):
        self.encoded = encoded

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, i: int) -> dict:
        ids = self.encoded.input_ids[i]
        return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": int(self.encoded.labels[i])}


class SequenceDataset(torch.utils.data.Dataset):
    """Token sequences of a causal LM (documents or packed blocks)."""

    def __init__(self, encoded: Encoded):
        self.encoded = encoded

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.encoded.input_ids[i]}


class CausalLMCollator:
    """Right-pads a batch of sequences; the labels are the input ids with padding set to
    :data:`IGNORE_INDEX` (the model shifts them by one position itself). Unlike transformers'
    ``DataCollatorForLanguageModeling``, a padding token that is also the end-of-text token
    stays a target where it is real."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        batch = pad_batch([f["input_ids"] for f in features], self.pad_token_id)
        labels = batch["input_ids"].clone()
        labels[batch["attention_mask"] == 0] = IGNORE_INDEX
        batch["labels"] = labels
        return batch

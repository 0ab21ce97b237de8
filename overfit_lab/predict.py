"""Fast batched prediction: tokenize once, length-sorted batches, ``torch.inference_mode``.

Per-epoch evaluation dominates a small cell's wall time, so every evaluation in overfit-lab
goes through :func:`predict_logits`: sorting by length cuts padding (1.5x on MiniLM here) and
no DataLoader is created, so evaluation never draws from the global RNG.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class Encoded:
    """Token ids of a list of texts, unpadded, with their labels and a length-sorted order."""

    input_ids: list[list[int]]
    labels: np.ndarray
    pad_token_id: int

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def __len__(self) -> int:
        return len(self.input_ids)


def encode(tokenizer, texts: list[str], labels, *, max_length: int) -> Encoded:
    """Tokenize ``texts`` once (truncated to ``max_length``)."""
    ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return Encoded(input_ids=ids, labels=np.asarray(labels, dtype=np.int64), pad_token_id=pad)


def pad_batch(sequences: list[list[int]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-pad token id lists to the longest one, with the attention mask."""
    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        input_ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        attention_mask[row, : len(seq)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def predict_logits(model: nn.Module, data: Encoded, *, batch_size: int = 64) -> np.ndarray:
    """Logits for every example of ``data``, in the original order.

    The model is put in eval mode for the pass and returned to its previous mode.
    """
    if len(data) == 0:
        return np.zeros((0, model.config.num_labels), dtype=np.float32)
    order = np.argsort(data.lengths, kind="stable")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    chunks = []
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = pad_batch([data.input_ids[i] for i in idx], data.pad_token_id)
                batch = {k: v.to(device) for k, v in batch.items()}
                chunks.append(model(**batch).logits.float().cpu())
    finally:
        model.train(was_training)
    logits = torch.cat(chunks).numpy()
    out = np.empty_like(logits)
    out[order] = logits
    return out

"""Frozen-layer caching: the frozen bottom of the encoder runs once, the rest trains on its outputs.

A strategy's ``freeze`` with ``dropout = false`` keeps the frozen modules in eval mode
(:func:`overfit_lab.models.freeze`), so the outputs of the embeddings and layers ``0..k-1`` are a
fixed function of the token ids. When the embeddings are frozen and the strategy has no text
augmentation, the trainer (:mod:`overfit_lab.training`) computes those outputs once (eval mode,
``torch.inference_mode``, length-sorted batches) and trains and scores :class:`FrozenSuffix`
(layers ``k..``, pooler, classifier head) on them, per-epoch evaluation included. The suffix
shares its modules with the full model, which the diagnostics keep using for new or perturbed
texts and whose ``state_dict`` the checkpoints are. The suffix draws the same random numbers in
the same order as the full model in train mode (dropout in layers ``k..`` and the head; frozen
modules in eval mode draw none), so cached and uncached runs agree to float rounding.

The cache lives in this process, at most :data:`MAX_ENTRIES` entries (least recently used goes
first), each keyed by the model (path, weight files' size and time, device, dtype, attention
implementation), ``k`` and the token ids of the rows computed: the grid's largest training subset
(the others are nested in it), validation and test. Cells of other seeds, sizes, label noise or
strategies with the same ``k`` reuse an entry. Each example is kept unpadded, a float32
``(length, hidden)`` CPU tensor (``4 * hidden`` bytes a token), and padded per batch.

Supported: ``BertForSequenceClassification`` over transformers' ``BertModel`` (an encoder, BERT
and MiniLM checkpoints) with transformers 5's masks; other models train uncached, frozen modules
still in eval mode, the reason in the cell's info (``frozen_cache_reason``).

``ENABLED = False`` here, or the environment variable ``OVERFIT_LAB_FROZEN_CACHE=0``, forces the
uncached path (same semantics, slower): the escape hatch and the reference the tests compare with.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import os
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from .predict import Encoded, pad_batch

if TYPE_CHECKING:
    from transformers import TrainingArguments

    from .suite import StrategySpec

__all__ = ["ENABLED", "MAX_ENTRIES", "CachedSplits", "FeatureDataset", "FrozenSuffix", "cell_features",
           "clear", "collate", "enabled", "refusal", "unsupported"]

ENABLED = True
MAX_ENTRIES = 4


def enabled() -> bool:
    """Whether caching is on (:data:`ENABLED` and ``OVERFIT_LAB_FROZEN_CACHE`` not ``0``)."""
    switch = os.environ.get("OVERFIT_LAB_FROZEN_CACHE", "1").strip().lower()
    return ENABLED and switch not in ("0", "false", "no", "off")


def clear() -> None:
    """Drop every cached entry of this process."""
    _CACHE.clear()


def unsupported(model: nn.Module) -> str | None:
    """Why ``model``'s frozen prefix cannot be cached, or ``None`` when it can."""
    from transformers import BertForSequenceClassification, BertModel

    if type(model) is not BertForSequenceClassification or type(model.base_model) is not BertModel:
        return f"not cached for {type(model).__name__}: BertForSequenceClassification only"
    try:
        from transformers.masking_utils import create_bidirectional_mask  # noqa: F401 - transformers 5
    except ImportError:
        return "not cached with this transformers version (needs create_bidirectional_mask)"
    config = model.config
    if config.is_decoder or config.add_cross_attention or model.base_model.pooler is None:
        return "not cached for a BERT decoder or a BERT without pooler"
    if config.num_labels < 2 or config.problem_type not in (None, "single_label_classification"):
        return "not cached for regression or multi-label heads"
    return None


def refusal(model: nn.Module, spec: StrategySpec, args: TrainingArguments) -> str | None:
    """Why a cell with strategy ``spec`` and ``TrainingArguments`` ``args`` trains uncached.

    ``None`` when it trains on cached outputs of its frozen prefix.
    """
    freeze = spec.freeze
    if freeze is None or (not freeze.embeddings and freeze.layers == 0):
        return "nothing is frozen"
    if freeze.dropout:
        return "freeze.dropout is true: dropout acts inside the frozen layers"
    if spec.lora is not None:
        return "LoRA adapters act inside the frozen layers"
    if not freeze.embeddings:
        return "the embeddings are not frozen"
    if spec.augment is not None:
        return "text augmentation changes the inputs every epoch"
    if args.gradient_checkpointing:
        return "not cached with gradient_checkpointing"
    if not enabled():
        return "switched off (OVERFIT_LAB_FROZEN_CACHE=0 or frozen.ENABLED)"
    return unsupported(model)


# --------------------------------------------------------------------------- the model's two parts
def _attention_mask(config, hidden: torch.Tensor, mask: torch.Tensor):
    from transformers.masking_utils import create_bidirectional_mask

    return create_bidirectional_mask(config=config, inputs_embeds=hidden, attention_mask=mask)


def _accepts_loss_kwargs(model: nn.Module) -> bool:
    """What ``Trainer`` decides for ``model`` (it then passes ``num_items_in_batch``)."""
    if hasattr(model, "accepts_loss_kwargs"):
        return bool(model.accepts_loss_kwargs)
    parameters = inspect.signature(model.forward).parameters.values()
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


class FrozenSuffix(nn.Module):
    """Layers ``layers..``, pooler and head of a ``BertForSequenceClassification``, on the outputs
    of its frozen prefix; its modules are the model's own (shared, not copied).

    ``forward`` returns a ``SequenceClassifierOutput`` with the plain cross-entropy ``loss`` (when
    ``labels`` are given) and ``logits``, as the full model does.
    """

    def __init__(self, model: nn.Module, layers: int):
        super().__init__()
        base = model.base_model
        self.config = model.config  # Trainer reads it (label smoothing, use_cache)
        self.accepts_loss_kwargs = _accepts_loss_kwargs(model)
        # registered in the full model's order, so the optimizer sees its parameters in that order
        self.layers = nn.ModuleList(base.encoder.layer[layers:])
        self.pooler = base.pooler
        self.dropout = model.dropout
        self.classifier = model.classifier

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor | None = None, **kwargs):
        from transformers.modeling_outputs import SequenceClassifierOutput

        mask = _attention_mask(self.config, hidden_states, attention_mask)
        for layer in self.layers:
            hidden_states = layer(hidden_states, mask)
        logits = self.classifier(self.dropout(self.pooler(hidden_states)))
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.view(-1, self.config.num_labels), labels.view(-1))
        return SequenceClassifierOutput(loss=loss, logits=logits)


@contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    """Every submodule in eval mode, each one's own mode restored after."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


def _prefix_pass(model: nn.Module, layers: int, data: Encoded, *, batch_size: int) -> list[torch.Tensor]:
    """The frozen prefix's output of every example of ``data``, unpadded, float32 on the CPU."""
    base = model.base_model
    device = next(model.parameters()).device
    lengths = data.lengths
    order = np.argsort(lengths, kind="stable")
    out: list[torch.Tensor | None] = [None] * len(data)
    with _eval_mode(model):
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = {k: v.to(device) for k, v in pad_batch([data.input_ids[i] for i in idx],
                                                          data.pad_token_id).items()}
            with torch.inference_mode():
                hidden = base.embeddings(input_ids=batch["input_ids"])
                mask = _attention_mask(base.config, hidden, batch["attention_mask"])
                for layer in base.encoder.layer[:layers]:
                    hidden = layer(hidden, mask)
                hidden = hidden.float().cpu()
            for row, i in enumerate(idx):  # cloned outside inference mode: usable in autograd
                out[i] = hidden[row, : lengths[i]].clone()
    return out


# --------------------------------------------------------------------------- the cache
@dataclass
class _Entry:
    positions: dict[int, int]  # training-pool position -> index into splits["train"]
    splits: dict[str, list[torch.Tensor]]


_CACHE: OrderedDict[str, _Entry] = OrderedDict()


def _weights_stamp(path: str) -> list[tuple]:
    folder = Path(path)
    if not folder.is_dir():
        return []
    return sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in folder.iterdir()
                  if f.suffix in (".safetensors", ".bin"))


def _key(model: nn.Module, model_path: str, layers: int, token_ids: dict[str, list[list[int]]]) -> str:
    param = next(model.parameters())
    facts = (model_path, _weights_stamp(model_path), layers, str(param.device), str(param.dtype),
             getattr(model.config, "_attn_implementation", None))
    digest = hashlib.sha256(repr(facts).encode())
    for name, seqs in token_ids.items():
        digest.update(name.encode())
        digest.update(np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs)).tobytes())
        digest.update(np.fromiter(itertools.chain.from_iterable(seqs), dtype=np.int64).tobytes())
    return digest.hexdigest()


def _subset(data: Encoded, positions: np.ndarray) -> Encoded:
    return Encoded(input_ids=[data.input_ids[i] for i in positions], labels=data.labels[positions],
                   pad_token_id=data.pad_token_id)


@dataclass(frozen=True)
class CachedSplits:
    """A cell's cached prefix outputs: ``"train"`` (its subset, in its order), validation, test."""

    layers: int
    features: dict[str, list[torch.Tensor]]
    batch_size: int

    def logits(self, model: nn.Module, split: str) -> np.ndarray:
        """Clean logits of ``split`` through ``model``'s suffix, in the split's order (as
        :func:`overfit_lab.predict.predict_logits` gives them through the whole model)."""
        suffix = FrozenSuffix(model, self.layers)
        features = self.features[split]
        if not features:
            return np.zeros((0, model.config.num_labels), dtype=np.float32)
        order = np.argsort([len(f) for f in features], kind="stable")
        device = next(suffix.parameters()).device
        chunks = []
        with _eval_mode(suffix), torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                batch = collate([{"hidden_states": features[i]} for i in idx])
                batch = {k: v.to(device) for k, v in batch.items()}
                chunks.append(suffix(**batch).logits.float().cpu())
        logits = torch.cat(chunks).numpy()
        out = np.empty_like(logits)
        out[order] = logits
        return out


def cell_features(model: nn.Module, *, model_path: str, layers: int, pool: Encoded, positions: np.ndarray,
                  used: np.ndarray, held_out: dict[str, Encoded],
                  batch_size: int) -> tuple[CachedSplits, float]:
    """The prefix outputs a cell trains and is scored on, from the cache or computed into it.

    Parameters
    ----------
    model : nn.Module
        The cell's model, frozen, on its training device (:func:`unsupported` gives ``None``).
    model_path : str
        Where the model was loaded from (part of the key).
    layers : int
        The number of frozen encoder layers ``k``.
    pool : Encoded
        The encoded training pool.
    positions : ndarray of int
        The cell's training rows (positions into ``pool``), in the cell's order.
    used : ndarray of int
        The pool rows any cell of the grid trains on (its largest subset), computed together.
    held_out : dict of str to Encoded
        The validation and test splits.
    batch_size : int
        Examples per batch of the prefix pass and the scoring.

    Returns
    -------
    tuple of (CachedSplits, float)
        The cell's splits, and the seconds spent computing them (0 when they were cached).
    """
    rows = np.union1d(used, positions)  # sorted: the same rows, in the same order, for every cell
    parts = {"train": _subset(pool, rows), **held_out}
    key = _key(model, model_path, layers, {name: data.input_ids for name, data in parts.items()})
    started = time.perf_counter()
    entry = _CACHE.get(key)
    seconds = 0.0
    if entry is None:
        entry = _Entry(positions={int(p): i for i, p in enumerate(rows)},
                       splits={name: _prefix_pass(model, layers, data, batch_size=batch_size)
                               for name, data in parts.items()})
        _CACHE[key] = entry
        while len(_CACHE) > MAX_ENTRIES:
            _CACHE.popitem(last=False)
        seconds = time.perf_counter() - started
    _CACHE.move_to_end(key)
    train = [entry.splits["train"][entry.positions[int(p)]] for p in positions]
    features = {"train": train, **{name: entry.splits[name] for name in held_out}}
    return CachedSplits(layers=layers, features=features, batch_size=batch_size), seconds


# --------------------------------------------------------------------------- training inputs
class FeatureDataset(torch.utils.data.Dataset):
    """Training examples as cached prefix outputs; ``input_ids`` stay for ``group_by_length``."""

    def __init__(self, features: list[torch.Tensor], encoded: Encoded):
        self.features, self.encoded = features, encoded

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict:
        return {"hidden_states": self.features[i], "input_ids": self.encoded.input_ids[i],
                "labels": int(self.encoded.labels[i])}


def collate(features: list[dict]) -> dict[str, torch.Tensor]:
    """Right-pad prefix outputs to the longest (the width ``DataCollatorWithPadding`` gives the
    token ids, so dropout draws the same shapes), with the attention mask and labels."""
    hidden = [f["hidden_states"] for f in features]
    lengths = torch.tensor([len(h) for h in hidden])
    padded = pad_sequence(hidden, batch_first=True)
    batch = {"hidden_states": padded,
             "attention_mask": (torch.arange(padded.shape[1])[None, :] < lengths[:, None]).long()}
    if "labels" in features[0]:
        batch["labels"] = torch.tensor([f["labels"] for f in features], dtype=torch.long)
    return batch

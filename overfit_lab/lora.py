"""LoRA adapters through ``peft``: wrap a model for training, merge it back for diagnostics.

With LoRA (Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", ICLR 2022) every
pretrained weight stays frozen and each target module ``W`` gets a trained low-rank update:
``W' = W + (alpha / r) B A`` with ``A`` (r x in) and ``B`` (out x r), ``B`` starting at zero so
training starts from the pretrained model. A classifier's fresh head is trained in full beside
the adapters (peft's ``modules_to_save``).

Drift and the weight spectra read the merged weights ``W'`` (:func:`merged`), so a LoRA cell
is compared with the pretrained model as a fully fine-tuned one is.
"""

from __future__ import annotations

import copy
import warnings

from torch import nn

from .errors import OverfitLabError
from .suite import LoraSpec

__all__ = ["add_adapters", "is_adapted", "merged"]


def add_adapters(model: nn.Module, spec: LoraSpec, *, peft_task: str) -> nn.Module:
    """``model`` wrapped with LoRA adapters as ``spec`` says (a ``peft.PeftModel``); only the
    adapters (and a classifier's head) are trainable.

    ``peft_task`` is the ``peft.TaskType`` name (``"SEQ_CLS"``, ``"CAUSAL_LM"``). Seed the global
    RNG first: the ``A`` matrices' initial values come from it.
    """
    try:
        from peft import LoraConfig, TaskType, get_peft_model
    except ImportError:
        raise OverfitLabError("LoRA strategies need the peft package.", key="strategies.lora",
                              fix="pip install 'overfit-lab[lora]' (or pip install peft).") from None
    config = LoraConfig(task_type=TaskType[peft_task], r=spec.r, lora_alpha=spec.alpha,
                        lora_dropout=spec.dropout, target_modules=spec.target_modules)
    try:
        with warnings.catch_warnings():
            # peft sets fan_in_fan_out itself for GPT-2's Conv1D, and calls a deprecated transformers
            # method: neither is the user's to act on
            warnings.filterwarnings("ignore", message=".*fan_in_fan_out.*")
            warnings.filterwarnings("ignore", category=FutureWarning)
            return get_peft_model(model, config)
    except ValueError as exc:  # an unknown model type without target_modules, or modules not found
        raise OverfitLabError(f"cannot add LoRA adapters to {type(model).__name__}: {exc}",
                              key="strategies.lora.target_modules",
                              fix="name the model's attention projections, e.g. target_modules = "
                                  "[\"q_proj\", \"v_proj\"].") from None


def is_adapted(model: nn.Module) -> bool:
    """Whether ``model`` carries peft adapters."""
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model, PeftModel)


def merged(model: nn.Module) -> nn.Module:
    """``model`` itself, or for a model with adapters a copy with them merged into its weights
    (``W + (alpha / r) B A``; the copy's outputs equal the adapted model's up to float rounding)."""
    if not is_adapted(model):
        return model
    copied = copy.deepcopy(model)
    return copied.merge_and_unload()

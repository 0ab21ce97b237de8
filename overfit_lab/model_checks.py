"""Up-front checks of a model directory, before a run creates anything.

A model that cannot be used should stop the command with one line, not fail inside every cell
after the run directory and the progress display exist. :func:`check_model` checks, in order:
the config loads, the weights are safetensors (pickle files only with ``allow_pickle``, since
unpickling can run code), a tokenizer loads, and the architecture has the layers the
strategies freeze and a head for the task. :func:`check_suite_model` applies it to a suite.
"""

from __future__ import annotations

from pathlib import Path

from .errors import OverfitLabError
from .models import load_tokenizer, resolve_model_path
from .suite import Suite

__all__ = ["check_model", "check_suite_model"]

PICKLE_PATTERNS = ("pytorch_model*.bin", "*.pt", "*.pth", "*.ckpt")
# a vocabulary in one of these; without one, transformers 5 builds a tokenizer of special tokens only
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model",
                   "tokenizer.model", "vocab.model")


def check_suite_model(suite: Suite, *, source: str | Path = "<suite>") -> str:
    """Check the suite's model against what its strategies need; returns the model's path."""
    from .strategies import resolve_strategies

    strategies = resolve_strategies(suite, source=source)
    frozen = [(spec.freeze.layers, name) for name, spec in strategies.items() if spec.freeze is not None]
    deepest = max(frozen, default=(0, None))
    spec = suite.model
    path = check_model(spec.name, source=source, trust_remote_code=spec.trust_remote_code,
                       allow_pickle=spec.allow_pickle, freeze_layers=deepest[0],
                       freeze_key=f"strategies.{deepest[1]}.freeze.layers", max_length=spec.max_length,
                       task=suite.task.type)
    lora = [name for name, spec in strategies.items() if spec.lora is not None]
    if lora:
        _check_lora(path, [name for name in lora if strategies[name].lora.target_modules is None],
                    lora[0], source=source, trust_remote_code=spec.trust_remote_code)
    return path


def _check_lora(path: str, defaulted: list[str], first: str, *, source, trust_remote_code: bool) -> None:
    """peft is installed, and knows default target modules for the model type when a LoRA
    strategy names none."""
    try:
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as defaults
    except ImportError:
        raise OverfitLabError("LoRA strategies need the peft package.", file=source,
                              key=f"strategies.{first}.lora",
                              fix="pip install 'overfit-lab[lora]' (or pip install peft).") from None
    if not defaulted or not Path(path).is_dir():
        return
    config = _config(Path(path), source=source, key="model.name", trust_remote_code=trust_remote_code)
    if config.model_type not in defaults:
        raise OverfitLabError(f"peft has no default LoRA target modules for model type "
                              f"'{config.model_type}'.",
                              file=source, key=f"strategies.{defaulted[0]}.lora.target_modules",
                              fix="name the model's attention projections, e.g. target_modules = "
                                  "[\"q_proj\", \"v_proj\"].")


def check_model(name: str, *, source: str | Path | None = None, key: str = "model.name",
                trust_remote_code: bool = False, allow_pickle: bool = False, freeze_layers: int = 0,
                freeze_key: str = "strategies.freeze.layers", finetuned: bool = False,
                max_length: int | None = None, max_length_key: str = "model.max_length",
                task: str = "sequence-classification") -> str:
    """Check that model ``name`` can be fine-tuned for ``task`` (a ``[task] type``); returns its path.

    Raises :class:`~overfit_lab.errors.OverfitLabError` naming ``source`` and ``key`` when the
    config does not load, there are no safetensors weights (unless ``allow_pickle`` and pickle
    weights exist), no tokenizer loads, the model has fewer than ``freeze_layers`` layers or
    fewer positions than ``max_length`` tokens, or
    transformers has no head of the task for its type (sequence classification, causal LM).
    ``finetuned``: the model is used with its own head (an audit), which the conversion command
    keeps. A hub id (downloads allowed) is checked when it is loaded.
    """
    path = resolve_model_path(name, source=source, key=key)
    directory = Path(path)
    if not directory.is_dir():
        return path
    from .tasks import TASKS

    auto_class = TASKS[task].auto_class
    config = _config(directory, source=source, key=key, trust_remote_code=trust_remote_code)
    _check_weights(directory, source=source, key=key, allow_pickle=allow_pickle,
                   loader=auto_class if finetuned or task == "causal-lm" else "AutoModel")
    _check_tokenizer(directory, source=source, key=key, trust_remote_code=trust_remote_code)
    layers = getattr(config, "num_hidden_layers", None)
    if isinstance(layers, int) and freeze_layers > layers:
        raise OverfitLabError(f"cannot freeze {freeze_layers} layers: the model in {directory} has {layers}.",
                              file=source, key=freeze_key, fix=f"freeze at most {layers} layers.")
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and max_length is not None and max_length > positions:
        raise OverfitLabError(f"max_length {max_length} is more than the {positions} positions of the model "
                              f"in {directory}.", file=source, key=max_length_key,
                              fix=f"use at most {positions}.")
    if not trust_remote_code:
        import transformers

        head, fix = HEADS[task]
        if type(config) not in getattr(transformers, auto_class)._model_mapping:
            raise OverfitLabError(f"transformers has no {head} head for model type '{config.model_type}' "
                                  f"({directory}).", file=source, key=key, fix=fix)
        # BERT-style encoders have a causal-LM class too, but attend both ways unless built as decoders
        if (task == "causal-lm" and not getattr(config, "is_decoder", False)
                and type(config) in transformers.AutoModelForMaskedLM._model_mapping):
            raise OverfitLabError(f"the model in {directory} ('{config.model_type}') is a bidirectional "
                                  "encoder: as a causal language model it would see the tokens it predicts.",
                                  file=source, key=key, fix=fix)
    return path


HEADS = {
    "sequence-classification": ("sequence-classification", "use an encoder model such as BERT, RoBERTa or "
                                "MiniLM, or set [task] type = \"causal-lm\" for a language model."),
    "causal-lm": ("causal language-model", "use a decoder model such as GPT-2 or Llama (e.g. model.name = "
                  "\"smollm2\"), or remove [task] type for a classifier."),
}
"""Per task: what its head is called, and the fix when a model type has none."""


def _config(directory: Path, *, source, key: str, trust_remote_code: bool):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(directory), trust_remote_code=trust_remote_code)
    except Exception as exc:  # noqa: BLE001 - json, value and key errors all mean a bad config
        raise OverfitLabError(f"the config.json in {directory} does not load ({type(exc).__name__}: "
                              f"{_brief(exc)}).", file=source, key=key,
                              fix="give a directory saved with save_pretrained().") from None


def _check_weights(directory: Path, *, source, key: str, allow_pickle: bool, loader: str) -> None:
    if any(directory.glob("*.safetensors")):
        return
    pickles = sorted(p.name for pattern in PICKLE_PATTERNS for p in directory.glob(pattern))
    if not pickles:
        raise OverfitLabError(f"no model weights in {directory} (no *.safetensors file).", file=source,
                              key=key, fix="save the model there with save_pretrained().")
    if not allow_pickle:
        raise OverfitLabError(
            f"no safetensors weights in {directory}, only pickle files ({', '.join(pickles)}), which can "
            "run code when loaded.", file=source, key=key,
            fix=f"convert them with: python -c \"from transformers import {loader}; "
                f"{loader}.from_pretrained('{directory}').save_pretrained('{directory}')\" "
                "(safetensors is the default format), or set model.allow_pickle = true if you trust "
                "the file.")


def _check_tokenizer(directory: Path, *, source, key: str, trust_remote_code: bool) -> None:
    fix = f"save the tokenizer there with tokenizer.save_pretrained('{directory}')."
    if not any((directory / name).is_file() for name in TOKENIZER_FILES):
        raise OverfitLabError(f"no tokenizer in {directory} (none of {', '.join(TOKENIZER_FILES)}).",
                              file=source, key=key, fix=fix)
    try:
        load_tokenizer(str(directory), trust_remote_code=trust_remote_code)
    except OverfitLabError as exc:
        raise OverfitLabError(f"the tokenizer in {directory} does not load ({_brief(exc.message)}).",
                              file=source, key=key, fix=fix) from None


def _brief(exc: Exception | str, limit: int = 200) -> str:
    """The exception's message on one line, cut to ``limit`` characters."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

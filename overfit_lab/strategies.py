"""Regularization strategies: named sets of overrides to the base recipe and the model.

A strategy may set ``weight_decay``, ``dropout`` (hidden, attention, classifier),
``early_stopping`` (patience, threshold, metric), ``label_smoothing``, ``freeze`` (embeddings
plus the bottom k encoder layers), ``augment`` (text operations with rates), ``lora`` (low-rank
adapters through peft), and any other
``TrainingArguments`` field under ``recipe``. ``combine = ["a", "b"]`` merges other strategies
first (later ones win), so combinations stay one line.

The built-in library below can be used by name in any suite, and ``lora_r<N>`` names LoRA of
rank N (alpha 2N) for any N; a suite's ``[strategies.NAME]`` table defines new ones or replaces a
built-in one.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import tempfile
import typing
from pathlib import Path
from typing import Any

from .errors import OverfitLabError
from .suite.schema import (
    AugmentSpec,
    DropoutSpec,
    EarlyStoppingSpec,
    FreezeSpec,
    LoraSpec,
    StrategySpec,
    Suite,
)

# TrainingArguments fields the harness sets itself; a recipe may not override them.
HARNESS_ARGS = {
    "output_dir": "the harness gives each cell its own scratch directory",
    "num_train_epochs": "set grid.epochs instead",
    "max_steps": "set grid.epochs instead",
    "seed": "set grid.seeds instead",
    "data_seed": "set grid.seeds instead",
    "eval_strategy": "the harness evaluates after every epoch",
    "eval_steps": "the harness evaluates after every epoch",
    "save_strategy": "the harness keeps results in its own store",
    "load_best_model_at_end": "use a strategy with early_stopping",
    "metric_for_best_model": "set early_stopping.metric in a strategy",
    "greater_is_better": "set early_stopping.metric in a strategy",
    "label_smoothing_factor": "set label_smoothing in a strategy",
    "report_to": "results go to the run's store",
    "push_to_hub": "the harness never uploads",
    "do_train": "not used by the harness",
    "do_eval": "not used by the harness",
    "resume_from_checkpoint": "use overfit-lab run --resume",
}


def check_recipe(recipe: dict[str, Any], *, source: str | Path, key: str) -> None:
    """Check that ``recipe`` holds only ``TrainingArguments`` fields the user may set."""
    from transformers import TrainingArguments

    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    for name, value in recipe.items():
        if name in HARNESS_ARGS:
            raise OverfitLabError("is set by the harness.", file=source, key=f"{key}.{name}",
                                  fix=f"remove it: {HARNESS_ARGS[name]}.")
        if name not in fields:
            close = difflib.get_close_matches(name, sorted(fields), n=1)
            hint = f"did you mean '{close[0]}'?" if close else "use a transformers.TrainingArguments field."
            raise OverfitLabError(f"'{name}' is not a TrainingArguments field.", file=source,
                                  key=f"{key}.{name}", fix=hint)
        expected = _recipe_types().get(name)
        if expected is not None and not _has_type(expected, value):
            raise OverfitLabError(f"{value!r} is not a valid value: TrainingArguments.{name} takes "
                                  f"{_type_name(expected)}.", file=source, key=f"{key}.{name}",
                                  fix="give a value of that type (numbers unquoted).")


@functools.cache
def _recipe_types() -> dict[str, Any]:
    """Each ``TrainingArguments`` field's declared type; empty if transformers' hints cannot be
    resolved (then only the names are checked, and ``TrainingArguments`` itself checks values)."""
    from transformers import TrainingArguments

    try:
        return typing.get_type_hints(TrainingArguments)
    except Exception:  # noqa: BLE001 - a newer transformers' hint we cannot resolve
        return {}


@functools.cache
def _adapter(expected: Any):
    from pydantic import TypeAdapter

    try:
        return TypeAdapter(expected, config={"strict": True, "arbitrary_types_allowed": True})
    except Exception:  # noqa: BLE001 - a type pydantic cannot check: left to TrainingArguments
        return None


def _has_type(expected: Any, value: Any) -> bool:
    """Whether ``value`` is of the declared type, strictly (no "1e-4" for a number, no true for
    an integer; an integer is a number, and a string is accepted where the type allows one)."""
    from pydantic import ValidationError

    adapter = _adapter(expected)
    if adapter is None:
        return True
    try:
        adapter.validate_python(value)
    except ValidationError:
        return isinstance(value, str) and (expected is str or str in typing.get_args(expected))
    return True


_TYPE_WORDS = {float: "a number", int: "an integer", bool: "true or false", str: "a string", list: "a list",
               dict: "a table"}


def _type_name(expected: Any) -> str:
    """The declared type in TOML words: ``a number``, ``an integer or none``..."""
    args = typing.get_args(expected) or (expected,)
    words = [_TYPE_WORDS.get(typing.get_origin(a) or a) for a in args if a is not type(None)]
    words = [w for w in dict.fromkeys(words) if w] or [getattr(expected, "__name__", str(expected))]
    return " or ".join(words + (["none"] if type(None) in args else []))


BUILTIN_STRATEGIES: dict[str, StrategySpec] = {
    "baseline": StrategySpec(description="the base recipe, nothing added"),
    "weight_decay": StrategySpec(description="AdamW weight decay 0.01", weight_decay=0.01),
    "dropout": StrategySpec(
        description="hidden, attention and classifier dropout 0.2",
        dropout=DropoutSpec(hidden=0.2, attention=0.2, classifier=0.2),
    ),
    "early_stopping": StrategySpec(
        description="stop after 2 epochs without a lower validation loss",
        early_stopping=EarlyStoppingSpec(patience=2, metric="loss"),
    ),
    "label_smoothing": StrategySpec(description="label smoothing 0.1", label_smoothing=0.1),
    "augment": StrategySpec(
        description="word deletion/swap 0.1, insertion/typos 0.05",
        augment=AugmentSpec(deletion=0.1, swap=0.1, insertion=0.05, typo=0.05),
    ),
    "freeze4": StrategySpec(
        description="embeddings and the bottom 4 encoder layers frozen",
        freeze=FreezeSpec(embeddings=True, layers=4),
    ),
    "regularized": StrategySpec(
        description="weight decay 0.01, hidden/attention dropout 0.2, label smoothing 0.1",
        weight_decay=0.01,
        dropout=DropoutSpec(hidden=0.2, attention=0.2),
        label_smoothing=0.1,
    ),
    "combined": StrategySpec(
        description="weight decay + dropout + label smoothing + augmentation + early stopping",
        combine=["weight_decay", "dropout", "label_smoothing", "augment", "early_stopping"],
    ),
    "lora": StrategySpec(description="LoRA adapters, rank 8, alpha 16, dropout 0.05 (peft's default "
                                     "target modules)", lora=LoraSpec()),
    "lora_r4": StrategySpec(description="LoRA adapters, rank 4, alpha 8", lora=LoraSpec(r=4, alpha=8)),
    "lora_r16": StrategySpec(description="LoRA adapters, rank 16, alpha 32", lora=LoraSpec(r=16, alpha=32)),
}

_OVERRIDES = ("weight_decay", "dropout", "early_stopping", "label_smoothing", "freeze", "augment", "lora")
_LORA_RANK = re.compile(r"lora_r([1-9][0-9]*)")


def _lora_of_rank(name: str) -> StrategySpec | None:
    """``lora_r<N>``: LoRA of rank N with alpha 2N (the ratio of the built-in ``lora``)."""
    match = _LORA_RANK.fullmatch(name)
    if match is None:
        return None
    rank = int(match.group(1))
    return StrategySpec(description=f"LoRA adapters, rank {rank}, alpha {2 * rank}",
                        lora=LoraSpec(r=rank, alpha=2 * rank))


def strategy_library(suite: Suite | None = None) -> dict[str, StrategySpec]:
    """The strategies a suite can name: the built-in ones, replaced or extended by its own."""
    library = dict(BUILTIN_STRATEGIES)
    if suite is not None:
        library.update(suite.strategies)
    return library


def resolve_strategy(name: str, library: dict[str, StrategySpec], *, _seen: tuple = ()) -> StrategySpec:
    """Return strategy ``name`` with its ``combine`` list merged in (later entries win)."""
    if name in _seen:
        raise ValueError(f"strategy '{name}' combines itself ({' -> '.join(_seen + (name,))})")
    spec = library.get(name) or _lora_of_rank(name)
    if spec is None:
        raise KeyError(name)
    merged: dict[str, Any] = {}
    recipe: dict[str, Any] = {}
    for part in spec.combine:
        sub = resolve_strategy(part, library, _seen=_seen + (name,))
        merged.update({k: getattr(sub, k) for k in _OVERRIDES if getattr(sub, k) is not None})
        recipe.update(sub.recipe)
    merged.update({k: getattr(spec, k) for k in _OVERRIDES if getattr(spec, k) is not None})
    recipe.update(spec.recipe)
    return StrategySpec(description=spec.description, recipe=recipe, **merged)


def resolve_strategies(suite: Suite, *, source: str | Path = "<suite>") -> dict[str, StrategySpec]:
    """Resolve every strategy of the grid, with one-line errors for unknown names or bad values."""
    library = strategy_library(suite)
    resolved = {}
    for name in suite.grid.strategies:
        try:
            spec = resolve_strategy(name, library)
        except KeyError as exc:
            missing = exc.args[0]
            raise OverfitLabError(
                f"unknown strategy '{missing}'.", file=source, key="grid.strategies",
                fix=f"use one of {', '.join(sorted(library))} or define [strategies.{missing}].",
            ) from None
        except ValueError as exc:
            raise OverfitLabError(f"{exc}.", file=source, key=f"strategies.{name}.combine",
                                  fix="remove the cycle.") from None
        check_recipe(spec.recipe, source=source, key=f"strategies.{name}.recipe")
        try:
            with tempfile.TemporaryDirectory() as tmp:
                training_arguments(suite, spec, seed=0, epochs=1, output_dir=tmp)
        except (TypeError, ValueError) as exc:
            raise OverfitLabError(f"invalid training recipe for strategy '{name}': {exc}",
                                  file=source, key="recipe", fix="correct the recipe value.") from None
        resolved[name] = spec
    return resolved


def training_arguments(suite: Suite, spec: StrategySpec, *, seed: int, epochs: int, output_dir: str):
    """Build the ``TrainingArguments`` of one cell: base recipe, then the strategy's overrides.

    The harness evaluates after every epoch (its own fast evaluation, see
    :mod:`overfit_lab.training`), saves no checkpoints and reports to no tracker.
    """
    import torch
    from transformers import TrainingArguments

    kwargs: dict[str, Any] = {**suite.recipe, **spec.recipe}
    if spec.weight_decay is not None:
        kwargs["weight_decay"] = spec.weight_decay
    if spec.label_smoothing is not None:
        kwargs["label_smoothing_factor"] = spec.label_smoothing
    if spec.early_stopping is not None:
        kwargs["metric_for_best_model"] = f"validation_{spec.early_stopping.metric}"
        kwargs["greater_is_better"] = spec.early_stopping.metric != "loss"
    # "auto" is resolved by the executor (overfit_lab.execution) before cells are built
    kwargs.setdefault("use_cpu", suite.execution.device == "cpu")
    kwargs.setdefault("dataloader_pin_memory", not kwargs["use_cpu"] and torch.cuda.is_available())
    kwargs.update(
        output_dir=output_dir,
        num_train_epochs=epochs,
        seed=seed,
        eval_strategy="epoch",
        save_strategy="no",
        logging_strategy="epoch",
        logging_nan_inf_filter=False,
        report_to="none",
        disable_tqdm=True,
        remove_unused_columns=False,
    )
    return TrainingArguments(**kwargs)


def strategy_callbacks(spec: StrategySpec) -> list:
    """The Trainer callbacks a strategy adds (early stopping uses the library's own)."""
    if spec.early_stopping is None:
        return []
    from transformers import EarlyStoppingCallback

    return [EarlyStoppingCallback(early_stopping_patience=spec.early_stopping.patience,
                                  early_stopping_threshold=spec.early_stopping.threshold)]


def schedule_depends_on_length(suite: Suite, spec: StrategySpec) -> str | None:
    """Why epoch values cannot share one run, or ``None`` when sharing is exact.

    Sharing is exact only when the learning rate at a step does not depend on the total number
    of steps: a constant schedule, with warm-up given in steps rather than as a ratio.
    """
    recipe = {**suite.recipe, **spec.recipe}
    scheduler = str(recipe.get("lr_scheduler_type", "linear"))
    if scheduler not in ("constant", "constant_with_warmup"):
        return f"lr_scheduler_type={scheduler} depends on the total number of steps"
    warmup = recipe.get("warmup_steps", 0)
    if 0 < warmup < 1:
        return f"warmup_steps={warmup} is a ratio of the total number of steps"
    return None

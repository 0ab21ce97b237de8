"""Reading and validating suites: TOML, pydantic errors as one plain line, and the checks that span
several fields (paths exist, strategies resolve and build, checks can be evaluated)."""

from __future__ import annotations

import difflib
import functools
import math
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import OverfitLabError
from ..scores import ALL_SCORES
from ..strategies import check_recipe, resolve_strategies
from .schema import DATA_FILES, StrategySpec, Suite

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def load_suite(path: str | Path) -> Suite:
    """Read, validate and resolve a suite file.

    Relative data paths are resolved against the suite file's folder, strategies named in the
    grid are checked against the built-in library and the suite's own, and the recipe is checked
    against ``transformers.TrainingArguments``.

    Raises
    ------
    OverfitLabError
        One line naming the file, the key and the fix.
    """
    path = Path(path)
    raw = read_toml(path, what="suite file", fix="give the path of a .toml suite (see overfit-lab list).")
    raw.setdefault("name", path.stem)
    return validate_suite(raw, source=path, base_dir=path.parent)


def read_toml(path: Path, *, what: str, fix: str, key: str | None = None) -> dict[str, Any]:
    """The parsed TOML file at ``path``; a missing file or bad syntax is one :class:`OverfitLabError`
    naming ``what`` was expected, the option ``key`` that gave it, and ``fix``."""
    if not path.is_file():
        raise OverfitLabError(f"no such {what}.", file=path, key=key, fix=fix)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise OverfitLabError(f"is not UTF-8 text (byte {exc.start}: {exc.reason}), so not a TOML file.",
                              file=path, key=key, fix="save it as UTF-8 (TOML files are UTF-8).") from None
    except OSError as exc:
        raise OverfitLabError(f"cannot read the {what} ({exc.strerror or exc}).", file=path, key=key,
                              fix=fix) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise OverfitLabError(f"not valid TOML ({exc}).", file=path, fix="correct the TOML syntax.") from None


def validate_suite(raw: dict[str, Any], *, source: str | Path = "<suite>",
                   base_dir: Path | None = None) -> Suite:
    """Validate a suite given as a mapping; see :func:`load_suite`."""
    try:
        suite = Suite.model_validate(raw)
    except ValidationError as exc:
        raise _pydantic_error(exc, source) from None
    if base_dir is not None:
        suite = _resolve_paths(suite, Path(base_dir))
    _check_semantics(suite, source)
    return suite


def _pydantic_error(exc: ValidationError, source: str | Path) -> OverfitLabError:
    # an unknown key often also makes a required key "missing": report the cause, the typo
    err = next((e for e in exc.errors() if e["type"] == "extra_forbidden"), exc.errors()[0])
    loc = [str(p) for p in err["loc"]]
    if len(loc) >= 2 and loc[-1] in ("float", "int", "str", "bool") and loc[-2] in _union_fields():
        loc = loc[:-1]  # a member of a union (validation_size: float | int) is no key of the file
    key = ".".join(loc)
    if err["type"] == "extra_forbidden":
        known = _known_keys(loc[:-1])
        close = difflib.get_close_matches(loc[-1], known, n=1)
        fix = f"did you mean '{close[0]}'?" if close else f"known keys here: {', '.join(known)}."
        return OverfitLabError(f"unknown key '{loc[-1]}'.", file=source, key=key, fix=fix)
    if err["type"] == "missing":
        return OverfitLabError("this key is required.", file=source, key=key, fix="add it.")
    got = err.get("input")
    got_text = f" (got {got!r})" if not isinstance(got, dict) else ""
    return OverfitLabError(f"{err['msg']}{got_text}.", file=source, key=key or None,
                           fix="see the suite reference in README.md.")


@functools.cache
def _union_fields() -> frozenset[str]:
    """Names of schema fields typed as a union of several non-None types (pydantic's errors on
    them end with the member's name)."""
    names, todo, seen = set(), [Suite], set()
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            members = [a for a in getattr(field.annotation, "__args__", ()) if a is not type(None)]
            if typing.get_origin(field.annotation) in (typing.Union, types.UnionType) and len(members) > 1:
                names.add(name)
            todo += [m for m in (_model_of(field.annotation),) if m is not None]
    return frozenset(names)


def _known_keys(loc: list[str]) -> list[str]:
    if loc[:1] == ["strategies"] and len(loc) >= 2:  # [strategies.NAME]: NAME is a table name
        model: type[BaseModel] | None = StrategySpec
        loc = loc[2:]
    else:
        model = Suite
    for part in loc:
        field = model.model_fields.get(part) if model is not None else None
        if field is None:
            return []
        model = _model_of(field.annotation)
    return list(model.model_fields) if model else []


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found:
            return found
    return None


def _resolve_paths(suite: Suite, base: Path) -> Suite:
    updates = {}
    for key in DATA_FILES:
        value = getattr(suite.data, key)
        if value is not None and not value.is_absolute():
            updates[key] = (base / value).resolve()
    model = suite.model
    if (base / model.name).exists() and not Path(model.name).is_absolute():
        model = model.model_copy(update={"name": str((base / model.name).resolve())})
    diagnostics = suite.diagnostics
    probe = diagnostics.forgetting.probe
    if probe is not None and not probe.is_absolute():
        forgetting = diagnostics.forgetting.model_copy(update={"probe": (base / probe).resolve()})
        diagnostics = diagnostics.model_copy(update={"forgetting": forgetting})
    return suite.model_copy(update={"data": suite.data.model_copy(update=updates), "model": model,
                                    "diagnostics": diagnostics})


def _check_semantics(suite: Suite, source: str | Path) -> None:
    for key in DATA_FILES:
        value = getattr(suite.data, key)
        if value is not None and not Path(value).exists():
            raise OverfitLabError(f"no such file or directory: {value}.", file=source,
                                  key=f"data.{key}", fix="correct the path (relative to the suite file).")
    probe = suite.diagnostics.forgetting.probe
    if probe is not None and not Path(probe).is_file():
        raise OverfitLabError(f"no such file: {probe}.", file=source, key="diagnostics.forgetting.probe",
                              fix="give a text file of one document per line (relative to the suite file), "
                                  "or remove the key for the packaged general prose.")
    _check_finite(suite.recipe, source=source, key="recipe")
    for name, strategy in suite.strategies.items():
        _check_finite(strategy.recipe, source=source, key=f"strategies.{name}.recipe")
    check_recipe(suite.recipe, source=source, key="recipe")
    strategies = resolve_strategies(suite, source=source)
    if suite.task.type == "causal-lm":
        _check_causal_lm(suite, strategies, source)
    _check_perturbations(suite, source)
    reference = suite.statistics.reference
    if reference is not None and reference not in suite.grid.strategies:
        raise OverfitLabError(f"reference strategy '{reference}' is not in grid.strategies.", file=source,
                              key="statistics.reference",
                              fix=f"name one of: {', '.join(suite.grid.strategies)}.")
    check_conditions(suite, source=source)


def _check_finite(recipe: dict[str, Any], *, source: str | Path, key: str) -> None:
    """No nan or inf in a recipe: TrainingArguments takes them, and the cells' losses turn nan."""
    for name, value in recipe.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise OverfitLabError(f"{value} is not a usable value.", file=source, key=f"{key}.{name}",
                                  fix="give a finite number.")


def _check_causal_lm(suite: Suite, strategies: dict[str, StrategySpec], source: str | Path) -> None:
    """What a causal LM cannot do: label noise and label metrics (its documents have no labels),
    training-time text augmentation (not built for documents)."""
    if any(noise > 0 for noise in suite.grid.label_noise):
        raise OverfitLabError("label noise flips class labels, and a causal LM's documents have none.",
                              file=source, key="grid.label_noise",
                              fix="remove it (or set [task] type = \"sequence-classification\").")
    for name, spec in strategies.items():
        if spec.augment is not None:
            raise OverfitLabError("text augmentation is built for classification only.", file=source,
                                  key=f"strategies.{name}.augment", fix="remove it for a causal-lm task.")
        if spec.early_stopping is not None and spec.early_stopping.metric == "macro_f1":
            raise OverfitLabError("a causal LM has no macro-F1.", file=source,
                                  key=f"strategies.{name}.early_stopping.metric",
                                  fix="use \"loss\" or \"accuracy\" (next-token accuracy).")


def _check_perturbations(suite: Suite, source: str | Path) -> None:
    """Robustness ops must be registered perturbations (else every cell fails after training)."""
    spec = suite.diagnostics.robustness
    if not spec.enabled:
        return
    from ..diagnostics.perturb import PERTURBATIONS

    for i, op in enumerate(spec.ops):
        if op not in PERTURBATIONS:
            close = difflib.get_close_matches(op, list(PERTURBATIONS), n=1)
            fix = f"did you mean '{close[0]}'?" if close else \
                f"use registered ones: {', '.join(sorted(PERTURBATIONS))} (or register_perturbation first)."
            raise OverfitLabError(f"unknown perturbation '{op}'.", file=source,
                                  key=f"diagnostics.robustness.ops[{i}]", fix=fix)


def check_conditions(suite: Suite, *, source: str | Path) -> None:
    """Refuse checks and regression settings that could never be evaluated meaningfully:
    unknown metrics, thresholds outside the metric's range, scopes matching no cell, and
    confidence bounds with a single seed."""
    def known_metric(name: str, key: str) -> None:
        if name not in ALL_SCORES:
            close = difflib.get_close_matches(name, list(ALL_SCORES), n=1)
            fix = f"did you mean '{close[0]}'?" if close else "see the metric list in README.md (Checks)."
            raise OverfitLabError(f"unknown metric '{name}'.", file=source, key=key, fix=fix)
        tasks = ALL_SCORES[name].tasks
        if tasks is not None and suite.task.type not in tasks:
            raise OverfitLabError(f"{name} is not measured for a {suite.task.type} task.", file=source,
                                  key=key, fix=f"use a metric of that task (see README.md, Checks); {name} "
                                               f"is for {' and '.join(tasks)}.")

    for name, check in suite.checks.items():
        key = f"checks.{name}"
        known_metric(check.metric, f"{key}.metric")
        low, high = ALL_SCORES[check.metric].bounds
        for side, value in (("min", check.min), ("max", check.max)):
            if value is None:
                continue
            impossible = (side == "min" and value > high) or (side == "max" and value < low)
            if impossible:
                raise OverfitLabError(
                    f"{check.metric} lies in [{low:g}, {high:g}], so {side} = {value:g} can never pass.",
                    file=source, key=f"{key}.{side}", fix=f"use a threshold within [{low:g}, {high:g}].")
        for field_name, grid_values in (("sizes", suite.grid.train_sizes), ("strategies",
                                                                            suite.grid.strategies)):
            unknown = [v for v in getattr(check, field_name) if v not in grid_values]
            if unknown:
                raise OverfitLabError(
                    f"{', '.join(map(str, unknown))} matches no cell of the grid.", file=source,
                    key=f"{key}.{field_name}",
                    fix=f"use values from grid.{'train_sizes' if field_name == 'sizes' else 'strategies'}: "
                        f"{', '.join(map(str, grid_values))}.")
        if check.bound != "mean" and len(suite.grid.seeds) < 2:
            raise OverfitLabError(f"bound = '{check.bound}' needs a 95% interval over seeds, and the grid "
                                  "has one "
                                  "seed.", file=source, key=f"{key}.bound",
                                  fix="add seeds to grid.seeds, or use bound = 'mean'.")
        if check.checkpoint == "best" and "best" not in suite.diagnostics.checkpoints:
            raise OverfitLabError("the best checkpoint's diagnostics are not computed.", file=source,
                                  key=f"{key}.checkpoint", fix="add 'best' to diagnostics.checkpoints.")
    for i, name in enumerate(suite.regression.metrics):
        known_metric(name, f"regression.metrics[{i}]")
    for name in suite.regression.tolerances:
        known_metric(name, f"regression.tolerances.{name}")

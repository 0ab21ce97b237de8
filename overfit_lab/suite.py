"""Suite files: a TOML description of one fine-tuning grid, validated with pydantic.

A suite has these sections (see ``suites/*.toml`` for complete examples)::

    name = "quickstart"
    [model]        name (alias or local HF directory), max_length, trust_remote_code
    [data]         builtin data set, one file/directory to split, or train/validation/test files;
                   column mapping; split sizes
    [grid]         train_sizes, epochs, strategies, seeds, label_noise
    [recipe]       any transformers.TrainingArguments field (learning_rate, batch size, scheduler...)
    [strategies.NAME]  regularization overrides (weight_decay, dropout, early_stopping,
                   label_smoothing, freeze, augment, recipe, combine)
    [evaluation]   batch size of the evaluation passes
    [verdict]      tolerances of the under-trained / well fit / overfit verdict
    [diagnostics]  which diagnostics run, at which checkpoints, with which settings
    [statistics]   the reference strategy, alpha and the multiple-comparison correction
    [checks.NAME]  pass/fail conditions on stored metrics (overfit-lab check)
    [regression]   how much worse than a baseline counts as a regression

:func:`load_suite` turns every problem into one :class:`~overfit_lab.errors.OverfitLabError`
line that names the file, the key and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import OverfitLabError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Strict):
    """The pretrained model to fine-tune."""

    name: str = "minilm"
    max_length: int = Field(64, ge=8, le=8192)
    trust_remote_code: bool = False


class BuiltinOptions(_Strict):
    """Knobs of the generated ``reviews`` data set (see :mod:`overfit_lab.data.builtin`)."""

    n_train: int = Field(2000, ge=10)
    n_validation: int = Field(500, ge=10)
    n_test: int = Field(1000, ge=10)
    classes: Literal[2, 3] = 2
    label_noise: float = Field(0.0, ge=0.0, lt=1.0)
    spurious_correlation: float = Field(0.0, ge=-1.0, le=1.0)
    n_correlated_test: int = Field(0, ge=0)
    seed: int = 0


DATA_FILES = ("path", "train", "validation", "test", "correlated_test")


class DataSpec(_Strict):
    """Where the data comes from and how it is split."""

    builtin: Literal["reviews"] | None = None
    builtin_options: BuiltinOptions = BuiltinOptions()
    path: Path | None = None
    train: Path | None = None
    validation: Path | None = None
    test: Path | None = None
    correlated_test: Path | None = None  # evaluation rows sharing train's group-label correlation
    text_column: str = "text"
    label_column: str = "label"
    group_columns: list[str] = []
    validation_size: float | int = Field(0.1, gt=0)
    test_size: float | int = Field(0.2, gt=0)
    drop_duplicates: bool = False
    seed: int = 0

    @model_validator(mode="after")
    def _one_source(self) -> DataSpec:
        sources = [k for k in ("builtin", "path", "train") if getattr(self, k) is not None]
        if len(sources) != 1:
            raise ValueError(
                "give exactly one data source: builtin = \"reviews\", path = FILE, "
                f"or train = FILE (got {', '.join(sources) or 'none'})"
            )
        if self.train is None and (self.validation or self.test):
            raise ValueError("validation/test files need a train file too")
        return self


class GridSpec(_Strict):
    """The controlled variations: every combination is fine-tuned."""

    train_sizes: list[int] = Field(min_length=1)
    epochs: list[int] = Field(min_length=1)
    strategies: list[str] = Field(default=["baseline"], min_length=1)
    seeds: list[int] = Field(default=[0], min_length=1)
    label_noise: list[float] = [0.0]

    @field_validator("train_sizes", "epochs")
    @classmethod
    def _positive_unique(cls, v: list[int]) -> list[int]:
        if any(x < 1 for x in v):
            raise ValueError("values must be >= 1")
        return sorted(set(v))

    @field_validator("strategies", "seeds")
    @classmethod
    def _unique(cls, v: list) -> list:
        if len(set(v)) != len(v):
            raise ValueError("values must be unique")
        return v

    @field_validator("label_noise")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        if any(not 0 <= x < 1 for x in v):
            raise ValueError("label noise fractions must be in [0, 1)")
        return sorted(set(v))


class DropoutSpec(_Strict):
    """Dropout probabilities; ``None`` keeps the model's own."""

    hidden: float | None = Field(None, ge=0, lt=1)
    attention: float | None = Field(None, ge=0, lt=1)
    classifier: float | None = Field(None, ge=0, lt=1)


class EarlyStoppingSpec(_Strict):
    """Stop when the validation metric has not improved for ``patience`` epochs."""

    patience: int = Field(2, ge=1)
    threshold: float = Field(0.0, ge=0)
    metric: Literal["loss", "accuracy", "macro_f1"] = "loss"


class FreezeSpec(_Strict):
    """Freeze the embeddings and the bottom ``layers`` encoder layers."""

    embeddings: bool = True
    layers: int = Field(0, ge=0)


class AugmentSpec(_Strict):
    """Training-time text augmentation; each rate is the share of words touched."""

    deletion: float = Field(0.0, ge=0, le=1)
    swap: float = Field(0.0, ge=0, le=1)
    insertion: float = Field(0.0, ge=0, le=1)
    typo: float = Field(0.0, ge=0, le=1)


class StrategySpec(_Strict):
    """A regularization strategy: overrides applied to the base recipe and model."""

    description: str = ""
    combine: list[str] = []
    weight_decay: float | None = Field(None, ge=0)
    dropout: DropoutSpec | None = None
    early_stopping: EarlyStoppingSpec | None = None
    label_smoothing: float | None = Field(None, ge=0, lt=1)
    freeze: FreezeSpec | None = None
    augment: AugmentSpec | None = None
    recipe: dict[str, Any] = {}


class EvaluationSpec(_Strict):
    batch_size: int = Field(64, ge=1)


class VerdictSpec(_Strict):
    """Tolerances of the per-cell verdict (see :mod:`overfit_lab.diagnostics.generalization`)."""

    loss_rise: float = Field(0.10, ge=0)
    accuracy_gap: float = Field(0.15, ge=0)
    still_falling: float = Field(0.01, ge=0)


class RobustnessSpec(_Strict):
    """Accuracy under perturbed test inputs (see :mod:`overfit_lab.diagnostics.robustness`).

    Every op runs at every ``severities`` value (the curves) and at its headline severity, the
    only one that enters ``worst_robustness_drop``: ``perturb.HEADLINE_SEVERITY`` unless
    ``headline`` overrides it (op -> severity in (0, 1], or 0 or ``None`` to keep an op out of the
    headline: TOML has no null; an op in neither is curves only).
    """

    enabled: bool = True
    ops: list[str] = ["keyboard_typo", "char_delete", "casing", "punctuation_strip", "word_dropout",
                      "word_swap", "synonym", "contraction", "identity_swap"]
    severities: list[float] = [0.1, 0.3]
    headline: dict[str, float | None] = {}
    subsample: int = Field(100, ge=10)

    @field_validator("severities")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        if not v or any(not 0 < x <= 1 for x in v):
            raise ValueError("severities must be fractions in (0, 1]")
        return sorted(set(v))

    @field_validator("headline")
    @classmethod
    def _headline_fractions(cls, v: dict[str, float | None]) -> dict[str, float | None]:
        bad = {op: x for op, x in v.items() if x is not None and not 0 <= x <= 1}
        if bad:
            raise ValueError(f"headline severities must be in (0, 1], or 0 to leave an op out; got {bad}")
        return {op: None if x is None or x == 0 else float(x) for op, x in v.items()}

    @model_validator(mode="after")
    def _headline_ops(self) -> RobustnessSpec:
        unknown = sorted(set(self.headline) - set(self.ops))
        if unknown:
            raise ValueError(f"headline names op(s) not in ops: {', '.join(unknown)}; "
                             f"ops are {', '.join(self.ops)}")
        return self


class BiasSpec(_Strict):
    """Subgroup metrics, bias amplification and counterfactual identity swaps.

    A group's rate needs at least ``min_group_size`` examples in its denominator (examples,
    positives for the TPR, negatives for the FPR); smaller groups are reported as too small.
    ``intervals`` adds Newcombe's 95% interval to the parity differences
    (:mod:`overfit_lab.diagnostics.bias`).
    """

    enabled: bool = True
    min_group_size: int = Field(10, ge=1)
    intervals: bool = True
    counterfactual: bool = True  # swap identity terms in test texts (needs no group column)
    pairs: list[tuple[str, str]] = []  # extra identity word pairs for counterfactual swaps
    subsample: int = Field(200, ge=10)

    @model_validator(mode="before")
    @classmethod
    def _bootstrap_setting(cls, data: Any) -> Any:
        # `bootstrap = N` (resamples) came before `intervals`; runs stored with it must still load
        if isinstance(data, dict) and "bootstrap" in data:
            data = dict(data)
            resamples = data.pop("bootstrap")
            data.setdefault("intervals", bool(resamples))
        return data


class CalibrationSpec(_Strict):
    enabled: bool = True
    n_bins: int = Field(15, ge=1)


class MemorizationSpec(_Strict):
    enabled: bool = True
    # where the membership attack's non-members come from: "pool" = training-split rows that no
    # cell of the run trains on (the members' own distribution), "test" = test rows, "auto" =
    # the pool when it has at least as many unused rows as the test split would give
    nonmembers: Literal["auto", "pool", "test"] = "auto"


class DriftSpec(_Strict):
    enabled: bool = True
    probe_size: int = Field(128, ge=4)  # the debiased CKA needs 4 examples


class SpectralSpec(_Strict):
    enabled: bool = True


class DiagnosticsSpec(_Strict):
    """Which diagnostics run on every cell, at which checkpoints, with which settings."""

    checkpoints: list[Literal["final", "best"]] = ["final", "best"]
    robustness: RobustnessSpec = RobustnessSpec()
    bias: BiasSpec = BiasSpec()
    calibration: CalibrationSpec = CalibrationSpec()
    memorization: MemorizationSpec = MemorizationSpec()
    drift: DriftSpec = DriftSpec()
    spectral: SpectralSpec = SpectralSpec()


class StatisticsSpec(_Strict):
    """How strategies are compared (see :mod:`overfit_lab.stats`)."""

    # the strategy every other one is compared with; default "baseline", else the grid's first
    reference: str | None = None
    alpha: float = Field(0.05, gt=0, lt=1)
    correction: Literal["holm", "bh"] = "holm"
    gap_threshold: float = Field(0.05, gt=0)  # learning curves: size at which the accuracy gap falls below


BOUNDS = ("mean", "lower95", "upper95")


class CheckSpec(_Strict):
    """A pass/fail condition on a stored metric, per training size x strategy in scope.

    ``min`` and/or ``max`` give the allowed range; ``bound`` says what is held to it: the mean
    over seeds, or the lower/upper end of its 95% interval (so a noisy pass is not a pass).
    """

    metric: str
    min: float | None = None
    max: float | None = None
    bound: Literal["mean", "lower95", "upper95"] = "mean"
    sizes: list[int] = []  # empty: every size of the grid
    strategies: list[str] = []  # empty: every strategy of the grid
    checkpoint: Literal["final", "best"] = "final"
    description: str = ""

    @model_validator(mode="after")
    def _a_threshold(self) -> CheckSpec:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


class RegressionSpec(_Strict):
    """A metric regressed against a baseline when it got worse by more than its tolerance and,
    with two seeds or more, the change is significant (corrected p below ``alpha``)."""

    tolerance: float = Field(0.02, ge=0)
    tolerances: dict[str, float] = {}  # per-metric tolerance overrides
    metrics: list[str] = []  # empty: every baselined metric that has a better direction
    alpha: float = Field(0.05, gt=0, lt=1)
    correction: Literal["holm", "bh"] = "holm"


class AuditSpec(_Strict):
    """An audit of an already fine-tuned model (see :func:`overfit_lab.audit`)."""

    reference: str | None = None  # the pretrained model, for drift; None: no drift
    held_out: Literal["validation", "test"] = "test"  # which file the gap is measured on


class Suite(_Strict):
    """A validated suite. Build one with :func:`load_suite` or ``Suite(**mapping)``."""

    name: str = "suite"
    description: str = ""
    model: ModelSpec = ModelSpec()
    data: DataSpec
    grid: GridSpec
    recipe: dict[str, Any] = {}
    strategies: dict[str, StrategySpec] = {}
    evaluation: EvaluationSpec = EvaluationSpec()
    verdict: VerdictSpec = VerdictSpec()
    diagnostics: DiagnosticsSpec = DiagnosticsSpec()
    statistics: StatisticsSpec = StatisticsSpec()
    checks: dict[str, CheckSpec] = {}
    regression: RegressionSpec = RegressionSpec()
    audit: AuditSpec | None = None  # set by overfit_lab.audit: the model is scored, not trained

    @property
    def reference_strategy(self) -> str:
        """The strategy others are compared with (``statistics.reference``, else ``baseline`` if
        the grid has it, else the grid's first strategy)."""
        if self.statistics.reference is not None:
            return self.statistics.reference
        return "baseline" if "baseline" in self.grid.strategies else self.grid.strategies[0]

    @classmethod
    def load(cls, path: str | Path) -> Suite:
        """Same as :func:`load_suite`."""
        return load_suite(path)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str) -> Suite:
        return cls.model_validate(json.loads(text))


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
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise OverfitLabError(f"not valid TOML ({exc}).", file=path, fix="correct the TOML syntax.") from exc


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
    return suite.model_copy(update={"data": suite.data.model_copy(update=updates), "model": model})


def _check_semantics(suite: Suite, source: str | Path) -> None:
    from .strategies import resolve_strategies  # strategies import suite models

    for key in DATA_FILES:
        value = getattr(suite.data, key)
        if value is not None and not Path(value).exists():
            raise OverfitLabError(f"no such file or directory: {value}.", file=source,
                                  key=f"data.{key}", fix="correct the path (relative to the suite file).")
    check_recipe(suite.recipe, source=source, key="recipe")
    resolve_strategies(suite, source=source)
    reference = suite.statistics.reference
    if reference is not None and reference not in suite.grid.strategies:
        raise OverfitLabError(f"reference strategy '{reference}' is not in grid.strategies.", file=source,
                              key="statistics.reference",
                              fix=f"name one of: {', '.join(suite.grid.strategies)}.")
    check_conditions(suite, source=source)


def check_conditions(suite: Suite, *, source: str | Path) -> None:
    """Refuse checks and regression settings that could never be evaluated meaningfully:
    unknown metrics, thresholds outside the metric's range, scopes matching no cell, and
    confidence bounds with a single seed."""
    from .scores import ALL_SCORES

    def known_metric(name: str, key: str) -> None:
        if name not in ALL_SCORES:
            close = difflib.get_close_matches(name, list(ALL_SCORES), n=1)
            fix = f"did you mean '{close[0]}'?" if close else "see the metric list in README.md (Checks)."
            raise OverfitLabError(f"unknown metric '{name}'.", file=source, key=key, fix=fix)

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


def check_recipe(recipe: dict[str, Any], *, source: str | Path, key: str) -> None:
    """Check that ``recipe`` holds only ``TrainingArguments`` fields the user may set."""
    from transformers import TrainingArguments

    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    for name in recipe:
        if name in HARNESS_ARGS:
            raise OverfitLabError("is set by the harness.", file=source, key=f"{key}.{name}",
                                  fix=f"remove it: {HARNESS_ARGS[name]}.")
        if name not in fields:
            close = difflib.get_close_matches(name, sorted(fields), n=1)
            hint = f"did you mean '{close[0]}'?" if close else "use a transformers.TrainingArguments field."
            raise OverfitLabError(f"'{name}' is not a TrainingArguments field.", file=source,
                                  key=f"{key}.{name}", fix=hint)

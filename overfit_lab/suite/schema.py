"""The suite schema: pydantic models of every section of a suite file, and nothing else.

Reading a TOML file, turning pydantic errors into one plain line and the checks that need more than
one
field (files exist, strategies resolve, conditions can be evaluated) are in :mod:`overfit_lab.suite.loading`.
"""

from __future__ import annotations

import json
import types
import typing
from numbers import Real
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from ..rows import Checkpoint


class _Strict(BaseModel):
    # no nan or inf anywhere (a nan threshold never passes, and suite.json would store it as null)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_lax_conversion(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic would read "yes" or 1 as true and "10" as 10; TOML has real booleans and numbers
        return _unlax(cls.model_fields[info.field_name].annotation, value)


class _Verbatim:
    """A value pydantic would convert (a string for a number, a number for a boolean), wrapped
    so that it fails its type check, with the usual message and location, and shows as itself."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)


def _unlax(annotation: Any, value: Any) -> Any:
    """``value`` with every part that only lax conversion would fit ``annotation`` wrapped in
    :class:`_Verbatim` (the rest, and other types, are left to pydantic)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return value
        results = [_unlax(a, value) for a in args if a is not type(None)]
        return value if any(r is value for r in results) else results[0]
    if origin is list and isinstance(value, list) and args:
        items = [_unlax(args[0], v) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if origin is dict and isinstance(value, dict) and len(args) == 2:
        items = {k: _unlax(args[1], v) for k, v in value.items()}
        return value if all(items[k] is v for k, v in value.items()) else items
    if annotation is bool and isinstance(value, str | Real) and not isinstance(value, bool):
        return _Verbatim(value)
    if annotation in (int, float) and isinstance(value, str | bool):
        return _Verbatim(value)
    return value


TaskName = Literal["sequence-classification", "causal-lm"]


class TaskSpec(_Strict):
    """What kind of fine-tuning (see :mod:`overfit_lab.tasks`).

    ``sequence-classification`` (the default): an encoder with a classification head on labelled
    texts. ``causal-lm``: a causal language model on documents (the text column; labels are not
    used), trained on every real token; ``sequences`` says how documents become training
    sequences: ``"truncate"`` (each document one sequence, cut at ``model.max_length`` tokens) or
    ``"pack"`` (the documents joined, each ended by the end-of-text token, and cut into blocks of
    ``model.max_length``). Evaluation scores each document on its own in both cases.
    """

    type: TaskName = "sequence-classification"
    sequences: Literal["truncate", "pack"] = "truncate"


class ModelSpec(_Strict):
    """The pretrained model to fine-tune."""

    name: str = "minilm"
    max_length: int = Field(64, ge=8, le=8192)
    trust_remote_code: bool = False
    # pickle weights (pytorch_model.bin) can run code when loaded: only for files the user trusts
    allow_pickle: bool = False


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
    # a multi-valued group column ("black;muslim"): each value separated by this is one binary
    # attribute of the example (None: one group per example); the column is stored as it is
    group_separator: str | None = Field(None, min_length=1)
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
        if len(set(v)) != len(v):  # [100, 100] is more likely a typo of [100, 1000] than meant
            raise ValueError("values must be unique")
        return sorted(v)

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
        if len(set(v)) != len(v):
            raise ValueError("values must be unique")
        return sorted(v)


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
    """Freeze the embeddings and the bottom ``layers`` encoder layers.

    Frozen layers run without dropout (in eval mode), so their outputs are fixed and, without text
    augmentation, computed once per split and reused (see :mod:`overfit_lab.frozen`);
    ``dropout = true`` keeps dropout acting inside them (no cache), as a bare
    ``requires_grad=False`` under ``Trainer`` does.
    """

    embeddings: bool = True
    layers: int = Field(0, ge=0)
    dropout: bool = False


class AugmentSpec(_Strict):
    """Training-time text augmentation; each rate is the share of words touched."""

    deletion: float = Field(0.0, ge=0, le=1)
    swap: float = Field(0.0, ge=0, le=1)
    insertion: float = Field(0.0, ge=0, le=1)
    typo: float = Field(0.0, ge=0, le=1)


class LoraSpec(_Strict):
    """LoRA adapters (Hu et al. 2021) through ``peft``: the pretrained weights stay frozen and a
    rank-``r`` update ``(alpha / r) B A`` is trained beside each target module.

    ``target_modules`` ``None`` takes peft's default for the model type (BERT: query, value;
    Llama: q_proj, v_proj; GPT-2: c_attn). A classifier's head is trained in full beside them.
    """

    r: int = Field(8, ge=1)
    alpha: float = Field(16.0, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | None = Field(None, min_length=1)


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
    lora: LoraSpec | None = None
    recipe: dict[str, Any] = {}


class ExecutionSpec(_Strict):
    """Where and how the cells run; it does not change what a cell computes on one device, so a
    run may be resumed under another executor (the command line's flags win over this section)."""

    executor: Literal["local", "ray"] = "local"
    workers: int | None = Field(None, ge=1)  # None: the machine's default (see README)
    threads: int | None = Field(None, ge=1)  # torch threads per cell; None: the machine's default
    device: Literal["auto", "cpu", "cuda"] = "auto"
    address: str | None = None  # ray: "auto", "HOST:PORT"; None starts a local Ray
    retries: int = Field(1, ge=0, le=5)  # a cell whose worker died runs again this many times


class OutputSpec(_Strict):
    """What a run keeps besides its figures. ``save_models``: each cell's fine-tuned model, at its
    final or best (lowest validation loss) checkpoint, saved with ``save_pretrained`` (safetensors,
    tokenizer, label names) in ``RUN_DIR/models/CELL_ID``; about the pretrained weights' size per
    cell (MiniLM: 91 MB). With Ray, the run directory must be on a file system the workers share."""

    save_models: Literal["none", "final", "best"] = "none"


class TrackingSpec(_Strict):
    """Experiment trackers a run publishes to as each cell finishes (``overfit-lab export mlflow``
    does the same for a finished run). ``mlflow``: the run and its cells as MLflow runs, at
    ``mlflow_tracking_uri`` (none: ``$MLFLOW_TRACKING_URI`` or MLflow's default) in experiment
    ``mlflow_experiment`` (none: the suite's name)."""

    mlflow: bool = False
    mlflow_tracking_uri: str | None = None
    mlflow_experiment: str | None = None


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
    Bias amplification uses the groups with at least ``min_group_size`` examples in the cell's
    training data and in the test split; the others are left out and reported ("not in
    training", "too small").
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
    # post-hoc temperature scaling (Guo et al. 2017) fitted on validation: ECE on test after it,
    # so a user sees whether a cell's overconfidence is fixable without retraining
    temperature: bool = True


class SlicesSpec(_Strict):
    """Weak-slice discovery on the test split (see :mod:`overfit_lab.diagnostics.slices`): slices
    of at least ``min_count`` texts (and as many outside), from text properties (length, negation,
    contrast, ``frequent_tokens`` frequent words, identity terms, ...), the group columns and their
    pairs; a slice is weak when it is worse than the rest of the split by more than ``tolerance``
    (accuracy; a causal LM: mean token loss, in nats) and the one-sided test survives the
    ``correction`` across every slice tried at ``alpha``."""

    enabled: bool = True
    min_count: int = Field(20, ge=2)
    tolerance: float = Field(0.05, ge=0)
    alpha: float = Field(0.05, gt=0, lt=1)
    correction: Literal["holm", "bh"] = "holm"
    frequent_tokens: int = Field(20, ge=0)
    examples: int = Field(3, ge=0)  # misclassified test texts kept per weak slice, for the report


class LabelsSpec(_Strict):
    """Label shift and class collapse (see :mod:`overfit_lab.diagnostics.labels`): label shares of
    every split and of the test predictions, per-class recall, a chi-square test of the training
    against the test labels, and the classes (almost) never predicted: recall below
    ``recall_threshold`` or a predicted share below ``share_ratio`` times the true share."""

    enabled: bool = True
    recall_threshold: float = Field(0.1, ge=0, le=1)
    share_ratio: float = Field(0.25, ge=0, le=1)
    min_count: int = Field(10, ge=1)


class CartographySpec(_Strict):
    """Training dynamics (dataset cartography, Swayamdipta et al. 2020; see
    :mod:`overfit_lab.diagnostics.cartography`): every training example's confidence,
    variability and correctness over the epochs, its data-map region, the ``examples`` most
    likely mislabeled (kept with their text for the report) and the memorised ones."""

    enabled: bool = True
    examples: int = Field(10, ge=0)


class MemorizationSpec(_Strict):
    enabled: bool = True
    # where the membership attack's non-members come from: "pool" = training-split rows that no
    # cell of the run trains on (the members' own distribution), "test" = test rows, "auto" =
    # the pool when it has at least as many unused rows as the test split would give
    nonmembers: Literal["auto", "pool", "test"] = "auto"
    # causal LMs: does greedy decoding from a document's first prefix_length tokens reproduce its
    # next suffix_length tokens? (training documents against as many non-members)
    extraction: bool = True
    prefix_length: int = Field(8, ge=1)
    suffix_length: int = Field(8, ge=1)


class ForgettingSpec(_Strict):
    """Causal LMs: perplexity on general text (``probe``: a file of one document per line; none:
    the packaged general prose) after fine-tuning over before (see
    :mod:`overfit_lab.diagnostics.forgetting`), on its first ``max_documents`` documents."""

    enabled: bool = True
    probe: Path | None = None
    max_documents: int = Field(64, ge=1)


class DriftSpec(_Strict):
    enabled: bool = True
    probe_size: int = Field(128, ge=4)  # the debiased CKA needs 4 examples


class SpectralSpec(_Strict):
    enabled: bool = True


class DiagnosticsSpec(_Strict):
    """Which diagnostics run on every cell, at which checkpoints, with which settings."""

    checkpoints: list[Checkpoint] = ["final", "best"]
    robustness: RobustnessSpec = RobustnessSpec()
    bias: BiasSpec = BiasSpec()
    calibration: CalibrationSpec = CalibrationSpec()
    memorization: MemorizationSpec = MemorizationSpec()
    drift: DriftSpec = DriftSpec()
    spectral: SpectralSpec = SpectralSpec()
    forgetting: ForgettingSpec = ForgettingSpec()
    slices: SlicesSpec = SlicesSpec()
    labels: LabelsSpec = LabelsSpec()
    cartography: CartographySpec = CartographySpec()


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
    checkpoint: Checkpoint = "final"
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

    @field_validator("tolerances")
    @classmethod
    def _non_negative(cls, v: dict[str, float]) -> dict[str, float]:
        negative = {name: x for name, x in v.items() if x < 0}
        if negative:
            raise ValueError(f"tolerances must be >= 0; got {negative}")
        return v


class AuditSpec(_Strict):
    """What makes a run an audit of an already fine-tuned model (see :func:`overfit_lab.audit`);
    stored in the run's meta, not in its suite."""

    reference: str | None = None  # the pretrained model, for drift (and forgetting); None: neither
    held_out: Literal["validation", "test"] = "test"  # which file the gap is measured on


class Suite(_Strict):
    """A validated suite. Read one with :func:`overfit_lab.suite.load_suite` (paths resolved, every
    check made) or build one with ``Suite(**mapping)``."""

    name: str = "suite"
    description: str = ""
    task: TaskSpec = TaskSpec()
    model: ModelSpec = ModelSpec()
    data: DataSpec
    grid: GridSpec
    recipe: dict[str, Any] = {}
    strategies: dict[str, StrategySpec] = {}
    evaluation: EvaluationSpec = EvaluationSpec()
    execution: ExecutionSpec = ExecutionSpec()
    output: OutputSpec = OutputSpec()
    tracking: TrackingSpec = TrackingSpec()
    verdict: VerdictSpec = VerdictSpec()
    diagnostics: DiagnosticsSpec = DiagnosticsSpec()
    statistics: StatisticsSpec = StatisticsSpec()
    checks: dict[str, CheckSpec] = {}
    regression: RegressionSpec = RegressionSpec()

    @property
    def reference_strategy(self) -> str:
        """The strategy others are compared with (``statistics.reference``, else ``baseline`` if
        the grid has it, else the grid's first strategy)."""
        if self.statistics.reference is not None:
            return self.statistics.reference
        return "baseline" if "baseline" in self.grid.strategies else self.grid.strategies[0]

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str) -> Suite:
        return cls.model_validate(json.loads(text))

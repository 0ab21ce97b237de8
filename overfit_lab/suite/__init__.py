"""Suite files: a TOML description of one fine-tuning grid, validated with pydantic.

A suite has these sections (see ``suites/*.toml`` for complete examples)::

    name = "quickstart"
    [task]         type: sequence-classification (default) or causal-lm; sequences: truncate or pack
    [model]        name (alias or local HF directory), max_length, trust_remote_code
    [data]         builtin data set, one file/directory to split, or train/validation/test files;
                   column mapping; split sizes
    [grid]         train_sizes, epochs, strategies, seeds, label_noise
    [recipe]       any transformers.TrainingArguments field (learning_rate, batch size, scheduler...)
    [strategies.NAME]  regularization overrides (weight_decay, dropout, early_stopping,
                   label_smoothing, freeze, augment, lora, recipe, combine)
    [evaluation]   batch size of the evaluation passes
    [output]       save_models: keep each cell's fine-tuned model (final or best checkpoint)
    [tracking]     mlflow: publish the run and each cell to MLflow as it finishes
    [verdict]      tolerances of the under-trained / well fit / overfit verdict
    [diagnostics]  which diagnostics run, at which checkpoints, with which settings
    [statistics]   the reference strategy, alpha and the multiple-comparison correction
    [checks.NAME]  pass/fail conditions on stored metrics (overfit-lab check)
    [regression]   how much worse than a baseline counts as a regression

:func:`load_suite` turns every problem into one :class:`~overfit_lab.errors.OverfitLabError`
line that names the file, the key and the fix.
"""

from .._lazy import lazy_exports
from .schema import (
    BOUNDS,
    DATA_FILES,
    AuditSpec,
    AugmentSpec,
    BiasSpec,
    BuiltinOptions,
    CalibrationSpec,
    CartographySpec,
    CheckSpec,
    DataSpec,
    DiagnosticsSpec,
    DriftSpec,
    DropoutSpec,
    EarlyStoppingSpec,
    EvaluationSpec,
    ExecutionSpec,
    ForgettingSpec,
    FreezeSpec,
    GridSpec,
    LabelsSpec,
    LoraSpec,
    MemorizationSpec,
    ModelSpec,
    OutputSpec,
    RegressionSpec,
    RobustnessSpec,
    SlicesSpec,
    SpectralSpec,
    StatisticsSpec,
    StrategySpec,
    Suite,
    TaskSpec,
    TrackingSpec,
    VerdictSpec,
)

# reading and validating need the strategies, which need the schema: loaded on first use, so
# that importing the schema (from strategies) never waits on them
_LOADING = {name: ".loading" for name in ("check_conditions", "load_suite", "read_toml", "validate_suite")}
__getattr__, __dir__ = lazy_exports(__name__, _LOADING)

__all__ = ["BOUNDS", "DATA_FILES", "AuditSpec", "AugmentSpec", "BiasSpec", "BuiltinOptions",
           "CalibrationSpec", "CartographySpec", "CheckSpec", "DataSpec", "DiagnosticsSpec", "DriftSpec",
           "DropoutSpec", "EarlyStoppingSpec", "EvaluationSpec", "ExecutionSpec", "ForgettingSpec",
           "FreezeSpec", "GridSpec", "LabelsSpec", "LoraSpec", "MemorizationSpec", "ModelSpec",
           "OutputSpec", "RegressionSpec", "RobustnessSpec", "SlicesSpec", "SpectralSpec",
           "StatisticsSpec", "StrategySpec", "Suite", "TaskSpec", "TrackingSpec", "VerdictSpec",
           "check_conditions", "load_suite", "read_toml", "validate_suite"]

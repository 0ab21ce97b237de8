"""Behavioural tests for strategies (combine, TrainingArguments, schedule sharing) and the grid."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from conftest import tiny_suite_dict

from overfit_lab.grid import build_grid
from overfit_lab.strategies import (
    BUILTIN_STRATEGIES,
    resolve_strategy,
    schedule_depends_on_length,
    strategy_callbacks,
    strategy_library,
    training_arguments,
)
from overfit_lab.suite import (
    AugmentSpec,
    DropoutSpec,
    EarlyStoppingSpec,
    StrategySpec,
    Suite,
    validate_suite,
)


def _suite(tiny_csv: Path, *, recipe: dict | None = None, table: dict | None = None,
           **grid) -> Suite:
    raw = tiny_suite_dict(Path("no-model-needed"), tiny_csv, **grid)
    if recipe is not None:
        raw["recipe"] = recipe
    if table is not None:
        raw["strategies"] = table
    return validate_suite(raw)


# --- resolve_strategy ---------------------------------------------------------------------------


def test_combine_later_wins_and_recipes_merge() -> None:
    library = {
        "a": StrategySpec(weight_decay=0.1, label_smoothing=0.05,
                          recipe={"learning_rate": 1e-3, "warmup_steps": 5}),
        "b": StrategySpec(weight_decay=0.2, dropout=DropoutSpec(hidden=0.3),
                          recipe={"learning_rate": 2e-3, "adam_beta1": 0.8}),
        "c": StrategySpec(description="both", combine=["a", "b"], recipe={"warmup_steps": 7}),
        "d": StrategySpec(combine=["c"], weight_decay=0.5),
    }
    c = resolve_strategy("c", library)
    assert c.description == "both"
    assert c.weight_decay == 0.2
    assert c.label_smoothing == 0.05
    assert c.dropout == DropoutSpec(hidden=0.3)
    assert c.recipe == {"learning_rate": 2e-3, "warmup_steps": 7, "adam_beta1": 0.8}
    d = resolve_strategy("d", library)
    assert d.weight_decay == 0.5  # the strategy's own value beats what it combines
    assert d.recipe == c.recipe and d.dropout == c.dropout
    assert resolve_strategy("a", library) == StrategySpec(
        weight_decay=0.1, label_smoothing=0.05, recipe={"learning_rate": 1e-3, "warmup_steps": 5})


def test_combine_order_decides() -> None:
    library = {"a": StrategySpec(weight_decay=0.1), "b": StrategySpec(weight_decay=0.2),
               "ab": StrategySpec(combine=["a", "b"]), "ba": StrategySpec(combine=["b", "a"])}
    assert resolve_strategy("ab", library).weight_decay == 0.2
    assert resolve_strategy("ba", library).weight_decay == 0.1


def test_resolve_unknown_and_cycle() -> None:
    library = {"a": StrategySpec(combine=["b"]), "b": StrategySpec(combine=["a"]),
               "c": StrategySpec(combine=["missing"])}
    with pytest.raises(ValueError, match="a -> b -> a"):
        resolve_strategy("a", library)
    with pytest.raises(KeyError):
        resolve_strategy("c", library)
    with pytest.raises(KeyError):
        resolve_strategy("nope", library)


@pytest.mark.parametrize("name", sorted(BUILTIN_STRATEGIES))
def test_builtin_strategies_resolve(name: str) -> None:
    """A built-in strategy resolves to its own settings, or, for ``combined``, to exactly the
    settings of the strategies it names (each of which sets a different field)."""
    library = strategy_library()
    spec, own = resolve_strategy(name, library), BUILTIN_STRATEGIES[name]
    fields = ("weight_decay", "dropout", "early_stopping", "label_smoothing", "freeze", "augment")
    expected = {field: getattr(own, field) for field in fields}
    for part in own.combine:
        part_spec = library[part]
        expected.update({f: getattr(part_spec, f) for f in fields if getattr(part_spec, f) is not None})
    assert {field: getattr(spec, field) for field in fields} == expected
    if name == "combined":
        assert spec.weight_decay == 0.01 and spec.early_stopping.patience == 2 and spec.augment is not None


def test_builtin_combined_merges_its_parts() -> None:
    spec = resolve_strategy("combined", strategy_library())
    assert spec.weight_decay == 0.01
    assert spec.dropout == DropoutSpec(hidden=0.2, attention=0.2, classifier=0.2)
    assert spec.label_smoothing == 0.1
    assert spec.augment == AugmentSpec(deletion=0.1, swap=0.1, insertion=0.05, typo=0.05)
    assert spec.early_stopping == EarlyStoppingSpec(patience=2, metric="loss")
    assert spec.freeze is None


def test_suite_strategy_replaces_builtin(tiny_csv: Path) -> None:
    suite = _suite(tiny_csv, table={"weight_decay": {"weight_decay": 0.3}},
                   strategies=["baseline", "weight_decay"])
    assert strategy_library(suite)["weight_decay"].weight_decay == 0.3
    assert strategy_library()["weight_decay"].weight_decay == 0.01


# --- training_arguments -------------------------------------------------------------------------


def test_training_arguments_fixed_fields_and_overrides(tiny_csv: Path, tmp_path: Path) -> None:
    suite = _suite(tiny_csv, recipe={"learning_rate": 1e-3, "weight_decay": 0.0, "use_cpu": True,
                                     "lr_scheduler_type": "constant"})
    spec = StrategySpec(weight_decay=0.07, label_smoothing=0.15, recipe={"learning_rate": 5e-4})
    args = training_arguments(suite, spec, seed=3, epochs=4, output_dir=str(tmp_path))
    assert args.weight_decay == 0.07
    assert args.label_smoothing_factor == 0.15
    assert args.learning_rate == 5e-4
    assert args.num_train_epochs == 4
    assert args.seed == 3
    assert args.eval_strategy == "epoch"
    assert args.save_strategy == "no"
    assert args.output_dir == str(tmp_path)
    assert str(args.lr_scheduler_type.value if hasattr(args.lr_scheduler_type, "value")
               else args.lr_scheduler_type) == "constant"


def test_training_arguments_base_recipe_without_overrides(tiny_csv: Path, tmp_path: Path) -> None:
    suite = _suite(tiny_csv, recipe={"learning_rate": 2e-3, "weight_decay": 0.02, "use_cpu": True})
    args = training_arguments(suite, StrategySpec(), seed=0, epochs=1, output_dir=str(tmp_path))
    assert args.weight_decay == 0.02
    assert args.learning_rate == 2e-3
    assert args.label_smoothing_factor == 0.0
    assert args.metric_for_best_model is None


@pytest.mark.parametrize(("metric", "greater"), [("loss", False), ("accuracy", True),
                                                 ("macro_f1", True)])
def test_training_arguments_early_stopping_metric(tiny_csv: Path, tmp_path: Path, metric: str,
                                                  greater: bool) -> None:
    suite = _suite(tiny_csv)
    spec = StrategySpec(early_stopping=EarlyStoppingSpec(patience=3, threshold=0.01, metric=metric))
    args = training_arguments(suite, spec, seed=0, epochs=5, output_dir=str(tmp_path))
    assert args.metric_for_best_model == f"validation_{metric}"
    assert args.greater_is_better is greater
    (callback,) = strategy_callbacks(spec)
    assert callback.early_stopping_patience == 3
    assert callback.early_stopping_threshold == 0.01
    assert strategy_callbacks(StrategySpec()) == []


# --- schedule_depends_on_length -----------------------------------------------------------------


@pytest.mark.parametrize(("recipe", "depends"), [
    ({"lr_scheduler_type": "constant"}, False),
    ({}, True),  # linear by default
    ({"lr_scheduler_type": "linear"}, True),
    ({"lr_scheduler_type": "cosine"}, True),
    ({"lr_scheduler_type": "constant_with_warmup", "warmup_steps": 10}, False),
    ({"lr_scheduler_type": "constant_with_warmup", "warmup_steps": 0.1}, True),
    ({"lr_scheduler_type": "constant_with_warmup"}, False),
])
def test_schedule_depends_on_length(tiny_csv: Path, recipe: dict, depends: bool) -> None:
    suite = _suite(tiny_csv, recipe={"use_cpu": True, **recipe})
    reason = schedule_depends_on_length(suite, StrategySpec())
    assert (reason is not None) is depends
    if depends:
        assert isinstance(reason, str) and reason


def test_strategy_recipe_decides_schedule(tiny_csv: Path) -> None:
    suite = _suite(tiny_csv, recipe={"lr_scheduler_type": "constant", "use_cpu": True})
    assert schedule_depends_on_length(suite, StrategySpec()) is None
    linear = StrategySpec(recipe={"lr_scheduler_type": "linear"})
    assert "linear" in schedule_depends_on_length(suite, linear)


# --- build_grid ---------------------------------------------------------------------------------


def test_grid_shared_mode(tiny_csv: Path) -> None:
    suite = _suite(tiny_csv, epochs=[1, 3, 2])
    cells = build_grid(suite)
    assert len(cells) == 2 * 2 * 2  # sizes x strategies x seeds
    combos = Counter((c.train_size, c.strategy, c.seed, c.label_noise) for c in cells)
    assert set(combos.values()) == {1}
    assert set(combos) == {(n, s, seed, 0.0) for n in (40, 80) for s in ("baseline", "freeze1")
                           for seed in (0, 1)}
    for cell in cells:
        assert cell.epoch_mode == "shared"
        assert cell.epochs == 3
        assert cell.record_epochs == (1, 2, 3)
        assert cell.suite is suite
    ids = [c.cell_id for c in cells]
    assert len(set(ids)) == len(ids)
    sizes = [c.train_size for c in cells]
    assert sizes == sorted(sizes)  # smallest sizes first
    for first, second in zip(cells[::2], cells[1::2], strict=True):  # paired seeds adjacent
        assert (first.train_size, first.strategy) == (second.train_size, second.strategy)
        assert {first.seed, second.seed} == {0, 1}
    assert cells[0].describe().record_epochs == (1, 2, 3)
    assert cells[0].strategy_spec == resolve_strategy(cells[0].strategy, strategy_library(suite))


def test_grid_separate_mode_with_linear_schedule(tiny_csv: Path) -> None:
    suite = _suite(tiny_csv, recipe={"use_cpu": True, "lr_scheduler_type": "linear"},
                   epochs=[1, 2, 4])
    cells = build_grid(suite)
    assert len(cells) == 2 * 2 * 2 * 3
    for cell in cells:
        assert cell.epoch_mode == "separate"
        assert cell.record_epochs == (cell.epochs,)
        assert "linear" in cell.epoch_mode_reason
    per_run = Counter((c.train_size, c.strategy, c.seed) for c in cells)
    assert set(per_run.values()) == {3}
    assert sorted({c.epochs for c in cells}) == [1, 2, 4]
    ids = [c.cell_id for c in cells]
    assert len(set(ids)) == len(ids)


def test_grid_single_epoch_value_is_shared(tiny_csv: Path) -> None:
    suite = _suite(tiny_csv, recipe={"use_cpu": True}, epochs=[3])
    cells = build_grid(suite)
    assert len(cells) == 8
    assert all(c.epoch_mode == "shared" and c.record_epochs == (3,) for c in cells)


def test_grid_mixed_modes_per_strategy(tiny_csv: Path) -> None:
    suite = _suite(tiny_csv, table={"freeze1": {"recipe": {"lr_scheduler_type": "linear"}}})
    cells = build_grid(suite)
    modes = {c.strategy: c.epoch_mode for c in cells}
    assert modes == {"baseline": "shared", "freeze1": "separate"}
    assert len(cells) == 2 * 2 * 1 + 2 * 2 * 2


def test_grid_label_noise_multiplies_cells(tiny_csv: Path) -> None:
    suite = _suite(tiny_csv, label_noise=[0.0, 0.2, 0.1])
    cells = build_grid(suite)
    assert len(cells) == 8 * 3
    assert Counter(c.label_noise for c in cells) == {0.0: 8, 0.1: 8, 0.2: 8}
    ids = [c.cell_id for c in cells]
    assert len(set(ids)) == len(ids)
    assert all(("noise" in c.cell_id) == (c.label_noise > 0) for c in cells)

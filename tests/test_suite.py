"""Behavioural tests for suite files: loading, path resolution and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_sentences

from overfit_lab.errors import OverfitLabError
from overfit_lab.suite import Suite, load_suite, validate_suite

VALID = """
name = "tiny"
description = "a test suite"

[model]
name = "models/tiny"
max_length = 32

[data]
path = "{data}"
group_columns = ["gender"]
validation_size = 20
test_size = 20

[grid]
train_sizes = [40, 20]
epochs = [2, 1]
strategies = ["baseline", "wd"]
seeds = [0, 1]

[recipe]
learning_rate = 1e-3
lr_scheduler_type = "constant"
use_cpu = true

[strategies.wd]
weight_decay = 0.05
"""


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    make_sentences(80, seed=3).to_csv(folder / "reviews.csv", index=False)
    return folder


def _write(folder: Path, text: str, name: str = "suite.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _suite_text(data: str = "../data/reviews.csv") -> str:
    return VALID.format(data=data)


def _error(path: Path) -> OverfitLabError:
    with pytest.raises(OverfitLabError) as info:
        load_suite(path)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message
    return info.value


# --- valid suites -------------------------------------------------------------------------------


def test_valid_suite_loads_with_defaults(tmp_path: Path, data_dir: Path) -> None:
    path = _write(tmp_path / "suites", _suite_text())
    suite = load_suite(path)
    assert isinstance(suite, Suite)
    assert suite.name == "tiny"
    assert suite.grid.train_sizes == [20, 40]  # sorted, unique
    assert suite.grid.epochs == [1, 2]
    assert suite.grid.strategies == ["baseline", "wd"]
    assert suite.grid.label_noise == [0.0]
    assert suite.strategies["wd"].weight_decay == 0.05
    assert suite.recipe == {"learning_rate": 1e-3, "lr_scheduler_type": "constant", "use_cpu": True}
    assert suite.evaluation.batch_size == 64
    assert suite.verdict.loss_rise == pytest.approx(0.10)
    assert Suite.from_json(suite.to_json()) == suite


def test_relative_data_path_resolves_against_suite_folder(tmp_path: Path, data_dir: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path / "suites", _suite_text())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    suite = load_suite(path)
    assert suite.data.path == (data_dir / "reviews.csv").resolve()
    assert suite.data.path.is_absolute()
    # a model name that is not a folder beside the suite is kept as given
    assert suite.model.name == "models/tiny"


def test_relative_model_directory_resolves_against_suite_folder(tmp_path: Path,
                                                                data_dir: Path) -> None:
    (tmp_path / "suites" / "models" / "tiny").mkdir(parents=True)
    path = _write(tmp_path / "suites", _suite_text())
    suite = load_suite(path)
    assert suite.model.name == str((tmp_path / "suites" / "models" / "tiny").resolve())


def test_absolute_data_path_is_kept(tmp_path: Path, data_dir: Path) -> None:
    csv = (data_dir / "reviews.csv").resolve()
    path = _write(tmp_path / "suites", _suite_text(data=csv.as_posix()))
    assert load_suite(path).data.path == csv


def test_name_defaults_to_file_stem(tmp_path: Path, data_dir: Path) -> None:
    text = _suite_text().replace('name = "tiny"\ndescription', "description", 1)
    path = _write(tmp_path / "suites", text, name="my-grid.toml")
    assert load_suite(path).name == "my-grid"


# --- one-line errors ----------------------------------------------------------------------------


def test_missing_suite_file(tmp_path: Path) -> None:
    err = _error(tmp_path / "nope.toml")
    assert "nope.toml" in str(err)


def test_unknown_nested_key_suggests_close_match(tmp_path: Path, data_dir: Path) -> None:
    text = _suite_text().replace("seeds = [0, 1]", "seeds = [0, 1]\nseed = 3")
    path = _write(tmp_path / "suites", text, name="typo.toml")
    err = _error(path)
    message = str(err)
    assert str(path) in message
    assert "grid.seed" in message
    assert "did you mean 'seeds'" in message
    assert err.key == "grid.seed"


def test_misspelt_required_key_suggests_close_match(tmp_path: Path, data_dir: Path) -> None:
    text = _suite_text().replace("train_sizes = [40, 20]", "train_size = [40, 20]")
    path = _write(tmp_path / "suites", text)
    message = str(_error(path))
    assert str(path) in message
    assert "grid.train_size" in message
    assert "did you mean 'train_sizes'" in message


def test_unknown_top_level_key_suggests_close_match(tmp_path: Path, data_dir: Path) -> None:
    text = _suite_text() + '\n[evalution]\nbatch_size = 8\n'
    path = _write(tmp_path / "suites", text)
    message = str(_error(path))
    assert str(path) in message
    assert "evalution" in message
    assert "did you mean 'evaluation'" in message


def test_unknown_key_in_strategy_table_suggests_strategy_field(tmp_path: Path,
                                                               data_dir: Path) -> None:
    text = _suite_text().replace("weight_decay = 0.05", "wieght_decay = 0.05")
    path = _write(tmp_path / "suites", text)
    message = str(_error(path))
    assert "strategies.wd.wieght_decay" in message
    assert "did you mean 'weight_decay'" in message


def test_unknown_key_in_nested_dropout_table(tmp_path: Path, data_dir: Path) -> None:
    text = _suite_text() + "\n[strategies.wd.dropout]\nhiden = 0.2\n"
    path = _write(tmp_path / "suites", text)
    message = str(_error(path))
    assert "strategies.wd.dropout.hiden" in message
    assert "did you mean 'hidden'" in message


def test_unknown_key_in_strategy_named_like_a_field(tmp_path: Path, data_dir: Path) -> None:
    text = _suite_text() + "\n[strategies.augment]\nwieght_decay = 0.05\n"
    path = _write(tmp_path / "suites", text)
    message = str(_error(path))
    assert "strategies.augment.wieght_decay" in message
    assert "did you mean 'weight_decay'" in message


def test_unknown_key_without_close_match_lists_known_keys(tmp_path: Path, data_dir: Path) -> None:
    text = _suite_text().replace("max_length = 32", "max_length = 32\nzzz = 1")
    message = str(_error(_write(tmp_path / "suites", text)))
    assert "model.zzz" in message
    for known in ("name", "max_length", "trust_remote_code"):
        assert known in message


@pytest.mark.parametrize(("old", "new", "key"), [
    ("max_length = 32", 'max_length = "long"', "model.max_length"),
    ("train_sizes = [40, 20]", 'train_sizes = "many"', "grid.train_sizes"),
    ("epochs = [2, 1]", "epochs = [0, 1]", "grid.epochs"),
    ("weight_decay = 0.05", "weight_decay = -1.0", "strategies.wd.weight_decay"),
])
def test_wrong_type_or_value_names_the_key(tmp_path: Path, data_dir: Path, old: str, new: str,
                                           key: str) -> None:
    path = _write(tmp_path / "suites", _suite_text().replace(old, new))
    err = _error(path)
    assert err.key == key
    assert str(path) in str(err) and key in str(err)


def test_missing_grid_section(tmp_path: Path, data_dir: Path) -> None:
    text = _suite_text()
    start = text.index("[grid]")
    end = text.index("[recipe]")
    path = _write(tmp_path / "suites", text[:start] + text[end:])
    err = _error(path)
    assert err.key == "grid"
    assert "required" in str(err) and str(path) in str(err)


def test_missing_data_file(tmp_path: Path, data_dir: Path) -> None:
    path = _write(tmp_path / "suites", _suite_text(data="../data/absent.csv"))
    err = _error(path)
    assert err.key == "data.path"
    assert "absent.csv" in str(err) and str(path) in str(err)


def test_unknown_strategy_lists_known_ones(tmp_path: Path, data_dir: Path) -> None:
    text = _suite_text().replace('strategies = ["baseline", "wd"]',
                                 'strategies = ["baseline", "wdd"]')
    path = _write(tmp_path / "suites", text)
    err = _error(path)
    message = str(err)
    assert err.key == "grid.strategies"
    assert "'wdd'" in message
    for known in ("baseline", "weight_decay", "dropout", "early_stopping", "freeze4", "wd"):
        assert known in message


def test_recipe_key_set_by_harness(tmp_path: Path, data_dir: Path) -> None:
    text = _suite_text().replace("use_cpu = true", "use_cpu = true\nnum_train_epochs = 3")
    path = _write(tmp_path / "suites", text)
    err = _error(path)
    assert err.key == "recipe.num_train_epochs"
    assert "grid.epochs" in str(err)


def test_strategy_recipe_key_set_by_harness(tmp_path: Path, data_dir: Path) -> None:
    text = _suite_text() + "\n[strategies.wd.recipe]\nseed = 4\n"
    err = _error(_write(tmp_path / "suites", text))
    assert err.key == "strategies.wd.recipe.seed"


def test_recipe_key_not_a_training_argument(tmp_path: Path, data_dir: Path) -> None:
    text = _suite_text().replace("learning_rate = 1e-3", "learning_rat = 1e-3")
    path = _write(tmp_path / "suites", text)
    err = _error(path)
    assert err.key == "recipe.learning_rat"
    assert "did you mean 'learning_rate'" in str(err)


@pytest.mark.parametrize(("line", "key", "expected"), [
    ('learning_rate = "fast"', "recipe.learning_rate", "a number"),
    ('learning_rate = "1e-4"', "recipe.learning_rate", "a number"),  # TOML numbers are unquoted
    ("per_device_train_batch_size = 16.5", "recipe.per_device_train_batch_size", "an integer"),
    ("per_device_train_batch_size = true", "recipe.per_device_train_batch_size", "an integer"),
    ('use_cpu = "yes"', "recipe.use_cpu", "true or false"),
    ("lr_scheduler_type = 3", "recipe.lr_scheduler_type", "a string"),
])
def test_recipe_value_of_the_wrong_type_is_refused_at_load(tmp_path: Path, data_dir: Path, line, key,
                                                           expected) -> None:
    """Issue 13.1: a value TrainingArguments does not check (learning_rate = "fast" used to fail
    every cell with a TypeError) is refused when the suite is read, naming the key and the type
    that transformers declares."""
    name = key.split(".")[-1]
    text = _suite_text().replace("use_cpu = true", "")
    for default in ("learning_rate = 1e-3", 'lr_scheduler_type = "constant"'):
        text = text.replace(default, "") if default.startswith(name) else text
    text = text.replace("[recipe]", f"[recipe]\n{line}")
    err = _error(_write(tmp_path / "suites", text))
    assert err.key == key and f"takes {expected}" in str(err)


def test_recipe_values_of_the_declared_types_pass(tmp_path: Path, data_dir: Path) -> None:
    text = _suite_text().replace("learning_rate = 1e-3", "learning_rate = 1\nwarmup_steps = 2\n"
                                 'optim = "adamw_torch"\nlr_scheduler_kwargs = {}')
    assert load_suite(_write(tmp_path / "suites", text)).recipe["learning_rate"] == 1


def test_strategy_recipe_value_of_the_wrong_type_is_refused(tmp_path: Path, data_dir: Path) -> None:
    text = _suite_text() + '\n[strategies.wd.recipe]\nweight_decay = "lots"\n'
    assert _error(_write(tmp_path / "suites", text)).key == "strategies.wd.recipe.weight_decay"


def test_strategy_recipe_key_not_a_training_argument(tmp_path: Path, data_dir: Path) -> None:
    text = _suite_text() + "\n[strategies.wd.recipe]\nlearning_rat = 1e-3\n"
    path = _write(tmp_path / "suites", text)
    err = _error(path)
    assert err.key == "strategies.wd.recipe.learning_rat"
    assert "did you mean 'learning_rate'" in str(err) and str(path) in str(err)


def test_invalid_toml(tmp_path: Path) -> None:
    path = _write(tmp_path / "suites", "[grid\ntrain_sizes = [1,\n")
    err = _error(path)
    assert "TOML" in str(err) and str(path) in str(err)


def test_combine_cycle(tmp_path: Path, data_dir: Path) -> None:
    text = _suite_text() + '\n[strategies.a]\ncombine = ["b"]\n[strategies.b]\ncombine = ["a"]\n'
    text = text.replace('strategies = ["baseline", "wd"]', 'strategies = ["baseline", "a"]')
    err = _error(_write(tmp_path / "suites", text))
    assert err.key == "strategies.a.combine"
    assert "a -> b -> a" in str(err)


def test_validate_suite_mapping_errors_name_the_source() -> None:
    with pytest.raises(OverfitLabError) as info:
        validate_suite({"data": {"builtin": "reviews"},
                        "grid": {"train_sizes": [10], "epochs": [1]},
                        "modle": {}}, source="mine.toml")
    assert str(info.value).startswith("mine.toml: modle:")
    assert "did you mean 'model'" in str(info.value)


def test_two_data_sources_rejected() -> None:
    with pytest.raises(OverfitLabError) as info:
        validate_suite({"data": {"builtin": "reviews", "train": "x.csv"},
                        "grid": {"train_sizes": [10], "epochs": [1]}})
    assert info.value.key == "data"
    assert "exactly one data source" in str(info.value)


def test_error_str_is_one_line() -> None:
    err = OverfitLabError("a\nmulti   line\tmessage.", file="f.toml", key="grid.x", fix="do\nthis.")
    assert str(err) == "f.toml: grid.x: a multi line message. Fix: do this."


# --- the command line -------------------------------------------------------------------------


def test_cli_bad_suite_exits_2_with_one_line(tmp_path: Path, data_dir: Path) -> None:
    text = _suite_text().replace("seeds = [0, 1]", "seeds = [0, 1]\nseed = 3")
    bad = _write(tmp_path / "suites", text, name="bad-suite.toml")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_COLOR": "1"}
    proc = subprocess.run([sys.executable, "-m", "overfit_lab", "run", str(bad)],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip()
    assert "bad-suite.toml" in lines[0]
    assert "did you mean 'seeds'" in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "reports").exists()


# --- robustness headline severities and the drift probe -------------------------------------------

def _builtin_suite(diagnostics: dict):
    return validate_suite({"data": {"builtin": "reviews"}, "grid": {"train_sizes": [10], "epochs": [1]},
                           "diagnostics": diagnostics})


def test_robustness_headline_overrides_are_validated() -> None:
    spec = _builtin_suite({"robustness": {"headline": {"word_dropout": 0.1, "keyboard_typo": 0}}}
                          ).diagnostics.robustness
    assert spec.headline == {"word_dropout": 0.1, "keyboard_typo": None}  # 0: curves only (TOML has no null)
    assert _builtin_suite({}).diagnostics.robustness.headline == {}
    for headline, key, match in (
            ({"typo": 0.05}, "diagnostics.robustness", r"names op\(s\) not in ops: typo; ops are keyb"),
            ({"keyboard_typo": 1.5}, "diagnostics.robustness.headline", "must be in \\(0, 1\\]"),
            ({"casing": -0.1}, "diagnostics.robustness.headline", "must be in \\(0, 1\\]"),
            ({"casing": "high"}, "diagnostics.robustness.headline.casing", "valid number")):
        with pytest.raises(OverfitLabError, match=match) as info:
            _builtin_suite({"robustness": {"headline": headline}})
        assert info.value.key == key
    with pytest.raises(OverfitLabError, match="headline names op"):  # an op must also be run
        _builtin_suite({"robustness": {"ops": ["casing"], "headline": {"synonym": 1.0}}})


def test_drift_probe_needs_four_texts_for_the_debiased_cka() -> None:
    assert _builtin_suite({"drift": {"probe_size": 4}}).diagnostics.drift.probe_size == 4
    with pytest.raises(OverfitLabError) as info:
        _builtin_suite({"drift": {"probe_size": 3}})
    assert info.value.key == "diagnostics.drift.probe_size"


def test_bias_bootstrap_setting_of_stored_runs_reads_as_intervals():
    from overfit_lab.suite import BiasSpec

    assert BiasSpec(bootstrap=200).intervals is True
    assert BiasSpec(bootstrap=0).intervals is False
    assert BiasSpec(bootstrap=0, intervals=True).intervals is True
    assert "bootstrap" not in BiasSpec(bootstrap=200).model_dump()

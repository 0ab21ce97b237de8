"""Frozen layers: eval mode unless ``freeze.dropout``, and the cache of the frozen prefix's outputs."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from conftest import tiny_suite_dict

import overfit_lab.training as training_module
from overfit_lab import frozen, load_run, run_suite
from overfit_lab.grid import Cell
from overfit_lab.suite import validate_suite

FREEZE1 = {"freeze": {"embeddings": True, "layers": 1}, "dropout": {"hidden": 0.2}}
NO_DIAGNOSTICS = {name: {"enabled": False} for name in ("robustness", "bias", "drift", "spectral",
                                                        "memorization")}


def _suite(tiny_model, tiny_csv, strategies: dict, **grid):
    raw = tiny_suite_dict(tiny_model, tiny_csv, **{"train_sizes": [40, 80], "epochs": [1, 3], "seeds": [0],
                                                   "strategies": list(strategies), **grid})
    raw["strategies"] = strategies
    raw["diagnostics"] = {**NO_DIAGNOSTICS, "checkpoints": ["final", "best"]}  # calibration stays
    return validate_suite(raw)


def _run(suite, path):
    return load_run(run_suite(suite, output=path, quiet=True, execution={"workers": 1}).run_dir)


def _values(frame: pd.DataFrame, keys: list[str]) -> pd.Series:
    return frame.set_index(keys)["value"].sort_index()


def test_cached_and_uncached_runs_agree(tiny_model, tiny_csv, tmp_path, monkeypatch):
    """Every recorded metric (all splits and epochs) and the calibration diagnostics of a cached
    run equal the uncached run's to float rounding, with dropout acting in the unfrozen layer and
    the head, with and without label smoothing."""
    suite = _suite(tiny_model, tiny_csv, {"freeze1": FREEZE1, "smooth": {**FREEZE1, "label_smoothing": 0.1}},
                   train_sizes=[40])
    cached = _run(suite, tmp_path / "cached")
    monkeypatch.setenv("OVERFIT_LAB_FROZEN_CACHE", "0")
    uncached = _run(suite, tmp_path / "uncached")
    assert cached.cells["frozen_cache"].all() and not uncached.cells["frozen_cache"].any()
    assert uncached.cells["frozen_cache_reason"].str.contains("OVERFIT_LAB_FROZEN_CACHE").all()
    keys = ["cell_id", "epoch", "split", "metric"]
    a, b = _values(cached.metrics, keys), _values(uncached.metrics, keys)
    assert a.index.equals(b.index)
    assert set(a.index.get_level_values("split")) == {"train", "validation", "test"}
    assert (a - b).abs().max() < 1e-5
    diag = ["cell_id", "checkpoint", "metric", "bin_low"]
    c, d = (_values(run.diagnostics.fillna({"bin_low": -1}), diag) for run in (cached, uncached))
    assert c.index.equals(d.index) and len(c) > 0
    # a fitted temperature sits at the flat minimum of the validation NLL: logits 1e-8 apart move
    # it by up to 1e-4 relative (the test ECE and NLL after scaling stay within 1e-7)
    fitted = c.index.get_level_values("metric") == "temperature"
    assert (c[~fitted] - d[~fitted]).abs().max() < 1e-5
    assert ((c[fitted] - d[fitted]).abs() / d[fitted]).max() < 1e-3


@pytest.mark.parametrize("dropout", [False, True])
def test_frozen_modules_are_in_eval_mode_unless_freeze_dropout(tiny_model, tiny_csv, monkeypatch, dropout):
    """In the uncached path the frozen embeddings and layer 0 run each training step: in eval
    mode by default, in train mode (as before the cache existed) with ``freeze.dropout``."""
    seen: list[bool] = []
    freeze = training_module.freeze

    def spy(model, **kwargs):
        count = freeze(model, **kwargs)
        for module in (model.base_model.embeddings, model.base_model.encoder.layer[0]):
            module.register_forward_hook(
                lambda m, args, out: seen.append(m.training) if torch.is_grad_enabled() else None)
        return count

    monkeypatch.setattr(training_module, "freeze", spy)
    monkeypatch.setenv("OVERFIT_LAB_FROZEN_CACHE", "0")
    strategy = {**FREEZE1, "freeze": {**FREEZE1["freeze"], "dropout": dropout}}
    suite = _suite(tiny_model, tiny_csv, {"freeze1": strategy}, epochs=[1])
    cell = Cell(suite=suite, train_size=40, strategy="freeze1", seed=0, label_noise=0.0, epochs=1,
                record_epochs=(1,), epoch_mode="shared")
    result = training_module.run_cell(cell)
    assert result.status == "finished", result.reason
    assert len(seen) == 2 * 3 and set(seen) == {dropout}  # 2 modules x 3 steps of 16 examples
    assert result.info["frozen_cache"] is False


def test_augmentation_and_freeze_dropout_are_not_cached(tiny_model, tiny_csv, tmp_path):
    strategies = {"drop": {**FREEZE1, "freeze": {"layers": 1, "dropout": True}},
                  "aug": {**FREEZE1, "augment": {"deletion": 0.1}}, "baseline": {}}
    run = _run(_suite(tiny_model, tiny_csv, strategies, train_sizes=[40], epochs=[1]), tmp_path / "run")
    cells = run.cells.set_index("strategy")
    assert not cells["frozen_cache"].any()
    assert "dropout" in cells.loc["drop", "frozen_cache_reason"]
    assert "augmentation" in cells.loc["aug", "frozen_cache_reason"]
    assert pd.isna(cells.loc["baseline", "frozen_cache_reason"])  # nothing frozen: no reason given


def test_the_cache_is_computed_once_per_process(tiny_model, tiny_csv, tmp_path):
    """Two seeds and two sizes of one strategy: one cell computes the cache, three reuse it."""
    frozen.clear()
    run = _run(_suite(tiny_model, tiny_csv, {"freeze1": FREEZE1}, epochs=[1], seeds=[0, 1]), tmp_path / "run")
    cells = run.cells
    assert len(cells) == 4 and cells["frozen_cache"].all()
    assert (cells["frozen_cache_s"] > 0).sum() == 1 and (cells["frozen_cache_s"] == 0).sum() == 3
    assert len(frozen._CACHE) == 1


def test_other_architectures_are_not_cached():
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    config = DistilBertConfig(vocab_size=50, dim=16, n_layers=2, n_heads=2, hidden_dim=32)
    reason = frozen.unsupported(DistilBertForSequenceClassification(config))
    assert reason is not None and "DistilBertForSequenceClassification" in reason

"""The causal-LM task on a tiny GPT-2 and a tiny Llama built in the tests: data, token statistics
against the models' own loss, training with per-epoch perplexity, the diagnostics that apply,
the store, analysis, reports, checks, baselines, comparison, the pytest plugin and the audit."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import tiny_lm_suite_dict

from overfit_lab import load_run, run_suite
from overfit_lab.errors import OverfitLabError
from overfit_lab.grid import build_grid
from overfit_lab.models import load_causal_lm, load_tokenizer
from overfit_lab.predict import encode_documents, pack_documents, predict_token_statistics
from overfit_lab.suite import validate_suite
from overfit_lab.training import run_cell

LM_DIAGNOSTICS = ("robustness", "memorization", "forgetting", "drift", "spectral")
DIAGNOSTICS_OFF = {"checkpoints": ["final"], **{name: {"enabled": False} for name in LM_DIAGNOSTICS}}
pytest_plugins = ["pytester"]


# --------------------------------------------------------------------------- encoding and statistics
@pytest.mark.parametrize("architecture", ["tiny_gpt2", "tiny_llama"])
def test_token_statistics_match_the_models_own_loss(architecture, request):
    """Per document, the summed NLL is the model's own mean loss (labels = input ids) times the
    predicted tokens, and the correct count is the argmax count, whatever the padding of a batch."""
    path = str(request.getfixturevalue(architecture))
    tokenizer, model = load_tokenizer(path), load_causal_lm(path).eval()
    texts = ["the food was good .", "she said the staff was rude and the meal was bland !", "good",
             "the room was quite dull"]
    encoded = encode_documents(tokenizer, texts, max_length=32)
    assert all(ids[-1] == tokenizer.eos_token_id for ids in encoded.input_ids)
    statistics = predict_token_statistics(model, encoded, batch_size=3)  # mixed lengths: padding
    for ids, (nll, tokens, correct) in zip(encoded.input_ids, statistics, strict=True):
        batch = torch.tensor([ids])
        with torch.no_grad():
            out = model(input_ids=batch, labels=batch)
        assert tokens == len(ids) - 1
        assert nll == pytest.approx(out.loss.item() * (len(ids) - 1), rel=1e-5)
        assert correct == int((out.logits[0, :-1].argmax(-1) == batch[0, 1:]).sum())


def test_encode_truncates_and_pack_cuts_blocks(tiny_gpt2):
    tokenizer = load_tokenizer(str(tiny_gpt2))
    encoded = encode_documents(tokenizer, ["the food was good and the staff was rude", "good"], max_length=5)
    assert [len(ids) for ids in encoded.input_ids] == [5, 2]  # cut at 5; "good" + end-of-text
    packed = pack_documents(encoded, max_length=3)
    stream = encoded.input_ids[0] + encoded.input_ids[1]
    assert [len(b) for b in packed.input_ids] == [3, 3, 1]
    assert sum(packed.input_ids, []) == stream


def test_collator_masks_padding_only():
    """An end-of-text token inside a sequence stays a target even when it is the padding token."""
    from overfit_lab.batching import IGNORE_INDEX, CausalLMCollator

    batch = CausalLMCollator(pad_token_id=0)([{"input_ids": [5, 6, 0]}, {"input_ids": [7]}])
    assert batch["labels"].tolist() == [[5, 6, 0], [7, IGNORE_INDEX, IGNORE_INDEX]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


# --------------------------------------------------------------------------- data and suites
def test_documents_from_text_files_without_labels(tmp_path, tiny_gpt2):
    from overfit_lab.data import load_task_data

    (tmp_path / "train.txt").write_text("\n".join(f"document number {i} ." for i in range(30)) + "\n\n")
    (tmp_path / "test.txt").write_text("a held out document .\nanother one .\n")
    raw = tiny_lm_suite_dict(tiny_gpt2, train_sizes=[10])
    raw["data"] = {"train": str(tmp_path / "train.txt"), "test": str(tmp_path / "test.txt"),
                   "validation_size": 5}
    data = load_task_data(validate_suite(raw))
    assert (len(data.train), len(data.validation), len(data.test)) == (25, 5, 2)
    assert data.label_names == ["document"] and set(data.train["label"]) == {0}


@pytest.mark.parametrize(("change", "key"), [
    ({"grid": {"label_noise": [0.0, 0.1]}}, "grid.label_noise"),
    ({"grid": {"strategies": ["augment"]}}, "strategies.augment.augment"),
    ({"checks": {"calibrated": {"metric": "ece", "max": 0.2}}}, "checks.calibrated.metric"),
])
def test_what_a_causal_lm_cannot_do_is_refused(tiny_gpt2, change, key):
    raw = tiny_lm_suite_dict(tiny_gpt2)
    for section, values in change.items():
        raw[section] = {**raw.get(section, {}), **values}
    with pytest.raises(OverfitLabError) as error:
        validate_suite(raw, source="lm.toml")
    assert error.value.key == key


def test_a_classifier_model_is_refused_for_a_causal_lm(tiny_model):
    from overfit_lab.model_checks import check_suite_model

    with pytest.raises(OverfitLabError, match="bidirectional encoder"):
        check_suite_model(validate_suite(tiny_lm_suite_dict(tiny_model)))


def test_each_task_runs_the_adapters_it_names():
    from overfit_lab.diagnostics.registry import adapters
    from overfit_lab.suite import DiagnosticsSpec
    from overfit_lab.tasks import TASKS

    for name, task in TASKS.items():
        assert set(adapters(name)) == set(task.diagnostics)
        assert set(task.diagnostics) | set(task.skipped) <= set(DiagnosticsSpec.model_fields)


# --------------------------------------------------------------------------- training
@pytest.mark.parametrize("architecture", ["tiny_gpt2", "tiny_llama"])
def test_training_records_perplexity_per_epoch(architecture, request):
    raw = tiny_lm_suite_dict(request.getfixturevalue(architecture))
    raw["diagnostics"] = DIAGNOSTICS_OFF
    (cell,) = build_grid(validate_suite(raw))
    result = run_cell(cell)
    assert result.status == "finished", result.reason
    frame = pd.DataFrame([row.__dict__ for row in result.metrics])
    wide = frame.pivot_table(index=["epoch", "split"], columns="metric", values="value")
    assert set(wide.index.get_level_values("epoch")) == {1, 2, 3}
    assert np.allclose(wide["perplexity"], np.exp(wide["loss"]))
    train = wide.xs("train", level="split")
    assert train["loss"].is_monotonic_decreasing  # lr 1e-2 on 40 documents: the training loss falls
    assert train.loc[3, "loss"] < 0.8 * train.loc[1, "loss"]
    assert {"test"} <= set(frame.loc[frame["epoch"] == 3, "split"])


def test_packed_sequences_train_on_blocks(tiny_gpt2):
    raw = tiny_lm_suite_dict(tiny_gpt2, epochs=[1])
    raw["task"]["sequences"] = "pack"
    raw["diagnostics"] = DIAGNOSTICS_OFF
    (cell,) = build_grid(validate_suite(raw))
    result = run_cell(cell)
    assert result.status == "finished", result.reason
    assert result.info["train_examples"] < 40  # 40 short reviews make fewer 48-token blocks


# --------------------------------------------------------------------------- LoRA
def _lora_cell(model_dir, **suite):
    raw = tiny_lm_suite_dict(model_dir, strategies=["lora_r4"], epochs=[2], **suite)
    raw["diagnostics"] = DIAGNOSTICS_OFF
    (cell,) = build_grid(validate_suite(raw))
    return cell


@pytest.mark.parametrize("architecture", ["tiny_gpt2", "tiny_llama"])
def test_lora_trains_only_the_adapters_and_merges_back_exactly(architecture, request, monkeypatch):
    from overfit_lab import training
    from overfit_lab.lora import add_adapters, merged
    from overfit_lab.suite import LoraSpec

    path = str(request.getfixturevalue(architecture))
    pretrained = load_causal_lm(path)
    before = {k: v.clone() for k, v in pretrained.state_dict().items()}
    torch.manual_seed(0)
    adapted = add_adapters(load_causal_lm(path), LoraSpec(r=4, alpha=8), peft_task="CAUSAL_LM")
    trainable = {n for n, p in adapted.named_parameters() if p.requires_grad}
    assert trainable and all("lora_A" in n or "lora_B" in n for n in trainable)

    kept = {}

    def recording(model, spec, *, peft_task):
        kept["model"] = add_adapters(model, spec, peft_task=peft_task)
        return kept["model"]

    monkeypatch.setattr(training, "add_adapters", recording)
    result = run_cell(_lora_cell(path))
    assert result.status == "finished", result.reason
    assert result.info["trainable_parameters"] == sum(p.numel() for n, p in adapted.named_parameters()
                                                      if n in trainable)
    model = kept["model"].eval()
    base = model.get_base_model().state_dict()
    for name, value in before.items():  # the pretrained weights did not move
        wrapped = ".base_layer.".join(name.rsplit(".", 1))
        torch.testing.assert_close(base[name if name in base else wrapped], value, rtol=0, atol=0)
    combined = merged(model).eval()
    ids = torch.tensor([[1, 5, 9, 3, 7, 2]])
    with torch.no_grad():
        torch.testing.assert_close(combined(input_ids=ids).logits, model(input_ids=ids).logits,
                                   rtol=1e-5, atol=1e-5)
    # the merged weight is W + (alpha / r) B A, computed here from the adapter's matrices
    for name, module in model.named_modules():
        if hasattr(module, "lora_A") and "default" in module.lora_A:
            delta = module.lora_B["default"].weight @ module.lora_A["default"].weight * (8 / 4)
            if getattr(module, "fan_in_fan_out", False):
                delta = delta.T
            target = name.replace("base_model.model.", "")
            expected = module.base_layer.weight + delta
            torch.testing.assert_close(combined.get_submodule(target).weight, expected, rtol=1e-6, atol=1e-6)
            assert module.lora_B["default"].weight.abs().sum() > 0  # trained away from its zero start


def test_lora_on_a_classifier_trains_the_adapters_and_the_head(tiny_model, tiny_csv):
    from conftest import tiny_suite_dict

    raw = tiny_suite_dict(tiny_model, tiny_csv, train_sizes=[40], epochs=[1], strategies=["lora"], seeds=[0])
    raw["diagnostics"] = {"checkpoints": ["final"], **{name: {"enabled": False} for name in
                                                       ("robustness", "bias", "calibration", "memorization")}}
    (cell,) = build_grid(validate_suite(raw))
    result = run_cell(cell)
    assert result.status == "finished", result.reason
    from overfit_lab.models import load_classifier

    full = load_classifier(str(tiny_model), ["0", "1"])
    head = sum(p.numel() for n, p in full.named_parameters() if n.startswith("classifier"))
    hidden, layers = 32, 2  # the tiny BERT: rank 8 on query and value of each layer
    adapters = layers * 2 * (8 * hidden + hidden * 8)
    assert result.info["trainable_parameters"] == adapters + head
    names = {row.metric for row in result.diagnostics}
    assert {"cka", "alpha"} <= names  # drift and the spectra read the merged weights


def test_lora_rank_names_resolve():
    from overfit_lab.strategies import resolve_strategy, strategy_library

    spec = resolve_strategy("lora_r32", strategy_library())
    assert (spec.lora.r, spec.lora.alpha) == (32, 64)
    with pytest.raises(KeyError):
        resolve_strategy("lora_r0", strategy_library())


# --------------------------------------------------------------------------- a whole run
@pytest.fixture(scope="module")
def lm_runs(tiny_llama, tmp_path_factory):
    """Two runs of the same grid (baseline and LoRA, 2 seeds, every LM diagnostic)."""
    raw = tiny_lm_suite_dict(tiny_llama, strategies=["baseline", "lora"], seeds=[0, 1])
    suite = validate_suite(raw)
    folder = tmp_path_factory.mktemp("lm-runs")
    return [run_suite(suite, output=folder / name, quiet=True) for name in ("a", "b")]


def test_a_run_stores_perplexity_and_the_lm_diagnostics(lm_runs):
    run = lm_runs[0]
    assert (run.cells["status"] == "finished").all()
    general = run.generalization
    assert np.allclose(general["perplexity_ratio"], np.exp(general["gap_loss"]))
    assert "test_macro_f1" not in general
    assert set(general["verdict"]) <= {"under-trained", "well fit", "overfit", "undetermined"}
    scores = run.cell_scores(extra=True)
    for name in ("test_perplexity", "perplexity_ratio", "membership_advantage", "extraction_advantage",
                 "extraction_rate", "forgetting_ratio", "worst_perplexity_change",
                 "worst_perplexity_change_pretrained", "mean_cka", "mean_alpha"):
        assert scores[name].notna().all(), name
    assert "ece" not in scores and "bias_amplification" not in scores
    forgetting = run.final_rows("forgetting_ratio").set_index("cell_id")["value"]
    before = run.final_rows("probe_perplexity_before").set_index("cell_id")["value"]
    after = run.final_rows("probe_perplexity_after").set_index("cell_id")["value"]
    assert np.allclose(forgetting, after / before)
    assert run.diagnostic_failures.empty


def test_reports_word_a_causal_lm(lm_runs):
    from rich.console import Console

    from overfit_lab.report.html import render_report
    from overfit_lab.report.terminal import print_summary

    run = lm_runs[0]
    console = Console(record=True, width=110)
    print_summary(run, console)
    text = console.export_text()
    assert "test PPL" in text and "PPL ratio" in text and "next-token accuracy" in text
    assert "forgetting" in text and "extract adv" in text
    assert re.search(r"not measured for a causal-lm task: calibration \(.*\); bias", " ".join(text.split()))
    html = render_report(run)
    assert 'id="language"' in html and "Forgetting" in html and "Not measured for a causal-lm task" in html


def test_checks_baseline_compare_and_plugin_on_a_causal_lm(lm_runs, tmp_path, pytester):
    from overfit_lab import check_run
    from overfit_lab.checks import compare_run_scores, save_baseline
    from overfit_lab.suite import CheckSpec

    a, b = lm_runs
    report = check_run(a, checks={"ppl": CheckSpec(metric="test_perplexity", max=1e6),
                                  "forgetting": CheckSpec(metric="forgetting_ratio", max=1e-3)})
    assert not report.passed and report.failed_conditions["check"].tolist() == ["forgetting"] * 2
    baseline = save_baseline(a, tmp_path / "baseline.json")
    regressions = check_run(b, baseline=baseline).regressions
    assert {"test_perplexity", "forgetting_ratio", "extraction_advantage"} <= set(regressions["metric"])
    assert set(regressions["verdict"]) == {"no change"}  # the same grid and seeds: the same figures
    frame = compare_run_scores(a, b)
    assert (frame["difference"].abs() < 1e-12).all()
    pytester.makefile(".toml", lm_checks='[checks.ppl]\nmetric = "test_perplexity"\nmax = 1e6\n'
                                         '[checks.memorised]\nmetric = "extraction_advantage"\nmax = -1.0\n')
    pytester.makepyfile(f"""
        def test_lm_recipe(overfit_lab_check):
            overfit_lab_check(run={str(a.run_dir)!r}, checks="lm_checks.toml")
        """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*- memorised [[]n=40, baseline[]]: extraction_advantage mean * fails <= -1*"])
    assert "- ppl" not in result.stdout.str()


def test_audit_of_a_fine_tuned_causal_lm(tiny_gpt2, tmp_path):
    from typer.testing import CliRunner

    from overfit_lab.cli import app
    from overfit_lab.data.builtin import generate_reviews

    model_dir = tmp_path / "tuned"
    load_causal_lm(str(tiny_gpt2)).save_pretrained(model_dir)
    load_tokenizer(str(tiny_gpt2)).save_pretrained(model_dir)
    frame = generate_reviews(60, 10, 30, seed=1)
    (tmp_path / "train.txt").write_text("\n".join(frame[frame["split"] == "train"]["text"]))
    frame[frame["split"] == "test"][["text"]].to_csv(tmp_path / "test.csv", index=False)
    result = CliRunner().invoke(app, ["audit", "--task", "causal-lm", "--model", str(model_dir),
                                      "--train", str(tmp_path / "train.txt"),
                                      "--test", str(tmp_path / "test.csv"),
                                      "--reference", str(tiny_gpt2), "--output", str(tmp_path / "audit"),
                                      "--max-length", "48", "--quiet"])
    assert result.exit_code == 0, result.output
    run = load_run(tmp_path / "audit")
    scores = run.cell_scores(extra=True)
    assert run.suite.task.type == "causal-lm"
    # the model is the pretrained one: nothing forgotten, no drift (every layer unchanged, so the
    # mean over changed layers has nothing to average)
    assert scores["forgetting_ratio"].iloc[0] == pytest.approx(1.0, abs=1e-9)
    assert scores["mean_cka_all"].iloc[0] == pytest.approx(1.0, abs=1e-6)
    assert np.isnan(scores["mean_cka"].iloc[0])
    assert math.isfinite(scores["test_perplexity"].iloc[0])
    assert math.isfinite(scores["membership_advantage"].iloc[0])


def test_dropout_on_a_model_without_dropout_modules_fails_the_cell(tiny_llama):
    """Llama applies attention dropout as a function with the rate fixed at build time: a dropout
    strategy would change nothing, so the cell fails with the reason instead of training as if
    regularized."""
    raw = tiny_lm_suite_dict(tiny_llama, strategies=["dropout"], epochs=[1])
    raw["diagnostics"] = DIAGNOSTICS_OFF
    (cell,) = build_grid(validate_suite(raw))
    result = run_cell(cell)
    assert result.status == "failed" and "no dropout module to set" in result.reason


def test_extraction_on_a_tiny_llama_that_memorised_half_a_corpus():
    """As tests/test_extraction.py does for GPT-2, on Llama (another cache implementation): 8 random
    sequences trained on are extracted, 8 never seen are not, and the cached greedy decoding equals
    re-running the whole sequence at every step."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from overfit_lab.diagnostics.extraction import extraction_rate, greedy_continuations

    corpus = np.random.default_rng(0).integers(1, 50, size=(16, 24))
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=64, intermediate_size=128,
                                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                                         max_position_embeddings=64))
    members = torch.from_numpy(corpus[:8])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    for _ in range(200):
        loss = model(input_ids=members, labels=members).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    size = {"prefix_length": 8, "suffix_length": 16}
    assert extraction_rate(model, corpus[:8].tolist(), **size) >= 0.75
    assert extraction_rate(model, corpus[8:].tolist(), **size) <= 0.125
    model.eval()
    prefixes = [row[:8].tolist() for row in corpus]
    reference = []
    with torch.no_grad():
        for prefix in prefixes:
            tokens = list(prefix)
            for _ in range(6):
                logits = model(input_ids=torch.tensor([tokens]), use_cache=False).logits
                tokens.append(int(logits[0, -1].argmax()))
            reference.append(tokens[8:])
    np.testing.assert_array_equal(greedy_continuations(model, prefixes, length=6, batch_size=5), reference)

"""Checks, baselines, regressions, JUnit/Markdown output and the check/baseline/compare commands."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_suite_dict, tiny_suite_toml
from scipy import stats
from typer.testing import CliRunner

from overfit_lab import OverfitLabError, run_suite
from overfit_lab.checks import (
    check_run,
    compare_run_scores,
    evaluate_checks,
    load_baseline,
    load_checks,
    save_baseline,
)
from overfit_lab.cli import app
from overfit_lab.report.ci import junit_xml, markdown_summary
from overfit_lab.stats import compare_runs
from overfit_lab.suite import CheckSpec, validate_suite

LIGHT = {"checkpoints": ["final"], "robustness": {"ops": ["casing", "word_dropout"], "severities": [0.3],
                                                  "subsample": 20},
         "bias": {"intervals": False, "subsample": 20}, "drift": {"probe_size": 16}}


def _suite(model, data, **changes):
    raw = tiny_suite_dict(model, data, train_sizes=[120], epochs=[4])
    raw["diagnostics"] = LIGHT
    for key, value in changes.items():
        raw[key] = value
    return validate_suite(raw)


@pytest.fixture(scope="module")
def good_run(tiny_model, tiny_csv, tmp_path_factory):
    """2 seeds x (baseline, freeze1) at one size: the recipe under test."""
    return run_suite(_suite(tiny_model, tiny_csv), output=tmp_path_factory.mktemp("runs") / "good",
                     quiet=True)


@pytest.fixture(scope="module")
def idle_run(tiny_model, tiny_csv, tmp_path_factory):
    """The same grid with a learning rate too small to learn anything: a worse recipe."""
    raw = tiny_suite_dict(tiny_model, tiny_csv, train_sizes=[120], epochs=[4])
    raw["diagnostics"] = LIGHT
    raw["recipe"]["learning_rate"] = 1e-9
    return run_suite(validate_suite(raw), output=tmp_path_factory.mktemp("runs") / "idle", quiet=True)


# ------------------------------------------------------------------------------- suite validation
@pytest.mark.parametrize(("check", "key", "words"), [
    ({"metric": "gap_acc", "max": 0.1}, "checks.c.metric", "did you mean 'gap_accuracy'"),
    ({"metric": "ece", "max": -0.1}, "checks.c.max", "can never pass"),
    ({"metric": "test_accuracy", "min": 1.5}, "checks.c.min", "can never pass"),
    ({"metric": "ece", "max": 0.1, "sizes": [999]}, "checks.c.sizes", "matches no cell"),
    ({"metric": "ece", "max": 0.1, "strategies": ["nope"]}, "checks.c.strategies", "matches no cell"),
    ({"metric": "ece"}, "checks.c", "give min, max or both"),
    ({"metric": "ece", "min": 0.5, "max": 0.1}, "checks.c", "is above max"),
    ({"metric": "ece", "max": 0.1, "bound": "upper99"}, "checks.c.bound", "upper95"),
    ({"metric": "ece", "max": 0.1, "checkpoint": "best"}, "checks.c.checkpoint", "best checkpoint"),
])
def test_bad_checks_are_suite_errors(tiny_model, tiny_csv, check, key, words):
    with pytest.raises(OverfitLabError) as err:
        _suite(tiny_model, tiny_csv, checks={"c": check})
    assert err.value.key == key and words in str(err.value)


def test_confidence_bound_needs_two_seeds(tiny_model, tiny_csv):
    raw = tiny_suite_dict(tiny_model, tiny_csv, seeds=[0])
    raw["checks"] = {"gap": {"metric": "gap_accuracy", "max": 0.2, "bound": "upper95"}}
    with pytest.raises(OverfitLabError, match="has one seed") as err:
        validate_suite(raw)
    assert err.value.key == "checks.gap.bound"


def test_unknown_regression_metric_is_an_error(tiny_model, tiny_csv):
    with pytest.raises(OverfitLabError, match="unknown metric 'accuracy'"):
        _suite(tiny_model, tiny_csv, regression={"metrics": ["accuracy"]})


# ------------------------------------------------------------------------------- conditions
def test_conditions_use_the_mean_or_a_confidence_bound(good_run):
    scores = good_run.scores
    gap = scores[scores.strategy == "baseline"]["gap_loss"].to_numpy()
    mean = gap.mean()
    low, high = stats.t.interval(0.95, len(gap) - 1, loc=mean, scale=stats.sem(gap))
    threshold = (mean + high) / 2  # the mean passes, the upper bound does not
    checks = {"by_mean": CheckSpec(metric="gap_loss", max=threshold, strategies=["baseline"]),
              "by_bound": CheckSpec(metric="gap_loss", max=threshold, bound="upper95",
                                    strategies=["baseline"])}
    rows = evaluate_checks(good_run, checks).set_index("check")
    assert rows.loc["by_mean", "passed"] and not rows.loc["by_bound", "passed"]
    assert rows.loc["by_mean", "value"] == pytest.approx(mean)
    assert rows.loc["by_bound", "value"] == pytest.approx(high)
    assert rows.loc["by_bound", "n"] == 2
    assert "fails <=" in rows.loc["by_bound", "message"] and f"{high:.4f}" in rows.loc["by_bound", "message"]
    assert rows.loc["cells finished", "passed"]


def test_conditions_cover_every_size_and_strategy_in_scope(good_run):
    rows = evaluate_checks(good_run, {"f1": CheckSpec(metric="test_macro_f1", min=0.0),
                                      "ece": CheckSpec(metric="ece", max=1.0, strategies=["freeze1"])})
    assert sorted(rows[rows.check == "f1"]["strategy"]) == ["baseline", "freeze1"]
    assert list(rows[rows.check == "ece"]["strategy"]) == ["freeze1"]
    assert rows["passed"].all()


def test_extra_metrics_can_be_checked(good_run):
    """A stored diagnostic beyond the headline scores: its per-cell mean, averaged over seeds."""
    rows = evaluate_checks(good_run, {"brier": CheckSpec(metric="brier", max=2.0, strategies=["baseline"])})
    diag = good_run.diagnostics.merge(good_run.cells[["cell_id", "strategy"]])
    expected = diag[(diag.metric == "brier") & (diag.strategy == "baseline")]["value"].mean()
    assert rows.set_index("check").loc["brier", "value"] == pytest.approx(expected)


def test_switched_off_diagnostic_fails_its_check(tiny_model, tiny_csv, tmp_path):
    raw = tiny_suite_dict(tiny_model, tiny_csv, train_sizes=[40], epochs=[1], strategies=["baseline"],
                          seeds=[0])
    raw["diagnostics"] = {**LIGHT, "calibration": {"enabled": False}, "robustness": {"enabled": False},
                          "bias": {"enabled": False}, "drift": {"enabled": False}}
    raw["checks"] = {"ece": {"metric": "ece", "max": 0.5}}
    run = run_suite(validate_suite(raw), output=tmp_path / "r", quiet=True)
    report = check_run(run)
    assert not report.passed and report.exit_code == 1
    assert "was not computed" in report.failures()[0]


def test_failed_cells_fail_the_check(good_run):
    run = good_run.replace(cells=good_run.cells.assign(
        status=["failed"] + ["finished"] * (len(good_run.cells) - 1), reason="non-finite training loss"))
    rows = evaluate_checks(run, {})
    assert not rows.set_index("check").loc["cells finished", "passed"]
    assert "1 of 4 cells failed" in rows.iloc[0]["message"]


# ------------------------------------------------------------------------------- two-run statistics
def _frame(values: dict[int, float], metric: str = "m", strategy: str = "s") -> pd.DataFrame:
    return pd.DataFrame({"train_size": 100, "label_noise": 0.0, "strategy": strategy, "seed": list(values),
                         metric: list(values.values())})


def test_compare_runs_pairs_matching_seeds_like_scipy():
    before = _frame({0: 0.80, 1: 0.82, 2: 0.81, 3: 0.83})
    after = _frame({0: 0.75, 1: 0.78, 2: 0.74, 3: 0.79})
    row = compare_runs(before, after, {"m": True}, tolerance=0.01).iloc[0]
    expected = stats.ttest_rel(after["m"], before["m"])
    assert row.test == "paired t" and row.pvalue == pytest.approx(expected.pvalue)
    assert row.difference == pytest.approx(after["m"].mean() - before["m"].mean())
    d = after["m"].to_numpy() - before["m"].to_numpy()
    low, high = stats.t.interval(0.95, 3, loc=d.mean(), scale=stats.sem(d))
    assert (row.low, row.high) == (pytest.approx(low), pytest.approx(high))
    assert row.verdict == "regressed"


def test_compare_runs_uses_welch_for_other_seeds():
    before = _frame({0: 0.80, 1: 0.82, 2: 0.81})
    after = _frame({5: 0.70, 6: 0.78, 7: 0.74, 8: 0.71})
    row = compare_runs(before, after, {"m": True}).iloc[0]
    expected = stats.ttest_ind(after["m"], before["m"], equal_var=False)
    assert row.test == "Welch t" and row.pvalue == pytest.approx(expected.pvalue)
    interval = expected.confidence_interval(0.95)
    assert (row.low, row.high) == (pytest.approx(interval.low), pytest.approx(interval.high))


def test_a_change_within_tolerance_or_not_significant_is_no_regression():
    before = _frame({0: 0.80, 1: 0.82, 2: 0.81})
    within = compare_runs(before, _frame({0: 0.79, 1: 0.81, 2: 0.80}), {"m": True}, tolerance=0.02)
    assert within.iloc[0].verdict == "no change"
    noisy = compare_runs(before, _frame({0: 0.60, 1: 0.90, 2: 0.70}), {"m": True}, tolerance=0.01)
    assert noisy.iloc[0].pvalue > 0.05 and noisy.iloc[0].verdict == "no change"


def test_lower_is_better_and_one_seed():
    worse = compare_runs(_frame({0: 0.05}), _frame({0: 0.09}), {"m": False}, tolerance=0.02).iloc[0]
    assert worse.test == "none" and worse.verdict == "regressed"
    better = compare_runs(_frame({0: 0.05}), _frame({0: 0.01}), {"m": False}, tolerance=0.02).iloc[0]
    assert better.verdict == "improved"


def test_compare_runs_corrects_across_rows():
    before = pd.concat([_frame({0: 0.80, 1: 0.82, 2: 0.81}, strategy=s) for s in "ab"])
    after = pd.concat([_frame({0: 0.70, 1: 0.73, 2: 0.70}, strategy="a"),
                       _frame({0: 0.79, 1: 0.80, 2: 0.82}, strategy="b")])
    frame = compare_runs(before, after, {"m": True}, correction="holm")
    raw = frame["pvalue"].to_numpy()
    order = np.argsort(raw)
    expected = np.empty(2)
    expected[order] = np.maximum.accumulate(np.minimum(1, raw[order] * np.array([2, 1])))
    assert frame["p_adjusted"].to_numpy() == pytest.approx(expected)


# ------------------------------------------------------------------------------- baselines
def test_baseline_round_trip(good_run, tmp_path):
    path = save_baseline(good_run, tmp_path / "b.json")
    document = json.loads(path.read_text())
    assert document["suite"] == "tiny" and document["seeds"] == [0, 1]
    entry = next(e for e in document["metrics"]
                 if e["metric"] == "test_accuracy" and e["strategy"] == "baseline")
    values = good_run.scores.query("strategy == 'baseline'").set_index("seed")["test_accuracy"]
    assert entry["values"] == {str(k): pytest.approx(v) for k, v in values.items()}
    assert entry["mean"] == pytest.approx(values.mean()) and entry["n"] == 2
    frame = load_baseline(path)
    assert set(frame["strategy"]) == {"baseline", "freeze1"} and "ece" in frame.columns


def test_same_run_against_its_own_baseline_has_no_regression(good_run, tmp_path):
    report = check_run(good_run, baseline=save_baseline(good_run, tmp_path / "b.json"))
    assert report.passed and not report.regressions.empty
    assert set(report.regressions["verdict"]) == {"no change"}


def test_worse_recipe_regresses_against_the_baseline(good_run, idle_run, tmp_path):
    baseline = save_baseline(good_run, tmp_path / "b.json")
    report = check_run(idle_run, baseline=baseline)
    gaps = report.regressions.set_index(["strategy", "metric"])
    # learning nothing: the test accuracy falls; the verdict follows the tolerance and the test
    drop = gaps.loc[("baseline", "test_accuracy")]
    assert drop.difference < 0 and drop.test == "paired t"
    significant = drop.p_adjusted < 0.05 and -drop.difference > 0.02
    assert drop.verdict == ("regressed" if significant else "no change")


def test_bad_baseline_file_is_a_user_error(tmp_path):
    bad = tmp_path / "b.json"
    bad.write_text('{"format": "something else"}')
    with pytest.raises(OverfitLabError, match="not an overfit-lab baseline") as err:
        load_baseline(bad)
    assert err.value.key == "--baseline"
    with pytest.raises(OverfitLabError, match="no such baseline file"):
        load_baseline(tmp_path / "missing.json")


# ------------------------------------------------------------------------------- CI output
def test_junit_has_a_case_per_condition_and_baselined_metric(good_run, tmp_path):
    checks = {"gap": CheckSpec(metric="gap_accuracy", max=-1.0 + 1e-9),  # cannot pass (gap >= -1)
              "f1": CheckSpec(metric="test_macro_f1", min=0.0)}
    baseline = save_baseline(good_run, tmp_path / "b.json")
    report = check_run(good_run, checks=checks, baseline=baseline)
    root = ET.fromstring(junit_xml(report).split("\n", 1)[1])
    cases = root.findall("./testsuite/testcase")
    n_conditions = 1 + 2 * 2  # cells finished + 2 checks x 2 strategies
    assert len(cases) == n_conditions + len(report.regressions)
    failed = [c for c in cases if c.find("failure") is not None]
    assert len(failed) == 2 and all("gap" in c.get("name") for c in failed)
    assert "gap_accuracy mean" in failed[0].find("failure").get("message")
    assert root.get("failures") == "2"
    markdown = markdown_summary(report)
    assert "FAILED" in markdown and markdown.count("❌") == 2 and "| ✅ |" in markdown


def test_load_checks_validates_against_the_suite(good_run, tmp_path):
    path = tmp_path / "checks.toml"
    path.write_text('[checks.gap]\nmetric = "gap_accuracy"\nmax = 0.3\nstrategies = ["baseline"]\n')
    suite = load_checks(path, good_run.suite)
    assert suite.checks["gap"].max == 0.3
    path.write_text('[checks.gap]\nmetric = "gap_accuracy"\nmax = 0.3\nsizes = [5]\n')
    with pytest.raises(OverfitLabError, match="matches no cell") as err:
        load_checks(path, good_run.suite)
    assert err.value.file == str(path)


# ------------------------------------------------------------------------------- commands
def test_check_and_baseline_commands(good_run, idle_run, tmp_path):
    runner = CliRunner()
    baseline = tmp_path / "baseline.json"
    result = runner.invoke(app, ["baseline", "save", str(good_run.run_dir), "--to", str(baseline)])
    assert result.exit_code == 0 and baseline.is_file()
    suite_file = tmp_path / "checks.toml"
    suite_file.write_text('[checks.f1]\nmetric = "test_macro_f1"\nmin = 0.0\n')
    junit, markdown = tmp_path / "r.xml", tmp_path / "r.md"
    ok = runner.invoke(app, ["check", "--run", str(good_run.run_dir), "--baseline", str(baseline),
                             "--junit", str(junit), "--markdown", str(markdown)])
    assert ok.exit_code == 0, ok.output
    assert ET.parse(junit).getroot().get("failures") == "0" and "passed" in markdown.read_text()
    # a strict condition fails with exit 1 and names its figures
    strict = tmp_path / "strict.toml"
    strict.write_text('name = "strict"\n[checks.acc]\nmetric = "test_accuracy"\nmin = 1.0\n')
    bad = runner.invoke(app, ["check", str(strict), "--run", str(idle_run.run_dir), "--junit", str(junit)])
    assert bad.exit_code == 1
    assert "test_accuracy mean" in bad.output and "fails >= 1" in bad.output
    assert int(ET.parse(junit).getroot().get("failures")) >= 1


def test_check_bad_input_exits_2(good_run, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[checks.x]\nmetric = "nonsense"\nmax = 1\n')
    result = subprocess.run([sys.executable, "-m", "overfit_lab", "check", str(bad), "--run",
                             str(good_run.run_dir)], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "checks.x.metric" in result.stderr and "unknown metric" in result.stderr
    result = subprocess.run([sys.executable, "-m", "overfit_lab", "check", "--run", str(good_run.run_dir),
                             "--baseline", str(tmp_path / "none.json")], capture_output=True, text=True)
    assert result.returncode == 2 and "no such baseline file" in result.stderr


def test_compare_command(good_run, idle_run, tmp_path):
    frame = compare_run_scores(good_run, idle_run)
    assert set(frame["strategy"]) == {"baseline", "freeze1"} and "test_accuracy" in set(frame["metric"])
    out = tmp_path / "cmp.html"
    result = CliRunner().invoke(app, ["compare", str(good_run.run_dir), str(idle_run.run_dir), "-o",
                                      str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "improved" in html and "regressed" in html and "<script" not in html
    assert "test acc" in result.output


def test_check_runs_the_suite(tiny_model, tiny_csv, tmp_path):
    """Without --run, check fine-tunes the suite first; a failed condition exits 1."""
    suite = tmp_path / "recipe.toml"
    perfect = '[checks.perfect]\nmetric = "test_accuracy"\nmin = 1.0\n'
    suite.write_text(tiny_suite_toml(tiny_model, tiny_csv, perfect))
    result = CliRunner().invoke(app, ["check", str(suite), "--output", str(tmp_path / "run"), "--markdown",
                                      str(tmp_path / "s.md")])
    assert result.exit_code == 1, result.output
    assert (tmp_path / "run" / "run.sqlite").is_file() and (tmp_path / "run" / "report.html").is_file()
    assert result.output.count("perfect") >= 1 and "FAILED" in (tmp_path / "s.md").read_text()


def test_compare_with_one_seed_claims_nothing(good_run, idle_run):
    def seed0(run):
        return run.replace(cells=run.cells[run.cells["seed"] == 0])

    frame = compare_run_scores(seed0(good_run), seed0(idle_run))
    assert not frame.empty and set(frame["verdict"]) == {"one seed: no test"}
    assert (frame["test"] == "none").all()

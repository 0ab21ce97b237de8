"""The HTML report: content, escaping, self-containment, the CLI, and a real headless browser."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_sentences, tiny_suite_dict

from overfit_lab import run_suite
from overfit_lab.report.html import render_report, write_report
from overfit_lab.suite import validate_suite

XSS = "<script>alert(1)</script>"
ARTIFACTS = Path(__file__).resolve().parents[1] / "reports" / "test-artifacts"
SECTIONS = ("verdict", "curves", "size", "comparison", "robustness", "bias", "calibration", "memorization",
            "drift", "spectral", "setup")
PLOTS = ("heatmap", "curves", "gap", "robustness", "reliability", "roc", "drift", "spectral", "datamap")


@pytest.fixture(scope="module")
def hostile_run(tiny_model, tmp_path_factory):
    """A finished run whose data and suite name carry a script tag."""
    tmp = tmp_path_factory.mktemp("hostile")
    frame = make_sentences(240, seed=1)
    frame["text"] = frame["text"] + " " + XSS
    frame.to_csv(tmp / "data.csv", index=False)
    raw = tiny_suite_dict(tiny_model, tmp / "data.csv", train_sizes=[40, 80], epochs=[1, 2],
                          seeds=[0, 1])
    raw["name"] = f"hostile {XSS}"
    raw["diagnostics"] = {"robustness": {"subsample": 20, "severities": [0.3, 0.6]},
                          "bias": {"intervals": True}}
    return run_suite(validate_suite(raw), output=tmp / "run", quiet=True)


def test_run_writes_report_with_every_section(hostile_run):
    path = hostile_run.run_dir / "report.html"
    assert path.is_file()
    html = path.read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f'<section id="{section}">' in html, section
    for plot in PLOTS:
        assert f'id="plot-{plot}"' in html, plot
    assert "freeze1" in html and "baseline" in html
    assert "Strategy comparison against baseline" in html
    # 240 rows, 80 held out, largest size 80: the attack's non-members are unused training rows
    assert hostile_run.membership_nonmembers == "pool"
    assert "no cell of this run trained on" in html and "not distributed like the training" not in html


def test_report_escapes_dataset_text(hostile_run):
    html = render_report(hostile_run)
    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown as text in the example tables



def test_figure_json_cannot_close_its_script_tag():
    import json

    import plotly.graph_objects as go

    from overfit_lab.report.html import _figure_json

    fig = go.Figure(go.Scatter(x=[1], y=[2], name=XSS + " & </script>"))
    text = _figure_json(fig)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text)["data"][0]["name"] == XSS + " & </script>"


def test_report_is_self_contained(hostile_run):
    html = render_report(hostile_run)
    assert not re.search(r"<(script|img|iframe)[^>]*\bsrc=", html)
    assert not re.search(r"<link\b", html)
    assert "Content-Security-Policy" in html


def test_report_command_writes_elsewhere(hostile_run, tmp_path):
    out = tmp_path / "nested" / "r.html"
    done = subprocess.run([sys.executable, "-m", "overfit_lab", "report", str(hostile_run.run_dir),
                           "--output", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert out.is_file() and out.stat().st_size > 1_000_000  # plotly.js is inlined
    bad = subprocess.run([sys.executable, "-m", "overfit_lab", "report", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def test_report_in_headless_chromium(hostile_run, tmp_path):
    """Every plot renders, no console errors, no network request, the script tag fires nothing."""
    playwright = pytest.importorskip("playwright.sync_api")
    executable = _chromium()
    if executable is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    path = write_report(hostile_run, tmp_path / "report.html")
    errors, dialogs, requests = [], [], []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})

            def route(r):
                if r.request.url.startswith("file:"):
                    r.continue_()
                else:  # the network is blocked: any other request is recorded and refused
                    requests.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(path.as_uri(), wait_until="load")
            page.wait_for_function(
                "() => [...document.querySelectorAll('.plot')].every(d => d.querySelector('.main-svg'))",
                timeout=60_000)
            rendered = page.evaluate("() => [...document.querySelectorAll('.plot')]"
                                     ".filter(d => d.querySelector('.main-svg')).map(d => d.id)")
            shown = page.inner_text("#robustness")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report-top.png"))
            page.locator("#comparison").screenshot(path=str(ARTIFACTS / "report-comparison.png"))
        finally:
            browser.close()
    assert sorted(rendered) == sorted(f"plot-{p}" for p in PLOTS)
    assert errors == []
    assert dialogs == []
    assert requests == []
    assert XSS in shown  # the dataset's script tag is displayed as text


def test_power_note_names_the_closest_call_when_nothing_survives_the_correction():
    import pandas as pd

    from overfit_lab.analysis import power_note
    from overfit_lab.stats import adjust_pvalues

    raw = [0.004, 0.03, 0.5, float("nan")]
    frame = pd.DataFrame({"train_size": [100, 200, 100, 100], "strategy": ["a", "b", "c", "d"],
                          "metric": ["test_accuracy", "gap_accuracy", "ece", "ece"], "n": [3, 3, 3, 3],
                          "t_pvalue": raw, "mean_difference": [0.02, -0.01, 0.0, 0.0]})
    frame["p_adjusted"] = adjust_pvalues(frame["t_pvalue"].to_numpy(), "holm")
    note = power_note(frame, alpha=0.01)
    assert note["tested"] == 3 and note["seeds"] == 3
    closest = note["closest"]
    assert (closest.strategy, closest.train_size, closest.mean_difference) == ("a", 100, 0.02)
    assert closest.p_adjusted == pytest.approx(0.012)  # Holm: 0.004 x 3 tested p-values
    assert power_note(frame, alpha=0.05) is None  # 0.012 < 0.05: something is significant
    assert power_note(frame.iloc[:0], alpha=0.05) is None


def test_learning_curve_rows_never_extrapolate_two_sizes_or_beyond_the_cap():
    import pandas as pd

    from overfit_lab.report.html import _curve_rows
    from overfit_lab.stats import learning_curves

    two = pd.DataFrame({"label_noise": 0.0, "strategy": "freeze4", "seed": 0, "train_size": [100, 1000],
                        "gap_accuracy": [0.30, 0.29]})
    assert _curve_rows(learning_curves(two))[0]["size"] == "needs 3 sizes"
    sizes = [100, 300, 1000]
    flat = pd.DataFrame({"label_noise": 0.0, "strategy": "s", "seed": 0, "train_size": sizes,
                         "gap_accuracy": [0.5 * n ** -0.05 for n in sizes]})
    assert _curve_rows(learning_curves(flat))[0]["size"] == "beyond 10× the largest size"
    exact = flat.assign(gap_accuracy=[2.0 * n ** -0.5 for n in sizes])
    assert _curve_rows(learning_curves(exact))[0]["size"].startswith("≈ 1,600 examples (95% interval")


def test_counterfactual_flip_rate_pools_counts_over_seeds_with_a_wilson_interval():
    """The report's flip rate is k/N over every seed's swapped texts, with scipy's Wilson interval
    (never the t interval over 2 seeds that reached below 0), and it states the counts."""
    from pathlib import Path

    from scipy.stats import binomtest

    from overfit_lab.analysis import RunResult
    from overfit_lab.store import StoredRun

    cells = pd.DataFrame({"cell_id": ["a", "b"], "train_size": [100, 100], "strategy": ["baseline"] * 2})
    rows = []
    for cell, flipped, n in (("a", 0, 48), ("b", 2, 47)):
        rows += [{"cell_id": cell, "checkpoint": "final", "metric": "counterfactual_flip_rate",
                  "group": None, "value": flipped / n},
                 {"cell_id": cell, "checkpoint": "final", "metric": "counterfactual_n", "group": None,
                  "value": float(n)},
                 {"cell_id": cell, "checkpoint": "final", "metric": "counterfactual_abs_change",
                  "group": None, "value": 0.01}]
    run = RunResult(StoredRun(run_dir=Path("."), suite=None, environment={}, meta={}, cells=cells,
                              metrics=pd.DataFrame(), diagnostics=pd.DataFrame(rows),
                              examples=pd.DataFrame()))
    (row,) = run.counterfactual_pooled.itertuples()
    expected = binomtest(2, 95).proportion_ci(method="wilson")
    assert (row.k, row.n, row.seeds, row.texts) == (2, 95, 2, 47.5)
    assert (row.low, row.high) == pytest.approx((expected.low, expected.high))
    assert row.rates == pytest.approx((0.0, 2 / 47))


@pytest.mark.parametrize(("mean", "low", "high", "values", "expected"), [
    (0.021, -0.244, 0.286, [0.0, 0.042], "0.021 (seeds 0.000, 0.042)"),  # 2 seeds: their values
    (0.5, 0.4, 0.6, [0.45, 0.5, 0.55], "0.500 ± 0.100"),
    (0.02, 0.0, 0.09, [0.0, 0.0, 0.06], "0.020 [0.000, 0.090]"),  # cut at 0: not symmetric
    (0.3, np.nan, np.nan, [0.3], "0.300"),
])
def test_interval_text_never_shows_a_symmetric_interval_that_is_not(mean, low, high, values, expected):
    from overfit_lab.report.formatting import interval

    assert interval(mean, low, high, values) == expected


def test_html_interval_is_clipped_to_the_metric_range():
    """Three seeds of a proportion near 0: the t interval (scipy) reaches below 0; the text is cut at 0."""
    import pandas as pd
    from scipy import stats

    from overfit_lab.report.formatting import compact, interval
    from overfit_lab.stats import summarize

    values = np.array([0.0, 0.0, 0.03])
    low, high = stats.t.interval(0.95, 2, loc=values.mean(), scale=stats.sem(values))
    assert low < 0
    frame = pd.DataFrame({"train_size": 10, "label_noise": 0.0, "strategy": "s", "seed": [0, 1, 2],
                          "counterfactual_flip_rate": values})
    bounds = {"counterfactual_flip_rate": (0.0, 1.0)}
    row = summarize(frame, ["counterfactual_flip_rate"], bounds=bounds).iloc[0]
    assert interval(row["mean"], row["low"], row["high"], row["values"]) == (
        f"{values.mean():.3f} [0.000, {high:.3f}]")
    assert row["clipped"] and compact(row) == f"{values.mean():.3f}[0.00,{high:.2f}]"


def test_every_stored_metric_is_in_the_catalogue(hostile_run):
    """scores.py names every metric a run stores: a score (label, direction, range) or a per-row
    metric (what one row is); a new diagnostic's metric cannot slip in unnamed."""
    from overfit_lab.scores import ALL_SCORES, ROW_METRICS

    stored = set(hostile_run.diagnostics["metric"])
    assert stored - set(ALL_SCORES) - set(ROW_METRICS) == set()
    assert not set(ALL_SCORES) & set(ROW_METRICS)
    assert {"reliability_count", "membership_roc_tpr", "cka", "accuracy"} <= stored  # rows of each kind


def test_reliability_pools_seeds_weighted_by_bin_counts_and_curves_average_cells():
    """The analysis behind two figures, on hand-made rows of two seeds: each bin's accuracy and
    confidence pooled over seeds weighted by the bin's count (at the largest size only), and a
    per-layer curve as the plain mean over cells."""
    from pathlib import Path

    from overfit_lab.analysis import RunResult
    from overfit_lab.store import StoredRun

    cells = pd.DataFrame({"cell_id": ["a", "b", "c"], "train_size": [100, 100, 50], "strategy": "s",
                          "seed": [0, 1, 0]})
    rows = []
    for cell, count, accuracy, confidence in (("a", 10, 0.5, 0.6), ("b", 30, 0.9, 0.7), ("c", 5, 0.0, 0.1)):
        for metric, value in (("reliability_count", count), ("reliability_accuracy", accuracy),
                              ("reliability_confidence", confidence)):
            rows.append({"cell_id": cell, "checkpoint": "final", "metric": metric, "value": value,
                         "bin_low": 0.5, "bin_high": 0.75})
        rows.append({"cell_id": cell, "checkpoint": "final", "metric": "cka", "value": count / 100,
                     "layer": "layer.0"})
    run = RunResult(StoredRun(run_dir=Path("."), suite=None, environment={}, meta={}, cells=cells,
                              metrics=pd.DataFrame(), diagnostics=pd.DataFrame(rows),
                              examples=pd.DataFrame()))
    (row,) = run.reliability_pooled.itertuples()
    assert row.count == 40 and row.train_size == 100
    assert row.accuracy == pytest.approx((10 * 0.5 + 30 * 0.9) / 40)
    assert row.confidence == pytest.approx((10 * 0.6 + 30 * 0.7) / 40)
    every = run.row_curve("cka", "layer")
    assert every["value"].tolist() == pytest.approx([np.mean([0.10, 0.30, 0.05])])
    largest = run.row_curve("cka", "layer", largest_size=True)
    assert largest["value"].tolist() == pytest.approx([0.2]) and largest["train_size"].iloc[0] == 100

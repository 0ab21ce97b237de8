"""The pytest plugin, tested with pytest's own pytester (the plugin loads through its entry point)."""

from __future__ import annotations

import pytest
from conftest import tiny_suite_dict, tiny_suite_toml

from overfit_lab import run_suite
from overfit_lab.suite import validate_suite

pytest_plugins = ["pytester"]
DIAGNOSTICS = {"checkpoints": ["final"], "robustness": {"enabled": False}, "bias": {"enabled": False},
               "drift": {"enabled": False}, "spectral": {"enabled": False}}


@pytest.fixture(scope="module")
def one_cell_run(tiny_model, tiny_csv, tmp_path_factory):
    raw = tiny_suite_dict(tiny_model, tiny_csv, train_sizes=[40], epochs=[1], strategies=["baseline"],
                          seeds=[0])
    raw["diagnostics"] = DIAGNOSTICS
    return run_suite(validate_suite(raw), output=tmp_path_factory.mktemp("plugin") / "run", quiet=True)


def test_fixture_passes_and_fails_with_the_figures(pytester, one_cell_run):
    pytester.makefile(".toml", passing='[checks.loss]\nmetric = "test_loss"\nmin = 0.0\n',
                      failing='[checks.perfect]\nmetric = "test_accuracy"\nmin = 1.0\n'
                              '[checks.calibrated]\nmetric = "ece"\nmax = 1.0\n')
    pytester.makepyfile(f"""
        RUN = {str(one_cell_run.run_dir)!r}

        def test_recipe_ok(overfit_lab_check):
            report = overfit_lab_check(run=RUN, checks="passing.toml")
            assert report.passed

        def test_recipe_too_strict(overfit_lab_check):
            overfit_lab_check(run=RUN, checks="failing.toml")
        """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*overfit-lab checks of tiny failed*",
                                 "*- perfect [[]n=40, baseline[]]: test_accuracy mean * fails >= 1.*"])
    assert "calibrated" not in result.stdout.str()  # only failing conditions are listed


def test_fixture_runs_a_suite_and_checks_a_baseline(pytester, one_cell_run, tiny_model, tiny_csv):
    """The same recipe as the baseline's run gives the same figures: no regression."""
    from overfit_lab.checks import save_baseline

    extra = '[checks.loss]\nmetric = "test_loss"\nmin = 0.0\n'
    pytester.makefile(".toml", recipe=tiny_suite_toml(tiny_model, tiny_csv, extra))
    baseline = save_baseline(one_cell_run, pytester.path / "baseline.json")
    pytester.makepyfile(f"""
        def test_recipe(overfit_lab_check):
            report = overfit_lab_check("recipe.toml", baseline={str(baseline)!r})
            assert report.passed and len(report.regressions) > 0
            assert set(report.regressions["verdict"]) == {{"no change"}}
        """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)

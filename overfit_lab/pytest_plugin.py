"""pytest plugin: keep fine-tuning recipe tests with a team's other tests.

Registered through the ``pytest11`` entry point, so installing overfit-lab is enough. The
``overfit_lab_check`` fixture runs a suite (or an audit, or takes a finished run), evaluates its
``[checks]`` and an optional baseline, and fails the test with every failing condition and its
figures::

    def test_recipe_does_not_overfit(overfit_lab_check):
        overfit_lab_check("suites/recipe.toml", baseline="baselines/recipe.json")

    def test_deployed_model(overfit_lab_check):
        overfit_lab_check(audit={"model": "models/v3", "train": "data/train.csv",
                                 "test": "data/test.csv", "checks": "checks.toml"})

It returns the :class:`~overfit_lab.checks.CheckReport` when everything passed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


def assert_checks_pass(report) -> None:
    """Fail the calling test, listing every failing condition and regression with its figures."""
    if not report.passed:
        lines = "\n".join(f"  - {line}" for line in report.failures())
        pytest.fail(f"overfit-lab checks of {report.suite_name} failed ({report.run_dir}):\n{lines}",
                    pytrace=False)


@pytest.fixture
def overfit_lab_check(tmp_path: Path) -> Callable:
    """A function ``(suite=None, *, run=None, audit=None, checks=None, baseline=None, output=None)``
    that runs the suite (or the audit, a mapping of :func:`overfit_lab.audit` arguments, or loads
    the finished ``run``), evaluates its checks (or those of the ``checks`` TOML file) and the
    ``baseline``, and fails the test if anything failed. The run goes to a temporary directory
    unless ``output`` is given."""
    from .app import check as check_run_against
    from .app import obtain_run

    def check(suite: str | Path | None = None, *, run: str | Path | None = None, audit: dict | None = None,
              checks: str | Path | None = None, baseline: str | Path | None = None,
              output: str | Path | None = None):
        output = Path(output) if output is not None else tmp_path / "overfit-lab-run"
        result = obtain_run(suite=suite, run=run, audit=audit, output=output, quiet=True)
        report = check_run_against(result, checks=checks, baseline=baseline)
        assert_checks_pass(report)
        return report

    return check

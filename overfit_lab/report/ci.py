"""Check results for CI systems: JUnit XML and a Markdown job summary.

JUnit: one ``<testcase>`` per condition x scope and per baselined metric x scope, the figures in
the failure message (and in ``<system-out>`` for passing cases), readable by GitHub Actions,
GitLab, Jenkins and pytest-style viewers. Markdown: a table fit for ``$GITHUB_STEP_SUMMARY``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ..checks import CheckReport, regression_message, scope_label

__all__ = ["junit_xml", "markdown_summary"]


def junit_xml(report: CheckReport) -> str:
    """The report as a JUnit XML document."""
    cases = []
    for row in report.conditions.itertuples():
        cases.append((f"overfit_lab.checks.{row.check}",
                      f"{row.check} [{scope_label(row.train_size, row.strategy)}]",
                      bool(row.passed), row.message))
    if not report.regressions.empty:
        for row in report.regressions.itertuples():
            cases.append((f"overfit_lab.baseline.{row.metric}",
                          f"{row.metric} [{scope_label(row.train_size, row.strategy)}] vs baseline",
                          row.verdict != "regressed", f"{row.verdict}: {regression_message(row)}"))
    failures = sum(not ok for *_, ok, _ in cases)
    root = ET.Element("testsuites", name="overfit-lab", tests=str(len(cases)), failures=str(failures))
    suite = ET.SubElement(root, "testsuite", name=f"overfit-lab check: {report.suite_name}",
                          tests=str(len(cases)), failures=str(failures), errors="0", skipped="0")
    ET.SubElement(ET.SubElement(suite, "properties"), "property", name="run_dir", value=str(report.run_dir))
    for classname, name, ok, message in cases:
        case = ET.SubElement(suite, "testcase", classname=classname, name=name, time="0")
        if ok:
            ET.SubElement(case, "system-out").text = message
        else:
            failure = ET.SubElement(case, "failure", message=message, type="OverfitLabCheckFailure")
            failure.text = message
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def markdown_summary(report: CheckReport) -> str:
    """The report as Markdown: verdict line, conditions table, regressions table."""
    status = "passed" if report.passed else "FAILED"
    lines = [f"## overfit-lab check: {report.suite_name} {status}", ""]
    failed, regressed = len(report.failed_conditions), len(report.regressed)
    lines.append(f"{len(report.conditions) - failed} of {len(report.conditions)} conditions passed"
                 + (f"; {regressed} regressions against `{report.baseline}`" if report.baseline else "")
                 + f". Run: `{report.run_dir}`.")
    lines += ["", "| | check | scope | result |", "|---|---|---|---|"]
    for row in report.conditions.itertuples():
        mark = "✅" if row.passed else "❌"
        scope = scope_label(row.train_size, row.strategy)
        lines.append(f"| {mark} | {_md(row.check)} | {scope} | {_md(row.message)} |")
    if not report.regressions.empty:
        lines += ["", "| | metric | scope | baseline -> now |", "|---|---|---|---|"]
        marks = {"regressed": "❌", "improved": "⬆️", "no change": "✅"}
        for row in report.regressions.itertuples():
            scope = scope_label(row.train_size, row.strategy)
            lines.append(f"| {marks[row.verdict]} | {row.metric} | {scope} | "
                         f"{row.verdict}: {_md(regression_message(row))} |")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


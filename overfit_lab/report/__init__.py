"""Rendering a run: the terminal summary and progress (:mod:`.terminal`), the self-contained HTML
report (:mod:`.html`, :mod:`.figures`), CI files (:mod:`.ci`) and the wording of numbers
(:mod:`.formatting`). Everything here reads a :class:`~overfit_lab.analysis.RunResult` and
computes nothing of its own. Names load on first use (plotly and jinja2 only when HTML is made).
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "junit_xml": "ci",
    "markdown_summary": "ci",
    "render_report": "html",
    "write_comparison": "html",
    "write_report": "html",
    "make_console": "terminal",
    "print_summary": "terminal",
    "run_comparison_table": "terminal",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, {name: f".{module}" for name, module in _EXPORTS.items()})

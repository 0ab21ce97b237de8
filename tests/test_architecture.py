"""The package's shape: which module may import which (the flow of ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import tiny_suite_dict

from overfit_lab.progress import RunObserver
from overfit_lab.suite import validate_suite

PACKAGE = Path(__file__).resolve().parents[1] / "overfit_lab"


def _imports(module: str) -> set[str]:
    """Every module ``module``'s source imports, at the top or inside a function, resolved to
    absolute names (``from .x import y`` gives ``overfit_lab.x`` and ``overfit_lab.x.y``)."""
    path = PACKAGE.joinpath(*module.split(".")[1:]).with_suffix(".py")
    package = module.rsplit(".", 1)[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize(("module", "forbidden"), [
    ("overfit_lab.store", ("overfit_lab.diagnostics", "overfit_lab.scores", "overfit_lab.stats",
                           "overfit_lab.report", "overfit_lab.analysis")),
    ("overfit_lab.runner", ("overfit_lab.report", "overfit_lab.analysis", "rich")),
    ("overfit_lab.progress", ("overfit_lab.report", "rich")),
])
def test_module_imports_nothing_downstream(module, forbidden):
    leaked = sorted(m for m in _imports(module) if m.split(".")[0] in forbidden or m.startswith(forbidden))
    assert not leaked, leaked


def test_the_import_reader_sees_relative_and_lazy_imports():
    found = _imports("overfit_lab.app")  # report.terminal is imported inside run_suite
    assert {"overfit_lab.runner", "overfit_lab.report.terminal", "rich.console"} <= found


class _Recorder(RunObserver):
    def __init__(self):
        self.events = []

    def run_started(self, *, name, run_dir, total_cells, todo, work):
        self.events.append(("run", total_cells, len(todo)))

    def cell_started(self, cell):
        self.events.append(("start", cell.cell_id))

    def epoch_done(self, cell, epoch):
        self.events.append(("epoch", cell.cell_id, epoch))

    def cell_finished(self, cell, result):
        self.events.append(("done", cell.cell_id, result.status))

    def run_ended(self):
        self.events.append(("end",))


def test_runner_reports_each_cell_and_epoch_to_its_observer(tiny_model, tiny_csv, tmp_path):
    from overfit_lab.runner import open_store, run_grid

    suite = validate_suite(tiny_suite_dict(tiny_model, tiny_csv, train_sizes=[40], epochs=[1, 2],
                                           strategies=["baseline"], seeds=[0]))
    observer = _Recorder()
    store = open_store(suite, output=tmp_path / "run")
    assert run_grid(store, observer) == tmp_path / "run"
    (cell_id,) = store.finished_ids()
    assert observer.events == [("run", 1, 1), ("start", cell_id), ("epoch", cell_id, 1),
                               ("epoch", cell_id, 2), ("done", cell_id, "finished"), ("end",)]
    again = _Recorder()
    run_grid(store, again)  # resumed: nothing left to run
    assert again.events == [("run", 1, 0), ("end",)]

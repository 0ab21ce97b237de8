"""The package's shape: which module may import which (the flow of ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import tiny_suite_dict

from overfit_lab.progress import RunObserver
from overfit_lab.suite import validate_suite

PACKAGE = Path(__file__).resolve().parents[1] / "overfit_lab"


def _path(module: str) -> Path:
    path = PACKAGE.joinpath(*module.split(".")[1:])
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ["overfit_lab", *path.relative_to(PACKAGE).with_suffix("").parts]
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _imports(module: str) -> set[str]:
    """Every module ``module``'s source imports, at the top or inside a function, resolved to
    absolute names (``from .x import y`` gives ``overfit_lab.x`` and ``overfit_lab.x.y``)."""
    path = _path(module)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    names = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and getattr(block.test, "id", None) == "TYPE_CHECKING" for node in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in typing_only:  # `if TYPE_CHECKING:` imports never run
            continue
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
    # executors hand results back; only the driver (runner) writes the store
    *[(m, ("overfit_lab.store", "overfit_lab.runner", "overfit_lab.report", "overfit_lab.analysis", "rich"))
      for m in ("overfit_lab.execution", "overfit_lab.execution._base", "overfit_lab.execution.local",
                "overfit_lab.execution.ray")],
])
def test_module_imports_nothing_downstream(module, forbidden):
    leaked = sorted(m for m in _imports(module) if m.split(".")[0] in forbidden or m.startswith(forbidden))
    assert not leaked, leaked


REPORT_MAY_USE = ("overfit_lab.diagnostics.perturb.describe_severity",
                  "overfit_lab.diagnostics.perturb.headline_severities",
                  "overfit_lab.diagnostics.perturb.CHARACTER_OPS")


@pytest.mark.parametrize("module", [m for m in _modules() if m.startswith("overfit_lab.report")])
def test_reports_compute_no_statistic_and_no_verdict(module):
    """Reports render what the analysis computed: no stats, no diagnostics' metric functions, no
    verdicts or checks evaluated (the checks' wording helpers are allowed)."""
    leaked = sorted(
        m for m in _imports(module)
        if m.startswith(("overfit_lab.stats", "overfit_lab.diagnostics.generalization", "scipy", "sklearn"))
        or (m.startswith("overfit_lab.diagnostics.") and m.count(".") > 2 and m not in REPORT_MAY_USE)
        or m in ("overfit_lab.checks.check_run", "overfit_lab.checks.evaluate_checks",
                 "overfit_lab.checks.compare_with_baseline"))
    assert not leaked, leaked


def _with_parents(names: set[str]) -> set[str]:
    """Importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` first."""
    return names | {".".join(n.split(".")[:k]) for n in names for k in range(1, n.count(".") + 1)}


def test_no_import_cycle():
    """No chain of imports (at the top or inside functions, with the packages each import
    initializes first) leads a module back to itself."""
    modules = set(_modules())
    graph = {m: {i for i in _with_parents(_imports(m)) if i in modules and i != m
                 and not m.startswith(f"{i}.")} for m in modules}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != 1, " -> ".join([*path, nxt])
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(modules):
        if module not in state:
            visit(module, [module])


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

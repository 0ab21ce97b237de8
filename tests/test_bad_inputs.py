"""Issue 13.7: the bad-input corpus (tests/bad_inputs/, see its README.md) and fuzzing of suite loading.

Every case of the corpus is a command line on bad input that must end with exit status 2, exactly
one line on stderr (``error: FILE: KEY: what. Fix: ...``) and nothing else, no traceback, and no
run directory or other file left behind. Nothing here trains a model: ``training.run_cell`` is
replaced by one that fails the test, so a bad input found only once training started shows as a
failure rather than a slow pass.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import string
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import overfit_lab.training as runner_module  # where executors find run_cell
from overfit_lab.cli import app
from overfit_lab.errors import OverfitLabError
from overfit_lab.suite import Suite, load_suite

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
SUITES = sorted((CORPUS / "suites").glob("*.toml"))

# cases known to fail, with the reason (none today)
XFAIL: dict[str, str] = {}


def _expected(path: Path) -> str:
    """The ``# expect: WORDS`` line of a corpus file: words the error line must contain."""
    for line in path.read_bytes().decode("latin-1").splitlines():
        if line.startswith("# expect:"):
            return line.removeprefix("# expect:").strip()
    raise AssertionError(f"{path.name} has no '# expect:' line")


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def model_variants(tiny_model, tmp_path_factory) -> dict[str, Path]:
    """Broken copies of the tiny model: pickle weights only, and no tokenizer files."""
    import torch
    from safetensors.torch import load_file

    root = tmp_path_factory.mktemp("bad-models")
    pickle_only = root / "pickle_only"
    shutil.copytree(tiny_model, pickle_only)
    torch.save(load_file(pickle_only / "model.safetensors"), pickle_only / "pytorch_model.bin")
    (pickle_only / "model.safetensors").unlink()
    no_tokenizer = root / "no_tokenizer"
    no_tokenizer.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model / name, no_tokenizer / name)
    return {"MODEL": tiny_model, "MODEL_PICKLE_ONLY": pickle_only, "MODEL_NO_TOKENIZER": no_tokenizer}


@pytest.fixture
def corpus(tmp_path, model_variants, monkeypatch) -> Path:
    """The corpus copied into the test's folder (the working directory), with ``@MODEL@``-style
    tokens in its TOML files replaced by the model directories."""
    folder = tmp_path / "corpus"
    shutil.copytree(CORPUS, folder)
    for path in folder.rglob("*.toml"):
        data = path.read_bytes()
        for token, directory in model_variants.items():
            data = data.replace(f"@{token}@".encode(), str(directory).encode())
        path.write_bytes(data)
    monkeypatch.chdir(tmp_path)  # a default reports/ folder would land here, and be noticed
    monkeypatch.setattr(runner_module, "run_cell", _no_training)
    return folder


def _no_training(cell, **kwargs):
    raise AssertionError(f"bad input reached training (cell {cell.cell_id})")


@pytest.fixture(scope="module")
def good_run(tiny_model, tmp_path_factory) -> Path:
    """A finished two-seed run written straight into a store (no training), to check against."""
    from overfit_lab.rows import CellRow, DiagnosticRow, MetricRow
    from overfit_lab.store import RunStore
    from overfit_lab.suite import validate_suite
    from overfit_lab.training import CellResult

    suite = validate_suite({"name": "bad-input", "model": {"name": str(tiny_model), "max_length": 32},
                            "data": {"path": str(CORPUS / "data/good.csv"), "validation_size": 10,
                                     "test_size": 10},
                            "grid": {"train_sizes": [20], "epochs": [1], "seeds": [0, 1]}})
    store = RunStore.create(tmp_path_factory.mktemp("good-run") / "run", suite, {"seeds": [0, 1]},
                            meta={"label_names": ["0", "1"]})
    for seed in (0, 1):
        cell = CellRow(cell_id=f"n20-baseline-s{seed}", train_size=20, strategy="baseline", seed=seed,
                       label_noise=0.0, epochs=1, record_epochs=(1,), epoch_mode="shared",
                       epoch_mode_reason="constant schedule")
        metrics = [MetricRow(1, split, metric, value) for split in ("train", "validation", "test")
                   for metric, value in (("loss", 0.6), ("accuracy", 0.7 + seed / 20), ("macro_f1", 0.65))]
        store.commit(CellResult(cell=cell, status="finished", metrics=metrics, info={"wall_s": 1.0},
                                diagnostics=[DiagnosticRow("final", "ece", 0.1)], examples=[]))
    return store.run_dir


def _snapshot(*roots: Path) -> dict[str, str]:
    """Every file under ``roots`` with a hash of its content."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for root in roots for p in sorted(root.rglob("*")) if p.is_file()}


def _assert_bad_input(args: list[str], expect: str, *, watch: list[Path], out: Path | None = None) -> None:
    """Run the CLI in-process on ``args`` and hold it to the corpus' contract."""
    before = _snapshot(*watch)
    result = CliRunner().invoke(app, args)
    detail = f"exit {result.exit_code}; output: {result.output!r}; exception: {result.exception!r}"
    assert result.exit_code == 2, detail
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), detail
    assert expect in lines[0], f"expected {expect!r} in {lines[0]!r}"
    assert "Traceback" not in result.output and result.stdout.strip() == "", detail
    if out is not None:
        assert not out.exists(), f"{out} was left behind"
    after = _snapshot(*watch)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"files created, changed or removed: {changed}"


# ------------------------------------------------------------------------------ suites: run SUITE
def _suite_case(path: Path):
    reason = XFAIL.get(path.stem)
    marks = [pytest.mark.xfail(strict=False, reason=reason)] if reason else []
    return pytest.param(path.name, id=path.stem, marks=marks)


@pytest.mark.parametrize("name", [_suite_case(p) for p in SUITES])
def test_bad_suite_is_one_line_exit_2(name, corpus, tmp_path):
    out = tmp_path / "run"
    _assert_bad_input(["run", str(corpus / "suites" / name), "--output", str(out), "--quiet"],
                      _expected(CORPUS / "suites" / name), watch=[tmp_path], out=out)


def test_the_corpus_is_large_enough():
    cases = len(SUITES) + len(OTHER_CASES)
    assert cases >= 40, cases
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    missing = [p.stem for p in SUITES if f"`{p.stem}`" not in readme]
    missing += [case.id for case in OTHER_CASES if f"`{case.id}`" not in readme]
    assert not missing, f"cases not listed in tests/bad_inputs/README.md: {missing}"


# --------------------------------------------------------------- other commands: run dirs, baselines
# {c}: the corpus copy, {run}: a finished run, {out}: a run directory that must not appear,
# {model}: the tiny model
def _case(case_id: str, command: str, expect: str, xfail: str | None = None):
    marks = [pytest.mark.xfail(strict=False, reason=xfail)] if xfail else []
    return pytest.param(command.split(), expect, id=case_id, marks=marks)


AUDIT = "audit --model {model} --output {out}"
GOOD = "--train {c}/data/good.csv --test {c}/data/good.csv"
BASELINE = "check --run {run} --baseline {c}/baselines/"
NOT_A_BASELINE = "not an overfit-lab baseline"
OTHER_CASES = [
    _case("run_missing_suite", "run {c}/suites/nope.toml --output {out}", "no such suite file"),
    _case("run_suite_is_a_folder", "run {c}/suites --output {out}", "no such suite file"),
    _case("run_resume_with_a_suite", "run {c}/suites/type_grid_seeds.toml --resume {run}", "--resume"),
    _case("resume_without_sqlite", "run --resume {c}/runs/no_sqlite", "run.sqlite is missing"),
    _case("resume_truncated_sqlite", "run --resume {c}/runs/truncated", "run.sqlite"),
    _case("show_truncated_sqlite", "show {c}/runs/truncated", "run.sqlite"),
    _case("show_garbage_sqlite", "show {c}/runs/garbage", "run.sqlite"),
    _case("show_empty_sqlite", "show {c}/runs/empty_sqlite", "run.sqlite"),
    _case("show_foreign_sqlite", "show {c}/runs/foreign_sqlite", "run.sqlite"),
    _case("show_without_sqlite", "show {c}/runs/no_sqlite", "run.sqlite is missing"),
    _case("show_missing_dir", "show {c}/runs/nope", "run.sqlite is missing"),
    _case("report_truncated_sqlite", "report {c}/runs/truncated", "run.sqlite"),
    _case("check_truncated_sqlite", "check --run {c}/runs/truncated", "run.sqlite"),
    _case("check_nothing_to_check", "check", "give a suite to run, or --run"),
    _case("check_bad_suite", "check {c}/suites/type_grid_seeds.toml --baseline {c}/baselines/not_json.json "
          "--output {out}", "grid.seeds"),
    _case("baseline_missing", BASELINE + "nope.json", "no such baseline file"),
    _case("baseline_not_json", BASELINE + "not_json.json", NOT_A_BASELINE),
    _case("baseline_empty", BASELINE + "empty.json", NOT_A_BASELINE),
    _case("baseline_latin1", BASELINE + "latin1.json", NOT_A_BASELINE),
    _case("baseline_wrong_format", BASELINE + "wrong_format.json", "expected 'overfit-lab baseline 1'"),
    _case("baseline_a_list", BASELINE + "a_list.json", NOT_A_BASELINE),
    _case("baseline_no_metrics", BASELINE + "no_metrics.json", NOT_A_BASELINE),
    _case("baseline_metrics_not_a_list", BASELINE + "metrics_not_a_list.json", NOT_A_BASELINE),
    _case("baseline_entry_missing_key", BASELINE + "entry_missing_key.json", NOT_A_BASELINE),
    _case("baseline_seed_not_a_number", BASELINE + "seed_not_a_number.json", NOT_A_BASELINE),
    _case("baseline_value_not_a_number", BASELINE + "value_not_a_number.json", NOT_A_BASELINE),
    _case("baseline_no_entries", BASELINE + "no_entries.json", "shares no training size x strategy"),
    _case("baseline_of_another_suite", BASELINE + "other_suite.json", "someone-elses-suite"),
    _case("checks_file_unknown_metric", "check {c}/checks/unknown_metric.toml --run {run}",
          "did you mean 'test_accuracy'"),
    _case("checks_file_malformed", "check {c}/checks/malformed.toml --run {run}", "not valid TOML"),
    _case("checks_file_unknown_size", "check {c}/checks/unknown_size.toml --run {run}", "checks.acc.sizes"),
    _case("checks_file_unknown_key", "check {c}/checks/unknown_key.toml --run {run}", "checks.acc.minimum"),
    _case("checks_file_missing", "check {c}/checks/nope.toml --run {run}", "no such checks file"),
    _case("audit_model_no_config", "audit --model {c}/models/no_config --output {out} " + GOOD,
          "config.json"),
    _case("audit_unknown_model", "audit --model no-such-model --output {out} " + GOOD,
          "neither a known alias"),
    _case("audit_missing_train", AUDIT + " --train {c}/data/nope.csv --test {c}/data/good.csv", "--train"),
    _case("audit_one_class", AUDIT + " --train {c}/data/one_class.csv --test {c}/data/good.csv", "one label"),
    _case("audit_latin1_test", AUDIT + " --train {c}/data/good.csv --test {c}/data/latin1.csv", "UTF-8"),
    _case("audit_unknown_group", f"{AUDIT} {GOOD} --groups age", "data.group_columns"),
    _case("audit_checks_unknown_metric", f"{AUDIT} {GOOD} --checks {{c}}/checks/unknown_metric.toml",
          "unknown metric"),
    _case("audit_more_labels_than_classes",
          AUDIT + " --train {c}/data/three_labels.csv --test {c}/data/three_labels.csv",
          "the model 2 classes"),
]


@pytest.mark.parametrize(("args", "expect"), OTHER_CASES)
def test_bad_command_is_one_line_exit_2(args, expect, corpus, tmp_path, good_run, tiny_model):
    out = tmp_path / "run"
    values = {"c": str(corpus), "run": str(good_run), "out": str(out), "model": str(tiny_model)}
    _assert_bad_input([a.format(**values) for a in args], expect, watch=[tmp_path, good_run], out=out)


def test_a_bad_baseline_is_refused_before_the_suite_runs(corpus, tmp_path):
    """`check SUITE --baseline BAD` should not train the whole grid to find the baseline unreadable."""
    out = tmp_path / "run"
    suite = corpus / "suites/type_grid_seeds.toml"
    suite.write_text(suite.read_text().replace("seeds = [1.5]", "seeds = [0]"))
    _assert_bad_input(["check", str(suite), "--baseline", str(corpus / "baselines/not_json.json"),
                       "--output", str(out), "--quiet"], "--baseline", watch=[tmp_path], out=out)


def test_bad_input_through_the_real_entry_point(corpus, tmp_path):
    """The console script itself (rich's stderr console, typer, no CliRunner): one line, exit 2.
    One case only: a fresh interpreter takes seconds to import transformers."""
    name, out = "data_class_with_one_row.toml", tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "overfit_lab", "run", str(corpus / "suites" / name),
                           "--output", str(out)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in done.stderr, done.stderr
    assert _expected(CORPUS / "suites" / name) in lines[0] and done.stdout == "" and not out.exists()


# ------------------------------------------------------------------- inputs that are not errors
def test_very_long_text_is_accepted(tmp_path):
    """A 1 MB text in one row is data, not an error: it is kept whole in the splits, and the
    tokenizer truncates it to model.max_length when a cell encodes it."""
    from conftest import make_sentences

    from overfit_lab.data import load_task_data

    frame = make_sentences(60, seed=5)
    frame.loc[0, "text"] = "good " * 200_000
    frame.to_csv(tmp_path / "long.csv", index=False)
    suite_text = (CORPUS / "suites/type_grid_seeds.toml").read_text().replace("seeds = [1.5]", "seeds = [0]")
    suite_text = suite_text.replace("../data/good.csv", str(tmp_path / "long.csv"))
    (tmp_path / "long.toml").write_text(suite_text.replace("@MODEL@", "minilm"))
    data = load_task_data(load_suite(tmp_path / "long.toml"))
    lengths = [len(t) for part in (data.train, data.validation, data.test) for t in part["text"]]
    assert max(lengths) == len("good " * 200_000)


# ---------------------------------------------------------------------------- fuzzing load_suite
SECTION_KEYS = {
    name: list(getattr(Suite.model_fields[name].annotation, "model_fields", {}))
    for name in Suite.model_fields
}
NESTED = ["builtin_options", "robustness", "bias", "calibration", "memorization", "drift", "spectral",
          "dropout", "freeze", "early_stopping", "augment", "headline", "tolerances"]
PLAUSIBLE_KEYS = sorted({*Suite.model_fields, *(k for keys in SECTION_KEYS.values() for k in keys), *NESTED,
                         "combine", "metric", "min", "max", "bound", "sizes", "learning_rate", "baseline",
                         "freeze4", "enabled", "ops", "severities", "layers", "hidden"})


def _toml_key(key: str) -> str:
    if key and all(c in string.ascii_letters + string.digits + "_-" for c in key):
        return key
    return _toml_string(key)


def _toml_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F or 0xD800 <= ord(ch) <= 0xDFFF:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def _toml_document(document: dict) -> str:
    """A TOML document: scalars and arrays first, then one [table] per nested mapping (inline
    below that), so the generated files look like real suites."""
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in document.items() if not isinstance(v, dict)]
    for key, table in document.items():
        if isinstance(table, dict):
            lines.append(f"[{_toml_key(key)}]")
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _strategies():
    from hypothesis import strategies as st

    keys = st.one_of(st.sampled_from(PLAUSIBLE_KEYS), st.text(min_size=1, max_size=12))
    scalars = st.one_of(st.booleans(), st.integers(-10**6, 10**6), st.integers(), st.floats(),
                        st.text(max_size=20), st.sampled_from(["minilm", "reviews", "baseline", "final",
                                                               "test_accuracy", "../data/good.csv", ""]))
    values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                           st.dictionaries(keys, inner, max_size=4)),
                          max_leaves=12)
    grid = st.fixed_dictionaries({}, optional={
        "train_sizes": st.one_of(st.lists(st.integers(-5, 200), max_size=3), values),
        "epochs": st.one_of(st.lists(st.integers(-1, 5), max_size=3), values),
        "strategies": st.one_of(st.lists(st.sampled_from(["baseline", "freeze4", "a", "nope"]), max_size=3),
                                values),
        "seeds": values})
    data = st.fixed_dictionaries({}, optional={
        "path": st.sampled_from(["../data/good.csv", "../data/one_class.csv", "../data/empty.csv",
                                 "../data/nope.csv"]),
        "builtin": st.sampled_from(["reviews", "imdb"]), "validation_size": values, "test_size": values,
        "group_columns": values, "text_column": values, "label_column": values})
    sections = st.dictionaries(st.sampled_from(sorted(Suite.model_fields)),
                               st.dictionaries(keys, values, max_size=5), max_size=6)
    random_documents = st.builds(
        lambda s, g, d, extra: {**s, **({"grid": g} if g else {}), **({"data": d} if d else {}), **extra},
        sections, grid, data, st.dictionaries(keys, values, max_size=3))
    # one to three keys of a valid suite changed, removed or added: errors deep in the schema
    paths = st.one_of(st.sampled_from(_schema_paths(Suite)),
                      st.tuples(st.sampled_from(_schema_paths(Suite)), keys).map(lambda p: (*p[0], p[1])))
    mutations = st.lists(st.tuples(paths, st.one_of(values, st.just(_DELETE))), min_size=1, max_size=3)
    return st.one_of(mutations.map(lambda m: _mutated(BASE_SUITE, m)), random_documents)


BASE_SUITE = {  # loads (load_suite checks no model): the starting point of the mutations
    "name": "fuzz", "model": {"name": "minilm", "max_length": 32},
    "data": {"path": "../data/good.csv", "group_columns": ["gender"], "validation_size": 10, "test_size": 10},
    "grid": {"train_sizes": [20], "epochs": [1], "strategies": ["baseline", "wd"], "seeds": [0, 1]},
    "recipe": {"learning_rate": 1e-4, "use_cpu": True},
    "strategies": {"wd": {"weight_decay": 0.01, "dropout": {"hidden": 0.1}, "combine": ["baseline"]}},
    "diagnostics": {"checkpoints": ["final"], "robustness": {"ops": ["casing"], "severities": [0.3]}},
    "checks": {"acc": {"metric": "test_accuracy", "min": 0.5, "bound": "lower95"}},
    "regression": {"tolerances": {"test_accuracy": 0.05}},
}


def _schema_paths(model, prefix: tuple = ()) -> list[tuple]:
    """Every key path of the suite schema (``strategies`` and ``checks`` under BASE_SUITE's names)."""
    from pydantic import BaseModel

    paths = []
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        paths.append(path)
        inner = field.annotation
        for arg in (inner, *getattr(inner, "__args__", ())):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                paths += _schema_paths(arg, path)
        if path == ("strategies",):
            paths += _schema_paths(Suite.model_fields["strategies"].annotation.__args__[1], (*path, "wd"))
        if path == ("checks",):
            paths += _schema_paths(Suite.model_fields["checks"].annotation.__args__[1], (*path, "acc"))
    return paths


def _mutated(base: dict, mutations: list) -> dict:
    """``base`` with each (path, value) set, or the key removed where the value is ``_DELETE``."""
    import copy

    document = copy.deepcopy(base)
    for path, value in mutations:
        table = document
        for key in path[:-1]:
            if not isinstance(table.get(key), dict):
                table[key] = {}
            table = table[key]
        if value is _DELETE:
            table.pop(path[-1], None)
        else:
            table[path[-1]] = value
    return document


_DELETE = object()


def _load_outcome(path: Path) -> None:
    try:
        suite = load_suite(path)
    except OverfitLabError as exc:
        assert len(str(exc).splitlines()) == 1 and str(exc).strip(), repr(str(exc))
    else:
        assert isinstance(suite, Suite)


def test_fuzzed_toml_documents_load_or_fail_with_one_line(tmp_path_factory):
    from hypothesis import HealthCheck, given, settings

    folder = tmp_path_factory.mktemp("fuzz") / "suites"
    shutil.copytree(CORPUS / "data", folder.parent / "data")
    folder.mkdir()
    path = folder / "fuzz.toml"

    @settings(max_examples=160, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much])
    @given(_strategies())
    def check(document):
        path.write_text(_toml_document(document), encoding="utf-8")
        _load_outcome(path)

    check()


def test_fuzzed_raw_bytes_and_text_load_or_fail_with_one_line(tmp_path_factory):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    folder = tmp_path_factory.mktemp("fuzz-raw") / "suites"
    shutil.copytree(CORPUS / "data", folder.parent / "data")
    folder.mkdir()
    path = folder / "fuzz.toml"
    valid = (CORPUS / "suites/type_grid_seeds.toml").read_bytes()

    @settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                     st.tuples(st.integers(0, len(valid)), st.binary(max_size=8)).map(
                         lambda cut: valid[:cut[0]] + cut[1] + valid[cut[0]:])))
    def check(raw):
        path.write_bytes(raw)
        _load_outcome(path)

    check()

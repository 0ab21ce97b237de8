"""Issue 13.8: held-out texts that are also in the training pool are found when the data is
loaded, shown at the start of a run, in its summary and its report, and ``drop_duplicates``
removes them from the training pool (the held-out splits stay as they are)."""

from __future__ import annotations

import pandas as pd
from conftest import make_sentences, tiny_suite_toml
from typer.testing import CliRunner

from overfit_lab import load_run
from overfit_lab.cli import app
from overfit_lab.data import load_task_data
from overfit_lab.suite import validate_suite


def _split_files(tmp_path):
    """Train, validation and test CSVs; 3 validation and 2 test rows repeat a training text, one
    of them with other case and spacing."""
    train, validation, test = make_sentences(160, 1), make_sentences(40, 2), make_sentences(40, 3)
    # make every held-out text unique to start with, so the only leaks are the planted ones
    validation["text"] = [f"{t} v{i}" for i, t in enumerate(validation["text"])]
    test["text"] = [f"{t} t{i}" for i, t in enumerate(test["text"])]
    validation.loc[[0, 1, 2], "text"] = train.loc[[5, 6, 7], "text"].to_numpy()
    validation.loc[2, "text"] = "  " + validation.loc[2, "text"].upper().replace(" ", "   ") + " "
    test.loc[[0, 1], "text"] = train.loc[[5, 9], "text"].to_numpy()
    paths = {}
    for name, frame in (("train", train), ("validation", validation), ("test", test)):
        paths[name] = tmp_path / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    return paths, train


def _suite(paths, model, **data):
    return validate_suite({"name": "leak", "model": {"name": str(model), "max_length": 32},
                           "data": {**{k: str(v) for k, v in paths.items()}, **data},
                           "grid": {"train_sizes": [40], "epochs": [1], "strategies": ["baseline"],
                                    "seeds": [0]}})


def _shared_rows(train: pd.DataFrame, held_out: pd.DataFrame) -> int:
    """The reference count: held-out rows whose lower-cased, whitespace-split words equal a
    training row's."""
    pool = {tuple(t.lower().split()) for t in train["text"]}
    return sum(tuple(t.lower().split()) in pool for t in held_out["text"])


def test_leaked_texts_are_counted_per_split(tiny_model, tmp_path):
    paths, train = _split_files(tmp_path)
    data = load_task_data(_suite(paths, tiny_model))
    expected = {name: _shared_rows(train, pd.read_csv(paths[name])) for name in ("validation", "test")}
    assert expected == {"validation": 3, "test": 2}
    assert data.leakage.counts == expected and data.leakage.dropped == 0
    assert data.leakage.examples["test"] == pd.read_csv(paths["test"])["text"][:2].tolist()
    lines = data.leakage.lines()
    assert lines[0].startswith("3 of 40 validation rows have a text that is also in the training pool")
    assert "drop_duplicates" in lines[-1] and len(data.train) == 160


def test_drop_duplicates_removes_them_from_the_training_pool(tiny_model, tmp_path):
    paths, train = _split_files(tmp_path)
    data = load_task_data(_suite(paths, tiny_model, drop_duplicates=True))
    leaked = {5, 6, 7, 9}
    assert data.leakage.dropped == len(leaked) and len(data.train) == 160 - len(leaked)
    assert not set(train.loc[sorted(leaked), "text"]) & set(data.train["text"])
    assert len(data.validation) == 40 and len(data.test) == 40  # the held-out splits are kept
    assert data.leakage.counts == {"validation": 3, "test": 2}  # what was found, before dropping
    assert "removed 4 training rows" in data.leakage.lines()[-1]


def test_a_run_shows_the_leakage_at_the_start_in_the_summary_and_the_report(tiny_model, tmp_path):
    paths, _ = _split_files(tmp_path)
    text = tiny_suite_toml(tiny_model, paths["train"])
    text = text.replace(f'path = "{paths["train"]}"', "\n".join(f'{k} = "{v}"' for k, v in paths.items()))
    text = text.replace("validation_size = 40\ntest_size = 40\n", "")
    suite = tmp_path / "suite.toml"
    suite.write_text(text)
    result = CliRunner().invoke(app, ["run", str(suite), "-o", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "warning: 3 of 40 validation rows have a text that is also in the training pool" in output
    assert "leakage: 2 of 40 test rows have a text" in output
    run = load_run(tmp_path / "run")
    assert run.leakage.counts == {"validation": 3, "test": 2}
    report = (tmp_path / "run" / "report.html").read_text()
    assert 'id="leakage"' in report and "3 of 40 validation rows have a text" in report

"""Behavioural tests for task data: reading, label mapping, splits, subsets and label noise."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED, make_sentences

from overfit_lab.data import TaskData, load_task_data
from overfit_lab.data.loading import read_table
from overfit_lab.data.splits import flip_labels, nested_subsets, stratified_split
from overfit_lab.errors import OverfitLabError
from overfit_lab.suite import validate_suite

GRID = {"train_sizes": [20, 40], "epochs": [1]}


def _task(data: dict, grid: dict | None = None) -> TaskData:
    return load_task_data(validate_suite({"data": data, "grid": grid or GRID}))


def _load_error(data: dict, grid: dict | None = None) -> OverfitLabError:
    with pytest.raises(OverfitLabError) as info:
        _task(data, grid)
    assert "\n" not in str(info.value)
    return info.value


def _rows(frame: pd.DataFrame) -> list[tuple]:
    return sorted(map(tuple, frame[["text", "label", "gender"]].astype(str).to_numpy().tolist()))


@pytest.fixture()
def frame() -> pd.DataFrame:
    df = make_sentences(120, seed=7)
    df["label"] = df["label"].map({0: "neg", 1: "pos"})
    return df


# --- reading formats --------------------------------------------------------------------------


def test_formats_load_to_the_same_rows(tmp_path: Path, frame: pd.DataFrame) -> None:
    import datasets

    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_json(tmp_path / "d.jsonl", orient="records", lines=True)
    frame.to_parquet(tmp_path / "d.parquet", index=False)
    datasets.Dataset.from_pandas(frame).save_to_disk(str(tmp_path / "ds"))
    for path in ("d.csv", "d.jsonl", "d.parquet", "ds"):
        table = read_table(tmp_path / path)
        assert isinstance(table, pd.DataFrame)
        pd.testing.assert_frame_equal(table[list(frame.columns)].reset_index(drop=True), frame,
                                      check_dtype=False)
    spec = {"group_columns": ["gender"], "validation_size": 20, "test_size": 20}
    tasks = [_task({"path": str(tmp_path / p), **spec})
             for p in ("d.csv", "d.jsonl", "d.parquet", "ds")]
    for task in tasks[1:]:
        for split in ("train", "validation", "test"):
            pd.testing.assert_frame_equal(task.split(split), tasks[0].split(split))
        assert task.label_names == tasks[0].label_names == ["neg", "pos"]


def test_dataset_dict_directory_uses_its_splits(tmp_path: Path, frame: pd.DataFrame) -> None:
    import datasets

    train, test = frame.iloc[:90].reset_index(drop=True), frame.iloc[90:].reset_index(drop=True)
    dataset_dict = datasets.DatasetDict({"train": datasets.Dataset.from_pandas(train),
                                         "test": datasets.Dataset.from_pandas(test)})
    dataset_dict.save_to_disk(str(tmp_path / "dd"))
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    table = read_table(tmp_path / "dd")
    assert isinstance(table, dict) and set(table) == {"train", "test"}
    spec = {"group_columns": ["gender"], "validation_size": 15}
    from_dir = _task({"path": str(tmp_path / "dd"), **spec})
    from_files = _task({"train": str(tmp_path / "train.csv"), "test": str(tmp_path / "test.csv"),
                        **spec})
    for split in ("train", "validation", "test"):
        pd.testing.assert_frame_equal(from_dir.split(split), from_files.split(split))
    assert len(from_dir.test) == 30 and len(from_dir.validation) == 15 and len(from_dir.train) == 75
    assert _rows(from_dir.test) == _rows(test.assign(label=test.label.map({"neg": 0, "pos": 1})))


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "data.xml"
    path.write_text("text,label\na,1\n")
    with pytest.raises(OverfitLabError) as info:
        read_table(path)
    assert info.value.key == "data.path" and "'.xml'" in str(info.value)
    err = _load_error({"path": str(path)})
    assert err.key == "data.path" and "data.xml" in str(err)


# --- labels and explicit splits -----------------------------------------------------------------


def test_string_labels_map_to_sorted_indices(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    names = np.array(["positive", "negative", "neutral"])
    df = pd.DataFrame({"text": [f"text number {i}" for i in range(90)],
                       "label": names[rng.permutation(np.arange(90) % 3)]})
    df.to_csv(tmp_path / "d.csv", index=False)
    task = _task({"path": str(tmp_path / "d.csv"), "validation_size": 15, "test_size": 15})
    assert task.label_names == ["negative", "neutral", "positive"]
    assert task.n_classes == 3
    original = dict(zip(df.text, df.label, strict=True))
    for split in ("train", "validation", "test"):
        part = task.split(split)
        assert part["label"].dtype.kind == "i"
        assert [task.label_names[y] for y in part.label] == [original[t] for t in part.text]


def test_explicit_files_are_used_as_given(tmp_path: Path) -> None:
    parts = {name: make_sentences(n, seed=s) for name, n, s in
             (("train", 60, 1), ("validation", 25, 2), ("test", 35, 3))}
    for name, part in parts.items():
        part.rename(columns={"text": "sentence", "label": "y"}).to_json(
            tmp_path / f"{name}.jsonl", orient="records", lines=True)
    task = _task({"train": str(tmp_path / "train.jsonl"),
                  "validation": str(tmp_path / "validation.jsonl"),
                  "test": str(tmp_path / "test.jsonl"), "text_column": "sentence",
                  "label_column": "y", "group_columns": ["gender"]})
    assert task.label_names == ["0", "1"]
    assert task.group_columns == ["gender"]
    for name, part in parts.items():
        got = task.split(name)
        assert list(got.columns) == ["text", "label", "gender"]
        pd.testing.assert_frame_equal(got, part[["text", "label", "gender"]], check_dtype=False)


def test_single_file_split_is_stratified_disjoint_and_complete(tmp_path: Path) -> None:
    df = make_sentences(200, seed=11)
    df["text"] = [f"{t} #{i}" for i, t in enumerate(df.text)]  # unique texts to track rows
    df.to_csv(tmp_path / "d.csv", index=False)
    task = _task({"path": str(tmp_path / "d.csv"), "validation_size": 30, "test_size": 0.25,
                  "group_columns": ["gender"]})
    sizes = {s: len(task.split(s)) for s in ("train", "validation", "test")}
    assert sizes == {"train": 120, "validation": 30, "test": 50}
    texts = [set(task.split(s).text) for s in ("train", "validation", "test")]
    assert not (texts[0] & texts[1]) and not (texts[0] & texts[2]) and not (texts[1] & texts[2])
    assert texts[0] | texts[1] | texts[2] == set(df.text)
    share = df.label.mean()
    assert abs(task.test.label.sum() - share * 50) <= 1
    rest_share = (df.label.sum() - task.test.label.sum()) / 150
    assert abs(task.validation.label.sum() - rest_share * 30) <= 1


def test_stratified_split_function() -> None:
    labels = np.array([0] * 70 + [1] * 20 + [2] * 10)
    rest, held = stratified_split(labels, 30, seed=4)
    assert len(held) == 30 and len(rest) == 70
    assert sorted(np.concatenate([rest, held]).tolist()) == list(range(100))
    counts = Counter(labels[held].tolist())
    for label, n in Counter(labels.tolist()).items():
        assert abs(counts[label] - 30 * n / 100) <= 1
    again = stratified_split(labels, 30, seed=4)
    assert np.array_equal(again[0], rest) and np.array_equal(again[1], held)
    assert not np.array_equal(stratified_split(labels, 30, seed=5)[1], held)
    _, frac = stratified_split(labels, 0.2, seed=0)
    assert len(frac) == 20


# --- nested subsets and label noise -------------------------------------------------------------


def test_nested_subsets_are_nested_exact_stratified_and_deterministic() -> None:
    rng = np.random.default_rng(3)
    labels = rng.choice(3, size=500, p=[0.5, 0.3, 0.2])
    sizes = [25, 400, 100, 50]
    subsets = nested_subsets(labels, sizes, seed=1)
    assert set(subsets) == set(sizes)
    ordered = sorted(sizes)
    for size in sizes:
        positions = subsets[size]
        assert len(positions) == size and len(set(positions.tolist())) == size
        assert positions.min() >= 0 and positions.max() < 500
    for small, large in zip(ordered, ordered[1:], strict=False):
        assert set(subsets[small].tolist()) <= set(subsets[large].tolist())
        parent = Counter(labels[subsets[large]].tolist())
        child = Counter(labels[subsets[small]].tolist())
        for label, n in parent.items():
            assert abs(child[label] - small * n / large) <= 1
    full = Counter(labels.tolist())
    top = Counter(labels[subsets[400]].tolist())
    for label, n in full.items():
        assert abs(top[label] - 400 * n / 500) <= 1
    for order in (sorted(sizes), sorted(sizes, reverse=True), [100, 25, 400, 50]):
        again = nested_subsets(labels, order, seed=1)
        for size in sizes:
            assert np.array_equal(again[size], subsets[size])
    other = nested_subsets(labels, sizes, seed=2)
    assert not np.array_equal(np.sort(other[100]), np.sort(subsets[100]))


def test_nested_subsets_full_size_and_too_large() -> None:
    labels = np.array([0, 1] * 20)
    subsets = nested_subsets(labels, [40, 10], seed=0)
    assert sorted(subsets[40].tolist()) == list(range(40))
    with pytest.raises(ValueError):
        nested_subsets(labels, [41], seed=0)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_flip_labels_exact_count_other_class_and_nested(n_classes: int) -> None:
    rng = np.random.default_rng(5)
    labels = rng.integers(n_classes, size=150)
    before = labels.copy()
    previous: set[int] = set()
    for fraction in (0.0, 0.1, 0.2, 0.35):
        noisy = flip_labels(labels, fraction, n_classes=n_classes, seed=9)
        changed = set(np.flatnonzero(noisy != labels).tolist())
        assert len(changed) == round(fraction * 150)
        assert set(noisy.tolist()) <= set(range(n_classes))
        assert previous <= changed
        previous = changed
        assert np.array_equal(noisy, flip_labels(labels, fraction, n_classes=n_classes, seed=9))
    assert np.array_equal(labels, before)  # the input is not modified
    low = flip_labels(labels, 0.1, n_classes=n_classes, seed=9)
    high = flip_labels(labels, 0.35, n_classes=n_classes, seed=9)
    flipped_low = low != labels
    assert np.array_equal(high[flipped_low], low[flipped_low])  # same new class at shared flips
    with pytest.raises(ValueError):
        flip_labels(labels, 1.0, n_classes=n_classes, seed=0)


def test_flip_labels_three_classes_reaches_both_other_classes() -> None:
    labels = np.zeros(300, dtype=int)
    noisy = flip_labels(labels, 0.5, n_classes=3, seed=0)
    assert Counter(noisy.tolist())[0] == 150
    assert {1, 2} <= set(noisy.tolist())


def test_training_subset_keeps_clean_label(tiny_csv: Path) -> None:
    task = _task({"path": str(tiny_csv), "group_columns": ["gender"], "validation_size": 40,
                  "test_size": 40}, {"train_sizes": [40, 80], "epochs": [1]})
    sizes = [40, 80]
    clean = task.training_subset(80, sizes=sizes, seed=0)
    positions = task.subsets(sizes, seed=0)[80]
    assert list(clean.text) == list(task.train.text.iloc[positions])
    assert np.array_equal(clean.label, clean.clean_label)
    assert np.array_equal(clean.label, task.train.label.iloc[positions])
    noisy = task.training_subset(80, sizes=sizes, seed=0, label_noise=0.25, noise_seed=3)
    assert list(noisy.text) == list(clean.text)
    assert np.array_equal(noisy.clean_label, clean.label)
    assert int((noisy.label != noisy.clean_label).sum()) == 20
    expected = flip_labels(clean.label.to_numpy(), 0.25, n_classes=2, seed=3)
    assert np.array_equal(noisy.label, expected)
    small = task.training_subset(40, sizes=sizes, seed=0)
    assert set(small.text) <= set(clean.text)
    assert "clean_label" not in task.train.columns  # the pool itself is untouched


# --- errors -----------------------------------------------------------------------------------


def test_label_column_absent(tmp_path: Path) -> None:
    make_sentences(50, seed=0).to_csv(tmp_path / "d.csv", index=False)
    err = _load_error({"path": str(tmp_path / "d.csv"), "label_column": "sentiment"})
    assert err.key == "data.label_column" and "sentiment" in str(err)


def test_text_column_absent(tmp_path: Path) -> None:
    make_sentences(50, seed=0).to_csv(tmp_path / "d.csv", index=False)
    err = _load_error({"path": str(tmp_path / "d.csv"), "text_column": "sentence"})
    assert err.key == "data.text_column"
    assert "'sentence'" in str(err) and "d.csv" in str(err)


def test_group_column_absent(tmp_path: Path) -> None:
    make_sentences(50, seed=0).to_csv(tmp_path / "d.csv", index=False)
    err = _load_error({"path": str(tmp_path / "d.csv"), "group_columns": ["age"]})
    assert err.key == "data.group_columns" and "'age'" in str(err)


def test_empty_data_files(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    err = _load_error({"path": str(tmp_path / "empty.csv")})
    assert err.key == "data.path" and "empty.csv" in str(err)
    (tmp_path / "header.csv").write_text("text,label\n")
    err = _load_error({"path": str(tmp_path / "header.csv")})
    assert "empty" in str(err) and "header.csv" in str(err)


def test_rows_with_missing_label(tmp_path: Path) -> None:
    df = make_sentences(50, seed=0).astype({"label": "object"})
    df.loc[[3, 7], "label"] = None
    df.to_csv(tmp_path / "d.csv", index=False)
    err = _load_error({"path": str(tmp_path / "d.csv")})
    assert err.key == "data"
    assert "2 train rows" in str(err)


def test_csv_texts_that_look_like_missing_values(tmp_path: Path) -> None:
    rows = [{"text": f"sentence {i}", "label": i % 2} for i in range(40)]
    rows += [{"text": "None", "label": 0}, {"text": "NA", "label": 1}]
    pd.DataFrame(rows).to_csv(tmp_path / "d.csv", index=False)
    task = _task({"path": str(tmp_path / "d.csv"), "validation_size": 6, "test_size": 6},
                 {"train_sizes": [10], "epochs": [1]})
    texts = set(task.train.text) | set(task.validation.text) | set(task.test.text)
    assert {"None", "NA"} <= texts


def test_train_size_larger_than_training_split(tiny_csv: Path) -> None:
    data = {"path": str(tiny_csv), "validation_size": 40, "test_size": 40}
    err = _load_error(data, {"train_sizes": [50, 161], "epochs": [1]})
    assert err.key == "grid.train_sizes"
    assert "161" in str(err) and "160" in str(err)
    assert len(_task(data, {"train_sizes": [160], "epochs": [1]}).train) == 160


def test_validation_size_larger_than_data(tmp_path: Path) -> None:
    make_sentences(60, seed=0).to_csv(tmp_path / "d.csv", index=False)
    err = _load_error({"path": str(tmp_path / "d.csv"), "validation_size": 100, "test_size": 10},
                      {"train_sizes": [10], "epochs": [1]})
    assert err.key == "data.validation_size"


# --- the SST-2 reference protocol ---------------------------------------------------------------


def test_sst2_reference_splits() -> None:
    train_csv = SHARED / "datasets/sst2/train.csv"
    splits_json = SHARED / "bench/naive_grid_splits.json"
    if not train_csv.is_file() or not splits_json.is_file():
        pytest.skip("shared SST-2 reference data is absent")
    reference = json.loads(splits_json.read_text())
    task = _task({"train": str(train_csv), "test": str(SHARED / "datasets/sst2/dev.csv"),
                  "drop_duplicates": True, "validation_size": 500, "seed": 0,
                  "text_column": "text", "label_column": "label"},
                 {"train_sizes": [100, 1000], "epochs": [1]})
    raw = pd.read_csv(train_csv, keep_default_na=False).drop_duplicates("text", keep="first")
    idx_of = dict(zip(raw.text, raw.idx, strict=True))
    info = reference["info"]
    assert len(task.train) + len(task.validation) == info["train_rows_after_dedup"]
    assert len(task.test) == info["test_rows"]
    assert set(task.validation.text.map(idx_of)) == set(reference["val"])
    subsets = task.subsets([100, 1000], seed=0)
    for size in (100, 1000):
        chosen = task.train.text.iloc[subsets[size]].map(idx_of)
        assert set(chosen) == set(reference[f"train_{size}"])
        assert int(task.train.label.iloc[subsets[size]].sum()) == info[f"{size}_label1"]


def test_correlated_test_split_from_builtin_and_from_a_file(tmp_path: Path) -> None:
    task = _task({"builtin": "reviews", "builtin_options": {"n_train": 100, "n_validation": 20, "n_test": 20,
                                                            "n_correlated_test": 30}})
    assert len(task.correlated_test) == 30
    assert list(task.correlated_test.columns) == ["text", "label", "gender"]
    assert _task({"builtin": "reviews", "builtin_options": {"n_train": 100}}).correlated_test is None

    make_sentences(80, seed=1).to_csv(tmp_path / "train.csv", index=False)
    correlated = make_sentences(15, seed=2)
    correlated["label"] = correlated["label"].map({0: "0", 1: "1"})
    correlated.to_csv(tmp_path / "corr.csv", index=False)
    task = _task({"train": str(tmp_path / "train.csv"), "correlated_test": str(tmp_path / "corr.csv"),
                  "group_columns": ["gender"], "validation_size": 10, "test_size": 10})
    assert _rows(task.correlated_test) == _rows(make_sentences(15, seed=2))
    assert len(task.train) == 60  # the correlated rows are not taken from training
    plain = _task({"train": str(tmp_path / "train.csv"), "group_columns": ["gender"],
                   "validation_size": 10, "test_size": 10})
    assert plain.fingerprint() != task.fingerprint()

"""Task data: load a suite's data once, split it, and hand out nested training subsets.

:func:`load_task_data` is the single entry point. It returns a :class:`TaskData` with
``train`` (the pool subsets are drawn from), ``validation`` and ``test`` frames, each with the
columns ``text``, ``label`` (0..K-1) and the suite's group columns, and optionally
``correlated_test``: evaluation rows that share the training split's group-label correlation
(used by Zhao et al.'s bias amplification only).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import OverfitLabError
from ..rows import SPLITS, Split
from ..suite import DATA_FILES, DataSpec, Suite
from .leakage import HELD_OUT, Leakage, drop_leaked, find_leakage
from .loading import read_table
from .splits import flip_labels, nested_subsets, stratified_split

_SPLIT_ALIASES = {"train": ("train",), "validation": ("validation", "valid", "val", "dev"),
                  "test": ("test",)}


@dataclass(frozen=True)
class TaskData:
    """The three splits of a task, with labels mapped to ``0..K-1``."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    label_names: list[str]
    group_columns: list[str] = field(default_factory=list)
    correlated_test: pd.DataFrame | None = None
    leakage: Leakage = field(default_factory=Leakage)  # held-out texts also in the training pool

    @property
    def n_classes(self) -> int:
        return len(self.label_names)

    def split(self, name: Split) -> pd.DataFrame:
        return getattr(self, name)

    def subsets(self, sizes: list[int], *, seed: int) -> dict[int, np.ndarray]:
        """Nested stratified subsets of the training pool (positions into ``train``)."""
        return nested_subsets(self.train["label"].to_numpy(), sizes, seed=seed)

    def unused_positions(self, sizes: list[int], *, seed: int) -> np.ndarray:
        """Positions of the training pool in no subset of ``sizes``, in one fixed random order.

        No cell of a grid with these sizes trains on them, so they are non-members drawn from the
        members' own distribution; a prefix of the order is the same for every cell.
        """
        used = self.subsets(sizes, seed=seed)[max(sizes)]
        unused = np.setdiff1d(np.arange(len(self.train)), used)
        return unused[np.random.default_rng(seed).permutation(len(unused))]

    def training_subset(self, size: int, *, sizes: list[int], seed: int, label_noise: float = 0.0,
                        noise_seed: int = 0) -> pd.DataFrame:
        """The training rows of one cell; with ``label_noise`` a share of labels is flipped.

        The frame keeps the clean label in ``clean_label`` (so memorization of noise can be
        measured) and each row's position in ``train`` in ``position``.
        """
        positions = self.subsets(sizes, seed=seed)[size]
        rows = self.train.iloc[positions].reset_index(drop=True)
        rows["position"] = positions
        rows["clean_label"] = rows["label"]
        if label_noise > 0:
            rows["label"] = flip_labels(rows["label"].to_numpy(), label_noise,
                                        n_classes=self.n_classes, seed=noise_seed)
        return rows

    def fingerprint(self) -> str:
        """A short hash of every split's texts and labels (to detect changed data on resume)."""
        digest = hashlib.sha256()
        for name in (*SPLITS, "correlated_test"):
            frame = getattr(self, name)
            if frame is None:
                continue
            digest.update(name.encode())
            digest.update(pd.util.hash_pandas_object(frame[["text", "label"]], index=False).values.tobytes())
        return digest.hexdigest()[:16]


def load_task_data(suite: Suite, *, source: str | Path = "<suite>") -> TaskData:
    """Load, map and split the suite's data, then check it against the grid.

    For a causal LM (``[task] type = "causal-lm"``) only the text column is read: every row is a
    document, labelled 0 (the built-in reviews keep their sentiment label, which only stratifies
    the nested subsets).
    """
    data = _load_cached(suite.data.model_dump_json(), _file_stamps(suite.data),
                        documents=suite.task.type == "causal-lm")
    n_pool = len(data.train)
    if max(suite.grid.train_sizes) > n_pool:
        raise OverfitLabError(
            f"train size {max(suite.grid.train_sizes)} is larger than the training split ({n_pool} rows).",
            file=source, key="grid.train_sizes", fix=f"use sizes of at most {n_pool}.")
    spec = suite.diagnostics.memorization
    if spec.enabled and spec.nonmembers == "pool" and n_pool == max(suite.grid.train_sizes):
        raise OverfitLabError(
            f"the largest train size uses all {n_pool} rows of the training split, so none is left "
            "to be a non-member of the membership attack.", file=source,
            key="diagnostics.memorization.nonmembers",
            fix=f'use "test" or "auto", or train sizes below {n_pool}.')
    return data


def _file_stamps(spec: DataSpec) -> tuple:
    """Size and modification time of every data file, so an edited file is read again."""
    stamps = []
    for key in DATA_FILES:
        path = getattr(spec, key)
        if path is not None and Path(path).exists():
            files = sorted(Path(path).rglob("*")) if Path(path).is_dir() else [Path(path)]
            stamps += [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.is_file()]
    return tuple(stamps)


DOCUMENT_LABEL = "document"
"""The one label name of a causal LM's documents."""


@lru_cache(maxsize=4)
def _load_cached(spec_json: str, stamps: tuple, documents: bool) -> TaskData:
    return _load(DataSpec.model_validate_json(spec_json), documents=documents)


def _load(spec: DataSpec, *, documents: bool = False) -> TaskData:
    if spec.builtin is not None:
        from .builtin import LABEL_NAMES, generate_reviews

        frame = generate_reviews(**spec.builtin_options.model_dump())
        parts = {name: frame[frame["split"] == name].drop(columns="split").reset_index(drop=True)
                 for name in (*SPLITS, "test_correlated")}
        group_columns = spec.group_columns or ["gender"]
        names = LABEL_NAMES[spec.builtin_options.classes]
        correlated = parts.pop("test_correlated")
        parts["train"], leakage = _guard_leakage(parts, spec)
        return TaskData(**parts, label_names=names, group_columns=group_columns,
                        correlated_test=correlated if len(correlated) else None, leakage=leakage)
    parts = _read_parts(spec)
    for name, part in parts.items():
        _check_columns(part, spec, name, documents=documents)
    if documents:
        label_names, mapping = [DOCUMENT_LABEL], None
    else:
        label_names, mapping = _label_mapping(pd.concat([p[spec.label_column] for p in parts.values()]))
    for name, part in parts.items():
        parts[name] = _standardize(part, spec, mapping, name)
    for name in ("test", "validation"):  # held out from the training file unless given
        if name not in parts:
            parts[name], parts["train"] = _hold_out(parts["train"], spec, name)
    correlated = parts.pop("correlated_test", None)
    parts = {k: parts[k].reset_index(drop=True) for k in SPLITS}
    parts["train"], leakage = _guard_leakage(parts, spec)
    return TaskData(**parts, label_names=label_names, group_columns=list(spec.group_columns),
                    correlated_test=None if correlated is None else correlated.reset_index(drop=True),
                    leakage=leakage)


def _guard_leakage(parts: dict[str, pd.DataFrame], spec: DataSpec) -> tuple[pd.DataFrame, Leakage]:
    """The training pool (without texts of the held-out splits if ``drop_duplicates``) and the
    leakage found before any was dropped."""
    held_out = {name: parts[name] for name in HELD_OUT}
    found = find_leakage(parts["train"], held_out)
    if not (spec.drop_duplicates and found.found):
        return parts["train"], found
    train, dropped = drop_leaked(parts["train"], held_out)
    return train, find_leakage(parts["train"], held_out, dropped=dropped)


def _read_parts(spec: DataSpec) -> dict[str, pd.DataFrame]:
    if spec.path is not None:
        table = read_table(spec.path, key="data.path")
        parts = _named_splits(table, spec.path) if isinstance(table, dict) else {"train": table}
    else:
        parts = {name: read_table(getattr(spec, name), key=f"data.{name}")
                 for name in SPLITS if getattr(spec, name) is not None}
    if spec.correlated_test is not None:
        parts["correlated_test"] = read_table(spec.correlated_test, key="data.correlated_test")
    for name, part in parts.items():
        if isinstance(part, dict):
            raise OverfitLabError("holds several splits; a split file must hold one.",
                                  file=getattr(spec, name), key=f"data.{name}",
                                  fix="use data.path for a DatasetDict directory.")
    return parts


def _named_splits(table: dict[str, pd.DataFrame], path: Path) -> dict[str, pd.DataFrame]:
    parts = {}
    for name, aliases in _SPLIT_ALIASES.items():
        found = next((a for a in aliases if a in table), None)
        if found is not None:
            parts[name] = table[found]
    if "train" not in parts:
        raise OverfitLabError(f"the DatasetDict has no 'train' split (splits: {', '.join(table)}).",
                              file=path, key="data.path", fix="name the training split 'train'.")
    return parts


def _label_mapping(labels: pd.Series) -> tuple[list[str], dict]:
    values = sorted(labels.dropna().unique().tolist(), key=lambda v: (str(type(v)), v))
    return [str(v) for v in values], {v: i for i, v in enumerate(values)}


def _hold_out(train: pd.DataFrame, spec: DataSpec, split: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    size = getattr(spec, f"{split}_size")
    try:
        rest, held = stratified_split(train["label"].to_numpy(), size, seed=spec.seed)
    except ValueError as exc:
        raise OverfitLabError(f"cannot hold out a {split} split of {size} from {len(train)} rows ({exc}).",
                              file=spec.path or spec.train, key=f"data.{split}_size",
                              fix="use a smaller count or a fraction below 1, or give a file.") from None
    return train.iloc[held], train.iloc[rest]


def _check_columns(frame: pd.DataFrame, spec: DataSpec, split: str, *, documents: bool = False) -> None:
    where = getattr(spec, split) or spec.path or spec.train
    keys = ("text_column",) if documents else ("text_column", "label_column")
    for key in keys:
        column = getattr(spec, key)
        if column not in frame.columns:
            raise OverfitLabError(
                f"column '{column}' is not in the {split} data "
                f"(columns: {', '.join(map(str, frame.columns))}).",
                file=where, key=f"data.{key}", fix="set it to one of the columns.")
    for column in spec.group_columns:
        if column not in frame.columns:
            raise OverfitLabError(f"group column '{column}' is not in the {split} data.", file=where,
                                  key="data.group_columns", fix="remove it or correct its name.")
    for key, what in (("text_column", "a text"), ("label_column", "a label"))[:len(keys)]:
        column = getattr(spec, key)
        for row, value in enumerate(frame[column] if frame[column].dtype == object else ()):
            if not (value is None or value is pd.NA or isinstance(value, str | int | float | np.generic)):
                raise OverfitLabError(
                    f"{split} row {row + 1} has {type(value).__name__} {str(value)[:40]!r} in column "
                    f"'{column}'; {what} must be one string or number.", file=where, key=f"data.{key}",
                    fix="give one string or number per row (flatten lists and objects).")


def _standardize(frame: pd.DataFrame, spec: DataSpec, mapping: dict | None, split: str) -> pd.DataFrame:
    """The split as ``text``, ``label`` (``0..K-1``) and the group columns; ``mapping`` ``None``:
    documents of a causal LM, every label 0."""
    where = getattr(spec, split) or spec.path or spec.train
    if frame.empty:
        raise OverfitLabError(f"the {split} data is empty.", file=where, key="data",
                              fix="give a file with rows.")
    labels = frame[spec.label_column] if mapping is not None else 0
    out = pd.DataFrame({"text": frame[spec.text_column], "label": labels}, index=frame.index)
    for column in spec.group_columns:
        out[column] = frame[column].astype(str).to_numpy()
    missing = out["text"].isna() | out["label"].isna()
    if missing.any():
        raise OverfitLabError(f"{int(missing.sum())} {split} rows have no text or no label.", file=where,
                              key="data", fix="remove or fill those rows.")
    spellings: dict[str, list] = {}
    for value in mapping or ():
        spellings.setdefault(str(value), []).append(value)
    clash = next((v for v in spellings.values() if len(v) > 1 and out["label"].isin(v).any()), None)
    if clash is not None:
        raise OverfitLabError(
            f"labels {' and '.join(map(repr, clash))} are different values with one name, '{clash[0]}'.",
            file=where, key="data.label_column",
            fix="spell every label one way in all data files (all numbers or all strings).")
    out["text"] = out["text"].astype(str)
    if spec.drop_duplicates and split == "train":
        out = out.drop_duplicates(subset="text", keep="first")
    if mapping is None:
        return out.reset_index(drop=True)
    out["label"] = out["label"].map(mapping).astype(int)
    if split == "train":  # a classifier needs two labels to learn, a group column two groups
        label_names = [str(v) for v in mapping]
        present = sorted(out["label"].unique())
        if len(present) < 2:
            raise OverfitLabError(
                f"the training data has one label ({', '.join(label_names[i] for i in present)}), so "
                "there is nothing to classify.", file=where, key="data.label_column",
                fix="give data with two labels or more (or set data.label_column to the label column).")
        for column in spec.group_columns:
            counts = out[column].value_counts()
            if len(counts) < 2:
                raise OverfitLabError(
                    f"group column '{column}' has one value ({counts.index[0]!r}) in the training data, so "
                    "there are no groups to compare.", file=where, key="data.group_columns",
                    fix="remove it from data.group_columns, or give data with two groups or more.")
            if counts.max() == 1:
                raise OverfitLabError(
                    f"group column '{column}' gives every one of its {len(out)} training rows a group of its "
                    "own, so no group can be measured.", file=where, key="data.group_columns",
                    fix="remove it from data.group_columns (is it an id column?).")
    return out.reset_index(drop=True)

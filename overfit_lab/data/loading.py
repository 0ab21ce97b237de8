"""Read user data: CSV, TSV, JSONL/JSON, Parquet, plain text (one document per line, for causal
language models; column ``text``), or a ``datasets.save_to_disk`` directory."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import OverfitLabError

READERS = {
    # only empty cells are missing: "None" or "NA" can be real text
    ".csv": lambda p: pd.read_csv(p, keep_default_na=False, na_values=[""]),
    ".tsv": lambda p: pd.read_csv(p, sep="\t", keep_default_na=False, na_values=[""]),
    ".jsonl": lambda p: pd.read_json(p, lines=True),
    ".json": lambda p: pd.read_json(p, lines=p.read_text(encoding="utf-8").lstrip()[:1] != "["),
    ".parquet": lambda p: pd.read_parquet(p),
    ".pq": lambda p: pd.read_parquet(p),
    ".txt": lambda p: _read_lines(p),
}


def _read_lines(path: Path) -> pd.DataFrame:
    """One document per non-empty line, in column ``text``."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return pd.DataFrame({"text": [line for line in lines if line]})


def read_table(path: str | Path, *, key: str = "data.path") -> pd.DataFrame | dict[str, pd.DataFrame]:
    """Read one data file into a DataFrame.

    A ``datasets`` directory saved with ``save_to_disk`` gives a DataFrame for a ``Dataset`` and
    a dict of split name to DataFrame for a ``DatasetDict``.
    """
    path = Path(path)
    if path.is_dir():
        return _read_datasets_dir(path, key)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise OverfitLabError(f"cannot read '{path.suffix}' files.", file=path, key=key,
                              fix=f"use one of {', '.join(READERS)} or a datasets directory.")
    try:
        return reader(path)
    except UnicodeDecodeError as exc:  # before ValueError, which it is
        raise OverfitLabError(f"is not UTF-8 text (byte {exc.start}: {exc.reason}).", file=path, key=key,
                              fix="save it as UTF-8 (e.g. iconv -f latin1 -t utf-8), or check that it is "
                                  "a text file.") from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise OverfitLabError(f"cannot parse the file ({type(exc).__name__}: {exc}).", file=path,
                              key=key, fix="check the file's format.") from None


def _read_datasets_dir(path: Path, key: str) -> pd.DataFrame | dict[str, pd.DataFrame]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as exc:
        raise OverfitLabError(f"not a datasets directory ({exc}).", file=path, key=key,
                              fix="save it with Dataset.save_to_disk, or give a data file.") from None
    if isinstance(loaded, datasets.DatasetDict):
        return {name: split.to_pandas() for name, split in loaded.items()}
    return loaded.to_pandas()

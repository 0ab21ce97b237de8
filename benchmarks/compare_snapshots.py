"""Compare two snapshots of benchmarks/snapshot.py, allowing the one schema change of issue 12:
the reliability bin (``"0.000-0.067"``) and the membership ROC point's FPR (``"0.15"``) moved out
of the diagnostics table's ``group`` column into ``bin_low``/``bin_high`` and ``fpr``.

    python benchmarks/compare_snapshots.py BEFORE_DIR AFTER_DIR

Prints, per file, ``identical`` or what differs; exits 1 if anything does.
"""

from __future__ import annotations

import filecmp
import sys
from pathlib import Path

import numpy as np
import pandas as pd

BINNED = ("reliability_count", "reliability_confidence", "reliability_accuracy")


def _old_to_new(frame: pd.DataFrame) -> pd.DataFrame:
    """The diagnostics of a snapshot taken before the move, in the new columns."""
    if "fpr" in frame.columns:
        return frame
    frame = frame.assign(bin_low=np.nan, bin_high=np.nan, fpr=np.nan)
    binned, roc = frame["metric"].isin(BINNED), frame["metric"] == "membership_roc_tpr"
    edges = frame.loc[binned, "group"].str.split("-", expand=True).astype(float)
    frame.loc[binned, ["bin_low", "bin_high"]] = edges.to_numpy()
    frame.loc[roc, "fpr"] = frame.loc[roc, "group"].astype(float)
    frame.loc[binned | roc, "group"] = np.nan
    return frame


def _diagnostics(path: Path) -> pd.DataFrame:
    frame = _old_to_new(pd.read_csv(path))
    binned = frame["metric"].isin(BINNED)
    frame.loc[binned, ["bin_low", "bin_high"]] = frame.loc[binned, ["bin_low", "bin_high"]].round(3)
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def main(before: Path, after: Path) -> int:
    status = 0
    for name in sorted(p.name for p in before.iterdir()):
        if name == "diagnostics.csv":
            a, b = _diagnostics(before / name), _diagnostics(after / name)
            try:
                pd.testing.assert_frame_equal(a, b, check_dtype=False, check_exact=True)
                same = True
            except AssertionError:
                same = False
            text = "identical after the bin/FPR column move" if same else f"differ ({a.shape} vs {b.shape})"
        else:
            same = filecmp.cmp(before / name, after / name, shallow=False)
            text = "identical" if same else "differ"
        status |= not same
        print(f"{name}: {text}")
    return status


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))

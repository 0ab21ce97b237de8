"""Leakage between the training pool and the held-out splits.

A held-out row whose text is also in the training pool measures memory, not generalization: it
shrinks the gap and inflates held-out accuracy. Texts are compared after collapsing whitespace
and case (``"Great  food"`` and ``"great food"`` are the same text); labels are not compared,
since a shared text leaks either way. With ``data.drop_duplicates`` the shared texts are removed
from the training pool, so the held-out splits stay the same across runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pandas as pd

__all__ = ["Leakage", "drop_leaked", "find_leakage", "normalize_text"]

HELD_OUT = ("validation", "test")


def normalize_text(texts: pd.Series) -> pd.Series:
    """Texts with whitespace collapsed and case folded, as leakage compares them."""
    return texts.astype(str).str.split().str.join(" ").str.casefold()


@dataclass(frozen=True)
class Leakage:
    """Held-out rows whose text is in the training pool, per split.

    ``counts``: split -> number of such rows; ``examples``: split -> a few of their texts;
    ``dropped``: training rows ``data.drop_duplicates`` removed because a held-out split has them.
    """

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    dropped: int = 0

    @property
    def found(self) -> bool:
        return any(self.counts.values())

    def lines(self) -> list[str]:
        """One line per leaking split (count, share, examples) and one for what was dropped."""
        lines = []
        verb = "had" if self.dropped else "have"
        for split, count in self.counts.items():
            if count:
                shown = "; ".join(repr(text[:60]) for text in self.examples.get(split, []))
                size = self.sizes.get(split, count)
                lines.append(f"{count} of {size} {split} rows {verb} a text that is also in the training "
                             f"pool (e.g. {shown})")
        if self.dropped:
            lines.append(f"data.drop_duplicates removed {self.dropped} training rows whose text is in a "
                         "held-out split")
        elif self.found:
            lines.append("set data.drop_duplicates = true to remove them from the training pool")
        return lines

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict | None) -> Leakage:
        return cls(**raw) if raw else cls()


def find_leakage(train: pd.DataFrame, held_out: dict[str, pd.DataFrame], *, n_examples: int = 3,
                 dropped: int = 0) -> Leakage:
    """Count the rows of each held-out frame whose ``text`` (normalized) is in ``train``'s."""
    pool = set(normalize_text(train["text"]))
    counts, examples, sizes = {}, {}, {}
    for split, frame in held_out.items():
        shared = normalize_text(frame["text"]).isin(pool).to_numpy()
        counts[split], sizes[split] = int(shared.sum()), len(frame)
        examples[split] = frame["text"][shared].astype(str).head(n_examples).tolist()
    return Leakage(counts=counts, examples=examples, sizes=sizes, dropped=dropped)


def drop_leaked(train: pd.DataFrame, held_out: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, int]:
    """``train`` without the rows whose text (normalized) is in a held-out frame, and how many."""
    taken = set().union(*(set(normalize_text(frame["text"])) for frame in held_out.values()))
    keep = ~normalize_text(train["text"]).isin(taken).to_numpy()
    return train[keep].reset_index(drop=True), int((~keep).sum())

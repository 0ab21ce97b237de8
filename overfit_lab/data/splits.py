"""Stratified splits, nested training subsets and label-noise injection.

Every function is deterministic given its ``seed``, so a subset is the same for every strategy
and seed of a grid: comparisons differ only in what is compared.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split


def stratified_split(labels: np.ndarray, size: float | int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split positions ``0..n-1`` into (rest, held_out) with ``size`` held out, stratified by label.

    ``size`` is a count (int >= 1) or a fraction (float < 1), as in scikit-learn's
    ``train_test_split`` (which this calls, with ``random_state=seed``).
    """
    positions = np.arange(len(labels))
    rest, held = train_test_split(positions, test_size=size, stratify=labels, random_state=seed)
    return np.asarray(rest), np.asarray(held)


def nested_subsets(labels: np.ndarray, sizes: list[int], *, seed: int) -> dict[int, np.ndarray]:
    """Nested, stratified training subsets: ``subset[small] ⊂ subset[large]``.

    The largest size is drawn from all of ``labels``, each smaller one from the next larger
    subset (stratified by label each time), so growing the data only ever adds examples.

    Returns
    -------
    dict
        size -> positions into ``labels``.
    """
    labels = np.asarray(labels)
    if max(sizes) > len(labels):
        raise ValueError(f"train size {max(sizes)} exceeds the {len(labels)} training examples")
    subsets: dict[int, np.ndarray] = {}
    pool = np.arange(len(labels))
    for size in sorted(sizes, reverse=True):
        if size < len(pool):
            pool, _ = train_test_split(pool, train_size=size, stratify=_stratify(labels[pool], size),
                                       random_state=seed)
            pool = np.asarray(pool)
        subsets[size] = pool
    return subsets


def _stratify(labels: np.ndarray, size: int) -> np.ndarray | None:
    """Stratify when every class can be represented; tiny subsets fall back to a plain draw."""
    _, counts = np.unique(labels, return_counts=True)
    if size < len(counts) or len(labels) - size < len(counts) or counts.min() < 2:
        return None
    return labels


def flip_labels(labels: np.ndarray, fraction: float, *, n_classes: int, seed: int) -> np.ndarray:
    """Return a copy of ``labels`` with ``round(fraction * n)`` of them changed to another class.

    The flipped positions are a prefix of one fixed permutation, so a larger fraction flips a
    superset of a smaller one (label noise levels are nested too).
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    shift = rng.integers(1, max(n_classes, 2), size=len(labels))  # never 0: always another class
    noisy = labels.copy()
    flip = order[: int(round(fraction * len(labels)))]
    noisy[flip] = (labels[flip] + shift[flip]) % n_classes
    return noisy

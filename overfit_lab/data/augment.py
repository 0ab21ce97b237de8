"""Training-time text augmentation (EDA-style word operations and character typos).

Each operation takes a list of words, a rate (the share of words touched) and a NumPy
``Generator``, and is deterministic given the generator's state. References: Wei & Zou 2019,
"EDA: Easy Data Augmentation Techniques for Boosting Performance on Text Classification".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..suite import AugmentSpec

_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
KEYBOARD_NEIGHBOURS = {
    ch: "".join(
        row2[j]
        for row2_i, row2 in enumerate(_KEYBOARD_ROWS)
        if abs(row2_i - row_i) <= 1
        for j in range(max(0, i - 1), min(len(row2), i + 2))
        if row2[j] != ch
    )
    for row_i, row in enumerate(_KEYBOARD_ROWS)
    for i, ch in enumerate(row)
}


def _count(rate: float, n: int) -> int:
    return max(1, int(round(rate * n))) if rate > 0 and n > 0 else 0


def random_deletion(words: list[str], rate: float, rng: np.random.Generator, **_) -> list[str]:
    """Drop each word with probability ``rate``; always keep at least one word."""
    if rate <= 0 or len(words) <= 1:
        return words
    keep = rng.random(len(words)) >= rate
    if not keep.any():
        keep[rng.integers(len(words))] = True
    return [w for w, k in zip(words, keep, strict=True) if k]


def random_swap(words: list[str], rate: float, rng: np.random.Generator, **_) -> list[str]:
    """Swap ``round(rate * n)`` random pairs of words."""
    words = list(words)
    if len(words) < 2:
        return words
    for _ in range(_count(rate, len(words))):
        i, j = rng.choice(len(words), size=2, replace=False)
        words[i], words[j] = words[j], words[i]
    return words


def random_insertion(words: list[str], rate: float, rng: np.random.Generator, *,
                     vocabulary: Sequence[str] = (), **_) -> list[str]:
    """Insert ``round(rate * n)`` words drawn from the training vocabulary at random places."""
    words = list(words)
    if not vocabulary:
        return words
    for _ in range(_count(rate, len(words))):
        words.insert(int(rng.integers(len(words) + 1)), vocabulary[int(rng.integers(len(vocabulary)))])
    return words


def typos(words: list[str], rate: float, rng: np.random.Generator, **_) -> list[str]:
    """Give each word with probability ``rate`` one keyboard-neighbour character substitution."""
    out = []
    for word in words:
        if rate > 0 and len(word) > 1 and rng.random() < rate:
            i = int(rng.integers(len(word)))
            near = KEYBOARD_NEIGHBOURS.get(word[i].lower())
            if near:
                word = word[:i] + near[int(rng.integers(len(near)))] + word[i + 1:]
        out.append(word)
    return out


OPS: dict[str, Callable[..., list[str]]] = {
    "deletion": random_deletion,
    "swap": random_swap,
    "insertion": random_insertion,
    "typo": typos,
}


def augment_text(text: str, spec: AugmentSpec, rng: np.random.Generator, *,
                 vocabulary: Sequence[str] = ()) -> str:
    """Apply every operation of ``spec`` with a non-zero rate, in a fixed order."""
    words = text.split()
    for name, op in OPS.items():
        rate = getattr(spec, name)
        if rate > 0:
            words = op(words, rate, rng, vocabulary=vocabulary)
    return " ".join(words)


def training_vocabulary(texts: Sequence[str], *, max_words: int = 5000) -> list[str]:
    """The most frequent alphabetic words of the training texts (for random insertion)."""
    counts: dict[str, int] = {}
    for text in texts:
        for word in text.lower().split():
            if word.isalpha():
                counts[word] = counts.get(word, 0) + 1
    return sorted(counts, key=lambda w: (-counts[w], w))[:max_words]

"""Behavioural tests for the text augmentation operations."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from overfit_lab.data.augment import (
    OPS,
    augment_text,
    random_deletion,
    random_insertion,
    random_swap,
    training_vocabulary,
    typos,
)
from overfit_lab.suite import AugmentSpec

WORDS = ["the", "food", "was", "really", "good", "and", "the", "staff", "were", "friendly", "but",
         "slow"]
VOCAB = ["alpha", "bravo", "charlie", "delta"]
ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _neighbours(ch: str) -> set[str]:
    """Keys in the same or an adjacent row whose column differs by at most one."""
    (r, c), = [(r, row.index(ch)) for r, row in enumerate(ROWS) if ch in row]
    return {ROWS[r2][c2] for r2 in range(len(ROWS)) if abs(r2 - r) <= 1
            for c2 in range(len(ROWS[r2])) if abs(c2 - c) <= 1} - {ch}


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.mark.parametrize("name", sorted(OPS))
def test_ops_are_deterministic_for_a_seeded_generator(name: str) -> None:
    op = OPS[name]
    outputs = [op(list(WORDS), 0.3, _rng(7), vocabulary=VOCAB) for _ in range(3)]
    assert outputs[0] == outputs[1] == outputs[2]
    different = {tuple(op(list(WORDS), 0.3, _rng(seed), vocabulary=VOCAB)) for seed in range(20)}
    assert len(different) > 1


@pytest.mark.parametrize("name", sorted(OPS))
def test_rate_zero_is_identity(name: str) -> None:
    rng = _rng(1)
    state = rng.bit_generator.state
    assert OPS[name](list(WORDS), 0.0, rng, vocabulary=VOCAB) == WORDS
    assert rng.bit_generator.state == state
    text = " ".join(WORDS)
    assert augment_text(text, AugmentSpec(), _rng(1), vocabulary=VOCAB) == text


@pytest.mark.parametrize("name", sorted(OPS))
def test_ops_do_not_modify_their_input(name: str) -> None:
    words = list(WORDS)
    OPS[name](words, 0.5, _rng(2), vocabulary=VOCAB)
    assert words == WORDS


@pytest.mark.parametrize("rate", [0.3, 0.9, 1.0])
def test_deletion_never_empties_and_keeps_order(rate: float) -> None:
    for seed in range(50):
        out = random_deletion(list(WORDS), rate, _rng(seed))
        assert 1 <= len(out) <= len(WORDS)
        it = iter(WORDS)
        assert all(word in it for word in out)  # an ordered subsequence
    assert random_deletion(["only"], 1.0, _rng(0)) == ["only"]
    assert len(random_deletion(list(WORDS), 1.0, _rng(0))) == 1


def test_deletion_rate_is_roughly_respected() -> None:
    kept = [len(random_deletion(list(WORDS), 0.5, _rng(seed))) for seed in range(400)]
    assert abs(np.mean(kept) - len(WORDS) / 2) < 0.5


@pytest.mark.parametrize("rate", [0.1, 0.5, 1.0])
def test_swap_keeps_the_multiset_of_words(rate: float) -> None:
    for seed in range(20):
        out = random_swap(list(WORDS), rate, _rng(seed))
        assert Counter(out) == Counter(WORDS)
    assert random_swap(["one"], 1.0, _rng(0)) == ["one"]
    changed = [random_swap(list(WORDS), 0.2, _rng(s)) != WORDS for s in range(20)]
    assert any(changed)


@pytest.mark.parametrize(("rate", "added"), [(0.01, 1), (0.1, 1), (0.3, 4), (0.5, 6), (1.0, 12)])
def test_insertion_adds_round_rate_n_vocabulary_words(rate: float, added: int) -> None:
    assert added == max(1, round(rate * len(WORDS)))
    for seed in range(10):
        out = random_insertion(list(WORDS), rate, _rng(seed), vocabulary=VOCAB)
        assert len(out) == len(WORDS) + added
        extra = Counter(out) - Counter(WORDS)
        assert sum(extra.values()) == added
        assert set(extra) <= set(VOCAB)
        it = iter(out)
        assert all(word in it for word in WORDS)  # the original words keep their order


def test_insertion_without_vocabulary_is_identity() -> None:
    assert random_insertion(list(WORDS), 0.5, _rng(0), vocabulary=()) == WORDS


def test_typos_change_characters_only_to_keyboard_neighbours() -> None:
    changed_words = 0
    for seed in range(30):
        out = typos(list(WORDS), 0.5, _rng(seed))
        assert len(out) == len(WORDS)
        for before, after in zip(WORDS, out, strict=True):
            assert len(after) == len(before)
            diff = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
            assert len(diff) <= 1
            if diff:
                changed_words += 1
                i = diff[0]
                assert after[i] in _neighbours(before[i])
    assert changed_words > 0


def test_typos_leave_short_words_and_non_letters() -> None:
    words = ["a", "I", "123", "--"]
    for seed in range(20):
        assert typos(list(words), 1.0, _rng(seed)) == words


def test_augment_text_is_deterministic_and_applies_all_ops() -> None:
    spec = AugmentSpec(deletion=0.2, swap=0.2, insertion=0.2, typo=0.2)
    text = " ".join(WORDS)
    first = augment_text(text, spec, _rng(4), vocabulary=VOCAB)
    assert first == augment_text(text, spec, _rng(4), vocabulary=VOCAB)
    assert first != text
    only_insert = augment_text(text, AugmentSpec(insertion=0.25), _rng(4), vocabulary=VOCAB)
    assert len(only_insert.split()) == len(WORDS) + 3


def test_training_vocabulary_order_and_limit() -> None:
    texts = ["The cat sat", "the dog sat down", "THE cat! ran 42 times", "dog dog cat"]
    # counts: dog 3, the 3, cat 2 ("cat!" is not alphabetic), sat 2, down 1, ran 1, times 1
    assert training_vocabulary(texts) == ["dog", "the", "cat", "sat", "down", "ran", "times"]
    assert training_vocabulary(texts, max_words=3) == ["dog", "the", "cat"]
    assert training_vocabulary([]) == []

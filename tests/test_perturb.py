"""Behavioural tests for the robustness perturbations and their registry."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from overfit_lab.data.augment import KEYBOARD_NEIGHBOURS
from overfit_lab.diagnostics.perturb import (
    CONTRACTIONS,
    GENDER_SWAPS,
    PERTURBATIONS,
    SYNONYMS,
    casing,
    changed_mask,
    char_delete,
    char_insert,
    contraction,
    get_perturbation,
    identity_swap,
    keyboard_typo,
    perturb_texts,
    register_perturbation,
    synonym,
    word_dropout,
    word_swap,
)

# Every sentence has several words, a synonym-lexicon word, a contraction and a gendered word.
CORPUS = [
    "She didn't like the movie at all.",
    "He said the food was good but it wasn't cheap.",
    "My brother thinks the film is great, and I'm inclined to agree.",
    "The waiter was rude and we won't go back, said Mary.",
    "It's a terrible story about a man and his dog.",
    "They're happy with the hotel room, says my wife.",
    "I can't recommend this awful restaurant to anyone, John.",
    "Her husband loved the ending; it's brilliant.",
]
RICH = "She didn't like the movie and he wasn't happy: it's a bad film."
ODD = ["", "   ", "word", "  leading and trailing  ", "tabs\tand\nnewlines", "123 -- !!", "Ünïcödé café"]
OPS = sorted(PERTURBATIONS)
ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _neighbours(ch: str) -> set[str]:
    """Keys in the same or an adjacent row whose column differs by at most one (computed afresh)."""
    (r, c), = [(r, row.index(ch)) for r, row in enumerate(ROWS) if ch in row]
    return {ROWS[r2][c2] for r2 in range(len(ROWS)) if abs(r2 - r) <= 1
            for c2 in range(len(ROWS[r2])) if abs(c2 - c) <= 1} - {ch}


@pytest.mark.parametrize("name", OPS)
def test_ops_are_deterministic_for_a_seeded_generator(name: str) -> None:
    op = PERTURBATIONS[name]
    for severity in (0.3, 1.0):
        for text in CORPUS + ODD:
            assert op(text, severity, _rng(7)) == op(text, severity, _rng(7))
    variants = {op(RICH, 0.5, _rng(seed)) for seed in range(20)}
    assert len(variants) > 1


@pytest.mark.parametrize("name", OPS)
def test_severity_zero_is_identity_and_leaves_the_generator(name: str) -> None:
    rng = _rng(1)
    state = rng.bit_generator.state
    for text in CORPUS + ODD:
        assert PERTURBATIONS[name](text, 0.0, rng) == text
    assert rng.bit_generator.state == state


@pytest.mark.parametrize("name", OPS)
def test_severity_one_changes_most_multi_word_texts(name: str) -> None:
    changed = [PERTURBATIONS[name](text, 1.0, _rng(seed)) != text for seed, text in enumerate(CORPUS)]
    assert sum(changed) >= 0.75 * len(CORPUS), changed


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("severity", [-0.1, 1.5, float("nan")])
def test_severity_outside_unit_interval_is_rejected(name: str, severity: float) -> None:
    with pytest.raises(ValueError, match="severity"):
        PERTURBATIONS[name](CORPUS[0], severity, _rng())


@pytest.mark.parametrize("name", OPS)
def test_ops_cope_with_odd_texts(name: str) -> None:
    for text in ODD:
        assert isinstance(PERTURBATIONS[name](text, 1.0, _rng(3)), str)
    assert PERTURBATIONS[name]("", 1.0, _rng(3)) == ""


def test_severity_is_the_share_of_eligible_units() -> None:
    text = "alpha bravo charlie delta echo foxtrot golf hotel india juliet"
    letters = len(text.replace(" ", ""))
    assert letters == 53
    for seed in range(10):
        out = casing(text, 0.5, _rng(seed))
        assert sum(a != b for a, b in zip(text.split(), out.split(), strict=True)) == 5
        typo = keyboard_typo(text, 0.2, _rng(seed))
        assert sum(a != b for a, b in zip(text, typo, strict=True)) == round(0.2 * letters) == 11
        assert len(char_insert(text, 0.1, _rng(seed))) == len(text) + 5
        assert len(word_dropout(text, 0.3, _rng(seed)).split()) == 7
    # a tiny positive severity still touches one unit
    assert sum(a != b for a, b in zip(text.split(), casing(text, 0.01, _rng()).split(), strict=True)) == 1


def test_typos_only_use_keyboard_neighbours() -> None:
    changed = 0
    for seed in range(30):
        for text in CORPUS:
            out = keyboard_typo(text, 0.4, _rng(seed))
            assert len(out) == len(text)
            for before, after in zip(text, out, strict=True):
                if before != after:
                    changed += 1
                    assert after.lower() in _neighbours(before.lower())
                    assert after.isupper() == before.isupper()
                    assert after.lower() in KEYBOARD_NEIGHBOURS[before.lower()]
    assert changed > 0


def test_char_insert_adds_a_neighbour_after_a_letter() -> None:
    for seed in range(20):
        out = char_insert("keyboard", 1 / 8, _rng(seed))
        assert len(out) == 9
        assert any(out[:i] + out[i + 1:] == "keyboard" and out[i] in _neighbours(out[i - 1])
                   for i in range(1, 9))


def test_char_delete_keeps_the_first_character_of_every_word() -> None:
    for seed in range(10):
        out = char_delete("the quick brown fox, 42 times", 1.0, _rng(seed))
        assert out == "t q b f, 4 t"


def test_word_dropout_never_empties_the_text() -> None:
    for seed in range(50):
        for text in CORPUS:
            out = word_dropout(text, 1.0, _rng(seed))
            assert len(out.split()) == 1
            assert out.split()[0] in text.split()
            kept = word_dropout(text, 0.6, _rng(seed)).split()
            it = iter(text.split())
            assert kept and all(word in it for word in kept)  # an ordered subsequence
    assert word_dropout("only", 1.0, _rng()) == "only"
    assert word_dropout("  a  b  c  ", 0.5, _rng(0)).startswith("  ")


def test_word_swap_keeps_the_multiset_of_words_and_the_gaps() -> None:
    for severity in (0.1, 0.5, 1.0):
        for seed in range(20):
            for text in CORPUS + ["two  words"]:
                out = word_swap(text, severity, _rng(seed))
                assert Counter(out.split()) == Counter(text.split())
                assert re.findall(r"\s+", out) == re.findall(r"\s+", text)
    assert word_swap("alone", 1.0, _rng()) == "alone"
    assert word_swap("two  words", 0.1, _rng()) == "words  two"


def test_contraction_hand_examples() -> None:
    def full(text: str) -> str:
        return contraction(text, 1.0, _rng())

    assert full("She didn't like the movie") == "She did not like the movie"
    assert full("She did not like the movie") == "She didn't like the movie"
    assert full("I'm sure it's fine") == "I am sure it is fine"
    assert full("I am sure it is fine") == "I'm sure it's fine"
    assert full("DON'T panic, we won’t") == "DO NOT panic, we will not"
    assert full("Cannot, can not, can't") == "Can't, can't, cannot"
    assert full("the theme isn't there") == "the theme is not there"
    assert full("the theme is there") == "the theme is there"
    assert len(CONTRACTIONS) >= 25


def test_identity_swap_hand_examples() -> None:
    def full(text: str) -> str:
        return identity_swap(text, 1.0, _rng())

    assert full("She didn't like the movie") == "He didn't like the movie"
    assert full("he told her his news") == "she told his her news"
    assert full("The WOMAN and the man") == "The MAN and the woman"
    assert full("Mary met John; Emily met David") == "John met Mary; David met Emily"
    assert full("the theme of these shells") == "the theme of these shells"  # word boundaries
    assert full("Her husband") == "His wife"
    assert GENDER_SWAPS["she"] == "he" and GENDER_SWAPS["he"] == "she"


def test_synonym_hand_examples() -> None:
    def full(text: str) -> str:
        return synonym(text, 1.0, _rng())

    assert full("She didn't like the movie") == "She didn't like the film"
    assert full("a good film") == "a fine movie"
    assert full("Great MOVIE, bad plot, awful acting") == "Excellent FILM, poor storyline, terrible acting"
    assert full("excellent and terrible") == "great and awful"
    assert full("the goodness of the theme") == "the goodness of the theme"
    assert len(SYNONYMS) >= 60
    assert {SYNONYMS[SYNONYMS[w]] for w in ("good", "great", "bad", "awful", "movie")} == {
        "good", "great", "bad", "awful", "movie"}


def test_registry_custom_op_and_duplicate_name() -> None:
    def shout(text: str, severity: float, rng: np.random.Generator) -> str:
        return text.upper() if severity > 0 else text

    try:
        assert register_perturbation("shout", shout) is shout
        assert get_perturbation("shout") is shout
        assert perturb_texts(["a b", "c"], "shout", 1.0, seed=0) == ["A B", "C"]
        with pytest.raises(ValueError, match="already registered"):
            register_perturbation("shout", shout)
        register_perturbation("shout", str.lower, replace=True)
        assert get_perturbation("shout") is str.lower
    finally:
        PERTURBATIONS.pop("shout", None)
    with pytest.raises(ValueError, match="already registered"):
        register_perturbation("synonym", shout)
    with pytest.raises(ValueError, match="fn must be callable"):
        register_perturbation("nope", "not a function")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name"):
        register_perturbation("", shout)
    with pytest.raises(ValueError, match="known: .*keyboard_typo"):
        get_perturbation("no_such_op")
    assert "shout" not in PERTURBATIONS


def test_perturb_texts_is_reproducible_and_independent_of_global_state() -> None:
    first = perturb_texts(CORPUS, "keyboard_typo", 0.2, seed=11)
    np.random.seed(123)
    np.random.default_rng(5).random(100)
    perturb_texts(CORPUS, "word_swap", 0.5, seed=99)
    assert perturb_texts(CORPUS, "keyboard_typo", 0.2, seed=11) == first
    assert perturb_texts(CORPUS, keyboard_typo, 0.2, seed=11) == first
    assert perturb_texts(CORPUS, "keyboard_typo", 0.2, seed=12) != first
    assert perturb_texts(CORPUS, "casing", 0.0, seed=11) == CORPUS


def test_perturb_texts_validation() -> None:
    with pytest.raises(ValueError, match="severity"):
        perturb_texts(CORPUS, "casing", 2.0, seed=0)
    with pytest.raises(ValueError, match="texts"):
        perturb_texts("a single string", "casing", 0.5, seed=0)
    with pytest.raises(ValueError, match="texts"):
        perturb_texts(["ok", 3], "casing", 0.5, seed=0)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturb_texts(CORPUS, "nope", 0.5, seed=0)


def test_changed_mask() -> None:
    texts = ["she is", "the food", "he is"]
    out = perturb_texts(texts, "identity_swap", 1.0, seed=0)
    assert changed_mask(texts, out).tolist() == [True, False, True]
    with pytest.raises(ValueError, match="perturbed"):
        changed_mask(texts, out[:2])

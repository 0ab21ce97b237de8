"""Behavioural tests for the built-in synthetic review dataset."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from overfit_lab.data.builtin import (
    BUILTIN_NAME,
    FEMALE_NAMES,
    GROUP_COLUMN,
    LABEL_NAMES,
    MALE_NAMES,
    generate_reviews,
)

SMALL = {"n_train": 300, "n_validation": 100, "n_test": 200}


def _female_rate_gap(frame: pd.DataFrame, classes: int = 2) -> float:
    """P(female | positive) - P(female | negative)."""
    female = frame[GROUP_COLUMN] == "female"
    return female[frame.label == classes - 1].mean() - female[frame.label == 0].mean()


def test_public_constants() -> None:
    assert BUILTIN_NAME == "reviews"
    assert GROUP_COLUMN == "gender"
    assert LABEL_NAMES == {2: ["negative", "positive"], 3: ["negative", "neutral", "positive"]}


@pytest.mark.parametrize("classes", [2, 3])
def test_schema_sizes_and_labels(classes: int) -> None:
    df = generate_reviews(**SMALL, classes=classes)
    assert list(df.columns) == ["text", "label", "gender", "split"]
    assert isinstance(df.index, pd.RangeIndex)
    assert df.split.value_counts().to_dict() == {"train": 300, "validation": 100, "test": 200}
    assert list(df.split.unique()) == ["train", "validation", "test"]  # split order
    assert pd.api.types.is_integer_dtype(df.label)
    assert set(df.label) == set(range(classes))
    assert set(df.gender) == {"female", "male"}
    assert all(isinstance(t, str) and t for t in df.text)
    # roughly balanced classes
    shares = df.label.value_counts(normalize=True)
    assert shares.max() - shares.min() < 0.12


def test_deterministic_and_seed_dependent() -> None:
    a = generate_reviews(**SMALL, seed=3)
    b = generate_reviews(**SMALL, seed=3)
    pd.testing.assert_frame_equal(a, b)
    c = generate_reviews(**SMALL, seed=4)
    assert (a.text != c.text).mean() > 0.9


def test_split_sizes_do_not_change_other_splits() -> None:
    a = generate_reviews(300, 100, 200, seed=1)
    b = generate_reviews(300, 150, 700, seed=1)
    pd.testing.assert_frame_equal(a[a.split == "train"], b[b.split == "train"])
    # the first rows of a split do not depend on its size either
    va, vb = a[a.split == "validation"], b[b.split == "validation"]
    pd.testing.assert_frame_equal(va.reset_index(drop=True), vb.head(100).reset_index(drop=True))


def test_length_of_reviews() -> None:
    df = generate_reviews(1000, 1, 1000, classes=3)
    words = df.text.str.split().str.len()
    assert words.min() >= 8
    assert words.max() <= 40
    assert df.text.nunique() > 0.95 * len(df)  # varied, not a handful of templates


@pytest.mark.parametrize("noise", [0.1, 0.3])
@pytest.mark.parametrize("classes", [2, 3])
def test_label_noise_flips_requested_fraction(noise: float, classes: int) -> None:
    clean = generate_reviews(1000, 400, 600, classes=classes, seed=7)
    noisy = generate_reviews(1000, 400, 600, classes=classes, label_noise=noise, seed=7)
    # the texts (and groups) do not depend on label_noise, so rows line up
    pd.testing.assert_frame_equal(clean.drop(columns="label"), noisy.drop(columns="label"))
    for split in ("train", "validation", "test"):
        rows = clean.split == split
        flipped = (clean.label[rows] != noisy.label[rows]).mean()
        assert flipped == pytest.approx(noise, abs=0.01), split
    assert noisy.label.between(0, classes - 1).all()
    if classes == 3:  # flipped labels go to both other classes
        changed = noisy[clean.label != noisy.label]
        moved = changed.label - clean.label[changed.index]
        assert set(moved % 3) == {1, 2}


def test_spurious_correlation_only_in_train() -> None:
    df = generate_reviews(4000, 100, 4000, spurious_correlation=0.8, seed=2)
    train, test = df[df.split == "train"], df[df.split == "test"]
    assert _female_rate_gap(train) == pytest.approx(0.8, abs=0.05)
    assert abs(_female_rate_gap(test)) < 0.06
    assert (test.gender == "female").mean() == pytest.approx(0.5, abs=0.03)


def test_negative_spurious_correlation_reverses_the_shortcut() -> None:
    df = generate_reviews(4000, 1, 1, spurious_correlation=-0.6, seed=2)
    assert _female_rate_gap(df[df.split == "train"]) == pytest.approx(-0.6, abs=0.05)


def test_spurious_correlation_three_classes_neutral_balanced() -> None:
    df = generate_reviews(4500, 1, 1, classes=3, spurious_correlation=1.0, seed=0)
    train = df[df.split == "train"]
    female = train.gender == "female"
    assert female[train.label == 2].all()
    assert not female[train.label == 0].any()
    assert female[train.label == 1].mean() == pytest.approx(0.5, abs=0.05)


def test_no_spurious_correlation_by_default() -> None:
    df = generate_reviews(4000, 1, 4000, seed=5)
    for split in ("train", "test"):
        assert abs(_female_rate_gap(df[df.split == split])) < 0.06


def test_spurious_correlation_keeps_labels() -> None:
    a = generate_reviews(**SMALL, seed=9)
    b = generate_reviews(**SMALL, spurious_correlation=0.9, seed=9)
    assert (a.label == b.label).all()


_FEMALE_WORDS = re.compile(r"\b(she|her|hers|" + "|".join(FEMALE_NAMES) + r")\b", re.I)
_MALE_WORDS = re.compile(r"\b(he|him|his|" + "|".join(MALE_NAMES) + r")\b", re.I)


def test_gender_appears_in_text() -> None:
    df = generate_reviews(**SMALL, classes=3, seed=11)
    for text, gender in zip(df.text, df.gender, strict=True):
        first = text.split()[0]
        assert first in (FEMALE_NAMES if gender == "female" else MALE_NAMES), text
        own, other = (
            (_FEMALE_WORDS, _MALE_WORDS) if gender == "female" else (_MALE_WORDS, _FEMALE_WORDS)
        )
        assert own.search(text), text
        assert not other.search(text), text


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"classes": 4}, "classes"),
        ({"classes": 1}, "classes"),
        ({"n_train": 0}, "n_train"),
        ({"n_validation": -5}, "n_validation"),
        ({"n_test": 0}, "n_test"),
        ({"n_train": 10.5}, "n_train"),
        ({"label_noise": 1.0}, "label_noise"),
        ({"label_noise": -0.1}, "label_noise"),
        ({"spurious_correlation": 1.5}, "spurious_correlation"),
        ({"spurious_correlation": -1.01}, "spurious_correlation"),
        ({"seed": -1}, "seed"),
    ],
)
def test_argument_validation_names_the_argument(kwargs: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        generate_reviews(**kwargs)


def test_classes_error_message() -> None:
    with pytest.raises(ValueError, match="classes must be 2 or 3, got 4"):
        generate_reviews(classes=4)


def test_extreme_but_valid_arguments() -> None:
    df = generate_reviews(1, 1, 1, spurious_correlation=-1.0, label_noise=0.99)
    assert len(df) == 3


@pytest.mark.parametrize("classes", [2, 3])
def test_bag_of_words_learns_but_not_perfectly(classes: int) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    df = generate_reviews(1000, 1, 500, classes=classes, seed=0)
    train, test = df[df.split == "train"], df[df.split == "test"]
    vectorizer = TfidfVectorizer()
    model = LogisticRegression(max_iter=1000).fit(vectorizer.fit_transform(train.text), train.label)
    accuracy = float(np.mean(model.predict(vectorizer.transform(test.text)) == test.label))
    chance = 1 / classes
    assert accuracy > chance + 0.2
    assert accuracy < 0.97


def test_correlated_test_split_shares_the_training_correlation() -> None:
    plain = generate_reviews(3000, 50, 100, spurious_correlation=0.8, seed=2)
    df = generate_reviews(3000, 50, 100, spurious_correlation=0.8, n_correlated_test=3000, seed=2)
    assert list(df.split.unique()) == ["train", "validation", "test", "test_correlated"]
    pd.testing.assert_frame_equal(df[df.split != "test_correlated"], plain)  # other splits unchanged
    correlated = df[df.split == "test_correlated"]
    assert len(correlated) == 3000
    assert _female_rate_gap(correlated) == pytest.approx(0.8, abs=0.05)
    with pytest.raises(ValueError, match="n_correlated_test"):
        generate_reviews(10, 10, 10, n_correlated_test=-1)

"""Built-in synthetic review dataset: a real text-classification problem with no download.

Every row is a short review of a restaurant, a film or a product (8-40 words, at most
60 word-piece tokens for a BERT tokenizer) written by a named person, e.g.::

    Priya watched the new thriller over the weekend. She thought the plot was not good at all.

Columns: ``text``, ``label`` (sentiment), ``gender`` (``"female"``/``"male"``, the
subgroup attribute) and ``split`` (``"train"``/``"validation"``/``"test"``).

Constructions
-------------
A review is an opening sentence naming the reviewer and the item, one main sentiment
sentence, and optionally a tail sentence. The main sentence is one of:

* **direct** -- ``the <aspect> was <intensifier> <adjective>``: the adjective decides.
* **negated** -- ``was not good``, ``wasn't bad``, ``could not have been better``,
  ``could not find anything good about ...``: the negation flips the adjective, so a
  bag of words that sees ``good`` is misled.
* **contrast** -- ``the X was great, but the Y was awful`` / ``although (while) X ...,
  Y ...``: the clause after ``but`` (or the main clause) decides; ``Y ..., even though
  X ...``: the first clause decides. The overruled clause has the opposite polarity or
  is merely middling (``the service was fine, but ...``).
* **reinforced** -- two aspects with the same polarity, the second possibly negated
  (``great, and the X wasn't bad either``).

Adjectives come in strong and mild variants, with optional intensifiers (``really``,
``absolutely``, ``somewhat``) and opinion frames (``she felt the ...``). The tail
(optional) is a filler sentence with no sentiment (``he saw the late showing``) or a
short verdict that agrees with the label (``she would recommend it to anyone``).

With ``classes=3`` a *neutral* class is added: middling adjectives (``okay``,
``average``, ``passable``), ``neither good nor bad``, ``wasn't great, but it wasn't
terrible either``, a mixed verdict (``the X was great, but the Y was awful, so it
evened out``) and a balanced pair with no ``but`` to tip it (``the X was great and the Y
was awful``); their words overlap those of the polar constructions.

Knobs
-----
* ``label_noise`` -- that fraction of the labels, in every split, is replaced by a
  different class drawn at random (the texts are unchanged). It caps achievable accuracy
  at about ``1 - label_noise``. The noise has its own random stream, so the texts do not
  depend on it.
* ``spurious_correlation`` ``s`` -- in the train split only, the reviewer's gender
  depends on the label: ``P(female | positive) = 0.5 + s/2``, ``P(female | negative) =
  0.5 - s/2`` (neutral: 0.5). Validation and test are balanced and independent of the
  label. Gender shows in the text through the first name and the he/she/his/her
  pronouns, so a model can learn the shortcut.
* ``n_correlated_test`` -- rows of a fourth split, ``test_correlated``, drawn with the
  training split's correlation: the evaluation split Zhao et al.'s BiasAmp assumes.

Difficulty: TF-IDF (unigrams) + logistic regression, trained on 2,000 rows, reaches about
0.85 test accuracy with the default arguments (about 0.86 with bigrams, 0.83 with
``classes=3``). Without label noise the label is a function of the text, so a model that
reads word order can approach 1.0.

Each split is generated from its own child generator (``default_rng([seed, split])``),
so changing ``n_test`` does not change the training rows, and row by row, so the first
``n`` rows of a split do not depend on its size (nested training sets for learning curves).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._builtin_grammar import NEUTRAL, POLAR, _Ctx
from ._builtin_lexicon import (  # the word lists stay readable as builtin.<NAME>
    COMPARATIVE,
    DOMAINS,
    FEMALE_NAMES,
    FIND_NOTHING,
    MALE_NAMES,
    MILD_INTENSIFIERS,
    NAMES,
    NEGATABLE,
    NEGATIONS,
    NEGATIVE_MILD,
    NEGATIVE_STRONG,
    NEUTRAL_ADJ,
    NEUTRAL_WEIGHTS,
    POLAR_WEIGHTS,
    POSITIVE_MILD,
    POSITIVE_STRONG,
    PRONOUNS,
    STRONG_INTENSIFIERS,
    TAIL_PROBS,
    VERDICTS,
    WHEN,
)

__all__ = ["BUILTIN_NAME", "GROUP_COLUMN", "LABEL_NAMES", "SPLITS", "generate_reviews",
           "FEMALE_NAMES", "MALE_NAMES", "NAMES", "PRONOUNS", "DOMAINS", "WHEN", "POSITIVE_STRONG",
           "POSITIVE_MILD", "NEGATIVE_STRONG", "NEGATIVE_MILD", "NEUTRAL_ADJ", "NEGATABLE",
           "MILD_INTENSIFIERS", "STRONG_INTENSIFIERS", "NEGATIONS", "COMPARATIVE", "FIND_NOTHING",
           "VERDICTS", "POLAR_WEIGHTS", "NEUTRAL_WEIGHTS", "TAIL_PROBS", "NEUTRAL", "POLAR"]

BUILTIN_NAME = "reviews"
LABEL_NAMES: dict[int, list[str]] = {
    2: ["negative", "positive"],
    3: ["negative", "neutral", "positive"],
}
GROUP_COLUMN = "gender"

SPLITS: tuple[str, ...] = ("train", "validation", "test", "test_correlated")
_CORRELATED = ("train", "test_correlated")  # the splits that carry the spurious correlation


# --------------------------------------------------------------------------- reviews

def _choose(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _review(rng: np.random.Generator, polarity: int, gender: str) -> str:
    """One review; ``polarity`` is 1 (positive), -1 (negative) or 0 (neutral)."""
    domain = list(DOMAINS)[int(rng.integers(len(DOMAINS)))]
    ctx = _Ctx(rng, gender, domain)
    opening = ctx.pick(ctx.domain["openings"]).format(
        name=ctx.pick(NAMES[gender]), item=ctx.pick(ctx.domain["items"]), when=ctx.pick(WHEN)
    )
    if polarity == 0:
        main = NEUTRAL[_choose(rng, NEUTRAL_WEIGHTS)](ctx)
    else:
        main = POLAR[_choose(rng, POLAR_WEIGHTS)](ctx, polarity)
    parts = [opening, main]
    tail = _choose(rng, TAIL_PROBS)
    if tail == "filler":
        parts.append(ctx.fill(ctx.pick(ctx.domain["fillers"])))
    elif tail == "verdict":
        parts.append(ctx.fill(ctx.pick(VERDICTS[polarity])))
    return " ".join(parts)


def _polarity(label: int, classes: int) -> int:
    """Class id to polarity: first class -1, last class +1, neutral (3 classes) 0."""
    if label == 0:
        return -1
    return 1 if label == classes - 1 else 0


def _split(
    n: int, split_index: int, *, classes: int, label_noise: float, spurious: float, seed: int
) -> pd.DataFrame:
    rng = np.random.default_rng([seed, split_index])
    strength = spurious if SPLITS[split_index] in _CORRELATED else 0.0
    labels = np.empty(n, dtype=np.int64)
    genders: list[str] = []
    texts: list[str] = []
    # row by row, so a split of n rows is a prefix of the same split with more rows, and the
    # same number of draws per row whatever the spurious strength (labels do not depend on it)
    for i in range(n):
        labels[i] = rng.integers(classes)
        polarity = _polarity(int(labels[i]), classes)
        gender = "female" if rng.random() < 0.5 + strength / 2 * polarity else "male"
        genders.append(gender)
        texts.append(_review(rng, polarity, gender))

    observed = labels.copy()
    n_flip = int(round(label_noise * n))
    if n_flip:
        noise_rng = np.random.default_rng([seed, split_index, 1])
        idx = noise_rng.choice(n, size=n_flip, replace=False)
        observed[idx] = (labels[idx] + noise_rng.integers(1, classes, size=n_flip)) % classes
    return pd.DataFrame({
        "text": texts,
        "label": observed.astype(np.int64),
        GROUP_COLUMN: genders,
        "split": SPLITS[split_index],
    })


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_size(name: str, value: int) -> None:
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def generate_reviews(
    n_train: int = 2000,
    n_validation: int = 500,
    n_test: int = 1000,
    *,
    classes: int = 2,
    label_noise: float = 0.0,
    spurious_correlation: float = 0.0,
    n_correlated_test: int = 0,
    seed: int = 0,
) -> pd.DataFrame:
    """Generate the built-in synthetic review-sentiment dataset.

    Parameters
    ----------
    n_train, n_validation, n_test : int
        Number of rows in each split (each >= 1).
    classes : int
        2 (negative/positive) or 3 (negative/neutral/positive); see ``LABEL_NAMES``.
    label_noise : float
        Fraction, in ``[0, 1)``, of the labels of every split replaced by a different class
        drawn at random. The texts do not depend on it.
    spurious_correlation : float
        ``s`` in ``[-1, 1]``. In the train split ``P(female | positive) = 0.5 + s/2`` and
        ``P(female | negative) = 0.5 - s/2`` (neutral rows: 0.5); validation and test are
        independent of the label with ``P(female) = 0.5``.
    n_correlated_test : int
        Rows (>= 0) of an extra ``test_correlated`` split drawn with the train split's
        correlation, for bias measures that assume the evaluation data shares it.
    seed : int
        Seed; every split is drawn from ``numpy.random.default_rng([seed, split_index])``,
        so the size of one split does not affect the others.

    Returns
    -------
    pandas.DataFrame
        Columns ``text`` (str), ``label`` (int in ``0..classes-1``), ``gender``
        (``"female"``/``"male"``) and ``split`` (``"train"``/``"validation"``/``"test"``, then
        ``"test_correlated"`` when asked for), rows in that split order, with a fresh ``RangeIndex``.

    Raises
    ------
    ValueError
        If an argument is out of range; the message names the argument.
    """
    if not _is_int(classes) or classes not in (2, 3):
        raise ValueError(f"classes must be 2 or 3, got {classes!r}")
    for name, value in (("n_train", n_train), ("n_validation", n_validation),
                        ("n_test", n_test)):
        _check_size(name, value)
    if not _is_int(n_correlated_test) or n_correlated_test < 0:
        raise ValueError(f"n_correlated_test must be an integer >= 0, got {n_correlated_test!r}")
    if not 0.0 <= label_noise < 1.0:
        raise ValueError(f"label_noise must be in [0, 1), got {label_noise!r}")
    if not -1.0 <= spurious_correlation <= 1.0:
        raise ValueError(
            f"spurious_correlation must be in [-1, 1], got {spurious_correlation!r}"
        )
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")

    frames = [
        _split(int(n), i, classes=classes, label_noise=float(label_noise),
               spurious=float(spurious_correlation), seed=int(seed))
        for i, n in enumerate((n_train, n_validation, n_test, n_correlated_test)) if n
    ]
    return pd.concat(frames, ignore_index=True)

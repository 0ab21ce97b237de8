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

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

BUILTIN_NAME = "reviews"
LABEL_NAMES: dict[int, list[str]] = {
    2: ["negative", "positive"],
    3: ["negative", "neutral", "positive"],
}
GROUP_COLUMN = "gender"

SPLITS: tuple[str, ...] = ("train", "validation", "test", "test_correlated")
_CORRELATED = ("train", "test_correlated")  # the splits that carry the spurious correlation

# --------------------------------------------------------------------------- word lists

FEMALE_NAMES = (
    "Maria", "Emma", "Olivia", "Sofia", "Hannah", "Grace", "Chloe", "Priya", "Aisha", "Mei",
    "Laura", "Julia", "Nina", "Rachel", "Fatima", "Elena", "Claire", "Anna", "Zoe", "Lucy",
)
MALE_NAMES = (
    "James", "David", "Omar", "Lucas", "Daniel", "Ethan", "Rahul", "Kenji", "Carlos", "Noah",
    "Peter", "Samuel", "Tom", "Ahmed", "Marco", "Adam", "Ben", "Leo", "Victor", "Hugo",
)
NAMES = {"female": FEMALE_NAMES, "male": MALE_NAMES}
PRONOUNS = {
    "female": {"subj": "she", "obj": "her", "poss": "her", "poss_abs": "hers"},
    "male": {"subj": "he", "obj": "him", "poss": "his", "poss_abs": "his"},
}

# domain -> openings, items, aspects (that fit every item), neutral filler sentences
DOMAINS: dict[str, dict[str, tuple[str, ...]]] = {
    "restaurant": {
        "openings": ("{name} ate at {item} {when}.", "{name} tried {item} {when}.",
                     "{name} took a friend to {item} {when}."),
        "items": ("the new ramen place", "a small bistro", "the taco truck",
                  "an Italian restaurant", "the corner cafe", "a sushi bar", "the hotel buffet",
                  "a family diner", "the steakhouse downtown", "a vegan kitchen"),
        "aspects": ("food", "service", "dessert", "coffee", "atmosphere", "soup", "wine list",
                    "bread", "waiter", "menu", "main course", "music", "seating", "bill"),
        "fillers": ("{Subj} went with {poss} sister.", "{Subj} paid with a gift card.",
                    "It was {poss} second visit this year.", "{Subj} had booked a table.",
                    "{Subj} was there for about two hours.",
                    "A colleague of {poss_abs} came along."),
    },
    "film": {
        "openings": ("{name} watched {item} {when}.", "{name} went to see {item} {when}.",
                     "{name} streamed {item} {when}."),
        "items": ("the new thriller", "a documentary about whales", "the sequel",
                  "an animated film", "a romantic comedy", "the space opera", "a horror movie",
                  "the period drama", "an indie western", "the superhero film"),
        "aspects": ("plot", "acting", "soundtrack", "ending", "dialogue", "pacing",
                    "camera work", "lead actor", "villain", "script", "humour", "editing",
                    "costume design", "finale"),
        "fillers": ("{Subj} watched it with {poss} brother.", "{Subj} saw the late showing.",
                    "{Subj} had read about it in a magazine.", "It runs a little over two hours.",
                    "{Poss} cousin had suggested it.", "{Subj} bought popcorn first."),
    },
    "product": {
        "openings": ("{name} bought {item} {when}.", "{name} ordered {item} online {when}.",
                     "{name} got {item} as a gift {when}."),
        "items": ("a pair of headphones", "the blender", "a laptop", "a hiking backpack",
                  "the electric kettle", "a phone case", "a desk lamp", "the robot vacuum",
                  "a rain jacket", "the coffee grinder"),
        "aspects": ("build quality", "price", "design", "packaging", "delivery", "manual",
                    "finish", "warranty", "customer support", "setup", "size", "colour",
                    "quality", "value"),
        "fillers": ("It arrived on a Tuesday.", "{Subj} compared it with three others first.",
                    "{Subj} has used it every day since.", "{Poss} old one broke in March.",
                    "{Subj} paid with a gift card.", "{Poss} sister has the same one."),
    },
}
WHEN = ("last week", "on Friday", "yesterday", "last month", "over the weekend",
        "on Monday evening", "recently", "a few days ago", "during the holidays")

POSITIVE_STRONG = ("excellent", "superb", "fantastic", "wonderful", "outstanding",
                   "brilliant", "amazing", "terrific", "exceptional", "marvelous")
POSITIVE_MILD = ("good", "nice", "pleasant", "solid", "enjoyable", "lovely", "impressive",
                 "charming", "great", "satisfying", "likeable", "neat")
NEGATIVE_STRONG = ("awful", "terrible", "dreadful", "horrible", "atrocious", "abysmal",
                   "disastrous", "appalling", "dismal", "horrendous")
NEGATIVE_MILD = ("bad", "poor", "bland", "disappointing", "mediocre", "weak", "dull",
                 "sloppy", "clumsy", "tedious", "boring", "underwhelming")
NEUTRAL_ADJ = ("okay", "average", "fine", "passable", "ordinary", "adequate",
               "unremarkable", "acceptable", "standard", "middling")
# adjectives whose negation reads naturally ("not good" -> negative, "not bad" -> positive)
NEGATABLE = {1: ("good", "great", "nice", "pleasant", "enjoyable", "impressive"),
             -1: ("bad", "disappointing", "bland", "dull", "boring", "weak")}

# "" entries: no intensifier most of the time
MILD_INTENSIFIERS = ("", "", "", "", "really", "very", "quite", "rather", "pretty", "so",
                     "genuinely", "remarkably", "somewhat", "incredibly", "extremely")
STRONG_INTENSIFIERS = ("", "", "", "absolutely", "truly", "simply", "just")
NEGATIONS = ("was not {adj}", "wasn't {adj}", "was not {adj} at all", "was never {adj}",
             "was hardly {adj}", "was not particularly {adj}")
COMPARATIVE = {1: "better", -1: "worse"}
FIND_NOTHING = {1: "wrong with", -1: "good about"}  # "could not find anything good about"

VERDICTS = {
    1: ("{Subj} would recommend it to anyone.", "{Subj} already told {poss} friends about it.",
        "It was worth every penny, {subj} said.", "{Subj} was glad {subj} chose it.",
        "{Subj} gave it five stars."),
    -1: ("{Subj} wants {poss} money back.", "{Subj} will warn {poss} friends about it.",
         "It was a waste of money, {subj} said.", "{Subj} regrets choosing it.",
         "{Subj} gave it one star."),
    0: ("{Subj} has no strong feelings either way.", "It was about what {subj} expected.",
        "{Subj} gave it three stars.", "{Subj} called it fair, nothing more.",
        "{Subj} shrugged when asked about it."),
}

# relative weights of the main-sentence constructions, tuned for TF-IDF accuracy ~0.85
POLAR_WEIGHTS = {"direct": 0.50, "negated": 0.20, "contrast": 0.20, "reinforced": 0.10}
NEUTRAL_WEIGHTS = {"middling": 0.30, "neither": 0.10, "not_great_not_bad": 0.20,
                   "mixed": 0.15, "balanced": 0.25}
TAIL_PROBS = {"none": 0.30, "filler": 0.35, "verdict": 0.35}


# --------------------------------------------------------------------------- helpers

class _Ctx:
    """Per-row context: random generator, reviewer pronouns, domain word lists."""

    def __init__(self, rng: np.random.Generator, gender: str, domain: str) -> None:
        self.rng = rng
        self.pron = PRONOUNS[gender]
        self.domain = DOMAINS[domain]
        self.aspects = self.domain["aspects"]

    def pick(self, seq: Sequence[str]) -> str:
        return seq[int(self.rng.integers(len(seq)))]

    def two_aspects(self) -> tuple[str, str]:
        i, j = self.rng.choice(len(self.aspects), size=2, replace=False)
        return self.aspects[int(i)], self.aspects[int(j)]

    def adj(self, polarity: int) -> str:
        """A positive (1) or negative (-1) adjective, with an optional intensifier."""
        if self.rng.random() < 0.4:
            words, intensifiers = (POSITIVE_STRONG if polarity > 0 else NEGATIVE_STRONG,
                                   STRONG_INTENSIFIERS)
        else:
            words, intensifiers = (POSITIVE_MILD if polarity > 0 else NEGATIVE_MILD,
                                   MILD_INTENSIFIERS)
        word, intens = self.pick(words), self.pick(intensifiers)
        return f"{intens} {word}" if intens else word

    def fill(self, template: str) -> str:
        """Substitute the reviewer's pronouns into ``template``."""
        p = self.pron
        return template.format(subj=p["subj"], Subj=p["subj"].capitalize(), obj=p["obj"],
                               poss=p["poss"], Poss=p["poss"].capitalize(),
                               poss_abs=p["poss_abs"])

    def clause(self, aspect: str, predicate: str) -> str:
        """``the <aspect> <predicate>``, sometimes framed as the reviewer's opinion."""
        frame = self.pick(("the {a} {p}", "the {a} {p}", "{subj} thought the {a} {p}",
                           "{subj} felt the {a} {p}", "in {poss} view the {a} {p}"))
        return self.fill(frame.replace("{a}", aspect).replace("{p}", predicate))


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:] + "."


# --------------------------------------------------------------------------- polar constructions

def _direct(ctx: _Ctx, polarity: int) -> str:
    """``The food was really excellent.``"""
    return _sentence(ctx.clause(ctx.pick(ctx.aspects), f"was {ctx.adj(polarity)}"))


def _negated(ctx: _Ctx, polarity: int) -> str:
    """Negation flips the adjective: ``was not good`` -> negative, ``wasn't bad`` -> positive."""
    aspect = ctx.pick(ctx.aspects)
    form = ctx.rng.random()
    if form < 0.7:
        adj = ctx.pick(NEGATABLE[-polarity])
        return _sentence(ctx.clause(aspect, ctx.pick(NEGATIONS).format(adj=adj)))
    word = COMPARATIVE[polarity]
    if form < 0.85:
        return _sentence(ctx.clause(aspect, f"could not have been {word}"))
    return _sentence(ctx.fill(f"{{subj}} could not find anything {FIND_NOTHING[polarity]} "
                              f"the {aspect}"))


def _contrast(ctx: _Ctx, polarity: int) -> str:
    """Two aspects with opposite polarity; the clause after ``but`` (or the main one) decides."""
    loser, winner = ctx.two_aspects()
    # the overruled clause is sometimes merely middling ("the service was fine, but ...")
    weak = ctx.pick(NEUTRAL_ADJ) if ctx.rng.random() < 0.4 else ctx.adj(-polarity)
    bad = f"the {loser} was {weak}"
    good = f"the {winner} was {ctx.adj(polarity)}"
    form = ctx.rng.random()
    if form < 0.5:
        return _sentence(f"{bad}, but {good}")
    if form < 0.75:
        return _sentence(f"{ctx.pick(('although', 'while'))} {bad}, {good}")
    return _sentence(f"{good}, even though {bad}")


def _reinforced(ctx: _Ctx, polarity: int) -> str:
    """Two aspects agreeing, the second possibly negated: ``good, and the X wasn't bad either``."""
    a1, a2 = ctx.two_aspects()
    if ctx.rng.random() < 0.5:
        second = f"was {ctx.adj(polarity)} too"
    else:
        second = ctx.pick(NEGATIONS).format(adj=ctx.pick(NEGATABLE[-polarity])) + " either"
    return _sentence(f"the {a1} was {ctx.adj(polarity)}, and the {a2} {second}")


# --------------------------------------------------------------------------- neutral constructions

def _middling(ctx: _Ctx) -> str:
    """``The service was okay.``"""
    hedge = ctx.pick(("", "", "just ", "pretty ", "rather ", "quite "))
    return _sentence(ctx.clause(ctx.pick(ctx.aspects), f"was {hedge}{ctx.pick(NEUTRAL_ADJ)}"))


def _neither(ctx: _Ctx) -> str:
    """``The plot was neither good nor bad.``"""
    pos, neg = ctx.pick(POSITIVE_MILD), ctx.pick(NEGATIVE_MILD)
    first, second = (pos, neg) if ctx.rng.random() < 0.5 else (neg, pos)
    return _sentence(ctx.clause(ctx.pick(ctx.aspects), f"was neither {first} nor {second}"))


def _not_great_not_bad(ctx: _Ctx) -> str:
    """``The soup wasn't great, but it wasn't terrible either.``"""
    pos, neg = ctx.pick(NEGATABLE[1]), ctx.pick(NEGATIVE_STRONG + NEGATABLE[-1])
    if ctx.rng.random() < 0.5:
        pos, neg = neg, pos
    form = ctx.pick(("wasn't {a}, but it wasn't {b} either", "was not {a}, but not {b} either",
                     "was not {a} and not {b}", "was hardly {a}, but hardly {b}"))
    return _sentence(ctx.clause(ctx.pick(ctx.aspects), form.format(a=pos, b=neg)))


def _mixed(ctx: _Ctx) -> str:
    """Opposite aspects with a balanced verdict: ``..., but ..., so it evened out.``"""
    a1, a2 = ctx.two_aspects()
    polarity = 1 if ctx.rng.random() < 0.5 else -1
    verdict = ctx.pick(("so it evened out", "so overall it was average",
                        "so on balance it was just okay", "which left {obj} undecided",
                        "so {subj} has mixed feelings", "so overall it was fine"))
    return _sentence(ctx.fill(
        f"the {a1} was {ctx.adj(polarity)}, but the {a2} was {ctx.adj(-polarity)}, {verdict}"
    ))


def _balanced(ctx: _Ctx) -> str:
    """Opposite aspects side by side, no ``but`` to tip the scale: ``great, and ... awful``."""
    a1, a2 = ctx.two_aspects()
    polarity = 1 if ctx.rng.random() < 0.5 else -1
    joiner = ctx.pick((", and", " and", ", while", " while"))
    return _sentence(f"the {a1} was {ctx.adj(polarity)}{joiner} the {a2} was {ctx.adj(-polarity)}")


POLAR: dict[str, Callable[[_Ctx, int], str]] = {
    "direct": _direct, "negated": _negated, "contrast": _contrast, "reinforced": _reinforced,
}
NEUTRAL: dict[str, Callable[[_Ctx], str]] = {
    "middling": _middling, "neither": _neither, "not_great_not_bad": _not_great_not_bad,
    "mixed": _mixed, "balanced": _balanced,
}


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

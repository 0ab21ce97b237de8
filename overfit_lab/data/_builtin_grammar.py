"""Sentence constructions of the built-in review dataset: the per-row context :class:`_Ctx`
and the polar (:data:`POLAR`) and neutral (:data:`NEUTRAL`) main sentences.

Part of :mod:`overfit_lab.data.builtin` (see its docstring for the constructions); every draw
from the row's generator happens in the same order as it always has, so the rows do not change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ._builtin_lexicon import (
    COMPARATIVE,
    DOMAINS,
    FIND_NOTHING,
    MILD_INTENSIFIERS,
    NEGATABLE,
    NEGATIONS,
    NEGATIVE_MILD,
    NEGATIVE_STRONG,
    NEUTRAL_ADJ,
    POSITIVE_MILD,
    POSITIVE_STRONG,
    PRONOUNS,
    STRONG_INTENSIFIERS,
)

__all__ = ["NEUTRAL", "POLAR"]


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

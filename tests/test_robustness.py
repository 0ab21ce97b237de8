"""Robustness metrics on hand-built probability arrays (values computed on paper)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from overfit_lab.diagnostics.perturb import (
    HEADLINE_SEVERITY,
    changed_mask,
    headline_severities,
    perturb_texts,
)
from overfit_lab.diagnostics.robustness import (
    paired_difference_interval,
    paired_drop_interval,
    robustness_report,
)

Y = np.array([0, 1, 1, 0])
CLEAN = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]])  # predicts 0 1 1 0: all right
PERTURBED = np.array([[0.6, 0.4], [0.7, 0.3], [0.4, 0.6], [0.2, 0.8]])  # predicts 0 0 1 1: 2 of 4


def test_report_on_hand_arrays() -> None:
    # Input 3 flips too but was not changed by the op, so it does not count towards the flip rate:
    # changed = {0, 1, 2}; flips among them: input 1 only -> 1/3 (over all four it would be 2/4).
    # Confidence in the clean prediction: 0.6-0.9, 0.3-0.8, 0.6-0.6 -> (-0.3 - 0.5 + 0) / 3.
    report = robustness_report(Y, CLEAN, PERTURBED, np.array([True, True, True, False]))
    assert report["accuracy_clean"] == 1.0
    assert report["accuracy_perturbed"] == 0.5
    assert report["robustness_drop"] == 0.5
    assert report["flip_rate"] == pytest.approx(1 / 3)
    assert report["mean_confidence_change"] == pytest.approx(-0.8 / 3)
    assert report["n_changed"] == 3
    assert report["n"] == 4


def test_report_three_classes_and_integer_mask() -> None:
    y = np.array([2, 0, 1])
    clean = np.array([[0.1, 0.2, 0.7], [0.5, 0.3, 0.2], [0.3, 0.4, 0.3]])  # 2 0 1: all right
    perturbed = np.array([[0.1, 0.5, 0.4], [0.6, 0.2, 0.2], [0.5, 0.25, 0.25]])  # 1 0 0: 1 of 3
    report = robustness_report(y, clean, perturbed, np.array([1, 1, 1]))
    assert report["accuracy_perturbed"] == pytest.approx(1 / 3)
    assert report["robustness_drop"] == pytest.approx(2 / 3)
    assert report["flip_rate"] == pytest.approx(2 / 3)
    # 0.4-0.7, 0.6-0.5, 0.25-0.4 -> (-0.3 + 0.1 - 0.15) / 3
    assert report["mean_confidence_change"] == pytest.approx(-0.35 / 3)


def test_nothing_changed_gives_nan_flip_rate() -> None:
    report = robustness_report(Y, CLEAN, CLEAN, np.zeros(4, dtype=bool))
    assert math.isnan(report["flip_rate"])
    assert math.isnan(report["mean_confidence_change"])
    assert report["n_changed"] == 0
    assert report["robustness_drop"] == 0.0


def test_robust_model_has_zero_flip_rate() -> None:
    report = robustness_report(Y, CLEAN, CLEAN, np.ones(4, dtype=bool))
    assert report["flip_rate"] == 0.0
    assert report["mean_confidence_change"] == 0.0
    assert report["robustness_drop"] == 0.0


@pytest.mark.parametrize(("args", "match"), [
    ((Y, CLEAN, PERTURBED[:3], np.ones(4, bool)), "proba_perturbed must have the shape"),
    ((Y, CLEAN, PERTURBED, np.ones(3, bool)), "changed"),
    ((Y, CLEAN, PERTURBED, np.full(4, 2)), "changed"),
    ((Y[:3], CLEAN, PERTURBED, np.ones(4, bool)), "y_true"),
    ((Y.astype(float), CLEAN, PERTURBED, np.ones(4, bool)), "y_true"),
    ((Y + 1, CLEAN, PERTURBED, np.ones(4, bool)), "y_true labels"),
    ((Y, CLEAN * 3, PERTURBED, np.ones(4, bool)), "proba_clean rows must sum to 1"),
    ((Y, CLEAN, -PERTURBED, np.ones(4, bool)), "proba_perturbed must hold finite"),
    ((Y, CLEAN[:, 0], PERTURBED, np.ones(4, bool)), "proba_clean must be"),
])
def test_report_validation(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        robustness_report(*args)


def test_checkpoint_adapter_scores_each_op_on_its_own_inputs(monkeypatch) -> None:
    """The adapter scores every op's changed inputs in one batch; each op must get back exactly the
    predictions of its own texts (a fake model: P(class 1) from the text's length)."""
    from types import SimpleNamespace

    from overfit_lab.diagnostics import checkpoint
    from overfit_lab.diagnostics.perturb import changed_mask, perturb_texts
    from overfit_lab.suite import RobustnessSpec

    texts = ["the food was good", "awful service and rude staff", "fine", "it was really quite dull", "ok"]
    labels = np.array([1, 0, 1, 0, 1])

    def fake_proba(batch: list[str]) -> np.ndarray:
        p = np.array([(len(t) % 7) / 7 for t in batch])
        return np.column_stack([1 - p, p])

    clean = fake_proba(texts)
    spec = RobustnessSpec(ops=["casing", "word_dropout", "char_delete"], severities=[0.3, 0.6], subsample=10)
    ctx = SimpleNamespace(
        suite=SimpleNamespace(diagnostics=SimpleNamespace(robustness=spec), data=SimpleNamespace(seed=0)),
        data=SimpleNamespace(test=pd.DataFrame({"text": texts, "label": labels})),
        test_subsample=lambda size: np.arange(len(texts)), proba=lambda split: clean,
        predict_texts=fake_proba, add_examples=lambda *a, **k: None)
    rows = pd.DataFrame(checkpoint._robustness(ctx))
    for op in spec.ops:
        for severity in spec.severities:
            perturbed = perturb_texts(texts, op, severity, seed=0)
            changed = changed_mask(texts, perturbed)
            scored = np.where(changed[:, None], fake_proba(perturbed), clean)
            expected = robustness_report(labels, clean, scored, changed)
            got = rows[(rows.op == op) & (rows.severity == severity)].set_index("metric")["value"]
            for metric in ("accuracy_perturbed", "robustness_drop", "flip_rate", "mean_confidence_change"):
                assert got[metric] == pytest.approx(expected[metric], nan_ok=True), (op, severity, metric)


# -- the paired interval of a drop ---------------------------------------------------------------------

# (a, b, c, d) -> Newcombe's 95% interval, transcribed: Fagerland, Lydersen & Laake (2017), ch. 8
# (Cavo et al. 2012; the test of the R package contingencytables gives "-0.0621 (95% CI -0.1186 to
# -0.0046)"), and the four examples of Newcombe (1998), Table II, method 10 (as the R package
# propint's tests transcribe them).
TRANSCRIBED = [((59, 6, 16, 80), (-0.1186, -0.0046)), ((36, 12, 2, 0), (0.0569, 0.3404)),
               ((18, 12, 2, 18), (0.0562, 0.3290)), ((53, 0, 0, 1), (-0.0729, 0.0729)),
               ((0, 30, 0, 0), (0.8395, 1.0))]


@pytest.mark.parametrize(("table", "expected"), TRANSCRIBED)
def test_paired_difference_interval_matches_published_values(table: tuple, expected: tuple) -> None:
    low, high = paired_difference_interval(*table)
    assert (round(float(low), 4), round(float(high), 4)) == expected


def test_paired_difference_interval_is_vectorised_and_validated() -> None:
    a, b, c, d = (np.array(x) for x in zip(*(t for t, _ in TRANSCRIBED), strict=True))
    low, high = paired_difference_interval(a, b, c, d)
    assert np.round(low, 4).tolist() == [e[0] for _, e in TRANSCRIBED]
    assert np.round(high, 4).tolist() == [e[1] for _, e in TRANSCRIBED]
    narrow = paired_difference_interval(59, 6, 16, 80, confidence=0.5)
    assert low[0] < narrow[0] < narrow[1] < high[0]
    with pytest.raises(ValueError, match="b must hold non-negative integer counts"):
        paired_difference_interval(1, -1, 0, 0)
    with pytest.raises(ValueError, match="c must hold non-negative integer counts"):
        paired_difference_interval(1, 1, 0.5, 0)
    with pytest.raises(ValueError, match="at least 1"):
        paired_difference_interval(0, 0, 0, 0)
    with pytest.raises(ValueError, match="confidence"):
        paired_difference_interval(1, 1, 1, 1, confidence=1.0)


def test_paired_drop_interval_tabulates_the_inputs() -> None:
    clean = np.array([True] * 65 + [False] * 96)
    perturbed = np.array([True] * 59 + [False] * 6 + [True] * 16 + [False] * 80)  # the table above
    assert paired_drop_interval(clean, perturbed) == pytest.approx((-0.1186, -0.0046), abs=5e-5)
    same = paired_drop_interval(clean, clean)  # no discordant pair: a non-empty interval around 0
    assert same[0] < 0 < same[1]
    with pytest.raises(ValueError, match="correct_clean must be a non-empty boolean"):
        paired_drop_interval(np.array([1, 0]), np.array([True, False]))
    with pytest.raises(ValueError, match="correct_perturbed must be a boolean vector of 2"):
        paired_drop_interval(np.array([True, False]), np.array([True]))


@pytest.mark.parametrize("n", [64, 100])  # the quickstart's and the default robustness subsample
def test_paired_drop_interval_coverage(n: int) -> None:
    """Seeded simulation: clean accuracy 0.85, the perturbation breaks a share p_b of the inputs and
    fixes p_c. Over 4,000 tables per setting (standard error of a coverage about 0.003) the 95%
    interval covers the true drop p_b - p_c at least 93% of the time, and at most 98.5% once
    discordant pairs are common (p_b >= 0.1; measured 0.95-0.96); it is conservative when they are
    rare (0.998 at p_b = 0.02). The wrapper on boolean vectors gives the same interval as the
    table for the first 50 tables."""
    rng = np.random.default_rng(n)
    for p_b, p_c in ((0.02, 0.01), (0.05, 0.0), (0.10, 0.02), (0.25, 0.03), (0.40, 0.10)):
        probabilities = [0.85 - p_b, p_b, p_c, 0.15 - p_c]
        tables = rng.multinomial(n, probabilities, size=4000)
        low, high = paired_difference_interval(*tables.T)
        coverage = np.mean((low <= p_b - p_c) & (p_b - p_c <= high))
        assert coverage >= 0.93, (p_b, p_c, coverage)
        if p_b >= 0.1:
            assert coverage <= 0.985, (p_b, p_c, coverage)
        for (a, b, c, d), lo, hi in zip(tables[:50], low[:50], high[:50], strict=True):
            clean = np.repeat([True, True, False, False], [a, b, c, d])
            perturbed = np.repeat([True, False, True, False], [a, b, c, d])
            assert paired_drop_interval(clean, perturbed) == pytest.approx((lo, hi), abs=1e-12)


def _fake_ctx(texts: list[str], spec, wrong: set[str]):
    """A checkpoint context for texts of label 1 whose model is right on every text but those in
    ``wrong``."""
    from types import SimpleNamespace

    def proba(batch: list[str]) -> np.ndarray:
        p1 = np.array([0.1 if t in wrong else 0.9 for t in batch])
        return np.column_stack([1 - p1, p1])

    return SimpleNamespace(
        suite=SimpleNamespace(diagnostics=SimpleNamespace(robustness=spec), data=SimpleNamespace(seed=0)),
        data=SimpleNamespace(test=pd.DataFrame({"text": texts, "label": np.ones(len(texts), dtype=int)})),
        test_subsample=lambda size: np.arange(len(texts)), proba=lambda split: proba(texts),
        predict_texts=proba, add_examples=lambda *a, **k: None)


def test_worst_drop_is_taken_at_the_headline_severities_only() -> None:
    """A fake model breaks on every text perturbed at severity 0.5 (drop 1) and on half of those
    with typos at 0.05, the typo headline. The worst drop must be that 0.5 at keyboard_typo 0.05,
    not the 1.0 the old maximum over every op and severity took; word_dropout (curves only) never
    enters it; casing at its headline 1.0 costs nothing here. Its interval is Newcombe's on the
    table (right clean, wrong perturbed) = (6, 6, 0, 0)."""
    from overfit_lab.diagnostics import checkpoint
    from overfit_lab.suite import RobustnessSpec

    things = ("food", "soup", "wine", "bread", "coffee", "dessert", "music", "menu", "bill", "view", "room",
              "tea")
    texts = [f"the {w} was really good and the staff were kind to us" for w in things]
    spec = RobustnessSpec(ops=["keyboard_typo", "casing", "word_dropout"], severities=[0.5], subsample=10)
    wrong = {t for op in spec.ops for t in perturb_texts(texts, op, 0.5, seed=0)}
    typos = perturb_texts(texts, "keyboard_typo", HEADLINE_SEVERITY["keyboard_typo"], seed=0)
    assert changed_mask(texts, typos).all() and not wrong & set(typos)
    wrong |= set(typos[:6])
    rows = pd.DataFrame(checkpoint._robustness(_fake_ctx(texts, spec, wrong)))
    drops = rows[rows.metric == "robustness_drop"].set_index(["op", "severity"])["value"]
    # the curves: every op at 0.5, and each headline op at its headline severity too
    assert sorted(drops.index) == [("casing", 0.5), ("casing", 1.0), ("keyboard_typo", 0.05),
                                   ("keyboard_typo", 0.5), ("word_dropout", 0.5)]
    assert drops.max() == 1.0 and drops[("keyboard_typo", 0.05)] == 0.5 and drops[("casing", 1.0)] == 0.0
    worst = rows[rows.metric.str.startswith("worst_robustness_drop")].set_index("metric")
    assert set(worst["op"]) == {"keyboard_typo"} and set(worst["severity"]) == {0.05}
    assert worst.loc["worst_robustness_drop", "value"] == 0.5
    low, high = paired_difference_interval(6, 6, 0, 0)
    assert worst.loc["worst_robustness_drop_low", "value"] == pytest.approx(float(low), abs=1e-12)
    assert worst.loc["worst_robustness_drop_high", "value"] == pytest.approx(float(high), abs=1e-12)
    assert low < 0.5 < high and worst.loc["worst_robustness_drop_n", "value"] == 12
    # a suite can put word_dropout in the headline and take typos out (0: curves only)
    spec = RobustnessSpec(ops=spec.ops, severities=[0.5], subsample=10,
                          headline={"word_dropout": 0.5, "keyboard_typo": 0})
    rows = pd.DataFrame(checkpoint._robustness(_fake_ctx(texts, spec, wrong)))
    worst = rows[rows.metric == "worst_robustness_drop"].iloc[0]
    assert (worst["op"], worst["severity"], worst["value"]) == ("word_dropout", 0.5, 1.0)


def test_the_adapter_scores_each_distinct_perturbed_text_once(tiny_model) -> None:
    """Variants shared by two severities or ops are run through the model once; every figure is
    as if each input were scored on its own (float rounding of other batch shapes aside)."""
    from test_bias import _bias_context

    from overfit_lab.diagnostics.checkpoint import _robustness

    ctx = _bias_context(tiny_model, False, ["gender"])
    spec = ctx.suite.diagnostics.robustness
    texts = ctx.data.test["text"].to_numpy()[ctx.test_subsample(spec.subsample)].tolist()
    headline, changed = headline_severities(spec.ops, spec.headline), []
    for op in spec.ops:
        for severity in {*spec.severities, *([headline[op]] if headline[op] is not None else [])}:
            perturbed = perturb_texts(texts, op, severity, seed=ctx.suite.data.seed)
            changed += [t for t, c in zip(perturbed, changed_mask(texts, perturbed), strict=True) if c]
    assert len(set(changed)) < len(changed)  # the suite's variants do repeat texts

    scored, one_by_one = [], ctx.predict_texts
    ctx.predict_texts = lambda batch: scored.extend(batch) or one_by_one(batch)
    rows = pd.DataFrame(_robustness(ctx))
    assert len(scored) == len(set(scored)) == len(set(changed))

    ctx.predict_texts = lambda batch: np.vstack([one_by_one([t]) for t in batch])
    ctx.examples.clear()
    alone = pd.DataFrame(_robustness(ctx))
    pd.testing.assert_frame_equal(rows, alone, check_exact=False, atol=1e-6)

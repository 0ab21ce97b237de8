"""Membership inference and noisy-label memorization against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from overfit_lab.diagnostics.memorization import (
    membership_advantage,
    membership_advantage_in_sample,
    membership_advantage_interval,
    membership_advantage_yeom,
    membership_auc,
    membership_roc,
    noise_memorization_rate,
)


def test_perfect_separation():
    members, nonmembers = np.array([0.1, 0.2, 0.05]), np.array([1.0, 2.0])
    assert membership_advantage_in_sample(members, nonmembers) == 1.0
    assert membership_auc(members, nonmembers) == 1.0


def test_members_with_higher_loss_give_no_advantage_and_auc_zero():
    """The attack only flags low losses: advantage stays at its floor 0, AUC drops to 0."""
    members, nonmembers = np.array([1.0, 2.0]), np.array([0.1, 0.2])
    assert membership_advantage_in_sample(members, nonmembers) == 0.0
    assert membership_auc(members, nonmembers) == 0.0


def test_identical_losses_leak_nothing():
    losses = np.array([0.3, 0.1, 0.7, 0.7, 1.2])
    assert membership_advantage_in_sample(losses, losses.copy()) == 0.0
    assert membership_auc(losses, losses.copy()) == 0.5


def test_three_versus_three_by_hand():
    """Members 0.1, 0.3, 0.5; non-members 0.2, 0.6, 0.7; flag loss <= τ.

    τ = 0.1: TPR 1/3, FPR 0 -> 1/3;  τ = 0.2: 1/3 - 1/3 = 0;  τ = 0.3: 2/3 - 1/3 = 1/3;
    τ = 0.5: 1 - 1/3 = 2/3 (best);  τ = 0.6: 1 - 2/3 = 1/3;  τ = 0.7: 0.  Advantage 2/3.
    AUC: member losses below non-member losses in 3 + 2 + 2 = 7 of 9 pairs -> 7/9.
    """
    members, nonmembers = np.array([0.1, 0.3, 0.5]), np.array([0.2, 0.6, 0.7])
    assert membership_advantage_in_sample(members, nonmembers) == pytest.approx(2 / 3)
    assert membership_auc(members, nonmembers) == pytest.approx(7 / 9)


def test_ties_count_half_in_auc():
    """Members 0.2, 0.2; non-members 0.2, 0.5: 2 ties (½ each) + 2 wins of 4 pairs -> 0.75.

    τ = 0.2 flags both members and one non-member: advantage 1 - 1/2 = 0.5.
    """
    members, nonmembers = np.array([0.2, 0.2]), np.array([0.2, 0.5])
    assert membership_auc(members, nonmembers) == pytest.approx(0.75)
    assert membership_advantage_in_sample(members, nonmembers) == pytest.approx(0.5)


def test_roc_table_and_brute_force_advantage():
    rng = np.random.default_rng(0)
    members, nonmembers = rng.exponential(0.5, 40), rng.exponential(1.0, 60)
    roc = membership_roc(members, nonmembers)
    assert list(roc.columns) == ["fpr", "tpr", "threshold"]
    assert roc["threshold"].iloc[0] == -np.inf
    assert (roc[["fpr", "tpr"]].iloc[0] == 0).all() and (roc[["fpr", "tpr"]].iloc[-1] == 1).all()
    assert roc["threshold"].is_monotonic_increasing and roc["tpr"].is_monotonic_increasing
    for fpr, tpr, tau in roc.iloc[1:].itertuples(index=False, name=None):
        assert tpr == pytest.approx((members <= tau).mean())
        assert fpr == pytest.approx((nonmembers <= tau).mean())
    thresholds = np.concatenate([members, nonmembers])
    brute = max((members <= t).mean() - (nonmembers <= t).mean() for t in thresholds)
    assert membership_advantage_in_sample(members, nonmembers) == pytest.approx(max(brute, 0.0))


def test_noise_memorization_by_hand():
    """Flipped labels at rows 0 (1 vs clean 0), 2 (2 vs 0) and 4 (0 vs 1); only row 0 predicts it."""
    y_pred = np.array([1, 0, 0, 1, 1])
    noisy = np.array([1, 1, 2, 0, 0])
    clean = np.array([0, 1, 0, 0, 1])
    assert noise_memorization_rate(y_pred, noisy, clean) == pytest.approx(1 / 3)
    assert noise_memorization_rate(noisy, noisy, clean) == 1.0
    assert noise_memorization_rate(clean, noisy, clean) == 0.0
    assert math.isnan(noise_memorization_rate(y_pred, clean, clean))


@pytest.mark.parametrize(
    ("members", "nonmembers", "argument"),
    [
        (np.array([]), np.array([0.1]), "member_losses"),
        (np.array([0.1, np.nan]), np.array([0.1]), "member_losses"),
        (np.array([0.1]), np.array([[0.1, 0.2]]), "nonmember_losses"),
        (np.array([0.1]), np.array([np.inf]), "nonmember_losses"),
    ],
)
@pytest.mark.parametrize("metric", [membership_advantage_in_sample, membership_advantage_yeom, membership_auc,
                                    membership_roc])
def test_invalid_losses(metric, members, nonmembers, argument):
    with pytest.raises(ValueError, match=argument):
        metric(members, nonmembers)


def test_invalid_noise_inputs():
    with pytest.raises(ValueError, match="clean_labels"):
        noise_memorization_rate(np.array([0, 1]), np.array([0, 1]), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="y_pred"):
        noise_memorization_rate(np.array([[0, 1]]), np.array([0, 1]), np.array([0, 1]))


# ---------------------------------------------------------------- cross-fitted advantage (issue 11.2)
def _simulate(metric, n: int, repetitions: int, *, member_scale: float = 1.0, seed: int = 0) -> np.ndarray:
    """``metric`` on ``repetitions`` seeded draws of n exponential member and n non-member losses
    (non-member scale 1; members scaled by ``member_scale``, < 1 = a real leak)."""
    rng = np.random.default_rng(seed)
    members = rng.exponential(member_scale, (repetitions, n))
    nonmembers = rng.exponential(1.0, (repetitions, n))
    return np.array([metric(m, o, seed=i) for i, (m, o) in enumerate(zip(members, nonmembers, strict=True))])


def _population_advantage(member_scale: float) -> float:
    """max_t F_member(t) - F_nonmember(t) for exponential losses, on a fine grid (scipy)."""
    from scipy.stats import expon

    t = np.linspace(0.0, 20.0, 200_001)
    return float((expon.cdf(t, scale=member_scale) - expon.cdf(t)).max())


@pytest.mark.parametrize(("n", "repetitions"), [(100, 2000), (500, 400)])
def test_cross_fitted_advantage_is_zero_without_a_leak(n, repetitions):
    """Same-distribution losses, n members and n non-members: the mean cross-fitted advantage is
    within ±0.01 of 0 (its standard error here is about 0.0013). The old figure, the in-sample
    best threshold (``membership_advantage`` before issue 11), averaged about 0.085 at 100 and 0.04
    at 500: it fails this test, and is shown biased above 0.03 here."""
    advantage = _simulate(membership_advantage, n, repetitions)
    assert abs(advantage.mean()) < 0.01
    assert (advantage < 0).any()  # not clipped: a single run below 0 is noise
    in_sample = _simulate(lambda m, o, seed: membership_advantage_in_sample(m, o), n, 200)
    assert in_sample.mean() > 0.03


def test_in_sample_advantage_is_biased_at_100_members():
    """The optimism of fitting the threshold on the scored losses: about 0.085 at 100 vs 100."""
    in_sample = _simulate(lambda m, o, seed: membership_advantage_in_sample(m, o), 100, 300)
    assert 0.07 < in_sample.mean() < 0.10


@pytest.mark.parametrize(("n", "member_scale", "excluded"), [(100, 0.5, 0.85), (500, 0.7, 0.9)])
def test_cross_fitted_advantage_detects_a_loss_shift(n, member_scale, excluded):
    """Members' losses scaled down (0.5 or 0.7 of the non-members'): population advantage 0.25 or
    0.13. The mean estimate is clearly above 0, near (a little below) the population value, and
    the 95% interval excludes 0 in most runs."""
    truth = _population_advantage(member_scale)
    advantage = _simulate(membership_advantage, n, 200, member_scale=member_scale, seed=1)
    assert advantage.mean() > 0.08
    assert truth - 0.03 < advantage.mean() <= truth + 0.005
    low = _simulate(lambda m, o, seed: membership_advantage_interval(m, o, seed=seed)[0], n, 200,
                    member_scale=member_scale, seed=1)
    assert (low > 0).mean() >= excluded


@pytest.mark.parametrize(("n", "member_scale"), [(100, 1.0), (500, 1.0), (100, 0.5), (500, 0.5)])
def test_interval_coverage(n, member_scale):
    """95% intervals over 300 seeded runs cover the true advantage (0 without a leak, the population
    optimum with one) in 90-99.5% of runs: the binomial standard error of a coverage near 0.95 over
    300 runs is 0.013, and the interval is conservative without a leak (the split averaging is
    ignored) and a little low with one (the estimate sits below the optimum). The mean half-width
    matches 1.96 x the spread of the estimates over runs (within 20%), and stays below the
    binomial bound 1.96 sqrt(0.5 / n): ±0.14 at 100 members (±0.11 to ±0.13 in these runs), ±0.06
    at 500."""
    truth = 0.0 if member_scale == 1.0 else _population_advantage(member_scale)
    intervals = _simulate(lambda m, o, seed: np.array(membership_advantage_interval(m, o, seed=seed)), n, 300,
                          member_scale=member_scale, seed=2)
    covered = ((intervals[:, 0] <= truth) & (truth <= intervals[:, 1])).mean()
    assert 0.90 <= covered <= 0.995
    half_width = (intervals[:, 1] - intervals[:, 0]).mean() / 2
    spread = 1.96 * _simulate(membership_advantage, n, 300, member_scale=member_scale, seed=2).std()
    assert half_width == pytest.approx(spread, rel=0.2)
    assert half_width <= 1.96 * math.sqrt(0.5 / n)


def test_interval_contains_its_estimate_and_stays_in_range():
    members, nonmembers = np.linspace(0.0, 1.0, 20), np.linspace(2.0, 3.0, 20)
    assert membership_advantage(members, nonmembers) == 1.0
    assert membership_advantage_interval(members, nonmembers) == (1.0, 1.0)  # no binomial variance left
    rng = np.random.default_rng(3)
    members, nonmembers = rng.exponential(0.8, 60), rng.exponential(1.0, 60)
    low, high = membership_advantage_interval(members, nonmembers, seed=5)
    assert -1 <= low <= membership_advantage(members, nonmembers, seed=5) <= high <= 1
    narrow = membership_advantage_interval(members, nonmembers, seed=5, confidence=0.5)
    assert low < narrow[0] < narrow[1] < high


def test_fitted_threshold_is_the_in_sample_optimum():
    """The threshold each fold picks attains the in-sample maximum of TPR - FPR (sklearn's ROC),
    ties included, or flags nobody when no threshold beats 0."""
    from overfit_lab.diagnostics.memorization import _best_thresholds

    rng = np.random.default_rng(4)
    members = np.round(rng.exponential(0.8, (50, 15)), 1)  # rounded: many ties
    nonmembers = np.round(rng.exponential(1.0, (50, 12)), 1)
    tau = _best_thresholds(members, nonmembers)
    for m, o, t in zip(members, nonmembers, tau, strict=True):
        best = membership_advantage_in_sample(m, o)
        assert (m <= t).mean() - (o <= t).mean() == pytest.approx(best, abs=1e-12)
        if best == 0:
            assert t == -np.inf
        else:
            assert not np.isin(t, np.concatenate([m, o]))  # halfway between two losses


def test_yeom_threshold_against_sklearn_confusion_matrix():
    """TPR - FPR at τ = mean member loss, from sklearn's confusion matrix of "loss <= τ"."""
    from sklearn.metrics import confusion_matrix

    rng = np.random.default_rng(6)
    for member_scale in (0.5, 1.0, 2.0):
        members, nonmembers = rng.exponential(member_scale, 80), rng.exponential(1.0, 120)
        tau = members.mean()
        nonmembers[:3] = tau  # losses exactly at the threshold are flagged
        is_member = np.r_[np.ones(80, dtype=int), np.zeros(120, dtype=int)]
        flagged = (np.r_[members, nonmembers] <= tau).astype(int)
        tn, fp, fn, tp = confusion_matrix(is_member, flagged, labels=[0, 1]).ravel()
        expected = tp / (tp + fn) - fp / (fp + tn)
        assert membership_advantage_yeom(members, nonmembers) == pytest.approx(expected, abs=1e-12)
    assert membership_advantage_yeom(members, nonmembers, threshold=0.0) == 0.0  # flags nobody
    assert membership_advantage_yeom(members, nonmembers, threshold=1e9) == 0.0  # flags everybody
    # by hand: τ = 0.25 (exact in binary); flags members 0, 0.25 and non-member 0.25 -> 2/3 - 1/3
    by_hand = membership_advantage_yeom(np.array([0.0, 0.25, 0.5]), np.array([0.25, 0.75, 1.0]))
    assert by_hand == pytest.approx(1 / 3)


def test_yeom_is_zero_on_average_without_a_leak():
    """Only the mean is fitted, so the bias is O(1/m²): mean over 1000 runs of 100 vs 100 within ±0.01."""
    advantage = _simulate(lambda m, o, seed: membership_advantage_yeom(m, o), 100, 1000, seed=7)
    assert abs(advantage.mean()) < 0.01


@pytest.mark.parametrize(
    ("metric", "kwargs", "argument"),
    [
        (membership_advantage, {"member_losses": np.array([0.1])}, "member_losses"),
        (membership_advantage, {"nonmember_losses": np.array([0.1, np.nan])}, "nonmember_losses"),
        (membership_advantage, {"n_splits": 0}, "n_splits"),
        (membership_advantage, {"n_splits": 2.0}, "n_splits"),
        (membership_advantage_interval, {"confidence": 1.0}, "confidence"),
        (membership_advantage_interval, {"nonmember_losses": np.array([[0.1, 0.2]])}, "nonmember_losses"),
        (membership_advantage_yeom, {"threshold": np.nan}, "threshold"),
    ],
)
def test_invalid_cross_fitted_arguments(metric, kwargs, argument):
    arguments = {"member_losses": np.array([0.1, 0.2, 0.3]), "nonmember_losses": np.array([0.4, 0.5]),
                 **kwargs}
    with pytest.raises(ValueError, match=argument):
        metric(**arguments)


# ---------------------------------------------------------------- the checkpoint adapter
def _context(n_train: int, n_test: int, *, seed: int = 3):
    """A CheckpointContext without a model: two-class logits whose per-row loss is known."""
    from types import SimpleNamespace

    from overfit_lab.diagnostics.checkpoint import CheckpointContext
    from overfit_lab.predict import Encoded

    def split(losses: np.ndarray) -> tuple[Encoded, np.ndarray]:
        # label 0 with logits (0, log(exp(loss) - 1)): -log softmax[0] = loss exactly
        logits = np.c_[np.zeros(len(losses)), np.log(np.expm1(losses))]
        return Encoded(input_ids=[[1]] * len(losses), labels=np.zeros(len(losses), dtype=np.int64),
                       pad_token_id=0), logits

    rng = np.random.default_rng(0)
    losses = {"train": np.full(n_train, 0.2) if n_train > n_test else rng.uniform(0.05, 0.5, n_train),
              "validation": np.full(30, 5.0),  # would dominate every figure if it were used
              "test": rng.uniform(0.1, 2.0, n_test)}
    encoded, logits = {}, {}
    for name, values in losses.items():
        encoded[name], logits[name] = split(values)
    suite = SimpleNamespace(data=SimpleNamespace(seed=seed), grid=SimpleNamespace(train_sizes=[n_train]),
                            diagnostics=SimpleNamespace(memorization=SimpleNamespace(nonmembers="test")),
                            task=SimpleNamespace(type="sequence-classification"))
    data = SimpleNamespace(test=pd.DataFrame({"label": np.zeros(n_test, dtype=int)}))
    labels = np.zeros(n_train, dtype=int)
    train_rows = pd.DataFrame({"label": labels, "clean_label": labels})
    ctx = CheckpointContext(checkpoint="final", model=None, tokenizer=None, suite=suite, data=data,
                            train_rows=train_rows, encoded=encoded, logits=logits, pretrained_path=None)
    return ctx, losses


@pytest.mark.parametrize(("n_train", "n_test"), [(12, 30), (30, 12), (20, 20)])
def test_adapter_compares_equal_numbers_of_members_and_test_rows(n_train, n_test):
    """m = min(members, test rows); the non-members are m test rows (ctx.test_subsample(m), the same
    rows for every cell), never validation rows; AUC checked with sklearn on those rows."""
    from sklearn.metrics import roc_auc_score

    from overfit_lab.diagnostics.checkpoint import _memorization

    ctx, losses = _context(n_train, n_test)
    rows = {r["metric"]: r["value"] for r in _memorization(ctx) if r["metric"] != "membership_roc_tpr"}
    m = min(n_train, n_test)
    assert rows["membership_n"] == m and rows["membership_nonmembers_unused"] == 0.0
    # with more members than test rows every member loss is 0.2, so any m of them are the same
    members = losses["train"] if n_train <= n_test else np.full(m, 0.2)
    others = losses["test"][ctx.test_subsample(m)]
    assert len(others) == m
    expected_auc = roc_auc_score(np.r_[np.ones(m), np.zeros(m)], -np.r_[members, others])
    assert rows["membership_auc"] == pytest.approx(expected_auc, abs=1e-9)
    seed = ctx.suite.data.seed
    assert rows["membership_advantage"] == pytest.approx(membership_advantage(members, others, seed=seed))
    assert (rows["membership_advantage_low"], rows["membership_advantage_high"]) == pytest.approx(
        membership_advantage_interval(members, others, seed=seed))
    assert rows["membership_advantage_yeom"] == pytest.approx(membership_advantage_yeom(members, others))
    assert rows["membership_advantage_low"] <= rows["membership_advantage"]
    assert rows["membership_advantage"] <= rows["membership_advantage_high"]


# ---------------------------------------------------------------- where the non-members come from
def _pool_context(n_pool: int, sizes: list[int], *, n_test: int = 300, test_shift: float = 0.0,
                  noise: float = 0.0, nonmembers: str = "auto", seed: int = 0):
    """A context on a real TaskData whose "model" gives every row of the training split a loss
    drawn from one distribution and every test row one shifted by ``test_shift``: the SST-2 case,
    where the test split (full sentences) is not distributed like the training split (phrases).

    The loss of a row is 0.01 + its text's number (mean 0.05) when its label is the text's class,
    and -log(1 - exp(-0.01 - number)) (about 2.5) when the label was flipped: no memorization."""
    from overfit_lab.data import TaskData
    from overfit_lab.diagnostics.checkpoint import CheckpointContext
    from overfit_lab.predict import Encoded
    from overfit_lab.suite import validate_suite

    rng = np.random.default_rng(seed)
    true = {"train": rng.integers(0, 2, n_pool), "test": rng.integers(0, 2, n_test)}
    level = {"train": rng.exponential(0.05, n_pool), "test": test_shift + rng.exponential(0.05, n_test)}
    frames = {split: pd.DataFrame({"text": [f"{float(v)!r}|{t}" for v, t in
                                            zip(level[split], true[split], strict=True)],
                                   "label": true[split]}) for split in ("train", "test")}
    data = TaskData(train=frames["train"], validation=frames["test"].iloc[:10], test=frames["test"],
                    label_names=["neg", "pos"])
    suite = validate_suite({"name": "pool", "model": {"name": "unused"}, "data": {"builtin": "reviews"},
                            "grid": {"train_sizes": sizes, "epochs": [1], "strategies": ["baseline"]},
                            "diagnostics": {"memorization": {"nonmembers": nonmembers}}})
    rows = data.training_subset(max(sizes), sizes=sizes, seed=suite.data.seed, label_noise=noise,
                                noise_seed=suite.data.seed)

    def logits_for(texts):
        # a two-class "model" sure of the text's class: -log softmax at that class is
        # 0.01 + the text's number when the other logit is log(exp(0.01 + number) - 1)
        value, cls = np.array([[float(v), int(c)] for v, c in (t.split("|") for t in texts)]).T
        out = np.zeros((len(texts), 2))
        out[np.arange(len(texts)), 1 - cls.astype(int)] = np.log(np.expm1(0.01 + value))
        return out

    labels = rows["label"].to_numpy()
    encoded = {"train": Encoded(input_ids=[[1]] * len(rows), labels=labels, pad_token_id=0),
               "test": Encoded(input_ids=[[1]] * n_test, labels=true["test"], pad_token_id=0)}
    logits = {"train": logits_for(rows["text"].tolist()), "test": logits_for(frames["test"]["text"].tolist())}
    ctx = CheckpointContext(checkpoint="final", model=None, tokenizer=None, suite=suite, data=data,
                            train_rows=rows, encoded=encoded, logits=logits, pretrained_path=None)
    ctx.logits_of = logits_for  # the pool's rows go through the same "model"
    return ctx


def _advantage(ctx) -> tuple[float, float, float]:
    from overfit_lab.diagnostics.checkpoint import _memorization

    rows = {r["metric"]: r["value"] for r in _memorization(ctx) if r["metric"] != "membership_roc_tpr"}
    return rows["membership_advantage"], rows["membership_n"], rows["membership_nonmembers_unused"]


def test_unused_pool_rows_are_nonmembers_from_the_members_distribution():
    """A shifted test split alone makes the attack "succeed" with test rows as non-members (the
    SST-2 case); the pool's unused rows, same distribution and never trained on, give about 0.
    Seeded simulation over 20 data sets; tolerance: the mean within ±0.03 (sd of one advantage
    at m = 200 about 0.07, so the mean's sd is about 0.016)."""
    pooled, tested = [], []
    for seed in range(20):
        pool = _pool_context(1000, [100, 200], test_shift=0.03, seed=seed)
        advantage, m, unused = _advantage(pool)
        assert (m, unused) == (200, 1.0)
        pooled.append(advantage)
        test = _pool_context(1000, [100, 200], test_shift=0.03, nonmembers="test", seed=seed)
        advantage, m, unused = _advantage(test)
        assert (m, unused) == (200, 0.0)
        tested.append(advantage)
    assert abs(np.mean(pooled)) < 0.03
    assert np.mean(tested) > 0.15  # the shift, not memorization


def test_pool_nonmembers_are_never_in_any_subset_and_the_same_for_every_cell():
    from overfit_lab.diagnostics.checkpoint import nonmember_source

    ctx = _pool_context(600, [100, 200, 300])
    used = set(ctx.data.subsets([100, 200, 300], seed=ctx.suite.data.seed)[300])
    unused = ctx.data.unused_positions([100, 200, 300], seed=ctx.suite.data.seed)
    assert len(unused) == 300 and used.isdisjoint(unused) and len(used | set(unused)) == 600
    again = _pool_context(600, [100, 200, 300]).data.unused_positions([100, 200, 300],
                                                                      seed=ctx.suite.data.seed)
    np.testing.assert_array_equal(unused, again)
    assert nonmember_source(ctx.suite, ctx.data) == "pool"


@pytest.mark.parametrize(("n_pool", "sizes", "n_test", "expected"), [
    (1000, [100, 250], 300, "pool"),   # 750 unused >= min(250, 300)
    (600, [100, 500], 1000, "test"),   # 100 unused < min(500, 1000)
    (600, [100, 500], 80, "pool"),     # 100 unused >= min(500, 80): more than the test split gives
    (500, [100, 500], 300, "test"),    # nothing unused (an audit: the whole training split)
])
def test_auto_takes_the_pool_when_it_gives_at_least_as_many_nonmembers_as_the_test_split(
        n_pool, sizes, n_test, expected):
    from overfit_lab.diagnostics.checkpoint import nonmember_source

    ctx = _pool_context(n_pool, sizes, n_test=n_test)
    assert nonmember_source(ctx.suite, ctx.data) == expected


def test_nonmember_labels_get_the_cells_label_noise():
    """With 20% of the members' labels flipped and a model that memorized nothing, clean
    non-member labels make the members look worse fitted: AUC about 0.8 x 0.5 = 0.4, not 0.5.
    Flipping the non-members' labels at the same rate brings it back to 0.5 (mean of 20 seeded
    data sets within ±0.02; sd of one AUC at m = 200 about 0.03)."""
    from overfit_lab.diagnostics.checkpoint import _memorization

    def auc(ctx) -> float:
        return next(r["value"] for r in _memorization(ctx) if r["metric"] == "membership_auc")

    matched, clean = [], []
    for seed in range(20):
        ctx = _pool_context(1000, [200], noise=0.2, seed=seed)
        matched.append(auc(ctx))
        rows = ctx.train_rows
        ctx.train_rows = rows.assign(clean_label=rows["label"])  # hides the noise from the adapter
        clean.append(auc(ctx))
    assert abs(np.mean(matched) - 0.5) < 0.02
    assert abs(np.mean(clean) - 0.4) < 0.02


def test_pool_nonmembers_need_an_unused_row(tmp_path):
    from overfit_lab.data import load_task_data
    from overfit_lab.errors import OverfitLabError
    from overfit_lab.suite import validate_suite

    suite = validate_suite({"name": "x", "model": {"name": "unused"},
                            "data": {"builtin": "reviews", "builtin_options": {"n_train": 200}},
                            "grid": {"train_sizes": [100, 200], "epochs": [1], "strategies": ["baseline"]},
                            "diagnostics": {"memorization": {"nonmembers": "pool"}}})
    with pytest.raises(OverfitLabError, match="nonmembers"):
        load_task_data(suite)

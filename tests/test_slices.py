"""Weak-slice discovery against independent references, simulations and the built-in review data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import fisher_exact, hypergeom, mannwhitneyu
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from overfit_lab.data.builtin import LABEL_NAMES, generate_reviews
from overfit_lab.diagnostics.bias import GENDER_PAIRS
from overfit_lab.diagnostics.slices import (
    REPORT_COLUMNS,
    find_weak_slices,
    group_slices,
    text_properties,
    worst_slice_gap,
)

# --- text_properties ----------------------------------------------------------------------------


def test_text_properties_each_property_by_hand():
    texts = [
        "It wasn't good, but the staff cannot help it",     # 0 negation (n't, cannot), contrast
        "Nobody came. Nor did the food!",                   # 1 negation (nobody, nor), exclamation
        "Is it open on 5th street?",                        # 2 question, digits
        "I loved it, SO good, see www.example.org",         # 3 all-caps (SO, not I), URL
        "Ask @chef or follow #tacos, though late",          # 4 mention, contrast (though)
        "Knot notable, even though nothing else",           # 5 knot/notable are not "not"; though; nothing
        "email me at cook@example.com",                     # 6 an e-mail is not a mention
        "She told her husband; I am OK",                    # 7 female and male terms, all-caps OK
        "However, the man's meal was fine",                 # 8 contrast (however), male (man)
    ]
    props = text_properties(texts, frequent_tokens=0, length_bins=1)
    expected = {
        "negation": [0, 1, 5],
        "contrast": [0, 4, 5, 8],
        "question": [2],
        "exclamation": [1],
        "all-caps word": [3, 7],
        "digits": [2],
        "URL or @mention": [3, 4],
        "identity: female terms": [7],
        "identity: male terms": [7, 8],
    }
    for column, rows in expected.items():
        assert np.flatnonzero(props[column]).tolist() == rows, column
    assert props.index.equals(pd.RangeIndex(len(texts)))
    assert props.dtypes.eq(bool).all()


def test_negation_covers_every_nt_contraction_and_typographic_apostrophe():
    texts = ["it didn’t work", "COULDN'T care less", "won't", "never again", "none left", "nowhere",
             "neither", "no", "wonton soup", "cant find it"]
    assert text_properties(texts, frequent_tokens=0)["negation"].tolist() == [True] * 8 + [False, False]


def test_length_bins_follow_the_word_count_quantiles():
    counts = np.array([1, 2, 2, 3, 4, 5, 6, 8, 9, 15])
    texts = [" ".join(["w"] * c) for c in counts]
    props = text_properties(texts, frequent_tokens=0, length_bins=4, identity_terms={})
    bins = props.filter(like="length:")
    # right-closed bins between the quartiles (2.25, 4.5, 7.75), floored for whole word counts
    q1, q2, q3 = np.floor(np.quantile(counts, [0.25, 0.5, 0.75])).astype(int)
    assert (q1, q2, q3) == (2, 4, 7)
    assert bins.columns.tolist() == ["length: 1-2 words", "length: 3-4 words", "length: 5-7 words",
                                     "length: 8-15 words"]
    assert (bins.sum(axis=1) == 1).all()  # a partition
    assert bins["length: 5-7 words"].tolist() == [(5 <= c <= 7) for c in counts]


def test_length_bins_skip_duplicate_edges():
    texts = ["a b"] * 9 + ["a b c d e"]
    bins = text_properties(texts, frequent_tokens=0, length_bins=4).filter(like="length:")
    assert bins.columns.tolist() == ["length: 2 words", "length: 3-5 words"]
    assert bins.sum().tolist() == [9, 1]


def test_frequent_tokens_by_document_frequency_then_alphabetically():
    texts = ["great pasta great pasta", "pasta was cold", "the soup, the bread", "bread and soup",
             "not however", "wasn't ok", "zebra"]
    props = text_properties(texts, frequent_tokens=3, identity_terms={})
    # document frequencies: pasta 2, bread 2, soup 2, great 1, cold 1, zebra 1 ("the", "was", "and"
    # are stop words; "not"/"however" are covered; "wasn't" is not alphabetic; "ok" is too short)
    assert props.filter(like="word:").columns.tolist() == ["word: bread", "word: pasta", "word: soup"]
    assert props["word: pasta"].tolist() == [True, True, False, False, False, False, False]
    assert text_properties(texts, frequent_tokens=4, identity_terms={})["word: cold"].sum() == 1


def test_default_identity_terms_are_the_gender_pairs():
    female = sorted({f for f, _ in GENDER_PAIRS})
    male = sorted({m for _, m in GENDER_PAIRS})
    props = text_properties(female + male, frequent_tokens=0)
    n = len(female)
    assert props["identity: female terms"].tolist() == [True] * n + [False] * len(male)
    assert props["identity: male terms"].tolist() == [False] * n + [True] * len(male)


def test_custom_identity_terms_whole_words_case_insensitive_and_phrases():
    texts = ["A Muslim family", "muslims", "an African American actor", "africa", "MUSLIM"]
    props = text_properties(texts, frequent_tokens=0, identity_terms={
        "religion": ["muslim"], "race": ["african american", "black"]})
    assert props["identity: religion"].tolist() == [True, False, False, False, True]
    assert props["identity: race"].tolist() == [False, False, True, False, False]


def test_text_properties_min_count_drops_rare_columns_and_is_deterministic():
    texts = ["good food?", "bad food", "good view", "fine view!"]
    props = text_properties(texts, min_count=2, length_bins=1)
    assert props.columns.tolist() == ["length: 2 words", "word: food", "word: good", "word: view"]
    pd.testing.assert_frame_equal(props, text_properties(list(texts), min_count=2, length_bins=1))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"texts": "one text"}, "texts"),
    ({"texts": []}, "texts"),
    ({"texts": ["a", 1]}, "texts"),
    ({"texts": ["a"], "frequent_tokens": -1}, "frequent_tokens"),
    ({"texts": ["a"], "length_bins": 0}, "length_bins"),
    ({"texts": ["a"], "min_count": 0}, "min_count"),
    ({"texts": ["a"], "identity_terms": {"g": "she"}}, "identity_terms"),
    ({"texts": ["a"], "identity_terms": ["she"]}, "identity_terms"),
])
def test_text_properties_validation(kwargs, match):
    texts = kwargs.pop("texts")
    with pytest.raises(ValueError, match=match):
        text_properties(texts, **kwargs)


# --- group_slices -------------------------------------------------------------------------------


def test_group_slices_values_separator_pairs_and_missing():
    meta = pd.DataFrame({"gender": ["f", "m", None, "f"],
                         "religion": ["muslim; jewish", "", "muslim", "none"]}, index=[10, 11, 12, 13])
    slices = group_slices(meta, ["gender", "religion"], separator=";")
    assert slices.index.equals(pd.RangeIndex(4))
    expected = {
        "gender=f": [1, 0, 0, 1], "gender=m": [0, 1, 0, 0],
        "religion=jewish": [1, 0, 0, 0], "religion=muslim": [1, 0, 1, 0], "religion=none": [0, 0, 0, 1],
        "gender=f & religion=jewish": [1, 0, 0, 0], "gender=f & religion=muslim": [1, 0, 0, 0],
        "gender=f & religion=none": [0, 0, 0, 1],
    }
    assert {c: slices[c].astype(int).tolist() for c in slices.columns} == expected  # empty pairs dropped
    singles = group_slices(meta, "gender", pairs=False, min_count=2)
    assert singles.columns.tolist() == ["gender=f"]


def test_group_slices_without_separator_keeps_whole_cells():
    meta = pd.DataFrame({"tags": ["a;b", "a"], "n": [1, 2]})
    assert group_slices(meta, ["tags", "n"], pairs=False).columns.tolist() == ["tags=a", "tags=a;b", "n=1",
                                                                               "n=2"]


@pytest.mark.parametrize(("args", "kwargs", "match"), [
    (([1, 2], ["a"]), {}, "frame"),
    ((pd.DataFrame({"a": [1]}), ["b"]), {}, "columns"),
    ((pd.DataFrame({"a": [1]}), []), {}, "columns"),
    ((pd.DataFrame({"a": [1]}), ["a"]), {"separator": ""}, "separator"),
    ((pd.DataFrame({"a": [1]}), ["a"]), {"min_count": 0}, "min_count"),
])
def test_group_slices_validation(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        group_slices(*args, **kwargs)


# --- find_weak_slices: exact references ---------------------------------------------------------


def _planted(n: int = 2000, share: float = 0.25, acc_in: float = 0.6, acc_out: float = 0.9, n_null: int = 30,
             seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    planted = rng.random(n) < share
    correct = (rng.random(n) < np.where(planted, acc_in, acc_out)).astype(int)
    slices = {"negation": planted}
    for j in range(n_null):
        slices[f"null {j}"] = rng.random(n) < rng.uniform(0.05, 0.5)
    return correct, pd.DataFrame(slices)


def test_fisher_p_values_equal_scipy_and_the_hypergeometric_tail():
    correct, slices = _planted(n=300, n_null=5)
    report = find_weak_slices(correct, slices, tolerance=0.0).set_index("slice")
    for name in slices.columns:
        mask = slices[name].to_numpy()
        k, n, k_rest, n_rest = correct[mask].sum(), mask.sum(), correct[~mask].sum(), (~mask).sum()
        row = report.loc[name]
        assert (row["n"], row["n_rest"]) == (n, n_rest)
        assert row["value"] == pytest.approx(k / n) and row["value_rest"] == pytest.approx(k_rest / n_rest)
        assert row["gap"] == pytest.approx(k_rest / n_rest - k / n)
        scipy_p = fisher_exact([[k, n - k], [k_rest, n_rest - k_rest]], alternative="less").pvalue
        assert row["p_value"] == scipy_p
        # one-sided Fisher = P(X <= k), X ~ hypergeometric(total n + n_rest, k + k_rest right, n drawn)
        assert row["p_value"] == pytest.approx(hypergeom.cdf(k, n + n_rest, k + k_rest, n), rel=1e-9)


def test_loss_p_values_equal_scipy_mannwhitneyu_and_an_exact_count():
    losses = np.array([5.0, 6.0, 7.0, 1.0, 2.0, 3.0, 4.0])
    slices = pd.DataFrame({"s": [True] * 3 + [False] * 4})
    row = find_weak_slices(losses, slices, kind="loss", min_count=3).iloc[0]
    assert row["gap"] == pytest.approx(6.0 - 2.5)
    # every slice loss exceeds every rest loss: exact p = 1 / C(7, 3)
    assert row["p_value"] == pytest.approx(1 / 35)
    rng = np.random.default_rng(1)
    losses = rng.exponential(size=200)
    mask = rng.random(200) < 0.3
    row = find_weak_slices(losses, pd.DataFrame({"s": mask}), kind="loss").iloc[0]
    assert row["p_value"] == mannwhitneyu(losses[mask], losses[~mask], alternative="greater").pvalue
    assert row["gap"] == pytest.approx(losses[mask].mean() - losses[~mask].mean())


def test_holm_adjustment_by_hand_and_bh_option():
    correct, slices = _planted(n=500, n_null=6, seed=3)
    report = find_weak_slices(correct, slices, tolerance=0.0)
    p = report["p_value"].to_numpy()
    order = np.argsort(p, kind="stable")
    m = p.size
    holm = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        holm[i] = running
    np.testing.assert_allclose(report["p_adjusted"], holm)
    assert (report["weak"] == ((report["p_adjusted"] < 0.05) & (report["gap"] > 0.0))).all()
    bh = find_weak_slices(correct, slices, tolerance=0.0, correction="bh")
    assert (bh.set_index("slice")["p_adjusted"] <= report.set_index("slice")["p_adjusted"] + 1e-12).all()


# --- find_weak_slices: simulations --------------------------------------------------------------


def test_planted_slice_is_found_with_its_gap_and_null_slices_are_not():
    """Accuracy 0.6 in a quarter of 2,000 examples, 0.9 elsewhere: gap 0.3, standard error about
    sqrt(.6·.4/500 + .9·.1/1500) = 0.023, so the estimate is checked to 0.09 (4 standard errors)."""
    correct, slices = _planted()
    report = find_weak_slices(correct, slices)
    assert list(report.columns) == list(REPORT_COLUMNS)
    weak = report[report["weak"]]
    assert weak["slice"].tolist() == ["negation"]
    assert weak["gap"].iloc[0] == pytest.approx(0.3, abs=0.09)
    assert report["class"].isna().all()
    assert worst_slice_gap(report) == weak["gap"].iloc[0]


@pytest.mark.parametrize(("kind", "n_datasets"), [("accuracy", 200), ("loss", 100)])
def test_holm_controls_the_family_wise_false_positive_rate_on_null_data(kind, n_datasets):
    """Null datasets of 400 examples with 30 random slices and no planted effect: the share of
    datasets with any weak slice (tolerance 0, so only the test decides) must be <= 0.05 up to
    Monte-Carlo error, 3 binomial standard errors: 3 · sqrt(.05 · .95 / 200) = 0.046 for 200
    datasets (Fisher's test), 0.065 for 100 (Mann-Whitney U, slower). Observed: 0.02 and 0.04;
    uncorrected p-values flag a slice in about 70 % of the datasets."""
    rng = np.random.default_rng(2024)
    n, n_slices = 400, 30
    false_positive = uncorrected = 0
    for _ in range(n_datasets):
        values = (rng.random(n) < 0.8).astype(int) if kind == "accuracy" else rng.exponential(size=n)
        shares = rng.uniform(0.05, 0.5, size=n_slices)
        slices = pd.DataFrame(rng.random((n, n_slices)) < shares, columns=[f"s{j}" for j in range(n_slices)])
        report = find_weak_slices(values, slices, kind=kind, tolerance=0.0)
        false_positive += bool(report["weak"].any())
        uncorrected += bool((report["p_value"] < 0.05).any())
    assert false_positive / n_datasets <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / n_datasets)
    assert uncorrected / n_datasets > 0.4  # the correction is doing the work


def test_per_class_rows_catch_a_shortcut_that_the_slice_row_misses():
    """Inside the slice class 0 has recall 0.2 and class 1 recall 1.0; outside both have 0.6. The
    slice's accuracy (0.6) equals the rest's, so only its class-0 row is weak."""
    rng = np.random.default_rng(7)
    n = 2000
    labels = np.tile([0, 1], n // 2)
    in_slice = np.zeros(n, dtype=bool)
    in_slice[rng.permutation(n)[: n // 4]] = True
    correct = np.zeros(n, dtype=int)
    for cls in (0, 1):
        for inside, recall in ((True, 0.2 if cls == 0 else 1.0), (False, 0.6)):
            idx = rng.permutation(np.flatnonzero((labels == cls) & (in_slice == inside)))
            correct[idx[: round(recall * idx.size)]] = 1
    other = rng.random(n) < 0.3
    slices = pd.DataFrame({"shortcut": in_slice, "other": other})
    report = find_weak_slices(correct, slices, labels=labels, label_names=["negative", "positive"])
    rows = report.set_index(["slice", report["class"].fillna("all")])
    assert rows.loc[("shortcut", "all"), "gap"] == pytest.approx(0.0, abs=0.02)
    assert not rows.loc[("shortcut", "all"), "weak"]
    assert rows.loc[("shortcut", "negative"), "weak"]
    assert rows.loc[("shortcut", "negative"), "gap"] == pytest.approx(0.4, abs=0.01)
    assert rows.loc[("shortcut", "positive"), "gap"] < 0
    weak = report[report["weak"]]
    assert list(zip(weak["slice"], weak["class"], strict=True)) == [("shortcut", "negative")]
    # the rest of a class-c row is class c outside the slice
    assert rows.loc[("shortcut", "negative"), "n"] + rows.loc[("shortcut", "negative"), "n_rest"] == n // 2


def test_min_count_leaves_small_slices_and_small_rests_untested():
    values = np.array([1, 0] * 50)
    row = np.arange(100)
    slices = pd.DataFrame({"small": row < 10, "big": row < 95, "ok": row < 50})
    assert find_weak_slices(values, slices)["slice"].tolist() == ["ok"]
    empty = find_weak_slices(values, slices, min_count=60)
    assert list(empty.columns) == list(REPORT_COLUMNS) and empty.empty
    assert worst_slice_gap(empty) == 0.0


def test_report_types_and_order():
    correct, slices = _planted(n=600, n_null=4, seed=5)
    labels = np.arange(600) % 2
    report = find_weak_slices(correct.astype(bool), slices, labels=labels)
    assert report["class"].map(lambda c: c is None or c in (0, 1)).all()
    assert report["n"].dtype == np.int64 and report["weak"].dtype == bool
    weak_first = report["weak"].to_numpy()
    assert (np.diff(weak_first.astype(int)) <= 0).all()
    for flag in (True, False):
        gaps = report.loc[report["weak"] == flag, "gap"].to_numpy()
        assert (np.diff(gaps) <= 0).all()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"values": np.ones(5)}, "slices must have one row per value"),
    ({"labels": np.zeros(3)}, "labels"),
    ({"values": np.array([0, 1, 2, 1])}, "values"),
    ({"values": np.array([0.0, np.nan, 1.0, 1.0])}, "values"),
    ({"values": np.array(["a", "b", "a", "b"])}, "values"),
    ({"kind": "f1"}, "kind"),
    ({"correction": "bonferroni"}, "correction"),
    ({"alpha": 1.5}, "alpha"),
    ({"tolerance": -0.1}, "tolerance"),
    ({"min_count": 0}, "min_count"),
    ({"slices": pd.DataFrame({"s": [0, 1, 2, 0]})}, "slices column 's'"),
    ({"slices": np.ones((4, 1), dtype=bool)}, "slices"),
    ({"labels": np.array([0, 1, 2, 0]), "label_names": ["a", "b"]}, "label_names"),
])
def test_find_weak_slices_validation(kwargs, match):
    args = {"values": np.array([1, 0, 1, 1]), "slices": pd.DataFrame({"s": [True, False, True, False]})}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        find_weak_slices(args.pop("values"), args.pop("slices"), **args)


def test_worst_slice_gap_only_counts_weak_rows():
    report = pd.DataFrame({"gap": [0.4, 0.2, 0.9], "weak": [True, True, False]})
    assert worst_slice_gap(report) == 0.4
    with pytest.raises(ValueError, match="report"):
        worst_slice_gap(pd.DataFrame({"gap": [0.1]}))


# --- real data: the built-in reviews and a bag-of-words model ------------------------------------


def _bag_of_words_report(n_train: int, n_test: int, *, spurious: float, seed: int = 0) -> dict:
    """Train CountVectorizer + logistic regression on the first ``n_train`` training rows, score
    the test split, and search ``text_properties`` slices (no group column) with per-class rows."""
    data = generate_reviews(n_train, 1, n_test, spurious_correlation=spurious, seed=seed)
    train = data[data["split"] == "train"]
    test = data[data["split"] == "test"].reset_index(drop=True)
    model = make_pipeline(CountVectorizer(), LogisticRegression(max_iter=2000))
    model.fit(train["text"], train["label"])
    labels = test["label"].to_numpy()
    correct = (model.predict(test["text"]) == labels).astype(int)
    report = find_weak_slices(correct, text_properties(test["text"]), labels=labels,
                              label_names=LABEL_NAMES[2])
    return {"report": report, "accuracy": correct.mean()}


def _row(report: pd.DataFrame, name: str, cls: str | None = None) -> pd.Series:
    mask = (report["slice"] == name) & (report["class"].isna() if cls is None else report["class"] == cls)
    (index,) = np.flatnonzero(mask)
    return report.iloc[index]


def test_real_data_finds_the_gender_shortcut_from_the_text_alone():
    """Training reviews with P(female | positive) = 0.95 and P(female | negative) = 0.05; test
    reviews independent of gender. The model learns she/her -> positive and he/his -> negative,
    so female negatives and male positives fail. Found from the pronouns alone, and only through
    the per-class rows: each identity slice's overall accuracy is close to the rest's (the
    shortcut helps one class as much as it hurts the other). Holds on seeds 0-9."""
    result = _bag_of_words_report(2000, 1000, spurious=0.9)
    report = result["report"]
    weak = report[report["weak"]]
    identity = weak[weak["slice"].str.startswith("identity:")]
    assert set(zip(identity["slice"], identity["class"], strict=True)) == {
        ("identity: female terms", "negative"), ("identity: male terms", "positive")}
    assert weak["slice"].iloc[0].startswith("identity:")  # the worst weak slice
    assert identity["gap"].min() > 0.3
    for name in ("identity: female terms", "identity: male terms"):
        assert not _row(report, name)["weak"]
        assert abs(_row(report, name)["gap"]) < 0.1


def test_real_data_negation_is_weak_once_the_model_knows_the_adjectives():
    """The same 2,000 test reviews, a model trained on the first 150 and on all 2,000 training rows.

    Negation fools a bag of words only after it has learnt the adjectives that negation flips
    ("not good"). At 150 rows the model is weak everywhere (accuracy about 0.66) and negated
    reviews are barely worse than the rest (gap about 0.02 on average over seeds 0-15, weak in 1
    of 16 seeds); its weak slices are per-class frequent-word slices instead, words such as
    "thought" or "online" that it tied to one class by chance (overfitting). At 2,000 rows
    (accuracy about 0.85) negation is weak on all of seeds 0-15, with a gap of about 0.14."""
    small = _bag_of_words_report(150, 2000, spurious=0.0)
    full = _bag_of_words_report(2000, 2000, spurious=0.0)
    assert small["accuracy"] < full["accuracy"] - 0.1

    negation = _row(full["report"], "negation")
    assert negation["weak"] and negation["gap"] > 0.1
    assert "negation" in full["report"].loc[full["report"]["weak"], "slice"].head(3).tolist()

    assert not _row(small["report"], "negation")["weak"]
    assert _row(small["report"], "negation")["gap"] < negation["gap"]
    small_weak = small["report"][small["report"]["weak"]]
    chance_words = small_weak["slice"].str.startswith("word:") & small_weak["class"].notna()
    assert chance_words.sum() >= len(small_weak) / 2

"""Forgetting ratio and the general-text probe (and how far the probe is from the review data)."""

from __future__ import annotations

import math
import re

import pytest

from overfit_lab.data import _builtin_lexicon as lexicon
from overfit_lab.data.builtin import generate_reviews
from overfit_lab.diagnostics.forgetting import PROBE_KEY, forgetting_ratio, probe_texts
from overfit_lab.errors import OverfitLabError

SENTIMENT_WORDS = {w.lower() for words in (lexicon.POSITIVE_STRONG, lexicon.POSITIVE_MILD,
                                           lexicon.NEGATIVE_STRONG, lexicon.NEGATIVE_MILD,
                                           lexicon.NEUTRAL_ADJ) for w in words}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def test_forgetting_ratio():
    assert forgetting_ratio(20.0, 25.0) == 1.25
    assert forgetting_ratio(10, 10) == 1.0
    assert forgetting_ratio(30.0, 15.0) == 0.5
    # the ratio of perplexities is the exponential of the rise in mean cross-entropy
    assert math.log(forgetting_ratio(math.exp(2.0), math.exp(2.3))) == pytest.approx(0.3)


@pytest.mark.parametrize(("before", "after", "name"), [
    (0.0, 2.0, "perplexity_before"), (-1.0, 2.0, "perplexity_before"), (math.nan, 2.0, "perplexity_before"),
    (2.0, math.inf, "perplexity_after"), (2.0, "high", "perplexity_after"), (2.0, None, "perplexity_after"),
])
def test_forgetting_ratio_rejects_bad_perplexities(before, after, name):
    with pytest.raises(ValueError, match=name):
        forgetting_ratio(before, after)


def test_default_probe_loads():
    documents = probe_texts()
    assert len(documents) >= 100
    assert all(len(d.split()) >= 10 for d in documents)
    assert all(d == d.strip() and "\n" not in d for d in documents)
    assert len(set(documents)) == len(documents)


def test_max_documents():
    assert probe_texts(max_documents=3) == probe_texts()[:3]
    assert probe_texts(max_documents=10_000) == probe_texts()
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="max_documents"):
            probe_texts(max_documents=bad)


def test_a_probe_file_is_read_line_by_line(tmp_path):
    path = tmp_path / "probe.txt"
    path.write_text("\ufeff  First document.  \n\n\t\nSecond document.\r\nThird one é.", encoding="utf-8")
    assert probe_texts(path) == ["First document.", "Second document.", "Third one é."]
    assert probe_texts(str(path), max_documents=1) == ["First document."]


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read"),
    (b"", "no non-empty line"),
    (b"  \n\n \t\n", "no non-empty line"),
    ("caf\u00e9 au lait\n".encode("latin-1"), "not UTF-8"),
])
def test_bad_probe_files_raise_overfit_lab_error(tmp_path, content, message):
    path = tmp_path / "probe.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(OverfitLabError, match=message) as info:
        probe_texts(path)
    assert info.value.key == PROBE_KEY == "diagnostics.forgetting.probe"
    assert info.value.file == str(path)
    assert info.value.fix


def test_a_folder_is_not_a_probe_file(tmp_path):
    with pytest.raises(OverfitLabError, match="cannot read") as info:
        probe_texts(tmp_path)
    assert info.value.key == PROBE_KEY


def test_probe_is_outside_the_review_domain():
    """No sentiment adjective of the review generator, no reviewer name, no he/she; and most of
    the probe's word types never occur in generated reviews."""
    probe = probe_texts()
    for document in probe:
        words = set(_words(document))
        assert not words & SENTIMENT_WORDS, (document, words & SENTIMENT_WORDS)
        assert not words & {n.lower() for n in lexicon.FEMALE_NAMES + lexicon.MALE_NAMES}, document
        assert not words & {"he", "she", "his", "her", "him", "hers"}, document
    reviews = generate_reviews(500, 10, 10, seed=0)["text"]
    review_vocabulary = {w for text in reviews for w in _words(text)}
    probe_vocabulary = {w for document in probe for w in _words(document)}
    shared = probe_vocabulary & review_vocabulary
    # observed: 74 of 1303 word types (5.7%), nearly all function words
    assert len(shared) / len(probe_vocabulary) < 0.15, sorted(shared)

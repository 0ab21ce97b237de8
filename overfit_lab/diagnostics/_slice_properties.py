"""Slices for :mod:`overfit_lab.diagnostics.slices`: interpretable properties of texts and slices
of metadata columns, as boolean DataFrames (one column per slice). Re-exported there.

* ``text_properties``: from the texts alone: length bins, negation, contrast, questions,
  exclamations, all-caps words, digits, URLs and mentions, identity terms, frequent words;
* ``group_slices``: from metadata columns (``"gender=female"``) and pairs of them
  (``"gender=female & domain=film"``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from ._bias_counterfactual import GENDER_PAIRS
from ._bias_groups import _values_of
from ._validation import check_positive_int, check_texts

__all__ = ["CONTRAST_WORDS", "NEGATION_WORDS", "group_slices", "text_properties"]

NEGATION_WORDS: frozenset[str] = frozenset(
    {"not", "no", "never", "nothing", "nobody", "none", "neither", "nor", "nowhere", "cannot"}
)
"""Whole words that mark a negation (besides any word ending in ``n't``)."""
CONTRAST_WORDS: frozenset[str] = frozenset(
    {"but", "although", "though", "however", "yet", "whereas", "while"}
)
"""Whole words that mark a contrast (``even though`` is covered by ``though``)."""


# words: letters and digits, with inner apostrophes (wasn't, o'clock); "_" is not a letter
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_URL_OR_MENTION = re.compile(r"https?://|www\.|(?<![\w@#])[@#]\w")
_DIGIT = re.compile(r"\d")


def _words(text: str) -> list[str]:
    return [w.replace("’", "'") for w in _WORD.findall(text)]


def _is_negation(word: str) -> bool:
    word = word.lower()
    return word in NEGATION_WORDS or word.endswith("n't")


def _is_all_caps(word: str) -> bool:
    return word != "I" and sum(c.isalpha() for c in word) >= 2 and word.isupper()


def _default_identity_terms() -> dict[str, list[str]]:
    female = list(dict.fromkeys(pair[0] for pair in GENDER_PAIRS))
    male = list(dict.fromkeys(pair[1] for pair in GENDER_PAIRS))
    return {"female terms": female, "male terms": male}


def _check_non_negative_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0; got {value!r}")
    return int(value)


def _length_bins(counts: np.ndarray, n_bins: int) -> dict[str, np.ndarray]:
    """Right-closed word-count bins ``(q_{j-1}, q_j]`` between the quantiles ``q_j`` of ``counts``.

    Integer counts, so bin ``j`` holds ``floor(q_{j-1}) + 1 .. floor(q_j)`` words; the first bin
    starts at the shortest text. Edges that coincide after flooring are skipped.
    """
    quantiles = np.quantile(counts, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]) if n_bins > 1 else []
    cuts = sorted({int(math.floor(q)) for q in quantiles} - {int(counts.max())})
    bins: dict[str, np.ndarray] = {}
    low = int(counts.min())
    for high in [*cuts, int(counts.max())]:
        if high < low:
            continue
        span = f"{low}" if low == high else f"{low}-{high}"
        bins[f"length: {span} word{'' if high == 1 else 's'}"] = (counts >= low) & (counts <= high)
        low = high + 1
    return bins


def text_properties(
    texts: Sequence[str],
    *,
    identity_terms: Mapping[str, Sequence[str]] | None = None,
    frequent_tokens: int = 20,
    length_bins: int = 4,
    min_count: int = 1,
) -> pd.DataFrame:
    """Interpretable boolean properties of each text, computed from the texts alone.

    Words are runs of letters and digits with inner apostrophes (``wasn't`` is one word; a
    typographic ``’`` counts as ``'``). The properties, in column order:

    * ``"length: a-b words"``: the number of whitespace-separated words falls in a quantile bin.
      The ``length_bins - 1`` inner quantiles ``q_j`` of the word counts of ``texts`` cut them
      into right-closed bins ``(q_{j-1}, q_j]``: ``floor(q_{j-1}) + 1 .. floor(q_j)`` words, the
      first bin from the shortest text, the last to the longest. Edges that coincide (many texts
      of one length) are skipped, so there can be fewer bins;
    * ``"negation"``: a whole word (case-insensitive) among :data:`NEGATION_WORDS` (not, no,
      never, nothing, nobody, none, neither, nor, nowhere, cannot) or ending in ``n't``
      (wasn't, didn't, couldn't);
    * ``"contrast"``: a whole word among :data:`CONTRAST_WORDS` (but, although, though, however,
      yet, whereas, while; ``even though`` through ``though``);
    * ``"question"``: contains ``?``; ``"exclamation"``: contains ``!``;
    * ``"all-caps word"``: a word of at least 2 letters, all of them upper case, other than ``I``
      (``GREAT``, ``NOT``);
    * ``"digits"``: contains a digit;
    * ``"URL or @mention"``: contains ``http://``, ``https://``, ``www.``, an ``@name`` or a
      ``#tag``;
    * ``"identity: <group>"``: for each group of ``identity_terms``, a whole-word,
      case-insensitive match of one of its terms (a term may be several words);
    * ``"word: <token>"``: the ``frequent_tokens`` words with the highest document frequency
      (number of texts containing them) among the lower-cased, purely alphabetic words of at
      least 3 letters that are not in scikit-learn's ``ENGLISH_STOP_WORDS`` nor negation or
      contrast words; ties are broken alphabetically.

    Parameters
    ----------
    texts : sequence of str
        The evaluation texts, at least one.
    identity_terms : mapping of str to sequence of str, optional
        Group name to its words. Default: ``{"female terms": [...], "male terms": [...]}`` with
        the first and the second words of :data:`overfit_lab.diagnostics.bias.GENDER_PAIRS`.
        Pass ``{}`` for none.
    frequent_tokens : int, default 20
        Number of frequent-word columns (0 for none).
    length_bins : int, default 4
        Number of word-count quantile bins asked for (1: a single bin, all texts).
    min_count : int, default 1
        Columns true for fewer texts are dropped.

    Returns
    -------
    pandas.DataFrame
        Boolean, index ``0..n-1`` (the order of ``texts``), one column per slice, named as above.

    Examples
    --------
    >>> texts = ["It was not good.", "GREAT food, but slow", "Is she here?", "Loved it!"]
    >>> props = text_properties(texts, frequent_tokens=1, length_bins=2)
    >>> props.columns.tolist()
    ['length: 2-3 words', 'length: 4 words', 'negation', 'contrast', 'question', 'exclamation', \
'all-caps word', 'identity: female terms', 'word: food']
    >>> props["negation"].tolist(), props["identity: female terms"].tolist()
    ([True, False, False, False], [False, False, True, False])
    >>> text_properties(texts, frequent_tokens=0, length_bins=2, min_count=2).columns.tolist()
    ['length: 2-3 words', 'length: 4 words']
    """
    texts = check_texts(texts, allow_empty=False)
    length_bins = check_positive_int(length_bins, "length_bins")
    frequent_tokens = _check_non_negative_int(frequent_tokens, "frequent_tokens")
    min_count = check_positive_int(min_count, "min_count")
    if identity_terms is None:
        identity_terms = _default_identity_terms()
    if not isinstance(identity_terms, Mapping):
        raise ValueError(f"identity_terms must map a group name to its words; got {type(identity_terms)}")
    identity_patterns = {}
    for group, terms in identity_terms.items():
        if isinstance(terms, str) or not terms or not all(isinstance(t, str) and t.strip() for t in terms):
            raise ValueError(f"identity_terms[{group!r}] must be a non-empty sequence of words; "
                             f"got {terms!r}")
        alternatives = "|".join(sorted((re.escape(t.strip()) for t in terms), key=len, reverse=True))
        identity_patterns[group] = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)

    words = [_words(t) for t in texts]
    lower = [{w.lower() for w in ws} for ws in words]
    counts = np.array([len(t.split()) for t in texts])
    columns: dict[str, np.ndarray] = dict(_length_bins(counts, length_bins))

    def column(test) -> np.ndarray:
        return np.fromiter((bool(test(i)) for i in range(len(texts))), dtype=bool, count=len(texts))

    columns["negation"] = column(lambda i: any(_is_negation(w) for w in lower[i]))
    columns["contrast"] = column(lambda i: not lower[i].isdisjoint(CONTRAST_WORDS))
    columns["question"] = column(lambda i: "?" in texts[i])
    columns["exclamation"] = column(lambda i: "!" in texts[i])
    columns["all-caps word"] = column(lambda i: any(_is_all_caps(w) for w in words[i]))
    columns["digits"] = column(lambda i: _DIGIT.search(texts[i]))
    columns["URL or @mention"] = column(lambda i: _URL_OR_MENTION.search(texts[i]))
    for group, pattern in identity_patterns.items():
        columns[f"identity: {group}"] = column(lambda i, p=pattern: p.search(texts[i]))

    document_frequency = Counter(
        w for ws in lower for w in ws
        if len(w) >= 3 and w.isalpha() and w not in ENGLISH_STOP_WORDS
        and w not in CONTRAST_WORDS and not _is_negation(w)
    )
    ranked = sorted(document_frequency.items(), key=lambda item: (-item[1], item[0]))[:frequent_tokens]
    for token, _ in ranked:
        columns[f"word: {token}"] = column(lambda i, w=token: w in lower[i])

    frame = pd.DataFrame(columns, index=pd.RangeIndex(len(texts)))
    return frame.loc[:, frame.sum(axis=0) >= min_count]


def _sorted_values(values: set) -> list:
    try:
        return sorted(values)
    except TypeError:  # mixed types
        return sorted(values, key=str)


def group_slices(
    frame: pd.DataFrame,
    columns: Sequence[str] | str,
    *,
    separator: str | None = None,
    pairs: bool = True,
    min_count: int = 1,
) -> pd.DataFrame:
    """Boolean slices from metadata columns: one per value, and one per pair of values.

    Column ``"col=value"`` is true for the rows whose ``col`` has ``value``. With ``separator``
    a cell holding several values (``"black;muslim"`` with ``separator=";"``) belongs to each of
    them, stripped of surrounding spaces. A missing cell (NaN, None) belongs to none. With
    ``pairs``, ``"col1=v1 & col2=v2"`` is true where both hold, for every pair of values of two
    different columns (intersections are where shortcuts hide).

    Parameters
    ----------
    frame : pandas.DataFrame
        The evaluation rows, in the order of the values that :func:`find_weak_slices` will get.
    columns : sequence of str or str
        Columns of ``frame`` to slice on.
    separator : str or None, default None
        What separates the values of a multi-valued cell; None: one value per cell.
    pairs : bool, default True
        Also the intersections of two values from different columns.
    min_count : int, default 1
        Slices with fewer rows are dropped.

    Returns
    -------
    pandas.DataFrame
        Boolean, index ``0..n-1`` (the row order of ``frame``): the single-value slices of each
        column in turn, values sorted, then the pairs.

    Examples
    --------
    >>> meta = pd.DataFrame({"gender": ["f", "m", "f"], "topic": ["film;food", "film", "food"]})
    >>> group_slices(meta, ["gender", "topic"], separator=";").sum().to_dict()
    {'gender=f': 2, 'gender=m': 1, 'topic=film': 2, 'topic=food': 2, 'gender=f & topic=film': 1, \
'gender=f & topic=food': 2, 'gender=m & topic=film': 1}
    >>> group_slices(meta, "gender", pairs=False, min_count=2).columns.tolist()
    ['gender=f']
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"frame must be a pandas DataFrame; got {type(frame).__name__}")
    columns = [columns] if isinstance(columns, str) else list(columns)
    if not columns:
        raise ValueError("columns must name at least one column of frame")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"columns must be columns of frame; not found: {missing}")
    if len(set(columns)) != len(columns):
        raise ValueError(f"columns must not repeat a column; got {columns}")
    if separator is not None and (not isinstance(separator, str) or not separator):
        raise ValueError(f"separator must be a non-empty string or None; got {separator!r}")
    min_count = check_positive_int(min_count, "min_count")

    per_column: list[dict[str, np.ndarray]] = []
    for col in columns:
        cells = [() if _is_missing(v) else _values_of(v, separator) for v in frame[col].tolist()]
        values = _sorted_values({v for vs in cells for v in vs})
        per_column.append({
            f"{col}={value}": np.array([value in vs for vs in cells], dtype=bool) for value in values
        })
    slices: dict[str, np.ndarray] = {name: mask for singles in per_column for name, mask in singles.items()}
    if pairs:
        for first, second in combinations(per_column, 2):
            for name1, mask1 in first.items():
                for name2, mask2 in second.items():
                    slices[f"{name1} & {name2}"] = mask1 & mask2
    out = pd.DataFrame(slices, index=pd.RangeIndex(len(frame)), dtype=bool)
    return out.loc[:, out.sum(axis=0) >= min_count]


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))

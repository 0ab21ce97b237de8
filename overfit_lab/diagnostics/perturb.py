"""Text perturbations for robustness tests (evaluation-time, not training-time, noise).

Every operation has the signature ``op(text, severity, rng) -> str``: ``severity`` in [0, 1] is
the share of the op's *eligible units* (characters or words, named in each op's docstring) that it
touches, ``k = max(1, round(severity * n))`` of the ``n`` eligible units for ``severity > 0`` and
none for ``severity = 0`` (which returns ``text`` unchanged and leaves ``rng`` untouched); the few
caps (``word_dropout`` keeps one word, ``word_swap`` needs two) are in the op's docstring. The units
are drawn without replacement from ``rng``, so an op is deterministic given the generator state.
Text outside the touched units (whitespace included) is kept byte for byte.

Severity in readable terms
--------------------------
A share of units is not a scale a reader can judge, so :func:`describe_severity` restates it:
character ops touch letters, and English averages about 4.8 letters per word token (Norvig 2013,
"English Letter Frequency Counts: Mayzner Revisited": 4.79; the built-in reviews: 4.5), so
``keyboard_typo`` at 0.05 is about 5% of the letters, 0.24 typos per word, one typo every four
words, and a character error rate (Levenshtein distance / length) of about 0.04; at 0.3 it is
one and a half typos per word, CER 0.24, and the text is no longer readable ("Thd fopd dqd jjst
wlndsttul"). Word ops at 0.1 touch one word in ten; lexicon ops at 1 replace every match.

The headline severity
---------------------
The full severity curves are for inspection; a headline figure needs one severity per op at
which the perturbed text is still what a person could plausibly write and still carries its
label. :data:`HEADLINE_SEVERITY` is that table (``None``: no such severity, curves only):

* ``keyboard_typo``, ``char_insert``, ``char_delete``, ``char_transpose``: 0.05, the rate of
  Giskard's typo detector (``TextTypoTransformation(rate=0.05)``: a Poisson number of typos with
  mean 5% of the non-space characters), a stress level a few times the ~1% of characters that
  typists leave uncorrected (Dhakal et al. 2018, "Observations on Typing from 136 Million
  Keystrokes"), far below the every-word noise of Belinkov & Bisk 2018, which they show breaks
  models *and* needs training on noise to read. On the built-in test texts the mean CER is
  0.03-0.06 (transposition counts two edits), and 95-98% of the words that carry the label
  (adjectives, negations, "but") are intact or one typo away with no other such word as close
  (92-97% of the texts keep all of them); at 0.3 the CER is 0.19-0.28 and only 40-63% of those
  words survive (``tests/test_perturb.py``).
* ``casing``: 1.0, the whole text typed with caps lock on (swapcase of every word); the words
  are unchanged.
* ``punctuation_strip`` and ``extra_whitespace``: 1.0, all punctuation dropped (text-message
  style, CheckList's punctuation INV test) or every gap widened (invisible to a reader).
* ``punctuation_add``: 0.1, a stray mark after one word in ten (the words are unchanged).
* ``synonym``, ``contraction``, ``identity_swap``: 1.0, every match replaced, as CheckList's INV
  tests do; the lexicons are meaning-preserving by construction, and a partial identity swap
  would mix genders in one text, which is less realistic than the full counterfactual.
* ``word_dropout``, ``word_swap``: ``None``. Any severity above 0 drops or moves a word, and no
  rate keeps the label-carrying words ("not", "but", the adjective): at 0.1 (EDA's ``alpha``,
  Wei & Zou 2019, chosen for *training* augmentation, where a wrong label on a few rows is
  tolerable) 17% of the built-in test texts lose such a word to dropout and 22% have one
  moved by a swap, so a model that read every text correctly would still show a "drop".
  Their curves are kept; a suite can put them in the headline with ``headline = {...}``.

Character noise follows Belinkov & Bisk 2018, "Synthetic and Natural Noise Both Break Neural
Machine Translation"; the word, lexicon and identity transformations follow the invariance (INV)
tests of Ribeiro et al. 2020, "Beyond Accuracy: Behavioral Testing of NLP Models with CheckList",
and the transformation catalogues of Morris et al. 2020, "TextAttack", and Wang et al. 2021,
"TextFlint". :func:`identity_swap` is the counterfactual substitution of Lu et al. 2020, "Gender
Bias in Neural Natural Language Processing".

The ops live in private modules by kind (``_perturb_char``, ``_perturb_word``, ``_perturb_lexicon``;
the shared machinery in ``_perturb_base``, the registry and severity tables in ``_perturb_registry``);
import them from here.
"""

from ._perturb_base import Perturbation, Span
from ._perturb_char import char_delete, char_insert, char_transpose, keyboard_typo, punctuation_strip
from ._perturb_lexicon import CONTRACTIONS, GENDER_SWAPS, SYNONYMS, contraction, identity_swap, synonym
from ._perturb_registry import (
    CHARACTER_OPS,
    HEADLINE_SEVERITY,
    LETTERS_PER_WORD,
    PERTURBATIONS,
    SEVERITY_UNITS,
    WORD_OPS,
    changed_mask,
    describe_severity,
    get_perturbation,
    headline_severities,
    perturb_texts,
    register_perturbation,
)
from ._perturb_word import casing, extra_whitespace, punctuation_add, word_dropout, word_swap

__all__ = [
    "CHARACTER_OPS",
    "CONTRACTIONS",
    "GENDER_SWAPS",
    "HEADLINE_SEVERITY",
    "LETTERS_PER_WORD",
    "PERTURBATIONS",
    "Perturbation",
    "SEVERITY_UNITS",
    "SYNONYMS",
    "Span",
    "WORD_OPS",
    "casing",
    "changed_mask",
    "char_delete",
    "char_insert",
    "char_transpose",
    "contraction",
    "describe_severity",
    "extra_whitespace",
    "get_perturbation",
    "headline_severities",
    "identity_swap",
    "keyboard_typo",
    "perturb_texts",
    "punctuation_add",
    "punctuation_strip",
    "register_perturbation",
    "synonym",
    "word_dropout",
    "word_swap",
]

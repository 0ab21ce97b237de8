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
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from ..data.augment import KEYBOARD_NEIGHBOURS

Perturbation = Callable[[str, float, np.random.Generator], str]
Span = tuple[int, int, str]  # replace text[start:end] by the string

_WORD = re.compile(r"\S+")
_ALNUM_RUN = re.compile(r"[^\W_]+")
_PUNCTUATION = frozenset(string.punctuation)
_ADDED_PUNCTUATION = (",", ".", "!", "?", ";", ":", "...")


# -- shared helpers ----------------------------------------------------------------------------------

def _check_severity(severity: float) -> float:
    severity = float(severity)
    if not 0.0 <= severity <= 1.0:
        raise ValueError(f"severity must be in [0, 1]; got {severity}")
    return severity


def _n_touched(severity: float, n: int) -> int:
    """``max(1, round(severity * n))`` for ``severity > 0`` and ``n > 0``, else 0."""
    return max(1, int(round(severity * n))) if severity > 0 and n > 0 else 0


def _choose(n: int, severity: float, rng: np.random.Generator, *, cap: int | None = None) -> list[int]:
    """Indices of the touched units among ``n`` eligible ones, in the order they were drawn."""
    k = _n_touched(_check_severity(severity), n)
    if cap is not None:
        k = min(k, cap)
    return [int(i) for i in rng.choice(n, size=k, replace=False)] if k > 0 else []


def _splice(text: str, spans: Iterable[Span]) -> str:
    """Apply non-overlapping ``(start, end, replacement)`` edits to ``text``."""
    out, last = [], 0
    for start, end, replacement in sorted(spans, key=lambda s: (s[0], s[1])):
        out.append(text[last:start])
        out.append(replacement)
        last = end
    out.append(text[last:])
    return "".join(out)


def _match_case(source: str, replacement: str) -> str:
    """``replacement`` in the casing of ``source``: UPPER (two or more cased letters), Title or lower."""
    cased = [c for c in source if c.isalpha()]
    if len(cased) > 1 and all(c.isupper() for c in cased):
        return replacement.upper()
    if source[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def _with_case_of(ch: str, replacement: str) -> str:
    return replacement.upper() if ch.isupper() else replacement


def _neighbour(ch: str, rng: np.random.Generator) -> str:
    near = KEYBOARD_NEIGHBOURS[ch.lower()]
    return _with_case_of(ch, near[int(rng.integers(len(near)))])


def _delete_chars(text: str, positions: list[int], severity: float, rng: np.random.Generator) -> str:
    chosen = _choose(len(positions), severity, rng)
    return _splice(text, [(positions[i], positions[i] + 1, "") for i in chosen])


def _keyboard_positions(text: str) -> list[int]:
    return [i for i, ch in enumerate(text) if ch.lower() in KEYBOARD_NEIGHBOURS]


# -- character operations ----------------------------------------------------------------------------

def keyboard_typo(text: str, severity: float, rng: np.random.Generator) -> str:
    """Replace letters by a random QWERTY neighbour (same row or adjacent row, column +- 1).

    Eligible units: the ASCII letters. Case is kept; the length of the text does not change.
    """
    positions = _keyboard_positions(text)
    chosen = sorted(positions[i] for i in _choose(len(positions), severity, rng))
    return _splice(text, [(p, p + 1, _neighbour(text[p], rng)) for p in chosen])


def char_insert(text: str, severity: float, rng: np.random.Generator) -> str:
    """Insert a keyboard neighbour of a letter right after it (a "fat finger" double strike).

    Eligible units: the ASCII letters; each touched letter is followed by one inserted letter.
    """
    positions = _keyboard_positions(text)
    chosen = sorted(positions[i] for i in _choose(len(positions), severity, rng))
    return _splice(text, [(p + 1, p + 1, _neighbour(text[p], rng)) for p in chosen])


def char_delete(text: str, severity: float, rng: np.random.Generator) -> str:
    """Delete letters or digits, never the first one of an alphanumeric run.

    Eligible units: every alphanumeric character but the first of its run, so each word keeps at
    least one character and the text never empties.
    """
    positions = [i for m in _ALNUM_RUN.finditer(text) for i in range(m.start() + 1, m.end())]
    return _delete_chars(text, positions, severity, rng)


def char_transpose(text: str, severity: float, rng: np.random.Generator) -> str:
    """Swap adjacent characters inside words ("teh" for "the").

    Eligible units: adjacent pairs of distinct alphanumeric characters in the same run. The
    ``k`` drawn pairs are swapped in the order drawn, skipping any pair that shares a character
    with one already swapped, so up to ``k`` pairs move.
    """
    pairs = [i for m in _ALNUM_RUN.finditer(text) for i in range(m.start(), m.end() - 1)
             if text[i] != text[i + 1]]
    used: set[int] = set()
    spans = []
    for i in _choose(len(pairs), severity, rng):
        p = pairs[i]
        if p not in used and p + 1 not in used:
            used.update((p, p + 1))
            spans.append((p, p + 2, text[p + 1] + text[p]))
    return _splice(text, spans)


def punctuation_strip(text: str, severity: float, rng: np.random.Generator) -> str:
    """Delete ASCII punctuation characters (apostrophes and hyphens inside words included).

    Eligible units: the characters of ``string.punctuation``; a text without any is unchanged.
    """
    positions = [i for i, ch in enumerate(text) if ch in _PUNCTUATION]
    return _delete_chars(text, positions, severity, rng)


# -- word operations ---------------------------------------------------------------------------------

def _words(text: str) -> list[re.Match[str]]:
    return list(_WORD.finditer(text))


def casing(text: str, severity: float, rng: np.random.Generator) -> str:
    """Flip the case of every letter of a word (``str.swapcase``: "Good" -> "gOOD").

    Eligible units: whitespace-separated words with at least one cased letter.
    """
    words = [m for m in _words(text) if m.group().swapcase() != m.group()]
    return _splice(text, [(words[i].start(), words[i].end(), words[i].group().swapcase())
                          for i in _choose(len(words), severity, rng)])


def punctuation_add(text: str, severity: float, rng: np.random.Generator) -> str:
    """Append a random mark from ``, . ! ? ; : ...`` to words.

    Eligible units: whitespace-separated words; each touched word gets one mark right after it.
    """
    words = _words(text)
    chosen = sorted(_choose(len(words), severity, rng))
    return _splice(text, [(words[i].end(), words[i].end(),
                           _ADDED_PUNCTUATION[int(rng.integers(len(_ADDED_PUNCTUATION)))]) for i in chosen])


def extra_whitespace(text: str, severity: float, rng: np.random.Generator) -> str:
    """Widen the gaps between words by one to three extra spaces.

    Eligible units: the whitespace gaps between consecutive words (a single word is unchanged).
    """
    words = _words(text)
    gaps = [words[i].end() for i in range(len(words) - 1)]
    chosen = sorted(_choose(len(gaps), severity, rng))
    return _splice(text, [(gaps[i], gaps[i], " " * int(rng.integers(1, 4))) for i in chosen])


def word_dropout(text: str, severity: float, rng: np.random.Generator) -> str:
    """Delete words with the whitespace that follows them (precedes them, for the last word).

    Eligible units: whitespace-separated words; at most ``n - 1`` are dropped, so the text never
    empties and a one-word text is unchanged.
    """
    words = _words(text)
    dropped = set(_choose(len(words), severity, rng, cap=len(words) - 1))
    if not dropped:
        return text
    last_kept = max(i for i in range(len(words)) if i not in dropped)
    spans = [(words[i].start(), words[i + 1].start(), "") for i in sorted(dropped) if i < last_kept]
    if last_kept < len(words) - 1:  # the tail after the last kept word goes, with its leading gap
        spans.append((words[last_kept].end(), words[-1].end(), ""))
    return _splice(text, spans)


def word_swap(text: str, severity: float, rng: np.random.Generator) -> str:
    """Move words to each other's places: the touched words are rotated one step along the order drawn.

    Eligible units: whitespace-separated words; at least two are touched when ``severity > 0``
    (a single pair is an ordinary swap). The gaps stay where they are and the multiset of words
    is kept; a text of fewer than two words is unchanged.
    """
    words = _words(text)
    if len(words) < 2:
        return text
    chosen = _choose(len(words), severity, rng)
    if len(chosen) == 1:
        chosen.append(int(rng.choice([i for i in range(len(words)) if i != chosen[0]])))
    moved = chosen[1:] + chosen[:1]
    return _splice(text, [(words[dst].start(), words[dst].end(), words[src].group())
                          for dst, src in zip(chosen, moved, strict=True)])


# -- lexicon operations ------------------------------------------------------------------------------

def _lexicon(pairs: Sequence[tuple[str, str]], one_way: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    """Lower-case ``word -> replacement`` map: ``pairs`` in both directions, ``one_way`` as given."""
    mapping: dict[str, str] = {}
    for source, target in [*pairs, *((b, a) for a, b in pairs), *one_way]:
        if source in mapping:
            raise ValueError(f"lexicon key {source!r} is defined twice")
        mapping[source] = target
    return mapping


def _lexicon_pattern(keys: Iterable[str]) -> re.Pattern[str]:
    """Case-insensitive, word-bounded alternation (longest first); spaces match any whitespace run."""
    alternatives = [r"\s+".join(re.escape(w).replace("'", "['’]") for w in k.split())
                    for k in sorted(keys, key=len, reverse=True)]
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")\b", re.IGNORECASE)


def _normalise(match: str) -> str:
    return " ".join(match.lower().replace("’", "'").split())


def _lexicon_substitute(text: str, severity: float, rng: np.random.Generator,
                        pattern: re.Pattern[str], mapping: dict[str, str]) -> str:
    matches = list(pattern.finditer(text))
    return _splice(text, [(matches[i].start(), matches[i].end(),
                           _match_case(matches[i].group(), mapping[_normalise(matches[i].group())]))
                          for i in _choose(len(matches), severity, rng)])


_SYNONYM_PAIRS = (
    # adjectives
    ("good", "fine"), ("great", "excellent"), ("bad", "poor"), ("awful", "terrible"),
    ("wonderful", "marvelous"), ("amazing", "astonishing"), ("boring", "dull"), ("funny", "amusing"),
    ("beautiful", "lovely"), ("happy", "glad"), ("sad", "unhappy"), ("big", "large"),
    ("quick", "fast"), ("smart", "clever"), ("stupid", "dumb"), ("easy", "simple"),
    ("strange", "odd"), ("weird", "bizarre"), ("tasty", "delicious"), ("rude", "impolite"),
    ("nice", "pleasant"), ("horrible", "dreadful"), ("brilliant", "superb"), ("perfect", "flawless"),
    ("cheap", "inexpensive"), ("expensive", "pricey"), ("dirty", "filthy"), ("interesting", "intriguing"),
    ("exciting", "thrilling"), ("scary", "frightening"), ("annoying", "irritating"),
    ("enjoyable", "entertaining"), ("huge", "enormous"), ("bland", "tasteless"), ("slow", "sluggish"),
    # adverbs
    ("extremely", "incredibly"), ("totally", "completely"), ("quickly", "rapidly"),
    ("often", "frequently"), ("maybe", "perhaps"),
    # verbs
    ("love", "adore"), ("loved", "adored"), ("hate", "detest"), ("hated", "detested"),
    ("begin", "start"), ("buy", "purchase"), ("bought", "purchased"), ("help", "assist"),
    ("recommend", "suggest"), ("liked", "enjoyed"),
    # nouns
    ("movie", "film"), ("movies", "films"), ("story", "tale"), ("plot", "storyline"),
    ("actor", "performer"), ("restaurant", "eatery"), ("waiter", "server"), ("price", "cost"),
    ("car", "automobile"), ("problem", "issue"), ("mistake", "error"), ("kid", "child"),
    ("kids", "children"), ("trip", "journey"), ("ending", "conclusion"),
)
_SYNONYM_ONE_WAY = (  # the reverse would misread a polysemous word ("hard" = firm, "show" = TV show)
    ("difficult", "hard"), ("small", "little"), ("display", "show"), ("novel", "book"),
    ("really", "truly"), ("very", "really"), ("people", "folks"), ("gift", "present"),
)
SYNONYMS: dict[str, str] = _lexicon(_SYNONYM_PAIRS, _SYNONYM_ONE_WAY)
_SYNONYM_PATTERN = _lexicon_pattern(SYNONYMS)


def synonym(text: str, severity: float, rng: np.random.Generator) -> str:
    """Replace words by a synonym from the built-in lexicon :data:`SYNONYMS` (offline, case kept).

    Eligible units: the words found in the lexicon (whole words, case-insensitive). Pairs such as
    good <-> fine, great <-> excellent, bad <-> poor, awful <-> terrible and movie <-> film are used in
    both directions; a few polysemous words only one way (difficult -> hard). A natural extension
    is a neighbour search in a model's embedding space (TextAttack's ``WordSwapEmbedding``, with
    a part-of-speech and sentence-similarity constraint), which needs the model and a vocabulary.
    """
    return _lexicon_substitute(text, severity, rng, _SYNONYM_PATTERN, SYNONYMS)


_NEGATIONS = ("do", "does", "did", "is", "are", "was", "were", "have", "has", "had", "would", "could",
              "should", "must", "need")
_PRONOUN_VERBS = {"am": "m", "are": "re", "is": "s", "have": "ve", "will": "ll", "would": "d"}
_PRONOUNS = {"i": ("am", "have", "will", "would"), "you": ("are", "have", "will", "would"),
             "we": ("are", "have", "will", "would"), "they": ("are", "have", "will", "would"),
             "he": ("is", "will", "would"), "she": ("is", "will", "would"), "it": ("is", "will"),
             "that": ("is",), "there": ("is",), "what": ("is",)}
CONTRACTIONS: dict[str, str] = {  # contracted -> expanded (the most common reading of 's and 'd)
    **{f"{verb}n't": f"{verb} not" for verb in _NEGATIONS},
    "won't": "will not", "can't": "cannot", "shan't": "shall not", "let's": "let us",
    **{f"{pronoun}'{_PRONOUN_VERBS[verb]}": f"{pronoun} {verb}"
       for pronoun, verbs in _PRONOUNS.items() for verb in verbs},
}
_CONTRACTION_MAP = {**CONTRACTIONS, **{expanded: short for short, expanded in CONTRACTIONS.items()},
                    "can not": "can't"}
_CONTRACTION_PATTERN = _lexicon_pattern(_CONTRACTION_MAP)


def contraction(text: str, severity: float, rng: np.random.Generator) -> str:
    """Expand contractions and contract their long forms: "didn't" <-> "did not", "it's" <-> "it is".

    Eligible units: the occurrences of a form in :data:`CONTRACTIONS` (either side, whole words,
    case-insensitive, straight or curly apostrophe); each touched one flips to the other side in
    the casing of the original. Ambiguous contractions expand to their most common reading
    ("it's" -> "it is", "I'd" -> "I would").
    """
    return _lexicon_substitute(text, severity, rng, _CONTRACTION_PATTERN, _CONTRACTION_MAP)


_GENDER_PAIRS = (
    ("he", "she"), ("himself", "herself"), ("man", "woman"), ("men", "women"), ("boy", "girl"),
    ("boys", "girls"), ("father", "mother"), ("dad", "mom"), ("son", "daughter"), ("sons", "daughters"),
    ("brother", "sister"), ("brothers", "sisters"), ("husband", "wife"), ("boyfriend", "girlfriend"),
    ("uncle", "aunt"), ("nephew", "niece"), ("grandfather", "grandmother"), ("king", "queen"),
    ("gentleman", "lady"), ("gentlemen", "ladies"), ("male", "female"), ("mr", "mrs"), ("sir", "madam"),
    ("actor", "actress"), ("waiter", "waitress"),
    # typical first names
    ("john", "mary"), ("michael", "sarah"), ("david", "emily"), ("james", "emma"), ("robert", "linda"),
)
_GENDER_ONE_WAY = (("his", "her"), ("her", "his"), ("him", "her"), ("hers", "his"))  # "her" is ambiguous
GENDER_SWAPS: dict[str, str] = _lexicon(_GENDER_PAIRS, _GENDER_ONE_WAY)
_GENDER_PATTERN = _lexicon_pattern(GENDER_SWAPS)


def identity_swap(text: str, severity: float, rng: np.random.Generator) -> str:
    """Swap gendered words and first names with their counterpart: she <-> he, woman <-> man, Mary <-> John.

    Eligible units: the whole-word occurrences of a word in :data:`GENDER_SWAPS` (case-insensitive,
    case kept). "her" is both object and possessive and always becomes "his"; "his" and "him"
    become "her". Severity 1 gives the full counterfactual text; lower severities mix the genders.
    """
    return _lexicon_substitute(text, severity, rng, _GENDER_PATTERN, GENDER_SWAPS)


# -- registry ----------------------------------------------------------------------------------------

PERTURBATIONS: dict[str, Perturbation] = {
    "keyboard_typo": keyboard_typo,
    "char_insert": char_insert,
    "char_delete": char_delete,
    "char_transpose": char_transpose,
    "casing": casing,
    "punctuation_add": punctuation_add,
    "punctuation_strip": punctuation_strip,
    "extra_whitespace": extra_whitespace,
    "word_dropout": word_dropout,
    "word_swap": word_swap,
    "synonym": synonym,
    "contraction": contraction,
    "identity_swap": identity_swap,
}


# -- readable severities and the headline table -------------------------------------------------------

LETTERS_PER_WORD = 4.8  # English word tokens (Norvig 2013: 4.79)
# eligible units per word of the character ops: deletion spares, and transposition needs, a first letter
_UNITS_PER_WORD = {"keyboard_typo": LETTERS_PER_WORD, "char_insert": LETTERS_PER_WORD,
                   "char_delete": LETTERS_PER_WORD - 1, "char_transpose": LETTERS_PER_WORD - 1}
CHARACTER_OPS = tuple(_UNITS_PER_WORD)
WORD_OPS = ("casing", "punctuation_add", "extra_whitespace", "word_dropout", "word_swap")
SEVERITY_UNITS: dict[str, str] = {
    "keyboard_typo": "letters", "char_insert": "letters", "char_delete": "letters and digits",
    "char_transpose": "adjacent letter pairs", "punctuation_strip": "punctuation marks",
    "casing": "words", "punctuation_add": "words", "extra_whitespace": "gaps between words",
    "word_dropout": "words", "word_swap": "words", "synonym": "lexicon words",
    "contraction": "contractions and their long forms", "identity_swap": "gendered words and names",
}
# op -> severity of the headline figure, None for curves only (see the module docstring)
HEADLINE_SEVERITY: dict[str, float | None] = {
    **dict.fromkeys(CHARACTER_OPS, 0.05),
    "casing": 1.0, "punctuation_strip": 1.0, "extra_whitespace": 1.0, "punctuation_add": 0.1,
    "synonym": 1.0, "contraction": 1.0, "identity_swap": 1.0,
    "word_dropout": None, "word_swap": None,
}


def describe_severity(op: str, severity: float) -> str:
    """``severity`` of ``op`` in readable terms: the share of its units, and per word where it applies.

    Examples
    --------
    >>> describe_severity("keyboard_typo", 0.05)
    '5% of letters ≈ 0.24 edits per word (one every 4.2 words)'
    >>> describe_severity("word_dropout", 0.1)
    '10% of words (one in 10)'
    >>> describe_severity("synonym", 1.0)
    'every match among lexicon words'
    """
    severity = _check_severity(severity)
    unit = SEVERITY_UNITS.get(op, "the op's units")
    if severity == 0:
        return "unchanged"
    if op in CHARACTER_OPS:
        per_word = severity * _UNITS_PER_WORD[op]
        every = f" (one every {1 / per_word:.2g} words)" if per_word < 1 else ""
        return f"{severity:.0%} of {unit} ≈ {per_word:.2g} edits per word{every}"
    if op in WORD_OPS or op == "punctuation_strip":
        return f"all {unit}" if severity == 1 else f"{severity:.0%} of {unit} (one in {1 / severity:.2g})"
    return f"every match among {unit}" if severity == 1 else f"{severity:.0%} of {unit}"


def headline_severities(ops: Iterable[str], overrides: Mapping[str, float | None] | None = None
                        ) -> dict[str, float | None]:
    """The severity at which each op enters the headline worst drop (``None``: curves only).

    ``overrides`` (a suite's ``robustness.headline``) wins over :data:`HEADLINE_SEVERITY`, with 0 or
    ``None`` for curves only; an op in neither (a registered custom op) has ``None`` until the
    suite states a severity for it.

    Examples
    --------
    >>> headline_severities(["keyboard_typo", "word_dropout"], {"word_dropout": 0.1})
    {'keyboard_typo': 0.05, 'word_dropout': 0.1}
    """
    overrides = dict(overrides or {})
    out = {}
    for op in ops:
        value = overrides[op] if op in overrides else HEADLINE_SEVERITY.get(op)
        if value is not None and not 0 <= float(value) <= 1:
            raise ValueError(f"headline severity of {op!r} must be in (0, 1], or 0 for curves only; "
                             f"got {value}")
        out[op] = None if value is None or float(value) == 0 else float(value)
    return out


def register_perturbation(name: str, fn: Perturbation, *, replace: bool = False) -> Perturbation:
    """Add ``fn`` to :data:`PERTURBATIONS` under ``name`` (an existing name needs ``replace=True``)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string; got {name!r}")
    if not callable(fn):
        raise ValueError(f"fn must be callable as fn(text, severity, rng); got {type(fn).__name__}")
    if name in PERTURBATIONS and not replace:
        raise ValueError(f"perturbation {name!r} is already registered; pass replace=True to override it")
    PERTURBATIONS[name] = fn
    return fn


def get_perturbation(name: str) -> Perturbation:
    """The registered op called ``name``."""
    try:
        return PERTURBATIONS[name]
    except KeyError:
        known = ", ".join(sorted(PERTURBATIONS))
        raise ValueError(f"unknown perturbation {name!r}; known: {known}") from None


def perturb_texts(texts: Sequence[str], op: str | Perturbation, severity: float, *, seed: int) -> list[str]:
    """Apply one op to every text with a generator of its own, ``np.random.default_rng(seed)``.

    The generator is created per call and used on the texts in order, so the result depends only
    on ``(texts, op, severity, seed)``, not on any other random state.
    """
    if isinstance(texts, str):
        raise ValueError("texts must be a sequence of strings, not a single string")
    if not all(isinstance(t, str) for t in texts):
        raise ValueError("texts must contain only strings")
    _check_severity(severity)
    fn = get_perturbation(op) if isinstance(op, str) else op
    if not callable(fn):
        raise ValueError(f"op must be a registered name or a callable; got {type(op).__name__}")
    rng = np.random.default_rng(seed)
    return [fn(text, severity, rng) for text in texts]


def changed_mask(texts: Sequence[str], perturbed: Sequence[str]) -> np.ndarray:
    """Boolean mask of the texts an op actually changed (the ``changed`` of ``robustness_report``)."""
    if len(texts) != len(perturbed):
        raise ValueError(f"perturbed must have len(texts) = {len(texts)} entries; got {len(perturbed)}")
    return np.array([a != b for a, b in zip(texts, perturbed, strict=True)], dtype=bool)

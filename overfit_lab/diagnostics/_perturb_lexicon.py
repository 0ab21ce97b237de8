"""Lexicon perturbations: synonyms, contractions and identity (gender) swaps, CheckList-style.

Public through :mod:`overfit_lab.diagnostics.perturb`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

from ._perturb_base import _choose, _splice


def _match_case(source: str, replacement: str) -> str:
    """``replacement`` in the casing of ``source``: UPPER (two or more cased letters), Title or lower."""
    cased = [c for c in source if c.isalpha()]
    if len(cased) > 1 and all(c.isupper() for c in cased):
        return replacement.upper()
    if source[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


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

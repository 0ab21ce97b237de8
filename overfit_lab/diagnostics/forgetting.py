"""Forgetting of general knowledge: is the fine-tuned model worse at text outside its task?

Fine-tuning on a narrow task can degrade what the model knew before (catastrophic forgetting:
McCloskey & Cohen 1989; Kirkpatrick et al. 2017). For a language model, a label-free measure
is its perplexity on a *general-text probe*, text that is not in the task's domain, before and
after fine-tuning:

``PPL = exp(Σ_t NLL_t / T)``, the exponential of the mean negative log-likelihood (nats) of the
``T`` predicted tokens of the whole probe (a micro-average over tokens, not a mean of
per-document perplexities), and

``forgetting_ratio = PPL_after / PPL_before = exp(CE_after - CE_before)``

with ``CE`` the mean per-token cross-entropy. 1 means no change; above 1 the model got worse at
general text (``log`` of the ratio is the rise in nats per token), below 1 it got better.

* ``forgetting_ratio``: the ratio from the two perplexities;
* ``probe_texts``: the documents of a probe file, by default the packaged
  ``overfit_lab/data/general_prose.txt``: about 130 one- or two-sentence factual paragraphs
  (geography, natural science, history of technology, cooking methods, sports rules, weather,
  everyday objects, the arts), written for this package, with none of the review data's
  sentiment adjectives, names or pronoun patterns.

Both perplexities must come from the same probe with the same tokenizer (perplexities over
different tokenizations are not comparable), with no training on the probe in between.

References
----------
McCloskey & Cohen, "Catastrophic Interference in Connectionist Networks: The Sequential
Learning Problem", Psychology of Learning and Motivation 24, 109-165 (1989). Kirkpatrick et al.,
"Overcoming catastrophic forgetting in neural networks", PNAS 114(13), 3521-3526 (2017).
Jelinek, Mercer, Bahl & Baker, "Perplexity: a measure of the difficulty of speech recognition
tasks", J. Acoust. Soc. Am. 62, S63 (1977).
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

from ..errors import OverfitLabError
from ._validation import check_positive_int

__all__ = ["forgetting_ratio", "probe_texts"]

PROBE_KEY = "diagnostics.forgetting.probe"
"""The ``key`` of the :class:`~overfit_lab.errors.OverfitLabError` a bad probe file raises."""


def _check_perplexity(value: float, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}") from None
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a finite number > 0; got {value}")
    return number


def forgetting_ratio(perplexity_before: float, perplexity_after: float) -> float:
    """Perplexity on a general-text probe after fine-tuning divided by perplexity before.

    ``PPL_after / PPL_before``, with ``PPL = exp(Σ_t NLL_t / T)`` over the ``T`` predicted tokens
    of the whole probe. Equivalently ``exp(CE_after - CE_before)``, ``CE`` the mean per-token
    cross-entropy in nats. 1 = no change; above 1 the model got worse at general text
    (forgetting), below 1 better. Both perplexities must be over the same probe and tokenizer.

    Parameters
    ----------
    perplexity_before : float
        Perplexity of the model before fine-tuning (the pretrained model), finite and > 0.
    perplexity_after : float
        Perplexity of the fine-tuned model on the same probe, finite and > 0.

    Returns
    -------
    float
        The ratio, > 0.

    References
    ----------
    McCloskey & Cohen, "Catastrophic Interference in Connectionist Networks: The Sequential
    Learning Problem", Psychology of Learning and Motivation 24 (1989). Kirkpatrick et al.,
    "Overcoming catastrophic forgetting in neural networks", PNAS 114(13) (2017).

    Examples
    --------
    >>> forgetting_ratio(20.0, 25.0)  # 25% higher perplexity on general text
    1.25
    >>> round(math.log(forgetting_ratio(20.0, 25.0)), 4)  # +0.2231 nats per token
    0.2231
    """
    before = _check_perplexity(perplexity_before, "perplexity_before")
    after = _check_perplexity(perplexity_after, "perplexity_after")
    return after / before


def probe_texts(path: str | Path | None = None, *, max_documents: int | None = None) -> list[str]:
    """The documents of a general-text probe file: one per non-empty line, stripped.

    Parameters
    ----------
    path : str or Path, optional
        A UTF-8 text file with one document per line (blank lines are skipped). ``None`` reads
        the packaged probe ``overfit_lab/data/general_prose.txt`` (about 130 factual paragraphs
        of 15-40 words, outside the built-in review domain).
    max_documents : int, optional
        Keep only the first ``max_documents`` documents (``>= 1``); all by default.

    Returns
    -------
    list of str
        The documents in file order.

    Raises
    ------
    OverfitLabError
        If the file is missing or unreadable, not UTF-8, or has no non-empty line (key
        ``diagnostics.forgetting.probe``).
    ValueError
        If ``max_documents`` is not a positive integer.

    Examples
    --------
    >>> documents = probe_texts(max_documents=2)
    >>> len(documents), documents[0].split()[:3]
    (2, ['The', 'Nile', 'flows'])
    """
    if max_documents is not None:
        max_documents = check_positive_int(max_documents, "max_documents")
    fix = "give a UTF-8 text file with one document per line, or path=None for the packaged probe."
    if path is None:
        source = resources.files("overfit_lab.data") / "general_prose.txt"
        where: str | Path = "overfit_lab/data/general_prose.txt"
    else:
        source = where = Path(path)
    try:
        raw = source.read_bytes()
    except OSError as exc:
        raise OverfitLabError(f"cannot read the probe file ({exc.strerror or type(exc).__name__}).",
                              file=where, key=PROBE_KEY, fix=fix) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise OverfitLabError(f"the probe file is not UTF-8 (byte {exc.start}).", file=where, key=PROBE_KEY,
                              fix=fix) from None
    documents = [line.strip() for line in text.splitlines() if line.strip()]
    if not documents:
        raise OverfitLabError("the probe file has no non-empty line.", file=where, key=PROBE_KEY, fix=fix)
    return documents[:max_documents]

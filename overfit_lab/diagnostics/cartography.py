"""Training dynamics: which training examples are easy, ambiguous, hard to learn or mislabeled?

The input is ``probabilities``, shape ``(E, n, K)``: the model's class probabilities ``p^e_ik``
for every training example ``i`` after each epoch ``e = 1..E`` (computed in eval mode, without
dropout), and ``labels``, the ``n`` labels the model was *trained* on (possibly noisy), ``y_i``.
The prediction at epoch ``e`` is ``argmax_k p^e_ik`` (the first class on ties) and the example is
correct at ``e`` when it equals ``y_i``.

* ``training_dynamics``: per-example confidence, variability, correctness (Dataset Cartography,
  Swayamdipta et al. 2020), margin (the probability version of the Area Under the Margin,
  Pleiss et al. 2020), the epoch from which it stays learned, and its forgetting events
  (Toneva et al. 2019);
* ``data_map_regions``: "easy-to-learn", "ambiguous" or "hard-to-learn" by rank, as the paper
  selects its 33 % subsets;
* ``mislabel_scores``: higher = more likely mislabeled (``-margin``);
* ``memorised``: learned only after the epoch of lowest validation loss;
* ``mislabel_detection``: ROC AUC and precision of such scores against the rows known flipped.

Examples whose labels were flipped tend to be hard to learn: a low probability of the (wrong)
training label, with the model preferring the true class for most epochs (negative margin),
until it memorises them late in training, if ever.

References
----------
Swayamdipta, Schwartz, Lourie, Wang, Hajishirzi, Smith & Choi, "Dataset Cartography: Mapping and
Diagnosing Datasets with Training Dynamics", EMNLP 2020 (reference code: github.com/allenai/
cartography, ``cartography/selection/train_dy_filtering.py``). Pleiss, Zhang, Elenberg &
Weinberger, "Identifying Mislabeled Data using the Area Under the Margin Ranking", NeurIPS 2020.
Toneva, Sordoni, Combes, Trischler, Bengio & Gordon, "An Empirical Study of Example Forgetting
during Deep Neural Network Learning", ICLR 2019.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from ._validation import check_class_labels, check_open_unit_interval, check_positive_int, check_proba

__all__ = [
    "DATA_MAP_FRACTION",
    "PROBABILITY_TOLERANCE",
    "data_map_regions",
    "memorised",
    "mislabel_detection",
    "mislabel_scores",
    "training_dynamics",
]

PROBABILITY_TOLERANCE = 1e-4
"""Largest ``|Σ_k p^e_ik - 1|`` accepted for a row of ``probabilities`` (saved float32 outputs)."""

DATA_MAP_FRACTION = 0.33
"""Share of examples in each of the paper's data-map selections (its "33 %")."""

_REGIONS = ("hard-to-learn", "ambiguous", "easy-to-learn")


def _check_dynamics_input(probabilities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(probabilities (E, n, K) float64, labels (n,) int)``."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 3:
        raise ValueError(f"probabilities must be an (epochs, n, classes) array; "
                         f"got shape {probabilities.shape}")
    epochs, n, k = probabilities.shape
    if epochs < 1:
        raise ValueError(f"probabilities must hold at least 1 epoch; got shape {probabilities.shape}")
    if n < 1 or k < 2:
        raise ValueError(f"probabilities must hold n >= 1 examples and classes >= 2; "
                         f"got shape {probabilities.shape}")
    check_proba(probabilities.reshape(epochs * n, k), name="probabilities", atol=PROBABILITY_TOLERANCE)
    labels = check_class_labels(labels, n=n, n_classes=k, name="labels", rows_of="probabilities[0]")
    return probabilities, labels


def _check_columns(dynamics: pd.DataFrame, columns: tuple[str, ...]) -> None:
    if not isinstance(dynamics, pd.DataFrame):
        raise ValueError(f"dynamics must be a DataFrame from training_dynamics; "
                         f"got {type(dynamics).__name__}")
    missing = [c for c in columns if c not in dynamics.columns]
    if missing:
        raise ValueError(f"dynamics lacks the column(s) {missing} (use training_dynamics)")
    if len(dynamics) == 0:
        raise ValueError("dynamics must not be empty")


def training_dynamics(probabilities: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Per-example training dynamics over ``E`` epochs: the coordinates of a data map and more.

    With ``g^e_i = p^e_{i,y_i}`` the probability of the training label at epoch ``e`` and
    ``a^e_i = 1[argmax_k p^e_ik = y_i]`` its correctness:

    * ``confidence = (1/E) Σ_e g^e_i`` (Swayamdipta et al., Eq. 1);
    * ``variability = sqrt((1/E) Σ_e (g^e_i - confidence_i)²)``, the population standard
      deviation (``np.std``, as the reference code; the paper's Eq. 2 prints the same sum over
      ``E``), hence 0 with a single epoch;
    * ``correctness = (1/E) Σ_e a^e_i``, the share of epochs predicted correctly (the reference
      code stores the count ``Σ_e a^e_i``);
    * ``margin = (1/E) Σ_e [g^e_i - max_{k ≠ y_i} p^e_ik]``, in ``[-1, 1]``: negative when the model
      consistently prefers another class. Pleiss et al.'s AUM averages the same margin of the
      *logits* over training iterations; on probabilities it is bounded and needs no logits;
    * ``learned_epoch``: the first epoch ``e`` (1-based) with ``a^t_i = 1`` for every ``t >= e``;
      NaN when the example is wrong at the last epoch;
    * ``forgotten``: the number of forgetting events ``Σ_{e<E} 1[a^e_i = 1, a^{e+1}_i = 0]``
      (Toneva et al., who record them at each mini-batch presentation; here once per epoch). An
      example never predicted correctly has 0 (Toneva et al. count it as forgotten infinitely
      often, the reference code as 1000): tell it apart by ``correctness == 0``.

    Parameters
    ----------
    probabilities : ndarray of shape (E, n, K)
        Class probabilities of each training example after each epoch, ``E >= 1``, ``K >= 2``;
        every row sums to 1 within :data:`PROBABILITY_TOLERANCE`.
    labels : ndarray of shape (n,)
        Integer labels in ``0..K-1`` the model was trained on (the noisy ones, if noise was
        injected).

    Returns
    -------
    pandas.DataFrame
        One row per example (index ``0..n-1``), columns ``confidence``, ``variability``,
        ``correctness``, ``margin``, ``learned_epoch`` (float, NaN = not learned) and
        ``forgotten`` (int).

    References
    ----------
    Swayamdipta et al., "Dataset Cartography", EMNLP 2020 (Section 2). Pleiss et al.,
    "Identifying Mislabeled Data using the Area Under the Margin Ranking", NeurIPS 2020
    (Section 3). Toneva et al., "An Empirical Study of Example Forgetting during Deep Neural
    Network Learning", ICLR 2019 (Section 3).

    Examples
    --------
    Example 0 (label 0) is learned at epoch 2; example 1 (label 1) is right at epoch 1, then
    forgotten:

    >>> p = np.array([[[0.4, 0.6], [0.2, 0.8]],
    ...               [[0.7, 0.3], [0.7, 0.3]],
    ...               [[0.9, 0.1], [0.8, 0.2]]])
    >>> training_dynamics(p, np.array([0, 1])).round(4)
       confidence  variability  correctness  margin  learned_epoch  forgotten
    0      0.6667       0.2055       0.6667  0.3333            2.0          0
    1      0.4333       0.2625       0.3333 -0.1333            NaN          1
    """
    probabilities, labels = _check_dynamics_input(probabilities, labels)
    epochs, n, _ = probabilities.shape
    rows = np.arange(n)
    gold = probabilities[:, rows, labels]  # (E, n)
    is_gold = np.zeros(probabilities.shape[1:], dtype=bool)
    is_gold[rows, labels] = True
    best_other = np.where(is_gold, -np.inf, probabilities).max(axis=2)
    correct = probabilities.argmax(axis=2) == labels  # (E, n)

    wrong = ~correct
    last_wrong = epochs - 1 - wrong[::-1].argmax(axis=0)  # 0-based; meaningless where never wrong
    learned_epoch = np.where(wrong.any(axis=0), last_wrong + 2, 1).astype(np.float64)
    learned_epoch[wrong[-1]] = np.nan
    return pd.DataFrame({
        "confidence": gold.mean(axis=0),
        "variability": gold.std(axis=0),
        "correctness": correct.mean(axis=0),
        "margin": (gold - best_other).mean(axis=0),
        "learned_epoch": learned_epoch,
        "forgotten": (correct[:-1] & wrong[1:]).sum(axis=0).astype(np.int64),
    })


def data_map_regions(dynamics: pd.DataFrame, *, fraction: float = DATA_MAP_FRACTION) -> pd.Series:
    """Assign each example to a data-map region by rank of confidence and variability.

    With ``m = round(fraction · n)`` (halves rounded up):

    1. "hard-to-learn": the ``m`` examples of lowest ``confidence``;
    2. otherwise "ambiguous": among the ``m`` examples of highest ``variability`` (ranked over
       all ``n`` examples, so fewer than ``m`` remain when some of them are hard-to-learn);
    3. otherwise "easy-to-learn".

    Swayamdipta et al. train on the 33 % most ambiguous (highest variability), easy-to-learn
    (highest confidence) or hard-to-learn (lowest confidence) examples; the default ``fraction``
    is that 33 %. Their selections overlap; this rule makes the regions a partition, with the
    hard-to-learn region taking precedence (its examples have low confidence, hence little room
    to vary). Ties are broken by row position: of equal values, the earlier row ranks lower in
    confidence and higher in variability. With one epoch every variability is 0, so the
    "ambiguous" region is the first ``m`` rows less those hard-to-learn.

    Parameters
    ----------
    dynamics : pandas.DataFrame
        Output of :func:`training_dynamics` (columns ``confidence`` and ``variability``).
    fraction : float, default 0.33
        Share of examples in each selection, in ``(0, 1)``.

    Returns
    -------
    pandas.Series
        Named ``region``, with the index of ``dynamics``: "hard-to-learn", "ambiguous" or
        "easy-to-learn".

    References
    ----------
    Swayamdipta et al., "Dataset Cartography: Mapping and Diagnosing Datasets with Training
    Dynamics", EMNLP 2020 (Sections 2.1 and 3: 33 % selections).

    Examples
    --------
    >>> dynamics = pd.DataFrame({"confidence": [0.9, 0.2, 0.6, 0.95, 0.5, 0.8],
    ...                          "variability": [0.05, 0.1, 0.4, 0.02, 0.3, 0.1]})
    >>> data_map_regions(dynamics).tolist()  # m = round(0.33 * 6) = 2
    ['easy-to-learn', 'hard-to-learn', 'ambiguous', 'easy-to-learn', 'hard-to-learn', 'easy-to-learn']
    """
    _check_columns(dynamics, ("confidence", "variability"))
    fraction = check_open_unit_interval(fraction, "fraction")
    confidence = dynamics["confidence"].to_numpy(dtype=np.float64)
    variability = dynamics["variability"].to_numpy(dtype=np.float64)
    if not (np.all(np.isfinite(confidence)) and np.all(np.isfinite(variability))):
        raise ValueError("dynamics confidence and variability must be finite")
    n = len(dynamics)
    m = int(np.floor(fraction * n + 0.5))
    position = np.arange(n)
    hard = np.zeros(n, dtype=bool)
    hard[np.lexsort((position, confidence))[:m]] = True
    variable = np.zeros(n, dtype=bool)
    variable[np.lexsort((position, -variability))[:m]] = True
    region = np.where(hard, _REGIONS[0], np.where(variable, _REGIONS[1], _REGIONS[2]))
    return pd.Series(region, index=dynamics.index, name="region", dtype=object)


def mislabel_scores(dynamics: pd.DataFrame) -> np.ndarray:
    """Mislabel score ``-margin``: higher = more likely mislabeled.

    ``-margin_i = (1/E) Σ_e [max_{k ≠ y_i} p^e_ik - p^e_{i,y_i}]``, in ``[-1, 1]``. A mislabeled
    example is hard to learn *and* the model confidently prefers another class (its true one)
    for most epochs, so its margin is strongly negative (Pleiss et al.'s AUM ranking, on
    probabilities). A merely ambiguous example has a margin near 0.

    Parameters
    ----------
    dynamics : pandas.DataFrame
        Output of :func:`training_dynamics` (column ``margin``).

    Returns
    -------
    ndarray of shape (n,)
        The scores, in the row order of ``dynamics``.

    References
    ----------
    Pleiss et al., "Identifying Mislabeled Data using the Area Under the Margin Ranking",
    NeurIPS 2020.

    Examples
    --------
    >>> mislabel_scores(pd.DataFrame({"margin": [0.8, -0.6, 0.1]})).tolist()
    [-0.8, 0.6, -0.1]
    """
    _check_columns(dynamics, ("margin",))
    return -dynamics["margin"].to_numpy(dtype=np.float64)


def memorised(dynamics: pd.DataFrame, best_epoch: int) -> np.ndarray:
    """Examples learned only after ``best_epoch``: ``learned_epoch > best_epoch``.

    ``best_epoch`` is the 1-based epoch of lowest validation loss (for example
    :func:`overfit_lab.diagnostics.generalization.best_epoch`), after which validation loss rose:
    an example that the model gets right (for good) only after it was memorised, not
    generalised to. Examples never learned (``learned_epoch`` NaN) are not memorised.

    Parameters
    ----------
    dynamics : pandas.DataFrame
        Output of :func:`training_dynamics` (column ``learned_epoch``).
    best_epoch : int
        1-based epoch of lowest validation loss, ``>= 1``.

    Returns
    -------
    ndarray of bool, shape (n,)

    Examples
    --------
    >>> memorised(pd.DataFrame({"learned_epoch": [1.0, 5.0, np.nan, 3.0]}), best_epoch=3).tolist()
    [False, True, False, False]
    """
    _check_columns(dynamics, ("learned_epoch",))
    best_epoch = check_positive_int(best_epoch, "best_epoch")
    learned = dynamics["learned_epoch"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.asarray(learned > best_epoch, dtype=bool)  # NaN compares False


def mislabel_detection(scores: np.ndarray, flipped: np.ndarray) -> dict[str, float | int]:
    """How well ``scores`` find the training examples whose label was flipped.

    * ``auc``: ROC AUC of ``scores`` for flipped (positive) against not flipped,
      ``P(s_f > s_c) + ½ P(s_f = s_c)`` (``sklearn.metrics.roc_auc_score``); 0.5 = chance.
      NaN when ``flipped`` is all False or all True;
    * ``precision_at_noise``: the share of flipped examples among the ``k`` highest scores,
      ``k`` = the number flipped (so it equals the recall at ``k``; chance level ``k/n``). Ties
      are broken by a stable sort: of equal scores, the earlier row ranks higher. NaN when
      ``k = 0``;
    * ``k``: the number of flipped examples.

    Parameters
    ----------
    scores : ndarray of shape (n,)
        Finite scores, higher = more likely mislabeled (e.g. :func:`mislabel_scores`).
    flipped : ndarray of bool, shape (n,)
        True where the training label differs from the clean one (0/1 accepted).

    Returns
    -------
    dict
        ``{"auc": float, "precision_at_noise": float, "k": int}``.

    References
    ----------
    Pleiss et al., "Identifying Mislabeled Data using the Area Under the Margin Ranking",
    NeurIPS 2020 (Section 4: precision/recall and AUC of the identified mislabeled samples).

    Examples
    --------
    >>> result = mislabel_detection(np.array([0.9, 0.1, 0.4, 0.7, 0.2]),
    ...                             np.array([True, False, False, False, True]))
    >>> round(result["auc"], 6), result["precision_at_noise"], result["k"]
    (0.666667, 0.5, 2)
    """
    scores = np.asarray(scores, dtype=np.float64)
    flipped = np.asarray(flipped)
    if scores.ndim != 1 or scores.size == 0:
        raise ValueError(f"scores must be a non-empty 1-D array; got shape {scores.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite")
    if flipped.shape != scores.shape:
        raise ValueError(f"flipped must have the shape of scores {scores.shape}; got {flipped.shape}")
    if flipped.dtype != bool:
        if not np.all(np.isin(flipped, (0, 1))):
            raise ValueError("flipped must hold booleans (or 0/1)")
        flipped = flipped.astype(bool)
    k = int(flipped.sum())
    auc = float(roc_auc_score(flipped, scores)) if 0 < k < flipped.size else float("nan")
    top = np.argsort(-scores, kind="stable")[:k]
    precision = float(flipped[top].mean()) if k else float("nan")
    return {"auc": auc, "precision_at_noise": precision, "k": k}

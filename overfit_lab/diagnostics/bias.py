"""Subgroup metrics, bias amplification and counterfactual identity swaps.

``groups`` holds one group label (for instance ``"female"``/``"male"``) per example. The
disparity metrics binarize labels as ``y == positive_label``:

* ``group_metrics``: accuracy, selection rate, TPR, FPR and counts per group (fairlearn
  ``MetricFrame``), a rate set to NaN where its group is too small;
* ``demographic_parity`` / ``demographic_parity_difference``: ``max_g P(ŷ=1 | g) - min_g
  P(ŷ=1 | g)`` with Newcombe's interval for the two groups it names;
* ``equalized_odds`` / ``equalized_odds_difference``: the larger of the TPR and FPR
  between-group differences, with a Bonferroni pair of Newcombe intervals;
* ``wilson_interval`` and ``newcombe_interval``: score intervals for a proportion and for a
  difference of two independent proportions;
* ``bias_amplification_zhao`` (Zhao et al. 2017) and ``directional_bias_amplification``
  (Wang & Russakovsky 2021): does the model exaggerate label/group correlations? Positive is
  amplification, 0 none, negative a reduction; ``directional_bias_amplification_multilabel``
  the same on binary attributes that may hold together;
* ``group_indicators``: a group column as binary attributes, one per value (a multi-valued
  column such as ``"black;muslim"`` split on its separator), and ``amplification_groups``: the
  groups seen at least ``min_group_size`` times in the training and the evaluation data, which
  bias amplification can use (the others are left out as ``"not in training"`` or ``"too small"``);
* ``counterfactual_flips`` and ``swap_identity_terms``: how predictions move when identity
  words are swapped (she ↔ he, ...).

A rate is only computed for a group with at least ``min_group_size`` examples in its
denominator (examples for the selection rate and accuracy, positives for the TPR, negatives
for the FPR; default :data:`MIN_GROUP_SIZE`). Smaller groups are *too small*: their rate is
NaN and they are left out of the differences, which are NaN when fewer than two groups
remain. (fairlearn gives an empty rate the value 0, so a group with one positive can make the
equalized odds difference 1.0.) With every group large enough the differences equal
fairlearn's ``demographic_parity_difference`` and ``equalized_odds_difference``.

A multi-valued group column (an example mentioning several identities, ``"black;muslim"``) is
split by :func:`group_indicators` into one binary attribute per value. Subgroup rates are then
per value, over the examples having it (pass those rows with the value as their group); the
subgroups overlap, so Newcombe's intervals, which assume independent samples, are approximate
for pairs that share examples. BiasAmp→ is defined for such attributes
(:func:`directional_bias_amplification_multilabel`); Zhao's BiasAmp, whose ``b(o, g)`` is a
share over mutually exclusive groups, is not.

The functions live in private modules, one per family (``_bias_groups``, ``_bias_fairness``,
``_bias_amplification``, ``_bias_counterfactual``); import them from here.
"""

from ._bias_amplification import (
    bias_amplification_zhao,
    directional_bias_amplification,
    directional_bias_amplification_multilabel,
)
from ._bias_counterfactual import GENDER_PAIRS, counterfactual_flips, swap_identity_terms
from ._bias_fairness import (
    GroupDifference,
    demographic_parity,
    demographic_parity_difference,
    equalized_odds,
    equalized_odds_difference,
)
from ._bias_groups import (
    MIN_GROUP_SIZE,
    RATES,
    amplification_groups,
    group_indicators,
    group_metrics,
    newcombe_interval,
    wilson_interval,
)

__all__ = [
    "GENDER_PAIRS",
    "MIN_GROUP_SIZE",
    "RATES",
    "GroupDifference",
    "amplification_groups",
    "bias_amplification_zhao",
    "counterfactual_flips",
    "demographic_parity",
    "demographic_parity_difference",
    "directional_bias_amplification",
    "directional_bias_amplification_multilabel",
    "equalized_odds",
    "equalized_odds_difference",
    "group_indicators",
    "group_metrics",
    "newcombe_interval",
    "swap_identity_terms",
    "wilson_interval",
]

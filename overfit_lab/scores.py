"""Per-cell scores: one row per finished cell, one column per headline metric.

The generalization figures are read at the grid's largest epoch value, the diagnostics at the
cell's final checkpoint (the same model). :data:`SCORES` names each score, says where it comes
from and which direction is better; statistics, reports and checks all read scores from here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from .rows import Checkpoint

CELL_KEYS = ["cell_id", "train_size", "label_noise", "strategy", "seed"]


@dataclass(frozen=True)
class Score:
    """A headline metric: its short label, direction and source."""

    label: str
    higher_is_better: bool | None  # None: no better direction (not compared)
    source: str  # "generalization" (a column of run.generalization) or "diagnostics" (a metric)
    reduce: str = "mean"  # how a diagnostic's rows of one cell reduce to one value
    description: str = ""
    bounds: tuple[float, float] = (-math.inf, math.inf)  # the values the score can take
    tasks: tuple[str, ...] | None = None  # the task types that measure it (None: every one)


UNIT = (0.0, 1.0)
SIGNED_UNIT = (-1.0, 1.0)
POSITIVE = (0.0, math.inf)
AT_LEAST_ONE = (1.0, math.inf)  # a perplexity
RELATIVE_CHANGE = (-1.0, math.inf)
CLASSIFIER = ("sequence-classification",)
LANGUAGE_MODEL = ("causal-lm",)

SCORES: dict[str, Score] = {
    "test_accuracy": Score("test acc", True, "generalization", description="accuracy on the test split "
                           "(a causal LM: next-token accuracy)", bounds=UNIT),
    "validation_accuracy": Score("val acc", True, "generalization", description="accuracy on validation "
                                 "(a causal LM: next-token accuracy)", bounds=UNIT),
    "test_macro_f1": Score("test F1", True, "generalization", description="macro-F1 on the test split",
                           bounds=UNIT, tasks=CLASSIFIER),
    "gap_accuracy": Score("acc gap", False, "generalization",
                          description="train - validation accuracy", bounds=SIGNED_UNIT),
    "gap_loss": Score("loss gap", False, "generalization", description="validation - train loss"),
    "worst_robustness_drop": Score("worst drop", False, "diagnostics", "max",
                                   "largest accuracy drop over the perturbation ops, each at its headline "
                                   "severity (a maximum of noisy drops: biased upward)", SIGNED_UNIT,
                                   tasks=CLASSIFIER),
    "bias_amplification": Score("bias amp", False, "diagnostics", "mean",
                                "directional BiasAmp→ (attribute → task; direction of each association "
                                "from the test split's true labels), mean over group columns; 0 = none",
                                SIGNED_UNIT, tasks=CLASSIFIER),
    "counterfactual_flip_rate": Score("cf flips", False, "diagnostics", "mean",
                                      "share of predictions flipped by identity swaps", UNIT,
                                      tasks=CLASSIFIER),
    "ece": Score("ECE", False, "diagnostics", "mean", "expected calibration error", UNIT, tasks=CLASSIFIER),
    "membership_advantage": Score("MIA adv", False, "diagnostics", "mean",
                                  "loss-threshold membership inference advantage (TPR - FPR, threshold "
                                  "cross-fitted), training rows vs as many unused training rows "
                                  "(else test rows); chance level 0",
                                  SIGNED_UNIT),
    # the population CKA lies in [0, 1]; its debiased estimate can stray slightly outside
    "mean_cka": Score("mean CKA", True, "diagnostics", "mean",
                      "linear CKA (debiased) with the pretrained model, mean over layers that training "
                      "could change", UNIT),
    "mean_alpha": Score("alpha", None, "diagnostics", "mean", "mean power-law exponent of weight spectra",
                        POSITIVE),
    "worst_slice_gap": Score("slice gap", False, "diagnostics", "mean",
                             "how much worse than the rest of the test split its worst weak slice is "
                             "(accuracy; a causal LM: mean token loss, nats); 0 when no slice is worse by "
                             "more than the tolerance with a corrected p below alpha", POSITIVE),
    "test_perplexity": Score("test PPL", False, "generalization", description="perplexity on the test split "
                             "(exp of the mean token loss)", bounds=AT_LEAST_ONE, tasks=LANGUAGE_MODEL),
    "perplexity_ratio": Score("PPL ratio", False, "generalization",
                              description="validation / train perplexity, exp(gap_loss)", bounds=POSITIVE,
                              tasks=LANGUAGE_MODEL),
    "worst_perplexity_change": Score("PPL change", False, "diagnostics", "max",
                                     "largest relative perplexity increase over the perturbation ops, each "
                                     "at its headline severity (the pretrained model's change on the same "
                                     "texts is stored beside it: a perturbed text is less likely for any "
                                     "model)",
                                     RELATIVE_CHANGE, tasks=LANGUAGE_MODEL),
    "forgetting_ratio": Score("forgetting", False, "diagnostics", "mean",
                              "perplexity on general text after / before fine-tuning; 1 = nothing forgotten",
                              POSITIVE, tasks=LANGUAGE_MODEL),
    "extraction_advantage": Score("extract adv", False, "diagnostics", "mean",
                                  "share of training documents whose greedy continuation of a k-token "
                                  "prefix reproduces the next m tokens, minus the same share on as many "
                                  "non-members; "
                                  "chance level 0", SIGNED_UNIT, tasks=LANGUAGE_MODEL),
}

# Further stored metrics that checks and baselines may name; not in the headline tables, and
# not compared between strategies (so they do not widen the run's multiple-comparison family).
EXTRA_SCORES: dict[str, Score] = {
    # a better fit of the training data is not better in itself: no direction for train metrics
    **{f"{split}_{metric}": Score(f"{split} {metric}", None if split == "train" else higher, "generalization",
                                  description=f"{metric} on the {split} split at the last epoch",
                                  bounds=POSITIVE if metric == "loss" else UNIT,
                                  tasks=CLASSIFIER if metric == "macro_f1" else None)
       for split in ("train", "validation", "test") for metric, higher in
       (("loss", False), ("accuracy", True), ("macro_f1", True))
       if f"{split}_{metric}" not in ("test_accuracy", "validation_accuracy", "test_macro_f1")},
    **{f"{split}_perplexity": Score(f"{'val' if split == 'validation' else split} PPL",
                                    None if split == "train" else False, "generalization",
                                    description=f"perplexity on the {split} split at the last epoch",
                                    bounds=AT_LEAST_ONE, tasks=LANGUAGE_MODEL)
       for split in ("train", "validation")},
    "gap_macro_f1": Score("F1 gap", False, "generalization", description="train - validation macro-F1",
                          bounds=SIGNED_UNIT, tasks=CLASSIFIER),
    "loss_rise": Score("loss rise", False, "generalization",
                       description="relative rise of validation loss after its minimum", bounds=POSITIVE),
    "brier": Score("Brier", False, "diagnostics", description="multiclass Brier score", bounds=(0.0, 2.0),
                   tasks=CLASSIFIER),
    "nll": Score("NLL", False, "diagnostics", description="negative log-likelihood", bounds=POSITIVE,
                 tasks=CLASSIFIER),
    "confidence_wrong": Score("conf wrong", False, "diagnostics",
                              description="mean confidence on wrong predictions", bounds=UNIT,
                              tasks=CLASSIFIER),
    "membership_auc": Score("MIA AUC", False, "diagnostics", description="membership inference ROC AUC",
                            bounds=UNIT),
    "membership_advantage_low": Score("MIA adv low", False, "diagnostics",
                                      description="lower end of the membership advantage's 95% interval",
                                      bounds=SIGNED_UNIT),
    "membership_advantage_high": Score("MIA adv high", False, "diagnostics",
                                       description="upper end of the membership advantage's 95% interval",
                                       bounds=SIGNED_UNIT),
    "membership_advantage_yeom": Score("MIA adv (Yeom)", False, "diagnostics",
                                       description="membership advantage at Yeom's threshold, the mean "
                                                   "training loss; chance level 0", bounds=SIGNED_UNIT),
    "membership_n": Score("MIA n", None, "diagnostics",
                          description="members, and as many non-members, the membership attack compared",
                          bounds=POSITIVE),
    "membership_nonmembers_unused": Score("MIA pool", None, "diagnostics",
                                          description="1 when the non-members were training rows no cell "
                                                      "trained on, 0 when test rows", bounds=UNIT),
    "noise_memorization": Score("noise mem", False, "diagnostics",
                                description="share of flipped training labels reproduced", bounds=UNIT,
                                tasks=CLASSIFIER),
    "demographic_parity_difference": Score("DP diff", False, "diagnostics", "max",
                                           "demographic parity difference (largest over group columns; "
                                           "groups below min_group_size left out)", UNIT, tasks=CLASSIFIER),
    "equalized_odds_difference": Score("EO diff", False, "diagnostics", "max",
                                       "equalized odds difference (largest over group columns; groups "
                                       "below min_group_size positives or negatives left out)", UNIT,
                                       tasks=CLASSIFIER),
    "bias_amplification_zhao": Score("BiasAmp", False, "diagnostics", "mean",
                                     "Zhao et al. BiasAmp against the clean training labels (label "
                                     "noise would show as amplification), mean over group columns",
                                     SIGNED_UNIT, tasks=CLASSIFIER),
    "counterfactual_n": Score("cf n", None, "diagnostics",
                              description="test texts of the subsample with an identity term to swap",
                              bounds=POSITIVE, tasks=CLASSIFIER),
    "counterfactual_abs_change": Score("cf change", False, "diagnostics",
                                       description="mean |change| of P(positive) under identity swaps",
                                       bounds=UNIT, tasks=CLASSIFIER),
    "alpha_flagged": Score("alpha flags", False, "diagnostics",
                           description="weight matrices with alpha < 2 or > 6", bounds=POSITIVE),
    "mean_cka_all": Score("mean CKA (all)", True, "diagnostics", "mean",
                          "linear CKA (debiased) with the pretrained model, mean over every layer "
                          "(frozen layers score 1 by construction, so this rewards freezing)", UNIT),
    "worst_robustness_drop_low": Score("worst drop low", False, "diagnostics",
                                       description="lower end of the worst drop's paired 95% interval "
                                                   "(Newcombe; the chosen op alone)", bounds=SIGNED_UNIT,
                                                   tasks=CLASSIFIER),
    "worst_robustness_drop_high": Score("worst drop high", False, "diagnostics",
                                        description="upper end of the worst drop's paired 95% interval "
                                                    "(Newcombe; the chosen op alone)", bounds=SIGNED_UNIT,
                                                    tasks=CLASSIFIER),
    "worst_perplexity_change_pretrained": Score(
        "PPL change (pretrained)", None, "diagnostics", "max",
        "the pretrained model's relative perplexity increase under the op and severity of "
        "worst_perplexity_change, on the same texts", RELATIVE_CHANGE, tasks=LANGUAGE_MODEL),
    "perplexity_clean": Score("clean PPL", None, "diagnostics",
                              description="perplexity of the robustness subsample of test documents, "
                                          "unperturbed", bounds=AT_LEAST_ONE,
                              tasks=LANGUAGE_MODEL),
    "probe_perplexity_before": Score("probe PPL before", None, "diagnostics",
                                     description="the pretrained model's perplexity on the general-text "
                                                 "probe",
                                     bounds=AT_LEAST_ONE, tasks=LANGUAGE_MODEL),
    "probe_perplexity_after": Score("probe PPL after", False, "diagnostics",
                                    description="the fine-tuned model's perplexity on the general-text "
                                                "probe",
                                    bounds=AT_LEAST_ONE, tasks=LANGUAGE_MODEL),
    "probe_documents": Score("probe docs", None, "diagnostics",
                             description="documents of the forgetting probe",
                             bounds=POSITIVE, tasks=LANGUAGE_MODEL),
    "extraction_rate": Score("extraction", False, "diagnostics",
                             description="share of training documents extractable (greedy continuation "
                                         "of their first prefix_length tokens reproduces the next "
                                         "suffix_length)",
                             bounds=UNIT, tasks=LANGUAGE_MODEL),
    "extraction_rate_heldout": Score("extraction (held out)", None, "diagnostics",
                                     description="the same share on non-member documents: the chance level",
                                     bounds=UNIT, tasks=LANGUAGE_MODEL),
    "extraction_advantage_low": Score("extraction adv low", False, "diagnostics",
                                      description="lower end of the extraction advantage's 95% interval "
                                                  "(Newcombe, two independent proportions)",
                                      bounds=SIGNED_UNIT, tasks=LANGUAGE_MODEL),
    "extraction_advantage_high": Score("extraction adv high", False, "diagnostics",
                                       description="upper end of the extraction advantage's 95% interval",
                                       bounds=SIGNED_UNIT, tasks=LANGUAGE_MODEL),
    "extraction_n": Score("extraction n", None, "diagnostics",
                          description="training documents long enough for the extraction test",
                          bounds=POSITIVE, tasks=LANGUAGE_MODEL),
    "extraction_n_heldout": Score("extraction n (held out)", None, "diagnostics",
                                  description="non-member documents long enough for the extraction test",
                                  bounds=POSITIVE, tasks=LANGUAGE_MODEL),
    "weak_slices": Score("weak slices", False, "diagnostics",
                         description="slices of the test split found weak (corrected test and tolerance)",
                         bounds=POSITIVE),
    "slices_tested": Score("slices tested", None, "diagnostics",
                           description="slices (and slice x class cells) tested: the correction's family",
                           bounds=POSITIVE),
    "min_class_recall": Score("min recall", True, "diagnostics",
                              description="the lowest per-class recall on the test split", bounds=UNIT,
                              tasks=CLASSIFIER),
    "collapsed_classes": Score("collapsed", False, "diagnostics",
                               description="classes (almost) never predicted on the test split (recall below "
                                           "recall_threshold or predicted share below share_ratio x their "
                                           "share)", bounds=POSITIVE, tasks=CLASSIFIER),
    "label_shift_tvd": Score("label shift", None, "diagnostics",
                             description="total variation distance between the training and the test label "
                                         "distributions", bounds=UNIT, tasks=CLASSIFIER),
    "label_shift_p": Score("label shift p", None, "diagnostics",
                           description="chi-square test of homogeneity, training against test labels",
                           bounds=UNIT, tasks=CLASSIFIER),
    "temperature": Score("T", None, "diagnostics",
                         description="temperature fitted on validation (Guo et al. 2017); above 1: "
                                     "overconfident",
                         bounds=POSITIVE, tasks=CLASSIFIER),
    "ece_temperature_scaled": Score("ECE (T-scaled)", False, "diagnostics",
                                    description="test ECE after temperature scaling fitted on validation",
                                    bounds=UNIT, tasks=CLASSIFIER),
    "nll_temperature_scaled": Score("NLL (T-scaled)", False, "diagnostics",
                                    description="test NLL after temperature scaling fitted on validation",
                                    bounds=POSITIVE, tasks=CLASSIFIER),
    **{f"cartography_{region.split('-')[0]}": Score(
        f"{region.split('-')[0]} share", None, "diagnostics", bounds=UNIT, tasks=CLASSIFIER,
        description=f"share of training examples in the data map's {region} region")
       for region in ("easy-to-learn", "ambiguous", "hard-to-learn")},
    "memorised_share": Score("memorised", False, "diagnostics",
                             description="share of training examples learned only after the epoch of lowest "
                                         "validation loss", bounds=UNIT, tasks=CLASSIFIER),
    "cartography_best_epoch": Score("best epoch", None, "diagnostics",
                                    description="the epoch of lowest validation loss the data map dates "
                                                "memorisation from", bounds=POSITIVE, tasks=CLASSIFIER),
    "mislabel_auc": Score("mislabel AUC", True, "diagnostics",
                          description="ROC AUC of the mislabel score for the training labels the harness "
                                      "flipped (label noise)", bounds=UNIT, tasks=CLASSIFIER),
    "mislabel_precision": Score("mislabel prec", True, "diagnostics",
                                description="share of flipped labels among the k highest mislabel scores, "
                                            "k = the number flipped", bounds=UNIT, tasks=CLASSIFIER),
    "mislabel_k": Score("flipped", None, "diagnostics", description="training labels the harness flipped",
                        bounds=POSITIVE, tasks=CLASSIFIER),
    "worst_robustness_drop_n": Score("worst drop n", None, "diagnostics",
                                     description="test texts the robustness drops are measured on",
                                     bounds=POSITIVE, tasks=CLASSIFIER),
}
ALL_SCORES: dict[str, Score] = {**SCORES, **EXTRA_SCORES}

# The stored rows behind the scores: one figure per subgroup, op and severity, bin, ROC point or
# layer. Not scores (a cell has many of each), so not checkable; the reports read them as rows.
ROW_METRICS: dict[str, str] = {
    "reliability_count": "test examples in a confidence bin (bin_low, bin_high)",
    "reliability_confidence": "mean confidence in a confidence bin",
    "reliability_accuracy": "accuracy in a confidence bin",
    "membership_roc_tpr": "true positive rate of the membership attack at a false positive rate (fpr)",
    "accuracy_perturbed": "test accuracy under a perturbation (op, severity)",
    "robustness_drop": "clean minus perturbed accuracy (op, severity)",
    "flip_rate": "share of test predictions a perturbation changed (op, severity)",
    "mean_confidence_change": "mean change of confidence under a perturbation (op, severity)",
    "accuracy": "a subgroup's test accuracy (group)",
    "selection_rate": "a subgroup's rate of positive predictions (group)",
    "true_positive_rate": "a subgroup's true positive rate (group)",
    "false_positive_rate": "a subgroup's false positive rate (group)",
    "group_count": "test examples in a subgroup (group)",
    "group_positives": "positive test examples in a subgroup (group)",
    "group_negatives": "negative test examples in a subgroup (group)",
    **{f"{name}_difference_{end}": f"{end} end of Newcombe's 95% interval of one group column's "
       f"{name.replace('_', ' ')} difference (group)"
       for name in ("demographic_parity", "equalized_odds") for end in ("low", "high")},
    **{f"{name}_{end}_group": f"the subgroup with the {end}est rate in the {name.replace('_', ' ')} "
       "difference (group; op: which rate)" for name in ("demographic_parity", "equalized_odds")
       for end in ("high", "low")},
    "bias_amplification_zhao_noisy": "Zhao et al. BiasAmp against the noisy training labels (group)",
    "amplification_left_out": "a subgroup left out of the bias amplification, fewer than min_group_size "
                              "examples in the cell's training data or the test split (group_count): "
                              "its training examples (group; 0: not in training)",
    "cka": "debiased linear CKA of a layer's hidden states with the pretrained model (layer)",
    "cka_frozen": "1 when every module producing the layer kept its pretrained weights (layer)",
    "weight_distance": "relative Frobenius distance of a layer's weights from the pretrained ones (layer)",
    "alpha": "power-law exponent of a weight matrix's spectrum (layer)",
    "perplexity_change": "relative change of test perplexity under a perturbation, fine-tuned model "
                         "(op, severity)",
    "perplexity_change_pretrained": "relative change of test perplexity under a perturbation, pretrained "
                                    "model (op, severity)",
    "perplexity_perturbed": "test perplexity under a perturbation (op, severity)",
    "slice_value": "accuracy (a causal LM: mean token loss) of a slice of the test split (group: the slice, "
                   "'& label=CLASS' within one class)",
    "slice_n": "test examples in a slice (group)",
    "slice_gap": "how much worse a slice is than the rest of the test split (group)",
    "slice_p_adjusted": "corrected one-sided p-value that a slice is worse than the rest (group)",
    "slice_weak": "1 when a slice is weak: gap above the tolerance and corrected p below alpha (group)",
    **{f"class_share_{split}": f"a class's share of the {split} labels (group: the class)"
       for split in ("train", "validation", "test")},
    "class_share_predicted": "a class's share of the test predictions (group: the class)",
    "class_recall": "a class's recall on the test split (group: the class)",
    "class_collapsed": "1 when a class is (almost) never predicted (group: the class)",
}
"""Every other metric name the diagnostics store: what one row of it is. (Scores such as
``bias_amplification`` or ``demographic_parity_difference`` are stored per group column too and
reduced per cell as their :class:`Score` says.)"""


def cell_scores(generalization: pd.DataFrame, diagnostics: pd.DataFrame, *, checkpoint: Checkpoint = "final",
                extra: bool = False) -> pd.DataFrame:
    """One row per finished cell: ``CELL_KEYS`` and every score in :data:`SCORES` it has
    (and in :data:`EXTRA_SCORES` too with ``extra=True``), from a run's generalization table
    and stored diagnostics rows."""
    registry = ALL_SCORES if extra else SCORES
    general = generalization
    if general.empty:
        return pd.DataFrame(columns=CELL_KEYS)
    last = general[general["epochs"] == general["epochs"].max()]
    columns = [name for name, s in registry.items() if s.source == "generalization" and name in last.columns]
    frame = last[CELL_KEYS + columns].reset_index(drop=True)
    diag = diagnostics
    if diag.empty:
        return frame
    diag = diag[diag["checkpoint"] == checkpoint]
    for name, score in registry.items():
        if score.source != "diagnostics":
            continue
        rows = diag[diag["metric"] == name]
        if rows.empty:
            continue
        values = rows.groupby("cell_id")["value"].agg(score.reduce).rename(name)
        frame = frame.merge(values, left_on="cell_id", right_index=True, how="left")
    return frame

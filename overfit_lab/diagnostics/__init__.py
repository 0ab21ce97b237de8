"""Diagnostics: each module defines its metrics with formula and reference.

The public metric functions of every module are also importable from here, for example
``from overfit_lab.diagnostics import expected_calibration_error``. They are imported on first
use, so ``import overfit_lab.diagnostics`` stays light: ``drift``, ``extraction`` and ``spectral``
need torch, ``bias`` fairlearn. :mod:`overfit_lab.diagnostics.checkpoint` (the adapter from a model at a
checkpoint to these functions, ``checkpoint_lm`` for a causal LM, ``registry``) is not re-exported.
"""

from .._lazy import lazy_exports

_MODULES = {
    "bias": (
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
    ),
    "calibration": (
        "brier_score_loss_multiclass",
        "expected_calibration_error",
        "mean_confidence_wrong",
        "negative_log_likelihood",
        "reliability_diagram",
    ),
    "cartography": ("data_map_regions", "memorised", "mislabel_detection", "mislabel_scores",
                    "training_dynamics"),
    "classification": ("classification_metrics", "cross_entropy_loss"),
    "drift": ("frozen_states", "hidden_states", "layer_cka", "linear_cka", "weight_distance"),
    "extraction": ("extractable", "extraction_advantage", "extraction_advantage_interval", "extraction_rate",
                   "greedy_continuations"),
    "forgetting": ("forgetting_ratio", "probe_texts"),
    "generalization": ("best_epoch", "fit_verdict", "generalization_table", "loss_rise", "overfitting_onset"),
    "labels": ("collapsed_classes", "label_distribution", "label_shift", "per_class_recall"),
    "language": ("language_model_metrics", "perplexity", "sequence_losses", "token_accuracy", "token_loss"),
    "memorization": (
        "membership_advantage",
        "membership_advantage_in_sample",
        "membership_advantage_interval",
        "membership_advantage_yeom",
        "membership_auc",
        "membership_roc",
        "noise_memorization_rate",
    ),
    "perturb": (
        "changed_mask",
        "describe_severity",
        "get_perturbation",
        "headline_severities",
        "perturb_texts",
        "register_perturbation",
    ),
    "robustness": ("paired_difference_interval", "paired_drop_interval", "robustness_report"),
    "slices": ("find_weak_slices", "group_slices", "text_properties", "worst_slice_gap"),
    "spectral": ("esd", "powerlaw_alpha", "weight_alphas"),
    "temperature": ("fit_temperature", "temperature_scale"),
}
_EXPORTS = {name: module for module, names in _MODULES.items() for name in names}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, {name: f".{module}" for name, module in _EXPORTS.items()})

"""Run every enabled diagnostic on one checkpoint of a cell and return tidy rows.

Each diagnostic is a small adapter here: it turns the model and the cell's data into arrays and
calls the metric functions of its own module (where the formulas and references live). Rows
are :class:`~overfit_lab.rows.DiagnosticFields` dicts: ``metric`` and ``value`` and, where they
apply, ``group`` (subgroup or group column), ``op``, ``severity``, ``layer``, ``bin_low`` /
``bin_high`` (a reliability bin) or ``fpr`` (a membership ROC point); :func:`run_diagnostics`
turns them into :class:`~overfit_lab.rows.DiagnosticRow` rows. Adding a diagnostic means adding
one adapter to :data:`DIAGNOSTICS`; the trainer is not touched. What an adapter may use is
:class:`~overfit_lab.diagnostics.context.CheckpointContext`. An adapter that raises is recorded
in the context's ``failures`` (its name and reason; the cell's info keeps them) and the others
still run.

Costs are kept small: the clean logits of the training subset, validation and test splits come
from the epoch's own evaluation (no extra pass), perturbed and counterfactual inputs are scored
on a fixed subsample with length-sorted batches, and the pretrained model's probe states are
computed once per process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import lru_cache

import numpy as np
from scipy.special import log_softmax, softmax
from torch import nn

from ..data import TaskData
from ..rows import DiagnosticFields, DiagnosticRow
from ..suite import Suite
from .context import CheckpointContext

__all__ = ["DIAGNOSTICS", "CheckpointContext", "drift", "failure_reason", "member_sample", "membership_rows",
           "nonmember_source", "pretrained_key", "pretrained_model", "run_diagnostics", "spectral"]

Row = DiagnosticFields
ROC_GRID = np.linspace(0.0, 1.0, 21)


def _calibration(ctx: CheckpointContext) -> list[Row]:
    from .calibration import (
        brier_score_loss_multiclass,
        expected_calibration_error,
        mean_confidence_wrong,
        negative_log_likelihood,
        reliability_diagram,
    )

    spec = ctx.suite.diagnostics.calibration
    y, proba = ctx.data.test["label"].to_numpy(), ctx.proba("test")
    rows = [
        {"metric": "ece", "value": expected_calibration_error(y, proba, n_bins=spec.n_bins)},
        {"metric": "brier", "value": brier_score_loss_multiclass(y, proba)},
        {"metric": "nll", "value": negative_log_likelihood(y, proba)},
        {"metric": "confidence_wrong", "value": mean_confidence_wrong(y, proba)},
    ]
    if spec.temperature and _separate_validation(ctx):
        from .temperature import fit_temperature, temperature_scale

        validation = ctx.data.validation["label"].to_numpy()
        temperature = fit_temperature(validation, ctx.logits["validation"].astype(np.float64))
        scaled = softmax(temperature_scale(ctx.logits["test"].astype(np.float64), temperature), axis=1)
        rows += [{"metric": "temperature", "value": temperature},
                 {"metric": "ece_temperature_scaled", "value": expected_calibration_error(y, scaled,
                                                                                       n_bins=spec.n_bins)},
                 {"metric": "nll_temperature_scaled", "value": negative_log_likelihood(y, scaled)}]
    diagram = reliability_diagram(y, proba, n_bins=spec.n_bins)
    for b in diagram.itertuples():
        edges = {"bin_low": float(b.bin_low), "bin_high": float(b.bin_high)}
        rows += [{"metric": "reliability_count", "value": float(b.count), **edges},
                 {"metric": "reliability_confidence", "value": b.mean_confidence, **edges},
                 {"metric": "reliability_accuracy", "value": b.accuracy, **edges}]
    return rows


def _separate_validation(ctx: CheckpointContext) -> bool:
    """Whether the validation rows are not the test rows (an audit without --validation scores
    its test file as both: a temperature fitted there would be judged on its own data)."""
    data = ctx.suite.data
    return data.validation is None or data.validation != data.test


def _per_example_loss(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return -log_softmax(logits.astype(np.float64), axis=1)[np.arange(len(labels)), labels]


def membership_rows(members: np.ndarray, others: np.ndarray, *, seed: int) -> list[Row]:
    """The loss-threshold membership attack's figures on equally many member and non-member
    losses: advantage (cross-fitted) with its interval, Yeom's advantage, AUC, the number
    compared, and the best TPR at each FPR of a fixed grid (for the report's ROC)."""
    from .memorization import (
        membership_advantage,
        membership_advantage_interval,
        membership_advantage_yeom,
        membership_auc,
        membership_roc,
    )

    low, high = membership_advantage_interval(members, others, seed=seed)
    rows = [{"metric": "membership_advantage", "value": membership_advantage(members, others, seed=seed)},
            {"metric": "membership_advantage_low", "value": low},
            {"metric": "membership_advantage_high", "value": high},
            {"metric": "membership_advantage_yeom", "value": membership_advantage_yeom(members, others)},
            {"metric": "membership_n", "value": float(len(others))},
            {"metric": "membership_auc", "value": membership_auc(members, others)}]
    roc = membership_roc(members, others)
    at = np.searchsorted(roc["fpr"].to_numpy(), ROC_GRID, side="right") - 1
    for fpr, tpr in zip(ROC_GRID, roc["tpr"].to_numpy()[at], strict=True):
        # the grid point k/20 as written in decimal (linspace puts 0.15000000000000002 there)
        rows.append({"metric": "membership_roc_tpr", "value": float(tpr), "fpr": round(float(fpr), 2)})
    return rows


def member_sample(n_members: int, m: int, *, seed: int) -> np.ndarray:
    """Which ``m`` of ``n_members`` training rows the attack uses (sorted positions, fixed by ``seed``)."""
    return np.sort(np.random.default_rng(seed).permutation(n_members)[:m])


def _memorization(ctx: CheckpointContext) -> list[Row]:
    from .memorization import noise_memorization_rate

    # members: the training subset; non-members: as many rows that chose nothing (early stopping
    # and the best checkpoint read validation), the same rows for every cell of a run. Equal
    # numbers m of each, so that the attack's figures do not depend on the ratio.
    seed = ctx.suite.data.seed
    train_losses = _per_example_loss(ctx.logits["train"], ctx.encoded["train"].labels)
    source, others = _nonmember_losses(ctx, len(train_losses))
    members = train_losses[member_sample(len(train_losses), len(others), seed=seed)]
    rows = membership_rows(members, others, seed=seed)
    rows.append({"metric": "membership_nonmembers_unused", "value": float(source == "pool")})
    noisy, clean = ctx.train_rows["label"].to_numpy(), ctx.train_rows["clean_label"].to_numpy()
    if (noisy != clean).any():
        predicted = ctx.logits["train"].argmax(axis=1)
        rate = noise_memorization_rate(predicted, noisy, clean)
        rows.append({"metric": "noise_memorization", "value": rate})
    return rows


def nonmember_source(suite: Suite, data: TaskData) -> str:
    """``"pool"`` (training rows no cell trains on) or ``"test"``: where a run's non-members are from."""
    choice = suite.diagnostics.memorization.nonmembers
    if choice != "auto":
        return choice
    sizes = suite.grid.train_sizes
    unused = len(data.train) - max(sizes)
    return "pool" if unused > 0 and unused >= min(max(sizes), len(data.test)) else "test"


def _nonmember_losses(ctx: CheckpointContext, n_members: int) -> tuple[str, np.ndarray]:
    """Losses of up to ``n_members`` non-members and their source. Their labels get the cell's
    label noise, as the members' did: otherwise flipped member labels alone would separate them."""
    from ..data.splits import flip_labels

    seed = ctx.suite.data.seed
    source = nonmember_source(ctx.suite, ctx.data)
    rows = ctx.train_rows
    noise = float((rows["label"].to_numpy() != rows["clean_label"].to_numpy()).mean()) if len(rows) else 0.0
    if source == "pool":
        positions = ctx.data.unused_positions(ctx.suite.grid.train_sizes, seed=seed)[:n_members]
        frame = ctx.data.train.iloc[positions]
        logits = ctx.logits_of(frame["text"].tolist())
    else:
        positions = ctx.test_subsample(n_members)
        frame, logits = ctx.data.test.iloc[positions], ctx.logits["test"][positions]
    labels = frame["label"].to_numpy()
    if noise > 0:
        labels = flip_labels(labels, noise, n_classes=ctx.data.n_classes, seed=seed + 1)
    return source, _per_example_loss(logits, labels)


def _robustness(ctx: CheckpointContext) -> list[Row]:
    from .perturb import changed_mask, headline_severities, perturb_texts
    from .robustness import paired_drop_interval, robustness_report

    spec = ctx.suite.diagnostics.robustness
    idx = ctx.test_subsample(spec.subsample)
    texts = ctx.data.test["text"].to_numpy()[idx].tolist()
    y, clean = ctx.data.test["label"].to_numpy()[idx], ctx.proba("test")[idx]
    # the curves keep every severity of the suite; each op is also run at its headline severity,
    # the only one that enters worst_robustness_drop (see perturb.HEADLINE_SEVERITY)
    headline = headline_severities(spec.ops, spec.headline)
    grid = {op: sorted({*spec.severities, *([headline[op]] if headline[op] is not None else [])})
            for op in spec.ops}
    rows, worst, fallback = [], None, None
    variants = {(op, severity): perturb_texts(texts, op, severity, seed=ctx.suite.data.seed)
                for op in spec.ops for severity in grid[op]}
    changed_by = {key: changed_mask(texts, perturbed) for key, perturbed in variants.items()}
    # one forward pass over every distinct changed input of every op and severity: full,
    # length-sorted batches instead of many small ones, and a text two variants share (an op at
    # two severities, two ops) scored once
    batch = [t for key, perturbed in variants.items()
             for t, c in zip(perturbed, changed_by[key], strict=True) if c]
    distinct = list(dict.fromkeys(batch))
    at = {t: i for i, t in enumerate(distinct)}
    proba = (ctx.predict_texts(distinct)[[at[t] for t in batch]] if batch
             else np.zeros((0, clean.shape[1])))
    start = 0
    for (op, severity), perturbed in variants.items():
        changed = changed_by[(op, severity)]
        scored = clean.copy()  # an input the op left alone keeps its clean prediction
        scored[changed] = proba[start:start + int(changed.sum())]
        start += int(changed.sum())
        report = robustness_report(y, clean, scored, changed)
        for metric in ("accuracy_perturbed", "robustness_drop", "flip_rate", "mean_confidence_change"):
            rows.append({"metric": metric, "value": report[metric], "op": op, "severity": severity})
        candidate = (report["robustness_drop"], op, severity, perturbed, scored, changed)
        if severity == headline[op] and (worst is None or candidate[0] > worst[0]):
            worst = candidate
        if fallback is None or candidate[0] > fallback[0]:
            fallback = candidate
    if worst is not None:
        drop, op, severity, _, scored, _ = worst
        low, high = paired_drop_interval(clean.argmax(1) == y, scored.argmax(1) == y)
        for end, value in (("", drop), ("_low", low), ("_high", high), ("_n", float(len(y)))):
            rows.append({"metric": f"worst_robustness_drop{end}", "value": value, "op": op,
                         "severity": severity})
    if worst is not None or fallback is not None:  # examples of the headline op, else of the largest drop
        _, op, severity, perturbed, scored, changed = worst if worst is not None else fallback
        # flipped predictions first, then the largest confidence changes, among changed inputs
        flipped = scored.argmax(1) != clean.argmax(1)
        change = np.abs(scored - clean).max(axis=1)
        order = [i for i in np.lexsort((-change, ~flipped)) if changed[i]]
        ctx.add_examples("robustness", texts, perturbed, y, clean, scored, np.array(order, dtype=int),
                         op=op, severity=severity)
    return rows


def _subgroup_rows(column: str, y: np.ndarray, pred: np.ndarray, groups: np.ndarray, positive: int,
                min_group_size: int, intervals: bool) -> list[Row]:
    """Per-group rates and counts (a rate is NaN where its group is too small), and the
    demographic parity and equalized odds differences with Newcombe's interval and the two groups
    each compares (``*_high_group`` / ``*_low_group``: the rate, in ``op`` which rate it is)."""
    from .bias import demographic_parity, equalized_odds, group_metrics

    rows: list[Row] = []
    table = group_metrics(y, pred, groups, positive_label=positive, min_group_size=min_group_size)
    for group, g in table.iterrows():
        for metric in ("accuracy", "selection_rate", "true_positive_rate", "false_positive_rate"):
            rows.append({"metric": metric, "value": float(g[metric]), "group": f"{column}={group}"})
        for metric, count in (("group_count", "count"), ("group_positives", "positives"),
                              ("group_negatives", "negatives")):
            rows.append({"metric": metric, "value": float(g[count]), "group": f"{column}={group}"})
    confidence = 0.95 if intervals else None
    for name, fn in (("demographic_parity", demographic_parity), ("equalized_odds", equalized_odds)):
        r = fn(y, pred, groups, positive_label=positive, min_group_size=min_group_size, confidence=confidence)
        rows.append({"metric": f"{name}_difference", "value": r.difference, "group": column})
        if intervals:
            rows += [{"metric": f"{name}_difference_low", "value": r.low, "group": column},
                     {"metric": f"{name}_difference_high", "value": r.high, "group": column}]
        if r.high_group is not None:
            for end, group, (hits, n) in (("high", r.high_group, r.high_counts),
                                          ("low", r.low_group, r.low_counts)):
                rows.append({"metric": f"{name}_{end}_group", "value": hits / n, "group": f"{column}={group}",
                             "op": r.rate})
    return rows


def _amplification_rows(column: str, train_values: np.ndarray, train_labels: np.ndarray,
                        clean_labels: np.ndarray, noisy: bool, test_values: np.ndarray, y: np.ndarray,
                        pred: np.ndarray, zhao_pred: np.ndarray, zhao_values: np.ndarray,
                        separator: str | None, min_group_size: int) -> list[Row]:
    """BiasAmp→ and Zhao's BiasAmp of one group column over the groups seen at least
    ``min_group_size`` times in the training rows and the test split (``amplification_groups``);
    each other group is an ``amplification_left_out`` row (its training count; 0: not in training)."""
    from .bias import (
        amplification_groups,
        bias_amplification_zhao,
        directional_bias_amplification_multilabel,
        group_indicators,
    )

    counts = amplification_groups(train_values, test_values, separator=separator,
                                  min_group_size=min_group_size)
    kept = counts.index[counts["kept"]].tolist()
    rows: list[Row] = [{"metric": "amplification_left_out", "value": float(r.train),
                        "group": f"{column}={name}"} for name, r in counts[~counts["kept"]].iterrows()]
    directional = float("nan")  # no group left to measure
    if kept:
        # BiasAmp→ as in the paper: y_at from the test split's true labels, not the (maybe noisy)
        # training ones; every probability over all rows, so a group left out changes no other term
        _, train_a = group_indicators(train_values, separator, names=kept)
        _, test_a = group_indicators(test_values, separator, names=kept)
        directional = directional_bias_amplification_multilabel(train_labels, train_a, y, pred, test_a)
    rows.append({"metric": "bias_amplification", "group": column, "value": directional})
    # Zhao's b(o, g) is a share over mutually exclusive groups: only where every row has one value
    (train_names, train_all), (zhao_names, zhao_all) = (group_indicators(v, separator)
                                                        for v in (train_values, zhao_values))
    if (train_all.sum(axis=1) != 1).any() or (zhao_all.sum(axis=1) != 1).any():
        return rows
    train_g = np.array(train_names, dtype=object)[train_all.argmax(axis=1)]
    zhao_g = np.array(zhao_names, dtype=object)[zhao_all.argmax(axis=1)]
    train_in, zhao_in = np.isin(train_g, kept), np.isin(zhao_g, kept)
    # Zhao against the clean training labels: noise at rate ρ attenuates the training
    # association by (1 - 2ρ), which would show up as amplification (the noisy variant beside it)
    variants = [("bias_amplification_zhao", clean_labels)] + (
        [("bias_amplification_zhao_noisy", train_labels)] if noisy else [])
    for metric, labels in variants:
        value = float("nan")
        if train_in.any() and zhao_in.any():
            value = bias_amplification_zhao(labels[train_in], train_g[train_in], zhao_pred[zhao_in],
                                            zhao_g[zhao_in])
        rows.append({"metric": metric, "group": column, "value": value})
    return rows


def _bias(ctx: CheckpointContext) -> list[Row]:
    from .bias import GENDER_PAIRS, counterfactual_flips, group_indicators, swap_identity_terms

    spec = ctx.suite.diagnostics.bias
    test = ctx.data.test
    y, proba = test["label"].to_numpy(), ctx.proba("test")
    pred = proba.argmax(axis=1)
    positive = ctx.data.n_classes - 1
    rows: list[Row] = []
    correlated = ctx.data.correlated_test
    # Zhao's BiasAmp assumes the evaluation split shares the training correlation: use such a
    # split when the data has one, else the test split.
    correlated_pred = None if correlated is None else ctx.predict_texts(correlated["text"].tolist()).argmax(1)

    def zhao_split(column: str) -> tuple[np.ndarray, np.ndarray]:
        if correlated_pred is not None and column in correlated.columns:
            return correlated_pred, correlated[column].to_numpy()
        return pred, test[column].to_numpy()

    train_labels = ctx.train_rows["label"].to_numpy()
    clean_labels = ctx.train_rows["clean_label"].to_numpy()
    noisy = bool((train_labels != clean_labels).any())
    separator = ctx.suite.data.group_separator
    for column in ctx.data.group_columns:
        if column not in test.columns or column not in ctx.train_rows.columns:
            continue
        groups = test[column].to_numpy()
        # per value, the rows having it (with a separator a row may count in several subgroups)
        names, indicators = group_indicators(groups, separator)
        at, which = np.nonzero(indicators)
        if at.size:
            rows += _subgroup_rows(column, y[at], pred[at], np.array(names, dtype=object)[which], positive,
                                   spec.min_group_size, spec.intervals)
        rows += _amplification_rows(column, ctx.train_rows[column].to_numpy(), train_labels, clean_labels,
                                    noisy, groups, y, pred, *zhao_split(column), separator,
                                    spec.min_group_size)
    if spec.counterfactual:
        idx = ctx.test_subsample(spec.subsample)
        texts = test["text"].to_numpy()[idx].tolist()
        pairs = list(GENDER_PAIRS) + [tuple(p) for p in spec.pairs]
        swapped = [swap_identity_terms(t, pairs) for t in texts]
        changed = np.array([a != b for a, b in zip(texts, swapped, strict=True)])
        if changed.any():
            keep = np.flatnonzero(changed)
            swapped_proba = ctx.predict_texts([swapped[i] for i in keep])
            flips = counterfactual_flips(proba[idx][keep], swapped_proba, positive_label=positive)
            rows += [{"metric": "counterfactual_flip_rate", "value": flips["flip_rate"]},
                     {"metric": "counterfactual_n", "value": float(len(keep))},
                     {"metric": "counterfactual_abs_change", "value": flips["mean_abs_change"]}]
            change = np.abs(swapped_proba[:, positive] - proba[idx][keep][:, positive])
            ctx.add_examples("counterfactual", [texts[i] for i in keep], [swapped[i] for i in keep],
                             y[idx][keep], proba[idx][keep], swapped_proba,
                             np.argsort(-change, kind="stable"))
    return rows


@lru_cache(maxsize=2)
def pretrained_model(task: str, model_path: str, n_labels: int, trust_remote_code: bool,
                     allow_pickle: bool = False) -> nn.Module:
    """The pretrained model of ``task`` (a classifier with an untrained head), in eval mode, once
    per process."""
    from ..tasks import TASKS

    labels = [str(i) for i in range(n_labels)]
    model = TASKS[task].load_pretrained(model_path, labels, trust_remote_code=trust_remote_code,
                                        allow_pickle=allow_pickle)
    return model.eval()


def pretrained_key(ctx: CheckpointContext, diagnostic: str) -> tuple:
    """:func:`pretrained_model`'s arguments for ``ctx``'s cell."""
    if ctx.pretrained_path is None:
        raise ValueError(f"{diagnostic} needs the pretrained model the fine-tuning started from "
                         "(pretrained_path)")
    return (ctx.task.name, ctx.pretrained_path, ctx.data.n_classes, ctx.suite.model.trust_remote_code,
            ctx.suite.model.allow_pickle)


@lru_cache(maxsize=2)
def _pretrained_states(task: str, model_path: str, n_labels: int, trust_remote_code: bool, allow_pickle: bool,
                       tokenizer, probe: tuple, max_length: int, batch_size: int) -> list[np.ndarray]:
    from .drift import hidden_states

    pretrained = pretrained_model(task, model_path, n_labels, trust_remote_code, allow_pickle)
    return hidden_states(pretrained, tokenizer, list(probe),
                         max_length=max_length, batch_size=batch_size)


def drift(ctx: CheckpointContext) -> list[Row]:
    """CKA of every layer's hidden states and relative weight distance, against the pretrained model."""
    from .drift import frozen_states, layer_cka, weight_distance

    spec = ctx.suite.diagnostics.drift
    key = pretrained_key(ctx, "drift")
    pretrained = pretrained_model(*key)
    probe = tuple(ctx.data.validation["text"].tolist()[: spec.probe_size])
    size = {"max_length": ctx.suite.model.max_length, "batch_size": ctx.suite.evaluation.batch_size}
    pretrained_states = _pretrained_states(*key, ctx.tokenizer, probe, **size)
    with ctx.forward_pass(len(probe)):
        cka = layer_cka(None, ctx.model, ctx.tokenizer, probe, **size, pretrained_states=pretrained_states)
    distance = weight_distance(pretrained, ctx.model)
    rows = [{"metric": "cka", "value": r.cka, "layer": str(r.layer)} for r in cka.itertuples()]
    rows += [{"metric": "weight_distance", "value": r.relative_distance, "layer": str(r.layer)}
             for r in distance.itertuples()]
    # hidden state k comes from modules 0..k; with another layout nothing is claimed frozen
    frozen = (frozen_states(distance["relative_distance"]) if len(distance) == len(cka)
              else np.zeros(len(cka), dtype=bool))
    rows += [{"metric": "cka_frozen", "value": float(f), "layer": str(layer)}
             for layer, f in zip(cka["layer"], frozen, strict=True)]
    rows.append({"metric": "mean_cka", "value": float(cka["cka"][~frozen].mean())})  # NaN: all frozen
    rows.append({"metric": "mean_cka_all", "value": float(cka["cka"].mean())})
    return rows


def spectral(ctx: CheckpointContext) -> list[Row]:
    """The power-law exponent of every weight matrix's spectrum."""
    from .spectral import weight_alphas

    alphas = weight_alphas(ctx.model)
    rows = [{"metric": "alpha", "value": r.alpha, "layer": r.name} for r in alphas.itertuples()]
    finite = alphas["alpha"].replace([np.inf, -np.inf], np.nan).dropna()
    rows += [{"metric": "mean_alpha", "value": float(finite.mean()) if len(finite) else np.nan},
             {"metric": "alpha_flagged", "value": float((alphas["flag"] != "").sum())}]
    return rows


DIAGNOSTICS: dict[str, Callable[[CheckpointContext], list[Row]]] = {
    "calibration": _calibration,
    "memorization": _memorization,
    "robustness": _robustness,
    "bias": _bias,
    "drift": drift,
    "spectral": spectral,
}


REASON_LENGTH = 500


def failure_reason(exc: BaseException) -> str:
    """``"ValueError: message"`` on one line, at most :data:`REASON_LENGTH` characters."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= REASON_LENGTH else text[: REASON_LENGTH - 1] + "…"


def run_diagnostics(ctx: CheckpointContext,
                    adapters: Mapping[str, Callable[[CheckpointContext], list[Row]]] | None = None,
                    ) -> list[DiagnosticRow]:
    """Every enabled diagnostic of ``adapters`` (the task's, ``registry.ADAPTERS[task]``; default
    :data:`DIAGNOSTICS`, a classifier's) on ``ctx``'s checkpoint, as store rows.

    A diagnostic that raises (anything but a user error, :class:`~overfit_lab.errors.OverfitLabError`,
    or an interrupt) does not stop the others or the cell: none of its rows or examples are
    kept, and ``ctx.failures`` gets ``{"checkpoint", "diagnostic", "reason"}`` (the reason
    ``"ValueError: ..."`` on one line; :func:`failure_reason`).
    """
    from ..errors import OverfitLabError

    out = []
    for name, diagnostic in (DIAGNOSTICS if adapters is None else adapters).items():
        if not getattr(ctx.suite.diagnostics, name).enabled:
            continue
        examples, started = len(ctx.examples), time.perf_counter()
        try:
            rows = [DiagnosticRow(checkpoint=ctx.checkpoint, **{**row, "value": None if row["value"] is None
                                                                 else float(row["value"])})
                    for row in diagnostic(ctx)]
        except OverfitLabError:
            raise
        except Exception as exc:  # noqa: BLE001 - one broken diagnostic must not lose the cell
            del ctx.examples[examples:]
            ctx.failures.append({"checkpoint": ctx.checkpoint, "diagnostic": name,
                                 "reason": failure_reason(exc)})
            rows = []
        ctx.seconds[name] = ctx.seconds.get(name, 0.0) + time.perf_counter() - started
        out += rows
    return out

"""Generalization gap, best epoch, overfitting onset and the per-cell fit verdict.

Definitions (epochs are 1-based; ``L_t`` is the validation loss after epoch ``t``, ``T`` the
last epoch):

* gap, signed so that a positive gap means the model fits its training data better than
  unseen data: ``gap_accuracy = acc_train - acc_val``, ``gap_macro_f1 = F1_train - F1_val``,
  ``gap_loss = L_val - L_train`` (losses measured in eval mode, without label smoothing); for a
  causal LM (token-level loss, next-token accuracy) also the perplexity ratio
  ``perplexity_ratio = PPL_val / PPL_train = exp(gap_loss)``;
* best epoch: ``t* = argmin_t L_t`` (the first one on ties);
* rise of epoch ``t`` over the minimum: ``r_t = (L_t - L_t*) / L_t*``; the loss rise is ``r_T``;
* falling at the end: ``L_{T-1} - L_T > still_falling · L_{T-1}``.

The verdict (:func:`fit_verdict`), with the tolerances ``loss_rise``, ``still_falling`` and
``accuracy_gap`` of ``[verdict]``, checked in this order:

1. *undetermined*: a single epoch (no trend), or a non-finite validation loss at any epoch
   (training diverged: no verdict is read from such a curve, and never *well fit*);
2. *overfit*: the loss ended more than ``loss_rise`` above its minimum, ``r_T > loss_rise``;
3. *under-trained*: the curve is still improving at its end: it is falling at the end and the
   last loss is its minimum or within ``still_falling`` of it (``r_T <= still_falling``);
4. *overfit*: ``gap_accuracy > accuracy_gap`` (the training data is fitted far better);
5. *well fit*: otherwise. That covers a curve that levelled off at its minimum and one that has
   passed its minimum but ended less than ``loss_rise`` above it (past its best, not overfit yet:
   where the built-in ``early_stopping`` strategy stops).

The verdict reads where the curve *ends* relative to its minimum. A transient spike that has
recovered to within ``loss_rise`` of the minimum by the last epoch is not overfitting: the
reason names it, and no onset is reported. The overfitting onset is the first epoch
``e > t*`` from which ``r_t > loss_rise`` for every ``t >= e`` (the same tolerance as rule 2), so
a curve has an onset exactly when rule 2 calls it overfit. An earlier epoch value of a grid is
judged on the curve up to that epoch only.

On SST-2 with MiniLM, 1,000 examples overfit mainly as validation loss doubling while accuracy
holds (overconfidence), which the loss rise catches; 100 examples after 5 epochs have a large
accuracy gap but a still-falling validation loss, which is under-training, not overfitting.
Reference: Goodfellow, Bengio & Courville, *Deep Learning* (2016), section 7.8 (early stopping);
Prechelt, "Early Stopping - But When?", in *Neural Networks: Tricks of the Trade* (1998), whose
generalization loss ``GL(t) = 100 (L_t / min L - 1)`` is ``100 r_t``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..suite import VerdictSpec

__all__ = [
    "DEFAULT_THRESHOLDS",
    "VERDICTS",
    "best_epoch",
    "fit_verdict",
    "generalization_table",
    "loss_rise",
    "overfitting_onset",
]

VERDICTS = ("under-trained", "well fit", "overfit", "undetermined")
SPLIT_METRICS = ("loss", "accuracy", "macro_f1", "perplexity")
DEFAULT_THRESHOLDS = VerdictSpec()


def best_epoch(validation_loss: Sequence[float]) -> int:
    """1-based epoch of the lowest validation loss (the first one on ties; NaN skipped)."""
    losses = np.asarray(validation_loss, dtype=float)
    if losses.size == 0:
        raise ValueError("validation_loss must not be empty")
    if not np.isfinite(losses).any():
        raise ValueError("validation_loss has no finite value")
    return int(np.nanargmin(np.where(np.isfinite(losses), losses, np.nan))) + 1


def _rise(losses: np.ndarray, low: float) -> np.ndarray:
    """``(L - low) / low``; the absolute rise where the minimum is 0."""
    return (losses - low) / low if low > 0 else losses - low


def loss_rise(validation_loss: Sequence[float]) -> float:
    """Relative rise of the last validation loss over its minimum, ``(L_T - min L) / min L``."""
    losses = np.asarray(validation_loss, dtype=float)
    return float(_rise(losses[-1:], losses[best_epoch(losses) - 1])[0])


def overfitting_onset(validation_loss: Sequence[float], *,
                      tolerance: float = DEFAULT_THRESHOLDS.loss_rise) -> int | None:
    """First epoch after the minimum from which validation loss stays more than ``tolerance``
    (relative) above it, or None; None for a curve with a non-finite loss.

    With ``tolerance`` the verdict's ``loss_rise`` (the default), an onset exists exactly when
    :func:`fit_verdict` calls the curve overfit by its loss rise.

    Examples
    --------
    >>> overfitting_onset([0.50, 0.40, 0.47, 0.52])
    3
    >>> overfitting_onset([0.50, 0.40, 0.47, 0.41]) is None  # a spike that recovered
    True
    """
    losses = np.asarray(validation_loss, dtype=float)
    if losses.size == 0:
        raise ValueError("validation_loss must not be empty")
    if not np.isfinite(losses).all():
        return None
    best = best_epoch(losses)
    above = _rise(losses, losses[best - 1]) > tolerance
    onset = None
    for epoch in range(len(losses), best, -1):  # walk back while the loss stays above
        if not above[epoch - 1]:
            break
        onset = epoch
    return onset


def fit_verdict(validation_loss: Sequence[float], *, gap_accuracy: float,
                thresholds: VerdictSpec = DEFAULT_THRESHOLDS) -> tuple[str, str]:
    """The verdict of one learning curve and the figures that decided it (rules in the module
    docstring).

    Parameters
    ----------
    validation_loss : sequence of float
        Validation loss after epochs 1..T.
    gap_accuracy : float
        Training minus validation accuracy after epoch T.
    thresholds : VerdictSpec
        ``loss_rise``, ``still_falling`` and ``accuracy_gap`` tolerances.

    Returns
    -------
    (verdict, reason)
        ``verdict`` is one of :data:`VERDICTS`; ``reason`` one line with the deciding figures.

    Examples
    --------
    >>> fit_verdict([0.50, 0.40, 0.42, 0.41], gap_accuracy=0.0)[0]  # past its best, +2.5%
    'well fit'
    >>> fit_verdict([0.50, 0.40, 0.47, 0.52], gap_accuracy=0.0)[0]  # +30% above the minimum
    'overfit'
    >>> fit_verdict([0.60, 0.50, 0.45], gap_accuracy=0.3)[0]  # still falling
    'under-trained'
    """
    losses = np.asarray(validation_loss, dtype=float)
    if losses.size == 0:
        raise ValueError("validation_loss must not be empty")
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        return "undetermined", (f"validation loss is {losses[bad[0]]} at epoch {bad[0] + 1}: training "
                                "diverged, no verdict")
    if losses.size < 2:
        return "undetermined", "one epoch: no trend in validation loss"
    T, last, previous = losses.size, losses[-1], losses[-2]
    best = best_epoch(losses)
    low = losses[best - 1]
    rises = _rise(losses, low)
    rise = float(rises[-1])
    if rise > thresholds.loss_rise:
        return "overfit", (f"validation loss rose {rise:+.0%} after its minimum "
                           f"({low:.3f} at epoch {best} -> {last:.3f} at epoch {T})")
    falling = previous - last > thresholds.still_falling * previous
    if falling and rise <= thresholds.still_falling:
        return "under-trained", (f"validation loss still falling at epoch {T} "
                                 f"({previous:.3f} -> {last:.3f}, {(last - previous) / previous:+.1%})")
    if gap_accuracy > thresholds.accuracy_gap:
        return "overfit", f"accuracy gap {gap_accuracy:.3f} > {thresholds.accuracy_gap:g}"
    if best == T or rise <= thresholds.still_falling:
        shape = f"validation loss levelled off at its minimum (epoch {best}, {rise:+.1%} at epoch {T})"
    else:
        shape = (f"validation loss passed its minimum at epoch {best} and ended {rise:+.1%} above it "
                 f"(within {thresholds.loss_rise:.0%})")
        peak = int(np.argmax(rises[best:])) + best + 1
        if rises[peak - 1] > thresholds.loss_rise:
            shape += f", after a transient rise of {rises[peak - 1]:+.0%} at epoch {peak}"
    return "well fit", f"{shape}, accuracy gap {gap_accuracy:.3f}"


def generalization_table(cells: pd.DataFrame, metrics: pd.DataFrame,
                         thresholds: VerdictSpec = DEFAULT_THRESHOLDS) -> pd.DataFrame:
    """One row per finished cell and grid epoch value, with gaps, best epoch, onset and verdict.

    Columns ``{split}_{metric}`` for the split metrics the run stored (:data:`SPLIT_METRICS`).

    An epoch value past an early stop reads the last trained epoch (a separate run of that many
    epochs stops at the same point).
    """
    finished = cells[cells["status"] == "finished"]
    wide = metrics.pivot_table(index=["cell_id", "epoch"], columns=["split", "metric"], values="value",
                               aggfunc="first")
    # the task's split metrics: loss and accuracy always (for a causal LM, token-level), macro_f1
    # for a classifier, perplexity for a causal LM
    stored = set(wide.columns.get_level_values("metric")) if len(wide.columns) else set()
    measured = [m for m in SPLIT_METRICS if m in stored or m in ("loss", "accuracy")]
    rows = []
    for cell in finished.itertuples(index=False):
        curve = wide.loc[cell.cell_id].sort_index()
        trained = int(curve.index.max())
        for value in cell.record_epochs:
            epoch = min(int(value), trained)
            upto = curve.loc[:epoch]
            at = curve.loc[epoch]
            val_loss = upto[("validation", "loss")].to_numpy()
            gap_acc = at[("train", "accuracy")] - at[("validation", "accuracy")]
            verdict, reason = fit_verdict(val_loss, gap_accuracy=gap_acc, thresholds=thresholds)
            finite = bool(np.isfinite(val_loss).any())
            row = {"cell_id": cell.cell_id, "train_size": cell.train_size, "strategy": cell.strategy,
                   "seed": cell.seed, "label_noise": cell.label_noise, "epochs": int(value),
                   "trained_epochs": epoch}
            for split in ("train", "validation", "test"):
                for metric in measured:
                    row[f"{split}_{metric}"] = at.get((split, metric), np.nan)
            row.update(gap_loss=row["validation_loss"] - row["train_loss"], gap_accuracy=gap_acc)
            if "macro_f1" in measured:
                row["gap_macro_f1"] = row["train_macro_f1"] - row["validation_macro_f1"]
            if "perplexity" in measured:
                row["perplexity_ratio"] = row["validation_perplexity"] / row["train_perplexity"]
            row.update(
                best_epoch=best_epoch(val_loss) if finite else np.nan,
                best_validation_loss=float(np.nanmin(val_loss)) if finite else np.nan,
                loss_rise=loss_rise(val_loss) if finite else np.nan,
                onset_epoch=overfitting_onset(val_loss, tolerance=thresholds.loss_rise),
                verdict=verdict,
                reason=reason,
            )
            rows.append(row)
    return pd.DataFrame(rows)

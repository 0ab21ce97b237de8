"""Generalization gap, best epoch, overfitting onset and the per-cell fit verdict.

Definitions (epochs are 1-based; ``L_t`` is the validation loss after epoch ``t``):

* gap, signed so that a positive gap means the model fits its training data better than
  unseen data: ``gap_accuracy = acc_train - acc_val``, ``gap_macro_f1 = F1_train - F1_val``,
  ``gap_loss = L_val - L_train`` (losses measured in eval mode, without label smoothing);
* best epoch: ``t* = argmin_t L_t`` (the first one on ties);
* loss rise: ``(L_T - L_t*) / L_t*`` after the last epoch ``T``;
* overfitting onset: the first epoch ``e > t*`` from which ``L_t > L_t* (1 + tol)`` for every
  ``t >= e`` (validation loss keeps above its minimum), or none;
* verdict, checked in this order:

  - *overfit*: the validation loss rose after its minimum by more than ``loss_rise``
    (relative);
  - *under-trained*: validation loss still falling at the last epoch,
    ``L_{T-1} - L_T > still_falling * L_{T-1}``;
  - *overfit*: ``gap_accuracy > accuracy_gap``;
  - *well fit*: otherwise;
  - *undetermined*: a single epoch shows no trend.

On SST-2 with MiniLM, 1,000 examples overfit mainly as validation loss doubling while accuracy
holds (overconfidence), which the loss rise catches; 100 examples after 5 epochs have a large
accuracy gap but a still-falling validation loss, which is under-training, not overfitting.
Reference: Goodfellow, Bengio & Courville, *Deep Learning* (2016), section 7.8 (early stopping).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..suite import VerdictSpec

VERDICTS = ("under-trained", "well fit", "overfit", "undetermined")
DEFAULT_THRESHOLDS = VerdictSpec()


def best_epoch(validation_loss: Sequence[float]) -> int:
    """1-based epoch of the lowest validation loss (the first one on ties)."""
    losses = np.asarray(validation_loss, dtype=float)
    if losses.size == 0:
        raise ValueError("validation_loss must not be empty")
    return int(np.nanargmin(losses)) + 1


def loss_rise(validation_loss: Sequence[float]) -> float:
    """Relative rise of the last validation loss over its minimum, ``(L_T - min L) / min L``."""
    losses = np.asarray(validation_loss, dtype=float)
    low = np.nanmin(losses)
    return float((losses[-1] - low) / low) if low > 0 else float(losses[-1] - low)


def overfitting_onset(validation_loss: Sequence[float], *, tolerance: float = 0.0) -> int | None:
    """First epoch after the minimum from which validation loss stays above ``min * (1 + tol)``."""
    losses = np.asarray(validation_loss, dtype=float)
    best = best_epoch(losses)
    above = losses > losses[best - 1] * (1 + tolerance)
    onset = None
    for epoch in range(len(losses), best, -1):  # walk back while the loss stays above
        if not above[epoch - 1]:
            break
        onset = epoch
    return onset


def fit_verdict(validation_loss: Sequence[float], *, gap_accuracy: float,
                thresholds: VerdictSpec = DEFAULT_THRESHOLDS) -> tuple[str, str]:
    """The verdict of one learning curve and the figures that decided it.

    Parameters
    ----------
    validation_loss : sequence of float
        Validation loss after epochs 1..T.
    gap_accuracy : float
        Training minus validation accuracy after epoch T.
    thresholds : VerdictSpec
        ``still_falling``, ``loss_rise`` and ``accuracy_gap`` tolerances.

    Returns
    -------
    (verdict, reason)
    """
    losses = np.asarray(validation_loss, dtype=float)
    if losses.size < 2:
        return "undetermined", "one epoch: no trend in validation loss"
    last, previous = losses[-1], losses[-2]
    T = losses.size
    best = best_epoch(losses)
    rise = loss_rise(losses)
    if best < T and rise > thresholds.loss_rise:
        return "overfit", (f"validation loss rose {rise:+.0%} after its minimum "
                           f"({losses[best - 1]:.3f} at epoch {best} -> {last:.3f} at epoch {T})")
    if previous - last > thresholds.still_falling * previous:
        return "under-trained", (f"validation loss still falling at epoch {T} "
                                 f"({previous:.3f} -> {last:.3f}, {(last - previous) / previous:+.1%})")
    if gap_accuracy > thresholds.accuracy_gap:
        return "overfit", f"accuracy gap {gap_accuracy:.3f} > {thresholds.accuracy_gap:g}"
    return "well fit", (f"validation loss {rise:+.0%} from its minimum at epoch {best}, "
                        f"accuracy gap {gap_accuracy:.3f}")


def generalization_table(cells: pd.DataFrame, metrics: pd.DataFrame,
                         thresholds: VerdictSpec = DEFAULT_THRESHOLDS) -> pd.DataFrame:
    """One row per finished cell and grid epoch value, with gaps, best epoch, onset and verdict.

    An epoch value past an early stop reads the last trained epoch (a separate run of that many
    epochs stops at the same point).
    """
    finished = cells[cells["status"] == "finished"]
    wide = metrics.pivot_table(index=["cell_id", "epoch"], columns=["split", "metric"], values="value",
                               aggfunc="first")
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
            row = {"cell_id": cell.cell_id, "train_size": cell.train_size, "strategy": cell.strategy,
                   "seed": cell.seed, "label_noise": cell.label_noise, "epochs": int(value),
                   "trained_epochs": epoch}
            for split in ("train", "validation", "test"):
                for metric in ("loss", "accuracy", "macro_f1"):
                    row[f"{split}_{metric}"] = at.get((split, metric), np.nan)
            row.update(
                gap_loss=row["validation_loss"] - row["train_loss"],
                gap_accuracy=gap_acc,
                gap_macro_f1=row["train_macro_f1"] - row["validation_macro_f1"],
                best_epoch=best_epoch(val_loss),
                best_validation_loss=float(np.nanmin(val_loss)),
                loss_rise=loss_rise(val_loss),
                onset_epoch=overfitting_onset(val_loss, tolerance=thresholds.still_falling),
                verdict=verdict,
                reason=reason,
            )
            rows.append(row)
    return pd.DataFrame(rows)

"""An existing ``transformers.Trainer`` output directory read back: its logged curves, its
checkpoints and the fit verdict of its evaluation loss.

A model fine-tuned with ``Trainer`` leaves ``OUTPUT_DIR`` with ``checkpoint-<step>`` directories,
each holding the weights and a ``trainer_state.json``; the root has one too after
``trainer.save_state()``. The state's ``log_history`` is a list of entries, each with ``epoch``
(fractional during an epoch) and ``step``:

* training entries: ``loss`` (the *running* training loss: the mean over the steps since the
  previous log, measured in train mode with dropout while the weights change), ``grad_norm``,
  ``learning_rate``;
* evaluation entries: ``eval_loss``, ``eval_<metric>`` from ``compute_metrics`` and
  ``eval_runtime``, ``eval_samples_per_second``, ``eval_steps_per_second``; with a dict
  ``eval_dataset`` one entry per set at the same step, named ``eval_<set>_<metric>``; a
  ``trainer.evaluate(metric_key_prefix=P)`` call logs ``P_<metric>`` and ``P_runtime``;
* a final summary (``train_runtime``, ``train_loss``: the mean over the whole run,
  ``total_flos``), only in a state saved after training (the root's, from ``save_state``): the
  last checkpoint is written before it.

:func:`read_trainer_run` finds the state (the root's, unless a checkpoint is newer: then the
highest-step checkpoint's) and the checkpoints; :meth:`TrainerRun.verdict` judges the run with
the grid's rule, :func:`~overfit_lab.diagnostics.generalization.fit_verdict`, on the sequence of
evaluation losses in evaluation order, so its "epoch k" is the k-th evaluation. Trainer evaluates
the training split only when asked (a dict ``eval_dataset`` with a ``train`` set), so the
accuracy-gap rule usually cannot be applied; the verdict then rests on the loss curve alone and
says so.

Keys of ``trainer_state.json`` in transformers 5: ``best_global_step``, ``best_metric``,
``best_model_checkpoint`` (``os.path.join(args.output_dir, "checkpoint-<best_global_step>")``,
relative to the working directory of training when ``output_dir`` was relative; set only with
``metric_for_best_model``, or ``load_best_model_at_end`` which implies it), ``epoch``,
``eval_steps``, ``global_step``, ``logging_steps``, ``log_history``, ``max_steps``,
``num_train_epochs``, ``save_steps``, ``total_flos``, ``train_batch_size``, ... The ``*_steps``
keys are the ``TrainingArguments`` values even when the strategy is ``"epoch"`` (500 by default),
so the evaluation schedule is read from the log, not from them.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import Any

import numpy as np
import pandas as pd

from .diagnostics.generalization import (
    DEFAULT_THRESHOLDS,
    best_epoch,
    fit_verdict,
    loss_rise,
    overfitting_onset,
)
from .errors import OverfitLabError
from .suite import VerdictSpec

__all__ = [
    "RUNNING_LOSS_LABEL",
    "Checkpoint",
    "TrainerRun",
    "read_trainer_run",
]

STATE_FILE = "trainer_state.json"
KEY = "--trainer-run"
RUNNING_LOSS_LABEL = ("running training loss (train mode, dropout on, averaged over the logging interval "
                      "while the weights change): not the loss of the model at the evaluation")
CHECKPOINT_DIR = re.compile(r"checkpoint-(\d+)")
# weights a checkpoint may hold: safetensors (sharded or not, a PEFT adapter's too) or pickle files
WEIGHT_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin", "adapter_model.bin")
TRAIN_SETS = ("train", "training")
NO_TRAIN_SPLIT = (
    "no training-split evaluation in the logs (Trainer evaluates only eval_dataset unless it is a dict "
    "with a training set, e.g. eval_dataset={'validation': ..., 'train': ...}): the accuracy gap is not "
    "judged; the loss gap of the logged running training loss is not comparable, it is measured in train "
    "mode with dropout during the epoch")
NO_ACCURACY = ("no accuracy in the evaluations (Trainer logs eval_accuracy only from a compute_metrics that "
               "returns 'accuracy'): the accuracy gap is not judged")


@dataclass(frozen=True)
class Checkpoint:
    """A ``checkpoint-<step>`` directory of a Trainer run.

    Attributes
    ----------
    path : Path
        The directory.
    step : int
        Its global step (from the directory name).
    epoch : float or None
        The epoch the log records at that step, else the checkpoint's own state's; None when
        neither says.
    """

    path: Path
    step: int
    epoch: float | None

    @property
    def has_weights(self) -> bool:
        """Whether the directory holds model weights (safetensors or pickle, a full model or an adapter)."""
        return any(next(self.path.glob(pattern), None) is not None for pattern in WEIGHT_PATTERNS)


@dataclass(frozen=True)
class TrainerRun:
    """A Trainer output directory as read by :func:`read_trainer_run`.

    Attributes
    ----------
    output_dir : Path
        The directory given to ``TrainingArguments(output_dir=...)``.
    log : DataFrame
        The log history, tidy: ``step``, ``epoch``, ``kind`` (``"train"`` or ``"eval"``),
        ``metric`` (the logged key: ``loss``, ``eval_loss``, ``eval_accuracy``...), ``value``; in
        log order, without the final summary entry (see :attr:`summary`).
    checkpoints : list of Checkpoint
        The ``checkpoint-<step>`` directories, sorted by step.
    best_checkpoint : Path or None
        The state's ``best_model_checkpoint`` (else ``best_global_step``) resolved by its
        directory name inside ``output_dir``; None when unset or no longer there.
    state : dict
        The raw ``trainer_state.json``.
    state_file : Path
        The file ``state`` was read from.
    """

    output_dir: Path
    log: pd.DataFrame
    checkpoints: list[Checkpoint]
    best_checkpoint: Path | None
    state: dict
    state_file: Path

    # ------------------------------------------------------------------------------------- curves
    @property
    def summary(self) -> dict[str, float]:
        """The final summary entry (``train_runtime``, ``train_loss``, ``total_flos``...); empty
        when the state was saved before training ended (a checkpoint's)."""
        for entry in reversed(self.state.get("log_history", [])):
            if isinstance(entry, dict) and _kind(entry) is None:
                return {k: v for k, v in entry.items() if _number(v) is not None}
        return {}

    def eval_curve(self) -> pd.DataFrame:
        """One row per evaluation step: ``step``, ``epoch`` and the evaluation metrics as columns
        (in log order; the sets of a dict ``eval_dataset`` merged into one row). A metric logged
        twice at one step (``trainer.evaluate()`` after training) keeps its first value."""
        return _wide(self.log[self.log["kind"] == "eval"])

    def train_curve(self) -> pd.DataFrame:
        """The logged running training loss: ``step``, ``epoch``, ``loss`` (see
        :data:`RUNNING_LOSS_LABEL`)."""
        train = self.log[(self.log["kind"] == "train") & (self.log["metric"] == "loss")]
        train = train.drop_duplicates("step", keep="first").sort_values("step", kind="stable")
        return train[["step", "epoch", "value"]].rename(columns={"value": "loss"}).reset_index(drop=True)

    @property
    def loss_metric(self) -> str:
        """The held-out loss judged: ``eval_loss``, else the first logged ``eval_<set>_loss`` of a
        set that is not the training split."""
        return _held_out_losses(self.log)[0]

    def _losses(self) -> pd.DataFrame:
        """``step``, ``epoch``, ``loss``: the held-out loss of each evaluation, in step order."""
        rows = self.log[(self.log["kind"] == "eval") & (self.log["metric"] == self.loss_metric)]
        rows = rows.drop_duplicates("step", keep="first").sort_values("step", kind="stable")
        return rows[["step", "epoch", "value"]].rename(columns={"value": "loss"}).reset_index(drop=True)

    # ------------------------------------------------------------------------------ checkpoints
    def best_step(self) -> int | None:
        """Step of the lowest evaluation loss (the first one on ties; non-finite losses skipped);
        None when no evaluation loss is finite."""
        losses = self._losses()
        if not np.isfinite(losses["loss"].to_numpy(dtype=float)).any():
            return None
        return int(losses["step"].iloc[best_epoch(losses["loss"]) - 1])

    def checkpoint_for(self, step: int) -> Checkpoint | None:
        """The checkpoint closest at or before ``step`` (None when every checkpoint is later)."""
        earlier = [c for c in self.checkpoints if c.step <= step]
        return earlier[-1] if earlier else None

    # --------------------------------------------------------------------------------- verdict
    def verdict(self, thresholds: VerdictSpec = DEFAULT_THRESHOLDS) -> dict[str, Any]:
        """The grid's fit verdict of this run, judged per evaluation.

        :func:`~overfit_lab.diagnostics.generalization.fit_verdict` on the held-out loss of each
        evaluation in order. Without a training-split accuracy, ``gap_accuracy`` is NaN: rule 4
        (``gap_accuracy > accuracy_gap``) is the only rule that reads it and a NaN comparison is
        false, so the verdict is exactly the one the loss curve alone gives (rules 1-3, else
        *well fit*), NaN is what "not measured" is elsewhere in the package, and a ``missing``
        line says the gap was not judged (``-inf`` would skip rule 4 too, but read as a measured
        value).

        Parameters
        ----------
        thresholds : VerdictSpec
            ``loss_rise``, ``still_falling`` and ``accuracy_gap`` tolerances (``[verdict]``).

        Returns
        -------
        dict
            ``verdict``, ``reason`` (its "epoch k" reworded to the evaluation and step when the
            evaluations are not one per epoch); ``per`` (``"epoch"`` or ``"steps"``);
            ``evaluations``; ``loss_metric``; ``best_evaluation`` (1-based), ``best_step``,
            ``best_epoch`` (Trainer's epoch value), ``best_loss``; ``loss_rise``;
            ``onset_evaluation``, ``onset_step``, ``onset_epoch`` (None without an onset);
            ``checkpoint`` (the checkpoint closest at or before the best step, a Path or None);
            ``best_checkpoint`` (Trainer's own, :attr:`best_checkpoint`); ``gap_accuracy`` and
            ``gap_loss`` (training-split minus held-out accuracy, held-out minus training-split
            loss, both in eval mode at the last evaluation; NaN without a training-split
            evaluation); ``curve`` (a DataFrame: ``evaluation``, ``step``, ``epoch``, the held-out
            loss and accuracy, ``running_train_loss``: the last training loss logged at or before
            the evaluation, and the training split's loss and accuracy when evaluated);
            ``labels`` (what the curve's columns are); ``missing`` (what could not be judged and
            why); ``notes`` (how the run was read).
        """
        losses = self._losses()
        values = losses["loss"].to_numpy(dtype=float)
        steps = losses["step"].to_numpy(dtype=int)
        epochs = losses["epoch"].to_numpy(dtype=float)
        wide = self.eval_curve().set_index("step")
        prefix = self.loss_metric[: -len("loss")]  # "eval_" or "eval_<set>_"
        missing: list[str] = []
        notes: list[str] = []

        curve = pd.DataFrame({"evaluation": np.arange(1, len(values) + 1), "step": steps, "epoch": epochs,
                              self.loss_metric: values})
        accuracy = _column(wide, f"{prefix}accuracy", steps)
        if accuracy is not None:
            curve[f"{prefix}accuracy"] = accuracy
        curve["running_train_loss"] = self._running_loss(steps)
        train_loss_key, train_acc_key = _train_split_keys(wide)
        for key in (train_loss_key, train_acc_key):
            if key is not None:
                curve[key] = _column(wide, key, steps)

        gap_accuracy = gap_loss = math.nan
        if train_acc_key is None:
            missing.append(NO_TRAIN_SPLIT)
        if accuracy is None:
            missing.append(NO_ACCURACY)
        if train_acc_key is not None and accuracy is not None:
            gap_accuracy = float(curve[train_acc_key].iloc[-1] - curve[f"{prefix}accuracy"].iloc[-1])
            if math.isnan(gap_accuracy):
                missing.append(f"no {train_acc_key} or {prefix}accuracy at the last evaluation (step "
                               f"{steps[-1]}): the accuracy gap is not judged")
        if train_loss_key is not None:
            gap_loss = float(values[-1] - curve[train_loss_key].iloc[-1])
        if curve["running_train_loss"].isna().all():
            missing.append("no training loss logged at or before any evaluation (logging_strategy='no', or "
                           "logging_steps longer than the run): the running training loss is not shown")

        per_epoch = bool(len(epochs)) and np.allclose(epochs, np.arange(1, len(epochs) + 1), atol=1e-3)
        if not per_epoch:
            notes.append(f"evaluations were logged per steps (at steps {_listing(steps)}; epochs "
                         f"{_listing(np.round(epochs, 2))}), not once per epoch: the run is judged per "
                         f"evaluation ({len(steps)} evaluations), the tolerances apply between evaluations")
        held_out = _held_out_losses(self.log)
        if len(held_out) > 1:
            notes.append(f"several held-out evaluation sets ({', '.join(held_out)}): judged on {held_out[0]}")
        repeated = self._repeated_evaluations()
        if repeated:
            notes.append(f"evaluation metrics logged twice at step(s) {_listing(repeated)} "
                         "(trainer.evaluate() after training, after loading the best model with "
                         "load_best_model_at_end): the first value is kept")

        verdict, reason = fit_verdict(values, gap_accuracy=gap_accuracy, thresholds=thresholds)
        if math.isnan(gap_accuracy):
            reason = reason.replace("accuracy gap nan", "accuracy gap not judged")
        if not per_epoch:
            reason = re.sub(r"\bepoch (\d+)", lambda m: _at(int(m.group(1)), steps), reason)

        finite = bool(np.isfinite(values).any())
        best = best_epoch(values) if finite else None
        onset = overfitting_onset(values, tolerance=thresholds.loss_rise)
        best_step = int(steps[best - 1]) if best is not None else None
        checkpoint = self.checkpoint_for(best_step) if best_step is not None else None
        return {
            "verdict": verdict,
            "reason": reason,
            "per": "epoch" if per_epoch else "steps",
            "evaluations": len(values),
            "loss_metric": self.loss_metric,
            "best_evaluation": best,
            "best_step": best_step,
            "best_epoch": _float(epochs[best - 1]) if best is not None else None,
            "best_loss": float(values[best - 1]) if best is not None else math.nan,
            "loss_rise": loss_rise(values) if finite else math.nan,
            "onset_evaluation": onset,
            "onset_step": int(steps[onset - 1]) if onset is not None else None,
            "onset_epoch": _float(epochs[onset - 1]) if onset is not None else None,
            "checkpoint": checkpoint.path if checkpoint is not None else None,
            "best_checkpoint": self.best_checkpoint,
            "gap_accuracy": gap_accuracy,
            "gap_loss": gap_loss,
            "curve": curve,
            "labels": {"running_train_loss": RUNNING_LOSS_LABEL,
                       self.loss_metric: "held-out loss (eval mode) at the evaluation"},
            "missing": missing,
            "notes": notes,
        }

    def _running_loss(self, steps: np.ndarray) -> np.ndarray:
        """The last running training loss logged at or before each step (NaN where none is)."""
        train = self.train_curve()
        at = np.searchsorted(train["step"].to_numpy(dtype=int), steps, side="right") - 1
        logged = train["loss"].to_numpy(dtype=float)
        return np.where(at >= 0, logged[np.maximum(at, 0)] if len(logged) else np.nan, np.nan)

    def _repeated_evaluations(self) -> list[int]:
        evals = self.log[self.log["kind"] == "eval"]
        return sorted({int(s) for s in evals.loc[evals.duplicated(["step", "metric"]), "step"]})


# ------------------------------------------------------------------------------------------- reading
def read_trainer_run(output_dir: str | Path, *, require_checkpoints: bool = False) -> TrainerRun:
    """Read a ``transformers.Trainer`` output directory.

    Parameters
    ----------
    output_dir : str or Path
        The ``output_dir`` of the ``TrainingArguments``.
    require_checkpoints : bool
        Also require a ``checkpoint-<step>`` directory holding model weights (to score a model).

    Returns
    -------
    TrainerRun

    Raises
    ------
    OverfitLabError
        With key ``--trainer-run``: no such directory; no ``trainer_state.json`` at the root or
        in a checkpoint; a state that is not valid JSON or has no ``log_history`` list; a log
        without evaluation entries or without an evaluation loss; with ``require_checkpoints``,
        no checkpoint holding model weights.
    """
    root = Path(output_dir).expanduser()
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "no such directory"
        raise OverfitLabError(f"{what}: {root}.", key=KEY,
                              fix="give the output_dir of the TrainingArguments the model was trained with.")
    found = sorted((int(m.group(1)), p) for p in root.iterdir()
                   if (m := CHECKPOINT_DIR.fullmatch(p.name)) is not None and p.is_dir())
    state_file = _state_file(root, found)
    state = _load_state(state_file)
    log = _tidy(state["log_history"])
    if not (log["kind"] == "eval").any():
        raise OverfitLabError(f"the log of {state_file} has no evaluation entries, so there is no held-out "
                              "loss curve to judge.", key=KEY,
                              fix="train with eval_strategy='epoch' and an eval_dataset.")
    if not _held_out_losses(log):
        logged = ", ".join(sorted(set(log.loc[log["kind"] == "eval", "metric"])))
        raise OverfitLabError(f"the evaluations in {state_file} log no held-out loss (only {logged}).",
                              key=KEY, fix="give the eval_dataset its labels (or set label_names) so that "
                                           "Trainer logs eval_loss.")
    checkpoints = [Checkpoint(path=path, step=step, epoch=_checkpoint_epoch(log, step, path))
                   for step, path in found]
    if require_checkpoints and not any(c.has_weights for c in checkpoints):
        where = (f"{len(checkpoints)} checkpoint directories without model weights" if checkpoints
                 else "no checkpoint-<step> directory")
        raise OverfitLabError(f"{root} has {where}: no model to score.", key=KEY,
                              fix="train with save_strategy='epoch' (each checkpoint keeps the weights).")
    return TrainerRun(output_dir=root, log=log, checkpoints=checkpoints,
                      best_checkpoint=_best_checkpoint(root, state), state=state, state_file=state_file)


def _state_file(root: Path, found: list[tuple[int, Path]]) -> Path:
    """The root's state, unless a checkpoint is newer than it; else the highest-step checkpoint's."""
    saved = [(step, path / STATE_FILE) for step, path in found if (path / STATE_FILE).is_file()]
    top = root / STATE_FILE
    if top.is_file():
        step = _load_state(top).get("global_step")  # a corrupt root state is an error, not skipped
        if saved and isinstance(step, int) and saved[-1][0] > step:  # a newer run saved checkpoints since
            return saved[-1][1]
        return top
    if saved:
        return saved[-1][1]
    raise OverfitLabError(f"no {STATE_FILE} in {root} or in a checkpoint-<step> directory of it: was it "
                          "trained with save_strategy='no'?", key=KEY,
                          fix="train with save_strategy='epoch' or call trainer.save_state() after training.")


def _load_state(path: Path) -> dict:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise OverfitLabError(f"cannot read {STATE_FILE} ({exc.strerror or exc}).", file=path, key=KEY,
                              fix="check the file's permissions.") from None
    except ValueError as exc:
        raise OverfitLabError(f"{STATE_FILE} is not valid JSON ({exc}).", file=path, key=KEY,
                              fix="use another checkpoint's trainer_state.json, or save it again with "
                                  "trainer.save_state().") from None
    if not isinstance(state, dict) or not isinstance(state.get("log_history"), list):
        raise OverfitLabError(f"{STATE_FILE} has no log_history list: not a Trainer state.", file=path,
                              key=KEY, fix="give the output_dir of a transformers Trainer run.")
    return state


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _kind(entry: dict) -> str | None:
    """``"train"``, ``"eval"``, or None for the final summary of the run."""
    if "loss" in entry:
        return "train"
    if "total_flos" in entry and "train_runtime" in entry:
        return None
    if any(k.startswith("eval_") or k.endswith("_runtime") for k in entry):
        return "eval"  # eval_*, or trainer.evaluate(metric_key_prefix=P): P_loss, P_runtime
    return "train"


def _tidy(history: list) -> pd.DataFrame:
    rows = []
    for entry in history:
        if not isinstance(entry, dict) or not isinstance(entry.get("step"), int):
            continue
        kind = _kind(entry)
        if kind is None:
            continue
        epoch = _number(entry.get("epoch"))
        for key, value in entry.items():
            number = _number(value)
            if key not in ("step", "epoch") and number is not None:
                rows.append((entry["step"], math.nan if epoch is None else epoch, kind, key, number))
    log = pd.DataFrame(rows, columns=["step", "epoch", "kind", "metric", "value"])
    return log.astype({"step": int, "epoch": float, "kind": str, "metric": str, "value": float})


def _wide(rows: pd.DataFrame) -> pd.DataFrame:
    """Tidy rows as one row per step with a column per metric (first value of each, log order)."""
    metrics = list(dict.fromkeys(rows["metric"]))
    rows = rows.drop_duplicates(["step", "metric"], keep="first")
    wide = rows.pivot(index="step", columns="metric", values="value").reindex(columns=metrics)
    epochs = rows.drop_duplicates("step", keep="first").set_index("step")["epoch"]
    wide.insert(0, "epoch", epochs.reindex(wide.index))
    wide.columns.name = None
    return wide.sort_index().reset_index()


def _held_out_losses(log: pd.DataFrame) -> list[str]:
    """Held-out loss keys in log order: ``eval_loss`` first, then ``eval_<set>_loss`` of the
    sets that are not the training split."""
    keys = list(dict.fromkeys(log.loc[log["kind"] == "eval", "metric"]))
    named = [k for k in keys if re.fullmatch(r"eval_(.+)_loss", k) and k[5:-5] not in TRAIN_SETS]
    return (["eval_loss"] if "eval_loss" in keys else []) + named


def _train_split_keys(wide: pd.DataFrame) -> tuple[str | None, str | None]:
    """The training split's evaluation loss and accuracy columns (``eval_train_*`` of a dict
    eval_dataset, or ``train_*`` of ``evaluate(metric_key_prefix="train")``), or None."""
    for prefix in ("eval_train_", "eval_training_", "train_"):
        if f"{prefix}accuracy" in wide.columns:
            loss = f"{prefix}loss" if f"{prefix}loss" in wide.columns else None
            return loss, f"{prefix}accuracy"
    for prefix in ("eval_train_", "eval_training_"):
        if f"{prefix}loss" in wide.columns:
            return f"{prefix}loss", None
    return None, None


def _column(wide: pd.DataFrame, key: str, steps: np.ndarray) -> np.ndarray | None:
    if key not in wide.columns:
        return None
    return wide[key].reindex(steps).to_numpy(dtype=float)


def _checkpoint_epoch(log: pd.DataFrame, step: int, path: Path) -> float | None:
    epochs = log.loc[log["step"] == step, "epoch"].dropna()
    if len(epochs):
        return float(epochs.iloc[0])
    try:
        epoch = json.loads((path / STATE_FILE).read_text(encoding="utf-8")).get("epoch")
    except (OSError, ValueError, AttributeError):
        return None
    return _number(epoch)


def _best_checkpoint(root: Path, state: dict) -> Path | None:
    """Trainer's best checkpoint found by its name inside ``root`` (the recorded path is relative
    to the working directory of training, or absolute, and points where the run was trained)."""
    names = []
    recorded = state.get("best_model_checkpoint")
    if isinstance(recorded, str) and recorded:
        names.append(PureWindowsPath(recorded).name)  # splits on "/" and "\\" alike
    step = state.get("best_global_step")
    if isinstance(step, int) and not isinstance(step, bool):
        names.append(f"checkpoint-{step}")
    for name in names:
        if CHECKPOINT_DIR.fullmatch(name) and (root / name).is_dir():
            return root / name
    return None


def _float(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _listing(values: Any, most: int = 8) -> str:
    values = [f"{v:g}" if isinstance(v, float) else str(v) for v in values]
    return ", ".join(values if len(values) <= most else [*values[: most - 2], "...", values[-1]])


def _at(evaluation: int, steps: np.ndarray) -> str:
    """``evaluation k at step s`` for the k-th evaluation (1-based)."""
    if not 1 <= evaluation <= len(steps):
        return f"evaluation {evaluation}"
    return f"evaluation {evaluation} at step {steps[evaluation - 1]}"

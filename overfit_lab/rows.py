"""The rows a cell produces and the store keeps, typed: one frozen dataclass per table.

Producers (:mod:`overfit_lab.training`, :mod:`overfit_lab.scoring`, the adapters of
:mod:`overfit_lab.diagnostics.checkpoint`, :mod:`overfit_lab.auditing`) build these rows;
:meth:`overfit_lab.store.RunStore.commit` writes them by field name. The ``Literal`` aliases name
the few strings the package passes around (checkpoints, splits, cell statuses, epoch modes,
example kinds). This module imports nothing of the package, so every layer may use it.

Each column of the diagnostics table has one meaning: ``group`` is a subgroup
(``gender=female``) or a group column (``gender``) only; a reliability bin is ``bin_low`` /
``bin_high`` and a point of the membership ROC curve is its ``fpr``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal, TypedDict, get_args

__all__ = [
    "CHECKPOINTS", "REGIONS", "SPLITS", "CellRow", "CellStatus", "Checkpoint", "DiagnosticFields",
    "DiagnosticRow", "DynamicsRow", "EpochMode", "ExampleKind", "ExampleRow", "MetricRow", "Region", "Split",
    "field_names",
]

Checkpoint = Literal["final", "best"]  # the model after the last epoch, or at its lowest validation loss
Split = Literal["train", "validation", "test"]  # "train": the cell's training subset
CellStatus = Literal["finished", "failed"]
EpochMode = Literal["shared", "separate", "audit"]  # see overfit_lab.grid; "audit": no training
# robustness: a perturbation's flips; counterfactual: identity swaps; slice: a test text a weak
# slice holds that the model got wrong; mislabeled: a training text the model kept disagreeing with
ExampleKind = Literal["robustness", "counterfactual", "slice", "mislabeled"]
Region = Literal["easy-to-learn", "ambiguous", "hard-to-learn"]  # dataset cartography's data map

CHECKPOINTS: tuple[Checkpoint, ...] = get_args(Checkpoint)
REGIONS: tuple[Region, ...] = get_args(Region)
SPLITS: tuple[Split, ...] = get_args(Split)


@dataclass(frozen=True)
class CellRow:
    """The plain fields of one cell (a row of the ``cells`` table, less its outcome)."""

    cell_id: str
    train_size: int
    strategy: str
    seed: int
    label_noise: float
    epochs: int
    record_epochs: tuple[int, ...]
    epoch_mode: EpochMode
    epoch_mode_reason: str = ""


@dataclass(frozen=True)
class MetricRow:
    """A classification metric of one split after one epoch (``running_loss``: the training loss
    the trainer logged during the epoch, split ``train``)."""

    epoch: int
    split: Split
    metric: str
    value: float


@dataclass(frozen=True)
class DiagnosticRow:
    """One figure of a diagnostic at one checkpoint, with what it belongs to where that applies.

    ``group``: a subgroup (``gender=female``) or a group column (``gender``); ``op`` and
    ``severity``: a perturbation (or, for ``*_high_group``/``*_low_group``, which rate it is);
    ``layer``: a hidden state or weight matrix; ``bin_low``/``bin_high``: the confidence bin of
    a reliability row; ``fpr``: the false positive rate of a membership ROC point.
    """

    checkpoint: Checkpoint
    metric: str
    value: float | None
    group: str | None = None
    op: str | None = None
    severity: float | None = None
    layer: str | None = None
    bin_low: float | None = None
    bin_high: float | None = None
    fpr: float | None = None

    def at(self, checkpoint: Checkpoint) -> DiagnosticRow:
        """The same figure, labelled as taken at ``checkpoint``."""
        return replace(self, checkpoint=checkpoint)


class DiagnosticFields(TypedDict, total=False):
    """What a diagnostic adapter returns per figure: :class:`DiagnosticRow`'s fields less the
    checkpoint (``metric`` and ``value`` always, the others where they apply)."""

    metric: str
    value: float | None
    group: str | None
    op: str | None
    severity: float | None
    layer: str | None
    bin_low: float | None
    bin_high: float | None
    fpr: float | None


@dataclass(frozen=True)
class ExampleRow:
    """An example input for the report (final checkpoint only): the text, its variant (perturbed
    or identity-swapped), the true label and both predictions with their confidence.

    Kinds without a variant (``slice``, ``mislabeled``) leave ``variant`` empty and repeat the
    prediction in ``variant_pred``/``variant_confidence``. ``slice``: ``op`` names the weak slice.
    ``mislabeled``: ``label`` is the label trained on, ``pred`` the class the model preferred
    over the epochs, ``confidence`` its mean probability of the trained label, ``op`` its data-map
    region (``memorised`` appended when it was learned only after the best epoch) and
    ``severity`` its mislabel score (see :mod:`overfit_lab.diagnostics.cartography`).
    """

    kind: ExampleKind
    op: str | None
    severity: float | None
    text: str
    variant: str
    label: int
    pred: int
    confidence: float
    variant_pred: int
    variant_confidence: float


@dataclass(frozen=True)
class DynamicsRow:
    """One training example's place on the data map (Swayamdipta et al. 2020), from its
    predictions after every epoch: ``position`` in the training pool, the ``label`` trained on
    and its ``clean_label`` (they differ where label noise flipped it), the mean (``confidence``)
    and standard deviation (``variability``) of the probability of the trained label, the share
    of epochs it was predicted correctly (``correctness``), the mean margin of that label over the
    most likely other class (``margin``), the first epoch from which it stayed learned
    (``learned_epoch``; ``None``: wrong at the last epoch), its ``region`` and whether it was
    ``memorised`` (learned only after the epoch of lowest validation loss)."""

    position: int
    label: int
    clean_label: int
    confidence: float
    variability: float
    correctness: float
    margin: float
    learned_epoch: int | None
    region: Region
    memorised: bool


def field_names(row_type: type) -> tuple[str, ...]:
    """The field names of a row dataclass, in order."""
    return tuple(f.name for f in fields(row_type))

"""The notes under the terminal's diagnostics table: what each headline figure is, with the run's
own settings and counts (the HTML report says the same at length)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .formatting import NONMEMBERS

if TYPE_CHECKING:
    from ..analysis import RunResult

__all__ = ["extraction_note", "forgetting_note", "left_out_note", "membership_note", "perplexity_change_note",
           "robustness_note"]


LEFT_OUT_SHOWN = 6


def left_out_note(run: RunResult) -> str:
    """The subgroups bias amp left out (the first few; the report lists them all)."""
    from .sections import left_out_notes

    notes = left_out_notes(run)
    if not notes:
        return ""
    more = len(notes) - LEFT_OUT_SHOWN
    shown = "; ".join(notes[:LEFT_OUT_SHOWN]) + (f"; and {more} more (see the report)" if more > 0 else "")
    return (f"bias amp: groups with fewer than {run.suite.diagnostics.bias.min_group_size} training or test "
            f"rows left out: {shown}")


def robustness_note(run: RunResult) -> str:
    """What the worst drop is: the ops' headline severities (one in words), its upward bias and the
    mean half-width of its within-cell paired interval."""
    from ..diagnostics.perturb import CHARACTER_OPS, describe_severity, headline_severities

    spec = run.suite.diagnostics.robustness
    headline = headline_severities(spec.ops, spec.headline)
    used = {op: value for op, value in headline.items() if value is not None}
    note = ("worst drop: the largest accuracy drop over the ops at their headline severity ("
            + (", ".join(f"{op} {value:g}" for op, value in used.items()) or "none"))
    if len(used) < len(headline):
        note += f"; curves only: {', '.join(op for op in headline if op not in used)}"
    note += ")"
    char = next((op for op in used if op in CHARACTER_OPS), None)
    if char is not None:
        note += f"; {char} {used[char]:g} = {describe_severity(char, used[char])}"
    note += "; a maximum over noisy drops, so biased upward"
    ends = run.within_cell_interval("worst_robustness_drop", "worst_robustness_drop_n")
    if not np.isnan(ends["half"]):
        note += (f"; its paired 95% interval (Newcombe) is ±{ends['half']:.2f} on average on "
                 f"{ends['n_median']:.0f} test texts (report.html shows it per cell)")
    return note


def membership_note(run: RunResult) -> str:
    """What MIA adv is, with the run's m and the mean 95% interval half-width of one cell."""
    ends = run.within_cell_interval("membership_advantage", "membership_n")
    low, high = ends["n_min"], ends["n_max"]
    m = "" if np.isnan(low) else (f" (m = {int(low)})" if low == high else f" (m = {int(low)}-{int(high)})")
    others = NONMEMBERS[run.membership_nonmembers]
    note = ("MIA adv: loss-threshold membership advantage TPR - FPR, threshold cross-fitted (chance level 0; "
            f"below 0 is noise); members: training rows, non-members: as many {others}{m}")
    if not np.isnan(ends["half"]):
        note += (f"; 95% interval of one cell about ±{ends['half']:.2f} (per size and strategy in the "
                 "HTML report)")
    return note


def perplexity_change_note(run: RunResult) -> str:
    """What the worst PPL change is, with the pretrained model's change beside it."""
    scores = run.cell_scores(extra=True)
    note = ("worst PPL change: the largest relative perplexity increase on test documents over the ops at "
            "their headline severity")
    if "worst_perplexity_change_pretrained" in scores.columns:
        pretrained = scores["worst_perplexity_change_pretrained"].mean()
        note += (f"; the pretrained model's change under the same op: {pretrained:+.3f} on average (a "
                 "perturbed text is less likely text for any model: the fine-tuned figure means fragility "
                 "only above it)")
    return note


def extraction_note(run: RunResult) -> str:
    """What the extraction advantage is: k, m, the rates behind it."""
    spec = run.suite.diagnostics.memorization
    scores = run.cell_scores(extra=True)
    note = (f"extraction adv: share of training documents whose greedy continuation of their first "
            f"{spec.prefix_length} tokens reproduces the next {spec.suffix_length} exactly, minus the same "
            "share on as many non-members (chance level 0)")
    if {"extraction_rate", "extraction_rate_heldout"} <= set(scores.columns):
        note += (f"; rates {scores['extraction_rate'].mean():.3f} (training) and "
                 f"{scores['extraction_rate_heldout'].mean():.3f} (non-members) on average")
    return note


def forgetting_note(run: RunResult) -> str:
    probe = run.suite.diagnostics.forgetting.probe
    return ("forgetting: perplexity on general text after / before fine-tuning (1 = nothing forgotten; "
            f"probe: {probe if probe is not None else 'the packaged general prose'})")

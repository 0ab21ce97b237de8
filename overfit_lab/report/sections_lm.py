"""The HTML report's causal-LM section as template rows: perplexity and its gap, forgetting,
extraction and the perplexity change under perturbations, per size x strategy. Each reads the
analysis of a :class:`~overfit_lab.analysis.RunResult` and words it; nothing is computed here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .formatting import mean_ends, seed_rows
from .sections import fmt_row

if TYPE_CHECKING:
    from ..analysis import RunResult

__all__ = ["language_rows", "perplexity_change_rows"]

LANGUAGE_SCORES = ("test_perplexity", "perplexity_ratio", "forgetting_ratio", "probe_perplexity_before",
                   "probe_perplexity_after", "extraction_rate", "extraction_rate_heldout",
                   "extraction_advantage", "extraction_advantage_low", "extraction_advantage_high",
                   "worst_perplexity_change", "worst_perplexity_change_pretrained")


def _ordered(run: RunResult, keys) -> list[tuple]:
    order = {name: i for i, name in enumerate(run.suite.grid.strategies)}
    return sorted(keys, key=lambda key: (key[0], order.get(key[1], len(order))))


def language_rows(run: RunResult) -> list[dict]:
    """Per size x strategy (mean over seeds, with the interval over seeds): test perplexity and the
    validation/train perplexity ratio, the forgetting ratio with the probe's perplexity before and
    after, the extraction rates (training documents, non-members), their difference with its
    within-cell 95% interval (mean of its ends), and the worst perplexity change beside the
    pretrained model's under the same op."""
    if run.scores.empty:
        return []
    by = ("train_size", "strategy")
    seeds = seed_rows(run.over_seeds(LANGUAGE_SCORES, by=by), by)
    keys = {(r.train_size, r.strategy) for r in run.scores.itertuples()}

    def cell(size, strategy, metric: str) -> str:
        return fmt_row(seeds.get((size, strategy, metric)))

    rows = []
    for size, strategy in _ordered(run, keys):
        low, high = (seeds.get((size, strategy, f"extraction_advantage_{end}")) for end in ("low", "high"))
        rows.append({"size": int(size), "strategy": strategy,
                     **{name: cell(size, strategy, name) for name in LANGUAGE_SCORES},
                     "extraction_interval": "–" if low is None or high is None
                     else mean_ends(low["mean"], high["mean"], "+.3f")})
    return rows


def perplexity_change_rows(run: RunResult) -> list[dict]:
    """Per op and severity, at the largest size, per strategy: the relative perplexity change of the
    fine-tuned model and of the pretrained one on the same texts (mean over seeds)."""
    fine = run.row_curve("perplexity_change", "severity", by=("strategy", "op"), largest_size=True)
    base = run.row_curve("perplexity_change_pretrained", "severity", by=("strategy", "op"), largest_size=True)
    if fine.empty:
        return []
    pretrained = {(r.strategy, r.op, r.severity): r.value for r in base.itertuples()}
    order = {name: i for i, name in enumerate(run.suite.grid.strategies)}
    rows = []
    for r in sorted(fine.itertuples(), key=lambda r: (r.op, r.severity, order.get(r.strategy, len(order)))):
        before = pretrained.get((r.strategy, r.op, r.severity))
        rows.append({"op": r.op, "severity": f"{r.severity:g}", "strategy": r.strategy,
                     "change": f"{r.value:+.3f}", "pretrained": "–" if before is None else f"{before:+.3f}",
                     "size": int(r.train_size)})
    return rows

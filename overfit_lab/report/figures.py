"""Plotly figures of a run for the HTML report.

Each function takes a :class:`~overfit_lab.analysis.RunResult` (and frames derived from it) and
returns a ``plotly.graph_objects.Figure``, or ``None`` when the run has nothing to show. Figures
aggregate over seeds (means with 95% intervals) instead of drawing every point, so the report
stays small; per-cell learning curves use one dropdown instead of one plot per cell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .formatting import NONMEMBERS, seed_rows

if TYPE_CHECKING:
    from ..analysis import RunResult

__all__ = ["data_map", "drift", "gap_vs_size", "heatmaps", "learning_curves", "membership_roc", "reliability",
           "robustness_curves", "spectral"]


PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22"]
LAYOUT = {"template": "plotly_white", "margin": {"l": 60, "r": 20, "t": 50, "b": 50}, "height": 380,
          "font": {"size": 12}}


def _colors(strategies: list[str]) -> dict[str, str]:
    return {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(strategies)}


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def learning_curves(run: RunResult) -> go.Figure | None:
    """Train and validation loss and accuracy per epoch, one cell at a time (dropdown), with the
    best epoch (lowest validation loss) marked."""
    metrics = run.metrics
    finished = run.cells[run.cells["status"] == "finished"]["cell_id"].tolist()
    if metrics.empty or not finished:
        return None
    language = run.task.name == "causal-lm"
    fig = make_subplots(rows=1, cols=2, subplot_titles=("token loss" if language else "loss",
                                                        "next-token accuracy" if language else "accuracy"))
    series = [("train", "loss", 1, "#1f77b4", "solid"), ("validation", "loss", 1, "#d62728", "solid"),
              ("train", "accuracy", 2, "#1f77b4", "dot"), ("validation", "accuracy", 2, "#d62728", "dot")]
    buttons, shapes_per_cell = [], []
    best_epochs = run.best_epochs
    for k, cell_id in enumerate(finished):
        rows = metrics[metrics["cell_id"] == cell_id]
        for split, metric, col, color, dash in series:
            part = rows[(rows["split"] == split) & (rows["metric"] == metric)].sort_values("epoch")
            fig.add_trace(go.Scatter(x=part["epoch"], y=part["value"], name=f"{split} {metric}",
                                     mode="lines+markers", line={"color": color, "dash": dash},
                                     visible=k == 0, legendgroup=f"{split}{metric}"), row=1, col=col)
        best = best_epochs.get(cell_id)
        best = None if best is None or pd.isna(best) else int(best)
        shapes = [] if best is None else [
            {"type": "line", "xref": xref, "yref": "paper", "x0": best, "x1": best, "y0": 0, "y1": 1,
             "line": {"color": "#555", "dash": "dash", "width": 1}} for xref in ("x", "x2")]
        shapes_per_cell.append(shapes)
        visible = [j // len(series) == k for j in range(len(finished) * len(series))]
        buttons.append({"label": cell_id, "method": "update",
                        "args": [{"visible": visible}, {"shapes": shapes,
                                                        "title.text": f"{cell_id}: best epoch {best}"}]})
    first = buttons[0]["args"][1]["title.text"]
    fig.update_layout(**{**LAYOUT, "margin": {**LAYOUT["margin"], "t": 90}}, title={"text": first},
                      shapes=shapes_per_cell[0],
                      updatemenus=[{"buttons": buttons, "direction": "down", "x": 1.0, "xanchor": "right",
                                    "y": 1.22, "yanchor": "top"}])
    fig.update_xaxes(title_text="epoch", dtick=1)
    return fig


def gap_vs_size(run: RunResult, scores: pd.DataFrame, curves: pd.DataFrame) -> go.Figure | None:
    """Mean accuracy gap against training size per strategy, with a 95% band and the fitted
    power law (dashed)."""
    if scores.empty or scores["train_size"].nunique() < 1:
        return None
    colors = _colors(run.suite.grid.strategies)
    fig = go.Figure()
    bands = run.over_seeds(["gap_accuracy"], by=("strategy", "train_size"))
    for strategy in scores["strategy"].unique():
        band = bands[bands["strategy"] == strategy].sort_values("train_size")
        x = band["train_size"].tolist()
        mean = band["mean"].tolist()
        low = band["low"].fillna(band["mean"]).tolist()
        high = band["high"].fillna(band["mean"]).tolist()
        color = colors.get(strategy, "#333")
        fig.add_trace(go.Scatter(x=x + x[::-1], y=high + low[::-1], fill="toself", line={"width": 0},
                                 fillcolor=_rgba(color, 0.15), hoverinfo="skip", showlegend=False,
                                 legendgroup=strategy))
        fig.add_trace(go.Scatter(x=x, y=mean, name=strategy, mode="lines+markers", line={"color": color},
                                 legendgroup=strategy))
        fit = curves[curves["strategy"] == strategy] if not curves.empty else curves
        if not fit.empty and np.isfinite(fit["a"].iloc[0]) and len(x) > 1:
            grid = np.geomspace(min(x), max(x), 30)
            fig.add_trace(go.Scatter(x=grid, y=fit["a"].iloc[0] * grid ** -fit["b"].iloc[0], mode="lines",
                                     line={"color": color, "dash": "dash", "width": 1}, showlegend=False,
                                     hoverinfo="skip", legendgroup=strategy))
    fig.add_hline(y=run.suite.statistics.gap_threshold, line={"color": "#888", "dash": "dot"},
                  annotation_text="gap threshold")
    fig.update_layout(**LAYOUT, title="accuracy gap (train − validation) vs training size, mean and 95% CI")
    fig.update_xaxes(title_text="training examples", type="log")
    fig.update_yaxes(title_text="accuracy gap")
    return fig


def heatmaps(run: RunResult, summary: pd.DataFrame) -> go.Figure | None:
    """Size x strategy heatmaps of the mean accuracy gap and validation accuracy."""
    if summary.empty:
        return None
    fig = make_subplots(rows=1, cols=2, subplot_titles=("accuracy gap", "validation accuracy"),
                        horizontal_spacing=0.15)
    strategies = [s for s in run.suite.grid.strategies if s in set(summary["strategy"])]
    for col, (metric, scale) in enumerate((("gap_accuracy", "Reds"), ("validation_accuracy", "Greens")), 1):
        part = summary[summary["metric"] == metric].groupby(["strategy", "train_size"])["mean"].mean()
        grid = part.unstack("train_size").reindex(strategies)
        fig.add_trace(go.Heatmap(z=grid.to_numpy(), x=[str(c) for c in grid.columns], y=strategies,
                                 colorscale=scale, text=np.round(grid.to_numpy(), 3), texttemplate="%{text}",
                                 showscale=False, hovertemplate="size %{x}<br>%{y}: %{z:.3f}<extra></extra>"),
                      row=1, col=col)
    fig.update_layout(**{**LAYOUT, "height": max(280, 100 + 40 * len(strategies)),
                         "margin": {**LAYOUT["margin"], "t": 80}},
                      title="mean over seeds, largest epoch value")
    fig.update_xaxes(title_text="training examples", type="category")
    return fig


def robustness_curves(run: RunResult) -> go.Figure | None:
    """Accuracy drop against perturbation severity per op (mean over cells), one strategy at a
    time (dropdown); each point's severity in words on hover, a star at the op's headline severity."""
    from ..diagnostics.perturb import describe_severity, headline_severities

    drops = run.row_curve("robustness_drop", "severity", by=("strategy", "op"))
    if drops.empty:
        return None
    strategies = [s for s in run.suite.grid.strategies if s in set(drops["strategy"])]
    ops = sorted(drops["op"].dropna().unique())
    spec = run.suite.diagnostics.robustness
    headline = headline_severities(ops, spec.headline)
    fig = go.Figure()
    for k, strategy in enumerate(strategies):
        rows = drops[drops["strategy"] == strategy]
        for i, op in enumerate(ops):
            curve = rows[rows["op"] == op].set_index("severity")["value"].sort_index()
            star = [headline[op] is not None and np.isclose(s, headline[op]) for s in curve.index]
            fig.add_trace(go.Scatter(x=curve.index, y=curve.to_numpy(), name=op, mode="lines+markers",
                                     line={"color": PALETTE[i % len(PALETTE)]}, visible=k == 0,
                                     marker={"symbol": ["star" if h else "circle" for h in star],
                                             "size": [13 if h else 7 for h in star]},
                                     text=[describe_severity(op, s) + (" (headline)" if h else "")
                                           for s, h in zip(curve.index, star, strict=True)],
                                     hovertemplate="%{fullData.name}: %{text}<br>drop %{y:.3f}"
                                                   "<extra></extra>"))
    buttons = [{"label": s, "method": "update",
                "args": [{"visible": [j // len(ops) == k for j in range(len(strategies) * len(ops))]},
                         {"title.text": f"robustness drop vs severity: {s} (mean over sizes and seeds)"}]}
               for k, s in enumerate(strategies)]
    fig.update_layout(**{**LAYOUT, "height": 420}, title=buttons[0]["args"][1]["title.text"],
                      updatemenus=[{"buttons": buttons, "x": 1.0, "xanchor": "right", "y": 1.2}])
    fig.update_xaxes(title_text="severity (share of the op's letters, words or matches touched)")
    fig.update_yaxes(title_text="accuracy drop (clean − perturbed)")
    return fig


def reliability(run: RunResult) -> go.Figure | None:
    """Reliability diagram per strategy at the largest size: accuracy against mean confidence per
    bin, pooled over seeds (bins weighted by their counts)."""
    pooled_bins = run.reliability_pooled
    if pooled_bins.empty:
        return None
    colors = _colors(run.suite.grid.strategies)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"color": "#999", "dash": "dot"},
                             name="perfect calibration"))
    for strategy, pooled in pooled_bins.groupby("strategy", sort=False):
        fig.add_trace(go.Scatter(x=pooled["confidence"], y=pooled["accuracy"], name=strategy,
                                 mode="lines+markers", marker={"size": 4 + 12 * np.sqrt(pooled["count"] /
                                                                                        pooled["count"].sum())},
                                 line={"color": colors.get(strategy, "#333")}))
    size = pooled_bins["train_size"].iloc[0]
    fig.update_layout(**LAYOUT, title=f"reliability diagram at {size} training examples (test split)")
    fig.update_xaxes(title_text="mean confidence in bin", range=[0, 1])
    fig.update_yaxes(title_text="accuracy in bin", range=[0, 1])
    return fig


def membership_roc(run: RunResult) -> go.Figure | None:
    """ROC of the loss-threshold membership attack per strategy at the largest size (mean TPR
    over seeds at each FPR), with each strategy's AUC and cross-fitted advantage (mean over seeds,
    and the 95% interval of one cell averaged over seeds) in the legend."""
    roc = run.row_curve("membership_roc_tpr", "fpr", largest_size=True)
    if roc.empty:
        return None
    size = roc["train_size"].iloc[0]
    by = ("train_size", "strategy")
    seeds = seed_rows(run.over_seeds(["membership_auc", "membership_n", *(f"membership_advantage{m}"
                                                                          for m in ("", "_low", "_high"))],
                                     by=by), by)

    def mean(strategy: str, metric: str) -> float:
        return (seeds.get((size, strategy, metric)) or {"mean": np.nan})["mean"]

    colors = _colors(run.suite.grid.strategies)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"color": "#999", "dash": "dot"},
                             name="chance"))
    counts = []
    for strategy, curve in roc.groupby("strategy", sort=False):
        name = f"{strategy} (AUC {mean(strategy, 'membership_auc'):.3f}"
        if (size, strategy, "membership_advantage") in seeds:
            name += f", adv {mean(strategy, 'membership_advantage'):+.3f}"
            if (size, strategy, "membership_advantage_low") in seeds:
                name += (f" [{mean(strategy, 'membership_advantage_low'):+.3f}, "
                         f"{mean(strategy, 'membership_advantage_high'):+.3f}]")
        counts += [c for c in (seeds.get((size, strategy, "membership_n")) or {"values": ()})["values"]
                   if np.isfinite(c)]
        fig.add_trace(go.Scatter(x=curve["fpr"], y=curve["value"].to_numpy(), mode="lines", name=name + ")",
                                 line={"color": colors.get(strategy, "#333")}))
    m = "" if not counts else (f" {int(min(counts))}" if min(counts) == max(counts)
                               else f" {int(min(counts))}-{int(max(counts))}")
    fig.update_layout(**LAYOUT, title=f"membership inference ROC at {size} training "
                                      f"examples (members:{m} training rows; non-members: as many "
                                      f"{NONMEMBERS[run.membership_nonmembers]})")
    fig.update_xaxes(title_text="false positive rate", range=[0, 1])
    fig.update_yaxes(title_text="true positive rate", range=[0, 1])
    return fig


def drift(run: RunResult) -> go.Figure | None:
    """Debiased linear CKA with the pretrained model and relative weight distance per layer, per
    strategy at the largest size; hollow CKA markers for layers frozen in every seed (CKA 1 by
    construction, left out of the headline mean)."""
    cka, dist = (run.row_curve(metric, "layer", largest_size=True) for metric in ("cka", "weight_distance"))
    if cka.empty and dist.empty:
        return None
    frozen = run.row_curve("cka_frozen", "layer", largest_size=True, agg="min")  # frozen in every seed
    titles = ("linear CKA (debiased) with the pretrained model (1 = unchanged; hollow = frozen)",
              "relative L2 distance of weights")
    fig = make_subplots(rows=1, cols=2, subplot_titles=titles)
    colors = _colors(run.suite.grid.strategies)
    for col, frame in ((1, cka), (2, dist)):
        if frame.empty:
            continue
        layers = list(dict.fromkeys(frame["layer"]))
        for strategy, rows in frame.groupby("strategy", sort=False):
            curve = rows.set_index("layer")["value"].reindex(layers)
            marker = {}
            if col == 1 and not frozen.empty:
                mine = frozen[frozen["strategy"] == strategy].set_index("layer")["value"]
                all_frozen = mine.reindex(layers).fillna(0) == 1
                marker = {"symbol": ["circle-open" if f else "circle" for f in all_frozen], "size": 8}
            fig.add_trace(go.Scatter(x=layers, y=curve.to_numpy(), name=strategy, mode="lines+markers",
                                     line={"color": colors.get(strategy, "#333")}, legendgroup=strategy,
                                     marker=marker, showlegend=col == 1), row=1, col=col)
    fig.update_layout(**LAYOUT, title="drift from the pretrained model, mean over seeds at the largest size")
    fig.update_xaxes(type="category")
    return fig


def spectral(run: RunResult) -> go.Figure | None:
    """Power-law alpha of every weight matrix per strategy at the largest size, with the
    2 and 6 flags."""
    alpha = run.row_curve("alpha", "layer", largest_size=True)
    if alpha.empty:
        return None
    layers = list(dict.fromkeys(alpha["layer"]))
    colors = _colors(run.suite.grid.strategies)
    fig = go.Figure()
    for strategy, rows in alpha.groupby("strategy", sort=False):
        curve = rows.set_index("layer")["value"].reindex(layers)
        fig.add_trace(go.Scatter(x=list(range(len(layers))), y=curve.to_numpy(), text=layers, name=strategy,
                                 mode="markers", marker={"color": colors.get(strategy, "#333"), "size": 6},
                                 hovertemplate="%{text}<br>alpha %{y:.2f}<extra></extra>"))
    for y, label in ((2, "alpha < 2: over-trained"), (6, "alpha > 6: under-trained")):
        fig.add_hline(y=y, line={"color": "#888", "dash": "dot"}, annotation_text=label)
    fig.update_layout(**LAYOUT, title="weight-spectrum power-law alpha per matrix (hover for its name)")
    fig.update_xaxes(title_text="weight matrix (model order)")
    fig.update_yaxes(title_text="alpha")
    return fig


REGION_COLORS = {"easy-to-learn": "#2ca02c", "ambiguous": "#ff7f0e", "hard-to-learn": "#d62728"}


def data_map(run: RunResult) -> go.Figure | None:
    """The data map (Swayamdipta et al. 2020) of each strategy's first-seed cell at the largest
    size, one at a time (dropdown): every training example at (variability, confidence), coloured
    by region; flipped labels (label noise) as crosses, memorised examples ringed."""
    dynamics = run.dynamics
    if dynamics.empty:
        return None
    cells = run.cells[run.cells["cell_id"].isin(set(dynamics["cell_id"]))]
    cells = cells[cells["train_size"] == cells["train_size"].max()].sort_values("seed")
    shown = cells.drop_duplicates("strategy")["cell_id"].tolist()
    fig = go.Figure()
    buttons, per_cell = [], []
    for k, cell_id in enumerate(shown):
        part = dynamics[dynamics["cell_id"] == cell_id]
        traces = 0
        for region, color in REGION_COLORS.items():
            rows = part[part["region"] == region]
            flipped = rows["label"] != rows["clean_label"]
            fig.add_trace(go.Scattergl(
                x=rows["variability"], y=rows["confidence"], mode="markers", name=region, visible=k == 0,
                marker={"color": color, "size": 6, "symbol": np.where(flipped, "x", "circle"),
                        "line": {"width": np.where(rows["memorised"], 1.5, 0), "color": "#222"}},
                customdata=np.c_[rows["position"], rows["correctness"], flipped],
                hovertemplate="example %{customdata[0]}<br>confidence %{y:.2f}, variability %{x:.2f}"
                              "<br>correct in %{customdata[1]:.0%} of epochs<br>flipped: %{customdata[2]}"
                              "<extra></extra>"))
            traces += 1
        per_cell.append(traces)
    total = sum(per_cell)
    start = 0
    for cell_id, traces in zip(shown, per_cell, strict=True):
        visible = [start <= j < start + traces for j in range(total)]
        title = {"title.text": f"data map: {cell_id}"}
        buttons.append({"label": cell_id, "method": "update", "args": [{"visible": visible}, title]})
        start += traces
    fig.update_layout(**{**LAYOUT, "height": 460}, title={"text": f"data map: {shown[0]}"},
                      updatemenus=[{"buttons": buttons, "direction": "down", "x": 1.0, "xanchor": "right",
                                    "y": 1.15, "yanchor": "top"}])
    fig.update_xaxes(title_text="variability (std of p(label) over epochs)")
    fig.update_yaxes(title_text="confidence (mean p(label) over epochs)", range=[0, 1])
    return fig

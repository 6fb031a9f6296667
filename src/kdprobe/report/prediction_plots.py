"""Plots of the prediction analysis (`kdprobe.report.predictions`): confidence histograms of correct and wrong
predictions, reliability diagrams with the ECE, the agreement matrices of the models, the overlap of their hits and
mistakes (share of M1's), the correlation of their confidences, their average confidence with its standard
deviation, and the class distribution of every split."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from kdprobe.report.calibration import bin_edges
from kdprobe.report.predictions import SIGNIFICANCE, agreement_matrix, overlap_matrix
from kdprobe.report.figures import model_colour, model_name, new_figure

CORRECT, WRONG = "#4c9f70", "#d1495b"
CONFIDENCE_LABEL = "confidence (probability)"


def confidence_figure(frames: Mapping[str, pd.DataFrame], bins: int, task: str) -> Figure:
    """One panel per model: histograms (`bins` equal-width bins over [0, 1]) of the confidence of its correct and
    of its wrong dev predictions."""
    fig, axes = new_figure(3.2 * len(frames) + 0.6, 3.6, 1, len(frames), sharey=True)
    edges = bin_edges(bins)
    for ax, (model, frame) in zip(axes[0], frames.items()):
        right = (frame["pred"] == frame["gold"]).to_numpy()
        conf = frame["confidence"].to_numpy()
        ax.hist(conf[right], bins=edges, color=CORRECT, alpha=0.65, label=f"correct ({right.sum()})")
        ax.hist(conf[~right], bins=edges, color=WRONG, alpha=0.65, label=f"wrong ({(~right).sum()})")
        ax.set_title(f"{model_name(model)}: accuracy {right.mean():.3f}")
        ax.set_xlabel(CONFIDENCE_LABEL)
        ax.set_xlim(0, 1)
        ax.legend(loc="best")
    axes[0][0].set_ylabel("dev sentences (count)")
    fig.suptitle(f"{task}: confidence of correct and wrong dev predictions")
    fig.tight_layout()
    return fig


def reliability_figure(calibration: pd.DataFrame, models: pd.DataFrame, task: str) -> Figure:
    """One reliability diagram per model: the accuracy of each confidence bin (bars; the bin's mean confidence as
    a dot) against the diagonal of perfect calibration; the ECE in the title. `calibration` and `models` are
    `analysis.predictions.calibration` and `model_summary` tables."""
    names = list(pd.unique(models["model"]))
    fig, axes = new_figure(3.2 * len(names) + 0.6, 3.8, 1, len(names), sharey=True)
    ece = dict(zip(models["model"], models["ece"]))
    for ax, model in zip(axes[0], names):
        table = calibration[calibration["model"] == model]
        used = table[table["count"] > 0]
        width = float((table["upper"] - table["lower"]).iloc[0])
        ax.bar(used["lower"], used["accuracy"], width=width, align="edge", color=model_colour(model), alpha=0.75,
               edgecolor="black", linewidth=0.5, label="accuracy in bin")
        ax.plot(used["mean_confidence"], used["accuracy"], "o", color="black", markersize=3,
                label="bin's mean confidence")
        ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{model_name(model)}: ECE {ece[model]:.3f}")
        ax.set_xlabel(CONFIDENCE_LABEL)
    axes[0][0].set_ylabel("accuracy (fraction)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.suptitle(f"{task}: reliability of the dev predictions ({len(calibration) // len(names)} confidence bins)")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncols=len(labels), frameon=False)
    return fig


def _matrix_panel(fig: Figure, ax, matrix: pd.DataFrame, cmap: str, scale: float, text: str, colour_label: str,
                  labels: tuple[str, str]) -> None:
    """A model x model heatmap of `matrix` (values in [0, `scale`]) with each cell's value written in it."""
    n = len(matrix)
    values = matrix.to_numpy(dtype=float)
    image = ax.imshow(values, cmap=cmap, vmin=0, vmax=scale)
    names = [model_name(m) for m in matrix.index]
    ax.set_xticks(range(n), [model_name(m) for m in matrix.columns], rotation=20, ha="right")
    ax.set_yticks(range(n), names)
    ax.grid(False)
    for (i, j), value in np.ndenumerate(values):
        ax.text(j, i, "n/a" if np.isnan(value) else text.format(value), ha="center", va="center",
                color="white" if value > 0.6 * scale else "black")
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=colour_label)


def agreement_figure(agreement: pd.DataFrame, task: str) -> Figure:
    """Two model x model matrices from `analysis.predictions.agreement`: the share of dev sentences on which two
    models predict the same label, and the share both get wrong (the diagonal: each model's error rate)."""
    panels = (("agreement", "same predicted label", "Blues"),
              ("both_wrong", "both wrong (diagonal: error rate)", "Reds"))
    n = agreement["model_a"].nunique()
    fig, axes = new_figure(4.4 * len(panels) + 0.6, 0.6 * n + 2.0, 1, len(panels))
    for ax, (value, title, cmap) in zip(axes[0], panels):
        _matrix_panel(fig, ax, agreement_matrix(agreement, value), cmap, 1.0, "{:.2f}", "dev sentences (fraction)",
                      ("model", "model"))
        ax.set_title(title)
    fig.suptitle(f"{task}: agreement between the models on the dev set")
    fig.tight_layout()
    return fig


def overlap_figure(overlap: pd.DataFrame, task: str) -> Figure:
    """The thesis's `fig:hits-mistakes-overlap-all` for one task: two M1 x M2 matrices from
    `predictions.overlap`, the share (%) of M1's hits, and of M1's mistakes, that M2 makes too."""
    n = overlap["model_1"].nunique()
    fig, axes = new_figure(9.6, 0.6 * n + 2.2, 1, 2)
    for ax, (outcome, cmap) in zip(axes[0], (("hits", "Greens"), ("mistakes", "Reds"))):
        _matrix_panel(fig, ax, overlap_matrix(overlap, f"{outcome}_share") * 100, cmap, 100.0, "{:.0f}",
                      f"share of M1's {outcome} (%)", ("M2 (makes them too)", "M1"))
        ax.set_title(f"shared {outcome}")
    fig.suptitle(f"{task}: dev-set hits and mistakes of M1 that M2 shares")
    fig.tight_layout()
    return fig


def correlation_figure(frames: Mapping[str, pd.DataFrame], correlation: pd.DataFrame, task: str) -> Figure:
    """One panel per pair of models (`predictions.confidence_correlation`): each dev sentence's confidence under
    the two models, with Pearson's r in the panel ('*': p < SIGNIFICANCE), as the thesis's
    `fig:confidence-correlation`."""
    pairs = list(correlation.itertuples(index=False))
    if not pairs:
        raise ValueError("correlation_figure: no pair of models")
    fig, axes = new_figure(3.4 * len(pairs) + 0.4, 3.8, 1, len(pairs))
    for ax, pair in zip(axes[0], pairs):
        x, y = frames[pair.model_a]["confidence"], frames[pair.model_b]["confidence"]
        ax.scatter(x, y, s=9, alpha=0.35, color=model_colour(pair.model_b), edgecolors="none",
                   label=f"dev sentences ({len(x)})")
        low = float(min(x.min(), y.min()))
        ax.plot([low, 1], [low, 1], "--", color="grey", linewidth=0.8, label="equal confidence")
        r = "n/a" if np.isnan(pair.r) else f"{pair.r:.2f}" + ("*" if pair.significant else "") + f", p = {pair.p_value:.2g}"
        ax.text(0.04, 0.96, f"R = {r}", transform=ax.transAxes, va="top",
                bbox={"boxstyle": "round", "facecolor": "wheat", "alpha": 0.7})
        ax.set_xlabel(f"{model_name(pair.model_a)}: {CONFIDENCE_LABEL}")
        ax.set_ylabel(f"{model_name(pair.model_b)}: {CONFIDENCE_LABEL}")
        ax.set_title(f"{model_name(pair.model_a)} vs {model_name(pair.model_b)}")
        ax.legend(loc="lower right")
    fig.suptitle(f"{task}: correlation of the models' dev confidences (Pearson R; * p < {SIGNIFICANCE})")
    fig.tight_layout()
    return fig


def average_confidence_figure(models: pd.DataFrame, task: str) -> Figure:
    """Bars per model of the mean confidence on all dev predictions, on hits and on mistakes, with standard
    deviation error bars (`predictions.model_summary`), as the thesis's `fig:prediction-analysis-avg-confidence`."""
    groups = (("all", "", None), ("hits", "_correct", "**"), ("mistakes", "_wrong", "xx"))
    fig, axes = new_figure(1.6 * len(models) + 3.0, 3.8)
    ax = axes[0][0]
    width = 0.26
    for g, (name, suffix, hatch) in enumerate(groups):
        for m, row in enumerate(models.itertuples(index=False)):
            mean, std = getattr(row, f"mean_confidence{suffix}"), getattr(row, f"std_confidence{suffix}")
            ax.bar(m + (g - 1) * width, 0 if np.isnan(mean) else mean, width * 0.9, hatch=hatch,
                   yerr=None if np.isnan(std) else std, capsize=3, color=model_colour(row.model), edgecolor="black",
                   linewidth=0.5)
    ax.set_xticks(range(len(models)), [model_name(m) for m in models["model"]])
    ax.set_xlabel("model")
    ax.set_ylabel(f"mean {CONFIDENCE_LABEL}")
    ax.set_ylim(0, 1.3)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.legend(handles=[Patch(facecolor="white", edgecolor="black", hatch=h, label=n) for n, _, h in groups],
              loc="upper center", ncols=len(groups), title="dev predictions (error bar: 1 standard deviation)")
    ax.set_title(f"{task}: average confidence of the dev predictions")
    fig.tight_layout()
    return fig


def classes_figure(classes: pd.DataFrame, task: str) -> Figure:
    """The class distribution of every split (`predictions.class_distribution`): one bar per label and split, the
    share of the split's examples, labels by their share of the first split (train), largest first, as the
    thesis's `fig:class-balance`."""
    splits = list(pd.unique(classes["split"]))
    first = classes[classes["split"] == splits[0]].sort_values("share", ascending=False, kind="stable")
    order = list(first["label"])
    fig, axes = new_figure(min(max(0.22 * len(order) * len(splits) + 2.5, 5.0), 16.0), 4.2)
    ax = axes[0][0]
    width = 0.8 / len(splits)
    for s, split in enumerate(splits):
        part = classes[classes["split"] == split].set_index("label").loc[order]
        total = int(part["count"].sum())
        repeats = part["repeats"].iloc[0]
        label = f"{split} ({total} examples{', repeats ' + repeats if repeats else ''})"
        ax.bar(np.arange(len(order)) + (s - (len(splits) - 1) / 2) * width, part["share"] * 100, width, label=label)
    ax.set_ylim(0, float(classes["share"].max()) * 100 * 1.3)  # room for the legend above the bars
    ax.set_xticks(range(len(order)), order, rotation=90 if len(order) > 8 else 0)
    ax.set_xlabel("class (label)")
    ax.set_ylabel("examples of the split (%)")
    ax.legend(loc="upper right")
    ax.set_title(f"{task}: class distribution per split")
    fig.tight_layout()
    return fig

"""Plots of the prediction analysis (`kdprobe.report.predictions`): confidence histograms of correct and wrong
predictions, reliability diagrams with the ECE, and the agreement matrices of the models."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from kdprobe.report.calibration import bin_edges
from kdprobe.report.predictions import agreement_matrix
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


def agreement_figure(agreement: pd.DataFrame, task: str) -> Figure:
    """Two model x model matrices from `analysis.predictions.agreement`: the share of dev sentences on which two
    models predict the same label, and the share both get wrong (the diagonal: each model's error rate)."""
    panels = (("agreement", "same predicted label", "Blues"),
              ("both_wrong", "both wrong (diagonal: error rate)", "Reds"))
    n = agreement["model_a"].nunique()
    fig, axes = new_figure(4.4 * len(panels) + 0.6, 0.6 * n + 2.0, 1, len(panels))
    for ax, (value, title, cmap) in zip(axes[0], panels):
        matrix = agreement_matrix(agreement, value)
        image = ax.imshow(matrix.to_numpy(), cmap=cmap, vmin=0, vmax=1)
        labels = [model_name(m) for m in matrix.index]
        ax.set_xticks(range(n), labels, rotation=20, ha="right")
        ax.set_yticks(range(n), labels)
        ax.grid(False)
        for (i, j), share in np.ndenumerate(matrix.to_numpy()):
            ax.text(j, i, f"{share:.2f}", ha="center", va="center", color="white" if share > 0.6 else "black")
        ax.set_title(title)
        ax.set_xlabel("model")
        ax.set_ylabel("model")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="dev sentences (fraction)")
    fig.suptitle(f"{task}: agreement between the models on the dev set")
    fig.tight_layout()
    return fig

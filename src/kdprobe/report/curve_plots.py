"""Training curves as plots: the teacher's training loss and dev metrics during fine-tuning (the thesis's figure
4.2), GPT-2's training loss and learning rate, and the students' dev score and distillation loss per epoch.

Entry points (rules `plot_teacher_curve`, `plot_gpt2_curve`, `plot_student_curves`): `plot_teacher(curve_csv,
task, out_png)`, `plot_gpt2(curve_csv, task, out_png)`, `plot_students(curve_csvs, teacher_metrics, task, losses,
out_png)` with `losses` `{student: {loss, temperature, mse_reduction}}` (the students' config), which names each
loss on its axis.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import pandas as pd
from matplotlib.figure import Figure

from kdprobe.report.curves import read_curve, read_headline_curve, shown_metrics
from kdprobe.errors import InputError
from kdprobe.io import read_json
from kdprobe.registry import HEADLINE_METRIC, METRIC_DISPLAY, reported_metrics
from kdprobe.report.figures import metric_label, model_colour, model_name, new_figure, save_figure

EPOCH = "epoch"
METRIC_STYLES = ("-", "--", ":")


def _metrics_of(task: str, curve: pd.DataFrame) -> list[str]:
    return shown_metrics(curve, reported_metrics(task))


def loss_label(spec: Mapping[str, Any]) -> str:
    """Axis label of a distillation loss from the student's settings (`losses.distillation_loss` names; a list of
    terms, `kdprobe.loss_terms`: their weighted sum)."""
    if isinstance(spec["loss"], list):
        return "weighted sum of the loss terms (see the loss_<term> columns)"
    if spec["loss"] == "soft_ce":
        t = float(spec.get("temperature", 1.0))
        return f"soft cross-entropy x T² (T = {t:g}; nats)"
    if spec["loss"] == "mse":
        how = "sum" if spec.get("mse_reduction", "sum") == "sum" else "mean"
        return f"logit squared error, class {how} (logit²)"
    return f"{spec['loss']} loss"


def teacher_figure(curve: pd.DataFrame, task: str) -> Figure:
    """Left: training loss (cross-entropy per sentence); right: the task's dev metrics, against epochs."""
    fig, axes = new_figure(9.0, 3.8, 1, 2)
    loss_ax, dev_ax = axes[0]
    loss_ax.plot(curve["epoch"], curve["loss"], "-o", markersize=3, color=model_colour("teacher"))
    loss_ax.set_xlabel(EPOCH)
    loss_ax.set_ylabel("training loss (cross-entropy, nats)")
    loss_ax.set_title("training loss")
    shown = _metrics_of(task, curve)
    for column, style in zip(shown, METRIC_STYLES):
        dev_ax.plot(curve["epoch"], curve[column], style, marker="o", markersize=3, color=model_colour("teacher"),
                    label=metric_label(column))
    dev_ax.set_xlabel(EPOCH)
    mcc = "dev_mcc" in shown
    dev_ax.set_ylabel("dev score (MCC: -1 to 1; others: fraction)" if mcc else "dev score (fraction)")
    dev_ax.set_title("dev metrics")
    dev_ax.legend(loc="best")
    fig.suptitle(f"{task}: teacher fine-tuning")
    fig.tight_layout()
    return fig


def gpt2_figure(curve: pd.DataFrame, task: str) -> Figure:
    """Left: GPT-2's training loss (cross-entropy per token); right: its learning rate, against epochs."""
    fig, axes = new_figure(9.0, 3.8, 1, 2)
    loss_ax, lr_ax = axes[0]
    loss_ax.plot(curve["epoch"], curve["loss"], "-o", markersize=3, color=model_colour("gpt2"), label="training loss")
    loss_ax.set_xlabel(EPOCH)
    loss_ax.set_ylabel("training loss (cross-entropy, nats per token)")
    loss_ax.set_title("training loss")
    loss_ax.legend(loc="upper right")
    if "lr" in curve.columns:
        lr_ax.plot(curve["epoch"], curve["lr"], "-", color=model_colour("gpt2"), label="learning rate")
        lr_ax.legend(loc="upper right")
    lr_ax.set_xlabel(EPOCH)
    lr_ax.set_ylabel("learning rate (dimensionless)")
    lr_ax.set_title("learning-rate schedule")
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    fig.suptitle(f"{task}: GPT-2 fine-tuning (for augmentation)")
    fig.tight_layout()
    return fig


def students_figure(curves: Mapping[str, pd.DataFrame], task: str, losses: Mapping[str, Mapping[str, Any]],
                    teacher_dev: float | None = None,
                    seed_curves: Mapping[str, Sequence[pd.DataFrame]] | None = None) -> Figure:
    """First panel: each student's dev headline metric per epoch (its best epoch, the one kept, marked), its extra
    seeds' as thin lines (the spread over seeds), and the fine-tuned teacher's as a dashed line; then one panel per
    student with its distillation loss (each loss has its own unit), extra seeds thin too; last, when the curves
    have them, the gradient norms (`gradient_norm_panel`)."""
    seed_curves = seed_curves or {}
    metric = HEADLINE_METRIC.get(task, "accuracy")
    column = f"dev_{metric}"
    norms = all("grad_norm" in curve.columns for curve in curves.values())
    panels = 1 + len(curves) + norms
    fig, axes = new_figure(3.4 * panels + 0.4, 3.8, 1, panels)
    dev_ax = axes[0][0]
    for student, curve in curves.items():
        colour = model_colour(student)
        dev_ax.plot(curve["epoch"], curve[column], "-o", markersize=3, color=colour, label=model_name(student))
        best = curve.loc[curve[column].idxmax()]
        dev_ax.plot(best["epoch"], best[column], "*", markersize=12, color=colour, markeredgecolor="black")
        extra = seed_curves.get(student, [])
        for i, other in enumerate(extra):
            dev_ax.plot(other["epoch"], other[column], "-", linewidth=1, alpha=0.5, color=colour,
                        label=f"{model_name(student)}: {len(extra)} other seed(s)" if i == 0 else None)
    if teacher_dev is not None:
        dev_ax.axhline(teacher_dev, color=model_colour("teacher"), linestyle="--", label=model_name("teacher"))
    dev_ax.plot([], [], "*", color="grey", markeredgecolor="black", markersize=10, label="best epoch (kept)")
    dev_ax.set_xlabel(EPOCH)
    dev_ax.set_ylabel(metric_label(metric))
    dev_ax.set_title(f"dev {METRIC_DISPLAY.get(metric, metric)}")
    dev_ax.legend(loc="best", fontsize=8)
    for ax, (student, curve) in zip(axes[0][1:], curves.items()):
        ax.plot(curve["epoch"], curve["loss"], "-o", markersize=3, color=model_colour(student),
                label=model_name(student))
        for i, other in enumerate(seed_curves.get(student, [])):
            ax.plot(other["epoch"], other["loss"], "-", linewidth=1, alpha=0.5, color=model_colour(student),
                    label="other seeds" if i == 0 else None)
        ax.set_xlabel(EPOCH)
        ax.set_ylabel(loss_label(losses[student]))
        ax.set_title(f"{model_name(student)}: distillation loss")
        ax.legend(loc="upper right")
    if norms:
        gradient_norm_panel(axes[0][-1], curves)
    fig.suptitle(f"{task}: student distillation")
    fig.tight_layout()
    return fig


def gradient_norm_panel(ax, curves: Mapping[str, pd.DataFrame]) -> None:
    """Each student's gradient norm per epoch, before clipping: the mean of the steps of each curve row (solid)
    and their largest (dotted), on a log scale, so that a student whose gradients die (the thesis's large BERT_S,
    its section 5.5.1) shows as a line falling away."""
    for student, curve in curves.items():
        colour = model_colour(student)
        ax.plot(curve["epoch"], curve["grad_norm"], "-o", markersize=3, color=colour,
                label=f"{model_name(student)}: mean")
        if "grad_norm_max" in curve.columns:
            ax.plot(curve["epoch"], curve["grad_norm_max"], ":", color=colour, label=f"{model_name(student)}: largest")
    if all((curve["grad_norm"] > 0).all() for curve in curves.values()):
        ax.set_yscale("log")
    ax.set_xlabel(EPOCH)
    ax.set_ylabel("gradient norm (L2, before clipping)")
    ax.set_title("gradient norm per optimiser step")
    ax.legend(loc="best", fontsize=8)


def plot_teacher(curve_csv: str | os.PathLike, task: str, out_png: str | os.PathLike) -> None:
    save_figure(teacher_figure(read_curve(curve_csv, dev_metrics=True), task), out_png)


def plot_gpt2(curve_csv: str | os.PathLike, task: str, out_png: str | os.PathLike) -> None:
    save_figure(gpt2_figure(read_curve(curve_csv, dev_metrics=False), task), out_png)


def plot_students(curve_csvs: Mapping[str, str | os.PathLike], teacher_metrics: str | os.PathLike | None, task: str,
                  losses: Mapping[str, Mapping[str, Any]], out_png: str | os.PathLike,
                  seed_curve_csvs: Mapping[str, Sequence[str | os.PathLike]] | None = None) -> None:
    """`curve_csvs`: `{student: curve.csv}`; `teacher_metrics`: the teacher's `metrics.json` (its `dev` headline
    metric is drawn as the reference) or None; `seed_curve_csvs`: `{student: [curve.csv of each extra seed]}`."""
    metric = f"dev_{HEADLINE_METRIC.get(task, 'accuracy')}"
    curves = {student: read_headline_curve(path, task) for student, path in curve_csvs.items()}
    seeds = {student: [read_headline_curve(path, task) for path in paths]
             for student, paths in (seed_curve_csvs or {}).items()}
    teacher_dev = None
    if teacher_metrics is not None:
        dev = read_json(teacher_metrics).get("dev") or {}
        if metric.removeprefix("dev_") not in dev:
            raise InputError(teacher_metrics, f"no dev {metric.removeprefix('dev_')}")
        teacher_dev = float(dev[metric.removeprefix("dev_")])
    save_figure(students_figure(curves, task, losses, teacher_dev, seeds), out_png)

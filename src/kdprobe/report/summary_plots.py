"""Plots of the summary: the study's score against size and CPU latency, and its cost per stage.

`study_figure(study)`: two panels, the headline test score against parameters (log axis) and against the median
single-sentence CPU latency (ms, log axis); one point per task x model, colour = task, marker = model, each
labelled. `cost_figure(cost)`: wall time, CPU time, peak memory and GPU-hours per stage, stacked (memory: side by
side) by task. Both return a `Figure`; `plots.common.save_figure` writes it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from kdprobe.registry import METRIC_DISPLAY, task_display
from kdprobe.report.figures import model_name, new_figure

TASK_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]
MODEL_MARKERS = {"teacher": "o", "bert_s": "s", "lstm_s": "^"}
EXTRA_MARKERS = ["D", "v", "P", "X", "*"]


def _styles(values: list[str], palette: list[str], fixed: dict[str, str] | None = None) -> dict[str, str]:
    fixed, out, spare = dict(fixed or {}), {}, iter(palette)
    for value in values:
        out[value] = fixed.get(value) or next(spare, palette[-1])
    return out


#: Where a point's label may go, in points from the point (first free one wins): right above, right below, left
#: above, left below.
LABEL_OFFSETS = ((6, 4, "left"), (6, -11, "left"), (-6, 4, "right"), (-6, -11, "right"))


def _label_points(fig: Figure, ax, points: list[tuple[float, float, str]]) -> None:
    """Label each (x, y, text) point at the first offset where its text overlaps no label placed before."""
    fig.canvas.draw()  # fixes the axis limits, so data positions map to pixels
    placed = []
    for x, y, text in points:
        for dx, dy, align in LABEL_OFFSETS:
            label = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=8, ha=align)
            box = label.get_window_extent(fig.canvas.get_renderer())
            if not any(box.overlaps(other) for other in placed) or (dx, dy, align) == LABEL_OFFSETS[-1]:
                placed.append(box)
                break
            label.remove()


def study_figure(study: pd.DataFrame) -> Figure:
    """Score against size and CPU latency (module docstring)."""
    tasks = list(dict.fromkeys(study["task"]))
    models = list(dict.fromkeys(study["model"]))
    colours = dict(zip(tasks, TASK_COLOURS * (len(tasks) // len(TASK_COLOURS) + 1)))
    markers = _styles(models, EXTRA_MARKERS, MODEL_MARKERS)
    metrics = ", ".join(f"{task_display(t)} {METRIC_DISPLAY.get(m, m)}" for t, m in
                        study.drop_duplicates("task")[["task", "metric"]].itertuples(index=False))
    fig, axes = new_figure(12, 5.2, 1, 2, sharey=True)
    panels = [("params", "parameters (count, log scale)", "size"),
              ("cpu_latency_ms", "CPU latency, one sentence (ms, median, log scale)", "CPU latency")]
    for ax, (column, xlabel, what) in zip(axes[0], panels):
        points = []
        for row in study.itertuples(index=False):
            x, y = getattr(row, column), row.test_score
            if not (x > 0) or math.isnan(y):
                continue
            ax.scatter(x, y, s=70, color=colours[row.task], marker=markers[row.model], edgecolor="black",
                       linewidth=0.6, zorder=3)
            if row.seeds > 1:  # the spread over seeds: mean +- standard deviation
                ax.errorbar(x, row.test_score_mean, yerr=row.test_score_std, fmt="_", markersize=12, capsize=4,
                            color=colours[row.task], zorder=2)
            points.append((x, y, f"{task_display(row.task)} {model_name(row.model).split(' (')[0]}"))
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_title(f"Test score against {what}")
        ax.margins(x=0.15, y=0.12)
        _label_points(fig, ax, points)
    axes[0][0].set_ylabel(f"test score ({metrics})")
    handles = [Line2D([], [], linestyle="", marker="o", markersize=8, color=colours[t], label=task_display(t))
               for t in tasks]
    handles += [Line2D([], [], linestyle="", marker=markers[m], markersize=8, color="white", markeredgecolor="black",
                       label=model_name(m).split(" (")[0]) for m in models]
    if (study["seeds"] > 1).any():
        handles.append(Line2D([], [], color="dimgray", marker="_", markersize=12,
                              label="mean ± std over seeds"))
    axes[0][1].legend(handles=handles, title="task (colour), model (marker)", loc="best")
    note = " (CoLA, SST-2: test = dev, GLUE test labels hidden)" if study["test_is_dev"].any() else ""
    fig.suptitle(f"Distillation: score against size and speed{note}")
    fig.tight_layout()
    return fig


def _time_unit(seconds: float) -> tuple[str, float]:
    """A readable unit for durations up to `seconds`: (name, seconds per unit)."""
    if seconds < 120:
        return "s", 1.0
    if seconds < 2 * 3600:
        return "min", 60.0
    return "h", 3600.0


def cost_figure(cost: pd.DataFrame) -> Figure:
    """Cost per stage (module docstring); reads the per stage-and-task rows of a `cost.cost_table`."""
    rows = cost[(cost["task"] != "all") & (cost["stage"] != "total")]
    stages = list(dict.fromkeys(rows["stage"]))
    tasks = list(dict.fromkeys(rows["task"]))
    colours = dict(zip(tasks, TASK_COLOURS * (len(tasks) // len(TASK_COLOURS) + 1)))
    table = {col: rows.pivot_table(index="stage", columns="task", values=col, aggfunc="sum").reindex(
        index=stages, columns=tasks).fillna(0.0) for col in ("wall_s", "cpu_s", "gpu_hours")}
    table["max_rss_mb"] = rows.pivot_table(index="stage", columns="task", values="max_rss_mb", aggfunc="max").reindex(
        index=stages, columns=tasks).fillna(0.0)
    fig, axes = new_figure(12, 8.5, 2, 2)
    x = np.arange(len(stages))
    for ax, col, title in ((axes[0][0], "wall_s", "Wall time"), (axes[0][1], "cpu_s", "CPU time")):
        name, per = _time_unit(float(table[col].sum(axis=1).max()))
        bottom = np.zeros(len(stages))
        for task in tasks:
            values = table[col][task].to_numpy() / per
            ax.bar(x, values, bottom=bottom, color=colours[task], label=task_display(task))
            bottom += values
        ax.set_ylabel(f"{title} ({name}, summed over jobs)")
        ax.set_title(f"{title} per stage")
    ax = axes[1][0]
    width = 0.8 / max(len(tasks), 1)
    for i, task in enumerate(tasks):
        ax.bar(x - 0.4 + width * (i + 0.5), table["max_rss_mb"][task].to_numpy(), width, color=colours[task],
               label=task_display(task))
    ax.set_ylabel("peak memory, max RSS (MB, largest job)")
    ax.set_title("Peak memory per stage")
    ax = axes[1][1]
    if table["gpu_hours"].to_numpy().sum() > 0:
        bottom = np.zeros(len(stages))
        for task in tasks:
            values = table["gpu_hours"][task].to_numpy()
            ax.bar(x, values, bottom=bottom, color=colours[task], label=task_display(task))
            bottom += values
    else:
        ax.text(0.5, 0.5, "no rule asked for a GPU\n(resources: gpu 0)", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_ylabel("GPU-hours (wall hours x GPUs asked for)")
    ax.set_title("GPU-hours per stage")
    for ax in axes.flat:
        ax.set_xticks(x, stages, rotation=30, ha="right")
        ax.set_xlim(-0.5, len(stages) - 0.5)
        ax.set_xlabel("stage (Snakemake rule)")
        if ax.get_legend_handles_labels()[0]:  # above the bars: headroom, one row
            ax.set_ylim(0, ax.get_ylim()[1] * 1.3)
            ax.legend(title="task", loc="upper left", ncols=min(len(tasks), 4))
    total = cost[(cost["stage"] == "total")].iloc[0]
    fig.suptitle(f"What the study cost: {int(total['jobs'])} jobs, {total['wall_s'] / 3600:.2f} h of job wall time "
                 f"(summed), {total['gpu_hours']:.2f} GPU-hours")
    fig.tight_layout()
    return fig

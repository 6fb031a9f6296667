"""Plots of the summary: the study's score against size and CPU latency, and its cost per stage.

`study_figure(study)`: two panels, the headline test score against parameters (log axis) and against the median
single-sentence CPU latency (ms, log axis); one point per task x model, colour = task, marker = model, each
labelled. `cost_figure(cost)`: wall time, CPU time, peak memory and GPU-hours per stage, stacked (memory: side by
side) by task. `reproduction_figure(table)`: this run against the reference figures (`kdprobe.report.reproduction`):
scores as differences in points, sizes and times as ratios, each panel with its tolerance band. Each returns a
`Figure`; `plots.common.save_figure` writes it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

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


#: Panels of `reproduction_figure`: (title, quantities, y label, ratio (log scale) rather than difference?)
REPRODUCTION_PANELS = (
    ("Scores", ("score",), "ours - reference (points of the metric x 100)", False),
    ("Sizes", ("params", "params_without_embeddings"), "ours / reference (parameters, log scale)", True),
    ("Runtime per example (CPU)", ("ms_per_example",), "ours / reference (ms per sentence, log scale)", True),
    ("Wall time per job", ("wall_time",), "ours / reference (longest job's seconds, log scale)", True),
)
STATUS_STYLES = {"ok": ("#2ca02c", "within tolerance"), "off": ("#d62728", "off (beyond tolerance)")}
SPLIT_MARKERS = {"dev": "o", "test": "s", "": "D"}


def _tolerance_band(ax, rows: pd.DataFrame, ratio: bool) -> tuple[float, float]:
    """Shade the band a figure may lie in (the panel's one tolerance) and draw its centre; returns the band."""
    tolerance = float(rows["tolerance"].iloc[0])
    if not ratio:
        low, high = -tolerance, tolerance
    elif rows["quantity"].iloc[0].startswith("params"):
        low, high = max(1.0 - tolerance, 1e-6), 1.0 + tolerance
    else:
        low, high = 1.0 / tolerance, tolerance
    ax.axhspan(low, high, color="grey", alpha=0.25, label=f"tolerance ({_tolerance_text(rows, tolerance)})")
    ax.axhline(1.0 if ratio else 0.0, color="black", linewidth=0.8)
    return low, high


def _tolerance_text(rows: pd.DataFrame, tolerance: float) -> str:
    quantity = rows["quantity"].iloc[0]
    if quantity == "score":
        return f"± {tolerance:g} points"
    if quantity.startswith("params"):
        return f"± {100 * tolerance:g} %"
    return f"x{tolerance:g} either way"


def _reproduction_panel(ax, rows: pd.DataFrame, title: str, ylabel: str, ratio: bool) -> None:
    """One panel of `reproduction_figure`: each compared figure's difference (or ratio) against its tolerance band,
    coloured by status, marked by split; what could not be compared is counted under the axis."""
    column = "ratio" if ratio else "difference"
    values = rows[column].to_numpy(dtype=float)
    shown = rows[rows["status"].isin(list(STATUS_STYLES)) & np.isfinite(values) & ((values > 0) | (not ratio))]
    left_out = len(rows) - len(shown)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if shown.empty:
        ax.text(0.5, 0.5, "nothing to compare" + (f"\n({left_out} figures not comparable or not in this run)"
                                                  if left_out else ""), ha="center", va="center",
                transform=ax.transAxes)
        ax.set_xticks([])
        return
    x = np.arange(len(shown))
    y = shown[column].to_numpy(dtype=float)
    low, high = _tolerance_band(ax, shown, ratio)
    for status, (colour, label) in STATUS_STYLES.items():
        for split, marker in SPLIT_MARKERS.items():
            mask = ((shown["status"] == status) & (shown["split"] == split)).to_numpy()
            if mask.any():
                suffix = f", {split}" if split and len(set(shown["split"])) > 1 else ""
                ax.scatter(x[mask], y[mask], color=colour, marker=marker, edgecolor="black", linewidth=0.5,
                           zorder=3, s=45, label=label + suffix)
    if ratio:
        ax.set_yscale("log")
        span = max(np.max(np.abs(np.log10(np.concatenate([y, [low, high]])))), 0.05) * 1.3
        ax.set_ylim(10 ** -span, 10 ** span)
        plain = FuncFormatter(lambda value, _: f"{value:g}")  # 0.5, 2, 1e-04: not 5 x 10^-1
        if span < 1.5:  # within a few decades: ticks at 1, 2 and 5 of each
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain if span < 0.15 else NullFormatter())
    else:
        span = max(np.max(np.abs(np.concatenate([y, [low, high]]))), 0.5) * 1.3
        ax.set_ylim(-span, span)
    labels = [" ".join(p for p in (task_display(r.task), model_name(r.model).split(" (")[0], r.split) if p)
              for r in shown.itertuples(index=False)]
    ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
    ax.set_xlim(-0.5, len(shown) - 0.5)
    ax.set_xlabel("task, model or job, split" + (f" ({left_out} more not comparable or not in this run)"
                                                 if left_out else ""))
    ax.legend(loc="best", fontsize=7)


def reproduction_figure(table: pd.DataFrame, reference: str = "the reference figures") -> Figure:
    """This run against the reference figures (`reproduction.reproduction_table`; module docstring), named in the
    title by `reference`."""
    fig, axes = new_figure(13, 10, 2, 2)
    for ax, (title, quantities, ylabel, ratio) in zip(axes.flat, REPRODUCTION_PANELS):
        _reproduction_panel(ax, table[table["quantity"].isin(quantities)], title, ylabel, ratio)
    counts = table["status"].value_counts()
    ok, off = int(counts.get("ok", 0)), int(counts.get("off", 0))
    fig.suptitle(f"This run against {reference}: {ok} within tolerance, {off} off, "
                 f"{len(table) - ok - off} not compared")
    fig.tight_layout()
    return fig

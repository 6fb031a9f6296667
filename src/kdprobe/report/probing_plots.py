"""Probing plots (the thesis's figure 6.1): test accuracy of each probing task across layers, the layer position
normalised to the model's depth (`kdprobe.report.probing`), for the pre-trained teacher, the fine-tuned teacher
and the students (one line per model and pooling) and the students' embed. baselines, with the majority baseline
of the data and the published baselines of Conneau et al. (2018); and an overview heatmap of every
model's best-layer accuracy per probing task, across the downstream tasks.

Entry points (rules `plot_probing`, `plot_probing_overview`): `plot_task(entries, task, out_png)` and
`plot_overview(entries, out_png, out_csv)`, `entries` being `(scope, model kind, probe table, model, seed tables)`:
the downstream task or `pretrained`, teacher | pretrained | bert_s | lstm_s | embed, the merged probe CSV, the model
directory (or hub id) whose depth normalises the layers, and the probe tables of the model's extra seeds (config
`seeds.probe`; often none), whose range around the model's own line the task figure shades.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from kdprobe.report.probing import (best_layers, majority_by_task, model_depth, model_order, read_probe_table,
                                read_probe_tables)
from kdprobe.io import write_csv
from kdprobe.registry import EMBED_MODELS
from kdprobe.report.figures import POOLING_MARKERS, POOLING_STYLES, model_colour, model_name, new_figure, save_figure
from kdprobe.report.probing_reference import CONNEAU_2018
from kdprobe.report.probing_reference import LINES as PUBLISHED_LINES

log = logging.getLogger(__name__)

Entry = tuple[str, str, "str | os.PathLike", "str | os.PathLike", Sequence["str | os.PathLike"]]
X_LABEL = "layer / number of layers (0 = embeddings)"
Y_LABEL = "test accuracy (fraction)"
#: Line style of an embed. baseline (a student's token table before training: one layer, drawn across the panel)
EMBED_STYLE = (0, (5, 2))


def _label(name: str) -> str:
    return name.replace("_", " ")


def _draw_published(ax, task: str) -> None:
    """The published majority-class, human and best-model accuracies of `task` (`probing_reference`), if any."""
    published = CONNEAU_2018.get(task)
    if published is not None:
        for attribute, _, colour, style in PUBLISHED_LINES:
            ax.axhline(getattr(published, attribute), color=colour, linestyle=style, linewidth=1.2, zorder=1)


def _draw_task(ax, rows: pd.DataFrame, task: str, models: list[str], majority: float,
               spread: pd.DataFrame | None) -> None:
    """One probing task's panel: a line per model and pooling over the relative depth, an embed. baseline (one
    layer) as a horizontal dashed line in its student's colour, the seeds' range, the baselines."""
    for model in models:
        for pooling, line in rows[rows["model"] == model].groupby("pooling", sort=False):
            if model in EMBED_MODELS:
                ax.axhline(line["test_acc"].iloc[0], color=model_colour(model), linestyle=EMBED_STYLE,
                           linewidth=1.4, alpha=0.8, zorder=2)
                continue
            line = line.sort_values("position")
            ax.plot(line["position"], line["test_acc"], POOLING_STYLES.get(pooling, "-"),
                    marker=POOLING_MARKERS.get(pooling, "o"), markersize=4.5, color=model_colour(model),
                    linewidth=1.6, zorder=3)
    if spread is not None:
        for (model, pooling), band in spread[spread["probe_task"] == task].groupby(["model", "pooling"]):
            band = band.sort_values("position")
            ax.fill_between(band["position"], band["low"], band["high"], color=model_colour(model), alpha=0.2,
                            linewidth=0)
    _draw_published(ax, task)
    ax.axhline(majority, color="black", linestyle=":", linewidth=1.2)
    ax.set_title(_label(task))
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(X_LABEL)
    ax.set_ylabel(Y_LABEL)
    ax.tick_params(labelbottom=True, labelleft=True)


def _legend_handles(table: pd.DataFrame, models: list[str], spread: pd.DataFrame | None) -> list:
    handles = [Line2D([], [], color=model_colour(m), linewidth=2.5 if m not in EMBED_MODELS else 1.4,
                      linestyle="-" if m not in EMBED_MODELS else EMBED_STYLE, label=model_name(m)) for m in models]
    poolings = list(pd.unique(table.loc[~table["model"].isin(EMBED_MODELS), "pooling"]))
    handles += [Line2D([], [], color="dimgray", linestyle=POOLING_STYLES.get(p, "-"),
                       marker=POOLING_MARKERS.get(p, "o"), markersize=4.5,
                       label=f"pooling: {p}") for p in poolings]
    handles.append(Line2D([], [], color="black", linestyle=":", label="majority baseline (this data)"))
    if set(table["probe_task"]) & set(CONNEAU_2018):
        handles += [Line2D([], [], color=colour, linestyle=style, label=label)
                    for _, label, colour, style in PUBLISHED_LINES]
    if spread is not None:
        handles.append(Patch(color="dimgray", alpha=0.3, label=f"range over seeds (up to {spread['runs'].max()})"))
    return handles


def probing_figure(table: pd.DataFrame, title: str, ncols: int = 3, spread: pd.DataFrame | None = None) -> Figure:
    """One panel per probing task (in table order): test accuracy against `position` for each model and pooling
    (colour: model, line style: pooling; an embed. baseline dashed across the panel), the majority baseline of the
    data as a black dotted line and the published majority-class, human and best-model accuracies of Conneau et
    al. (2018) (`probing_reference`); one shared legend. With `spread` (`seed_spread`), each model's range over its
    seeds is shaded."""
    tasks = list(pd.unique(table["probe_task"]))
    models = model_order(table["model"])
    majority = majority_by_task(table)
    nrows = math.ceil((len(tasks) + 1) / ncols)  # one more panel for the legend
    fig, axes = new_figure(3.2 * ncols, 2.9 * nrows + 0.9, nrows, ncols, sharex=True, sharey=True)
    flat = axes.ravel()
    for ax, task in zip(flat, tasks):
        _draw_task(ax, table[table["probe_task"] == task], task, models, majority[task], spread)
    legend_ax = flat[len(tasks)]
    for ax in flat[len(tasks) + 1:]:
        ax.remove()
    legend_ax.axis("off")
    legend_ax.legend(handles=_legend_handles(table, models, spread), loc="center", frameon=False,
                     title="model / pooling / baselines", fontsize=7.5)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def overview_figure(best: pd.DataFrame, title: str) -> Figure:
    """Heatmap of best-layer test accuracy (`analysis.probing.best_layers`): one row per model of each scope (the
    pre-trained teacher once) under a row of majority baselines, one column per probing task; each cell shows the
    accuracy (the layer it was reached at is in the table)."""
    tasks = list(pd.unique(best["probe_task"]))
    rows = list(dict.fromkeys(zip(best["scope"], best["model"])))
    index = {key: i + 1 for i, key in enumerate(rows)}
    values = np.full((len(rows) + 1, len(tasks)), np.nan)
    notes = [[""] * len(tasks) for _ in range(len(rows) + 1)]
    majority = majority_by_task(best)
    for j, task in enumerate(tasks):
        values[0, j] = majority[task]
        notes[0][j] = f"{majority[task]:.2f}"
    for r in best.itertuples(index=False):
        i, j = index[(r.scope, r.model)], tasks.index(r.probe_task)
        values[i, j] = r.test_acc
        notes[i][j] = f"{r.test_acc:.2f}"
    labels = ["majority baseline"] + [
        model_name(model) if scope == "pretrained" else f"{scope}: {model_name(model)}" for scope, model in rows]
    fig, axes = new_figure(0.7 * len(tasks) + 3.4, 0.36 * len(labels) + 2.2)
    ax = axes[0][0]
    image = ax.imshow(values, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for (i, j), note in np.ndenumerate(np.array(notes, dtype=object)):
        if note:
            ax.text(j, i, note, ha="center", va="center", fontsize=8.5,
                    color="black" if values[i, j] > 0.6 else "white")
    ax.set_xticks(range(len(tasks)), [_label(t) for t in tasks], rotation=35, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.axhline(0.5, color="white", linewidth=2)
    ax.grid(False)
    ax.set_xlabel("probing task")
    ax.set_ylabel("downstream task: model")
    fig.colorbar(image, ax=ax, fraction=0.035, pad=0.02, label="best-layer test accuracy (fraction)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def _table(entries: Iterable[Entry], seeds: bool = False) -> pd.DataFrame:
    """The entries' own probe tables (`seeds`: their extra seeds' too, as `run` 1, 2, ...; the own run is 0)."""
    resolved, frames = [], []
    for scope, kind, path, model, seed_paths in entries:
        depth = model_depth(kind, model)
        log.info("%s %s: depth %d (from %s)", scope, kind, depth, model)
        resolved.append((scope, path, depth))
        if seeds:
            frames += [read_probe_table(p, scope, depth).assign(run=i) for i, p in enumerate(seed_paths, 1)]
    own = read_probe_tables(resolved).assign(run=0)
    return pd.concat([own, *frames], ignore_index=True) if frames else own


def seed_spread(table: pd.DataFrame) -> pd.DataFrame | None:
    """Per model, pooling, probing task and layer with more than one run: the lowest and highest test accuracy over
    its runs (`low`, `high`, `runs`); None when no model has extra seeds."""
    keys = ["scope", "model", "pooling", "probe_task", "layer", "position"]
    grouped = table.groupby(keys, sort=False)["test_acc"].agg(low="min", high="max", runs="count").reset_index()
    grouped = grouped[grouped["runs"] > 1]
    return None if grouped.empty else grouped


def plot_task(entries: Sequence[Entry], task: str, out_png: str | os.PathLike) -> pd.DataFrame:
    """The probing figure of one downstream task (its models and the pre-trained teacher, the range over extra
    seeds shaded where they were probed); returns the models' own table."""
    table = _table(entries, seeds=True)
    own = table[table["run"] == 0].drop(columns="run")
    fig = probing_figure(own, f"{task}: probing accuracy by relative layer depth", spread=seed_spread(table))
    save_figure(fig, out_png)
    return own


def plot_overview(entries: Sequence[Entry], out_png: str | os.PathLike, out_csv: str | os.PathLike) -> pd.DataFrame:
    """The overview heatmap of every probed model and its table (`analysis.probing.best_layers`)."""
    best = best_layers(_table(entries))
    write_csv(out_csv, best)
    log.info("wrote %s: %d rows", out_csv, len(best))
    save_figure(overview_figure(best, "Probing: test accuracy of the best layer and pooling"),
                out_png)
    return best

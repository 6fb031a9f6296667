"""Probing plots (the thesis's figure 6.1): test accuracy of each probing task across layers, the layer position
normalised to the model's depth (`kdprobe.report.probing`), for the pre-trained teacher, the fine-tuned teacher
and the students (one line per model and pooling, the 95% interval over the probe's seeds shaded), the students'
embed. baselines and the random-weight encoders (`*_random`, hollow markers), with the majority baseline of the
data and the published baselines of Conneau et al. (2018); the selectivity (Hewitt and Liang 2019) and the MDL
compression (Voita and Titov 2020) by relative depth, one panel column per classifier; and an overview heatmap of
every model's best-layer accuracy per probing task, across the downstream tasks.

Entry points (rules `plot_probing`, `plot_probing_overview`, and the selectivity and MDL plots):
`plot_task(entries, task, out_png)`, `plot_selectivity(entries, task, out_png)`, `plot_mdl(entries, task, out_png)`
and `plot_overview(entries, out_png, out_csv)`, `entries` being `(scope, model kind, probe table, model, seed
tables)`: the downstream task or `pretrained`, teacher | pretrained | bert_s | lstm_s | embed, the merged probe CSV,
the model directory (or hub id) whose depth normalises the layers, and the probe tables of the model's extra seeds
(config `seeds.probe`: models trained with other seeds; often none), whose range the accuracy figure draws as bars.
The accuracy figures and the overview show the main classifier (`probing.main_classifier`: mlp when probed).
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

from kdprobe.errors import InputError
from kdprobe.io import write_csv
from kdprobe.registry import EMBED_MODELS
from kdprobe.report.figures import POOLING_MARKERS, POOLING_STYLES, model_colour, model_name, new_figure, save_figure
from kdprobe.report.probing import (CLASSIFIER_NAMES, classifier_order, main_classifier, majority_by_task,
                                    model_depth, model_order, read_probe_tables)
from kdprobe.report.probing_reference import CONNEAU_2018
from kdprobe.report.probing_reference import LINES as PUBLISHED_LINES
from kdprobe.report.probing_stats import SIGNIFICANCE, probing_summary

log = logging.getLogger(__name__)

Entry = tuple[str, str, "str | os.PathLike", "str | os.PathLike", Sequence["str | os.PathLike"]]
X_LABEL = "layer / number of layers (0 = embeddings)"
Y_LABEL = "test accuracy (fraction)"
SELECTIVITY_LABEL = "selectivity (accuracy points, fraction)"
MDL_LABEL = "compression (uniform / online codelength)"
#: Line style of an embed. baseline (a student's token table before training: one layer, drawn across the panel)
EMBED_STYLE = (0, (5, 2))
#: Opacity of the 95% interval bands.
BAND_ALPHA = 0.15


def _label(name: str) -> str:
    return name.replace("_", " ")


def _classifier_name(classifier: str) -> str:
    return CLASSIFIER_NAMES.get(classifier, classifier)


def _is_random(model: str) -> bool:
    """A random-weight encoder (`teacher_random`, `{student}_random`): drawn with hollow markers."""
    return model.endswith("_random")


def _colour(model: str) -> str | None:
    """`figures.model_colour`; a random encoder without a colour of its own gets its architecture's."""
    return model_colour(model) or model_colour(model.removesuffix("_random"))


def _draw_published(ax, task: str) -> None:
    """The published majority-class, human and best-model accuracies of `task` (`probing_reference`), if any."""
    published = CONNEAU_2018.get(task)
    if published is not None:
        for attribute, _, colour, style in PUBLISHED_LINES:
            ax.axhline(getattr(published, attribute), color=colour, linestyle=style, linewidth=1.2, zorder=1)


def _draw_lines(ax, rows: pd.DataFrame, models: list[str], value: str, band: tuple[str, str] | None) -> None:
    """A line of `value` over the relative depth per model and pooling (colour: model, style: pooling; a random
    encoder thinner, with hollow markers), its `band` (low, high columns: the 95% interval) shaded where it is
    known; an embed. baseline (one layer) as a horizontal dashed line in its student's colour, its band across."""
    for model in models:
        colour, random = _colour(model), _is_random(model)
        for pooling, line in rows[rows["model"] == model].groupby("pooling", sort=False):
            line = line.dropna(subset=[value]).sort_values("position")
            if line.empty:
                continue
            known = line.dropna(subset=list(band)) if band else line.iloc[:0]
            if model in EMBED_MODELS:
                ax.axhline(line[value].iloc[0], color=colour, linestyle=EMBED_STYLE, linewidth=1.4, alpha=0.8,
                           zorder=2)
                if len(known):
                    ax.axhspan(known[band[0]].iloc[0], known[band[1]].iloc[0], color=colour, alpha=BAND_ALPHA / 2,
                               linewidth=0)
                continue
            ax.plot(line["position"], line[value], POOLING_STYLES.get(pooling, "-"),
                    marker=POOLING_MARKERS.get(pooling, "o"), markersize=4.5, color=colour,
                    markerfacecolor="white" if random else colour, linewidth=1.0 if random else 1.6,
                    alpha=0.85 if random else 1.0, zorder=3)
            if len(known):
                ax.fill_between(known["position"], known[band[0]], known[band[1]], color=colour, alpha=BAND_ALPHA,
                                linewidth=0, zorder=2)


def _draw_spread(ax, spread: pd.DataFrame, task: str) -> None:
    """The range over the models' extra training seeds (`seed_spread`) as bars at each layer."""
    for (model, _), bars in spread[spread["probe_task"] == task].groupby(["model", "pooling"]):
        mid = (bars["low"] + bars["high"]) / 2
        ax.errorbar(bars["position"], mid, yerr=[mid - bars["low"], bars["high"] - mid], fmt="none",
                    ecolor=_colour(model), elinewidth=1.0, capsize=2.5, alpha=0.8, zorder=4)


def _draw_task(ax, rows: pd.DataFrame, task: str, models: list[str], majority: float,
               spread: pd.DataFrame | None) -> None:
    """One probing task's panel: test accuracy per model and pooling (`_draw_lines`, the 95% interval over the
    probe's seeds shaded), the range over extra training seeds, the baselines."""
    _draw_lines(ax, rows, models, "test_acc", ("test_ci_low", "test_ci_high"))
    if spread is not None:
        _draw_spread(ax, spread, task)
    _draw_published(ax, task)
    ax.axhline(majority, color="black", linestyle=":", linewidth=1.2)
    ax.set_title(_label(task))
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(X_LABEL)
    ax.set_ylabel(Y_LABEL)
    ax.tick_params(labelbottom=True, labelleft=True)


def _model_handles(table: pd.DataFrame, models: list[str]) -> list:
    """A legend entry per model (an embed. baseline dashed, a random encoder with a hollow marker) and pooling."""
    handles = []
    for m in models:
        embed, random = m in EMBED_MODELS, _is_random(m)
        handles.append(Line2D([], [], color=_colour(m), linewidth=1.4 if embed or random else 2.5,
                              linestyle=EMBED_STYLE if embed else "-", marker="o" if random else None,
                              markerfacecolor="white", label=model_name(m)))
    poolings = list(pd.unique(table.loc[~table["model"].isin(EMBED_MODELS), "pooling"]))
    return handles + [Line2D([], [], color="dimgray", linestyle=POOLING_STYLES.get(p, "-"),
                             marker=POOLING_MARKERS.get(p, "o"), markersize=4.5, label=f"pooling: {p}")
                      for p in poolings]


def _legend_handles(table: pd.DataFrame, models: list[str], spread: pd.DataFrame | None) -> list:
    handles = _model_handles(table, models)
    handles.append(Line2D([], [], color="black", linestyle=":", label="majority baseline (this data)"))
    if set(table["probe_task"]) & set(CONNEAU_2018):
        handles += [Line2D([], [], color=colour, linestyle=style, label=label)
                    for _, label, colour, style in PUBLISHED_LINES]
    if table[["test_ci_low", "test_ci_high"]].notna().all(axis=1).any():
        handles.append(Patch(color="dimgray", alpha=0.3, label="95% interval over probe seeds"))
    if spread is not None:
        handles.append(Line2D([], [], color="dimgray", marker="_", markersize=8, linestyle="-", linewidth=1.0,
                              label=f"range over training seeds (up to {spread['runs'].max()} models)"))
    return handles


def _main_rows(table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """The rows of each probing task's main classifier (`main_classifier`; a task probed without it, WordContent
    by the linear probe alone with probe.word_content_logreg, its first) and that classifier per task."""
    classifier = main_classifier(table)
    chosen = {task: classifier if classifier in set(rows["classifier"]) else classifier_order(rows["classifier"])[0]
              for task, rows in table.groupby("probe_task", sort=False)}
    return table[table["classifier"] == table["probe_task"].map(chosen)], chosen


def probing_figure(table: pd.DataFrame, title: str, ncols: int = 3, spread: pd.DataFrame | None = None) -> Figure:
    """One panel per probing task (in table order): test accuracy of the main classifier (`main_classifier`)
    against `position` for each model and pooling (colour: model, line style: pooling; an embed. baseline dashed
    across the panel; a random encoder with hollow markers), the 95% interval over the probe's seeds shaded
    (`test_ci_low`, `test_ci_high`, where known), the majority baseline of the data as a black dotted line and the
    published majority-class, human and best-model accuracies of Conneau et al. (2018) (`probing_reference`); one
    shared legend. With `spread` (`seed_spread`), each model's range over its extra training seeds as bars."""
    classifier = main_classifier(table)
    table, chosen = _main_rows(table)
    if spread is not None:
        spread = spread[spread["classifier"] == spread["probe_task"].map(chosen)]
        spread = None if spread.empty else spread
    tasks = list(pd.unique(table["probe_task"]))
    models = model_order(table["model"])
    majority = majority_by_task(table)
    nrows = math.ceil((len(tasks) + 1) / ncols)  # one more panel for the legend
    fig, axes = new_figure(3.2 * ncols, 2.9 * nrows + 0.9, nrows, ncols, sharex=True, sharey=True)
    flat = axes.ravel()
    for ax, task in zip(flat, tasks):
        _draw_task(ax, table[table["probe_task"] == task], task, models, majority[task], spread)
        if chosen[task] != classifier:
            ax.set_title(f"{_label(task)} ({_classifier_name(chosen[task])} probe)")
    legend_ax = flat[len(tasks)]
    for ax in flat[len(tasks) + 1:]:
        ax.remove()
    legend_ax.axis("off")
    legend_ax.legend(handles=_legend_handles(table, models, spread), loc="center", frameon=False,
                     title="model / pooling / baselines", fontsize=7.5)
    fig.suptitle(f"{title} ({_classifier_name(classifier)} probe)")
    fig.tight_layout()
    return fig


def classifier_figure(table: pd.DataFrame, value: str, band: tuple[str, str] | None, y_label: str,
                      title: str, reference: float = 0.0) -> Figure:
    """A panel per probing task and classifier (`classifier_order`; the classifiers of a task side by side, two
    tasks a row from four tasks on): `value` against `position` per model and pooling (`_draw_lines`, `band`
    shaded), a grey line at `reference` (no selectivity, no compression), one legend under the panels; every panel
    on the same axes, the y axis labelled on the left, the x axis under the lowest panels."""
    tasks = list(pd.unique(table["probe_task"]))
    classifiers = classifier_order(table["classifier"])
    pairs = 2 if len(tasks) > 3 else 1
    nrows, ncols = math.ceil(len(tasks) / pairs), pairs * len(classifiers)
    fig, axes = new_figure(3.9 * ncols, 2.6 * nrows + 0.6, nrows, ncols, sharex=True, sharey=True)
    models = model_order(table["model"])
    for i, task in enumerate(tasks):
        for c, classifier in enumerate(classifiers):
            ax = axes[i // pairs][(i % pairs) * len(classifiers) + c]
            rows = table[(table["probe_task"] == task) & (table["classifier"] == classifier)]
            _draw_lines(ax, rows, models, value, band)
            if rows.empty:  # WordContent with probe.word_content_logreg: the linear probe only
                ax.text(0.5, 0.5, f"not probed by the {_classifier_name(classifier)} probe", ha="center",
                        va="center", transform=ax.transAxes, color="dimgray")
            ax.axhline(reference, color="gray", linewidth=0.8, zorder=1)
            ax.set_title(f"{_label(task)}: {_classifier_name(classifier)} probe")
            ax.set_xlim(-0.05, 1.05)
            if i + pairs >= len(tasks):  # the lowest panel of its column
                ax.set_xlabel(X_LABEL)
            if i % pairs == 0 and c == 0:  # the panels of a row share the y axis: labelled on the left
                ax.set_ylabel(y_label.replace(" (", "\n("))  # the unit on a line of its own
            ax.tick_params(labelbottom=True)
    for ax in axes.ravel()[len(tasks) * len(classifiers):]:
        ax.remove()
    handles = _model_handles(table, models)
    if band and table[list(band)].notna().all(axis=1).any():
        handles.append(Patch(color="dimgray", alpha=0.3, label="95% interval over probe seeds"))
    fig.suptitle(title)
    fig.tight_layout()
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(4, len(handles)),
               frameon=False, fontsize=8.5)
    return fig


def overview_figure(best: pd.DataFrame, title: str) -> Figure:
    """Heatmap of best-layer test accuracy of the main classifier (`probing_stats.probing_summary`): one row per
    model of each scope (the pre-trained teacher once) under a row of majority baselines, one column per probing
    task; each cell shows the accuracy (the layer it was reached at is in the table), with `*` where it differs from
    the reference's (the teacher's) significantly (paired t-test over the probe's seeds)."""
    main = main_classifier(best)
    best, chosen = _main_rows(best)
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
        notes[i][j] = f"{r.test_acc:.2f}" + ("*" if r.significant else "")
    labels = ["majority baseline"] + [
        model_name(model) if scope == "pretrained" else f"{scope}: {model_name(model)}" for scope, model in rows]
    fig, axes = new_figure(0.7 * len(tasks) + 3.4, 0.36 * len(labels) + 2.4)
    ax = axes[0][0]
    image = ax.imshow(values, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for (i, j), note in np.ndenumerate(np.array(notes, dtype=object)):
        if note:
            ax.text(j, i, note, ha="center", va="center", fontsize=8.5,
                    color="black" if values[i, j] > 0.6 else "white")
    ax.set_xticks(range(len(tasks)), [_label(t) + ("" if chosen[t] == main else f" ({chosen[t]})") for t in tasks],
                  rotation=35, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.axhline(0.5, color="white", linewidth=2)
    ax.grid(False)
    ax.set_xlabel("probing task")
    ax.set_ylabel("downstream task: model")
    fig.colorbar(image, ax=ax, fraction=0.035, pad=0.02, label="best-layer test accuracy (fraction)")
    ax.set_title(f"{title} ({_classifier_name(main_classifier(best))} probe)\n"
                 f"* differs from the teacher's (p < {SIGNIFICANCE:g}, paired t-test over probe seeds)", fontsize=9.5)
    fig.tight_layout()
    return fig


def _table(entries: Iterable[Entry], seeds: bool = False) -> pd.DataFrame:
    """The entries' own probe tables, each row with its file (`table`); with `seeds`, their extra seeds' too, as
    `run` 1, 2, ... (the own run is 0)."""
    frames = []
    for scope, kind, path, model, seed_paths in entries:
        depth = model_depth(kind, model)
        log.info("%s %s: depth %d (from %s)", scope, kind, depth, model)
        frames.append(read_probe_tables([(scope, path, depth)]).assign(run=0, table=os.fspath(path)))
        if seeds:
            frames += [read_probe_tables([(scope, p, depth)]).assign(run=i, table=os.fspath(p))
                       for i, p in enumerate(seed_paths, 1)]
    return pd.concat(frames, ignore_index=True)


def seed_spread(table: pd.DataFrame) -> pd.DataFrame | None:
    """Per model, pooling, classifier, probing task and layer with more than one run (a model's extra training
    seeds, `seeds.probe`): the lowest and highest mean test accuracy over its runs (`low`, `high`, `runs`); None
    when no model has extra seeds."""
    keys = ["scope", "model", "pooling", "classifier", "probe_task", "layer", "position"]
    grouped = table.groupby(keys, sort=False)["test_acc"].agg(low="min", high="max", runs="count").reset_index()
    grouped = grouped[grouped["runs"] > 1]
    return None if grouped.empty else grouped


def plot_task(entries: Sequence[Entry], task: str, out_png: str | os.PathLike) -> pd.DataFrame:
    """The probing figure of one downstream task (its models and the pre-trained teacher; `probing_figure`, the
    range over extra training seeds drawn where they were probed); returns the models' own table."""
    table = _table(entries, seeds=True)
    own = table[table["run"] == 0].drop(columns="run")
    fig = probing_figure(own, f"{task}: probing accuracy by relative layer depth", spread=seed_spread(table))
    save_figure(fig, out_png)
    return own


def plot_selectivity(entries: Sequence[Entry], task: str, out_png: str | os.PathLike) -> pd.DataFrame:
    """The selectivity (test accuracy - control task accuracy, Hewitt and Liang 2019) of one downstream task's
    models by relative depth, a panel column per classifier, the 95% interval over the probe's seeds shaded;
    returns the table. No selectivity in any table (`probe.control` off) is an InputError naming the first."""
    table = _table(entries)
    _require_values(table, "selectivity", "probe.control: true")
    save_figure(classifier_figure(table, "selectivity", ("selectivity_ci_low", "selectivity_ci_high"),
                                  SELECTIVITY_LABEL, f"{task}: selectivity (test - control task accuracy)"),
                out_png)
    return table


def plot_mdl(entries: Sequence[Entry], task: str, out_png: str | os.PathLike) -> pd.DataFrame:
    """The MDL compression (uniform / online codelength, Voita and Titov 2020) of one downstream task's models by
    relative depth, a panel column per classifier, a line at 1 (no compression); returns the table. A table without
    MDL values (no `compression` column, or it empty: probed without `probe.mdl`) is an InputError naming it."""
    table = _table(entries)
    _require_values(table, "compression", "probe.mdl: true", every=True)
    save_figure(classifier_figure(table, "compression", None, MDL_LABEL,
                                  f"{task}: MDL compression by relative layer depth", reference=1.0), out_png)
    return table


def _require_values(table: pd.DataFrame, column: str, setting: str, every: bool = False) -> None:
    """An InputError naming a table (the first; with `every`, the first of those) without any value of `column`."""
    present = table.groupby("table", sort=False)[column].agg(lambda v: v.notna().any()) if column in table \
        else pd.Series(False, index=pd.unique(table["table"]))
    if (not present.any()) or (every and not present.all()):
        path = present.index[~present.to_numpy()][0]
        raise InputError(path, f"no {column} values: probe with `{setting}` (then rerun the probes)")


def plot_overview(entries: Sequence[Entry], out_png: str | os.PathLike, out_csv: str | os.PathLike) -> pd.DataFrame:
    """The overview heatmap of every probed model (`overview_figure`) and its table, `probing_stats.
    probing_summary` of every classifier (`results/plots/probe/best_layers.csv`)."""
    best = probing_summary(_table(entries).drop(columns=["run", "table"]))
    write_csv(out_csv, best)
    log.info("wrote %s: %d rows", out_csv, len(best))
    save_figure(overview_figure(best, "Probing: test accuracy of the best layer and pooling"), out_png)
    return best

"""One sweep on one task (config `sweeps`, `kdprobe.variants`): its table and its two figures.

`sweep_table(task, sweep, student, points, metrics, base_metrics)` builds `results/sweeps/{task}/{sweep}.csv`: the
row `configured` (the student's own run, for reference), then one row per grid point in grid order: `sweep`,
`task`, `student`, `run` (the point's name, `sweeps/<sweep>/<label>`), the value of each grid key, `metric`,
`best_dev` (the headline metric of the kept checkpoint on dev), `best_epoch`, `test` (that checkpoint on test),
`params`, `params_without_embeddings` (from each run's `metrics.json`, written by `kdprobe.distil`).
`sweep_figure` plots `best_dev` against the first key (one line per combination of the others; where every
combination is one point, as in a list of `points` with a per-point learning rate, one line per value of the second
key, each marker labelled with the rest); multipliers written "p/q" are placed at their value;
`curves_figure` every point's dev score and loss per epoch.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from kdprobe.errors import InputError
from kdprobe.io import read_json, write_csv
from kdprobe.registry import HEADLINE_METRIC

log = logging.getLogger(__name__)

CONFIGURED = "configured"
#: Grid keys drawn on a log axis (they span orders of magnitude: learning rates, size multipliers 1/32 to 5).
LOG_KEYS = ("lr", "width", "depth")
#: Grid keys with a tick at each value (named as written, "1/3" too).
TICKED_KEYS = ("width", "depth")


def _run_row(path: str | Path, task: str, headline: str) -> dict[str, Any]:
    record = read_json(path)
    try:
        return {"metric": headline, "best_dev": float(record["dev"][headline]),
                "best_epoch": int(record["best_epoch"]), "test": float(record["test"][headline]),
                "params": int(record["n_params"]), "params_without_embeddings": int(record["n_params_without_embeddings"])}
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(path, f"not a student's metrics.json with {headline} on dev and test: {exc!r}") from None


def sweep_table(task: str, sweep: str, student: str, points: Sequence[Mapping[str, Any]],
                metrics: Sequence[str | Path], base_metrics: str | Path) -> pd.DataFrame:
    """The table of the module docstring; `points`: [{'name', 'values'}] in grid order, `metrics` their
    `metrics.json` in the same order, `base_metrics` the student's own run's."""
    if len(points) != len(metrics):
        raise ValueError(f"{len(points)} grid points but {len(metrics)} metrics files")
    headline = HEADLINE_METRIC[task]
    keys = list(points[0]["values"]) if points else []
    head = {"sweep": sweep, "task": task, "student": student}
    rows = [head | {"run": CONFIGURED} | {key: None for key in keys} | _run_row(base_metrics, task, headline)]
    for point, path in zip(points, metrics):
        values = {key: _cell(point["values"][key]) for key in keys}
        rows.append(head | {"run": point["name"]} | values | _run_row(path, task, headline))
    return pd.DataFrame(rows)


def _cell(value: Any) -> Any:
    return "-".join(map(str, value)) if isinstance(value, (list, tuple)) else value


def _number(value: Any) -> float | None:
    """`value` as a number: itself, or a fraction written "p/q" (a size multiplier); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value.count("/") == 1 and all(p.isdigit() for p in value.split("/")):
        num, den = map(int, value.split("/"))
        return num / den if den else None
    return None


def _show(value: Any) -> str:
    """A value as written: 2, not the 2.0 a column with the configured run's empty cell turns it into."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _numeric(values: pd.Series) -> bool:
    return all(_number(v) is not None for v in values)


def _lines(points: pd.DataFrame, others: list[str]) -> tuple[list[str], list[str], list]:
    """The keys that make one line each, the keys labelled beside each marker, and the groups of rows."""
    groups = list(points.groupby(others, sort=False)) if others else [((), points)]
    if len(others) > 1 and all(len(rows) == 1 for _, rows in groups):  # every point its own: per-point settings
        others, labelled = others[:1], others[1:]
        return others, labelled, list(points.groupby(others, sort=False))
    return others, [], groups


def sweep_figure(table: pd.DataFrame, keys: Sequence[str]) -> Figure:
    """Best dev score against the first key, one line per combination of the other keys (`_lines`); the
    configured run as a dashed line."""
    from kdprobe.registry import METRIC_DISPLAY
    from kdprobe.report.figures import metric_label, model_name, new_figure

    points = table[table["run"] != CONFIGURED]
    base = table[table["run"] == CONFIGURED].iloc[0]
    x_key = keys[0]
    others, labelled, groups = _lines(points, list(keys[1:]))
    fig, axes = new_figure(7.5, 4.6)
    ax = axes[0][0]
    numeric = _numeric(points[x_key])
    order = list(dict.fromkeys(points[x_key]))
    for group, rows in groups:
        group = group if isinstance(group, tuple) else (group,)
        xs = [_number(v) if numeric else order.index(v) for v in rows[x_key]]
        label = ", ".join(f"{k}={_show(v)}" for k, v in zip(others, group)) or "grid points"
        ax.plot(xs, rows["best_dev"], "-o", markersize=6, label=label)
        for x, (_, row) in zip(xs, rows.iterrows()):
            if labelled:
                ax.annotate(", ".join(f"{k}={_show(row[k])}" for k in labelled), (x, row["best_dev"]), fontsize=7,
                            textcoords="offset points", xytext=(4, 4))
    ax.axhline(base["best_dev"], color="black", linestyle="--", label="configured settings (own run)")
    if numeric and x_key in LOG_KEYS:
        ax.set_xscale("log")
    if numeric and (x_key in TICKED_KEYS or any(isinstance(v, str) for v in order)):
        ax.set_xticks([_number(v) for v in order], [_show(v) for v in order])
    if not numeric:
        ax.set_xticks(range(len(order)), [str(v) for v in order])
    ax.set_xlabel(f"{x_key}{' (log scale)' if numeric and x_key in LOG_KEYS else ''}")
    ax.set_ylabel(f"best {metric_label(base['metric'])}")
    ax.legend(loc="best")
    ax.set_title(f"{base['task']}: {model_name(base['student'])} sweep {base['sweep']} "
                 f"(best dev {METRIC_DISPLAY.get(base['metric'], base['metric'])} per grid point)")
    fig.tight_layout()
    return fig


def curves_figure(curves: Mapping[str, pd.DataFrame], task: str, title: str) -> Figure:
    """Every grid point's dev headline metric (left) and distillation loss (right, log scale) per epoch."""
    from kdprobe.report.figures import metric_label, new_figure

    column = f"dev_{HEADLINE_METRIC[task]}"
    fig, axes = new_figure(12, 4.6, 1, 2)
    dev_ax, loss_ax = axes[0]
    cmap = colormaps["viridis"]
    for i, (name, curve) in enumerate(curves.items()):
        colour = cmap(i / max(len(curves) - 1, 1) * 0.9)
        dev_ax.plot(curve["epoch"], curve[column], "-o", markersize=3, color=colour, label=name)
        loss_ax.plot(curve["epoch"], curve["loss"], "-o", markersize=3, color=colour, label=name)
    dev_ax.set_ylabel(metric_label(column))
    dev_ax.set_title("dev score per epoch")
    loss_ax.set_ylabel("distillation loss (log scale)")
    loss_ax.set_yscale("log")
    loss_ax.set_title("training loss per epoch")
    for ax in (dev_ax, loss_ax):
        ax.set_xlabel("epoch")
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def write_sweep_summary(task: str, sweep: str, student: str, points: Sequence[Mapping[str, Any]],
                        metrics: Sequence[str | Path], curves: Sequence[str | Path], base_metrics: str | Path,
                        out_csv: str | Path, out_png: str | Path, out_curves_png: str | Path) -> pd.DataFrame:
    """The sweep's table, its dev-score plot and its curves figure (rule `sweep_summary`)."""
    from kdprobe.report.curves import read_headline_curve
    from kdprobe.report.figures import save_figure

    table = sweep_table(task, sweep, student, points, metrics, base_metrics)
    read = {point["name"].rsplit("/", 1)[-1]: read_headline_curve(path, task)
            for point, path in zip(points, curves, strict=True)}  # every input read before anything is written
    write_csv(out_csv, table)
    best = table[table["run"] != CONFIGURED].sort_values("best_dev", ascending=False).iloc[0]
    log.info("%s %s: %d grid points; best %s dev %s %.4f (configured: %.4f); wrote %s", task, sweep, len(points),
             best["run"], best["metric"], best["best_dev"], table.iloc[0]["best_dev"], out_csv)
    save_figure(sweep_figure(table, list(points[0]["values"])), out_png)
    save_figure(curves_figure(read, task, f"{task}: sweep {sweep}, every grid point's training curves"),
                out_curves_png)
    log.info("wrote %s and %s", out_png, out_curves_png)
    return table

"""Probe tables: the columns of `results/probe/{scope}/{model}/{probe_task}.csv`, the score columns of a row from
its per-seed accuracies (`seed_columns`, `interval`), and the merge of one model's per-task tables into
`results/probe/{scope}/{model}.csv`. Tables only: no torch, so merge jobs start without it."""

from __future__ import annotations

import io
import logging
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from kdprobe.errors import InputError
from kdprobe.intervals import interval
from kdprobe.io import read_csv_table, write_csv

log = logging.getLogger(__name__)

#: One row per (layer, pooling, classifier): the scores over the probe's seeds (`seed_columns`), its control task's
#: and their difference, the selectivity (`selectivity_columns`); the first seed's chosen setting (`hidden` 0:
#: logistic regression; `epochs`: the passes over the training set it trained); the per-seed accuracies
#: (`;`-joined, in seed order, for paired tests); the online code (`probe.mdl`; empty without it).
COLUMNS = [
    "model", "probe_task", "layer", "pooling", "classifier", "seeds",
    "test_acc", "test_std", "test_ci_low", "test_ci_high", "dev_acc",
    "control_acc", "control_std", "selectivity", "selectivity_ci_low", "selectivity_ci_high",
    "hidden", "dropout", "weight_decay", "epochs", "majority_acc", "n_train", "n_dev", "n_test",
    "test_acc_by_seed", "control_acc_by_seed",
    "mdl_bits", "uniform_bits", "compression",
]
#: Columns of per-seed accuracies: text (`;`-joined), never read as numbers (one seed would look like one).
SEED_COLUMNS = {"test_acc_by_seed": str, "control_acc_by_seed": str}
def join_seeds(values: Sequence[float]) -> str:
    """Per-seed accuracies as a table cell: `;`-joined, 6 decimals."""
    return ";".join(f"{v:.6f}" for v in values)


def seed_columns(test: Sequence[float], dev: Sequence[float], control: Sequence[float] | None) -> dict[str, Any]:
    """The score columns of one row from its per-seed test and dev accuracies and, when probed, its control task's
    (seed i of the control paired with seed i of the task: selectivity is the mean of their differences)."""
    mean, std, low, high = interval(test)
    row: dict[str, Any] = {"seeds": len(test), "test_acc": mean, "test_std": std, "test_ci_low": low,
                           "test_ci_high": high, "dev_acc": float(np.mean(dev)), "test_acc_by_seed": join_seeds(test)}
    if control is None:
        return row | {key: math.nan for key in ("control_acc", "control_std", "selectivity", "selectivity_ci_low",
                                                "selectivity_ci_high")} | {"control_acc_by_seed": ""}
    if len(control) != len(test):
        raise ValueError(f"{len(control)} control seeds for {len(test)} task seeds")
    c_mean, c_std, _, _ = interval(control)
    selectivity, _, s_low, s_high = interval([t - c for t, c in zip(test, control)])
    return row | {"control_acc": c_mean, "control_std": c_std, "selectivity": selectivity,
                  "selectivity_ci_low": s_low, "selectivity_ci_high": s_high, "control_acc_by_seed": join_seeds(control)}


def read_probe_csv(path: str | os.PathLike | io.StringIO) -> pd.DataFrame:
    """A probe table (`COLUMNS`, at least one row), its per-seed columns as text ("" when empty)."""
    table = read_csv_table(path, COLUMNS, dtype=SEED_COLUMNS)
    return table.fillna({column: "" for column in SEED_COLUMNS})


def merge_probes(
    in_csvs: Sequence[str | os.PathLike],
    out_csv: str | os.PathLike,
    expected_tasks: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Concatenate per-task probe tables into one, checking they are complete and consistent.

    Rows are ordered by model (first appearance), then probe task (the order of `expected_tasks` when given,
    else alphabetical), then as written (layer, pooling). Every input must have `COLUMNS` and at least one row;
    each (model, probe_task, layer, pooling) may occur once; with `expected_tasks` (the config's `probe.tasks`)
    every expected task must be present for every model and no other task may appear.
    """
    if not in_csvs:
        raise ValueError("merge_probes: no input tables")
    frames = []
    for path in in_csvs:
        frame = read_probe_csv(path)
        frames.append(frame[COLUMNS])
        log.info("read %s: %d rows", path, len(frame))
    table = pd.concat(frames, ignore_index=True)
    where = str(Path(os.path.commonpath([os.path.abspath(p) for p in in_csvs])))

    dup = table.duplicated(["model", "probe_task", "layer", "pooling", "classifier"], keep=False)
    if dup.any():
        first = table[dup].iloc[0]
        raise InputError(where, f"duplicate result for model {first.model}, task {first.probe_task}, "
                                f"layer {first.layer}, pooling {first.pooling}, classifier {first.classifier}")
    tasks = list(expected_tasks) if expected_tasks is not None else sorted(table["probe_task"].unique())
    if expected_tasks is not None:
        for model, group in table.groupby("model", sort=False):
            present = set(group["probe_task"])
            lacking = [t for t in tasks if t not in present]
            if lacking:
                raise InputError(where, f"model {model}: no results for probe tasks {lacking}")
            extra = sorted(present - set(tasks))
            if extra:
                raise InputError(where, f"model {model}: probe tasks {extra} are not in probe.tasks")
    model_rank = {m: i for i, m in enumerate(pd.unique(table["model"]))}
    task_rank = {t: i for i, t in enumerate(tasks)}
    table = table.assign(_m=table["model"].map(model_rank), _t=table["probe_task"].map(task_rank),
                         _r=range(len(table)))
    table = table.sort_values(["_m", "_t", "_r"], kind="stable").drop(columns=["_m", "_t", "_r"])
    table = table.reset_index(drop=True)
    write_csv(out_csv, table)
    log.info("wrote %s: %d rows, %d models x %d probe tasks", out_csv, len(table), len(model_rank), len(tasks))
    return table

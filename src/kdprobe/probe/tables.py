"""Probe tables: the columns of `results/probe/{scope}/{model}/{probe_task}.csv` and the merge of one model's
per-task tables into `results/probe/{scope}/{model}.csv`. Tables only: no torch, so merge jobs start without it."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import pandas as pd

from kdprobe.errors import InputError
from kdprobe.io import read_csv_table, write_csv

log = logging.getLogger(__name__)

#: One row per (layer, pooling): the chosen setting (`hidden` 0: logistic regression; `epochs`: the passes over the
#: training set it trained) and its scores.
COLUMNS = [
    "model", "probe_task", "layer", "pooling", "test_acc", "dev_acc", "hidden", "dropout", "weight_decay", "epochs",
    "majority_acc", "n_train", "n_dev", "n_test",
]


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
        frame = read_csv_table(path, COLUMNS)
        frames.append(frame[COLUMNS])
        log.info("read %s: %d rows", path, len(frame))
    table = pd.concat(frames, ignore_index=True)
    where = str(Path(os.path.commonpath([os.path.abspath(p) for p in in_csvs])))

    dup = table.duplicated(["model", "probe_task", "layer", "pooling"], keep=False)
    if dup.any():
        first = table[dup].iloc[0]
        raise InputError(where, f"duplicate result for model {first.model}, task {first.probe_task}, "
                                f"layer {first.layer}, pooling {first.pooling}")
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

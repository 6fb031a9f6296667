"""Per-task summary: the teacher and the students side by side, and the study-wide table.

`task_table(task, labels_path, splits, predictions, speeds)` builds `results/summary/{task}.csv`, one row per model
(in the order given, the teacher first):
- `metric`: the task's headline metric (`registry.TASK[task].headline`); `dev_score`, `test_score`: its value on each split;
  `dev_<m>`, `test_<m>`: every metric of `metrics.task_metrics` (CoLA MCC, SST-2 accuracy, Sara micro and macro F1;
  accuracy for all), scored from the prediction files; `n_dev`, `n_test`: their sentences;
- `test_is_dev`: whether `test.tsv` repeats `dev.tsv` (CoLA and SST-2: GLUE's test labels are hidden);
- `dev_share`, `test_share`: the headline score as a share of the teacher's (1 for the teacher; empty when the
  teacher's score is not positive, where a share means nothing);
- `seeds`, `dev_score_mean`, `dev_score_std`, `test_score_mean`, `test_score_std`: the headline score over the
  model's seeds (`kdprobe.report.seeds`; one seed: its score, no deviation); the other columns are its own run's;
- `params`, `params_without_embeddings` and their `_ratio` to the teacher's; `disk_mb` (weight files, 10^6 bytes);
- `cpu_latency_ms` (median, one sentence), `cpu_throughput` (sentences/s at `throughput_batch`), `cpu_device`,
  `cpu_threads`, and the same `gpu_*` columns (empty without a GPU); `latency_repeats`, `throughput_batch`.
`study_table(frames)` stacks the per-task tables on the columns all tasks share (`STUDY_COLUMNS`).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from kdprobe.errors import InputError
from kdprobe.io import read_json
from kdprobe.metrics import task_metrics
from kdprobe.registry import HEADLINE_METRIC
from kdprobe.splits import read_labels

log = logging.getLogger(__name__)

SPLITS = ("dev", "test")
#: Columns of the study-wide table (and the first columns of each task's table).
STUDY_COLUMNS = [
    "task", "model", "metric", "dev_score", "test_score", "test_is_dev", "dev_share", "test_share",
    "seeds", "dev_score_mean", "dev_score_std", "test_score_mean", "test_score_std",
    "params", "params_without_embeddings", "params_ratio", "params_without_embeddings_ratio", "disk_mb",
    "cpu_latency_ms", "cpu_throughput", "cpu_device", "cpu_threads",
    "gpu_latency_ms", "gpu_throughput", "gpu_device", "latency_repeats", "throughput_batch", "n_dev", "n_test",
]
SPEED_KEYS = ("params", "params_without_embeddings", "disk_bytes", "settings", "cpu", "gpu")
DEVICE_KEYS = ("device_name", "threads", "latency_ms", "throughput")


def read_predictions(path: str | Path, labels: Sequence[str], n_expected: int | None = None) -> pd.DataFrame:
    """A predictions TSV (`results/predictions/...`: columns sentence, gold, pred as label names) with `gold` and
    `pred` coded as label indices. Missing columns, unknown labels, an empty table or (with `n_expected`) a row
    count that differs from its split's are InputErrors naming the file."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "predictions file not found")
    try:
        frame = pd.read_csv(path, sep="\t", keep_default_na=False, dtype={"gold": str, "pred": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not a predictions table: {exc}") from None
    missing = {"gold", "pred"} - set(frame.columns)
    if missing:
        raise InputError(path, f"missing column(s) {sorted(missing)}")
    if frame.empty:
        raise InputError(path, "no predictions")
    if n_expected is not None and len(frame) != n_expected:
        raise InputError(path, f"{len(frame)} predictions but the split has {n_expected} sentences: stale file")
    index = {name: i for i, name in enumerate(labels)}
    for col in ("gold", "pred"):
        unknown = ~frame[col].isin(index.keys())
        if unknown.any():
            row = int(np.flatnonzero(unknown.to_numpy())[0])
            raise InputError(path, f"{col} label {frame[col].iloc[row]!r} is not in labels.txt", line=row + 2)
        frame[col] = frame[col].map(index).to_numpy()
    return frame


def score_predictions(task: str, path: str | Path, labels: Sequence[str], n_expected: int | None = None
                      ) -> dict[str, float]:
    """`metrics.task_metrics` of a predictions TSV (`read_predictions`, whose InputErrors it raises)."""
    frame = read_predictions(path, labels, n_expected)
    return task_metrics(task, frame["gold"].to_numpy(), frame["pred"].to_numpy())


def read_speed(path: str | Path) -> dict[str, Any]:
    """A `kdprobe.predict.speed` record, checked for the keys the summary reads."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "speed record not found")
    record = read_json(path)  # not JSON: an InputError naming the file
    if not isinstance(record, dict):
        raise InputError(path, "not a speed record (a JSON object)")
    missing = [k for k in SPEED_KEYS if k not in record]
    if missing:
        raise InputError(path, f"missing key(s) {missing}")
    for slot in ("cpu", "gpu"):
        if slot == "cpu" and not record["cpu"]:
            raise InputError(path, "no CPU timing")
        if record[slot]:
            lacking = [k for k in DEVICE_KEYS if k not in record[slot]]
            if lacking:
                raise InputError(path, f"{slot}: missing key(s) {lacking}")
    return record


def share(score: float, reference: float) -> float:
    """`score / reference`, NaN when the reference is not positive (a share of zero or a negative MCC means
    nothing)."""
    if not (reference > 0) or math.isnan(score):
        return math.nan
    return score / reference


def count_lines(path: str | Path) -> int:
    """Rows of a split file (lines after the header)."""
    with open(path, encoding="utf-8") as fh:
        return max(sum(1 for _ in fh) - 1, 0)


def split_repeats_dev(dev_path: str | Path, test_path: str | Path) -> bool:
    """Whether the test split is byte for byte the dev split (CoLA and SST-2)."""
    return Path(dev_path).read_bytes() == Path(test_path).read_bytes()


def _device_columns(record: dict, slot: str) -> dict[str, Any]:
    timing = record.get(slot) or {}
    return {
        f"{slot}_latency_ms": timing.get("latency_ms", math.nan),
        f"{slot}_throughput": timing.get("throughput", math.nan),
        f"{slot}_device": timing.get("device_name", "none"),
        **({"cpu_threads": timing.get("threads")} if slot == "cpu" else {}),
    }


def task_table(task: str, labels_path: str | Path, splits: Mapping[str, str | Path],
               predictions: Mapping[str, Mapping[str, str | Path]], speeds: Mapping[str, str | Path],
               spread: pd.DataFrame | None = None) -> pd.DataFrame:
    """The task's summary (module docstring). `splits`: {'dev': path, 'test': path}; `predictions`: {model: {'dev':
    path, 'test': path}} with the teacher first; `speeds`: {model: speed JSON path}; `spread`: the models' scores
    over their seeds (`seeds.seed_spread`; None: one seed each)."""
    models = list(predictions)
    if not models or models[0] != "teacher":
        raise ValueError(f"the teacher comes first in a task table, got models {models}")
    if set(speeds) != set(models):
        raise ValueError(f"speed records for {sorted(speeds)}, predictions for {sorted(models)}")
    labels = read_labels(labels_path)
    sizes = {split: count_lines(splits[split]) for split in SPLITS}
    repeats = split_repeats_dev(splits["dev"], splits["test"])
    headline = HEADLINE_METRIC[task]
    rows = []
    for model in models:
        scores = {split: score_predictions(task, predictions[model][split], labels, sizes[split]) for split in SPLITS}
        record = read_speed(speeds[model])
        row = {
            "task": task, "model": model, "metric": headline,
            "dev_score": scores["dev"][headline], "test_score": scores["test"][headline], "test_is_dev": repeats,
            "params": int(record["params"]), "params_without_embeddings": int(record["params_without_embeddings"]),
            "disk_mb": record["disk_bytes"] / 1e6,
            **_device_columns(record, "cpu"), **_device_columns(record, "gpu"),
            "latency_repeats": record["settings"].get("latency_repeats"),
            "throughput_batch": record["settings"].get("throughput_batch"),
            "n_dev": sizes["dev"], "n_test": sizes["test"],
        }
        for split in SPLITS:
            row |= {f"{split}_{name}": value for name, value in sorted(scores[split].items())}
        rows.append(row)
    frame = pd.DataFrame(rows)
    if spread is None:
        spread = pd.DataFrame({"model": models, "seeds": 1, "dev_score_mean": frame["dev_score"],
                               "dev_score_std": math.nan, "test_score_mean": frame["test_score"],
                               "test_score_std": math.nan})
    if sorted(spread["model"]) != sorted(models):
        raise ValueError(f"seed spread for {sorted(spread['model'])}, predictions for {sorted(models)}")
    frame = frame.merge(spread, on="model", how="left", validate="one_to_one")
    teacher = frame.iloc[0]
    for split in SPLITS:
        frame[f"{split}_share"] = [share(s, teacher[f"{split}_score"]) for s in frame[f"{split}_score"]]
        if not teacher[f"{split}_score"] > 0:
            log.warning("%s: the teacher's %s %s is %.4f: shares of it are left empty", task, split, headline,
                        teacher[f"{split}_score"])
    for col in ("params", "params_without_embeddings"):
        frame[f"{col}_ratio"] = frame[col] / teacher[col]
    metric_cols = [c for c in frame.columns if c not in STUDY_COLUMNS]
    return frame[STUDY_COLUMNS + metric_cols]


def read_task_table(path: str | Path) -> pd.DataFrame:
    """A `results/summary/{task}.csv` written by `task_table`, checked for the study columns."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "task summary not found")
    frame = pd.read_csv(path)
    missing = [c for c in STUDY_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(path, f"missing column(s) {missing}")
    return frame


def study_table(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The per-task tables stacked on `STUDY_COLUMNS` (task-specific metric columns dropped)."""
    if not frames:
        raise ValueError("no task tables to stack")
    return pd.concat([frame[STUDY_COLUMNS] for frame in frames], ignore_index=True)

"""Entry points of the probing stage: probe one model on one SentEval task; merge the per-task tables."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import torch

from ..config import LOGREG_PROBE_TASK
from ..errors import InputError
from ..io import read_csv_table, write_csv
from . import senteval
from .encoders import MODEL_KINDS, encode, load_encoder, resolve_layers, resolve_poolings
from .probe import fit_grid, setting

log = logging.getLogger(__name__)

#: One row per (layer, pooling): the chosen setting (`hidden` 0: logistic regression; `epochs`: the passes over the
#: training set it trained) and its scores.
COLUMNS = [
    "model", "probe_task", "layer", "pooling", "test_acc", "dev_acc", "hidden", "dropout", "weight_decay", "epochs",
    "majority_acc", "n_train", "n_dev", "n_test",
]
_SPLITS = ("train", "dev", "test")


def probe_model(
    model_kind: str,
    model_dir: str | os.PathLike,
    probe_file: str | os.PathLike,
    settings: dict[str, Any],
    out_csv: str | os.PathLike,
    device: str | torch.device = "cpu",
) -> pd.DataFrame:
    """Probe every requested (layer, pooling) of one model on one SentEval task; write one CSV row for each.

    `model_kind`: teacher | pretrained | bert_s | lstm_s; `model_dir`: the model directory (for `pretrained` also
    a hub id); `probe_file`: a SentEval `*.txt` file (task = its stem); `settings`: the `probe` config section
    (`layers.<kind>`, `pooling.<kind>`, `grid`, `standardise`, `lr`, `batch_size`, `epoch_size`, `tenacity`,
    `max_epoch`, `seed`, `encode_batch_size`, `max_sentences`; for WordContent `word_content_logreg`, SentEval's
    logistic regression in place of the MLP). Returns the table it wrote (columns `COLUMNS`).
    """
    if model_kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {model_kind!r} (expected one of {', '.join(MODEL_KINDS)})")
    device = torch.device(device)
    task = senteval.task_name(probe_file)
    poolings = resolve_poolings(model_kind, setting(settings, "pooling", model_kind))
    layer_spec = setting(settings, "layers", model_kind)
    logistic = task == LOGREG_PROBE_TASK and bool(setting(settings, "word_content_logreg"))

    data = senteval.load(probe_file, int(settings.get("max_sentences", 0) or 0))
    labels = senteval.label_index(data)
    counts = {split: len(data[split][0]) for split in _SPLITS}
    log.info("read %s: task %s, %s sentences, %d classes", probe_file, task,
             "/".join(f"{counts[s]} {s}" for s in _SPLITS), len(labels))

    encoder = load_encoder(model_kind, str(model_dir), device)
    layers = resolve_layers(encoder, layer_spec)
    log.info("encoding layers %s with pooling %s", layers, poolings)
    if logistic:
        log.info("%s: logistic regression in place of the MLP, as SentEval (probe.word_content_logreg)", task)
    start = time.perf_counter()
    sentences = [s for split in _SPLITS for s in data[split][0]]
    features = encode(encoder, sentences, layers, poolings, int(settings.get("encode_batch_size", 128)),
                      desc=f"{model_kind} {task}")
    log.info("encoded %d sentences in %.1f s", len(sentences), time.perf_counter() - start)
    del encoder  # free the model (and its GPU memory) before the probes train
    if device.type == "cuda":
        torch.cuda.empty_cache()

    bounds, offset = {}, 0
    for split in _SPLITS:
        bounds[split] = (offset, offset + counts[split])
        offset += counts[split]
    y = {split: torch.tensor([labels[label] for label in data[split][1]], dtype=torch.long) for split in _SPLITS}

    rows = []
    for layer in layers:
        for pooling in poolings:
            x = features.pop((layer, pooling))
            parts = [(x[a:b], y[split]) for split, (a, b) in bounds.items()]
            start = time.perf_counter()
            result = fit_grid(*parts, settings=settings, n_classes=len(labels), device=device, logistic=logistic,
                              desc=f"{model_kind} {task} layer {layer} {pooling}")
            log.info(
                "%s %s layer %d %s (d=%d): test %.4f dev %.4f (hidden %d, dropout %.2f, weight decay %g, %d passes;"
                " %d settings), majority %.4f [%.1f s]", model_kind, task, layer, pooling, x.shape[1],
                result.test_acc, result.dev_acc, result.hidden, result.dropout, result.weight_decay, result.epochs,
                len(result.grid), result.majority_acc, time.perf_counter() - start,
            )
            rows.append({"model": model_kind, "probe_task": task, "layer": layer, "pooling": pooling, **result.row()})
    table = pd.DataFrame(rows, columns=COLUMNS)
    write_csv(out_csv, table)
    log.info("wrote %s: %d rows", out_csv, len(table))
    return table


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

"""Entry points of the probing stage: probe one model on one SentEval task (`probe_model`), or on several in one
job with the model loaded once (`probe_tasks`, rule `probe`); merge the per-task tables (`merge_probes`, from
`tables`, torch-free)."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd
import torch

from kdprobe.checkpoint import ResumeState, resume_key
from kdprobe.config import LOGREG_PROBE_TASK
from kdprobe.digest import content_digests, model_files
from kdprobe.io import write_csv, write_text
from kdprobe.probe import controls, mdl, senteval
from kdprobe.probe.classifier import fit_grids, setting
from kdprobe.probe.encoders import encode, load_encoder, resolve_layers, resolve_poolings
from kdprobe.probe.tables import COLUMNS, merge_probes, read_probe_csv, seed_columns
from kdprobe.registry import PROBE_KINDS

__all__ = ["COLUMNS", "merge_probes", "probe_model", "probe_tasks"]

log = logging.getLogger(__name__)

_SPLITS = ("train", "dev", "test")

#: The file in a probe job's state directory holding the key (sha256) of the last job that wrote its outputs.
COMPLETE = "complete.sha256"


def probe_model(
    model_kind: str,
    model_dir: str | os.PathLike,
    probe_file: str | os.PathLike,
    settings: dict[str, Any],
    out_csv: str | os.PathLike,
    device: str | torch.device = "cpu",
) -> pd.DataFrame:
    """Probe every requested (layer, pooling) of one model on one SentEval task; write one CSV row for each.

    `model_kind`: teacher | pretrained | bert_s | lstm_s | embed; `model_dir`: the model directory (for
    `pretrained` also a hub id; for `embed` a `kdprobe.students.embed` directory); `probe_file`: a SentEval
    `*.txt` file (task = its stem); `settings`: the `probe` config section (`layers.<kind>`, `pooling.<kind>`,
    `grid`, `standardise`, `lr`, `batch_size`, `epoch_size`, `tenacity`, `max_epoch`, `seed`, `encode_batch_size`,
    `max_sentences`, `classifiers`, `seeds`, `control`, `mdl`; for WordContent `word_content_logreg`, SentEval's
    logistic regression in place of the MLP). Returns the table it wrote (columns `COLUMNS`): one row per layer,
    pooling and classifier, with its seeds' mean and interval, its control task's and the online code.
    """
    _check(model_kind, settings)
    device = torch.device(device)
    return _probe(lambda: load_encoder(model_kind, str(model_dir), device), model_kind, probe_file, settings, out_csv,
                  device)


def probe_tasks(
    model_kind: str,
    model_dir: str | os.PathLike,
    probe_files: Sequence[str | os.PathLike],
    settings: Mapping[str, dict[str, Any]],
    out_csvs: Sequence[str | os.PathLike],
    merged_csv: str | os.PathLike,
    state_dir: str | os.PathLike,
    device: str | torch.device = "cpu",
    name: str | None = None,
) -> pd.DataFrame:
    """`probe_model` on every SentEval task of `probe_files` in one job, the model loaded once; each task's table
    written to its `out_csvs` entry, and all of them merged into `merged_csv` (`merge_probes`, in the order given).
    `settings`: `{task: its probe settings}` (`kdprobe.config.probe_settings`); `name`: the tables' `model`
    column (default `model_kind`; the embed. baselines are kind `embed`, named `<student>_embed`).

    Each task's table is also kept in `state_dir/<task>.pt`, keyed by that task's settings, the content of the
    model and of the task's data file, and the code (`checkpoint.resume_key`), so a job rerun for an edit that
    concerns some tasks only (say `probe.word_content_logreg`), or after a killed job, reuses the other tasks'
    tables, and the log says so. A job whose tasks all have the keys of the last complete job
    (`state_dir/complete.sha256`, written once the outputs are) was run for a reason no key records, forced
    (`snakemake -f/-F/-R`) or its outputs deleted: it probes every task again. Returns the merged table.
    """
    for task_settings in settings.values():
        _check(model_kind, task_settings)
    device = torch.device(device)
    files = model_files(model_dir)
    model = content_digests({"model": files}) if files else {"model": str(model_dir)}
    encoder = functools.cache(lambda: load_encoder(model_kind, str(model_dir), device))  # once, when first needed
    states = {}
    for probe_file in probe_files:
        task = senteval.task_name(probe_file)
        states[task] = ResumeState(Path(state_dir) / f"{task}.pt",
                                   resume_key(settings[task], {"data": probe_file}, kind=model_kind, model=model,
                                              name=name or model_kind))
    complete = Path(state_dir) / COMPLETE
    job_key = _start(states, complete)
    tasks = []
    for probe_file, out_csv in zip(probe_files, out_csvs, strict=True):
        task = senteval.task_name(probe_file)
        state = states[task]
        saved = state.load()
        if saved is not None:
            write_csv(out_csv, read_probe_csv(io.StringIO(saved["table"])))
            log.info("%s: its settings, the model, %s and the code are those of its saved table: reused, %s"
                     " written", task, probe_file, out_csv)
        else:
            table = _probe(encoder, model_kind, probe_file, settings[task], out_csv, device, name)
            state.save({"table": table.to_csv(index=False)})
        tasks.append(task)
    merged = merge_probes([str(path) for path in out_csvs], str(merged_csv), tasks)
    write_text(complete, job_key + "\n")
    return merged


def _start(states: Mapping[str, ResumeState], complete: Path) -> str:
    """The job's key (sha256 of its tasks' keys). When it is the one `complete` holds, every saved table is
    removed, so the job (and a rerun of it, were it killed) probes every task again; `complete` is removed until
    the job's outputs are written."""
    job_key = hashlib.sha256(json.dumps({t: s.key for t, s in states.items()}, sort_keys=True).encode()).hexdigest()
    if complete.exists() and complete.read_bytes().strip() == job_key.encode():
        log.info("every task's settings, data, model and code are those of the last complete job (%s): a forced"
                 " rerun, or its outputs deleted; every task is probed again", complete)
        for state in states.values():
            state.clear()
    complete.unlink(missing_ok=True)
    return job_key


def _check(model_kind: str, settings: dict[str, Any]) -> None:
    """The model kind and its pooling and layer settings, checked before a model is loaded."""
    if model_kind not in PROBE_KINDS:
        raise ValueError(f"unknown model kind {model_kind!r} (expected one of {', '.join(PROBE_KINDS)})")
    resolve_poolings(model_kind, setting(settings, "pooling", model_kind))
    setting(settings, "layers", model_kind)


@dataclass
class _Labels:
    """One probing task's labels as class indices per split: the task's and, with `probe.control`, its control
    task's (`controls.control_labels`, in the same label set)."""
    n_classes: int
    task: dict[str, torch.Tensor]
    control: dict[str, torch.Tensor] | None


def _labels(data: dict, settings: dict[str, Any]) -> _Labels:
    index = senteval.label_index(data)

    def tensors(labels: Mapping[str, Sequence[str]]) -> dict[str, torch.Tensor]:
        return {split: torch.tensor([index[label] for label in labels[split]], dtype=torch.long) for split in _SPLITS}

    task = tensors({split: data[split][1] for split in _SPLITS})
    control = None
    if setting(settings, "control"):
        control = tensors(controls.control_labels(data, int(setting(settings, "seed"))))
    return _Labels(len(index), task, control)


def _classifiers(task: str, settings: dict[str, Any]) -> list[str]:
    """`probe.classifiers` for `task`: WordContent with `word_content_logreg` is probed by the linear one only."""
    if task == LOGREG_PROBE_TASK and bool(settings.get("word_content_logreg")):
        return ["linear"]
    return [str(c) for c in setting(settings, "classifiers")]


def _row(parts: dict[str, torch.Tensor], labels: _Labels, settings: dict[str, Any], device: torch.device,
         classifier: str, desc: str) -> dict[str, Any]:
    """One table row: the `classifier` probe on the task and its control over the seeds (`probe.seed`, + 1, ...,
    `probe.seeds` of them), side by side (`fit_grids`), and the online code with the first seed's setting."""
    start = time.perf_counter()
    seed = int(setting(settings, "seed"))
    seeds = [seed + i for i in range(int(setting(settings, "seeds")))]
    label_sets = [labels.task] if labels.control is None else [labels.task, labels.control]
    results = fit_grids(*[(parts[split], torch.stack([ls[split] for ls in label_sets])) for split in _SPLITS],
                        settings=settings, n_classes=labels.n_classes, device=device, classifier=classifier,
                        seeds=seeds, desc=desc)
    task, control = results[0], (results[1] if len(results) > 1 else None)
    first = task[0]
    row = {**first.row(), **seed_columns([r.test_acc for r in task], [r.dev_acc for r in task],
                                         None if control is None else [r.test_acc for r in control]),
           "classifier": classifier, "mdl_bits": math.nan, "uniform_bits": math.nan, "compression": math.nan}
    if setting(settings, "mdl"):
        code = mdl.probe_codelength(parts["train"], labels.task["train"], parts["dev"], labels.task["dev"],
                                    labels.n_classes, first.hidden, first.dropout, first.weight_decay, settings,
                                    seed, device, desc=f"{desc} {classifier} online code")
        row |= {"mdl_bits": code.bits, "uniform_bits": code.uniform_bits, "compression": code.compression}
    log.info(
        "%s %s (d=%d): test %.4f +- %.4f over %d seeds, control %.4f, selectivity %.4f, compression %.2f (first"
        " seed: hidden %d, dropout %.2f, weight decay %g, %d passes), majority %.4f [%.1f s]", desc, classifier,
        parts["train"].shape[1], row["test_acc"], 0.0 if math.isnan(row["test_std"]) else row["test_std"],
        row["seeds"], row["control_acc"], row["selectivity"], row["compression"], first.hidden, first.dropout,
        first.weight_decay, first.epochs, first.majority_acc, time.perf_counter() - start)
    return row


def _probe(get_encoder: Callable[[], Any], model_kind: str, probe_file: str | os.PathLike, settings: dict[str, Any],
           out_csv: str | os.PathLike, device: torch.device, name: str | None = None) -> pd.DataFrame:
    """`probe_model`, the model from `get_encoder()` (`encoders.load_encoder`), asked for once the data is read;
    rows named `name` (default `model_kind`). The sentences are encoded once; every classifier, seed, control
    and online-code portion reuses the features."""
    task = senteval.task_name(probe_file)
    poolings = resolve_poolings(model_kind, setting(settings, "pooling", model_kind))
    layer_spec = setting(settings, "layers", model_kind)

    data = senteval.load(probe_file, int(settings.get("max_sentences", 0) or 0))
    counts = {split: len(data[split][0]) for split in _SPLITS}
    encoder = get_encoder()
    layers = resolve_layers(encoder, layer_spec)
    classifiers = _classifiers(task, settings)
    labels = _labels(data, settings)
    log.info("read %s: task %s, %s sentences, %d classes; classifiers %s, %d seeds each, control task %s, online"
             " code %s", probe_file, task, "/".join(f"{counts[s]} {s}" for s in _SPLITS), labels.n_classes,
             ", ".join(classifiers), int(setting(settings, "seeds")), "on" if labels.control else "off",
             "on" if setting(settings, "mdl") else "off")
    log.info("encoding layers %s with pooling %s", layers, poolings)
    start = time.perf_counter()
    sentences = [s for split in _SPLITS for s in data[split][0]]
    features = encode(encoder, sentences, layers, poolings, int(settings.get("encode_batch_size", 128)),
                      desc=f"{model_kind} {task}")
    log.info("encoded %d sentences in %.1f s", len(sentences), time.perf_counter() - start)

    bounds, offset = {}, 0
    for split in _SPLITS:
        bounds[split] = (offset, offset + counts[split])
        offset += counts[split]
    rows = []
    for layer in layers:
        for pooling in poolings:
            x = features.pop((layer, pooling))
            parts = {split: x[a:b] for split, (a, b) in bounds.items()}
            for classifier in classifiers:
                row = _row(parts, labels, settings, device, classifier, f"{model_kind} {task} layer {layer} {pooling}")
                rows.append({"model": name or model_kind, "probe_task": task, "layer": layer, "pooling": pooling,
                             **row})
    table = pd.DataFrame(rows, columns=COLUMNS)
    write_csv(out_csv, table)
    log.info("wrote %s: %d rows", out_csv, len(table))
    return table

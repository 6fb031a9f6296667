"""Fine-tune the teacher (BERT) on one task: `results/teacher/{task}/{model/,curve.csv,metrics.json}`.

Settings (`teacher` section): `epochs`, `batch_size`, `lr`, `betas`, `schedule`, `warmup_fraction`, `dropout`,
`max_length`, `evals_per_epoch`, `seed`, optional `save_every_steps`, `clip_norm`, `bf16`, `compile` (see
`kdprobe.training.fit`). The optimiser is Adam (AdamW with weight decay 0); the dev metrics are logged
`evals_per_epoch` times per epoch; the final weights are kept. The resumable state is keyed on the settings and
the content of `train.tsv`, `dev.tsv`, `labels.txt` and the base model's files.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from kdprobe.batching import PackedIds
from kdprobe.checkpoint import ResumeState
from kdprobe.digest import model_files
from kdprobe.errors import InputError
from kdprobe.io import atomic_dir, write_csv, write_json
from kdprobe.models import infer_logits
from kdprobe.metrics import task_metrics
from kdprobe.runtime import set_seed
from kdprobe.splits import label_ids, read_labels, read_sentences
from kdprobe.training import adamw, fit, hf_batch_loss

log = logging.getLogger(__name__)


def finetune(
    model: str | Path,
    data_dir: str | Path,
    task: str,
    settings: dict[str, Any],
    out_dir: str | Path,
    state_path: str | Path | None,
    device: torch.device | str,
    *,
    curve_path: str | Path | None = None,
    metrics_path: str | Path | None = None,
    stop_after_steps: int | None = None,
    tensorboard_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Fine-tune `model` (hub id or local directory) on `data_dir/{train,dev}.tsv` with `labels.txt`.

    Writes `out_dir` (model and tokenizer, `save_pretrained`), `curve_path` (default `out_dir/../curve.csv`:
    step, epoch, loss, dev_<metric>...) and `metrics_path` (default `out_dir/../metrics.json`:
    `{"dev": {metric: value}, "steps": n}`, the final model's dev metrics); returns the metrics dict.
    `stop_after_steps` simulates a killed job (raises `training.TrainingInterrupted`); `tensorboard_dir`: the
    curve as TensorBoard events too (`training.fit`).
    """
    data_dir, out_dir, device = Path(data_dir), Path(out_dir), torch.device(device)
    curve_path = Path(curve_path) if curve_path else out_dir.parent / "curve.csv"
    metrics_path = Path(metrics_path) if metrics_path else out_dir.parent / "metrics.json"
    labels = read_labels(data_dir / "labels.txt")
    if not labels:
        raise InputError(data_dir / "labels.txt", "no labels")
    train_x, train_names = read_sentences(data_dir / "train.tsv")
    dev_x, dev_names = read_sentences(data_dir / "dev.tsv")
    if not train_x:
        raise InputError(data_dir / "train.tsv", "no training examples")
    train_y = label_ids(data_dir / "train.tsv", train_names, labels)
    dev_y = label_ids(data_dir / "dev.tsv", dev_names, labels)

    set_seed(int(settings.get("seed", 0)))  # the new classifier's initialisation
    log.info("fine-tuning %s on %s with seed %d", model, task, int(settings.get("seed", 0)))
    tokenizer = AutoTokenizer.from_pretrained(model)
    net = AutoModelForSequenceClassification.from_pretrained(
        model,
        dtype=torch.float32,  # fp32 master weights whatever the checkpoint's dtype; bf16 only by autocast
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
        hidden_dropout_prob=float(settings["dropout"]),
        attention_probs_dropout_prob=float(settings["dropout"]),
    )
    encode = dict(truncation=True, max_length=int(settings["max_length"]), return_attention_mask=False,
                  return_token_type_ids=False)
    train_ids = PackedIds(tokenizer(train_x, **encode)["input_ids"])
    dev_ids = tokenizer(dev_x, **encode)["input_ids"] if dev_x else []
    pad_id = tokenizer.pad_token_id
    log.info("teacher %s on %s: %d train, %d dev, %d labels", model, task, len(train_ids), len(dev_ids), len(labels))

    def collate(idx: np.ndarray) -> dict[str, torch.Tensor]:
        return {**train_ids.padded(idx, pad_id), "labels": torch.from_numpy(train_y[idx])}

    def dev_metrics() -> dict[str, float]:
        pred = infer_logits(net, dev_ids, int(settings["batch_size"]), pad_id, device, settings).argmax(axis=1)
        return task_metrics(task, dev_y, pred)

    net.to(device)
    inputs = {name: data_dir / name for name in ("train.tsv", "dev.tsv", "labels.txt")}
    base = model_files(model)  # its files key the state; a hub id not in the cache, its name
    if base:
        inputs["base model"] = base
    result = fit(
        net, train_ids.lengths, hf_batch_loss(net, collate, device, settings), adamw(net, settings), settings,
        section="teacher", device=device, state_path=state_path, inputs=inputs,
        identity={"task": task, "base model": None if base else str(model)},
        stop_after_steps=stop_after_steps, desc=f"teacher {task}", tensorboard_dir=tensorboard_dir,
        evaluate=lambda: {f"dev_{k}": v for k, v in dev_metrics().items()},
    )
    curve = result.curve
    metrics = {"dev": dev_metrics(), "steps": result.steps}
    with atomic_dir(out_dir) as tmp:
        net.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    write_csv(curve_path, pd.DataFrame(curve))
    write_json(metrics_path, metrics)
    ResumeState(state_path).clear()
    log.info("teacher %s: dev %s; wrote %s, %s, %s", task, metrics["dev"], out_dir, curve_path, metrics_path)
    return metrics

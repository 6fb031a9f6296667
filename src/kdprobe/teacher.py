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
from typing import Any, Sequence

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from kdprobe.batching import PackedIds
from kdprobe.checkpoint import ResumeState
from kdprobe.digest import model_files
from kdprobe.errors import InputError
from kdprobe.models import infer_logits, load_errors
from kdprobe.metrics import task_metrics
from kdprobe.runtime import set_seed
from kdprobe.splits import label_ids, read_labels, read_sentences
from kdprobe.settings import OptimizerSettings, TrainSettings
from kdprobe.training import Batches, Callback, Resume, RunFiles, fit, hf_batch_loss, save_pretrained

log = logging.getLogger(__name__)


def finetune(
    model: str | Path,
    data_dir: str | Path,
    task: str,
    settings: dict[str, Any],
    files: RunFiles,
    state_path: str | Path | None,
    device: torch.device | str,
    *,
    callbacks: Sequence[Callback] = (),
) -> dict[str, Any]:
    """Fine-tune `model` (hub id or local directory) on `data_dir/{train,dev}.tsv` with `labels.txt`, with
    `settings` (the `teacher` section).

    Writes `files`: the model directory (model and tokenizer, `save_pretrained`), the curve (step, epoch, loss,
    lr, dev_<metric>...) and the metrics (`{"dev": {metric: value}, "steps": n}`, the final model's dev metrics);
    returns the metrics. `callbacks` go to `training.fit` (TensorBoard, tests' interruptions).
    """
    data_dir, device = Path(data_dir), torch.device(device)
    training = TrainSettings.from_section(settings, "teacher")
    labels = read_labels(data_dir / "labels.txt")
    if not labels:
        raise InputError(data_dir / "labels.txt", "no labels")
    train_x, train_names = read_sentences(data_dir / "train.tsv")
    dev_x, dev_names = read_sentences(data_dir / "dev.tsv")
    if not train_x:
        raise InputError(data_dir / "train.tsv", "no training examples")
    train_y = label_ids(data_dir / "train.tsv", train_names, labels)
    dev_y = label_ids(data_dir / "dev.tsv", dev_names, labels)

    set_seed(training.seed)  # the new classifier's initialisation
    log.info("fine-tuning %s on %s with seed %d", model, task, training.seed)
    with load_errors(model, "the base model"):
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
        pred = infer_logits(net, dev_ids, training.batch_size, pad_id, device, training.numerics).argmax(axis=1)
        return task_metrics(task, dev_y, pred)

    net.to(device)
    inputs = {name: data_dir / name for name in ("train.tsv", "dev.tsv", "labels.txt")}
    base = model_files(model)  # its files key the state; a hub id not in the cache, its name
    if base:
        inputs["base model"] = base
    result = fit(
        net, Batches(train_ids.lengths, hf_batch_loss(net, collate, device, training)),
        OptimizerSettings.from_section(settings, "teacher", name="adamw").build(net), training, device=device,
        resume=Resume(state_path, settings, inputs, {"task": task, "base model": None if base else str(model)}),
        evaluate=lambda: {f"dev_{k}": v for k, v in dev_metrics().items()}, callbacks=callbacks,
        desc=f"teacher {task}",
    )
    metrics = {"dev": dev_metrics(), "steps": result.steps}
    files.write(lambda tmp: save_pretrained(tmp, net, tokenizer), result.curve, metrics)
    ResumeState(state_path).clear()
    log.info("teacher %s: dev %s; wrote %s", task, metrics["dev"], files)
    return metrics

"""Dev-set (or test-set) predictions of a fine-tuned teacher or a student: one row per sentence with probabilities.

`write_predictions(model_kind, model_dir, data_dir, out_path, device, max_length=, split="dev")` writes
`results/predictions/{task}/{model}.tsv` (`split="test"`: `{model}.test.tsv`) with columns `sentence, gold, pred,
confidence, p_<label>...` (gold/pred are label names of `labels.txt`, confidence the predicted class's probability),
in the order of `{split}.tsv`.
Sentences are truncated as in training (the teacher at `teacher.max_length`, a student at the `max_length` in its
`student.json`), tokenised once, batched by length and run under `torch.inference_mode()`. A NaN or infinite logit
stops the job (`errors.NonFiniteError` naming the sentence) before anything is written.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from kdprobe.errors import ConfigError, InputError
from kdprobe.io import write_tsv
from kdprobe.metrics import accuracy
from kdprobe.models import batched_logits, check_finite_logits, load_classifier
from kdprobe.registry import MODELS
from kdprobe.splits import load_labels, load_split

log = logging.getLogger(__name__)

def class_probabilities(model_kind: str, model_dir: str | Path, sentences: Sequence[str], labels: Sequence[str],
                        max_length: int | None, device: torch.device | str, batch_size: int,
                        where: Callable[[int], str], labels_source: str) -> np.ndarray:
    """(N, classes) softmax probabilities of the trained `model_kind` model in `model_dir` on `sentences`, whose
    classes must be `labels` (read from `labels_source`, else `InputError`); truncated as `load_classifier` does. A
    NaN or infinite logit is a `NonFiniteError` naming the model and `where(i)`, the sentence."""
    model = load_classifier(model_kind, model_dir, max_length, device)
    if model.n_classes != len(labels):
        raise InputError(model_dir, f"model has {model.n_classes} classes, {labels_source} {len(labels)} labels")
    if model.labels and list(model.labels) != list(labels):
        raise InputError(model_dir, f"model was trained with labels {model.labels}, {labels_source} has "
                                    f"{list(labels)}")
    if not sentences:
        return np.empty((0, len(labels)), dtype=np.float32)
    logits = batched_logits(model.forward, model.tokenize(list(sentences)), model.pad_id, batch_size, device,
                            desc=model.kind)
    check_finite_logits(logits, lambda i: f"{model_kind} {model_dir}, {where(i)}",
                        check="the model's weights and that sentence")
    return torch.softmax(logits, dim=-1).numpy()


def write_predictions(
    model_kind: str,
    model_dir: str | Path,
    data_dir: str | Path,
    out_path: str | Path,
    device: torch.device | str = "cpu",
    batch_size: int = 64,
    max_length: int | None = None,
    split: str = "dev",
) -> pd.DataFrame:
    """Predict `data_dir/{split}.tsv` (dev or test) with the model in `model_dir`; write and return the table.

    `max_length`: the token limit the model was trained with: required for the teacher (`teacher.max_length`); a
    student truncates at the `max_length` of its `student.json`, and a given value must equal it (else the student
    is stale: `InputError`).
    """
    if model_kind not in MODELS:
        raise ConfigError("model", f"unknown model kind {model_kind!r}; choose one of {list(MODELS)}")
    model_dir, data_dir = Path(model_dir), Path(data_dir)
    labels = load_labels(data_dir)
    if split not in ("dev", "test"):
        raise ConfigError("split", f"predictions are made on 'dev' or 'test', not {split!r}")
    sentences, gold = load_split(data_dir, split, labels)
    log.info("read %d %s sentences, %d labels from %s; model %s from %s", len(sentences), split, len(labels),
             data_dir, model_kind, model_dir)
    probs = class_probabilities(model_kind, model_dir, sentences, labels, max_length, device, batch_size,
                                lambda i: f"{split}.tsv sentence {i + 1}", str(data_dir / "labels.txt"))
    pred = probs.argmax(axis=1) if len(probs) else np.empty(0, dtype=np.int64)
    frame = pd.DataFrame(
        {
            "sentence": sentences,
            "gold": [labels[i] for i in gold],
            "pred": [labels[i] for i in pred],
            "confidence": probs.max(axis=1) if len(probs) else np.empty(0),
        }
    )
    for c, name in enumerate(labels):
        frame[f"p_{name}"] = probs[:, c] if len(probs) else np.empty(0)
    write_tsv(out_path, frame)
    log.info("%s accuracy %.4f; wrote %d predictions to %s", split, accuracy(gold, pred), len(frame), out_path)
    return frame

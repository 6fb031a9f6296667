"""Dev-set (or test-set) predictions of a fine-tuned teacher or a student: one row per sentence with probabilities.

`write_predictions(model_kind, model_dir, data_dir, out_path, device, max_length=, split="dev")` writes
`results/predictions/{task}/{model}.tsv` (`split="test"`: `{model}.test.tsv`) with columns `sentence, gold, pred,
confidence, p_<label>...` (gold/pred are label names of `labels.txt`, confidence the predicted class's probability),
in the order of `{split}.tsv`.
Sentences are truncated as in training (the teacher at `teacher.max_length`, a student at the `max_length` in its
`student.json`), tokenised once, batched by length and run under `torch.inference_mode()`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from .data import read_labels, read_split
from .errors import ConfigError, InputError
from .io import write_tsv
from .logs import progress
from .metrics import accuracy
from .tasks import STUDENTS

log = logging.getLogger(__name__)

MODEL_KINDS = ("teacher",) + STUDENTS


def load_split(data_dir: str | Path, split: str, labels: list[str]) -> tuple[list[str], np.ndarray]:
    """Sentences and gold class indices of `data_dir/{split}.tsv`; unknown label names are InputErrors."""
    path = Path(data_dir) / f"{split}.tsv"
    if not path.exists():
        raise InputError(path, "split file not found")
    frame = read_split(path)
    missing = {"sentence", "label"} - set(frame.columns)
    if missing:
        raise InputError(path, f"missing column(s) {sorted(missing)} (header must be sentence<TAB>label)")
    index = {name: i for i, name in enumerate(labels)}
    gold = np.empty(len(frame), dtype=np.int64)
    for row, name in enumerate(frame["label"]):
        if name not in index:
            raise InputError(path, f"label {name!r} is not in labels.txt", line=row + 2)
        gold[row] = index[name]
    return frame["sentence"].tolist(), gold


def load_labels(data_dir: str | Path) -> list[str]:
    path = Path(data_dir) / "labels.txt"
    if not path.exists():
        raise InputError(path, "labels.txt not found")
    labels = read_labels(path)
    if len(labels) < 2:
        raise InputError(path, f"need at least 2 labels, found {len(labels)}")
    return labels


def batched_logits(
    forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    sequences: Sequence[Sequence[int]],
    pad_id: int,
    batch_size: int,
    device: torch.device | str,
    desc: str | None = None,
) -> torch.Tensor:
    """(N, C) float32 CPU logits of `forward(input_ids, attention_mask)` over id sequences, in input order;
    batches are formed from length-sorted sequences so padding stays small. The caller sets eval mode."""
    from .students.common import pad_batch

    n = len(sequences)
    order = np.argsort(np.fromiter((len(s) for s in sequences), dtype=np.int64, count=n), kind="stable")
    out: torch.Tensor | None = None
    bar = progress(total=n, desc=desc, unit="sent", disable=desc is None)
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            enc = pad_batch([sequences[i] for i in idx], pad_id)
            logits = forward(enc["input_ids"].to(device), enc["attention_mask"].to(device)).float().cpu()
            if out is None:
                out = torch.empty(n, logits.shape[1], dtype=torch.float32)
            out[torch.from_numpy(idx)] = logits
            bar.update(len(idx))
    bar.close()
    return out if out is not None else torch.empty(0, 0)


def _teacher(model_dir: Path, sentences: list[str], batch_size: int, device, max_length: int | None):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if not max_length:
        raise ConfigError("teacher.max_length", "the teacher's predictions need the max_length it was trained with")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).to(device).eval()
    except (OSError, ValueError) as exc:
        raise InputError(model_dir, f"cannot load the teacher: {exc}") from None
    log.info("teacher input truncated at %d tokens (teacher.max_length)", max_length)
    ids = tokenizer(sentences, truncation=True, max_length=int(max_length))["input_ids"]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    logits = batched_logits(
        lambda i, m: model(input_ids=i, attention_mask=m).logits, ids, pad, batch_size, device, desc="teacher"
    )
    return logits, int(model.config.num_labels)


def _student(model_dir: Path, sentences: list[str], batch_size: int, device, max_length: int | None):
    from .students import load_student

    student = load_student(model_dir, device)
    if max_length and int(max_length) != student.max_length:
        raise InputError(model_dir / "student.json", f"the student was trained with max_length {student.max_length}, "
                                                     f"the config says {max_length}: the student is stale, rerun distil")
    log.info("%s input truncated at %d tokens (its training max_length)", student.kind, student.max_length)
    ids = student.tokenize(sentences)
    logits = batched_logits(student, ids, student.pad_id, batch_size, device, desc=student.kind)
    return logits, int(student.config["n_classes"]), student.labels


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
    if model_kind not in MODEL_KINDS:
        raise ConfigError("model", f"unknown model kind {model_kind!r}; choose one of {list(MODEL_KINDS)}")
    model_dir, data_dir = Path(model_dir), Path(data_dir)
    labels = load_labels(data_dir)
    if split not in ("dev", "test"):
        raise ConfigError("split", f"predictions are made on 'dev' or 'test', not {split!r}")
    sentences, gold = load_split(data_dir, split, labels)
    log.info("read %d %s sentences, %d labels from %s; model %s from %s", len(sentences), split, len(labels),
             data_dir, model_kind, model_dir)
    if model_kind == "teacher":
        logits, n_classes = _teacher(model_dir, sentences, batch_size, device, max_length)
        model_labels = None
    else:
        logits, n_classes, model_labels = _student(model_dir, sentences, batch_size, device, max_length)
    if n_classes != len(labels):
        raise InputError(model_dir, f"model has {n_classes} classes, {data_dir / 'labels.txt'} {len(labels)} labels")
    if model_labels and list(model_labels) != labels:
        raise InputError(model_dir, f"model was trained with labels {model_labels}, labels.txt has {labels}")
    if not sentences:
        logits = torch.empty(0, len(labels))
    probs = torch.softmax(logits, dim=-1).numpy()
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

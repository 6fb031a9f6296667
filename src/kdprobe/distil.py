"""Task-specific distillation of BERT_S / LSTM_S on the teacher's logits over the transfer set.

`distil(student, task, settings, transfer_paths, data_dir, teacher_dir, out_dir, state_path, device)`:

1. reads the transfer set (parquet: `sentence`, `input_ids`, `logits`, `label`), `labels.txt`, `dev.tsv` and
   `test.tsv`; tokenises everything once (BERT_S reuses the stored teacher ids, cut to `max_length`; LSTM_S
   tokenises words, or wordpieces for teacher embeddings) into one packed id array (`batching.PackedIds`);
2. builds the student (`students.build_student`; LSTM_S word vocabulary = every transfer-set word, min count 1);
3. trains through `training.fit`: `epochs` epochs of length-grouped shuffled batches (`batching.epoch_batches`),
   each padded to its longest sequence; loss `settings['loss']` (`losses.distillation_loss`, with `temperature`
   and `mse_reduction`) against the teacher logits (`DistilLoss`); Adam (lr, betas) or Adadelta (lr, rho) over
   the trainable parameters; learning-rate `schedule` (`linear` | `constant` | `none`) with `warmup_epochs`;
   gradient-norm clipping when `clip_norm > 0`;
4. evaluates on dev after every epoch (`metrics.task_metrics`) and keeps the weights with the best headline
   metric (`tasks.HEADLINE_METRIC`; the earliest epoch wins ties);
5. writes `out_dir` atomically: the best student (`student.json`, `model.safetensors`, vocabulary files),
   `metrics.json` (`dev`, `test`, `best_epoch`, `headline_metric`, parameter counts, `transfer_size`) and
   `curve.csv` (step, epoch, loss, lr, dev_<metric>...).

Resumable (`training.fit`): after every epoch (and every `save_every_steps` optimiser steps when set) the training
state goes to `state_path`, keyed on the settings and the content of every input: the transfer-set files (teacher
logits included), `labels.txt`, `dev.tsv`, `test.tsv`, the teacher directory and the word2vec file. A rerun with
the same inputs continues and ends with the same weights bit for bit (on CPU); a rerun after any input changed
(e.g. the teacher was retrained) starts afresh. The state is deleted at the end.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from kdprobe.batching import PackedIds
from kdprobe.checkpoint import ResumeState
from kdprobe.errors import ConfigError, InputError
from kdprobe.io import atomic_dir, write_csv, write_json
from kdprobe.logs import progress
from kdprobe.losses import distillation_loss, loss_settings
from kdprobe.metrics import task_metrics
from kdprobe.models import batched_logits
from kdprobe.splits import load_labels, load_split
from kdprobe.runtime import autocast, maybe_compile, set_seed, tensor_to, to_device
from kdprobe.students import Student, build_student
from kdprobe.registry import HEADLINE_METRIC, STUDENTS
from kdprobe.training import fit

log = logging.getLogger(__name__)

TRANSFER_COLUMNS = ("sentence", "input_ids", "logits", "label")
TOKENIZE_CHUNK = 10_000


# ----------------------------------------------------------------------------------------------- inputs
def read_transfer(paths: Sequence[str | Path], n_classes: int, need_ids: bool) -> pd.DataFrame:
    """Concatenated transfer-set files, checked: required columns, one logit per class."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = list(paths)
    if not paths:
        raise ConfigError("transfer", "no transfer-set files given")
    frames = []
    columns = ["sentence", "logits", "label"] + (["input_ids"] if need_ids else [])
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise InputError(path, "transfer-set file not found")
        try:
            import pyarrow.parquet as pq

            present = set(pq.read_schema(path).names)
        except Exception as exc:  # pyarrow raises several types for a non-parquet file
            raise InputError(path, f"not a readable parquet file: {exc}") from None
        missing = set(columns) - present
        if missing:
            raise InputError(path, f"missing column(s) {sorted(missing)}; expected {list(TRANSFER_COLUMNS)}")
        frame = pd.read_parquet(path, columns=columns)
        bad = [i for i, v in enumerate(frame["logits"]) if v is None or len(v) != n_classes]
        if bad:
            raise InputError(path, f"row {bad[0]}: expected {n_classes} logits (labels.txt), "
                                   f"found {None if frame['logits'][bad[0]] is None else len(frame['logits'][bad[0]])}")
        log.info("read %d transfer sentences from %s", len(frame), path)
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    if not len(out):
        raise InputError(paths[0], "the transfer set is empty")
    return out


def _tokenize(student: Student, sentences: list[str], desc: str) -> PackedIds:
    seqs: list[np.ndarray] = []
    bar = progress(total=len(sentences), desc=f"tokenise {desc}", unit="sent")
    for start in range(0, len(sentences), TOKENIZE_CHUNK):
        chunk = sentences[start : start + TOKENIZE_CHUNK]
        seqs.extend(np.asarray(s, dtype=np.int32) for s in student.tokenize(chunk))
        bar.update(len(chunk))
    bar.close()
    return PackedIds(seqs)


def make_optimizer(settings: dict, params: list[torch.nn.Parameter], kind: str) -> torch.optim.Optimizer:
    name = str(settings.get("optimizer", "adam"))
    lr = float(settings.get("lr", 5e-4))
    if name == "adam":
        betas = settings.get("betas", (0.9, 0.999))
        return torch.optim.Adam(params, lr=lr, betas=(float(betas[0]), float(betas[1])))
    if name == "adadelta":
        return torch.optim.Adadelta(params, lr=lr, rho=float(settings.get("rho", 0.9)))
    raise ConfigError(f"students.{kind}.optimizer", f"unknown optimizer {name!r}; choose adam or adadelta")


def evaluate(
    student: Student, ids: PackedIds, gold: np.ndarray, task: str, batch_size: int, device
) -> dict[str, float]:
    """`metrics.task_metrics` of the student's argmax predictions (eval mode, restored afterwards)."""
    was_training = student.training
    student.eval()
    logits = batched_logits(student, ids.batch(range(len(ids))), student.pad_id, batch_size, device)
    student.train(was_training)
    pred = logits.argmax(dim=1).numpy() if len(ids) else np.empty(0, dtype=np.int64)
    return task_metrics(task, gold, pred)


class DistilLoss:
    """The distillation loss of one batch, `training.fit`'s `batch_loss`: pad rows `idx` of `ids` (vectorised, to
    their own longest sequence), move them to the device (pinned, non-blocking on CUDA), forward (bf16 autocast when
    `settings['bf16']` on a bf16 GPU; `torch.compile`d when `settings['compile']`), then `distillation_loss`
    against the teacher logits of those rows. `distil` trains with it; `benchmarks/run.py` times it."""

    def __init__(self, model: Student, ids: PackedIds, teacher_logits: torch.Tensor, loss_name: str,
                 temperature: float, mse_reduction: str, device: torch.device, settings: dict):
        self.model, self.ids, self.teacher_logits = model, ids, teacher_logits
        self.loss_name, self.temperature, self.mse_reduction = loss_name, temperature, mse_reduction
        self.device, self.settings = torch.device(device), settings
        self.forward = maybe_compile(model, settings)

    def __call__(self, idx: np.ndarray) -> torch.Tensor:
        batch = to_device(self.ids.padded(idx, self.model.pad_id), self.device)
        target = tensor_to(self.teacher_logits[torch.from_numpy(np.asarray(idx))], self.device)
        with autocast(self.device, self.settings, kind="training"):
            logits = self.forward(batch["input_ids"], batch["attention_mask"])
        return distillation_loss(self.loss_name, logits.float(), target, self.temperature, self.mse_reduction)


def _inputs(kind: str, settings: dict, transfer_paths: list[str], data_dir: Path, teacher_dir: str | Path,
            word2vec: str | Path | None) -> dict[str, str | Path]:
    """The files a student's training depends on, by label (the keys of its resumable state)."""
    inputs: dict[str, str | Path] = {f"transfer {i} ({Path(p).name})": p for i, p in enumerate(transfer_paths)}
    inputs |= {name: data_dir / name for name in ("labels.txt", "dev.tsv", "test.tsv") if (data_dir / name).exists()}
    inputs["teacher"] = teacher_dir
    vectors = word2vec or settings.get("word2vec")
    if vectors and settings.get("embeddings", "word2vec" if kind == "lstm_s" else "random") == "word2vec":
        inputs["word2vec"] = vectors
    return inputs


# ------------------------------------------------------------------------------------------------ distil
def distil(
    student: str,
    task: str,
    settings: dict,
    transfer_paths: Sequence[str | Path] | str | Path,
    data_dir: str | Path,
    teacher_dir: str | Path,
    out_dir: str | Path,
    state_path: str | Path | None,
    device: torch.device | str = "cpu",
    word2vec: str | Path | None = None,
    on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None,
    metrics_path: str | Path | None = None,
    curve_path: str | Path | None = None,
    tensorboard_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Distil the teacher's logits into a `student` ('bert_s' | 'lstm_s'); returns the metrics written.

    `word2vec` overrides `settings['word2vec']` (LSTM_S). `metrics.json` and `curve.csv` go into `out_dir` unless
    `metrics_path` / `curve_path` name other files. `on_epoch_end(epoch, curve_row)` runs after each epoch's
    state is saved (tests use it to interrupt a run). `tensorboard_dir`: the curve as TensorBoard events too
    (`training.fit`).
    """
    kind = student
    if kind not in STUDENTS:
        raise ConfigError("student", f"unknown student {kind!r}; choose one of {list(STUDENTS)}")
    if task not in HEADLINE_METRIC:
        raise ConfigError("task", f"unknown task {task!r}; choose one of {sorted(HEADLINE_METRIC)}")
    device = torch.device(device)
    section = f"students.{kind}"
    loss_name, temperature, mse_reduction = loss_settings(settings, section, "soft_ce" if kind == "bert_s" else "mse")
    epochs = int(settings.get("epochs", 1))
    batch_size = int(settings.get("batch_size", 32))
    if batch_size < 1 or epochs < 0:
        raise ConfigError(section, "batch_size must be >= 1 and epochs >= 0")
    seed = int(settings.get("seed", 42))
    eval_batch_size = int(settings.get("eval_batch_size", max(64, batch_size)))
    headline = HEADLINE_METRIC[task]
    started = time.perf_counter()

    # ---- read
    data_dir = Path(data_dir)
    if isinstance(transfer_paths, (str, Path)):
        transfer_paths = [transfer_paths]
    transfer_paths = [str(p) for p in transfer_paths]
    labels = load_labels(data_dir)
    n_classes = len(labels)
    transfer = read_transfer(transfer_paths, n_classes, need_ids=(kind == "bert_s"))
    teacher_logits = torch.from_numpy(np.stack(transfer["logits"].to_numpy()).astype(np.float32))
    sentences = transfer["sentence"].fillna("").astype(str).tolist()
    dev_sentences, dev_gold = load_split(data_dir, "dev", labels)
    test_path = data_dir / "test.tsv"
    test_sentences, test_gold = load_split(data_dir, "test", labels) if test_path.exists() else (None, None)
    n_labelled = int(transfer["label"].notna().sum())
    if n_labelled:
        index = {name: i for i, name in enumerate(labels)}
        known = transfer["label"].map(index)
        rows = known.notna().to_numpy(dtype=bool, copy=True)
        agree = (teacher_logits.numpy()[rows].argmax(1) == known[rows].astype(int).to_numpy()).mean() \
            if rows.any() else float("nan")
        log.info("transfer set: %d sentences, %d labelled (teacher accuracy on them %.4f), %d augmented",
                 len(transfer), n_labelled, agree, len(transfer) - n_labelled)
    log.info("dev: %d sentences, test: %s; labels %s", len(dev_sentences),
             len(test_sentences) if test_sentences is not None else "none", labels)

    # ---- build the student and its inputs
    set_seed(seed)
    vocab_info: dict[str, Any] = {"teacher_dir": str(teacher_dir), "labels": labels}
    if word2vec:
        vocab_info["word2vec"] = str(word2vec)
    from kdprobe.students import reads_words

    if reads_words(kind, settings):
        from kdprobe.embeddings import build_vocab

        vocab_info["words"] = build_vocab(sentences)
        log.info("word vocabulary of the transfer set: %d entries", len(vocab_info["words"]))
    model = build_student(kind, settings, n_classes, vocab_info)
    if model.reads_teacher_ids:
        train_ids = PackedIds([model.fit_teacher_ids(x) for x in transfer["input_ids"]])
        vocab_size = int(model.config["vocab_size"])
        if len(train_ids.flat) and (train_ids.flat.max() >= vocab_size or train_ids.flat.min() < 0):
            raise InputError(transfer_paths[0],
                             f"input_ids outside the tokenizer's {vocab_size} ids: made with another teacher?")
    else:
        train_ids = _tokenize(model, sentences, "transfer set")
    del transfer
    dev_ids = _tokenize(model, dev_sentences, "dev")
    test_ids = _tokenize(model, test_sentences, "test") if test_sentences is not None else None
    log.info("transfer tokens: %d sequences, mean length %.1f, max %d", len(train_ids),
             float(train_ids.lengths.mean()), int(train_ids.lengths.max()))
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    loss = DistilLoss(model, train_ids, teacher_logits, loss_name, temperature, mse_reduction, device, settings)
    log.info("distilling %s on %s: loss %s (T=%g, MSE %s), seed %d", kind, task, loss_name, temperature,
             mse_reduction, seed)

    # ---- train (resumable), keep the best dev epoch
    result = fit(
        model, train_ids.lengths, loss, make_optimizer(settings, params, kind),
        {**settings, "epochs": epochs, "batch_size": batch_size, "seed": seed}, section=section, device=device,
        state_path=state_path, inputs=_inputs(kind, settings, transfer_paths, data_dir, teacher_dir, word2vec),
        identity={"kind": kind, "task": task, "classes": n_classes}, keep_best=f"dev_{headline}",
        evaluate=lambda: {f"dev_{k}": v for k, v in evaluate(model, dev_ids, dev_gold, task, eval_batch_size,
                                                             device).items()},
        on_epoch_end=on_epoch_end, desc=f"{kind} {task}", tensorboard_dir=tensorboard_dir,
    )
    best_epoch = int(result.best["epoch"]) if result.best else 0

    # ---- final scores of the kept weights, outputs
    dev = evaluate(model, dev_ids, dev_gold, task, eval_batch_size, device)
    test = evaluate(model, test_ids, test_gold, task, eval_batch_size, device) if test_ids is not None else {}
    metrics = {
        "task": task,
        "student": kind,
        "headline_metric": headline,
        "dev": dev,
        "test": test,
        "best_epoch": best_epoch,
        "epochs": epochs,
        "n_params": model.n_params(),
        "n_params_without_embeddings": model.n_params_without_embeddings(),
        "n_trainable_params": model.n_trainable_params(),
        "transfer_size": len(train_ids),
        "transfer_labelled": n_labelled,
    }
    curve_frame = pd.DataFrame(result.curve, columns=["step", "epoch", "loss", "lr", *[f"dev_{k}" for k in dev]])
    model.cpu()
    with atomic_dir(out_dir) as tmp:
        model.save(tmp)
        if metrics_path is None:
            write_json(tmp / "metrics.json", metrics)
        if curve_path is None:
            write_csv(tmp / "curve.csv", curve_frame)
    if metrics_path is not None:
        write_json(metrics_path, metrics)
    if curve_path is not None:
        write_csv(curve_path, curve_frame)
    ResumeState(state_path).clear()
    log.info("best epoch %d: dev %s, test %s; wrote %s, %s, %s in %.1f s", best_epoch, dev, test, out_dir,
             metrics_path or "metrics.json there", curve_path or "curve.csv there", time.perf_counter() - started)
    return metrics

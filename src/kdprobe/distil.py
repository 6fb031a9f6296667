"""Task-specific distillation of BERT_S / LSTM_S on the teacher's logits over the transfer set.

`distil(student, task, settings, transfer_paths, data_dir, teacher_dir, out_dir, state_path, device)`:

1. reads the transfer set (parquet: `sentence`, `input_ids`, `logits`, `label`), `labels.txt`, `dev.tsv` and
   `test.tsv`; tokenises everything once (BERT_S reuses the stored teacher ids, cut to `max_length`; LSTM_S
   tokenises words, or wordpieces for teacher embeddings) into one packed id array;
2. builds the student (`students.build_student`; LSTM_S word vocabulary = every transfer-set word, min count 1);
3. trains `epochs` epochs of length-grouped shuffled batches (each epoch's order is a pure function of
   `(seed, epoch)`: a shuffled permutation cut into chunks of 50 batches, each chunk sorted by length and cut into
   batches, then the batch order shuffled), each padded to its longest sequence; loss `settings['loss']`
   (`losses.distillation_loss`) against the teacher logits; Adam (lr, betas) or Adadelta (lr, rho) over the
   trainable parameters; `schedule.linear_warmup_decay` with `warmup_epochs` of `epochs` (in steps); gradient-norm
   clipping when `clip_norm > 0`;
4. evaluates on dev after every epoch (`metrics.task_metrics`) and keeps the weights with the best headline
   metric (`tasks.HEADLINE_METRIC`; the earliest epoch wins ties);
5. writes `out_dir` atomically: the best student (`student.json`, `model.safetensors`, vocabulary files),
   `metrics.json` (`dev`, `test`, `best_epoch`, `headline_metric`, parameter counts, `transfer_size`) and
   `curve.csv` (epoch, loss, dev_<metric>..., lr).

Resumable: after every epoch (and every `save_every_steps` optimiser steps when set) the model, optimiser,
scheduler, RNG states, epoch/step, loss accumulators, best score/epoch/weights and the curve go to `state_path`
(`checkpoint.ResumeState`); a new run with the same settings and transfer set continues from there and ends with
the same weights bit for bit (on CPU; CUDA kernels may not be deterministic). The state is deleted at the end.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from .checkpoint import ResumeState
from .errors import ConfigError, InputError
from .io import atomic_dir, write_csv, write_json
from .losses import check_loss_name, distillation_loss
from .metrics import task_metrics
from .predict import batched_logits, load_labels, load_split
from .runtime import autocast, maybe_compile, progress, rng_state, set_rng_state, set_seed, tensor_to, to_device
from .schedule import linear_warmup_decay
from .students import Student, build_student
from .tasks import HEADLINE_METRIC, STUDENTS

log = logging.getLogger(__name__)

TRANSFER_COLUMNS = ("sentence", "input_ids", "logits", "label")
CHUNK_BATCHES = 50  # length grouping: sort within chunks of this many batches
TOKENIZE_CHUNK = 10_000


class PackedIds:
    """Many variable-length id sequences in one flat int32 array (lists of Python ints would cost ~10x more)."""

    def __init__(self, sequences: Sequence[np.ndarray]):
        self.lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        self.offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
        np.cumsum(self.lengths, out=self.offsets[1:])
        parts = [np.asarray(s, dtype=np.int32) for s in sequences]
        self.flat = np.concatenate(parts) if parts else np.zeros(0, np.int32)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.flat[self.offsets[i] : self.offsets[i + 1]]

    def batch(self, idx: Sequence[int]) -> list[np.ndarray]:
        return [self[i] for i in idx]

    def padded(self, idx: Sequence[int] | np.ndarray, pad_id: int) -> dict[str, torch.Tensor]:
        """Sequences `idx` right-padded to their longest (at least 1): `input_ids`, `attention_mask` (int64, CPU),
        as `Student.pad` makes them, in two vectorised gathers instead of a loop over rows."""
        idx = np.asarray(idx, dtype=np.int64)
        lengths = self.lengths[idx]
        width = max(int(lengths.max()) if len(idx) else 0, 1)
        cols = np.arange(width, dtype=np.int64)
        mask = cols[None, :] < lengths[:, None]
        where = np.minimum(self.offsets[idx][:, None] + cols[None, :], max(len(self.flat) - 1, 0))
        ids = np.where(mask, self.flat[where] if len(self.flat) else 0, pad_id).astype(np.int64)
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask.astype(np.int64))}


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


def epoch_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Length-grouped shuffled batches of one epoch; a pure function of its arguments (hence resumable)."""
    rng = np.random.default_rng([int(seed), int(epoch)])
    perm = rng.permutation(len(lengths))
    chunk = batch_size * CHUNK_BATCHES
    batches: list[np.ndarray] = []
    for start in range(0, len(perm), chunk):
        idx = perm[start : start + chunk]
        idx = idx[np.argsort(lengths[idx], kind="stable")]
        batches.extend(idx[i : i + batch_size] for i in range(0, len(idx), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def make_optimizer(settings: dict, params: list[torch.nn.Parameter], kind: str) -> torch.optim.Optimizer:
    name = str(settings.get("optimizer", "adam"))
    lr = float(settings.get("lr", 5e-4))
    if name == "adam":
        betas = settings.get("betas", (0.9, 0.999))
        return torch.optim.Adam(params, lr=lr, betas=(float(betas[0]), float(betas[1])))
    if name == "adadelta":
        return torch.optim.Adadelta(params, lr=lr, rho=float(settings.get("rho", 0.9)))
    raise ConfigError(f"students.{kind}.optimizer", f"unknown optimizer {name!r}; choose adam or adadelta")


def _fingerprint(kind: str, task: str, settings: dict, n: int, n_classes: int, ids: PackedIds) -> str:
    blob = json.dumps({"kind": kind, "task": task, "settings": settings, "n": n, "classes": n_classes},
                      sort_keys=True, default=str).encode()
    h = hashlib.sha256(blob)
    h.update(ids.lengths.tobytes())
    return h.hexdigest()


def _trainable_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The weights that training changes (frozen embedding tables never change and are left out)."""
    params = dict(model.named_parameters())
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
            if k not in params or params[k].requires_grad}


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


class TrainStep:
    """One optimiser step of distillation: pad the batch (vectorised, to its own longest sequence), move it to the
    device (pinned, non-blocking on CUDA), forward (bf16 autocast when `settings['bf16']` on a bf16 GPU; optionally
    `torch.compile`d), `distillation_loss` against the teacher logits, backward, clip, optimiser and scheduler.
    `distil` trains with it; `benchmarks/run.py` times it. `lr_used` is the learning rate of the last step."""

    def __init__(self, model: Student, optimizer: torch.optim.Optimizer, scheduler, params: list[torch.nn.Parameter],
                 loss_name: str, temperature: float, clip_norm: float, device: torch.device, settings: dict):
        self.model, self.optimizer, self.scheduler, self.params = model, optimizer, scheduler, params
        self.loss_name, self.temperature, self.clip_norm = loss_name, temperature, clip_norm
        self.device, self.settings = torch.device(device), settings
        self.forward = maybe_compile(model, settings)
        self.lr_used = optimizer.param_groups[0]["lr"]

    def __call__(self, ids: PackedIds, idx: np.ndarray, teacher_logits: torch.Tensor) -> torch.Tensor:
        """Train on rows `idx` of `ids` against `teacher_logits[idx]`; return the batch's loss (detached)."""
        batch = to_device(ids.padded(idx, self.model.pad_id), self.device)
        target = tensor_to(teacher_logits[torch.from_numpy(np.asarray(idx))], self.device)
        with autocast(self.device, self.settings, kind="training"):
            logits = self.forward(batch["input_ids"], batch["attention_mask"])
        loss = distillation_loss(self.loss_name, logits.float(), target, self.temperature)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip_norm)
        self.lr_used = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        return loss.detach()


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
) -> dict[str, Any]:
    """Distil the teacher's logits into a `student` ('bert_s' | 'lstm_s'); returns the metrics written.

    `word2vec` overrides `settings['word2vec']` (LSTM_S). `metrics.json` and `curve.csv` go into `out_dir` unless
    `metrics_path` / `curve_path` name other files. `on_epoch_end(epoch, curve_row)` runs after each epoch's
    state is saved (tests use it to interrupt a run).
    """
    kind = student
    if kind not in STUDENTS:
        raise ConfigError("student", f"unknown student {kind!r}; choose one of {list(STUDENTS)}")
    if task not in HEADLINE_METRIC:
        raise ConfigError("task", f"unknown task {task!r}; choose one of {sorted(HEADLINE_METRIC)}")
    device = torch.device(device)
    section = f"students.{kind}"
    loss_name = str(settings.get("loss", "soft_ce" if kind == "bert_s" else "mse"))
    check_loss_name(loss_name, f"{section}.loss")
    temperature = float(settings.get("temperature", 1.0))
    epochs = int(settings.get("epochs", 1))
    batch_size = int(settings.get("batch_size", 32))
    if batch_size < 1 or epochs < 0:
        raise ConfigError(section, "batch_size must be >= 1 and epochs >= 0")
    warmup_epochs = float(settings.get("warmup_epochs", 0))
    clip_norm = float(settings.get("clip_norm", 0) or 0)
    seed = int(settings.get("seed", 42))
    save_every = int(settings.get("save_every_steps", 0) or 0)
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
    if kind == "lstm_s" and settings.get("embeddings", "word2vec") != "teacher":
        from .embeddings import build_vocab

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
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(settings, params, kind)
    steps_per_epoch = math.ceil(len(train_ids) / batch_size)
    total_steps = epochs * steps_per_epoch
    warmup_steps = int(round(warmup_epochs * steps_per_epoch))
    scheduler = linear_warmup_decay(optimizer, warmup_steps, total_steps)
    train_step = TrainStep(model, optimizer, scheduler, params, loss_name, temperature, clip_norm, device, settings)
    log.info("training %s on %s: %d epochs x %d steps (warm-up %d steps), batch %d, loss %s (T=%g), %s, "
             "clip %g, device %s", kind, task, epochs, steps_per_epoch, warmup_steps, batch_size, loss_name,
             temperature, type(optimizer).__name__, clip_norm, device)

    # ---- resume
    state = ResumeState(state_path)
    fingerprint = _fingerprint(kind, task, settings, len(train_ids), n_classes, train_ids)
    start_epoch, start_step = 0, 0
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    n_seen = 0
    best_score, best_epoch, best_weights = -math.inf, 0, None
    curve: list[dict[str, Any]] = []
    saved = state.load()
    if saved is not None and saved.get("fingerprint") != fingerprint:
        log.warning("ignoring %s: it was written for other settings or another transfer set", state_path)
        saved = None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        start_epoch, start_step = int(saved["epoch"]), int(saved["step_in_epoch"])
        loss_sum = saved["loss_sum"].to(device)
        n_seen = int(saved["n_seen"])
        best_score, best_epoch = float(saved["best_score"]), int(saved["best_epoch"])
        best_weights = saved["best_weights"]
        curve = list(saved["curve"])
        set_rng_state(saved["rng"])
        log.info("resumed at epoch %d, step %d of %d (best %s %.4f at epoch %d)", start_epoch + 1, start_step,
                 steps_per_epoch, headline, best_score, best_epoch)

    def save_state(epoch: int, step_in_epoch: int) -> None:
        state.save({
            "fingerprint": fingerprint,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng_state(),
            "epoch": epoch,
            "step_in_epoch": step_in_epoch,
            "step": epoch * steps_per_epoch + step_in_epoch,
            "loss_sum": loss_sum.detach().cpu(),
            "n_seen": n_seen,
            "best_score": best_score,
            "best_epoch": best_epoch,
            "best_weights": best_weights,
            "curve": curve,
        })

    # ---- train
    for epoch in range(start_epoch, epochs):
        epoch_start = time.perf_counter()
        batches = epoch_batches(train_ids.lengths, batch_size, seed, epoch)
        first = start_step if epoch == start_epoch else 0
        if first == 0:
            loss_sum.zero_()
            n_seen = 0
        lr_used = optimizer.param_groups[0]["lr"]
        bar = progress(total=len(batches), initial=first, desc=f"{kind} {task} epoch {epoch + 1}/{epochs}",
                       unit="batch")
        for b in range(first, len(batches)):
            idx = batches[b]
            loss = train_step(train_ids, idx, teacher_logits)
            lr_used = train_step.lr_used
            loss_sum += loss.double() * len(idx)
            n_seen += len(idx)
            bar.update(1)
            if (b + 1) % 50 == 0:
                bar.set_postfix(loss=f"{loss_sum.item() / n_seen:.4g}", refresh=False)
            if save_every and (b + 1) % save_every == 0 and b + 1 < len(batches):
                save_state(epoch, b + 1)
        bar.close()
        dev = evaluate(model, dev_ids, dev_gold, task, eval_batch_size, device)
        row = {"epoch": epoch + 1, "loss": loss_sum.item() / max(1, n_seen),
               **{f"dev_{k}": v for k, v in dev.items()}, "lr": lr_used}
        curve.append(row)
        if dev[headline] > best_score:
            best_score, best_epoch, best_weights = dev[headline], epoch + 1, _trainable_copy(model)
        log.info("epoch %d/%d: loss %.5g, dev %s, best %s %.4f (epoch %d), lr %.3g, %.1f s", epoch + 1, epochs,
                 row["loss"], {k: round(v, 4) for k, v in dev.items()}, headline, best_score, best_epoch, lr_used,
                 time.perf_counter() - epoch_start)
        save_state(epoch + 1, 0)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, row)

    # ---- best checkpoint, final scores, outputs
    if best_weights is not None:
        model.load_state_dict(best_weights, strict=False)
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
    curve_frame = pd.DataFrame(curve, columns=["epoch", "loss", *[f"dev_{k}" for k in dev], "lr"])
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
    state.clear()
    log.info("best epoch %d: dev %s, test %s; wrote %s, %s, %s in %.1f s", best_epoch, dev, test, out_dir,
             metrics_path or "metrics.json there", curve_path or "curve.csv there", time.perf_counter() - started)
    return metrics

"""Task-specific distillation of BERT_S / LSTM_S on the teacher's logits over the transfer set.

`distil(student, task, settings, transfer_paths, data_dir, teacher_dir, files, state_path, device)`, in phases:

1. `read_inputs`: reads the transfer set (parquet: `sentence`, `input_ids`, `logits`, `label`; a NaN or infinite
   logit is an `InputError` naming the file and row; with `transfer: {kind, fraction}` only the rows the fraction
   keeps, `transfer_sets.subset_mask`), `labels.txt`, `dev.tsv` and `test.tsv`; tokenises everything once (BERT_S reuses the stored teacher ids, cut to `max_length`; LSTM_S
   tokenises words, or wordpieces for teacher embeddings) into one packed id array (`batching.PackedIds`);
2. `build`: builds the student (`students.build_student`; LSTM_S word vocabulary = every transfer-set word, min count 1);
3. trains through `training.fit` (settings typed once: `settings.TrainSettings`, `OptimizerSettings`,
   `LossSettings`): `epochs` epochs of length-grouped shuffled batches (`batching.epoch_batches`),
   each padded to its longest sequence; loss `settings['loss']` (`losses.distillation_loss`, with `temperature`
   and `mse_reduction`) against the teacher logits (`DistilLoss`), or a list of weighted terms
   (`kdprobe.loss_terms`, run by `distil_terms.TermLoss`: the teacher on the fly for hidden and attention terms,
   one forward pass per batch; `training_setup`); Adam (lr, betas) or Adadelta (lr, rho) over
   the trainable parameters; learning-rate `schedule` (`linear` | `constant` | `none`) with `warmup_epochs`;
   gradient-norm clipping when `clip_norm > 0`;
4. `scores`: evaluates on dev after every epoch (`metrics.task_metrics`) and keeps the weights with the best headline
   metric (`registry.TASK[task].headline`; the earliest epoch wins ties), then scores dev and test;
5. writes its `training.RunFiles` atomically: the best student (`student.json`, `model.safetensors`, vocabulary files),
   `metrics.json` (`dev`, `test`, `best_epoch`, `headline_metric`, parameter counts, `transfer_size`) and
   `curve.csv` (step, epoch, loss, with a list of terms `loss_<term>` per term, lr, dev_<metric>...).

`build_embed_model`: phases 1 and 2 only, for the thesis's "embed." baseline (the student's token table before
training, probed like a model: `kdprobe.students.embed`). `build_random_model`: phases 1 and 2, then every weight
drawn anew, for the random-encoder baseline (`kdprobe.random_models`).

Resumable (`training.fit`): after every epoch (and every `save_every_steps` optimiser steps when set) the training
state goes to `state_path`, keyed on the settings and the content of every input: the transfer-set files (teacher
logits included), `labels.txt`, `dev.tsv`, `test.tsv`, the teacher directory and the word2vec file. A rerun with
the same inputs continues and ends with the same weights bit for bit (on CPU); a rerun after any input changed
(e.g. the teacher was retrained) starts afresh. The state is deleted at the end.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from kdprobe.batching import PackedIds
from kdprobe.checkpoint import ResumeState
from kdprobe.distil_terms import Distillee, TeacherStates, TermLoss, projections
from kdprobe.errors import ConfigError, InputError
from kdprobe.logs import progress
from kdprobe.losses import distillation_loss
from kdprobe.metrics import task_metrics
from kdprobe.models import batched_logits, first_nonfinite_row
from kdprobe.registry import STUDENT, TASK
from kdprobe.runtime import autocast, maybe_compile, set_seed, tensor_to, to_device
from kdprobe.settings import LossSettings, OptimizerSettings, TrainSettings
from kdprobe.splits import load_labels, load_split
from kdprobe.students import Student, build_student, reads_teacher_ids, reads_words
from kdprobe.students.embed import save_embed_model
from kdprobe.training import Batches, Callback, LossParts, Resume, RunFiles, fit
from kdprobe.transfer_sets import TransferKind, subset_mask, transfer_kind

log = logging.getLogger(__name__)

TRANSFER_COLUMNS = ("sentence", "input_ids", "logits", "label")
TOKENIZE_CHUNK = 10_000


# ----------------------------------------------------------------------------------------------- inputs
def _check_finite_logits(path: Path, logits: pd.Series, n_classes: int) -> None:
    """`InputError` naming the file and the first row (0-based) whose logits are NaN or infinite as float32."""
    if not len(logits):
        return
    with np.errstate(over="ignore"):  # a float64 logit beyond float32's range becomes inf, and is refused
        values = np.concatenate(logits.to_numpy()).astype(np.float32).reshape(-1, n_classes)
    row = first_nonfinite_row(values)
    if row is not None:
        raise InputError(path, f"row {row}: the teacher logits {values[row].tolist()} are not all finite (NaN or "
                               "infinite); rerun the transfer stage (rule logits) and check the teacher")


def read_transfer(paths: Sequence[str | Path], n_classes: int, need_ids: bool,
                  transfer: TransferKind = TransferKind(), labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Concatenated transfer-set files, checked: required columns, one logit per class, and with `labels` (a
    loss on the gold labels) every non-null `label` one of them; only the rows that `transfer.fraction` keeps
    (`transfer_sets.subset_mask`)."""
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
        _check_finite_logits(path, frame["logits"], n_classes)
        if labels is not None:
            unknown = np.flatnonzero(frame["label"].notna().to_numpy() & ~frame["label"].isin(list(labels)).to_numpy())
            if len(unknown):
                raise InputError(path, f"row {unknown[0]}: label {frame['label'][unknown[0]]!r} is not one of "
                                       f"labels.txt's {list(labels)} (the loss has a hard_ce term on gold labels)")
        log.info("read %d transfer sentences from %s", len(frame), path)
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    if not len(out):
        raise InputError(paths[0], "the transfer set is empty")
    if transfer.fraction < 1:
        keep = subset_mask(transfer, [(Path(p).stem, len(f)) for p, f in zip(paths, frames)])
        out = out[keep].reset_index(drop=True)
        log.info("transfer %s: %d of %d rows kept (fraction %g)", transfer.kind, len(out), len(keep),
                 transfer.fraction)
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
    """The distillation loss of one batch, `training.Batches.loss`: pad rows `idx` of `ids` (vectorised, to their
    own longest sequence), move them to the device (pinned, non-blocking on CUDA), forward (bf16 autocast when
    `numerics['bf16']` on a bf16 GPU; `torch.compile`d when `numerics['compile']`), then `distillation_loss`
    against the teacher logits of those rows, or, for a loss of weighted terms, `terms` on the batch
    (`distil_terms.TermLoss`). `distil` trains with it; the benchmarks time it."""

    def __init__(self, model: Student, ids: PackedIds, teacher_logits: torch.Tensor, loss: LossSettings,
                 device: torch.device, numerics: dict[str, Any], terms: TermLoss | None = None):
        self.model, self.ids, self.teacher_logits, self.loss = model, ids, teacher_logits, loss
        self.device, self.numerics, self.terms = torch.device(device), numerics, terms
        self.forward = maybe_compile(model, numerics) if terms is None else None

    def __call__(self, idx: np.ndarray) -> torch.Tensor:
        batch = to_device(self.ids.padded(idx, self.model.pad_id), self.device)
        target = tensor_to(self.teacher_logits[torch.from_numpy(np.asarray(idx))], self.device)
        if self.terms is not None:
            return self.terms(batch, target, idx)
        with autocast(self.device, self.numerics, kind="training"):
            logits = self.forward(batch["input_ids"], batch["attention_mask"])
        return distillation_loss(self.loss.name, logits.float(), target, self.loss.temperature,
                                 self.loss.mse_reduction)


def _inputs(kind: str, settings: dict, transfer_paths: list[str], data_dir: Path, teacher_dir: str | Path,
            word2vec: str | Path | None) -> dict[str, str | Path]:
    """The files a student's training depends on, by label (the keys of its resumable state)."""
    inputs: dict[str, str | Path] = {f"transfer {i} ({Path(p).name})": p for i, p in enumerate(transfer_paths)}
    inputs |= {name: data_dir / name for name in ("labels.txt", "dev.tsv", "test.tsv") if (data_dir / name).exists()}
    inputs["teacher"] = teacher_dir
    vectors = word2vec or settings.get("word2vec")
    if vectors and settings.get("embeddings", STUDENT[kind].default_embeddings) == "word2vec":
        inputs["word2vec"] = vectors
    return inputs


# ------------------------------------------------------------------------------------------------ distil
@dataclass
class DistilData:
    """What a student is trained and scored on: the transfer set (sentences, teacher logits, the stored teacher ids
    when the student reads them), the labels, and the dev and test sentences with their gold class indices."""

    sentences: list[str]
    teacher_logits: torch.Tensor
    teacher_ids: pd.Series | None
    labels: list[str]
    dev: tuple[list[str], np.ndarray]
    test: tuple[list[str], np.ndarray] | None
    n_labelled: int
    gold: torch.Tensor  # per transfer-set row: its label's class index, -1 when unlabelled (augmented)


def read_inputs(transfer_paths: list[str], data_dir: Path, need_ids: bool,
                kind: TransferKind = TransferKind(), need_gold: bool = False) -> DistilData:
    """Phase 1: read and check the transfer set (the rows `kind.fraction` keeps; with `need_gold`, its labels
    too), `labels.txt`, `dev.tsv` and (when present) `test.tsv`."""
    labels = load_labels(data_dir)
    transfer = read_transfer(transfer_paths, len(labels), need_ids=need_ids, transfer=kind,
                             labels=labels if need_gold else None)
    teacher_logits = torch.from_numpy(np.stack(transfer["logits"].to_numpy()).astype(np.float32))
    dev = load_split(data_dir, "dev", labels)
    test = load_split(data_dir, "test", labels) if (data_dir / "test.tsv").exists() else None
    n_labelled = int(transfer["label"].notna().sum())
    known = transfer["label"].map({name: i for i, name in enumerate(labels)})
    gold = torch.tensor(known.fillna(-1).to_numpy(dtype=np.int64))
    if n_labelled:
        rows = known.notna().to_numpy(dtype=bool, copy=True)
        agree = (teacher_logits.numpy()[rows].argmax(1) == known[rows].astype(int).to_numpy()).mean() \
            if rows.any() else float("nan")
        log.info("transfer set: %d sentences, %d labelled (teacher accuracy on them %.4f), %d augmented",
                 len(transfer), n_labelled, agree, len(transfer) - n_labelled)
    log.info("dev: %d sentences, test: %s; labels %s", len(dev[0]), len(test[0]) if test is not None else "none",
             labels)
    return DistilData(
        sentences=transfer["sentence"].fillna("").astype(str).tolist(), teacher_logits=teacher_logits,
        teacher_ids=transfer["input_ids"] if need_ids else None, labels=labels, dev=dev, test=test,
        n_labelled=n_labelled, gold=gold,
    )


@dataclass
class Tokenised:
    train: PackedIds
    dev: PackedIds
    test: PackedIds | None


def build(kind: str, settings: dict, data: DistilData, teacher_dir: str | Path, word2vec: str | Path | None,
          seed: int, source: str) -> tuple[Student, Tokenised]:
    """Phase 2: the student (seeded; LSTM_S's word vocabulary from the transfer set) and every split tokenised once
    (a student that reads the teacher's ids reuses the stored ones, cut to its `max_length`)."""
    set_seed(seed)
    vocab_info: dict[str, Any] = {"teacher_dir": str(teacher_dir), "labels": data.labels}
    if word2vec:
        vocab_info["word2vec"] = str(word2vec)
    if reads_words(kind, settings):
        from kdprobe.embeddings import build_vocab

        vocab_info["words"] = build_vocab(data.sentences)
        log.info("word vocabulary of the transfer set: %d entries", len(vocab_info["words"]))
    model = build_student(kind, settings, len(data.labels), vocab_info)
    if model.reads_teacher_ids:
        train_ids = PackedIds([model.fit_teacher_ids(x) for x in data.teacher_ids])
        vocab_size = int(model.config["vocab_size"])
        if len(train_ids.flat) and (train_ids.flat.max() >= vocab_size or train_ids.flat.min() < 0):
            raise InputError(source, f"input_ids outside the tokenizer's {vocab_size} ids: made with another teacher?")
    else:
        train_ids = _tokenize(model, data.sentences, "transfer set")
    data.teacher_ids = None  # not needed again: free it before training
    ids = Tokenised(train_ids, _tokenize(model, data.dev[0], "dev"),
                    _tokenize(model, data.test[0], "test") if data.test is not None else None)
    log.info("transfer tokens: %d sequences, mean length %.1f, max %d", len(train_ids),
             float(train_ids.lengths.mean()), int(train_ids.lengths.max()))
    return model, ids


def training_setup(model: Student, ids: Tokenised, data: DistilData, loss: LossSettings, settings: dict,
                   teacher_dir: str | Path, training: TrainSettings, device: torch.device
                   ) -> tuple[torch.nn.Module, Batches, list[Callback]]:
    """What `training.fit` trains, on what, and the callbacks that go with it: the student and `DistilLoss` for a
    loss named by a string (as before terms existed); for a list of terms, `DistilLoss` with a
    `distil_terms.TermLoss` (a callback: the step for soft_ce's temperature schedule) whose values go to the curve
    (`training.LossParts`), the teacher on the fly when a term needs its internal states, and the student and
    the terms' projections as one module (`distil_terms.Distillee`) when there are any."""
    if not loss.terms:
        return model, Batches(ids.train.lengths, DistilLoss(model, ids.train, data.teacher_logits, loss, device,
                                                            training.numerics)), []
    teacher = TeacherStates(teacher_dir, loss, settings, device, training.numerics) if loss.needs_teacher else None
    maps = projections(loss, int(model.config["hidden"]), teacher.width) if teacher is not None else None
    maps = (maps if maps is not None else torch.nn.ModuleDict()).to(device)
    parts = LossParts([term.name for term in loss.terms], device)
    total_steps = training.epochs * math.ceil(len(ids.train) / training.batch_size)
    terms = TermLoss(model, loss, teacher, maps, data.gold, total_steps, parts, device, training.numerics)
    batches = Batches(ids.train.lengths, DistilLoss(model, ids.train, data.teacher_logits, loss, device,
                                                    training.numerics, terms), parts=parts)
    return (Distillee(model, maps) if len(maps) else model), batches, [terms]


def scores(model: Student, ids: Tokenised, data: DistilData, task: str, batch_size: int, device
           ) -> tuple[dict[str, float], dict[str, float]]:
    """Phase 4: dev and test metrics of the kept weights (test empty without a test split)."""
    dev = evaluate(model, ids.dev, data.dev[1], task, batch_size, device)
    test = evaluate(model, ids.test, data.test[1], task, batch_size, device) if ids.test is not None else {}
    return dev, test


def distil(
    student: str,
    task: str,
    settings: dict,
    transfer_paths: Sequence[str | Path] | str | Path,
    data_dir: str | Path,
    teacher_dir: str | Path,
    files: RunFiles,
    state_path: str | Path | None,
    device: torch.device | str = "cpu",
    word2vec: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
) -> dict[str, Any]:
    """Distil the teacher's logits into a `student` ('bert_s' | 'lstm_s') with `settings` (its config section);
    writes `files` (the student directory, `metrics.json`, `curve.csv`) and returns the metrics.

    `word2vec` overrides `settings['word2vec']` (LSTM_S); `callbacks` go to `training.fit` (TensorBoard, tests'
    interruptions).
    """
    kind = student
    if kind not in STUDENT:
        raise ConfigError("student", f"unknown student {kind!r}; choose one of {list(STUDENT)}")
    if task not in TASK:
        raise ConfigError("task", f"unknown task {task!r}; choose one of {sorted(TASK)}")
    device, section = torch.device(device), f"students.{kind}"
    training = TrainSettings.from_section(settings, section)
    loss = LossSettings.from_section(settings, section, STUDENT[kind].default_loss)
    eval_batch_size = int(settings.get("eval_batch_size") or max(64, training.batch_size))
    headline = TASK[task].headline
    started = time.perf_counter()
    data_dir = Path(data_dir)
    transfer_paths = [str(p) for p in ([transfer_paths] if isinstance(transfer_paths, (str, Path)) else transfer_paths)]

    data = read_inputs(transfer_paths, data_dir, need_ids=reads_teacher_ids(kind, settings),
                       kind=transfer_kind(settings, f"{section}.transfer"),
                       need_gold=any(t.kind == "hard_ce" and t.on == "gold" for t in loss.terms))
    model, ids = build(kind, settings, data, teacher_dir, word2vec, training.seed, transfer_paths[0])
    model.to(device)
    log.info("distilling %s on %s: loss %s, seed %d", kind, task, loss.describe(), training.seed)
    trained, batches, term_callbacks = training_setup(model, ids, data, loss, settings, teacher_dir, training, device)
    result = fit(
        trained, batches, OptimizerSettings.from_section(settings, section).build(trained), training, device=device,
        resume=Resume(state_path, settings, _inputs(kind, settings, transfer_paths, data_dir, teacher_dir, word2vec),
                      {"kind": kind, "task": task, "classes": len(data.labels)}),
        evaluate=lambda: {f"dev_{k}": v for k, v in evaluate(model, ids.dev, data.dev[1], task, eval_batch_size,
                                                             device).items()},
        keep_best=f"dev_{headline}", callbacks=[*term_callbacks, *callbacks], desc=f"{kind} {task}",
    )
    dev, test = scores(model, ids, data, task, eval_batch_size, device)
    metrics = {
        "task": task, "student": kind, "headline_metric": headline, "dev": dev, "test": test,
        "best_epoch": int(result.best["epoch"]) if result.best else 0, "epochs": training.epochs,
        "n_params": model.n_params(), "n_params_without_embeddings": model.n_params_without_embeddings(),
        "n_trainable_params": model.n_trainable_params(), "transfer_size": len(ids.train),
        "transfer_labelled": data.n_labelled,
    }
    model.cpu()
    files.write(model.save, result.curve, metrics,
                columns=["step", "epoch", "loss", *[f"loss_{t.name}" for t in loss.terms], "lr", "grad_norm",
                         "grad_norm_max", *[f"dev_{k}" for k in dev]])
    ResumeState(state_path).clear()
    log.info("best epoch %d: dev %s, test %s; wrote %s in %.1f s", metrics["best_epoch"], dev, test, files,
             time.perf_counter() - started)
    return metrics


def _untrained(kind: str, settings: dict[str, Any], transfer_paths: Sequence[str | Path], data_dir: str | Path,
               teacher_dir: str | Path, word2vec: str | Path | None) -> Student:
    """The `kind` student as `distil` builds it (`read_inputs`, `build`, the seed `settings['seed']`), untrained."""
    paths = [str(p) for p in transfer_paths]
    data = read_inputs(paths, Path(data_dir), need_ids=reads_teacher_ids(kind, settings),
                       kind=transfer_kind(settings, f"students.{kind}.transfer"))
    student, _ = build(kind, settings, data, teacher_dir, word2vec, int(settings["seed"]), paths[0])
    return student


def build_embed_model(kind: str, settings: dict[str, Any], transfer_paths: Sequence[str | Path],
                      data_dir: str | Path, teacher_dir: str | Path, out_dir: str | Path,
                      word2vec: str | Path | None = None) -> Path:
    """The thesis's "embed." baseline (rule `embed_model`): the `kind` student built as `distil` builds it (the
    same inputs, `read_inputs`, `build` and seed), not trained; its token table and input files written to
    `out_dir` (`students.embed.save_embed_model`). `settings`: the student's, training-only keys may be left out
    (`config.embed_table_settings`)."""
    student = _untrained(kind, settings, transfer_paths, data_dir, teacher_dir, word2vec)
    return save_embed_model(student, out_dir)


def build_random_model(kind: str, settings: dict[str, Any], transfer_paths: Sequence[str | Path],
                       data_dir: str | Path, teacher_dir: str | Path, out_dir: str | Path,
                       word2vec: str | Path | None = None) -> Path:
    """The random-encoder baseline `{kind}_random` (rule `random_student`; Zhang and Bowman 2018): the `kind`
    student built as `build_embed_model` builds it (same inputs, settings and seed: the same vocabulary, embedding
    widths and channels), then every parameter, embedding tables included, drawn anew from `settings['seed']`
    (`random_models.reinitialise_student`) and written to `out_dir` as a trained student is
    (`random_models.save_random_student`)."""
    from kdprobe.random_models import reinitialise_student, save_random_student

    student = _untrained(kind, settings, transfer_paths, data_dir, teacher_dir, word2vec)
    return save_random_student(reinitialise_student(student, int(settings["seed"])), out_dir)

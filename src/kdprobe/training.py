"""The one resumable training loop of kdprobe: the teacher and GPT-2 (`teacher`, `augment.gpt2`) and both students (`distil`).

`fit` trains a model on examples whose token counts are `lengths`: epochs of length-grouped shuffled batches
(`batching.epoch_batches`, a pure function of (seed, epoch)); for each batch the caller's `batch_loss(indices)`
(forward and loss, a scalar with gradients), then `OptimStep`: backward, gradient-norm clipping (`clip_norm` > 0),
optimiser step and learning-rate schedule (`schedule.schedule_steps`: `schedule`, `warmup_fraction` or
`warmup_epochs`). `evaluate()` adds its metrics to a curve row `evals_per_epoch` times per epoch (always at an
epoch's end) and every `eval_every_steps` optimiser steps (the thesis's students: every 100). With `keep_best=<metric>` the model ends with the weights of the best row (the earliest on ties:
the students); without, with the final weights (the teacher and GPT-2).

A curve row: `step`, `epoch` (fractional within an epoch), `loss` (mean training loss per example since the
previous row), `lr` (of the row's last step), `grad_norm` and `grad_norm_max` (mean and largest gradient norm of
the steps since the previous row, before clipping: a "dying" model shows as norms falling to 0), then the metrics.
A loss of named parts (`Batches.parts`, `LossParts`: a student's loss terms) adds `loss_<name>` after `loss`: each
part's unweighted mean per example since the previous row, as `loss` is of the weighted total.

Resumable: the state (`checkpoint.ResumeState`) is saved at every epoch end and every `save_every_steps` optimiser
steps, keyed on the settings, the content of every input file the caller names and the token lengths; a state
made from anything else is discarded (the log says what changed). A resumed run ends bit for bit where an
uninterrupted one ends (on CPU; CUDA kernels need not be deterministic): model, optimiser, scheduler, RNG states,
epoch, step, position in the epoch, loss accumulators, curve and best weights all come back.

No failure passes as a result: every step's loss is checked finite on the device and looked at where the loop
syncs anyway (the progress bar's loss, each curve row, before each state is saved), and the trained weights before
`fit` returns; a NaN or infinite one raises `errors.NonFiniteError` naming the first bad step, epoch and batch.

TensorBoard (`tensorboard_dir`, off unless given): each curve row's columns but `step` as scalars at the row's
`step` (`loss_<name>` as `loss/<name>`), flushed as the row is written, so `tensorboard --logdir logs` shows a run live. A run resumed from a
state appends to the same directory (hiding events a killed run wrote after that state: `purge_step`); a run
that starts afresh first deletes the directory, so it never shows an older run's events.

Settings: a `settings.TrainSettings` (epochs, batch size, seed, schedule and warm-up, clipping, checkpoint cadence,
curve rows per epoch). What else happens as training goes is a list of `Callback`s, in the style of Hugging Face's
`TrainerCallback`: `TensorBoard` (the curve as events), `EpochEnd` (a function after each epoch's state is saved),
`StopAfter` (a deterministic stand-in for a killed job, for tests).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from kdprobe.batching import epoch_batches
from kdprobe.checkpoint import ResumeState, resume_key
from kdprobe.errors import ConfigError, NonFiniteError
from kdprobe.io import atomic_dir, write_csv, write_json
from kdprobe.logs import progress
from kdprobe.runtime import (autocast, autocast_dtype, clear_oom, halve_on_oom, maybe_compile, retry_batch, rng_state,
                             set_rng_state, to_device)
from kdprobe.schedule import make_scheduler, schedule_steps
from kdprobe.settings import TrainSettings

log = logging.getLogger(__name__)


class TrainingInterrupted(RuntimeError):
    """Raised by the `StopAfter` callback: a deterministic stand-in for a killed job (tests)."""


class OptimStep:
    """One optimiser step on a batch: zero the gradients, forward and backward (in micro-batches of at most `micro`
    examples when given, the gradients accumulated: `accumulate`), the gradient norm of `params` (kept in
    `grad_norm`, on the device) clipped to `clip_norm` when > 0, optimiser step, scheduler step. `lr` is the
    learning rate the last step used."""

    def __init__(self, optimizer: torch.optim.Optimizer, scheduler, params: Sequence[torch.nn.Parameter],
                 clip_norm: float = 0.0):
        self.optimizer, self.scheduler, self.params, self.clip_norm = optimizer, scheduler, list(params), clip_norm
        self.lr = optimizer.param_groups[0]["lr"]
        self.grad_norm = torch.zeros(())

    def __call__(self, batch_loss: Callable[[np.ndarray], torch.Tensor], idx: np.ndarray, micro: int | None = None,
                 weight: Callable[[np.ndarray], float] | None = None) -> torch.Tensor:
        """Train on the batch `idx` (`batch_loss(indices)`: its forward pass and loss); return the loss, detached."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = accumulate(batch_loss, idx, micro, weight)
        # the norm is measured always (a curve column); max_norm inf scales the gradients by exactly 1
        self.grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.clip_norm if self.clip_norm > 0 else math.inf)
        self.lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        return loss


def accumulate(batch_loss: Callable[[np.ndarray], torch.Tensor], idx: np.ndarray, micro: int | None,
               weight: Callable[[np.ndarray], float] | None) -> torch.Tensor:
    """Backward the loss of batch `idx`, in micro-batches of at most `micro` examples when `micro` is smaller than
    the batch; return the batch's loss, detached. Each micro-batch's loss (a mean over its `weight(indices)` units:
    examples by default, predicted tokens for a language model) is scaled by its share of the batch's units, so the
    gradients add up to the whole batch's (to rounding; dropout draws its masks per micro-batch)."""
    if micro is None or len(idx) <= micro:
        loss = batch_loss(idx)
        loss.backward()
        return loss.detach()
    pieces = np.array_split(idx, math.ceil(len(idx) / micro))
    units = np.array([float(weight(p)) if weight else float(len(p)) for p in pieces])
    total = None
    for piece, share in zip(pieces, units / units.sum()):
        loss = batch_loss(piece) * float(share)
        loss.backward()
        total = loss.detach() if total is None else total + loss.detach()
    return total


def hf_batch_loss(model: torch.nn.Module, collate: Callable[[np.ndarray], dict[str, Any]], device: torch.device,
                  settings: TrainSettings) -> Callable[[np.ndarray], torch.Tensor]:
    """`batch_loss` of a Hugging Face model: `model(**collate(indices)).loss`, the batch moved to `device`, under
    bf16 autocast when `settings.bf16` on a bf16 GPU, through `torch.compile` when `settings.compile`."""
    forward = maybe_compile(model, settings.numerics)

    def batch_loss(idx: np.ndarray) -> torch.Tensor:
        batch = to_device(collate(idx), device)
        with autocast(device, settings.numerics, kind="training"):
            return forward(**batch).loss

    return batch_loss


def save_pretrained(directory: Path, model: torch.nn.Module, tokenizer: Any) -> None:
    """A Hugging Face model and its tokenizer into `directory` (`RunFiles.write`'s `save_model`)."""
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def trainable_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The weights training changes, on the CPU (frozen parameters, e.g. static embedding tables, left out)."""
    params = dict(model.named_parameters())
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
            if k not in params or params[k].requires_grad}


def check_finite_weights(model: torch.nn.Module, where: str) -> None:
    """Raise `NonFiniteError` naming `where` and the tensors when a floating-point weight of `model` is NaN or
    infinite (one host sync for all tensors)."""
    tensors = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
    if not tensors:
        return
    finite = torch.stack([torch.isfinite(v).all() for v in tensors.values()]).tolist()
    bad = [k for k, ok in zip(tensors, finite) if not ok]
    if bad:
        raise NonFiniteError(where, f"{len(bad)} of {len(tensors)} weight tensors hold NaN or infinite values "
                                    f"({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); nothing was saved")


def _summary_writer() -> type:
    """`torch.utils.tensorboard.SummaryWriter`, or a ConfigError naming the key when `tensorboard` is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise ConfigError("tensorboard", f"is true but TensorBoard is not installed ({err}); install it with "
                                         "`pip install 'kdprobe[tensorboard]'` (or `pip install tensorboard`)") from err
    return SummaryWriter


def tensorboard_dir(enabled: bool, logs: Sequence[str | Path]) -> Path | None:
    """Where a training job's TensorBoard events go: beside its (first) log, `logs/teacher/cola.log` ->
    `logs/teacher/cola.tensorboard`, when `enabled` (the config key `tensorboard`); else None. Checks that
    TensorBoard is installed, so a job fails before it trains."""
    if not enabled:
        return None
    if not logs:
        raise ConfigError("tensorboard", "is true but the job has no log to put the event files beside")
    _summary_writer()
    return Path(logs[0]).with_suffix(".tensorboard")


class Callback:
    """Hooks into `fit` (each a no-op here): `on_train_begin(resumed_at)` (the step of the state resumed from, None
    for a fresh run), `on_row(row)` after each curve row, `on_step(step)` after each optimiser step,
    `on_epoch_end(epoch, row)` after each epoch's state is saved, `on_train_end()` always, also on errors."""

    def on_train_begin(self, resumed_at: int | None) -> None:
        pass

    def on_row(self, row: dict[str, Any]) -> None:
        pass

    def on_step(self, step: int) -> None:
        pass

    def on_epoch_end(self, epoch: int, row: dict[str, Any]) -> None:
        pass

    def on_train_end(self) -> None:
        pass


class TensorBoard(Callback):
    """The curve rows as TensorBoard scalars in `directory`; see the module docstring."""

    def __init__(self, directory: str | Path):
        self.directory, self.writer = Path(directory), None

    def on_train_begin(self, resumed_at: int | None) -> None:
        SummaryWriter = _summary_writer()
        if resumed_at is None:
            shutil.rmtree(self.directory, ignore_errors=True)
        self.writer = SummaryWriter(str(self.directory), purge_step=None if resumed_at is None else resumed_at + 1)
        log.info("tensorboard events: %s (%s)", self.directory, "fresh" if resumed_at is None else "appended")

    def on_row(self, row: dict[str, Any]) -> None:
        for tag, value in row.items():
            if tag != "step":
                self.writer.add_scalar(f"loss/{tag[5:]}" if tag.startswith("loss_") else tag, value, row["step"])
        self.writer.flush()

    def on_train_end(self) -> None:
        if self.writer is not None:
            self.writer.close()


def tensorboard(directory: str | Path | None) -> list[Callback]:
    """`[TensorBoard(directory)]`, or no callback when `directory` is None (`tensorboard_dir`)."""
    return [] if directory is None else [TensorBoard(directory)]


class EpochEnd(Callback):
    """Calls `fn(epoch, row)` after each epoch's state is saved."""

    def __init__(self, fn: Callable[[int, dict[str, Any]], None]):
        self.fn = fn

    def on_epoch_end(self, epoch: int, row: dict[str, Any]) -> None:
        self.fn(epoch, row)


class StopAfter(Callback):
    """Raises `TrainingInterrupted` once `steps` optimiser steps are done: a killed job, deterministically (tests)."""

    def __init__(self, steps: int):
        self.steps = steps

    def on_step(self, step: int) -> None:
        if step >= self.steps:
            raise TrainingInterrupted(f"stopped after step {step}")


@dataclass(frozen=True)
class RunFiles:
    """Where a training job writes its run: the model directory, `curve.csv` and `metrics.json`. The teacher, GPT-2
    and the students all write them the same way (`write`); the workflow puts them in one run directory
    (`in_dir`: `results/teacher/{task}/`, `results/students/{task}/{student}/`, ...)."""

    model: Path
    curve: Path
    metrics: Path | None = None  # GPT-2 has no metrics file

    @classmethod
    def in_dir(cls, run_dir: str | Path, metrics: bool = True) -> "RunFiles":
        run_dir = Path(run_dir)
        return cls(run_dir / "model", run_dir / "curve.csv", run_dir / "metrics.json" if metrics else None)

    def write(self, save_model: Callable[[Path], None], curve: Sequence[dict[str, Any]],
              metrics: dict[str, Any] | None = None, columns: Sequence[str] | None = None) -> None:
        """The model (`save_model(directory)`, into a temporary directory renamed into place), then the curve
        (`columns` in order when given) and the metrics, each written atomically."""
        with atomic_dir(self.model) as tmp:
            save_model(tmp)
        write_csv(self.curve, pd.DataFrame(list(curve), columns=list(columns) if columns else None))
        if self.metrics is not None:
            write_json(self.metrics, metrics or {})

    def __str__(self) -> str:
        return ", ".join(str(p) for p in (self.model, self.curve, self.metrics) if p is not None)


@dataclass
class Fit:
    """What `fit` returns: the curve rows, the row whose weights the model ends with under `keep_best` (else None),
    and the number of optimiser steps."""

    curve: list[dict[str, Any]]
    best: dict[str, Any] | None
    steps: int


class LossParts:
    """The named parts of a batch loss (a student's unweighted loss terms), summed per example on the device since
    the last curve row: the loss adds each batch's values (`add`, no host sync); a curve row takes their means as
    `loss_<name>` (`take`); the sums are part of the resumable state."""

    def __init__(self, names: Sequence[str], device: torch.device | str):
        self.names, self.device = tuple(names), torch.device(device)
        self.reset()

    def reset(self) -> None:
        self.sums = {name: torch.zeros((), dtype=torch.float64, device=self.device) for name in self.names}

    def add(self, values: Mapping[str, torch.Tensor], n: int) -> None:
        """Add one loss call's part values (each a mean over its `n` examples)."""
        for name, value in values.items():
            self.sums[name] += value.detach().double() * n

    def nonfinite(self) -> list[str]:
        """The parts whose sum since the last row is NaN or infinite (one host sync)."""
        finite = torch.stack([torch.isfinite(v) for v in self.sums.values()]).tolist() if self.sums else []
        return [name for name, ok in zip(self.names, finite) if not ok]

    def take(self, n_seen: int) -> dict[str, float]:
        """`loss_<name>`: each part's mean per example since the last row; the sums start again."""
        values = torch.stack(list(self.sums.values())).tolist() if self.sums else []
        self.reset()
        return {f"loss_{name}": value / max(1, n_seen) for name, value in zip(self.names, values)}

    def state(self) -> dict[str, torch.Tensor]:
        return {name: value.detach().cpu() for name, value in self.sums.items()}

    def restore(self, state: Mapping[str, torch.Tensor]) -> None:
        self.sums = {name: state[name].to(self.device) for name in self.names}


@dataclass(frozen=True)
class Batches:
    """What `fit` trains on: each example's token count (for length-grouped batches) and `loss(indices)`, the
    forward pass and loss of one batch of example indices (a scalar with gradients). The loss is a mean over
    examples, or over the units `weight(indices)` counts (a language model's predicted tokens), which is how
    micro-batches of one batch are weighted after CUDA ran out of memory (`accumulate`). `parts`: the named parts
    the loss adds its values to (`LossParts`), curve columns `loss_<name>`."""

    lengths: np.ndarray
    loss: Callable[[np.ndarray], torch.Tensor]
    weight: Callable[[np.ndarray], float] | None = None
    parts: LossParts | None = None


@dataclass(frozen=True)
class Resume:
    """Where `fit` keeps its resumable state (`path`, None: nowhere) and what keys it: the config section the run
    depends on, the content of the `inputs` (label: file or directory) and other `identity` values (JSON-like)."""

    path: str | Path | None
    section: Mapping[str, Any]
    inputs: Mapping[str, str | Path] = field(default_factory=dict)
    identity: Mapping[str, Any] = field(default_factory=dict)


class _Loop:
    """The state of one `fit` run: what a resumable state holds, saved and restored as one."""

    def __init__(self, model, optimizer, settings: TrainSettings, n_batches: int, device: torch.device,
                 parts: LossParts | None = None):
        self.model, self.optimizer, self.device, self.parts = model, optimizer, device, parts
        warmup = schedule_steps(settings.key, settings.schedule, settings.warmup_fraction, settings.warmup_epochs,
                                n_batches, settings.epochs)
        self.warmup = warmup
        self.scheduler = make_scheduler(optimizer, settings.schedule, warmup, settings.epochs * n_batches)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        self.step_fn = OptimStep(optimizer, self.scheduler, params, settings.clip_norm)
        self.n_batches = n_batches
        self.epoch = self.pos = self.step = self.n_seen = 0
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.norm_sum = torch.zeros((), dtype=torch.float64, device=device)  # gradient norms since the last row
        self.norm_max = torch.zeros((), dtype=torch.float64, device=device)
        self.first_bad = torch.full((), -1, dtype=torch.int64, device=device)  # the first non-finite loss's step
        self.curve: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.best_weights: dict[str, torch.Tensor] | None = None

    def restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        self.epoch, self.pos, self.step, self.n_seen = state["epoch"], state["position"], state["step"], state["n_seen"]
        self.loss_sum, self.curve = state["loss_sum"].to(self.device), list(state["curve"])
        self.norm_sum, self.norm_max = state["norm_sum"].to(self.device), state["norm_max"].to(self.device)
        self.best, self.best_weights = state["best"], state["best_weights"]
        self.step_fn.lr = state["lr"]
        if self.parts is not None:
            self.parts.restore(state["parts"])

    def record(self, loss: torch.Tensor, n: int) -> None:
        """Add the loss (`n` examples) and gradient norm of the step just taken on the device, noting the step when
        its loss is the first non-finite one (no host sync: `checked_loss` looks at the sync points)."""
        self.step, self.pos = self.step + 1, self.pos + 1
        self.loss_sum += loss.double() * n
        norm = self.step_fn.grad_norm.detach().double().to(self.device)
        self.norm_sum += norm
        self.norm_max = torch.maximum(self.norm_max, norm)
        self.n_seen += n
        self.first_bad = torch.where((self.first_bad < 0) & ~torch.isfinite(loss), self.step, self.first_bad)

    def checked_loss(self, desc: str) -> float:
        """The summed loss since the last curve row, or `NonFiniteError` naming the first step, epoch and batch
        whose loss was NaN or infinite (a sum is finite exactly when every term is)."""
        total = self.loss_sum.item()
        if not math.isfinite(total):
            step = int(self.first_bad.item())
            epoch, batch = divmod(step - 1, self.n_batches)
            bad = self.parts.nonfinite() if self.parts is not None else []
            raise NonFiniteError(f"{desc}: training step {step} (epoch {epoch + 1}, batch {batch + 1} of "
                                 f"{self.n_batches})", "the loss is NaN or infinite" +
                                 (f" (its term(s) {', '.join(bad)})" if bad else ""))
        return total

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "rng": rng_state(), "epoch": self.epoch, "position": self.pos,
            "step": self.step, "n_seen": self.n_seen, "loss_sum": self.loss_sum.detach().cpu(), "curve": self.curve,
            "norm_sum": self.norm_sum.detach().cpu(), "norm_max": self.norm_max.detach().cpu(),
            "best": self.best, "best_weights": self.best_weights, "lr": self.step_fn.lr,
            **({"parts": self.parts.state()} if self.parts is not None else {}),
        }

    def row(self, n_batches: int, evaluate: Callable[[], dict[str, float]] | None, keep_best: str | None,
            desc: str) -> dict[str, Any]:
        """A curve row now (evaluated, the best kept); the loss and gradient-norm accumulators start again."""
        steps = self.step - (self.curve[-1]["step"] if self.curve else 0)
        row = {"step": self.step, "epoch": self.epoch + 1 if self.pos == n_batches else self.epoch + self.pos / n_batches,
               "loss": self.checked_loss(desc) / max(1, self.n_seen),
               **(self.parts.take(self.n_seen) if self.parts is not None else {}), "lr": self.step_fn.lr,
               "grad_norm": self.norm_sum.item() / max(1, steps), "grad_norm_max": self.norm_max.item()}
        if evaluate is not None:
            self.model.eval()
            row.update(evaluate())
            self.model.train()
        self.curve.append(row)
        if keep_best is not None and (self.best is None or row[keep_best] > self.best[keep_best]):
            self.best, self.best_weights = row, trainable_copy(self.model)
        self.loss_sum, self.n_seen = torch.zeros((), dtype=torch.float64, device=self.device), 0
        self.norm_sum, self.norm_max = torch.zeros_like(self.norm_sum), torch.zeros_like(self.norm_max)
        return row


def oom_marker(state_path: str | Path | None) -> Path | None:
    """Where a training job notes the micro-batch CUDA ran out of memory with: beside its state file
    (`results/.state/teacher/cola.pt` -> `cola.oom.json`); None when the run keeps no state."""
    return None if state_path is None else Path(state_path).with_suffix(".oom.json")


def fit(
    model: torch.nn.Module,
    data: Batches,
    optimizer: torch.optim.Optimizer,
    settings: TrainSettings,
    *,
    device: torch.device | str,
    resume: Resume,
    evaluate: Callable[[], dict[str, float]] | None = None,
    keep_best: str | None = None,
    callbacks: Sequence[Callback] = (),
    desc: str = "train",
) -> Fit:
    """Train `model` in place on `data` (see the module docstring); the model is left in eval mode.

    `evaluate()` gives the metrics of each curve row; `keep_best` names the one whose best row's weights the model
    ends with. The state file is left in place: the caller clears it once its outputs are written, so a job killed
    in between resumes straight to writing them. CUDA running out of memory leaves `oom_marker(resume.path)`
    behind: the job's retry resumes from its last state with micro-batches of half the size, accumulated into the
    same optimiser steps (the learning-rate schedule, batch order and results stay those of `batch_size`).
    """
    device = torch.device(device)
    lengths = np.asarray(data.lengths, dtype=np.int64)
    if not len(lengths):
        raise ValueError("no training examples")
    n_batches = math.ceil(len(lengths) / settings.batch_size)
    evals = max(1, settings.evals_per_epoch)
    eval_at = {max(1, round((k + 1) * n_batches / evals)) for k in range(evals)}
    key = resume_key(dict(resume.section), dict(resume.inputs), lengths=hashlib.sha256(lengths.tobytes()).hexdigest(),
                     **dict(resume.identity))
    saved = ResumeState(resume.path, key)
    loop = _Loop(model, optimizer, settings, n_batches, device, data.parts)
    state = saved.load()
    if state is not None:
        loop.restore(state)
    marker = oom_marker(resume.path)
    micro = settings.batch_size if marker is None else retry_batch(settings.batch_size, marker, f"{settings.key}.batch_size")
    log.info("%s: %d examples, %d epochs x %d batches of %d%s, schedule %s (%d warm-up steps), clip %g, %s, %s (%s)%s",
             desc, len(lengths), settings.epochs, n_batches, settings.batch_size,
             f" (micro-batches of {micro}, accumulated)" if micro < settings.batch_size else "", settings.schedule,
             loop.warmup, settings.clip_norm, type(optimizer).__name__, device,
             autocast_dtype(device, settings.numerics, kind="training") or "fp32",
             f"; resuming at epoch {loop.epoch + 1}, step {loop.step}" if loop.step else "")
    model.train()
    started = time.perf_counter()

    def step(idx: np.ndarray) -> None:
        """One optimiser step on batch `idx`, then the curve row and the state it is due."""
        with contextlib.nullcontext() if marker is None else halve_on_oom(micro, marker, f"{settings.key}.batch_size",
                                                                          device):
            loop.record(loop.step_fn(data.loss, idx, micro, data.weight), len(idx))
        if loop.pos in eval_at or (settings.eval_every_steps and loop.step % settings.eval_every_steps == 0):
            row = loop.row(n_batches, evaluate, keep_best, desc)
            for callback in callbacks:
                callback.on_row(row)
            best = loop.best
            log.info("%s: %s%s, %.1f s", desc, ", ".join(f"{k} {v:.4g}" for k, v in row.items()),
                     f"; best {keep_best} {best[keep_best]:.4g} at epoch {best['epoch']:.3g}" if best else "",
                     time.perf_counter() - started)
        for callback in callbacks:
            callback.on_step(loop.step)
        if settings.save_every_steps and loop.step % settings.save_every_steps == 0 and loop.pos < n_batches:
            loop.checked_loss(desc)
            saved.save(loop.state())

    try:
        for callback in callbacks:
            callback.on_train_begin(loop.step if state is not None else None)
        while loop.epoch < settings.epochs:
            batches = epoch_batches(lengths, settings.batch_size, settings.seed, loop.epoch)
            bar = progress(total=len(batches), initial=loop.pos, desc=f"{desc} epoch {loop.epoch + 1}/{settings.epochs}",
                           unit="batch")
            while loop.pos < len(batches):
                step(batches[loop.pos])
                bar.update(1)
                if loop.pos % 50 == 0:
                    bar.set_postfix(loss=f"{loop.checked_loss(desc) / max(1, loop.n_seen):.4g}", refresh=False)
            bar.close()
            loop.epoch, loop.pos = loop.epoch + 1, 0
            saved.save(loop.state())
            for callback in callbacks:
                callback.on_epoch_end(loop.epoch, loop.curve[-1])
    finally:
        for callback in callbacks:
            callback.on_train_end()
    if marker is not None:
        clear_oom(marker)
    if loop.best_weights is not None:
        model.load_state_dict(loop.best_weights, strict=False)
    check_finite_weights(model, f"{desc}: the trained model")
    model.eval()
    return Fit(curve=loop.curve, best=loop.best, steps=loop.step)

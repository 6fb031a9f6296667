"""The one resumable training loop of kdprobe: the teacher and GPT-2 (`teacher`, `lm`) and both students (`distil`).

`fit` trains a model on examples whose token counts are `lengths`: epochs of length-grouped shuffled batches
(`batching.epoch_batches`, a pure function of (seed, epoch)); for each batch the caller's `batch_loss(indices)`
(forward and loss, a scalar with gradients), then `OptimStep`: backward, gradient-norm clipping (`clip_norm` > 0),
optimiser step and learning-rate schedule (`schedule.schedule_steps`: `schedule`, `warmup_fraction` or
`warmup_epochs`). `evaluate()` adds its metrics to a curve row `evals_per_epoch` times per epoch (always at an
epoch's end). With `keep_best=<metric>` the model ends with the weights of the best row (the earliest on ties:
the students); without, with the final weights (the teacher and GPT-2).

A curve row: `step`, `epoch` (fractional within an epoch), `loss` (mean training loss per example since the
previous row), `lr` (of the row's last step), then the metrics.

Resumable: the state (`checkpoint.ResumeState`) is saved at every epoch end and every `save_every_steps` optimiser
steps, keyed on the settings, the content of every input file the caller names and the token lengths; a state
made from anything else is discarded (the log says what changed). A resumed run ends bit for bit where an
uninterrupted one ends (on CPU; CUDA kernels need not be deterministic): model, optimiser, scheduler, RNG states,
epoch, step, position in the epoch, loss accumulators, curve and best weights all come back.

TensorBoard (`tensorboard_dir`, off unless given): each curve row's columns but `step` as scalars at the row's
`step`, flushed as the row is written, so `tensorboard --logdir logs` shows a run live. A run resumed from a
state appends to the same directory (hiding events a killed run wrote after that state: `purge_step`); a run
that starts afresh first deletes the directory, so it never shows an older run's events.

Settings read: `epochs`, `batch_size`, `seed` (0), `schedule` (`linear`) with `warmup_fraction` or `warmup_epochs`,
`clip_norm` (0: none), `save_every_steps` (0: epoch ends only), `evals_per_epoch` (1).
"""

from __future__ import annotations

import hashlib
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from kdprobe.batching import epoch_batches
from kdprobe.checkpoint import ResumeState, resume_key
from kdprobe.errors import ConfigError
from kdprobe.logs import progress
from kdprobe.runtime import autocast, maybe_compile, rng_state, set_rng_state, to_device
from kdprobe.schedule import make_scheduler, schedule_steps

log = logging.getLogger(__name__)


class TrainingInterrupted(RuntimeError):
    """Raised by `fit(..., stop_after_steps=n)`: a deterministic stand-in for a killed job (tests)."""


class OptimStep:
    """One optimiser step on a batch's loss: zero the gradients, backward, clip the gradient norm of `params` to
    `clip_norm` (when > 0), optimiser step, scheduler step. `lr` is the learning rate the last step used."""

    def __init__(self, optimizer: torch.optim.Optimizer, scheduler, params: Sequence[torch.nn.Parameter],
                 clip_norm: float = 0.0):
        self.optimizer, self.scheduler, self.params, self.clip_norm = optimizer, scheduler, list(params), clip_norm
        self.lr = optimizer.param_groups[0]["lr"]

    def __call__(self, loss: torch.Tensor) -> torch.Tensor:
        """Train on `loss`; return it detached."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip_norm)
        self.lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        return loss.detach()


def adamw(model: torch.nn.Module, settings: dict[str, Any]) -> torch.optim.Optimizer:
    """AdamW (`lr`, `betas` (0.9, 0.999), `weight_decay` (0: Adam)); weight decay on matrices only (not on biases
    and LayerNorm weights), as Hugging Face's Trainer."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": float(settings.get("weight_decay", 0.0))},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    betas = tuple(float(b) for b in settings.get("betas", (0.9, 0.999)))
    return torch.optim.AdamW(groups, lr=float(settings["lr"]), betas=betas)


def hf_batch_loss(model: torch.nn.Module, collate: Callable[[np.ndarray], dict[str, Any]], device: torch.device,
                  settings: dict[str, Any]) -> Callable[[np.ndarray], torch.Tensor]:
    """`batch_loss` of a Hugging Face model: `model(**collate(indices)).loss`, the batch moved to `device`, under
    bf16 autocast when `settings['bf16']` on a bf16 GPU, through `torch.compile` when `settings['compile']`."""
    forward = maybe_compile(model, settings)

    def batch_loss(idx: np.ndarray) -> torch.Tensor:
        batch = to_device(collate(idx), device)
        with autocast(device, settings, kind="training"):
            return forward(**batch).loss

    return batch_loss


def trainable_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The weights training changes, on the CPU (frozen parameters, e.g. static embedding tables, left out)."""
    params = dict(model.named_parameters())
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
            if k not in params or params[k].requires_grad}


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


class CurveEvents:
    """The curve rows as TensorBoard scalars in `directory` (None: nothing written); see the module docstring.
    `resumed_at`: the step of the state a run resumed from (None: a fresh run, the directory is deleted)."""

    def __init__(self, directory: str | Path | None, resumed_at: int | None):
        self.writer = None
        if directory is None:
            return
        SummaryWriter = _summary_writer()
        if resumed_at is None:
            shutil.rmtree(directory, ignore_errors=True)
        self.writer = SummaryWriter(str(directory), purge_step=None if resumed_at is None else resumed_at + 1)
        log.info("tensorboard events: %s (%s)", directory, "fresh" if resumed_at is None else "appended")

    def write(self, row: dict[str, Any]) -> None:
        if self.writer is not None:
            for tag, value in row.items():
                if tag != "step":
                    self.writer.add_scalar(tag, value, row["step"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@dataclass
class Fit:
    """What `fit` returns: the curve rows, the row whose weights the model ends with under `keep_best` (else None),
    and the number of optimiser steps."""

    curve: list[dict[str, Any]]
    best: dict[str, Any] | None
    steps: int


def fit(
    model: torch.nn.Module,
    lengths: Sequence[int] | np.ndarray,
    batch_loss: Callable[[np.ndarray], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    settings: dict[str, Any],
    *,
    section: str,
    device: torch.device | str,
    state_path: str | Path | None,
    inputs: Mapping[str, str | Path] | None = None,
    identity: dict[str, Any] | None = None,
    evaluate: Callable[[], dict[str, float]] | None = None,
    keep_best: str | None = None,
    on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None,
    stop_after_steps: int | None = None,
    desc: str = "train",
    tensorboard_dir: str | Path | None = None,
) -> Fit:
    """Train `model` in place (see the module docstring); the model is left in eval mode.

    `section` names the config section in errors (e.g. `students.lstm_s`). `inputs` (label: file or directory)
    and `identity` (JSON-like values) key the resumable state beside the settings. `on_epoch_end(epoch, row)` runs
    after each epoch's state is saved. `tensorboard_dir`: where the curve rows also go as TensorBoard events
    (None: nowhere). The state file is left in place: the caller clears it once its outputs are
    written, so a job killed in between resumes straight to writing them.
    """
    device = torch.device(device)
    lengths = np.asarray(lengths, dtype=np.int64)
    if not len(lengths):
        raise ValueError("no training examples")
    seed, batch_size, epochs = int(settings.get("seed", 0)), int(settings["batch_size"]), int(settings["epochs"])
    n_batches = math.ceil(len(lengths) / batch_size)
    kind, warmup = schedule_steps(settings, section, n_batches, epochs)
    scheduler = make_scheduler(optimizer, kind, warmup, epochs * n_batches)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    step_fn = OptimStep(optimizer, scheduler, params, float(settings.get("clip_norm") or 0.0))
    evals = max(1, int(settings.get("evals_per_epoch") or 1))
    eval_at = {max(1, round((k + 1) * n_batches / evals)) for k in range(evals)}
    save_every = int(settings.get("save_every_steps") or 0)

    key = resume_key(settings, inputs or {}, lengths=hashlib.sha256(lengths.tobytes()).hexdigest(), **(identity or {}))
    resume = ResumeState(state_path, key)
    epoch = pos = step = n_seen = 0
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    curve: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    best_weights: dict[str, torch.Tensor] | None = None
    state = resume.load()
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        epoch, pos, step, n_seen = state["epoch"], state["position"], state["step"], state["n_seen"]
        loss_sum, curve = state["loss_sum"].to(device), list(state["curve"])
        best, best_weights = state["best"], state["best_weights"]
        step_fn.lr = state["lr"]

    def save() -> None:
        resume.save({
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "rng": rng_state(), "epoch": epoch, "position": pos, "step": step, "n_seen": n_seen,
            "loss_sum": loss_sum.detach().cpu(), "curve": curve, "best": best, "best_weights": best_weights,
            "lr": step_fn.lr,
        })

    log.info("%s: %d examples, %d epochs x %d batches of %d, schedule %s (%d warm-up steps), clip %g, %s, %s%s",
             desc, len(lengths), epochs, n_batches, batch_size, kind, warmup, step_fn.clip_norm,
             type(optimizer).__name__, device, f"; resuming at epoch {epoch + 1}, step {step}" if step else "")
    model.train()
    started = time.perf_counter()
    events = CurveEvents(tensorboard_dir, step if state is not None else None)
    try:
        while epoch < epochs:
            batches = epoch_batches(lengths, batch_size, seed, epoch)
            bar = progress(total=len(batches), initial=pos, desc=f"{desc} epoch {epoch + 1}/{epochs}", unit="batch")
            while pos < len(batches):
                idx = batches[pos]
                loss = step_fn(batch_loss(idx))
                loss_sum += loss.double() * len(idx)
                n_seen += len(idx)
                step, pos = step + 1, pos + 1
                bar.update(1)
                if pos % 50 == 0:
                    bar.set_postfix(loss=f"{loss_sum.item() / n_seen:.4g}", refresh=False)
                if pos in eval_at:
                    row = {"step": step, "epoch": epoch + 1 if pos == len(batches) else epoch + pos / len(batches),
                           "loss": loss_sum.item() / max(1, n_seen), "lr": step_fn.lr}
                    if evaluate is not None:
                        model.eval()
                        row.update(evaluate())
                        model.train()
                    curve.append(row)
                    events.write(row)
                    if keep_best is not None and (best is None or row[keep_best] > best[keep_best]):
                        best, best_weights = row, trainable_copy(model)
                    loss_sum, n_seen = torch.zeros((), dtype=torch.float64, device=device), 0
                    log.info("%s: %s%s, %.1f s", desc, ", ".join(f"{k} {v:.4g}" for k, v in row.items()),
                             f"; best {keep_best} {best[keep_best]:.4g} at epoch {best['epoch']:.3g}" if best else "",
                             time.perf_counter() - started)
                if stop_after_steps is not None and step >= stop_after_steps:
                    raise TrainingInterrupted(f"stopped after step {step}")
                if save_every and step % save_every == 0 and pos < len(batches):
                    save()
            bar.close()
            epoch, pos = epoch + 1, 0
            save()
            if on_epoch_end is not None:
                on_epoch_end(epoch, curve[-1])
    finally:
        events.close()
    if best_weights is not None:
        model.load_state_dict(best_weights, strict=False)
    model.eval()
    return Fit(curve=curve, best=best, steps=step)

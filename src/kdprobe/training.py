"""The fine-tuning loop shared by the Hugging Face models (teacher BERT in `teacher`, GPT-2 in `lm`).

`fit` trains on pre-tokenised examples: length-grouped shuffled batches (each padded only to its own longest
sequence by the caller's `collate`), AdamW (weight decay 0 is Adam) with `schedule.linear_warmup_decay`, a row
of the training curve `evals_per_epoch` times per epoch, and resumable state (`checkpoint.ResumeState`) saved at
every epoch end and every `save_every_steps` steps. A resumed run continues bit for bit: model, optimiser,
scheduler, RNG states, epoch, step, the epoch's batch order and position, the curve so far and the running loss
all come back.

Settings read: `epochs`, `batch_size`, `lr`, optional `betas` (0.9, 0.999), `weight_decay` (0), `warmup_fraction`
(0), `evals_per_epoch` (1), `save_every_steps` (0: epoch ends only), `clip_norm` (0: none), `bf16` (false; bf16
autocast on a bf16-capable GPU only), `compile` (false; `torch.compile` of the model), `seed` (0).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .checkpoint import ResumeState
from . import runtime
from .runtime import progress, rng_state, set_rng_state
from .schedule import linear_warmup_decay

log = logging.getLogger(__name__)

#: Shuffled examples are sorted by length within groups of this many batches (as HF's LengthGroupedSampler).
GROUP_BATCHES = 50


class TrainingInterrupted(RuntimeError):
    """Raised by `fit(..., stop_after_steps=n)`: a deterministic stand-in for a killed job (tests)."""


def length_grouped_batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> list[list[int]]:
    """Shuffle, sort by length within groups of `GROUP_BATCHES` batches, cut into batches, shuffle the batches."""
    lengths = np.asarray(lengths)
    perm = rng.permutation(len(lengths))
    group = batch_size * GROUP_BATCHES
    batches = []
    for start in range(0, len(perm), group):
        chunk = perm[start : start + group]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size].tolist() for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token id lists to the longest one: `(input_ids, attention_mask)`, both int64."""
    width = max((len(s) for s in seqs), default=0)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Move the tensors of a batch; on CUDA through pinned memory with non-blocking copies (`runtime.to_device`)."""
    return runtime.to_device(batch, device)


def autocast(device: torch.device, settings: dict[str, Any]) -> contextlib.AbstractContextManager:
    """bf16 autocast when `settings['bf16']` is true and the device is a bf16-capable GPU; otherwise a no-op
    (`runtime.autocast`, training defaults)."""
    return runtime.autocast(device, settings, kind="training")


def _optimizer(model: torch.nn.Module, settings: dict[str, Any]) -> torch.optim.Optimizer:
    """AdamW; weight decay on matrices only (not on biases and LayerNorm weights), as HF's Trainer."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": float(settings.get("weight_decay", 0.0))},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    betas = tuple(float(b) for b in settings.get("betas", (0.9, 0.999)))
    return torch.optim.AdamW(groups, lr=float(settings["lr"]), betas=betas)


def fit(
    model: torch.nn.Module,
    lengths: Sequence[int],
    collate: Callable[[list[int]], dict[str, Any]],
    settings: dict[str, Any],
    state_path: str | Path | None,
    device: torch.device | str,
    *,
    evaluate: Callable[[], dict[str, float]] | None = None,
    stop_after_steps: int | None = None,
    desc: str = "train",
) -> list[dict[str, float]]:
    """Train `model` in place on the examples whose token counts are `lengths`; return the curve rows.

    `collate(indices)` builds one CPU batch whose `model(**batch).loss` is minimised. `evaluate()` (model in
    eval mode) adds its metrics to each curve row. A curve row: `step`, `epoch` (fractional), `loss` (mean
    training loss since the previous row), then the metrics. The state file is left in place: the caller
    clears it once its outputs are written, so a job killed in between resumes straight to writing them.
    """
    device = torch.device(device)
    if not len(lengths):
        raise ValueError("no training examples")
    seed = int(settings.get("seed", 0))
    batch_size, epochs = int(settings["batch_size"]), int(settings["epochs"])
    n_batches = math.ceil(len(lengths) / batch_size)
    total = epochs * n_batches
    warmup = round(float(settings.get("warmup_fraction", 0.0)) * total)
    evals = max(1, int(settings.get("evals_per_epoch", 1)))
    eval_at = {max(1, round((k + 1) * n_batches / evals)) for k in range(evals)}
    save_every = int(settings.get("save_every_steps") or 0)
    clip = float(settings.get("clip_norm") or 0.0)

    model.to(device)
    forward = runtime.maybe_compile(model, settings)
    optimizer = _optimizer(model, settings)
    scheduler = linear_warmup_decay(optimizer, warmup, total)
    resume = ResumeState(state_path)
    epoch = step = pos = 0
    order: list[list[int]] | None = None
    curve: list[dict[str, float]] = []
    run_loss, run_n = torch.zeros((), device=device), 0
    # what the state must match to be resumed: the settings and the data (through its token counts)
    identity = json.dumps(settings, sort_keys=True, default=str) + hashlib.sha1(
        np.asarray(lengths, dtype=np.int64).tobytes()).hexdigest()
    state = resume.load()
    if state is not None and state.get("identity") != identity:
        log.warning("%s: ignoring resume state %s: made with other settings or data", desc, state_path)
        state = None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        epoch, step, pos, order = state["epoch"], state["step"], state["position"], state["order"]
        curve, run_loss, run_n = state["curve"], state["run_loss"].to(device), state["run_n"]

    def save() -> None:
        resume.save({
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "rng": rng_state(), "epoch": epoch, "step": step, "position": pos, "order": order,
            "curve": curve, "run_loss": run_loss, "run_n": run_n, "identity": identity,
        })

    log.info(
        "%s: %d examples, %d epochs x %d batches of %d, %d warm-up steps%s",
        desc, len(lengths), epochs, n_batches, batch_size, warmup, f", resuming at step {step}" if step else "",
    )
    model.train()
    bar = progress(total=total, initial=step, desc=desc, unit="step")
    while epoch < epochs:
        if order is None:
            order = length_grouped_batches(lengths, batch_size, np.random.default_rng([seed, epoch]))
        while pos < len(order):
            batch = to_device(collate(order[pos]), device)
            with autocast(device, settings):
                loss = forward(**batch).loss
            loss.backward()
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            run_loss, run_n = run_loss + loss.detach().float(), run_n + 1
            step, pos = step + 1, pos + 1
            bar.update(1)
            if pos in eval_at:
                row = {"step": step, "epoch": epoch + pos / len(order), "loss": run_loss.item() / run_n}
                if evaluate is not None:
                    model.eval()
                    row.update(evaluate())
                    model.train()
                curve.append(row)
                run_loss, run_n = torch.zeros((), device=device), 0
                log.info("%s: %s", desc, ", ".join(f"{k} {v:.4g}" for k, v in row.items()))
            if stop_after_steps is not None and step >= stop_after_steps:
                raise TrainingInterrupted(f"stopped after step {step}")
            if save_every and step % save_every == 0 and pos < len(order):
                save()
        epoch, pos, order = epoch + 1, 0, None
        save()
    bar.close()
    model.eval()
    return curve

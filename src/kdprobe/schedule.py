"""Learning-rate schedules of the study, chosen by a section's `schedule` key (thesis sections 4.3.5 and 5.2).

- `linear`: linear warm-up from 0 over the warm-up steps, then linear decay to 0 at the last step (the teacher,
  GPT-2 and BERT_S of the thesis).
- `constant`: the same warm-up, then the full learning rate to the end (the tuned BERT_S from scratch: 20 warm-up
  epochs, no decay).
- `none`: the full learning rate from the first step (LSTM_S: not annealed); a warm-up is then a ConfigError.

The warm-up is `warmup_fraction` of all steps (teacher, GPT-2) or `warmup_epochs` epochs (students). Step k (0-based,
the k-th optimiser step) runs at `lr * factor(k)`: during warm-up `(k + 1) / warmup`, so the first step is not
wasted at 0.
"""

from __future__ import annotations

import torch

from kdprobe.errors import ConfigError

SCHEDULES = ("linear", "constant", "none")


def lr_factor(kind: str, step: int, warmup_steps: int, total_steps: int) -> float:
    """The learning-rate multiplier of optimiser step `step` (0-based) under schedule `kind`."""
    if kind == "none":
        return 1.0
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if kind == "constant":
        return 1.0
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def make_scheduler(optimizer: torch.optim.Optimizer, kind: str, warmup_steps: int,
                   total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A `LambdaLR` that follows `lr_factor(kind, ...)`: call its `step()` after every optimiser step."""
    if kind not in SCHEDULES:
        raise ValueError(f"unknown schedule {kind!r}; choose one of {list(SCHEDULES)}")
    total_steps = max(1, total_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(kind, step, warmup_steps, total_steps))


def linear_warmup_decay(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    """Linear warm-up from 0 over `warmup_steps`, then linear decay to 0 at `total_steps`."""
    return make_scheduler(optimizer, "linear", warmup_steps, total_steps)


def schedule_steps(key: str, kind: str, warmup_fraction: float | None, warmup_epochs: float | None,
                   steps_per_epoch: int, epochs: int) -> int:
    """Warm-up steps of schedule `kind` from `warmup_fraction` (of all steps) or `warmup_epochs` (of
    `steps_per_epoch` each), whichever the section `key` has (a ConfigError names the setting)."""
    if kind not in SCHEDULES:
        raise ConfigError(f"{key}.schedule", f"{kind!r} is not one of {list(SCHEDULES)}")
    if warmup_fraction is not None and warmup_epochs is not None:
        raise ConfigError(f"{key}.warmup_epochs", "give warmup_fraction or warmup_epochs, not both")
    if warmup_fraction is not None:
        name, value, warmup = "warmup_fraction", warmup_fraction, round(warmup_fraction * steps_per_epoch * epochs)
    else:
        name, value = "warmup_epochs", warmup_epochs or 0.0
        warmup = round(value * steps_per_epoch)
    if kind == "none" and value > 0:
        raise ConfigError(f"{key}.{name}", f"{value:g}: schedule 'none' has no warm-up (set it to 0, or "
                                           "use schedule 'constant' for a warm-up without decay)")
    return int(warmup)

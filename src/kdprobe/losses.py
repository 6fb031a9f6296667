"""Distillation losses on logits, selected by the config name `students.<student>.loss`.

- `soft_ce` (BERT_S in the thesis, temperature 3): Hinton et al. (2015) soft cross-entropy
  ``T^2 * mean_b( -sum_c softmax(t_b / T)_c * log_softmax(s_b / T)_c )``.
  Gradients of the softened loss w.r.t. the logits shrink as 1/T^2 (d/ds of CE(s/T) is (q - p) / T, and q - p is
  itself O(1/T) for large T), so the loss is multiplied by T^2 to keep gradient magnitudes comparable across
  temperatures (and comparable to a hard-label loss, were one added). With T = 1 it is the plain soft CE.
  It differs from ``T^2 * KL(teacher || student)`` only by ``T^2 * H(teacher)``, a constant in the student.
- `mse` (LSTM_S, Tang et al. 2019; thesis equation 2.7): squared error between student and teacher logits, with
  `mse_reduction` `sum` (the thesis: summed over classes, mean over the batch) or `mean` (mean over batch and
  classes, `torch.nn.functional.mse_loss`'s default: gradients C times smaller for C classes, e.g. about 60x on
  Sara). The temperature is ignored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kdprobe.errors import ConfigError


def soft_cross_entropy(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Hinton soft cross-entropy with temperature `temperature`, mean over the batch, scaled by T^2."""
    t = float(temperature)
    if t <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    teacher_probs = F.softmax(teacher_logits.detach().float() / t, dim=-1)
    student_logp = F.log_softmax(student_logits.float() / t, dim=-1)
    return -(teacher_probs * student_logp).sum(dim=-1).mean() * (t * t)


#: Values of `mse_reduction`: over the classes of one example, `sum` (thesis equation 2.7) or `mean`.
MSE_REDUCTIONS = ("sum", "mean")


def logit_mse(student_logits: torch.Tensor, teacher_logits: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """Squared error between logits, summed (`sum`) or averaged (`mean`) over the classes, mean over the batch."""
    if reduction not in MSE_REDUCTIONS:
        raise ValueError(f"mse reduction {reduction!r}; choose one of {list(MSE_REDUCTIONS)}")
    squared = (student_logits.float() - teacher_logits.detach().float()).square()
    return squared.sum(dim=-1).mean() if reduction == "sum" else squared.mean()


#: Config name -> loss function `(student_logits, teacher_logits, temperature, mse_reduction) -> scalar`.
LOSSES = {
    "soft_ce": lambda s, t, temperature, mse_reduction: soft_cross_entropy(s, t, temperature),
    "mse": lambda s, t, temperature, mse_reduction: logit_mse(s, t, mse_reduction),
}


def distillation_loss(
    name: str, student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0,
    mse_reduction: str = "sum",
) -> torch.Tensor:
    """The loss called `name` in the config (`soft_ce` | `mse`) on one batch."""
    check_loss_name(name)
    return LOSSES[name](student_logits, teacher_logits, temperature, mse_reduction)


def check_loss_name(name: str, key: str = "students.<student>.loss") -> None:
    if name not in LOSSES:
        raise ConfigError(key, f"unknown distillation loss {name!r}; choose one of {sorted(LOSSES)}")

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

The terms of a loss given as a list (`kdprobe.loss_terms`), each a mean over its units, masked to real tokens
(`mask`: 1 for a token, 0 for padding), as TextBrewer's (airaria/TextBrewer @ 2c105fa, src/textbrewer/losses.py):
- `hard_cross_entropy`: cross-entropy of the student's logits (T = 1) with class indices, mean over the rows whose
  target is not -1 (0, with gradients of 0, when none is).
- `hidden_mse`: squared error summed over tokens and units / (tokens x units) (`hid_mse_loss`, lines 127-143).
- `hidden_cosine`: 1 - cosine similarity, mean over tokens (`cos_loss`, lines 146-166; DistilBERT's L_cos).
- `attention_mse`: squared error between attention probabilities over query and key tokens both real, / the sum
  over rows and heads of tokens^2 (`att_mse_loss`, lines 40-57); `heads='average'` compares the head-averaged
  maps (TextBrewer's `att_mse_sum_loss`, lines 60-81, sums them instead).
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


def hard_cross_entropy(student_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with class indices `targets` (long; -1: no target), mean over the rows with one; a batch
    without any gives 0 (still a function of the logits, so its gradient is 0 rather than missing)."""
    logits = student_logits.float()
    known = targets >= 0
    per_row = F.cross_entropy(logits, targets.clamp(min=0), reduction="none")
    return (per_row * known).sum() / known.sum().clamp(min=1)


def hidden_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Squared error of (B, T, H) states over the real tokens of `mask` (B, T), mean over tokens and units."""
    mask = mask.to(student.dtype).unsqueeze(-1)
    squared = (student.float() - teacher.detach().float()).square() * mask
    return squared.sum() / (mask.sum() * student.shape[-1]).clamp(min=1)


def hidden_cosine(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """1 - cosine similarity of (B, T, H) states per real token of `mask`, mean over those tokens."""
    cosine = F.cosine_similarity(student.float(), teacher.detach().float(), dim=-1)
    mask = mask.to(cosine.dtype)
    return ((1 - cosine) * mask).sum() / mask.sum().clamp(min=1)


def attention_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor, heads: str = "match"
                  ) -> torch.Tensor:
    """Squared error of (B, heads, T, T) attention probabilities over query and key tokens both real (`mask`,
    (B, T)), / sum over rows and heads of tokens^2; `heads='average'`: of the maps averaged over the heads."""
    student, teacher = student.float(), teacher.detach().float()
    if heads == "average":
        student, teacher = student.mean(dim=1, keepdim=True), teacher.mean(dim=1, keepdim=True)
    elif student.shape[1] != teacher.shape[1]:
        raise ValueError(f"heads 'match' needs equal head counts, got {student.shape[1]} and {teacher.shape[1]}")
    mask = mask.to(student.dtype)
    pairs = (mask.unsqueeze(-1) * mask.unsqueeze(-2)).unsqueeze(1)  # (B, 1, T, T): query and key real
    squared = (student - teacher).square() * pairs
    return squared.sum() / (pairs.sum() * student.shape[1]).clamp(min=1)

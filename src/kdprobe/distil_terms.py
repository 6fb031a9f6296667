"""A student's loss given as a list of weighted terms (`kdprobe.loss_terms`) on one batch: `TermLoss`, which
`distil.DistilLoss` hands a padded batch on the device.

- One student forward pass gives the logits and, when a term needs them, every hidden state and attention map
  (`BertStudent.forward_internals`).
- Hidden and attention terms need the teacher's internal states of the same tokens: `TeacherStates` loads the
  teacher's encoder in the distil job (on the student's device, eval mode, the layers above the deepest mapped one
  dropped, no pooler) and runs it ONCE per batch under `torch.no_grad` (no second pass, no per-example loop), only
  when such a term is present. Computing them on the fly, not caching them beside the logits, is the documented
  choice (docs/configuration.md, "Loss terms": the cache would take terabytes at thesis size).
- Attention maps come from an attention implementation registered with transformers (`with_attention_maps`):
  eager attention that returns the softmax probabilities before attention dropout (transformers' own eager
  implementation returns them after dropout, so a training student's maps would hold dropout's zeros), with
  eager's mask. The teacher, in eval mode, has no dropout either way.
- `projection: linear` terms map each student state through a learned Linear(student hidden, teacher hidden) per
  mapped layer (`projections`), initialised as TextBrewer's `linear_projection` (airaria/TextBrewer @ 2c105fa,
  src/textbrewer/projections.py lines 9-13 with utils.py lines 9-16: weights N(0, 0.02), biases 0); trained with
  the student and part of the resumable state (`distil` trains them inside one module with the student), not saved
  with the student.
- Each term's unweighted value goes to the curve (`training.LossParts`, columns `loss_<name>`); soft_ce's
  temperature schedule reads the optimiser step (`TermLoss` is a `training.Callback`: `on_step`).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from kdprobe.loss_terms import LossTerm, check_against_teacher
from kdprobe.losses import (attention_mse, hard_cross_entropy, hidden_cosine, hidden_mse, logit_mse,
                            soft_cross_entropy)
from kdprobe.runtime import autocast, maybe_compile
from kdprobe.settings import LossSettings
from kdprobe.training import Callback, LossParts

log = logging.getLogger(__name__)

#: The attention implementation (transformers' attention and mask interfaces) that returns attention probabilities.
ATTENTION_MAPS = "kdprobe_attention_maps"


def _attention_maps(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                    attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                    **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """transformers' `eager_attention_forward` (models/bert/modeling_bert.py), returning the probabilities before
    dropout rather than after."""
    scores = torch.matmul(query, key.transpose(2, 3)) * (query.size(-1) ** -0.5 if scaling is None else scaling)
    if attention_mask is not None:
        scores = scores + attention_mask
    probs = nn.functional.softmax(scores, dim=-1)
    out = torch.matmul(nn.functional.dropout(probs, p=dropout, training=module.training), value)
    return out.transpose(1, 2).contiguous(), probs


def with_attention_maps(model: nn.Module) -> nn.Module:
    """Switch a transformers model to the `ATTENTION_MAPS` implementation (registered on first use)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(ATTENTION_MAPS, _attention_maps)
    AttentionMaskInterface.register(ATTENTION_MAPS, eager_mask)
    model.set_attn_implementation(ATTENTION_MAPS)
    return model


class TeacherStates:
    """The teacher's encoder for the hidden and attention terms: loaded from `teacher_dir` onto `device`, checked
    against the terms (`loss_terms.check_against_teacher`), cut to the deepest mapped layer; `(hidden states,
    attention maps or None)` of a batch in one forward pass under `torch.no_grad`."""

    def __init__(self, teacher_dir: str | Path, loss: LossSettings, section: dict[str, Any], device: torch.device,
                 numerics: dict[str, Any]):
        from kdprobe.models import load_hf

        _, classifier = load_hf(teacher_dir)
        model = classifier.base_model  # the encoder (`bert`), without the classification head
        check_against_teacher(loss.terms, section, model.config.to_dict(), where=f"the teacher {teacher_dir}")
        terms = [t for t in loss.terms if t.needs_teacher]
        self.attentions = any(t.kind == "attention_mse" for t in terms)
        # at least one layer: with none, transformers records no hidden state at all (not even the embeddings')
        depth, layers = max(1, *(layer for t in terms for _, layer in t.layer_map)), len(model.encoder.layer)
        model.encoder.layer = model.encoder.layer[:depth]
        model.config.num_hidden_layers, model.pooler = depth, None
        if self.attentions:
            with_attention_maps(model)
        self.model, self.device, self.numerics = model.to(device).eval(), device, numerics
        self.width, self.heads = int(model.config.hidden_size), int(model.config.num_attention_heads)
        log.info("teacher on the fly for the hidden and attention terms: %s, layers 1..%d of %d run, width %d, "
                 "%d heads%s", teacher_dir, depth, layers, self.width, self.heads,
                 ", attention maps" if self.attentions else "")

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor
                 ) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...] | None]:
        with torch.no_grad(), autocast(self.device, self.numerics, kind="training"):
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True,
                             output_attentions=self.attentions)
        return out.hidden_states, out.attentions


def _projection_key(term: LossTerm, layer: int) -> str:
    return f"{term.name}_{layer}"


def projections(loss: LossSettings, student_width: int, teacher_width: int) -> nn.ModuleDict:
    """One Linear(student_width, teacher_width) per mapped layer of each `projection: linear` hidden term, drawn
    from torch's global RNG as TextBrewer's `linear_projection` (weights N(0, 0.02), biases 0)."""
    out = nn.ModuleDict()
    for term in loss.terms:
        if term.kind in ("hidden_mse", "hidden_cosine") and term.projection == "linear":
            for student, _ in term.layer_map:
                linear = nn.Linear(student_width, teacher_width)
                nn.init.normal_(linear.weight, std=0.02)
                nn.init.zeros_(linear.bias)
                out[_projection_key(term, student)] = linear
    return out


class Distillee(nn.Module):
    """What `training.fit` trains when the loss has projections: the student and the projections as one module,
    so that the optimiser, the resumable state and the kept best weights cover both; `student` alone is saved."""

    def __init__(self, student: nn.Module, projections: nn.ModuleDict):
        super().__init__()
        self.student, self.projections = student, projections


class TermLoss(Callback):
    """The weighted sum of `loss.terms` on a padded batch on the device (`__call__`), each term's unweighted value
    added to `parts`. `gold`: the transfer set's class index per row (-1: unlabelled), for `hard_ce` on gold;
    `total_steps`: the run's optimiser steps, for soft_ce's `linear` temperature schedule."""

    def __init__(self, model: nn.Module, loss: LossSettings, teacher: TeacherStates | None,
                 projections: nn.ModuleDict, gold: torch.Tensor, total_steps: int, parts: LossParts,
                 device: torch.device, numerics: dict[str, Any]):
        self.terms, self.teacher, self.projections, self.parts = loss.terms, teacher, projections, parts
        self.gold, self.total_steps, self.step = gold, total_steps, 0
        self.device, self.numerics = device, numerics
        self.internals = loss.needs_teacher
        attentions = any(t.kind == "attention_mse" for t in self.terms)
        if attentions:
            with_attention_maps(model.bert)
        self.forward = maybe_compile(functools.partial(model.forward_internals, attentions=attentions)
                                     if self.internals else model, numerics)

    def on_train_begin(self, resumed_at: int | None) -> None:
        self.step = resumed_at or 0

    def on_step(self, step: int) -> None:
        self.step = step

    def __call__(self, batch: dict[str, torch.Tensor], teacher_logits: torch.Tensor, idx: np.ndarray) -> torch.Tensor:
        ids, mask = batch["input_ids"], batch["attention_mask"]
        hidden = attentions = teacher_hidden = teacher_attentions = None
        with autocast(self.device, self.numerics, kind="training"):
            if self.internals:
                logits, hidden, attentions = self.forward(ids, mask)
            else:
                logits = self.forward(ids, mask)
        if self.teacher is not None:
            teacher_hidden, teacher_attentions = self.teacher(ids, mask)
        logits = logits.float()
        values = {}
        for term in self.terms:
            if term.kind == "soft_ce":
                values[term.name] = soft_cross_entropy(logits, teacher_logits,
                                                       term.temperature_at(self.step, self.total_steps))
            elif term.kind == "mse":
                values[term.name] = logit_mse(logits, teacher_logits, term.reduction)
            elif term.kind == "hard_ce":
                targets = (self.gold[torch.from_numpy(np.asarray(idx))].to(self.device) if term.on == "gold"
                           else teacher_logits.argmax(dim=-1))
                values[term.name] = hard_cross_entropy(logits, targets)
            elif term.kind == "attention_mse":
                values[term.name] = sum(attention_mse(attentions[s - 1], teacher_attentions[t - 1], mask, term.heads)
                                        for s, t in term.layer_map)
            else:
                match = hidden_mse if term.kind == "hidden_mse" else hidden_cosine
                values[term.name] = sum(match(self._project(term, s, hidden[s]), teacher_hidden[t], mask)
                                        for s, t in term.layer_map)
        self.parts.add(values, len(idx))
        return sum(term.weight * values[term.name] for term in self.terms)

    def _project(self, term: LossTerm, layer: int, state: torch.Tensor) -> torch.Tensor:
        key = _projection_key(term, layer)
        return self.projections[key](state.float()) if key in self.projections else state.float()

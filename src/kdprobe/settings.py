"""Typed settings below the script boundary: frozen dataclasses built once from a config section.

A rule's `params` stay plain dicts (Snakemake compares them to decide reruns); the library turns a section into
these objects at its entry point (`teacher.finetune`, `augment.gpt2.finetune`, `distil.distil`), and the layers
below read fields, never the dict. Each object knows its config `key` (e.g. `students.lstm_s`), so an error names
the setting (`key.field`). Defaults here are the schema's (workflow/schemas/config.schema.yaml says each one;
`tests/test_registries.py` checks them), and a section the schema requires a key of never falls back to one.

- `TrainSettings`: the training loop's (`training.fit`): epochs, batch size, seed, schedule and warm-up, gradient
  clipping, checkpoint cadence, curve rows per epoch or every N steps, bf16 and torch.compile.
- `OptimizerSettings`: the one optimiser factory (`build`): AdamW with Hugging Face's decay groups (teacher,
  GPT-2), Adam or Adadelta (students).
- `LossSettings`: a student's distillation loss: `soft_ce` (temperature) or `mse` (reduction), or a list of
  weighted terms (`loss_terms.LossTerm`).
- `CudaSettings`: the CUDA numerics policy of every GPU job (config section `cuda`, `runtime.configure_cuda`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch

from kdprobe.errors import ConfigError
from kdprobe.loss_terms import LossTerm, parse_terms
from kdprobe.losses import MSE_REDUCTIONS, check_loss_name


def _get(section: Mapping[str, Any], key: str, name: str, default: Any = ...) -> Any:
    """`section[name]`, or `default`; a required one missing is a ConfigError naming `key.name`."""
    value = section.get(name)
    if value is None:
        if default is ...:
            raise ConfigError(f"{key}.{name}", "missing")
        return default
    return value


@dataclass(frozen=True)
class TrainSettings:
    key: str
    epochs: int
    batch_size: int
    seed: int
    schedule: str = "linear"
    warmup_fraction: float | None = None  # of all steps (teacher, GPT-2)
    warmup_epochs: float | None = None  # of one epoch's steps each (students)
    clip_norm: float = 0.0  # 0: no clipping
    save_every_steps: int = 0  # 0: the state is saved at epoch ends only
    evals_per_epoch: int = 1  # curve rows per epoch (the last at the epoch's end)
    eval_every_steps: int = 0  # a curve row (dev scored, best kept) every this many optimiser steps too; 0: none
    bf16: bool | None = None  # None: the kind's default (`runtime.autocast_dtype`)
    compile: bool = False

    @classmethod
    def from_section(cls, section: Mapping[str, Any], key: str, evals_per_epoch: int = 1) -> "TrainSettings":
        """The loop's settings of a config section; `evals_per_epoch` is the section's default when it has none."""
        out = cls(
            key=key,
            epochs=int(_get(section, key, "epochs")),
            batch_size=int(_get(section, key, "batch_size")),
            seed=int(_get(section, key, "seed")),
            schedule=str(_get(section, key, "schedule", "linear")),
            warmup_fraction=None if section.get("warmup_fraction") is None else float(section["warmup_fraction"]),
            warmup_epochs=None if section.get("warmup_epochs") is None else float(section["warmup_epochs"]),
            clip_norm=float(_get(section, key, "clip_norm", 0.0)),
            save_every_steps=int(_get(section, key, "save_every_steps", 0)),
            evals_per_epoch=int(_get(section, key, "evals_per_epoch", evals_per_epoch)),
            eval_every_steps=int(_get(section, key, "eval_every_steps", 0)),
            bf16=section.get("bf16"),
            compile=bool(_get(section, key, "compile", False)),
        )
        if out.batch_size < 1 or out.epochs < 0:
            raise ConfigError(key, "batch_size must be >= 1 and epochs >= 0")
        return out

    @property
    def numerics(self) -> dict[str, Any]:
        """The `bf16` / `compile` switches as `runtime.autocast` and `runtime.maybe_compile` read them."""
        return {"compile": self.compile} | ({} if self.bf16 is None else {"bf16": self.bf16})


@dataclass(frozen=True)
class OptimizerSettings:
    key: str
    name: str  # adamw | adam | adadelta
    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8  # Adam's and AdamW's epsilon (torch's default)
    weight_decay: float = 0.0
    rho: float = 0.9

    NAMES = ("adamw", "adam", "adadelta")

    @classmethod
    def from_section(cls, section: Mapping[str, Any], key: str, name: str | None = None) -> "OptimizerSettings":
        """The optimiser of a section: `name` when the stage fixes it (AdamW for the teacher and GPT-2), else the
        section's `optimizer`."""
        name = str(name or _get(section, key, "optimizer"))
        if name not in cls.NAMES:
            raise ConfigError(f"{key}.optimizer", f"unknown optimizer {name!r}; choose one of {list(cls.NAMES)[1:]}")
        betas = _get(section, key, "betas", (0.9, 0.999))
        return cls(key=key, name=name, lr=float(_get(section, key, "lr")), betas=(float(betas[0]), float(betas[1])),
                   eps=float(_get(section, key, "eps", 1e-8)),
                   weight_decay=float(_get(section, key, "weight_decay", 0.0)), rho=float(_get(section, key, "rho", 0.9)))

    def build(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        """The optimiser over `model`'s trainable parameters. AdamW decays matrices only (not biases and LayerNorm
        weights), as Hugging Face's Trainer; with weight decay 0 it is Adam."""
        params = [p for p in model.parameters() if p.requires_grad]
        if self.name == "adamw":
            groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": self.weight_decay},
                      {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
            return torch.optim.AdamW(groups, lr=self.lr, betas=self.betas, eps=self.eps)
        if self.name == "adam":
            return torch.optim.Adam(params, lr=self.lr, betas=self.betas, eps=self.eps)
        return torch.optim.Adadelta(params, lr=self.lr, rho=self.rho)


@dataclass(frozen=True)
class LossSettings:
    key: str
    name: str  # soft_ce | mse (`losses.LOSSES`), or `terms` when `loss` is a list
    temperature: float = 1.0  # soft_ce
    mse_reduction: str = "sum"  # mse: sum (the thesis) or mean over the classes
    terms: tuple[LossTerm, ...] = ()  # `loss` given as a list of weighted terms (`kdprobe.loss_terms`)

    @classmethod
    def from_section(cls, section: Mapping[str, Any], key: str, default: str) -> "LossSettings":
        """A student's loss; `default` (its registry entry's) when the section names none."""
        reduction = str(_get(section, key, "mse_reduction", "sum"))
        if reduction not in MSE_REDUCTIONS:
            raise ConfigError(f"{key}.mse_reduction", f"{reduction!r} is not one of {list(MSE_REDUCTIONS)}")
        temperature = float(_get(section, key, "temperature", 1.0))
        if isinstance(section.get("loss"), list):
            return cls(key=key, name="terms", temperature=temperature, mse_reduction=reduction,
                       terms=parse_terms(section, key, key.rsplit(".", 1)[-1]))
        name = str(_get(section, key, "loss", default))
        check_loss_name(name, f"{key}.loss")
        return cls(key=key, name=name, temperature=temperature, mse_reduction=reduction)

    @property
    def needs_teacher(self) -> bool:
        """Whether a term reads the teacher's internal states (the teacher then runs in the distil job)."""
        return any(term.needs_teacher for term in self.terms)

    def describe(self) -> str:
        if self.terms:
            return " + ".join(term.describe() for term in self.terms)
        return f"{self.name} (T={self.temperature:g}, MSE {self.mse_reduction})"


@dataclass(frozen=True)
class CudaSettings:
    key: str
    tf32: bool = True  # TF32 for fp32 matmuls and cuDNN (Ampere and later); false: IEEE fp32
    deterministic: bool = False  # torch's deterministic algorithms

    @classmethod
    def from_config(cls, config: Mapping[str, Any], key: str = "cuda") -> "CudaSettings":
        section = config.get(key) or {}
        return cls(key=key, tf32=bool(_get(section, key, "tf32", True)),
                   deterministic=bool(_get(section, key, "deterministic", False)))

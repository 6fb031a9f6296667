"""Fine-tune GPT-2 as a sentence generator on a task's training sentences: `results/gpt2/{task}/`.

Each sentence is framed by the start and end token (GPT-2's `<|endoftext|>` serves as both: `bos + sentence +
eos`), so the sampler can start from the start token and stop at the end token. A sentence longer than
`max_length` tokens is truncated and gets no end token (it did not end there). Pads carry label -100.

Settings (`gpt2` section): `epochs`, `batch_size`, `lr`, `weight_decay`, `schedule`, `warmup_fraction`,
`max_length`, `seed`, optional `save_every_steps`, `evals_per_epoch` (curve rows per epoch, default 10),
`clip_norm`, `bf16`, `compile` (see `kdprobe.training.fit`). The resumable state is keyed on the settings and the
content of `train_tsv` and the base model's files.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from kdprobe.batching import PackedIds
from kdprobe.checkpoint import ResumeState
from kdprobe.digest import model_files
from kdprobe.errors import ConfigError, InputError
from kdprobe.models import load_errors
from kdprobe.runtime import set_seed
from kdprobe.settings import OptimizerSettings, TrainSettings
from kdprobe.splits import read_sentences
from kdprobe.training import Batches, Callback, Resume, RunFiles, fit, hf_batch_loss, save_pretrained

log = logging.getLogger(__name__)


def frame_sentences(tokenizer, sentences: list[str], max_length: int) -> list[list[int]]:
    """`[bos] + tokens + [eos]` per sentence; tokens truncated to `max_length` (then without eos)."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    if bos is None or eos is None:
        raise ConfigError("gpt2.model", f"tokenizer {tokenizer.name_or_path} has no start or end token")
    ids = tokenizer(sentences, add_special_tokens=False, return_attention_mask=False)["input_ids"]
    return [[bos] + s[:max_length] + ([eos] if len(s) <= max_length else []) for s in ids]


def finetune(
    model: str | Path,
    train_tsv: str | Path,
    settings: dict[str, Any],
    files: RunFiles,
    state_path: str | Path | None,
    device: torch.device | str,
    *,
    callbacks: Sequence[Callback] = (),
) -> list[dict[str, float]]:
    """Fine-tune the causal LM `model` (hub id or local directory) on the sentences of `train_tsv`, with
    `settings` (the `gpt2` section: 10 curve rows an epoch unless `evals_per_epoch` says otherwise).

    Writes `files`: the model directory (model and tokenizer) and the curve (step, epoch, loss, lr); returns the
    curve rows. `callbacks` go to `training.fit` (TensorBoard, tests' interruptions).
    """
    device = torch.device(device)
    training = TrainSettings.from_section(settings, "gpt2", evals_per_epoch=10)
    sentences, _ = read_sentences(train_tsv)
    if not sentences:
        raise InputError(train_tsv, "no training sentences")
    set_seed(training.seed)
    with load_errors(model, "the base model"):
        tokenizer = AutoTokenizer.from_pretrained(model)
        net = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)  # fp32; bf16 only by autocast
    seqs = PackedIds(frame_sentences(tokenizer, sentences, int(settings["max_length"])))
    limit = getattr(net.config, "max_position_embeddings", None)
    if limit is not None and seqs.lengths.max() > limit:
        raise ConfigError("gpt2.max_length", f"framed sentences reach {seqs.lengths.max()} tokens; "
                                             f"the model takes {limit}")
    eos = tokenizer.eos_token_id
    log.info("lm %s: %d sentences, %d tokens framed", model, len(seqs), len(seqs.flat))

    def collate(idx: np.ndarray) -> dict[str, Any]:
        batch = seqs.padded(idx, eos)
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        return {**batch, "labels": labels, "use_cache": False}

    net.to(device)
    base = model_files(model)
    curve = fit(
        # the loss is a mean over predicted tokens (each sentence's but its first): micro-batches weigh by those
        net, Batches(seqs.lengths, hf_batch_loss(net, collate, device, training),
                     weight=lambda idx: float(np.sum(seqs.lengths[idx] - 1))),
        OptimizerSettings.from_section(settings, "gpt2", name="adamw").build(net), training, device=device,
        resume=Resume(state_path, settings, {"train.tsv": train_tsv} | ({"base model": base} if base else {}),
                      {"base model": None if base else str(model)}),
        callbacks=callbacks, desc="gpt2",
    ).curve
    files.write(lambda tmp: save_pretrained(tmp, net, tokenizer), curve)
    ResumeState(state_path).clear()
    log.info("lm: final loss %.4f; wrote %s", curve[-1]["loss"], files)
    return curve

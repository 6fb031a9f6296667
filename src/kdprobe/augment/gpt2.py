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
from typing import Any

import numpy as np
import pandas as pd
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from kdprobe.batching import PackedIds
from kdprobe.checkpoint import ResumeState
from kdprobe.digest import model_files
from kdprobe.errors import ConfigError, InputError
from kdprobe.io import atomic_dir, write_csv
from kdprobe.runtime import set_seed
from kdprobe.training import adamw, fit, hf_batch_loss
from kdprobe.splits import read_sentences

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
    out_dir: str | Path,
    state_path: str | Path | None,
    device: torch.device | str,
    *,
    curve_path: str | Path | None = None,
    stop_after_steps: int | None = None,
    tensorboard_dir: str | Path | None = None,
) -> list[dict[str, float]]:
    """Fine-tune the causal LM `model` (hub id or local directory) on the sentences of `train_tsv`.

    Writes `out_dir` (model and tokenizer) and `curve_path` (default `out_dir/../curve.csv`: step, epoch,
    loss); returns the curve rows. `stop_after_steps` simulates a killed job (`training.TrainingInterrupted`);
    `tensorboard_dir`: the curve as TensorBoard events too (`training.fit`).
    """
    out_dir, device = Path(out_dir), torch.device(device)
    curve_path = Path(curve_path) if curve_path else out_dir.parent / "curve.csv"
    sentences, _ = read_sentences(train_tsv)
    if not sentences:
        raise InputError(train_tsv, "no training sentences")
    set_seed(int(settings.get("seed", 0)))
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
        net, seqs.lengths, hf_batch_loss(net, collate, device, settings), adamw(net, settings),
        {"evals_per_epoch": 10, **settings}, section="gpt2", device=device, state_path=state_path,
        inputs={"train.tsv": train_tsv} | ({"base model": base} if base else {}),
        identity={"base model": None if base else str(model)},
        stop_after_steps=stop_after_steps, desc="gpt2", tensorboard_dir=tensorboard_dir,
    ).curve
    with atomic_dir(out_dir) as tmp:
        net.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    write_csv(curve_path, pd.DataFrame(curve))
    ResumeState(state_path).clear()
    log.info("lm: final loss %.4f; wrote %s, %s", curve[-1]["loss"], out_dir, curve_path)
    return curve

"""A small GPT-2 for the offline study: byte-level BPE tokenizer trained on the corpus, random initialisation
(`kdprobe.scratch_models.init_gpt2`), then causal-LM pre-training on the corpus with the study's own LM training
(`kdprobe.augment.gpt2.finetune`). The `gpt2` rule then fine-tunes it per task like a downloaded GPT-2."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import torch

from kdprobe.scratch_models import init_gpt2
from kdprobe.errors import ConfigError
from kdprobe.augment.gpt2 import finetune
from kdprobe.training import RunFiles
from kdprobe.offline.corpus import read_corpus

log = logging.getLogger(__name__)

#: `offline.gpt2` keys: the architecture (`init_gpt2`) and the pre-training (`augment.gpt2.finetune`).
ARCHITECTURE = ("vocab_size", "hidden", "layers", "heads")
TRAINING = ("epochs", "batch_size", "lr", "weight_decay", "warmup_fraction", "max_length")


def pretrain_gpt2(corpus_tsv: str | Path, settings: dict[str, Any], seed: int, out_dir: str | Path,
                  curve_path: str | Path, state_path: str | Path | None, device: torch.device | str) -> dict:
    """Build the tokenizer and GPT-2 of `settings` on the sentences of `corpus_tsv` and pre-train it; write the
    model directory `out_dir` and the loss curve `curve_path`. Returns a summary."""
    for key in ARCHITECTURE + TRAINING:
        if key not in settings:
            raise ConfigError(f"offline.gpt2.{key}", "missing")
    corpus = read_corpus(corpus_tsv)
    model, tokenizer = init_gpt2(corpus, settings, seed)
    info = {"vocab_size": len(tokenizer), "parameters": model.num_parameters(), "sentences": len(corpus)}
    log.info("GPT-2 initialised: %s", info)
    with tempfile.TemporaryDirectory(prefix="gpt2-init-", dir=Path(out_dir).parent) as init:
        model.save_pretrained(init)
        tokenizer.save_pretrained(init)
        training = {key: settings[key] for key in TRAINING} | {"seed": seed}
        curve = finetune(init, corpus_tsv, training, RunFiles(Path(out_dir), Path(curve_path)), state_path, device)
    info["final_loss"] = curve[-1]["loss"]
    log.info("GPT-2 pre-trained: %s", info)
    return info

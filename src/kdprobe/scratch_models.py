"""Models built from scratch on a corpus, shared by the demo (`kdprobe.demo.models`) and the offline study
(`kdprobe.offline.gpt2`): a byte-level BPE tokenizer and a randomly initialised GPT-2 that load with
`AutoTokenizer` / `AutoModelForCausalLM.from_pretrained` like the real checkpoints they stand in for.
Torch runs single-threaded while they are built (`runtime.single_thread`): models this small gain nothing from more
threads, and one thread makes the weights identical wherever they are built.
"""

from __future__ import annotations

import json
from typing import Sequence

import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

from kdprobe.runtime import single_thread

END = "<|endoftext|>"
MAX_POSITIONS = 256


def gpt2_tokenizer(corpus: Sequence[str], vocab_size: int) -> GPT2Tokenizer:
    """A byte-level BPE tokenizer trained on `corpus`; `<|endoftext|>` is bos, eos and unk, as in GPT-2."""
    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(corpus, vocab_size=vocab_size, special_tokens=[END], show_progress=False)
    merges = [tuple(pair) for pair in json.loads(trainer.to_str())["model"]["merges"]]
    return GPT2Tokenizer(vocab=trainer.get_vocab(), merges=merges, model_max_length=MAX_POSITIONS)


def init_gpt2(corpus: Sequence[str], settings: dict, seed: int) -> tuple[GPT2LMHeadModel, GPT2Tokenizer]:
    """A byte-level BPE tokenizer trained on `corpus` and a randomly initialised GPT-2 LM sized by `settings`
    (`vocab_size`, `hidden`, `layers`, `heads`)."""
    tokenizer = gpt2_tokenizer(corpus, settings["vocab_size"])
    end = tokenizer.convert_tokens_to_ids(END)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=MAX_POSITIONS, n_embd=settings["hidden"], n_layer=settings["layers"],
        n_head=settings["heads"], bos_token_id=end, eos_token_id=end,
    )
    with single_thread():
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    return model, tokenizer

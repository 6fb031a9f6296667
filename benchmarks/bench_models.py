"""The benchmark's models and sentences: GPT-2 and BERT of 6 layers, hidden 384 (`gpu_check.py` asks for the thesis
sizes), randomly initialised, with the demo's tokenizers (trained by `kdprobe.demo` on the demo corpus), the thesis
students, and sentences with a realistic length mix.

A randomly initialised GPT-2 almost never samples its end token (about 1 in the vocabulary size per step), so its
samples would all run to `max_length`. `length_shaped_gpt2` gives it a realistic length mix without training: one
hidden unit (0) carries a per-position value (from `wpe`) that no layer writes to, and the (untied) LM head reads it
only into the end token's logit; the per-position values are solved for so that the end token's log-odds follow
`END_HAZARD` (most samples end after 5-30 tokens, a few run to 128). Everything else is GPT-2 as initialised.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import torch
import yaml
from transformers import BertConfig, BertForSequenceClassification, GPT2Config, GPT2LMHeadModel

from kdprobe.demo import write_demo_data
from kdprobe.demo.models import bert_tokenizer
from kdprobe.runtime import set_seed
from kdprobe.scratch_models import gpt2_tokenizer

ROOT = Path(__file__).resolve().parents[1]
LAYERS, HIDDEN, HEADS, INTERMEDIATE = 6, 384, 6, 1536
POSITIONS = 256


def END_HAZARD(p: int) -> float:
    """Probability that the token after `p` generated tokens is the end token."""
    return 0.01 if p < 5 else (0.08 if p < 30 else 0.03)


def demo_settings() -> dict:
    return yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())["demo"]


def demo_corpus(out_dir: Path) -> list[str]:
    """The demo corpus (task data and probing sentences), as `kdprobe.demo.write_demo_data` generates it."""
    return write_demo_data(out_dir, demo_settings())


def demo_tokenizers(corpus: list[str]):
    """The demo's WordPiece (BERT) and byte-level BPE (GPT-2) tokenizers, at the demo's vocabulary sizes."""
    demo = demo_settings()
    return bert_tokenizer(corpus, demo["bert"]["vocab_size"]), gpt2_tokenizer(corpus, demo["gpt2"]["vocab_size"])


def realistic_sentences(corpus: list[str], n: int, seed: int, tail: float = 0.08) -> list[str]:
    """`n` sentences: most are single corpus sentences (5-30 tokens); a `tail` fraction joins 2 or more of them
    (2 + a geometric number, at most 12: mostly 30-60 tokens, a few beyond 128, which the tokenizers truncate)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = 1 if rng.random() >= tail else min(12, 1 + int(rng.geometric(0.4)) + 1)
        out.append(" ".join(corpus[i] for i in rng.integers(len(corpus), size=k)))
    return out


def english_sentences(n: int, seed: int) -> list[str]:
    """`n` sentences of real English news (the Lee background corpus that ships with gensim's tests), shuffled:
    a real vocabulary's mix of frequent and rare words, unlike the demo grammar's few hundred words."""
    from gensim.test.utils import datapath

    text = Path(datapath("lee_background.cor")).read_text(encoding="utf-8")
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", " ".join(text.split())) if s]
    np.random.default_rng(seed).shuffle(sentences)
    if len(sentences) < n:
        raise ValueError(f"the Lee corpus has {len(sentences)} sentences, fewer than {n}")
    return sentences[:n]


def length_shaped_gpt2(tokenizer, seed: int = 0, calibration_rows: int = 16, max_length: int = 128, *,
                       layers: int = LAYERS, hidden: int = HIDDEN, heads: int = HEADS, vocab: int | None = None,
                       device: torch.device | str = "cpu") -> GPT2LMHeadModel:
    """GPT-2 (`layers` x `hidden`, `heads` heads; by default 6 x 384, 6 heads) for `tokenizer`, randomly
    initialised, with end-token log-odds per position following `END_HAZARD` (see the module docstring); calibrated
    and returned on `device`. `vocab`: the model's vocabulary when it is to be larger than the tokenizer's (a
    full-size LM head; ids past the tokenizer's are sampled, never decoded)."""
    set_seed(seed)
    end = tokenizer.eos_token_id
    vocab = vocab or len(tokenizer)
    config = GPT2Config(vocab_size=vocab, n_positions=POSITIONS, n_embd=hidden, n_layer=layers, n_head=heads,
                        bos_token_id=end, eos_token_id=end, tie_word_embeddings=False)
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        model.transformer.wte.weight[:, 0] = 0
        model.transformer.wpe.weight[:, 0] = 0
        for block in model.transformer.h:  # no layer writes unit 0
            for proj in (block.attn.c_proj, block.mlp.c_proj):
                proj.weight[:, 0] = 0
                proj.bias[0] = 0
        model.lm_head.weight[:, 0] = 0
        model.lm_head.weight[end, 0] = 1.0
    model.to(device)
    span = max_length + 1  # positions a sample can reach; later ones keep the value of the last
    want = torch.tensor([math.log(END_HAZARD(p) / (1 - END_HAZARD(p))) for p in range(span)])
    gen = torch.Generator().manual_seed(seed)
    probe = torch.randint(vocab, (calibration_rows, span), generator=gen).to(device)
    probe[:, 0] = end

    def log_odds() -> torch.Tensor:
        with torch.inference_mode():
            logits = model(input_ids=probe).logits.double()
        others = torch.logsumexp(torch.cat([logits[..., :end], logits[..., end + 1:]], dim=-1), dim=-1)
        return (logits[..., end] - others).mean(0).float().cpu()

    def set_clock(values: torch.Tensor) -> None:
        with torch.no_grad():
            model.transformer.wpe.weight[:span, 0] = values
            model.transformer.wpe.weight[span:, 0] = values[-1]

    a0, z0 = torch.zeros(span), log_odds()
    a1 = torch.full((span,), 0.5)
    for _ in range(8):  # secant steps, per position
        set_clock(a1)
        z1 = log_odds()
        if float((want - z1).abs().max()) < 1e-3:
            break
        slope = torch.where((a1 - a0).abs() > 1e-6, (z1 - z0) / (a1 - a0), torch.ones(span))
        a0, z0, a1 = a1, z1, a1 + (want - z1) / slope
    set_clock(a1)
    return model


def random_bert(tokenizer, n_classes: int = 2, seed: int = 0, *, layers: int = LAYERS, hidden: int = HIDDEN,
                heads: int = HEADS, intermediate: int = INTERMEDIATE,
                vocab: int | None = None) -> BertForSequenceClassification:
    """BERT (`layers` x `hidden`, `heads` heads, intermediate `intermediate`; by default 6 x 384, 6 heads, 1536)
    with a classification head, randomly initialised; `vocab` as in `length_shaped_gpt2`."""
    set_seed(seed)
    config = BertConfig(vocab_size=vocab or len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=intermediate, max_position_embeddings=512,
                        pad_token_id=tokenizer.pad_token_id, num_labels=n_classes)
    return BertForSequenceClassification(config).eval()


def param_count(model: torch.nn.Module, skip: tuple[str, ...] = ()) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if not any(s in n for s in skip))


def gpt2_flops_per_token(model: GPT2LMHeadModel, context: int) -> float:
    """Forward FLOPs of one generated token at `context` positions: 2 x (non-embedding weights + LM head) plus
    attention (QK^T and AV: 4 x context x hidden per layer)."""
    cfg = model.config
    weights = param_count(model.transformer, skip=("wte", "wpe")) + model.lm_head.weight.numel()
    return 2.0 * weights + 4.0 * context * cfg.n_embd * cfg.n_layer


def sampled_flops(model: GPT2LMHeadModel, samples: list[list[int]], max_length: int) -> float:
    """Effective forward FLOPs of sampled rows: one token per step up to each row's end token (at most
    `max_length` steps), each at its context; the same count whichever way sampled them."""
    cfg = model.config
    steps = np.array([min(len(x) + 1, max_length) for x in samples], dtype=np.float64)
    attention = 4.0 * cfg.n_embd * cfg.n_layer * steps * (steps + 1) / 2
    return float(np.sum(gpt2_flops_per_token(model, 0) * steps + attention))


def student_epoch_flops(model: torch.nn.Module, lengths: np.ndarray) -> float:
    """Training FLOPs (forward + backward = 3 x forward) of one epoch over sentences of `lengths` real tokens, on
    real tokens only: per token 2 x the weights a token passes through (LSTM_S: the BiLSTM's matrices; BERT_S: the
    encoder's matrices) plus, for BERT_S, attention over the sentence's own tokens (4 x length x hidden per
    layer). The per-sentence head is left out (a few thousand FLOPs)."""
    tokens = float(np.sum(lengths))
    if model.kind == "lstm_s":
        return 3.0 * 2.0 * param_count(model.lstm, skip=("bias",)) * tokens
    encoder = model.bert.encoder
    hidden, layers = model.bert.config.hidden_size, model.bert.config.num_hidden_layers
    attention = 4.0 * hidden * layers * float(np.sum(np.square(lengths.astype(np.float64))))
    return 3.0 * (2.0 * param_count(encoder, skip=("bias", "LayerNorm")) * tokens + attention)

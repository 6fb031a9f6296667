"""What a researcher would write today for kdprobe's heavy steps, so the benchmark (and `gpu_check.py`) can run it
beside kdprobe on the same model, sentences and batch size. Each function's docstring names the page it follows.

- `hf_generate`: sampling with Hugging Face `model.generate(do_sample=True, use_cache=True, ...)`.
- `dynamic_padding_logits`: teacher logits through a `DataLoader` with `DataCollatorWithPadding` (dynamic padding,
  input order, no sorting), the model in eval mode under `torch.no_grad()`.
- `PackedBiLSTM` + `lstm_epoch`: LSTM_S as a plain PyTorch module (`nn.LSTM` on `pack_padded_sequence`) trained from
  a `DataLoader` whose `collate_fn` pads each batch to its longest sentence.
- `bert_model` + `bert_epoch`: BERT_S as Hugging Face `BertForSequenceClassification` of the same size, trained from
  a `DataLoader` with `DataCollatorWithPadding` over `tokenize`d features.

Every function takes `device` (a `torch.device` or a string) and moves its batches there; models are built on it.
Sentences are tokenised once before an epoch (as `datasets.map` would), and the loss is passed in (`loss_fn(student
logits, teacher logits) -> scalar`), so both sides train on the same loss.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence
from torch.utils.data import DataLoader
from transformers import BertConfig, BertForSequenceClassification, DataCollatorWithPadding

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ------------------------------------------------------------------------------------------------- sampling
@torch.no_grad()
def hf_generate(model, n: int, batch_size: int, *, bos: int, eos: int, max_new_tokens: int, temperature: float,
                top_k: int, device: torch.device | str, seed: int) -> list[list[int]]:
    """`n` samples in batches of `batch_size`, each from the start token `bos` to `eos` or `max_new_tokens` tokens,
    returned as kdprobe's `augment.sample.sample_rows` returns them (ids after the start token, without the end token).
    Follows the Transformers docs' multinomial sampling
    (https://huggingface.co/docs/transformers/generation_strategies): `generate(do_sample=True, use_cache=True,
    top_k=..., temperature=..., max_new_tokens=...)`; `top_k=0` turns top-k off (generate's default is 50).
    Finished rows stay in the batch (padded) until its last row ends."""
    device = torch.device(device)
    model.eval()
    torch.manual_seed(seed)
    out: list[list[int]] = []
    for start in range(0, n, batch_size):
        rows = min(batch_size, n - start)
        prompt = torch.full((rows, 1), bos, dtype=torch.long, device=device)
        seqs = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=True,
                              use_cache=True, top_k=top_k, temperature=temperature, max_new_tokens=max_new_tokens,
                              eos_token_id=eos, pad_token_id=eos, num_beams=1)
        for row in seqs[:, 1:].tolist():
            out.append(row[: row.index(eos)] if eos in row else row)
    return out


# --------------------------------------------------------------------------------------------------- logits
def tokenize(tokenizer, sentences: Sequence[str], max_length: int) -> list[dict[str, list[int]]]:
    """Each sentence's tokenizer output (truncated to `max_length`, unpadded), as `datasets.map(tokenize_function)` in
    the LLM course (https://huggingface.co/learn/llm-course/chapter3/2) leaves it: what `DataCollatorWithPadding`
    takes."""
    enc = tokenizer(list(sentences), truncation=True, max_length=max_length)
    return [{key: enc[key][i] for key in enc} for i in range(len(sentences))]


@torch.no_grad()
def dynamic_padding_logits(model, tokenizer, sentences: Sequence[str], batch_size: int, max_length: int,
                           device: torch.device | str) -> np.ndarray:
    """Logits (n, classes) float32 in input order: tokenise all sentences once (truncated, unpadded), then a
    `DataLoader` (no shuffling, no sorting) with `collate_fn=DataCollatorWithPadding(tokenizer)`, `model.eval()` and
    `torch.no_grad()`, as the Hugging Face LLM course's evaluation loop
    (https://huggingface.co/learn/llm-course/chapter3/4) does it."""
    device = torch.device(device)
    model.eval()
    loader = DataLoader(tokenize(tokenizer, sentences, max_length), batch_size=batch_size, shuffle=False,
                        collate_fn=DataCollatorWithPadding(tokenizer), pin_memory=device.type == "cuda")
    out = []
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        out.append(model(**batch).logits.float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.config.num_labels), np.float32)


# ------------------------------------------------------------------------------------------------- students
def _train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, loader: DataLoader, forward, loss_fn: LossFn,
                 clip_norm: float, device: torch.device) -> float:
    """The training loop of the PyTorch tutorials: zero_grad, forward, loss, backward, clip, step. Mean loss."""
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    losses = []
    for inputs, target in loader:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(forward(inputs), target.to(device))
        loss.backward()
        if clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, clip_norm)
        optimizer.step()
        losses.append(float(loss.detach()))
    return float(np.mean(losses)) if losses else float("nan")


class PackedBiLSTM(nn.Module):
    """LSTM_S in plain PyTorch: word embeddings (multichannel: a frozen and a trained copy, concatenated) -> one
    bidirectional `nn.LSTM` on packed sequences -> [last forward; last backward state] -> FC + ReLU + dropout ->
    linear. The pattern of the PyTorch docs for `pack_padded_sequence`
    (https://pytorch.org/docs/stable/generated/torch.nn.utils.rnn.pack_padded_sequence.html) with
    `enforce_sorted=False`: no work on padding, cuDNN on a GPU."""

    def __init__(self, vocab_size: int, n_classes: int, *, embedding_dim: int = 300, hidden: int = 300, fc: int = 400,
                 dropout: float = 0.1, mode: str = "multichannel", pad_id: int = 0):
        super().__init__()
        if mode not in ("static", "non-static", "multichannel"):
            raise ValueError(f"mode {mode!r}: expected static, non-static or multichannel")
        self.static = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id) if mode != "non-static" else None
        self.tuned = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id) if mode != "static" else None
        if self.static is not None:
            self.static.weight.requires_grad_(False)
        width = embedding_dim * (2 if mode == "multichannel" else 1)
        self.lstm = nn.LSTM(width, hidden, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden, fc)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(fc, n_classes)

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = torch.cat([e(input_ids) for e in (self.static, self.tuned) if e is not None], dim=-1)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)
        return self.out(self.dropout(torch.relu(self.fc(torch.cat([h_n[-2], h_n[-1]], dim=-1)))))


def lstm_model(vocab_size: int, n_classes: int, settings: dict, pad_id: int, device: torch.device | str,
               seed: int = 0) -> PackedBiLSTM:
    """`PackedBiLSTM` sized by an LSTM_S settings section (`hidden`, `fc`, `dropout`, `embedding_mode`,
    `embedding_dim`), embeddings U[-0.25, 0.25] as LSTM_S's random vectors, on `device`."""
    torch.manual_seed(seed)
    dim = int(settings.get("embedding_dim", 300))
    model = PackedBiLSTM(vocab_size, n_classes, embedding_dim=dim,
                         hidden=int(settings["hidden"]), fc=int(settings["fc"]), dropout=float(settings["dropout"]),
                         mode=str(settings.get("embedding_mode", "multichannel")), pad_id=pad_id)
    with torch.no_grad():
        table = torch.empty(vocab_size, dim).uniform_(-0.25, 0.25)
        table[pad_id] = 0
        for emb in (model.static, model.tuned):
            if emb is not None:
                emb.weight.copy_(table)
    return model.to(device)


def lstm_epoch(model: PackedBiLSTM, optimizer: torch.optim.Optimizer, input_ids: Sequence[Sequence[int]],
               teacher_logits: torch.Tensor, batch_size: int, loss_fn: LossFn, *, clip_norm: float, seed: int,
               device: torch.device | str, pad_id: int = 0) -> float:
    """One epoch over shuffled batches from a `DataLoader` whose `collate_fn` pads each batch to its longest sentence
    (`pad_sequence`, as the PyTorch data docs' custom collate, https://pytorch.org/docs/stable/data.html); ids
    tokenised beforehand. Returns the mean loss."""
    device = torch.device(device)
    items = [(torch.as_tensor(ids, dtype=torch.long), teacher_logits[i]) for i, ids in enumerate(input_ids)]

    def collate(batch):
        seqs = [s for s, _ in batch]
        lengths = torch.tensor([len(s) for s in seqs])
        return (pad_sequence(seqs, batch_first=True, padding_value=pad_id), lengths), torch.stack([t for _, t in batch])

    loader = DataLoader(items, batch_size=batch_size, shuffle=True, collate_fn=collate,
                        generator=torch.Generator().manual_seed(seed), pin_memory=device.type == "cuda")

    def forward(inputs):
        ids, lengths = inputs
        return model(ids.to(device), lengths)

    return _train_epoch(model, optimizer, loader, forward, loss_fn, clip_norm, device)


def bert_model(vocab_size: int, n_classes: int, settings: dict, pad_id: int, device: torch.device | str,
               seed: int = 0) -> BertForSequenceClassification:
    """Hugging Face `BertForSequenceClassification` sized by a BERT_S settings section (`layers`, `hidden`, `heads`,
    `intermediate`, `dropout`, `max_length`), randomly initialised, on `device`: the model of the LLM course's
    training loop (https://huggingface.co/learn/llm-course/chapter3/4) at BERT_S's size."""
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=vocab_size, hidden_size=int(settings["hidden"]),
                        num_hidden_layers=int(settings["layers"]), num_attention_heads=int(settings["heads"]),
                        intermediate_size=int(settings["intermediate"]), hidden_dropout_prob=float(settings["dropout"]),
                        attention_probs_dropout_prob=float(settings["dropout"]),
                        max_position_embeddings=int(settings["max_length"]), pad_token_id=pad_id, num_labels=n_classes)
    return BertForSequenceClassification(config).to(device)


def bert_epoch(model: BertForSequenceClassification, optimizer: torch.optim.Optimizer, tokenizer,
               features: Sequence[dict[str, list[int]]], teacher_logits: torch.Tensor, batch_size: int,
               loss_fn: LossFn, *, clip_norm: float, seed: int, device: torch.device | str) -> float:
    """One epoch as the LLM course's full training loop (https://huggingface.co/learn/llm-course/chapter3/4):
    `features` tokenised beforehand (`tokenize`), a shuffled `DataLoader` with
    `collate_fn=DataCollatorWithPadding(tokenizer)` (each batch padded to its longest), `model(**batch).logits`
    into `loss_fn` against the teacher's logits. Returns the mean loss."""
    device = torch.device(device)
    items = [(f, teacher_logits[i]) for i, f in enumerate(features)]
    collator = DataCollatorWithPadding(tokenizer)

    def collate(batch):
        return collator([f for f, _ in batch]), torch.stack([t for _, t in batch])

    loader = DataLoader(items, batch_size=batch_size, shuffle=True, collate_fn=collate,
                        generator=torch.Generator().manual_seed(seed), pin_memory=device.type == "cuda")

    def forward(batch):
        return model(**{k: v.to(device) for k, v in batch.items()}).logits

    return _train_epoch(model, optimizer, loader, forward, loss_fn, clip_norm, device)

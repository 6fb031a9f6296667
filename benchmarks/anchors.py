"""The ways the thesis did the heavy steps, written out here so the benchmark can run them beside kdprobe's.

- `DbertSampler`: d-bert's GPT-2 sampler (castorini/d-bert, `dbert/generate/build_sampler.py`, `SampleBatch`):
  a buffer of 128 partial texts; every step re-encodes all of them with the tokenizer, pads them to the longest
  (token id 0, no attention mask: right padding under causal attention does not change the positions read),
  runs the whole padded batch through the model with no KV cache, samples one token per row (a
  `Categorical(logits=...)` draw and `.item()` per row), decodes every row back to text, emits the rows that hit
  the end token or the length limit, and refills the buffer to 128 with new rows.
- `padded_logits`: teacher logits in fixed batches, every sentence tokenised per batch and padded to 128.
- `on_the_fly_epoch`: a student epoch that shuffles, tokenises each batch and pads it to 128 as it goes; BERT_S
  runs over all 128 positions (as Hugging Face BERT does with an attention mask), LSTM_S as d-bert's BiRNN does
  (`dbert_birnn_logits`: sort by length, pack, run, unsort), with the student's own weights.
"""

from __future__ import annotations

import numpy as np
import torch

from kdprobe.losses import distillation_loss


class DbertSampler:
    """d-bert's `SampleBatch.step`, with the start token as every row's prefix (kdprobe samples the first token
    from the model given the start token; d-bert drew a first word from the training set)."""

    def __init__(self, model, tokenizer, max_len: int = 128, max_size: int = 128, seed: int = 0):
        self.model, self.tokenizer = model, tokenizer
        self.max_len, self.max_size = max_len, max_size
        self.bos = tokenizer.bos_token_id
        self.eos = tokenizer.eos_token_id
        self.buffer: list[str] = []
        self.generator = torch.Generator().manual_seed(seed)

    def fill(self) -> None:
        while len(self.buffer) < self.max_size:
            self.buffer.append("")

    def encode(self, texts: list[str]) -> list[list[int]]:
        return [[self.bos] + self.tokenizer.encode(t, add_special_tokens=False) for t in texts]

    @torch.no_grad()
    def step(self) -> tuple[list[list[int]], int]:
        """One step over the whole buffer; returns the token lists finished in it and the buffer width."""
        self.fill()
        raw = self.encode(self.buffer)
        width = min(max(map(len, raw)), self.max_len + 1)
        raw = [x[:width] for x in raw]
        queries = torch.tensor([x + [0] * (width - len(x)) for x in raw])
        output = self.model(input_ids=queries, use_cache=False).logits
        preds = output[torch.arange(len(raw)), torch.tensor([len(x) for x in raw]) - 1]
        texts, finished = [], []
        for pred, toks in zip(preds, raw):
            probs = torch.softmax(pred.float(), dim=-1)
            toks.append(int(torch.multinomial(probs, 1, generator=self.generator).item()))
            generated = toks[1:]
            if generated[-1] == self.eos or len(generated) >= self.max_len:
                finished.append(generated)
                continue
            texts.append(self.tokenizer.decode(generated))
        self.buffer = texts
        return finished, width

    def start_stationary(self, samples: list[list[int]], rng: np.random.Generator) -> None:
        """Fill the buffer as it stands after running for a long time (renewal theory): each slot holds a sentence
        drawn with probability proportional to the steps it occupies a slot, cut at a uniformly drawn age."""
        steps = np.array([min(len(s) + 1, self.max_len) for s in samples], dtype=float)
        picks = rng.choice(len(samples), size=self.max_size, p=steps / steps.sum())
        self.buffer = [self.tokenizer.decode(samples[i][: int(rng.integers(0, steps[i]))]) for i in picks]


@torch.inference_mode()
def padded_logits(model, tokenizer, sentences: list[str], batch_size: int, max_length: int = 128) -> np.ndarray:
    """Logits in input order, each batch tokenised as it comes and padded to `max_length`."""
    out = []
    for start in range(0, len(sentences), batch_size):
        enc = tokenizer(sentences[start : start + batch_size], padding="max_length", truncation=True,
                        max_length=max_length, return_tensors="pt")
        out.append(model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits.float().numpy())
    return np.concatenate(out)


def dbert_birnn_logits(student, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """LSTM_S logits computed as d-bert's `BiRNNModel.forward` (`dbert/distill/model/bi_rnn.py`) does."""
    lengths = mask.sum(1).clamp_min(1)
    sent = student.embed(input_ids)
    sorted_len, sorted_ind = torch.sort(lengths, descending=True)
    _, sorted_back_ind = torch.sort(sorted_ind)
    packed = torch.nn.utils.rnn.pack_padded_sequence(sent[sorted_ind], sorted_len.cpu(), batch_first=True)
    _, (h_n, _) = student.lstm(packed)
    out = h_n.permute(1, 0, 2)[sorted_back_ind].contiguous().view(len(lengths), -1)
    return student.out(student.dropout(torch.relu(student.fc(out))))


def on_the_fly_epoch(student, optimizer, sentences: list[str], teacher_logits: torch.Tensor, batch_size: int,
                     loss_name: str, temperature: float, clip_norm: float, seed: int, max_length: int = 128) -> float:
    """One epoch over shuffled batches, each tokenised (the student's own tokenizer) and padded to `max_length`
    on the fly; same model, loss and optimiser as `kdprobe.distil`. Returns the mean loss."""
    order = np.random.default_rng(seed).permutation(len(sentences))
    student.train()
    params = [p for p in student.parameters() if p.requires_grad]
    losses = []
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        ids = student.tokenize([sentences[i] for i in idx], max_length)
        input_ids = torch.full((len(ids), max_length), student.pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), max_length), dtype=torch.long)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[row, : len(seq)] = 1
        logits = dbert_birnn_logits(student, input_ids, mask) if student.kind == "lstm_s" else student(input_ids, mask)
        loss = distillation_loss(loss_name, logits, teacher_logits[torch.from_numpy(idx)], temperature)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, clip_norm)
        optimizer.step()
        losses.append(float(loss.detach()))
    return float(np.mean(losses))

"""Sample augmentation sentences from the fine-tuned GPT-2: `results/augment/{task}/shard{i}.parquet`.

Ancestral sampling in batches with the KV cache: the first step feeds the start token, every later step feeds
only the token just sampled (the prefix is never re-run). A row ends at the end token (not kept) or after
`max_length` tokens. Finished rows leave the batch, so compute follows the live sequences. A plain GPT-2 runs
through `Gpt2Decoder` (a preallocated cache written in place, finished rows dropped at once, the cache packed
lazily); any other causal LM through its own `past_key_values` (finished rows dropped once they are an eighth of
the batch). Tokens are drawn by inverting each live row's cumulative distribution at one uniform draw. Text is
decoded and normalised as the training splits are (`data.normalise`: stripped, every whitespace run one space;
quotes, emoji and the like kept). NaN or +infinite next-token logits (or a row with every token at -infinity)
stop the job (`errors.NonFiniteError`) before a chunk is written: every token drawn from them would be garbage.
A sentence that is empty after normalisation is dropped here, the one place that filters generated text, so a
shard holds at most its share of `augment.sentences`; the log counts the dropped sentences and the exact
duplicates within the shard (duplicates are kept: the transfer set weighs a sentence by how often it was sampled;
duplicates across shards are not counted).

A shard is written in chunks of `chunk_size` sentences (`chunk_dir/chunk{j:05d}.parquet`, atomically); batch b of
chunk j draws from its own generator seeded from (seed, j, b), so a restarted job skips finished chunks and
reproduces the rest exactly, and batches can run side by side (`Lanes`: one per CPU thread) without changing
a sample. The chunks are then copied into `out_path` row group by row group and removed.
`chunk_dir/manifest.json` records what the chunks depend on; chunks made under other settings or another model
are discarded.

Settings (`augment` section): `max_length`, `batch_size` (rows per batch; `auto` (or absent): from the free
GPU memory, `augment.memory.sampling_batch_size`, or `augment.memory.CPU_SAMPLING_BATCH` on a CPU), `temperature` (0: greedy),
`top_k` (0: full distribution), `chunk_size`, optional `bf16` (`true`: bf16 on a bf16-capable GPU; default fp32,
as the thesis), optional `compile` (`torch.compile` the decode step). A retry after CUDA ran out of memory samples
in half the batch (`runtime.retry_batch`); the chunk manifest records the device and dtype.
"""

from __future__ import annotations

import logging
import math
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer

from kdprobe.errors import ConfigError, NonFiniteError
from kdprobe.chunks import ChunkStore
from kdprobe.digest import content_digests
from kdprobe.logs import progress
from kdprobe.models import load_errors
from kdprobe.augment.memory import resolve_sampling_batch
from kdprobe.runtime import (OOM_MARKER, Lanes, autocast, autocast_dtype, clear_oom, halve_on_oom, maybe_compile,
                             numerics_record, retry_batch)
from kdprobe.splits import normalise

log = logging.getLogger(__name__)

#: Finished rows are compacted out of the batch once they are at least this fraction of it.
COMPACT_FRACTION = 1 / 8


def chunk_generator(seed: int, chunk: int, device: torch.device, batch: int | None = None) -> torch.Generator:
    """The generator of one chunk, seeded from (seed, chunk) alone; of one batch of it, from (seed, chunk, batch)."""
    entropy = [seed, chunk] if batch is None else [seed, chunk, batch]
    state = int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0] >> 1)
    return torch.Generator(device=device).manual_seed(state)


def next_tokens(logits: torch.Tensor, temperature: float, top_k: int, generator: torch.Generator) -> torch.Tensor:
    """One token per row from `logits` (rows, vocab): greedy at temperature 0, else sampled (top-k if k > 0).

    Sampling inverts each row's cumulative distribution at one uniform draw per row (`torch.multinomial` draws one
    exponential per vocabulary entry instead, which costs more than the model's last layer on a CPU).
    """
    logits = logits.float()
    if temperature <= 0:
        return logits.argmax(dim=-1)
    if temperature != 1:
        logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    cdf = torch.softmax(logits, dim=-1).cumsum_(dim=-1)
    draw = torch.rand((logits.shape[0], 1), generator=generator, device=logits.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, draw, right=True).squeeze(1).clamp_(max=logits.shape[-1] - 1)


def _gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GPT-2's GELU (tanh approximation) as x * sigmoid(x * (a + b x^2)), the same function, in a few passes over
    `x` (overwritten): torch's own tanh-GELU is slower on a CPU. (GPUs use torch's fused kernel.)"""
    u = torch.addcmul(_GELU_A.to(x), x, x, value=_GELU_B)
    return x.mul_(u.mul_(x).sigmoid_())


_GELU_A = torch.tensor(2 * math.sqrt(2 / math.pi))  # tanh(z) = 2 sigmoid(2z) - 1
_GELU_B = 2 * math.sqrt(2 / math.pi) * 0.044715


def _attend_matmul(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, scale: float) -> torch.Tensor:
    scores = torch.matmul(q, keys.transpose(-1, -2)).mul_(scale)
    return torch.matmul(torch.softmax(scores, dim=-1), values)


def _attend_sdpa(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, scale: float) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, keys, values, scale=scale)


class Gpt2Decoder:
    """One-token-per-step GPT-2 forward for sampling, with a preallocated KV cache.

    Every row of a batch sits at the same position (all start from the start token together), so the cache is one
    tensor (layers, 2, slots, heads, max_length + 1, head_dim) written in place: no per-step concatenation, no
    masks. Rows that end are dropped from the batch at once (`select`), so the matmuls only ever see live rows;
    their cache slots stay where they are (live rows find theirs through `slot`) until at most `PACK` of the slots
    in use are live, when the live rows' filled positions are moved into the first slots. Attention reads the
    slots in use, dead ones included: a cheaper waste than copying caches every few steps. The cache is allocated
    once and reused by `reset()` for the next batch (on a CPU, first touching fresh memory costs more than the
    copies), and only the positions reached are ever touched.

    The arithmetic is GPT-2's (`GPT2LMHeadModel` in eval mode); weights are read from the model, in `dtype` (fp32,
    or bf16 where `bf16: true` on a GPU that has it), and logits come out fp32.
    """

    #: pack the cache once no more than this fraction of the slots in use hold live rows
    PACK = 0.5

    def __init__(self, model: torch.nn.Module, rows: int, max_length: int, device: torch.device,
                 dtype: torch.dtype = torch.float32):
        cfg = model.config
        gpt = model.transformer
        self.n_layers, self.hidden, self.heads = cfg.n_layer, cfg.n_embd, cfg.n_head
        self.head_dim = self.hidden // self.heads
        self.eps = float(cfg.layer_norm_epsilon)
        self.dtype, self.device = dtype, torch.device(device)

        def w(t: torch.Tensor) -> torch.Tensor:
            return t.detach().to(device=device, dtype=dtype)

        self.wte, self.wpe = w(gpt.wte.weight), w(gpt.wpe.weight)
        self.layers = []
        for block in gpt.h:
            self.layers.append((
                w(block.ln_1.weight), w(block.ln_1.bias),
                w(block.attn.c_attn.weight), w(block.attn.c_attn.bias), float(block.attn.scaling),
                w(block.attn.c_proj.weight), w(block.attn.c_proj.bias),
                w(block.ln_2.weight), w(block.ln_2.bias),
                w(block.mlp.c_fc.weight), w(block.mlp.c_fc.bias),
                w(block.mlp.c_proj.weight), w(block.mlp.c_proj.bias),
            ))
        act = cfg.activation_function
        if act in ("gelu_new", "gelu_pytorch_tanh"):
            self.act = _gelu_tanh if self.device.type == "cpu" else partial(F.gelu, approximate="tanh")
        else:
            self.act = F.gelu if act == "gelu" else gpt.h[0].mlp.act
        # one query per row: a CPU reads each row's keys and values fastest through two batched matmuls; GPUs
        # have fused kernels for it
        self.attend = _attend_sdpa if self.device.type == "cuda" else _attend_matmul
        self.ln_f = (w(gpt.ln_f.weight), w(gpt.ln_f.bias))
        head = model.lm_head
        self.head_w = w(head.weight)
        self.head_b = w(head.bias) if getattr(head, "bias", None) is not None else None
        self.max_length = max_length
        self.source = model
        self.cache = torch.empty((self.n_layers, 2, rows, self.heads, max_length + 1, self.head_dim), dtype=dtype,
                                 device=self.device)
        self.reset(rows)

    @staticmethod
    def supports(model: torch.nn.Module) -> bool:
        """Whether `model` is a plain GPT-2 LM this decoder reproduces (else the generic cached path is used)."""
        cfg = getattr(model, "config", None)
        return (
            type(model).__name__ == "GPT2LMHeadModel"
            and getattr(cfg, "model_type", None) == "gpt2"
            and not getattr(cfg, "add_cross_attention", False)
            and hasattr(model, "lm_head")
            and all(hasattr(b.attn, "scaling") for b in model.transformer.h)
        )

    def fits(self, rows: int, max_length: int) -> bool:
        """Whether `reset(rows)` can serve a batch of `rows` rows of up to `max_length` tokens."""
        return rows <= self.cache.shape[2] and max_length <= self.max_length

    def reset(self, rows: int) -> None:
        """Start a new batch of `rows` rows (at most the rows the cache was made for)."""
        if rows > self.cache.shape[2]:
            raise ValueError(f"{rows} rows; the cache holds {self.cache.shape[2]}")
        self.filled = 0  # positions written so far
        self.slots = rows  # slots in use: 0 .. slots-1
        self.slot: torch.Tensor | None = None  # cache slot of each batch row; None: row i in slot i

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (rows, vocab), fp32, of the next token after feeding `tokens` (rows,) at the next position."""
        t, rows, slots, slot = self.filled, tokens.shape[0], self.slots, self.slot
        if t > self.max_length:
            raise ValueError(f"position {t} is beyond the cache's {self.max_length + 1}")
        x = self.wte[tokens] + self.wpe[t]
        per_row = (rows, self.heads, self.head_dim)
        for layer, (g1, b1, w_qkv, b_qkv, scale, w_o, b_o, g2, b2, w_fc, b_fc, w_pr, b_pr) in enumerate(self.layers):
            h = F.layer_norm(x, (self.hidden,), g1, b1, self.eps)
            q, k, v = torch.addmm(b_qkv, h, w_qkv).split(self.hidden, dim=1)
            keys, values = self.cache[layer, 0, :slots], self.cache[layer, 1, :slots]
            if slot is None:
                keys[:, :, t] = k.view(per_row)
                values[:, :, t] = v.view(per_row)
                attn = self.attend(q.view(rows, self.heads, 1, self.head_dim), keys[:, :, : t + 1],
                                   values[:, :, : t + 1], scale)
            else:
                keys[:, :, t].index_copy_(0, slot, k.view(per_row))
                values[:, :, t].index_copy_(0, slot, v.view(per_row))
                query = q.new_zeros((slots, self.heads, 1, self.head_dim))
                query.index_copy_(0, slot, q.view(rows, self.heads, 1, self.head_dim))
                attn = self.attend(query, keys[:, :, : t + 1], values[:, :, : t + 1], scale).index_select(0, slot)
            x = torch.addmm(b_o, attn.view(rows, self.hidden), w_o).add_(x)
            h = F.layer_norm(x, (self.hidden,), g2, b2, self.eps)
            x = torch.addmm(b_pr, self.act(torch.addmm(b_fc, h, w_fc)), w_pr).add_(x)
        h = F.layer_norm(x, (self.hidden,), *self.ln_f, self.eps)
        self.filled = t + 1
        return F.linear(h, self.head_w, self.head_b).float()

    def select(self, keep: torch.Tensor) -> None:
        """Keep only the batch rows `keep` (indices into the current batch, ascending)."""
        slot = keep if self.slot is None else self.slot[keep]
        if len(slot) > self.PACK * self.slots:
            self.slot = slot
            return
        # pack: live rows in slots beyond len(slot) move into the dead slots before it (disjoint sets: no overlap)
        n = len(slot)
        dead = torch.ones(self.slots, dtype=torch.bool, device=slot.device)
        dead[slot] = False
        holes = dead[:n].nonzero().squeeze(1)
        movers = (slot >= n).nonzero().squeeze(1)  # batch rows whose slot lies beyond the packed range
        if len(movers):
            f = self.filled
            self.cache[:, :, holes, :, :f] = self.cache[:, :, slot[movers], :, :f]
            slot = slot.clone()
            slot[movers] = holes
        self.slots, self.slot = n, slot


@torch.inference_mode()
def sample_batch(
    model: torch.nn.Module,
    n: int,
    *,
    bos: int,
    eos: int,
    max_length: int,
    temperature: float = 1.0,
    top_k: int = 0,
    generator: torch.Generator,
    device: torch.device,
    settings: dict[str, Any] | None = None,
    on_done: Callable[[int], Any] | None = None,
    trace: list | None = None,
    decoder: Gpt2Decoder | None = None,
) -> list[list[int]]:
    """Sample `n` sequences together; each is the token ids after the start token, without the end token.

    `on_done(k)` is called as k rows finish; `trace`, when a list, gets `(rows, logits)` for every step: the
    original indices of the live rows and their next-token logits (on the CPU), for tests.
    A plain GPT-2 LM runs through a `Gpt2Decoder` (`decoder` when given and large enough: reusing one across
    batches saves allocating its cache each time); any other causal LM through its own `past_key_values` cache.
    Random draws go to live rows only, one per row and step, so the samples do not depend on when finished rows
    are dropped from the batch (either path gives the same sentences).
    """
    settings = settings or {}
    device = torch.device(device)
    fast = Gpt2Decoder.supports(model)
    if fast:
        dtype = autocast_dtype(device, settings, kind="inference") or torch.float32
        if decoder is None or not decoder.fits(n, max_length) or decoder.dtype != dtype or decoder.device != device:
            decoder = Gpt2Decoder(model, n, max_length, device, dtype)
        decoder.reset(n)
        step = maybe_compile(decoder.step, settings)
    tokens = torch.full((n, max_length), eos, dtype=torch.long, device=device)
    length = torch.full((n,), max_length, dtype=torch.long, device=device)
    rows = torch.arange(n, device=device)  # original index of each batch row
    live = torch.ones(n, dtype=torch.bool, device=device)
    all_live = True
    feed = torch.full((n,), bos, dtype=torch.long, device=device)
    past = None
    for t in range(max_length):
        if fast:
            logits = step(feed)
        else:
            with autocast(device, settings, kind="inference"):
                out = model(input_ids=feed[:, None], past_key_values=past, use_cache=True)
            past, logits = out.past_key_values, out.logits[:, -1, :]
        if trace is not None:
            trace.append((rows[live].cpu(), logits[live].float().cpu()))
        finite = torch.isfinite(logits.amax(dim=-1)).all()  # NaN or +inf anywhere, or no token possible; -inf masks
        if all_live:
            nxt = next_tokens(logits, temperature, top_k, generator)
        else:
            nxt = torch.full_like(rows, eos)
            nxt[live] = next_tokens(logits[live], temperature, top_k, generator)
        tokens[rows, t] = nxt
        ended = live & (nxt == eos)
        length[rows[ended]] = t
        live &= ~ended
        n_ended, n_live, n_finite = torch.stack([ended.sum(), live.sum(), finite]).tolist()  # one device sync per step
        if not n_finite:
            raise NonFiniteError(f"sampling, token {t + 1}", "the language model's next-token logits are NaN, "
                                 "+infinite or all -infinite; nothing was written",
                                 check="the GPT-2 weights (rule gpt2)")
        if on_done is not None:
            on_done(n_ended + (n_live if t == max_length - 1 else 0))
        if n_live == 0:
            break
        all_live = n_live == len(live)
        if fast and not all_live:  # the decoder drops finished rows at once (its cache is packed lazily)
            keep = live.nonzero().squeeze(1)
            decoder.select(keep)
            rows, live, nxt, all_live = rows[keep], live[keep], nxt[keep], True
        elif not fast and len(live) - n_live >= max(1, math.ceil(len(live) * COMPACT_FRACTION)):
            keep = live.nonzero().squeeze(1)
            past.batch_select_indices(keep)
            rows, live, nxt, all_live = rows[keep], live[keep], nxt[keep], True
        feed = nxt
    tokens, length = tokens.cpu(), length.tolist()
    return [tokens[i, : length[i]].tolist() for i in range(n)]


def _lane_decoder(lanes: Lanes, model: torch.nn.Module, rows: int, max_length: int, device: torch.device,
                  dtype: torch.dtype) -> Gpt2Decoder:
    """The calling lane's decoder, kept for its next batch; made (again) when it does not fit the batch."""
    decoder = getattr(lanes.local, "decoder", None)
    if decoder is None or not decoder.fits(rows, max_length) or decoder.dtype != dtype \
            or decoder.device != torch.device(device) or decoder.source is not model:
        decoder = lanes.local.decoder = Gpt2Decoder(model, rows, max_length, device, dtype)
    return decoder


def sample_rows(
    model: torch.nn.Module,
    n: int,
    *,
    seed: int,
    chunk: int,
    bos: int,
    eos: int,
    max_length: int,
    batch_size: int,
    temperature: float = 1.0,
    top_k: int = 0,
    device: torch.device,
    settings: dict[str, Any] | None = None,
    on_done: Callable[[int], Any] | None = None,
    lanes: Lanes | None = None,
) -> list[list[int]]:
    """`n` samples (token ids after the start token, without the end token): batches of `batch_size` rows, batch b
    drawing from `chunk_generator(seed, chunk, device, b)`, run on `lanes` (default: one per CPU thread)."""
    device = torch.device(device)
    own = lanes is None
    lanes = Lanes.for_device(device) if own else lanes
    fast = Gpt2Decoder.supports(model)
    dtype = autocast_dtype(device, settings, kind="inference") or torch.float32
    starts = list(range(0, n, batch_size))

    def run(b: int) -> list[list[int]]:
        rows = min(batch_size, n - starts[b])
        return sample_batch(
            model, rows, bos=bos, eos=eos, max_length=max_length, temperature=temperature, top_k=top_k,
            generator=chunk_generator(seed, chunk, device, b), device=device, settings=settings, on_done=on_done,
            decoder=_lane_decoder(lanes, model, min(batch_size, n), max_length, device, dtype) if fast else None,
        )

    try:
        return [ids for batch in lanes.map(run, range(len(starts))) for ids in batch]
    finally:
        if own:
            lanes.close()


SCHEMA = pa.schema([("sentence", pa.string())])


def sample_shard(
    model_dir: str | Path,
    n_sentences: int,
    seed: int,
    settings: dict[str, Any],
    out_path: str | Path,
    chunk_dir: str | Path,
    device: torch.device | str,
) -> int:
    """Sample `n_sentences` sentences from the LM in `model_dir` into `out_path` (column `sentence`)."""
    model_dir, chunk_dir, device = Path(model_dir), Path(chunk_dir), torch.device(device)
    max_length, chunk_size = int(settings["max_length"]), int(settings["chunk_size"])
    temperature, top_k = float(settings.get("temperature", 1.0)), int(settings.get("top_k", 0))
    with load_errors(model_dir, "the fine-tuned GPT-2"):
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device).eval()
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    if bos is None or eos is None:
        raise ConfigError("augment", f"tokenizer in {model_dir} has no start or end token")
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and max_length > limit:
        raise ConfigError("augment.max_length", f"{max_length} tokens; the model takes {limit} positions")
    cfg = model.config
    dtype = autocast_dtype(device, settings, kind="inference")
    batch_size = resolve_sampling_batch(
        settings, device, layers=int(getattr(cfg, "num_hidden_layers", 1)), hidden=int(getattr(cfg, "hidden_size", 1)),
        vocab=int(getattr(cfg, "vocab_size", 1)), max_length=max_length, value_bytes=2 if dtype is not None else 4,
    )
    oom = Path(chunk_dir) / OOM_MARKER
    batch_size = retry_batch(batch_size, oom, "augment.batch_size")  # half an out-of-memory attempt's

    manifest = {"model": content_digests({"model": model_dir}), "n_sentences": int(n_sentences), "seed": int(seed),
                "settings": {k: settings[k] for k in sorted(settings)}, "numerics": numerics_record(device, dtype)}
    chunks = ChunkStore(chunk_dir, manifest)
    sizes = [min(chunk_size, n_sentences - start) for start in range(0, n_sentences, chunk_size)]
    done = sum(size for j, size in enumerate(sizes) if chunks.done(j))
    lanes = Lanes.for_device(device)
    log.info("sampling %d sentences (seed %d) from %s in %d chunks of %d, batches of %d (%s, %s, %d lane%s); %d "
             "already sampled", n_sentences, seed, model_dir, len(sizes), chunk_size, batch_size, dtype or "fp32",
             "preallocated GPT-2 cache" if Gpt2Decoder.supports(model) else "model's own cache", lanes.n,
             "s" if lanes.n > 1 else "", done)
    bar = progress(total=n_sentences, initial=done, desc="sample", unit="sent")
    try:
        for j, size in enumerate(sizes):
            if chunks.done(j):
                continue
            with halve_on_oom(batch_size, oom, "augment.batch_size", device):
                ids = sample_rows(model, size, seed=seed, chunk=j, bos=bos, eos=eos, max_length=max_length,
                                  batch_size=batch_size, temperature=temperature, top_k=top_k, device=device,
                                  settings=settings, on_done=bar.update, lanes=lanes)
            texts = [normalise(t) for t in tokenizer.batch_decode(ids, skip_special_tokens=False,
                                                                  clean_up_tokenization_spaces=False)]
            kept = [t for t in texts if t]
            chunks.write(j, pa.table({"sentence": pa.array(kept, pa.string())}, schema=SCHEMA))
            log.info("chunk %d: %d sentences sampled, mean %.1f tokens, %d at max_length, %d empty after "
                     "normalisation (dropped)", j, size, np.mean([len(i) for i in ids]),
                     sum(len(i) == max_length for i in ids), size - len(kept))
    finally:
        bar.close()
        lanes.close()
    clear_oom(oom)
    n_rows = chunks.join(len(sizes), out_path, SCHEMA)
    n_unique = len(set(pq.read_table(out_path, columns=["sentence"]).column("sentence").to_pylist()))
    log.info("wrote %s: %d sentences; of the %d sampled, %d were empty after normalisation (dropped); %d repeat "
             "an earlier sentence of this shard exactly (kept)", out_path, n_rows, n_sentences, n_sentences - n_rows,
             n_rows - n_unique)
    return n_rows

"""Sample augmentation sentences from the fine-tuned GPT-2: `results/augment/{task}/shard{i}.parquet`.

Ancestral sampling in batches with the KV cache: the first step feeds the start token, every later step feeds
only the token just sampled (the prefix is never re-run). A row ends at the end token (not kept) or after
`max_length` tokens. Finished rows are dropped from the batch, and their KV-cache rows with them, whenever they
make up an eighth of it, so compute follows the live sequences. Text is decoded, stripped and kept as is
(tabs, quotes, newlines, emoji and empty strings included).

A shard is written in chunks of `chunk_size` sentences (`chunk_dir/chunk{j:05d}.parquet`, atomically); chunk j
draws from its own generator seeded from (seed, j), so a restarted job skips finished chunks and reproduces the
rest exactly. The chunks are then concatenated into `out_path` and removed. `chunk_dir/manifest.json` records
what the chunks depend on; chunks made under other settings or another model are discarded.

Settings (`augment` section): `max_length`, `batch_size`, `temperature` (0: greedy), `top_k` (0: full
distribution), `chunk_size`, optional `bf16` (autocast on CUDA).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from .errors import ConfigError
from .io import atomic_path, read_json, write_json
from .runtime import progress
from .training import autocast

log = logging.getLogger(__name__)

#: Finished rows are compacted out of the batch once they are at least this fraction of it.
COMPACT_FRACTION = 1 / 8


def chunk_generator(seed: int, chunk: int, device: torch.device) -> torch.Generator:
    """The generator of one chunk, seeded from (seed, chunk) alone."""
    state = int(np.random.SeedSequence([seed, chunk]).generate_state(1, dtype=np.uint64)[0] >> 1)
    return torch.Generator(device=device).manual_seed(state)


def next_tokens(logits: torch.Tensor, temperature: float, top_k: int, generator: torch.Generator) -> torch.Tensor:
    """One token per row from `logits` (rows, vocab): greedy at temperature 0, else sampled (top-k if k > 0)."""
    logits = logits.float()
    if temperature <= 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator).squeeze(1)


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
) -> list[list[int]]:
    """Sample `n` sequences together; each is the token ids after the start token, without the end token.

    `on_done(k)` is called as k rows finish; `trace`, when a list, gets `(rows, logits)` for every step: the
    original indices of the live rows and their next-token logits (on the CPU), for tests.
    """
    tokens = torch.full((n, max_length), eos, dtype=torch.long, device=device)
    length = torch.full((n,), max_length, dtype=torch.long, device=device)
    rows = torch.arange(n, device=device)  # original index of each batch row
    live = torch.ones(n, dtype=torch.bool, device=device)
    feed = torch.full((n, 1), bos, dtype=torch.long, device=device)
    past = None
    for t in range(max_length):
        with autocast(device, settings or {}):
            out = model(input_ids=feed, past_key_values=past, use_cache=True)
        past, logits = out.past_key_values, out.logits[:, -1, :]
        if trace is not None:
            trace.append((rows[live].cpu(), logits[live].float().cpu()))
        nxt = torch.where(live, next_tokens(logits, temperature, top_k, generator), eos)
        tokens[rows, t] = nxt
        ended = live & (nxt == eos)
        length[rows[ended]] = t
        live &= ~ended
        n_ended, n_live = torch.stack([ended.sum(), live.sum()]).tolist()  # one device sync per step
        if on_done is not None:
            on_done(n_ended + (n_live if t == max_length - 1 else 0))
        if n_live == 0:
            break
        if len(live) - n_live >= max(1, math.ceil(len(live) * COMPACT_FRACTION)):
            keep = live.nonzero().squeeze(1)
            past.batch_select_indices(keep)
            rows, live, nxt = rows[keep], live[keep], nxt[keep]
        feed = nxt[:, None]
    tokens, length = tokens.cpu(), length.tolist()
    return [tokens[i, : length[i]].tolist() for i in range(n)]


def _fingerprint(model_dir: Path) -> list:
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(model_dir.iterdir()) if p.is_file()]


def _write_sentences(path: Path, sentences: list[str]) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(pa.table({"sentence": pa.array(sentences, pa.string())}), tmp)


def _prepare_chunk_dir(chunk_dir: Path, manifest: dict[str, Any]) -> None:
    chunk_dir.mkdir(parents=True, exist_ok=True)
    path = chunk_dir / "manifest.json"
    if path.exists() and read_json(path) == manifest:
        return
    stale = sorted(chunk_dir.glob("chunk*.parquet"))
    if stale:
        log.warning("discarding %d chunks in %s made under other settings or another model", len(stale), chunk_dir)
    for p in stale:
        p.unlink()
    write_json(path, manifest)


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
    max_length, batch_size = int(settings["max_length"]), int(settings["batch_size"])
    chunk_size = int(settings["chunk_size"])
    temperature, top_k = float(settings.get("temperature", 1.0)), int(settings.get("top_k", 0))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device).eval()
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    if bos is None or eos is None:
        raise ConfigError("augment", f"tokenizer in {model_dir} has no start or end token")
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and max_length > limit:
        raise ConfigError("augment.max_length", f"{max_length} tokens; the model takes {limit} positions")

    manifest = {"model": _fingerprint(model_dir), "n_sentences": int(n_sentences), "seed": int(seed),
                "settings": {k: settings[k] for k in sorted(settings)}}
    _prepare_chunk_dir(chunk_dir, manifest)
    sizes = [min(chunk_size, n_sentences - start) for start in range(0, n_sentences, chunk_size)]
    paths = [chunk_dir / f"chunk{j:05d}.parquet" for j in range(len(sizes))]
    done = sum(size for size, path in zip(sizes, paths) if path.exists())
    log.info("sampling %d sentences (seed %d) from %s in %d chunks; %d already sampled", n_sentences, seed,
             model_dir, len(sizes), done)
    bar = progress(total=n_sentences, initial=done, desc="sample", unit="sent")
    for j, (size, path) in enumerate(zip(sizes, paths)):
        if path.exists():
            continue
        generator = chunk_generator(seed, j, device)
        ids: list[list[int]] = []
        for start in range(0, size, batch_size):
            ids += sample_batch(
                model, min(batch_size, size - start), bos=bos, eos=eos, max_length=max_length,
                temperature=temperature, top_k=top_k, generator=generator, device=device, settings=settings,
                on_done=bar.update,
            )
        texts = [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=False,
                                                            clean_up_tokenization_spaces=False)]
        _write_sentences(path, texts)
        log.info("chunk %d: %d sentences, mean %.1f tokens, %d at max_length", j, size,
                 np.mean([len(i) for i in ids]), sum(len(i) == max_length for i in ids))
    bar.close()
    table = pa.concat_tables([pq.read_table(p) for p in paths]) if paths else \
        pa.table({"sentence": pa.array([], pa.string())})
    with atomic_path(out_path) as tmp:
        pq.write_table(table, tmp)
    for p in paths:
        p.unlink()
    (chunk_dir / "manifest.json").unlink(missing_ok=True)
    try:
        chunk_dir.rmdir()
    except OSError:
        pass
    log.info("wrote %s: %d sentences", out_path, table.num_rows)
    return table.num_rows

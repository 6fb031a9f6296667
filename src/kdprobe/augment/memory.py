"""How many sequences GPT-2 samples at once (`augment.batch_size`): a number, or `auto`, from the GPU's free memory
and what one sampled row costs there (its KV cache, logits and one step's activations)."""

from __future__ import annotations

import logging
from typing import Any

import torch

from kdprobe.runtime import free_memory

log = logging.getLogger(__name__)


#: Sampling batch size on CPU when the settings leave it open: big enough for efficient matmuls on a few cores.
CPU_SAMPLING_BATCH = 1024
#: Bounds of the automatic GPU sampling batch size.
MAX_SAMPLING_BATCH = 8192


def sampling_bytes_per_row(layers: int, hidden: int, vocab: int, max_length: int, value_bytes: int) -> int:
    """Device memory one sampled row needs: its KV cache (keys and values of every layer for max_length + 1
    positions), its logits and sampling temporaries (fp32, about 4 vocab-sized rows) and the activations of one
    step (about 16 x hidden, the MLP's 4x widening with room for temporaries)."""
    cache = 2 * layers * hidden * (max_length + 1) * value_bytes
    logits = 4 * vocab * 4
    activations = 16 * hidden * value_bytes + max_length * 8
    return cache + logits + activations


def sampling_batch_size(
    free_bytes: int,
    *,
    layers: int,
    hidden: int,
    vocab: int,
    max_length: int,
    value_bytes: int = 2,
    fraction: float = 0.7,
    multiple: int = 64,
    cap: int = MAX_SAMPLING_BATCH,
) -> int:
    """Rows to sample together so that their state fits `fraction` of `free_bytes` (the model's weights are
    already loaded and so not free): a multiple of `multiple` when that leaves at least one, at most `cap`."""
    if free_bytes <= 0:
        return 1
    per_row = sampling_bytes_per_row(layers, hidden, vocab, max_length, value_bytes)
    rows = int(free_bytes * fraction) // per_row
    if rows >= multiple:
        rows -= rows % multiple
    return int(max(1, min(cap, rows)))


def resolve_sampling_batch(settings: dict[str, Any], device: torch.device, *, layers: int, hidden: int,
                           vocab: int, max_length: int, value_bytes: int) -> int:
    """`settings['batch_size']` when it is a number; when it is absent, null, 0 or 'auto': from the free memory
    of a CUDA device (`sampling_batch_size`), or `CPU_SAMPLING_BATCH` on the CPU."""
    value = settings.get("batch_size")
    if value not in (None, 0, "auto"):
        return int(value)
    free = free_memory(device)
    if free is None:
        return CPU_SAMPLING_BATCH
    rows = sampling_batch_size(free, layers=layers, hidden=hidden, vocab=vocab, max_length=max_length,
                               value_bytes=value_bytes)
    log.info("sampling batch size %d from %.1f GiB free on %s", rows, free / 2**30, device)
    return rows

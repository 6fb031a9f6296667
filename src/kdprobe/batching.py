"""Token id sequences packed in one array, padded batches cut from them, and length-grouped epoch orders.

One padding implementation serves every stage (teacher and GPT-2 fine-tuning, teacher logits, the students and
their predictions and encodings): `PackedIds.padded` gathers a batch's rows from the flat array in two vectorised
operations; `pad_batch` packs a list of sequences first and pads through it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

#: Length grouping: shuffled examples are sorted by length within chunks of this many batches (as Hugging Face's
#: LengthGroupedSampler), so a batch pads little yet the order stays random.
CHUNK_BATCHES = 50


class PackedIds:
    """Many variable-length id sequences in one flat int32 array (lists of Python ints would cost ~10x more)."""

    def __init__(self, sequences: Sequence[Sequence[int]]):
        self.lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        self.offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
        np.cumsum(self.lengths, out=self.offsets[1:])
        parts = [np.asarray(s, dtype=np.int32) for s in sequences]
        self.flat = np.concatenate(parts) if parts else np.zeros(0, np.int32)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.flat[self.offsets[i] : self.offsets[i + 1]]

    def batch(self, idx: Sequence[int]) -> list[np.ndarray]:
        return [self[i] for i in idx]

    def padded(self, idx: Sequence[int] | np.ndarray, pad_id: int) -> dict[str, torch.Tensor]:
        """Sequences `idx` right-padded with `pad_id` to their longest (at least 1 column): `input_ids`,
        `attention_mask` (int64, CPU), in two vectorised gathers instead of a loop over rows."""
        idx = np.asarray(idx, dtype=np.int64)
        lengths = self.lengths[idx]
        width = max(int(lengths.max()) if len(idx) else 0, 1)
        cols = np.arange(width, dtype=np.int64)
        mask = cols[None, :] < lengths[:, None]
        where = np.minimum(self.offsets[idx][:, None] + cols[None, :], max(len(self.flat) - 1, 0))
        ids = np.where(mask, self.flat[where] if len(self.flat) else 0, pad_id).astype(np.int64)
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask.astype(np.int64))}


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad id sequences to the longest (at least 1 column): `input_ids`, `attention_mask` (int64, CPU)."""
    return PackedIds(sequences).padded(np.arange(len(sequences)), pad_id)


def epoch_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Length-grouped shuffled batches of one epoch: a permutation cut into chunks of `CHUNK_BATCHES` batches, each
    chunk sorted by length and cut into batches, then the batch order shuffled. A pure function of its arguments,
    so a resumed run finds the epoch's order again."""
    lengths = np.asarray(lengths)
    rng = np.random.default_rng([int(seed), int(epoch)])
    perm = rng.permutation(len(lengths))
    chunk = batch_size * CHUNK_BATCHES
    batches: list[np.ndarray] = []
    for start in range(0, len(perm), chunk):
        idx = perm[start : start + chunk]
        idx = idx[np.argsort(lengths[idx], kind="stable")]
        batches.extend(idx[i : i + batch_size] for i in range(0, len(idx), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]

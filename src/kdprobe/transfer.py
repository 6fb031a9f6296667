"""Teacher logits for the transfer set (`results/transfer/{task}/{train,shard*}.parquet`).

`write_transfer` tokenises every sentence once with the teacher's tokenizer (special tokens included, truncated
to `max_length`), runs the teacher in length-sorted batches padded only to each batch's longest sentence, and
writes one row per input sentence in input order: `sentence` (string), `input_ids` (list<int32>), `logits`
(list<float32>), `label` (string, null for augmented sentences). Text is stored as given, whatever it contains;
logits are checked finite before a chunk is written (`errors.NonFiniteError`).

Sentences are processed `STREAM_BATCHES` batches at a time, each chunk written to its own parquet file in a
state directory (`kdprobe.chunks`) and the chunks joined at the end, so memory stays flat however large the shard
and a restarted job skips the chunks already done. Settings (`logits` section): `batch_size`, `max_length`,
optional `bf16` (`true`: bf16 autocast on a bf16-capable GPU; default fp32, as the thesis), optional `compile`
(`torch.compile` the teacher). A retry after CUDA ran out of memory runs half the batch (`runtime.retry_batch`);
the chunk manifest records the device and dtype.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import torch

from kdprobe.chunks import ChunkStore
from kdprobe.digest import content_digests
from kdprobe.logs import progress
from kdprobe.models import check_finite_logits, infer_logits, load_hf
from kdprobe.runtime import (OOM_MARKER, autocast_dtype, clear_oom, halve_on_oom, maybe_compile, numerics_record,
                             retry_batch)

log = logging.getLogger(__name__)

#: Sentences are tokenised, run and written (as one parquet row group) this many batches at a time: enough batches
#: for length sorting to pad little, few enough sentences to keep memory flat.
STREAM_BATCHES = 32

SCHEMA = pa.schema([
    ("sentence", pa.string()),
    ("input_ids", pa.list_(pa.int32())),
    ("logits", pa.list_(pa.float32())),
    ("label", pa.string()),
])


def _list_array(rows: Sequence[Sequence[Any]] | np.ndarray, dtype: type) -> pa.Array:
    """A pyarrow list array of `dtype` values, built from flat values and offsets (no per-row objects)."""
    if isinstance(rows, np.ndarray):  # (n, width): equal-length rows
        lengths = np.full(rows.shape[0], rows.shape[1] if rows.ndim == 2 else 0, dtype=np.int64)
        values = rows.astype(dtype).ravel()
    else:
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        values = np.fromiter((v for r in rows for v in r), dtype=dtype, count=int(lengths.sum()))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))


def _digest(sentences: Sequence[str], labels: Sequence[str | None] | None) -> str:
    """A hash of the inputs, so chunks of other sentences are never reused."""
    digest = hashlib.sha256()
    for i, sentence in enumerate(sentences):
        digest.update(sentence.encode("utf-8", "surrogatepass") + b"\0")
        digest.update((labels[i] or "").encode() + b"\1" if labels is not None else b"\2")
    return digest.hexdigest()


def write_transfer(
    teacher_dir: str | Path,
    sentences: Sequence[str],
    labels: Sequence[str | None] | None,
    settings: dict[str, Any],
    out_path: str | Path,
    device: torch.device | str,
    chunk_dir: str | Path | None = None,
) -> int:
    """Write the teacher's logits for `sentences` (labels: one name or None per sentence, or None for all)
    to `out_path`; return the number of rows.

    `STREAM_BATCHES` batches of sentences at a time are tokenised, run (length-sorted within the chunk) and written
    as one chunk under `chunk_dir` (default: beside `out_path`), so memory does not grow with the number of
    sentences beyond the text itself and a restart resumes at the first missing chunk.
    """
    device = torch.device(device)
    sentences = sentences if isinstance(sentences, list) else list(sentences)
    for i, s in enumerate(sentences):
        if not isinstance(s, str):
            raise ValueError(f"sentence {i} is {type(s).__name__}, not str")
    if labels is not None and len(labels) != len(sentences):
        raise ValueError(f"{len(labels)} labels for {len(sentences)} sentences")
    tokenizer, model = load_hf(teacher_dir)
    model.to(device)
    forward = maybe_compile(model, settings)
    max_length, batch_size = int(settings["max_length"]), int(settings["batch_size"])
    state_dir, dtype = Path(chunk_dir or f"{out_path}.chunks"), autocast_dtype(device, settings, kind="inference")
    oom = Path(state_dir) / OOM_MARKER
    run_batch = retry_batch(batch_size, oom, "logits.batch_size")  # half an out-of-memory attempt's
    log.info("teacher %s: %d sentences (max_length %d, batch %d, %s)", teacher_dir, len(sentences), max_length,
             run_batch, dtype or "fp32")
    chunk = STREAM_BATCHES * batch_size  # the configured batch: a retry's halved batches keep the chunks
    starts = range(0, max(len(sentences), 1), chunk)
    manifest = {"teacher": content_digests({"teacher": teacher_dir}), "settings": {k: settings[k] for k in sorted(settings)},
                "sentences": _digest(sentences, labels), "numerics": numerics_record(device, dtype)}
    chunks = ChunkStore(state_dir, manifest)
    done = sum(len(sentences[start: start + chunk]) for j, start in enumerate(starts) if chunks.done(j))
    if done:
        log.info("resuming: %d of %d sentences already have logits", done, len(sentences))
    bar = progress(total=len(sentences), initial=done, desc="logits", unit="sent")
    n_tokens = 0
    for j, start in enumerate(starts):
        if chunks.done(j):
            continue
        part = sentences[start : start + chunk]
        input_ids = (
            tokenizer(part, truncation=True, max_length=max_length, return_attention_mask=False,
                      return_token_type_ids=False)["input_ids"]
            if part else []
        )
        n_tokens += sum(map(len, input_ids))
        with halve_on_oom(run_batch, oom, "logits.batch_size", device):
            logits = infer_logits(forward, input_ids, run_batch, tokenizer.pad_token_id, device, settings, bar,
                                  n_classes=model.config.num_labels)
        check_finite_logits(logits, lambda i: f"teacher {teacher_dir}, sentence {start + i} {part[i][:80]!r}",
                            check="the teacher's weights (rule teacher) and the sentence")
        part_labels = list(labels[start : start + chunk]) if labels is not None else [None] * len(part)
        chunks.write(j, pa.Table.from_arrays(
            [
                pa.array(part, pa.string()),
                _list_array(input_ids, np.int32),
                _list_array(logits, np.float32),
                pa.array(part_labels, pa.string()),
            ],
            schema=SCHEMA,
        ))
    clear_oom(oom)
    chunks.join(len(starts), out_path, SCHEMA)
    bar.close()
    log.info("wrote %s: %d rows (%d tokens run now), %d classes", out_path, len(sentences), n_tokens,
             model.config.num_labels)
    return len(sentences)

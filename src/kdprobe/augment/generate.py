"""Generated transfer sets of the kinds `rules` and `random_words` (rule `generate`), one shard per job.

`generate_shard(kind, train_tsv, settings, out_path, chunk_dir)` writes `results/augment/{task}/{kind}/shard{i}.parquet`
(column `sentence`, as GPT-2's shards, so rule `logits` reads it the same way) through the chunk store of sampling
(`kdprobe.chunks`): chunk j draws from its own generator seeded from (seed, j), so a restarted job skips the chunks
done and reproduces the rest exactly; the manifest holds the training file's digest and the settings.

- `rules` (`kdprobe.augment.rules`): shard i of `shards` takes the i-th contiguous share of the training
  sentences (`config.shard_sizes`); every job tags the whole training set (the swap dictionary and the sentences
  seen are the training set's), a chunk holds the variants of `max(1, chunk_size // variants)` training sentences,
  and a variant is kept only when unseen in the training set and this shard (d-bert's filter). Duplicates across
  shards are kept, and counted by the transfer summary.
- `random_words` (`kdprobe.augment.random_words`): `sentences` word sequences (this shard's share of
  `augment.random_words.sentences`), chunks of `chunk_size`.

The settings, as kdprobe.config's generated_shard_settings makes them: the seed (augment.seed + shard), the chunk
size, and for rules the shard's index, the number of shards and the augment.rules section, for random_words the
shard's number of sentences.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kdprobe.augment.random_words import random_sentences, vocabulary
from kdprobe.augment.rules import RulesSettings, dlite_variants, tag_training_set, words
from kdprobe.chunks import ChunkStore
from kdprobe.config import shard_sizes
from kdprobe.digest import content_digests
from kdprobe.errors import ConfigError
from kdprobe.splits import read_sentences
from kdprobe.transfer_sets import GENERATED_KINDS

log = logging.getLogger(__name__)

SCHEMA = pa.schema([("sentence", pa.string())])


def chunk_seed(seed: int, chunk: int) -> int:
    """The seed of chunk `chunk`'s generator: a fixed function of (seed, chunk)."""
    return int(np.random.SeedSequence([seed, chunk]).generate_state(1, dtype=np.uint64)[0] >> 1)


def _rules_chunks(train: list[str], settings: dict[str, Any]) -> tuple[list[int], Callable[[int, set], list[str]]]:
    rules = RulesSettings.from_section(settings.get("rules") or {})
    tagged = tag_training_set(train, rules.pos)
    sizes = shard_sizes(len(train), int(settings["shards"]))
    first = sum(sizes[: int(settings["shard"])])
    mine = tagged.sentences[first : first + sizes[int(settings["shard"])]]
    per_chunk = max(1, int(settings["chunk_size"]) // rules.variants)
    starts = list(range(0, len(mine), per_chunk)) or [0]
    log.info("d-lite on training sentences %d-%d of %d (%d tag classes, %s tagger): %d tries each, p_mask %g, "
             "p_pos %g, p_ng %g, n up to %d", first, first + len(mine), len(train), len(tagged.by_tag), rules.pos,
             rules.variants, rules.p_mask, rules.p_pos, rules.p_ng, rules.max_ng)

    def chunk(j: int, earlier: set[str]) -> list[str]:
        tagged.seen |= earlier
        rng = random.Random(chunk_seed(int(settings["seed"]), j))
        return [s for ws, tags in mine[starts[j] : starts[j] + per_chunk]
                for s in dlite_variants(ws, tags, tagged, rules, rng)]

    return [min(per_chunk, len(mine) - s) for s in starts], chunk


def _random_chunks(train: list[str], settings: dict[str, Any]) -> tuple[list[int], Callable[[int, set], list[str]]]:
    vocab = vocabulary(words(s) for s in train)
    n, size = int(settings["sentences"]), int(settings["chunk_size"])
    log.info("random words: %d sentences from a vocabulary of %d words (training set, by frequency), lengths of "
             "%d training sentences", n, len(vocab.words), len(vocab.lengths))
    sizes = [min(size, n - start) for start in range(0, n, size)]

    def chunk(j: int, earlier: set[str]) -> list[str]:
        return random_sentences(vocab, sizes[j], np.random.default_rng(chunk_seed(int(settings["seed"]), j)))

    return sizes, chunk


def generate_shard(kind: str, train_tsv: str | Path, settings: dict[str, Any], out_path: str | Path,
                   chunk_dir: str | Path) -> int:
    """Generate one shard of transfer-set `kind` (`GENERATED_KINDS`) from the training split `train_tsv` into
    `out_path`; return the number of sentences written."""
    if kind not in GENERATED_KINDS:
        raise ConfigError("students.<student>.transfer", f"{kind!r} is not generated here; {list(GENERATED_KINDS)}")
    train, _ = read_sentences(train_tsv)
    sizes, make = (_rules_chunks if kind == "rules" else _random_chunks)(train, settings)
    manifest = {"kind": kind, "train": content_digests({"train": train_tsv}),
                "settings": {k: settings[k] for k in sorted(settings)}}
    chunks = ChunkStore(chunk_dir, manifest)
    earlier: set[str] = set()
    for j in range(len(sizes)):
        if chunks.done(j):  # a finished chunk's sentences are seen by the later ones (rules' filter)
            if kind == "rules":
                earlier |= set(pq.read_table(chunks.path(j)).column("sentence").to_pylist())
            continue
        sentences = make(j, earlier)
        chunks.write(j, pa.table({"sentence": pa.array(sentences, pa.string())}, schema=SCHEMA))
        if kind == "rules":
            earlier |= set(sentences)
        log.info("chunk %d: %d sentences", j, len(sentences))
    n_rows = chunks.join(len(sizes), out_path, SCHEMA)
    log.info("wrote %s: %d %s sentences", out_path, n_rows, kind)
    return n_rows

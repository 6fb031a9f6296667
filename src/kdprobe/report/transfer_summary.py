"""The transfer sets of one task side by side (rule transfer_summary): `results/summary/transfer/{task}.csv`.

One row per transfer-set kind some run uses (`students.<student>.transfer`), in `transfer_sets.KINDS` order:

- `sentences`: the whole set (training + augmented); `training`, `augmented`: its parts;
- `duplicates`: augmented sentences that repeat an earlier augmented sentence exactly (across all shards);
  `training_duplicates`: augmented sentences equal to a training sentence;
- `empty`: augmented sentences with nothing but white space;
- `mean_words`, `training_mean_words`: mean length in white-space separated words of the augmented and of the
  training sentences;
- `fractions`: the fractions of the set the runs use (`transfer: {kind, fraction}`), and `used`: the rows each
  keeps (`transfer_sets.subset_mask`), both space separated.

`none` has no augmented part: its generated-text columns are 0 (mean_words empty).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from kdprobe.errors import InputError
from kdprobe.splits import read_sentences
from kdprobe.transfer_sets import KINDS, TransferKind, subset_mask

log = logging.getLogger(__name__)

COLUMNS = ["kind", "sentences", "training", "augmented", "duplicates", "training_duplicates", "empty",
           "mean_words", "training_mean_words", "fractions", "used"]


def _shard_sentences(path: str | Path) -> list[str]:
    try:
        sentences = pq.read_table(path, columns=["sentence"]).column("sentence").to_pylist()
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(path, f"not a transfer-set shard with a sentence column ({exc})") from None
    if None in sentences:
        raise InputError(path, f"null sentence in row {sentences.index(None)}")
    return sentences


def _mean_words(sentences: Sequence[str]) -> float:
    return float(np.mean([len(s.split()) for s in sentences])) if sentences else float("nan")


def kind_row(kind: str, training: Sequence[str], shards: Sequence[str | Path], fractions: Sequence[float]) -> dict:
    """The summary row of transfer-set `kind`: the training sentences and its augmentation shards' files."""
    generated: list[str] = []
    parts = [("train", len(training))]
    for path in shards:
        rows = _shard_sentences(path)
        generated += rows
        parts.append((Path(path).stem, len(rows)))
    train_set = set(training)
    used = [int(subset_mask(TransferKind(kind, f), parts).sum()) for f in fractions]
    return {
        "kind": kind, "sentences": len(training) + len(generated), "training": len(training),
        "augmented": len(generated), "duplicates": len(generated) - len(set(generated)),
        "training_duplicates": sum(s in train_set for s in generated),
        "empty": sum(not s.strip() for s in generated), "mean_words": _mean_words(generated),
        "training_mean_words": _mean_words(training),
        "fractions": " ".join(f"{f:g}" for f in fractions), "used": " ".join(map(str, used)),
    }


def transfer_summary(train_tsv: str | Path, shards: Mapping[str, Sequence[str | Path]],
                     fractions: Mapping[str, Sequence[float]]) -> pd.DataFrame:
    """The table of the kinds in `shards` ({kind: its augmentation shards, [] for none}), each with the fractions
    its runs use (`fractions`, default [1])."""
    training, _ = read_sentences(train_tsv)
    rows = [kind_row(kind, training, shards[kind], sorted(fractions.get(kind, [1.0]), reverse=True))
            for kind in KINDS if kind in shards]
    for row in rows:
        log.info("%s: %d sentences (%d augmented; %d duplicates, %d of the training set, %d empty)", row["kind"],
                 row["sentences"], row["augmented"], row["duplicates"], row["training_duplicates"], row["empty"])
    return pd.DataFrame(rows, columns=COLUMNS)

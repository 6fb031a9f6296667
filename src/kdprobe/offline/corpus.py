"""The offline pre-training corpus: the real training sentences of every task (never dev or test)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import pandas as pd

from kdprobe.splits import read_split
from kdprobe.errors import InputError
from kdprobe.io import write_tsv

log = logging.getLogger(__name__)


def write_corpus(train_files: dict[str, str | Path], out_tsv: str | Path) -> list[str]:
    """Write the distinct sentences of the prepared `train.tsv` files (`{task: path}`) to `out_tsv` as a split
    TSV (`sentence`, `label` = the task it came from; first occurrence kept). Returns the sentences."""
    rows: dict[str, str] = {}
    for task, path in train_files.items():
        sentences = read_split(path)["sentence"].tolist()
        if not sentences:
            raise InputError(path, "no training sentences")
        before = len(rows)
        for sentence in sentences:
            rows.setdefault(sentence, task)
        log.info("corpus: %d sentences of %s (%d new) from %s", len(sentences), task, len(rows) - before, path)
    write_tsv(out_tsv, pd.DataFrame({"sentence": list(rows), "label": list(rows.values())}))
    log.info("corpus: %d distinct sentences -> %s", len(rows), out_tsv)
    return list(rows)


def read_corpus(path: str | Path) -> Sequence[str]:
    """The sentences of a corpus written by `write_corpus`."""
    return read_split(path)["sentence"].tolist()

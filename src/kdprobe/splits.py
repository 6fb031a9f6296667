"""Reading a prepared split: `resources/data/{task}/{train,dev,test}.tsv` (`sentence<TAB>label`, written by the
`data` stage) and `labels.txt` (one label name a line, line index = class index), and the transfer set's sources.

Every stage that reads a prepared task does it here: `read_split` / `read_labels` (the raw tables), `load_labels`
(checked: at least two), `label_ids` (names -> class indices, an unknown name an `InputError` at its line),
`load_split` (sentences and gold class indices of one split), `read_sentences` (a split TSV or an augmentation
parquet: the sentences to run a teacher on). `normalise` is how every sentence is written: stripped, each
whitespace run one space (generated sentences are normalised the same way).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from kdprobe.errors import InputError


def normalise(text: str) -> str:
    """Strip and collapse every run of whitespace (spaces, tabs, newlines) to one space."""
    return " ".join(text.split())


def read_split(path: str | Path) -> pd.DataFrame:
    """Read a `{train,dev,test}.tsv` of the data stage: string columns `sentence`, `label`."""
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def read_labels(path: str | Path) -> list[str]:
    """Label names of `labels.txt`, line index = class index; a name on two lines is an `InputError`."""
    first: dict[str, int] = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").split("\n"), start=1):
        if line and first.setdefault(line, n) != n:
            raise InputError(path, f"label {line!r} repeats line {first[line]}", n)
    return list(first)


def load_labels(data_dir: str | Path) -> list[str]:
    """`data_dir/labels.txt`, checked: it exists and names at least 2 labels."""
    path = Path(data_dir) / "labels.txt"
    if not path.exists():
        raise InputError(path, "labels.txt not found")
    labels = read_labels(path)
    if len(labels) < 2:
        raise InputError(path, f"need at least 2 labels, found {len(labels)}")
    return labels


def label_ids(path: str | Path, names: Sequence[str], labels: Sequence[str], first_line: int = 2) -> np.ndarray:
    """Class indices (int64) of label `names` read from `path` (row i on line `first_line + i`); a name outside
    `labels` is an `InputError` naming its line."""
    index = {name: i for i, name in enumerate(labels)}
    out = np.empty(len(names), dtype=np.int64)
    for row, name in enumerate(names):
        if name not in index:
            raise InputError(path, f"label {name!r} is not in labels.txt ({', '.join(labels)})", row + first_line)
        out[row] = index[name]
    return out


def load_split(data_dir: str | Path, split: str, labels: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Sentences and gold class indices of `data_dir/{split}.tsv`; unknown label names are InputErrors."""
    path = Path(data_dir) / f"{split}.tsv"
    if not path.exists():
        raise InputError(path, "split file not found")
    frame = read_split(path)
    missing = {"sentence", "label"} - set(frame.columns)
    if missing:
        raise InputError(path, f"missing column(s) {sorted(missing)} (header must be sentence<TAB>label)")
    return frame["sentence"].tolist(), label_ids(path, frame["label"].tolist(), labels)


def read_sentences(path: str | Path) -> tuple[list[str], list[str] | None]:
    """Sentences (and labels) of a transfer source: a split TSV (`sentence`, `label`) or an augmentation
    parquet (`sentence`; labels None)."""
    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path, columns=["sentence"])
        sentences = table.column("sentence").to_pylist()
        if None in sentences:
            raise InputError(path, f"null sentence in row {sentences.index(None)}")
        return sentences, None
    frame = read_split(path)
    if list(frame.columns) != ["sentence", "label"]:
        raise InputError(path, f"expected columns sentence, label; found {', '.join(map(str, frame.columns))}", 1)
    return frame["sentence"].tolist(), frame["label"].tolist()

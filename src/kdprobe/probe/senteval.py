"""SentEval probing files (`data/probing/*.txt` of facebookresearch/SentEval).

Each line is `split<TAB>label<TAB>sentence`, split one of `tr`, `va`, `te` (train, dev, test). Labels are kept as
strings (`O`/`I`, `PRES`/`PAST`, words for WordContent, ...); `label_index` maps them to class indices.
Blank lines are skipped; a byte-order mark and CRLF line ends are accepted; every other malformed line (not
UTF-8, too long, not three columns, an unknown split, an empty label or sentence, a dev/test label the
training lines never have) is an `InputError` naming the file and line.
"""

from __future__ import annotations

from pathlib import Path

from kdprobe.io import read_lines
from kdprobe.errors import InputError

#: SentEval split tokens -> our split names, in the order results report them.
SPLITS = {"tr": "train", "va": "dev", "te": "test"}


def task_name(path: str | Path) -> str:
    """The probing task of a file: its stem (`past_present.txt` -> `past_present`)."""
    return Path(path).stem


def load(path: str | Path, max_sentences: int = 0) -> dict[str, tuple[list[str], list[str]]]:
    """Read a SentEval probing file into `{"train"|"dev"|"test": (sentences, labels)}`.

    Lines keep their file order within a split. `max_sentences > 0` keeps the first N lines of each split
    (deterministic; the rest of the file is still checked). Raises `InputError` for bytes that are not UTF-8, a
    line longer than `kdprobe.data.prepare.MAX_LINE_CHARS`, a line without exactly three tab-separated columns, an
    unknown split token, an empty label or sentence, a dev or test label that no training line of the file has
    (SentEval itself fails on those), or a split with no lines.
    """
    if max_sentences < 0:
        raise ValueError(f"max_sentences must be >= 0, got {max_sentences}")
    path = Path(path)
    data: dict[str, tuple[list[str], list[str]]] = {name: ([], []) for name in SPLITS.values()}
    counts = dict.fromkeys(SPLITS.values(), 0)
    train_labels: set[str] = set()
    first_seen: dict[str, int] = {}  # dev/test label -> its first line
    for lineno, line in read_lines(path):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) != 3:
            raise InputError(
                path, f"expected 3 tab-separated columns (split, label, sentence), found {len(cols)}", lineno
            )
        split, label, sentence = cols[0].strip(), cols[1].strip(), cols[2].strip()
        if split not in SPLITS:
            raise InputError(path, f"unknown split {split!r} (expected one of {', '.join(SPLITS)})", lineno)
        if not label:
            raise InputError(path, "empty label", lineno)
        if not sentence:
            raise InputError(path, "empty sentence", lineno)
        name = SPLITS[split]
        if name == "train":
            train_labels.add(label)
        else:
            first_seen.setdefault(label, lineno)
        counts[name] += 1
        if max_sentences and counts[name] > max_sentences:
            continue
        data[name][0].append(sentence)
        data[name][1].append(label)
    missing = [f"{tok} ({name})" for tok, name in SPLITS.items() if counts[name] == 0]
    if missing:
        raise InputError(path, f"no lines for split {', '.join(missing)}")
    unknown = sorted((line, label) for label, line in first_seen.items() if label not in train_labels)
    if unknown:
        line, label = unknown[0]
        raise InputError(path, f"label {label!r} does not occur in the training lines (tr)", line)
    return data


def label_index(data: dict[str, tuple[list[str], list[str]]]) -> dict[str, int]:
    """Class index of every label seen in any split, in sorted label order.

    Integer labels (SentenceLength, TreeDepth) sort numerically. Sorting over all splits (not train only) keeps
    a truncated file (`max_sentences`) usable when a dev or test label never occurs in the kept training lines;
    such a class is simply never predicted.
    """
    labels = {label for _, split_labels in data.values() for label in split_labels}
    numeric = all(label.lstrip("-").isdigit() for label in labels)
    labels = sorted(labels, key=int) if numeric else sorted(labels)
    return {label: i for i, label in enumerate(labels)}

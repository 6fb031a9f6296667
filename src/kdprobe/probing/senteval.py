"""SentEval probing files (`data/probing/*.txt` of facebookresearch/SentEval).

Each line is `split<TAB>label<TAB>sentence`, split one of `tr`, `va`, `te` (train, dev, test). Labels are kept as
strings (`O`/`I`, `PRES`/`PAST`, words for WordContent, ...); `label_index` maps them to class indices.
Blank lines are skipped; every other malformed line is an `InputError` naming the file and line.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError

#: SentEval split tokens -> our split names, in the order results report them.
SPLITS = {"tr": "train", "va": "dev", "te": "test"}


def task_name(path: str | Path) -> str:
    """The probing task of a file: its stem (`past_present.txt` -> `past_present`)."""
    return Path(path).stem


def load(path: str | Path, max_sentences: int = 0) -> dict[str, tuple[list[str], list[str]]]:
    """Read a SentEval probing file into `{"train"|"dev"|"test": (sentences, labels)}`.

    Lines keep their file order within a split. `max_sentences > 0` keeps the first N lines of each split
    (deterministic; the rest of the file is still checked). Raises `InputError` for a line without exactly three
    tab-separated columns, an unknown split token, an empty label or sentence, or a split with no lines.
    """
    if max_sentences < 0:
        raise ValueError(f"max_sentences must be >= 0, got {max_sentences}")
    path = Path(path)
    data: dict[str, tuple[list[str], list[str]]] = {name: ([], []) for name in SPLITS.values()}
    counts = dict.fromkeys(SPLITS.values(), 0)
    with open(path, encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.rstrip("\r\n")
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
            counts[name] += 1
            if max_sentences and counts[name] > max_sentences:
                continue
            data[name][0].append(sentence)
            data[name][1].append(label)
    missing = [f"{tok} ({name})" for tok, name in SPLITS.items() if counts[name] == 0]
    if missing:
        raise InputError(path, f"no lines for split {', '.join(missing)}")
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

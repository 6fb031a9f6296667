"""Raw task data -> `{train,dev,test}.tsv` and `labels.txt` (see docs/internals.md, "Files between stages").

Loaders for the raw formats of the study (`cola`, `sst2`, `rasa_md`, `tsv`) return `Example`s with normalised
sentences and label names; every malformed line is an `InputError` naming the file and line. `prepare_task`
reads a task's sources, carves missing dev/test sets out of train with a seeded stratified split when asked,
and writes the splits atomically.

Accepted: a UTF-8 byte-order mark, CRLF line ends, blank lines, a missing final newline. Refused (file and
line named): bytes that are not UTF-8, a line over `MAX_LINE_CHARS`, too few or too many columns, an empty
sentence or label, a label outside the known set (0/1 for GLUE; for dev/test, one the training data has), a
header line where none belongs (repeated, or in a headerless CoLA file), a file cut mid-line where that leaves
a line malformed, and a file with no examples.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd

from .errors import ConfigError, InputError
from .io import write_text, write_tsv

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
#: Formats whose test labels are hidden upstream (GLUE): without a test file, test.tsv repeats dev.tsv.
DEV_AS_TEST = ("cola", "sst2")
BINARY_LABELS = ("0", "1")


class Example(NamedTuple):
    sentence: str
    label: str
    line: int


def normalise(text: str) -> str:
    """Strip and collapse every run of whitespace (spaces, tabs, newlines) to one space."""
    return " ".join(text.split())


#: Longest line (in characters) any loader accepts. Real lines are far shorter (SST-2 < 300, SentEval < 600); a
#: longer one means lost line breaks (old Mac CR-only line ends, a quote swallowing newlines) or a binary file.
MAX_LINE_CHARS = 10_000


def read_lines(path: str | Path, max_chars: int = MAX_LINE_CHARS) -> list[tuple[int, str]]:
    """`(line number, text)` of every line of a UTF-8 file; a BOM and CR line ends are dropped.

    `InputError` (naming the line) for bytes that are not UTF-8 and for a line longer than `max_chars`.
    """
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(path, f"not valid UTF-8 ({err.reason} at byte {err.start})",
                         data[: err.start].count(b"\n") + 1) from None
    lines = [(n, line.rstrip("\r")) for n, line in enumerate(text.split("\n"), start=1)]
    for n, line in lines:
        if len(line) > max_chars:
            raise InputError(path, f"line of {len(line)} characters (limit {max_chars}): a missing line break?", n)
    return lines


def _columns(path: Path, n: int, line: str, expected: int, what: str) -> list[str]:
    cols = line.split("\t")
    if len(cols) != expected:
        raise InputError(path, f"expected {expected} tab-separated columns ({what}), found {len(cols)}", n)
    return cols


def _example(path: Path, n: int, sentence: str, label: str, binary: bool = False) -> Example:
    sentence, label = normalise(sentence), label.strip()
    if not sentence:
        raise InputError(path, "empty sentence", n)
    if binary and label not in BINARY_LABELS:
        hint = " (a header line?)" if label.lower() == "label" else ""
        raise InputError(path, f"label must be 0 or 1, found {label!r}{hint}", n)
    if not label:
        raise InputError(path, "empty label", n)
    return Example(sentence, label, n)


def read_cola(path: str | Path) -> list[Example]:
    """Public CoLA / GLUE CoLA: no header; source, label 0/1, original mark, sentence."""
    path = Path(path)
    out = []
    for n, line in read_lines(path):
        if line.strip():
            _source, label, _mark, sentence = _columns(path, n, line, 4, "source, label, mark, sentence")
            out.append(_example(path, n, sentence, label, binary=True))
    return out


def read_sst2(path: str | Path) -> list[Example]:
    """GLUE SST-2: header `sentence<TAB>label`, label 0/1."""
    path = Path(path)
    lines = [(n, line) for n, line in read_lines(path) if line.strip()]
    if not lines or _cells(lines[0][1]) != ("sentence", "label"):
        raise InputError(path, "expected the header 'sentence<TAB>label'", lines[0][0] if lines else None)
    out = []
    for n, line in lines[1:]:
        if _cells(line) == ("sentence", "label"):
            raise InputError(path, "repeated header line", n)
        out.append(_example(path, n, *_columns(path, n, line, 2, "sentence, label"), binary=True))
    return out


def _cells(line: str) -> tuple[str, ...]:
    return tuple(c.strip().lower() for c in line.split("\t"))


_TSV_HEADERS = {("sentence", "intent"), ("sentence", "label"), ("text", "intent"), ("text", "label")}


def read_tsv(path: str | Path) -> list[Example]:
    """`sentence<TAB>intent` rows, with or without a header row."""
    path = Path(path)
    lines = [(n, line) for n, line in read_lines(path) if line.strip()]
    if lines and _cells(lines[0][1]) in _TSV_HEADERS:
        lines = lines[1:]
    out = []
    for n, line in lines:
        if _cells(line) in _TSV_HEADERS:
            raise InputError(path, "repeated header line", n)
        out.append(_example(path, n, *_columns(path, n, line, 2, "sentence, intent")))
    return out


_ENTITY = re.compile(r"\[([^\[\]]+)\](?:\([^()]*\)|\{[^{}]*\})")
_ITEM = re.compile(r"^\s*[-*+]\s+(.*)$")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


_OPEN_ENTITY = re.compile(r"\[[^\[\]]+\](?:\([^()]*|\{[^{}]*)$")  # markup opened, never closed


def strip_entities(text: str) -> str:
    """Rasa entity markup `[text](entity)`, `[text](entity:value)`, `[text]{"entity": ...}` -> `text`."""
    return _ENTITY.sub(r"\1", text)


def read_rasa_md(path: str | Path) -> list[Example]:
    """Rasa NLU markdown: `## intent:NAME` then `- example` lines; synonym/regex/lookup sections are skipped.

    HTML comments are dropped (line numbers kept). Inside an intent section every non-blank line must be an
    example; an example before any `##` section, an intent section without examples (a doubled header line, a
    file cut after a header) and unterminated entity markup (`[text](ent`, a line cut short) are errors. An
    intent whose section appears twice collects the examples of both, as Rasa does.
    """
    path = Path(path)
    text = "\n".join(line for _, line in read_lines(path))
    text = _COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    out: list[Example] = []
    section: str | None = None  # None: before any section; "": a skipped section
    header = 0  # line of the current intent header
    section_size = 0

    def close_section() -> None:
        if section and not section_size:  # a header cut off from its examples, or a doubled header line
            raise InputError(path, f"intent {section!r} has no examples", header)

    for n, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("##"):
            close_section()
            kind, _, name = stripped.lstrip("#").strip().partition(":")
            section, header, section_size = "", n, 0
            if kind.strip() == "intent":
                section = name.strip()
                if not section:
                    raise InputError(path, "'## intent:' without an intent name", n)
            continue
        item = _ITEM.match(line)
        if section is None and item:
            raise InputError(path, "example before any '## intent:NAME' section", n)
        if section:
            if not item:
                raise InputError(path, f"expected '- example' in intent {section!r}, found {stripped[:40]!r}", n)
            sentence = strip_entities(item.group(1))
            unclosed = _OPEN_ENTITY.search(sentence)
            if unclosed:  # `[text](entity` with no `)`: a cut-off line or broken markup
                raise InputError(path, f"unterminated entity markup {sentence[unclosed.start():][:40]!r}", n)
            out.append(_example(path, n, sentence, section))
            section_size += 1
    close_section()
    return out


READERS: dict[str, Callable[[str | Path], list[Example]]] = {
    "cola": read_cola,
    "sst2": read_sst2,
    "rasa_md": read_rasa_md,
    "tsv": read_tsv,
}


def load_examples(fmt: str, path: str | Path) -> list[Example]:
    """Read one raw file in format `fmt` (a key of `READERS`); an `InputError` if it holds no examples."""
    examples = READERS[fmt](path)
    if not examples:
        raise InputError(path, "no examples")
    log.info("read %d examples from %s (%s)", len(examples), path, fmt)
    return examples


def stratified_split(
    examples: list[Example], n: int, rng: np.random.Generator, path: str | Path
) -> tuple[list[Example], list[Example]]:
    """Carve `n` examples out of `examples` with the class proportions kept; returns (rest, carved).

    Class quotas are `n * share` rounded by largest remainder (ties to the larger class, then label name).
    Every class keeps at least one example in the rest. Both parts keep the input order.
    """
    by_label: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        by_label.setdefault(ex.label, []).append(i)
    labels = sorted(by_label)
    if not 0 < n < len(examples):
        raise InputError(path, f"cannot carve {n} examples out of {len(examples)} (need 0 < n < {len(examples)})")
    exact = {lab: n * len(by_label[lab]) / len(examples) for lab in labels}
    quota = {lab: int(exact[lab]) for lab in labels}
    order = sorted(labels, key=lambda lab: (-(exact[lab] - quota[lab]), -len(by_label[lab]), lab))
    for lab in order[: n - sum(quota.values())]:
        quota[lab] += 1
    carved: list[int] = []
    for lab in labels:
        if quota[lab] >= len(by_label[lab]):
            raise InputError(
                path,
                f"split asks for {quota[lab]} examples of label {lab!r}, which has only {len(by_label[lab])} "
                "(at least one must stay in train)",
            )
        carved += rng.permutation(by_label[lab])[: quota[lab]].tolist()
    chosen = set(carved)
    rest = [ex for i, ex in enumerate(examples) if i not in chosen]
    return rest, [examples[i] for i in sorted(chosen)]


def _label_names(fmt: str, splits: dict[str, list[Example]]) -> list[str]:
    if fmt in DEV_AS_TEST:
        return list(BINARY_LABELS)
    return sorted({ex.label for ex in splits["train"]})


def _check_known(labels: list[str], examples: list[Example], path: str | Path) -> None:
    known = set(labels)
    for ex in examples:
        if ex.label not in known:
            raise InputError(path, f"label {ex.label!r} does not occur in the training data", ex.line)


def _distribution(examples: list[Example], labels: list[str]) -> dict[str, int]:
    counts = Counter(ex.label for ex in examples)
    return {lab: counts[lab] for lab in labels}


def prepare_task(task: str, source: dict, out_dir: str | Path) -> dict:
    """Read a task's raw data (`source` = `tasks.<task>.data`) and write `out_dir/{train,dev,test}.tsv`, `labels.txt`.

    Missing dev/test files are carved out of train by `source['split']` (`{dev, test, seed}`, stratified, test
    first); for GLUE formats without a test file, test repeats dev. `source['max_train']` (optional) then keeps a
    stratified sample of that many training examples, in file order (seed `split.seed`, default 0), for runs
    at reduced scale. Returns a summary (sizes, labels, counts).
    """
    key = f"tasks.{task}.data"
    fmt = source.get("format")
    if fmt not in READERS:
        raise ConfigError(f"{key}.format", f"unknown format {fmt!r} (expected one of {', '.join(READERS)})")
    split = source.get("split") or {}
    rng = np.random.default_rng(int(split.get("seed", 0)))
    train_path = source.get("train")
    if not train_path:
        raise ConfigError(f"{key}.train", "a training file is required")
    splits = {"train": load_examples(fmt, train_path)}
    paths = {"train": train_path}
    for name in ("test", "dev"):  # test is carved first, dev from what remains
        if source.get(name):
            paths[name] = source[name]
            splits[name] = load_examples(fmt, source[name])
        elif split.get(name):
            paths[name] = train_path
            splits["train"], splits[name] = stratified_split(splits["train"], int(split[name]), rng, train_path)
            log.info("carved %d %s examples out of %s (stratified, seed %s)", len(splits[name]), name,
                     train_path, split.get("seed", 0))
    if "dev" not in splits:
        raise ConfigError(key, "needs a 'dev' file or 'split.dev'")
    max_train = source.get("max_train")
    if max_train is not None and (isinstance(max_train, bool) or not isinstance(max_train, int) or max_train < 1):
        raise ConfigError(f"{key}.max_train", f"must be a positive integer, got {max_train!r}")
    if max_train and len(splits["train"]) > max_train:  # after dev/test are carved: those stay whole
        n_read = len(splits["train"])
        _, splits["train"] = stratified_split(splits["train"], max_train, rng, train_path)
        log.info("kept a stratified sample of %d of %d training examples (max_train, seed %s)", max_train, n_read,
                 split.get("seed", 0))
    test_is_dev = "test" not in splits
    if test_is_dev:
        if fmt not in DEV_AS_TEST:
            raise ConfigError(key, "needs a 'test' file or 'split.test'")
        splits["test"] = splits["dev"]
        log.info("no test file for %s: test.tsv repeats dev.tsv (GLUE test labels are hidden)", task)
    labels = _label_names(fmt, splits)
    for name in ("dev", "test"):
        _check_known(labels, splits[name], paths.get(name, paths["dev"]))

    out_dir = Path(out_dir)
    written: list[Path] = []
    try:  # all four files or none: a failure (a full disk) after some were written removes those again
        for name in SPLITS:
            frame = pd.DataFrame({"sentence": [ex.sentence for ex in splits[name]],
                                  "label": [ex.label for ex in splits[name]]})
            write_tsv(out_dir / f"{name}.tsv", frame)
            written.append(out_dir / f"{name}.tsv")
        write_text(out_dir / "labels.txt", "".join(f"{lab}\n" for lab in labels))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise

    summary = {
        "task": task,
        "labels": labels,
        "sizes": {name: len(splits[name]) for name in SPLITS},
        "distribution": {name: _distribution(splits[name], labels) for name in SPLITS},
        "test_is_dev": test_is_dev,
    }
    for name in SPLITS:
        log.info("%s %s: %d examples %s", task, name, summary["sizes"][name], summary["distribution"][name])
    log.info("wrote %s/{%s}.tsv and labels.txt (%d labels)", out_dir, ",".join(SPLITS), len(labels))
    return summary


def read_split(path: str | Path) -> pd.DataFrame:
    """Read a `{train,dev,test}.tsv` written by `prepare_task`: string columns `sentence`, `label`."""
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def read_labels(path: str | Path) -> list[str]:
    """Label names of `labels.txt`, line index = class index."""
    return [line for line in Path(path).read_text(encoding="utf-8").split("\n") if line]

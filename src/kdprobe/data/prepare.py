"""Raw task data -> `{train,dev,test}.tsv` and `labels.txt` (see docs/internals.md, "Files between stages").

Loaders for the raw formats of the study (`cola`, `sst2`, `rasa_md`, `rasa_yaml`, `tsv`, `sara_thesis`; Rasa's
formats are parsed by `kdprobe.data.rasa`) return `Example`s with normalised sentences and label names; every malformed line is an
`InputError` naming the file and line. `prepare_task` reads a task's sources (each a file, a list of files or a
directory), pseudonymises Rasa data when asked, reports duplicate examples and sentences with several labels,
carves missing dev/test sets out of train with a seeded stratified split when asked, and writes the splits
atomically.

Accepted: a UTF-8 byte-order mark, CRLF line ends, blank lines, a missing final newline. Refused (file and
line named): bytes that are not UTF-8, a line over `io.MAX_LINE_CHARS`, too few or too many columns, an empty
sentence or label, a label outside the known set (0/1 for GLUE; for dev/test, one the training data has), a
header line where none belongs (repeated, or in a headerless CoLA file), a file cut mid-line where that leaves
a line malformed, a label-first file read as `tsv`, an intent id that `int_to_intent.tsv` lacks (`sara_thesis`),
and a file with no examples.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd

from kdprobe.data import rasa
from kdprobe.errors import ConfigError, InputError
from kdprobe.io import read_lines, write_text, write_tsv
from kdprobe.registry import DEV_AS_TEST_FORMATS
from kdprobe.splits import normalise

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
BINARY_LABELS = ("0", "1")


class Example(NamedTuple):
    sentence: str
    label: str
    line: int
    path: str = ""  # the file it was read from


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
    return Example(sentence, label, n, str(path))


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


_INTEGER = re.compile(r"[+-]?[0-9]+")


def _is_int(cell: str) -> bool:
    """Whether a cell is an integer (ASCII digits, an optional sign, surrounding blanks)."""
    return bool(_INTEGER.fullmatch(cell.strip()))


def _refuse_label_first(path: Path, rows: list[tuple[int, list[str]]]) -> None:
    """Refuse `sentence<TAB>label` rows whose columns look swapped (the thesis's Sara split, `intent_id<TAB>text`):
    every sentence cell an integer, and a label cell that is not one; the error names the first such line. Files
    whose labels are all integers never trigger it, nor does any file with one real sentence. (The thesis's split
    has some integer texts, `enter_data` examples such as '5000'.)"""
    if rows and all(_is_int(cols[0]) for _, cols in rows):
        first = next((n for n, cols in rows if not _is_int(cols[1])), None)
        if first is not None:
            raise InputError(path, "every sentence (first column) is an integer and this label (second column) is "
                                   "text: the file looks label-first (intent_id<TAB>text, as the thesis's Sara "
                                   "split); format tsv reads sentence<TAB>label: use format sara_thesis", first)


def read_tsv(path: str | Path) -> list[Example]:
    """`sentence<TAB>intent` rows, with or without a header row; a label-first file is refused
    (`_refuse_label_first`)."""
    path = Path(path)
    lines = [(n, line) for n, line in read_lines(path) if line.strip()]
    if lines and _cells(lines[0][1]) in _TSV_HEADERS:
        lines = lines[1:]
    rows = []
    for n, line in lines:
        if _cells(line) in _TSV_HEADERS:
            raise InputError(path, "repeated header line", n)
        rows.append((n, _columns(path, n, line, 2, "sentence, intent")))
    _refuse_label_first(path, rows)
    return [_example(path, n, *cols) for n, cols in rows]


#: The file beside `sara_thesis` data files that names their intent ids (`id<TAB>name`, one a line, no header).
INTENT_NAMES = "int_to_intent.tsv"


def read_intent_names(path: str | Path) -> dict[int, str]:
    """`int_to_intent.tsv` as {id: intent name}: two columns, integer ids, neither an id nor a name twice."""
    path = Path(path)
    out: dict[int, str] = {}
    id_line: dict[int, int] = {}
    name_line: dict[str, int] = {}
    for n, line in read_lines(path):
        if not line.strip():
            continue
        ident, name = (cell.strip() for cell in _columns(path, n, line, 2, "intent id, intent name"))
        if not _is_int(ident):
            raise InputError(path, f"intent id must be an integer, found {ident!r}", n)
        if not name:
            raise InputError(path, "empty intent name", n)
        if int(ident) in id_line:
            raise InputError(path, f"intent id {ident} repeats line {id_line[int(ident)]}", n)
        if name in name_line:
            raise InputError(path, f"intent name {name!r} repeats line {name_line[name]}", n)
        out[int(ident)], id_line[int(ident)], name_line[name] = name, n, n
    if not out:
        raise InputError(path, "no intents")
    return out


def read_sara_thesis(path: str | Path) -> list[Example]:
    """The thesis's Sara split (samsucik/knowledge-distil-bert, `data/glue_data/Sara/{train,dev,test}.tsv`):
    `intent_id<TAB>text` rows, no header, the ids named by the `INTENT_NAMES` file in the same directory."""
    path = Path(path)
    mapping = path.parent / INTENT_NAMES
    if not mapping.is_file():
        raise InputError(path, f"format sara_thesis names the intent ids of this file by {mapping} (id<TAB>name), "
                               f"which does not exist")
    names = read_intent_names(mapping)
    out = []
    for n, line in read_lines(path):
        if not line.strip():
            continue
        ident, text = _columns(path, n, line, 2, "intent id, text")
        if not _is_int(ident):
            raise InputError(path, f"intent id must be an integer, found {ident.strip()!r} (format sara_thesis is "
                                   f"label-first: intent_id<TAB>text)", n)
        if int(ident) not in names:
            raise InputError(path, f"intent id {ident.strip()} is not in {mapping}", n)
        out.append(_example(path, n, text, names[int(ident)]))
    return out


def _rasa_examples(parse: Callable, path: str | Path, pseudonymise: rasa.Pseudonymiser | None) -> list[Example]:
    """Examples of a Rasa file parsed by `parse`: pseudonymised (optional), then entity markup stripped."""
    path = Path(path)
    out = []
    for n, intent, text in parse(path, read_lines(path)):
        if pseudonymise is not None:
            text = pseudonymise(text)
        sentence = rasa.strip_entities(text)
        unclosed = rasa.unterminated_markup(sentence)
        if unclosed:  # `[text](entity` with no `)`: a cut-off line or broken markup
            raise InputError(path, f"unterminated entity markup {unclosed[:40]!r}", n)
        out.append(_example(path, n, sentence, intent))
    return out


def read_rasa_md(path: str | Path, pseudonymise: rasa.Pseudonymiser | None = None) -> list[Example]:
    """Rasa NLU markdown (`## intent:NAME`, `- example`; see `kdprobe.data.rasa.parse_md`)."""
    return _rasa_examples(rasa.parse_md, path, pseudonymise)


def read_rasa_yaml(path: str | Path, pseudonymise: rasa.Pseudonymiser | None = None) -> list[Example]:
    """Rasa 2/3 NLU YAML (`nlu:` list of `- intent: NAME` with `examples: |`; see `kdprobe.data.rasa.parse_yaml`)."""
    return _rasa_examples(rasa.parse_yaml, path, pseudonymise)


READERS: dict[str, Callable[..., list[Example]]] = {
    "cola": read_cola,
    "sst2": read_sst2,
    "rasa_md": read_rasa_md,
    "rasa_yaml": read_rasa_yaml,
    "tsv": read_tsv,
    "sara_thesis": read_sara_thesis,
}
#: Formats whose readers take a `pseudonymise` argument (names are found by Rasa's entity markup).
RASA_FORMATS = ("rasa_md", "rasa_yaml")
#: File name endings that a directory given as a source stands for, per format.
SUFFIXES = {"cola": (".tsv",), "sst2": (".tsv",), "tsv": (".tsv",), "rasa_md": (".md",),
            "rasa_yaml": (".yml", ".yaml"), "sara_thesis": (".tsv",)}
#: Files a format's reader reads beside each data file (in its directory): never data themselves.
COMPANIONS = {"sara_thesis": (INTENT_NAMES,)}


def raw_files(fmt: str, value: str | Path | list) -> list[Path]:
    """The files a source setting (`train`, `dev`, `test`) stands for, in reading order.

    A path, or a list of paths, read in the order given; a directory stands for every file below it whose name
    ends in one of the format's `SUFFIXES` in any case (`NLU.YML` too), sorted by path (hidden files and folders
    left out, and the format's `COMPANIONS`). A path that does not exist is returned as it is (the reader then
    names it; Snakemake may still have to make it).
    """
    out: list[Path] = []
    for item in value if isinstance(value, (list, tuple)) else [value]:
        path = Path(item)
        if path.is_dir():
            out += sorted(f for f in path.rglob("*") if f.is_file() and f.name.lower().endswith(SUFFIXES[fmt])
                          and f.name not in COMPANIONS.get(fmt, ())
                          and not any(part.startswith(".") for part in f.relative_to(path).parts))
        else:
            out.append(path)
    return out


def companion_files(fmt: str, files: list[Path]) -> list[Path]:
    """The files besides the data files `files` that format `fmt`'s reader also reads (`COMPANIONS`, in each data
    file's directory), each once, in order: inputs of rule prepare_data too (common.smk's `raw_inputs`)."""
    return list(dict.fromkeys(Path(f).parent / name for f in files for name in COMPANIONS.get(fmt, ())))


def _where(value: str | Path | list) -> str:
    """A source setting as one string for messages: the path, or the paths joined by ', '."""
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def load_examples(fmt: str, value: str | Path | list, pseudonymise: rasa.Pseudonymiser | None = None
                  ) -> list[Example]:
    """Read the files of one source setting (`raw_files`) in format `fmt` (a key of `READERS`), concatenated.

    A file named in the setting must hold examples (`InputError` otherwise); a file found in a directory that holds
    none (a Rasa domain, stories or responses file; lookup tables) is skipped and logged.
    """
    named = {Path(v) for v in (value if isinstance(value, (list, tuple)) else [value])}
    files = raw_files(fmt, value)
    if not files:
        raise InputError(_where(value), f"no files ending in {' or '.join(SUFFIXES[fmt])} in this directory")
    reader = partial(READERS[fmt], pseudonymise=pseudonymise) if fmt in RASA_FORMATS else READERS[fmt]
    out: list[Example] = []
    for path in files:
        examples = reader(path)
        if examples:
            log.info("read %d examples from %s (%s)", len(examples), path, fmt)
        elif path in named:
            raise InputError(path, "no examples")
        else:
            log.info("no examples in %s (%s): skipped", path, fmt)
        out += examples
    if not out:
        raise InputError(_where(value), "no examples")
    return out


def split_size(value: int | float, n_read: int, key: str) -> int:
    """A `split.test` / `split.dev` setting as a number of examples.

    An integer >= 1 is a count; a number in (0, 1) is that fraction of the `n_read` examples read (before
    anything is carved out: `{test: 0.2, dev: 0.2}` leaves 60% for training), rounded half up.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 \
            or (value >= 1 and value != int(value)):
        raise ConfigError(key, f"must be a count (an integer >= 1) or a fraction in (0, 1), got {value!r}")
    if value >= 1:
        return int(value)
    n = int(value * n_read + 0.5)
    if n < 1:
        raise ConfigError(key, f"{value} of {n_read} examples is not one example")
    return n


def _quotas(sizes: dict[str, int], n: int, reserve: int) -> dict[str, int]:
    """Per-label quotas summing to `n`, proportional to `sizes` by largest remainder, each within
    [1, size - reserve]. Ties go to the larger class, then the label name. The caller checks feasibility."""
    total = sum(sizes.values())
    exact = {lab: n * size / total for lab, size in sizes.items()}
    high = {lab: size - reserve for lab, size in sizes.items()}
    quota = {lab: min(max(int(exact[lab]), 1), high[lab]) for lab in sizes}
    while (missing := n - sum(quota.values())) != 0:  # one pass when no bound binds: plain largest remainder
        if missing > 0:
            order = sorted((lab for lab in sizes if quota[lab] < high[lab]),
                           key=lambda lab: (-(exact[lab] - quota[lab]), -sizes[lab], lab))
        else:
            order = sorted((lab for lab in sizes if quota[lab] > 1),
                           key=lambda lab: (exact[lab] - quota[lab], -sizes[lab], lab))
        for lab in order[: abs(missing)]:
            quota[lab] += 1 if missing > 0 else -1
    return quota


def stratified_split(
    examples: list[Example], n: int, rng: np.random.Generator, path: str | Path, reserve: int = 1,
    exclude: frozenset[str] | set[str] = frozenset(),
) -> tuple[list[Example], list[Example]]:
    """Carve `n` examples out of `examples` with the class proportions kept; returns (rest, carved).

    Class quotas are `n * share` rounded by largest remainder (`_quotas`), with every class at least once in the
    carved part and at least `reserve` times in the rest. Classes in `exclude` are never carved (they stay whole
    in the rest; shares are of the other examples). Both parts keep the input order.
    """
    by_label: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        if ex.label not in exclude:
            by_label.setdefault(ex.label, []).append(i)
    sizes = {lab: len(by_label[lab]) for lab in sorted(by_label)}
    available = sum(sizes.values())
    if n < len(sizes) or n > available - reserve * len(sizes) or min(sizes.values(), default=0) <= reserve:
        raise InputError(path, f"cannot carve {n} of {available} examples with every one of the {len(sizes)} "
                               f"labels in it at least once and {reserve} or more times outside it")
    quota = _quotas(sizes, n, reserve)
    carved: list[int] = []
    for lab in sizes:
        carved += rng.permutation(by_label[lab])[: quota[lab]].tolist()
    chosen = set(carved)
    rest = [ex for i, ex in enumerate(examples) if i not in chosen]
    return rest, [examples[i] for i in sorted(chosen)]


#: What `split.small_classes` may say about labels too small for one example in train and in every carved split.
SMALL_CLASSES = ("error", "train")


def _carve(train: list[Example], names: list[str], split: dict, rng: np.random.Generator, key: str, where: str
           ) -> tuple[list[Example], dict[str, list[Example]], list[str]]:
    """Carve the splits `names` (test before dev) out of `train`; returns (train, carved splits, small labels).

    A label with fewer examples than train plus the carved splits is "small": by default an error naming every
    such label and its count; with `split.small_classes: train` all its examples stay in train (logged).
    """
    sizes = {name: split_size(split[name], len(train), f"{key}.split.{name}") for name in names}
    if sum(sizes.values()) >= len(train):
        raise ConfigError(f"{key}.split", f"{' + '.join(f'{n} {s}' for s, n in sizes.items())} examples leave "
                                          f"none of the {len(train)} read for training")
    policy = split.get("small_classes", "error")
    if policy not in SMALL_CLASSES:
        raise ConfigError(f"{key}.split.small_classes", f"must be one of {', '.join(SMALL_CLASSES)}, got {policy!r}")
    need = 1 + len(names)
    counts = Counter(ex.label for ex in train)
    small = {lab: counts[lab] for lab in sorted(counts) if counts[lab] < need}
    if small:
        listing = ", ".join(f"{lab!r} ({count})" for lab, count in small.items())
        splits = " and ".join(["train", *names])
        if policy == "error":
            raise InputError(where, f"{len(small)} labels have fewer than {need} examples, too few for one in each "
                                    f"of {splits}: {listing}; remove them from the data, or set "
                                    f"{key}.split.small_classes: train to keep them in train only")
        log.info("split.small_classes: train: %d labels have fewer than %d examples (one for each of %s): all "
                 "their examples stay in train, none in %s: %s", len(small), need, splits, " or ".join(names),
                 listing)
    carved = {}
    for i, name in enumerate(names):  # every label keeps one example for each split still to carve, and train
        train, carved[name] = stratified_split(train, sizes[name], rng, where, reserve=len(names) - i,
                                               exclude=set(small))
        log.info("carved %d %s examples out of %s (stratified, seed %s)", sizes[name], name, where,
                 split.get("seed", 0))
    return train, carved, list(small)


def _located(examples: list[Example]) -> str:
    return ", ".join(f"{Path(ex.path).name}:{ex.line}" for ex in examples)


def report_repeats(examples: list[Example], shown: int = 5) -> dict[str, int]:
    """Log exact duplicate examples (same sentence, same label) and sentences that carry two or more labels.

    Report only: the data stays as read (duplicates are kept, as in the thesis, and may fall into different
    splits). Returns the counts: `duplicates` (examples repeating an earlier one) and `multi_label` (sentences).
    """
    by_pair: dict[tuple[str, str], list[Example]] = {}
    for ex in examples:
        by_pair.setdefault((ex.sentence, ex.label), []).append(ex)
    repeated = [group for group in by_pair.values() if len(group) > 1]
    duplicates = sum(len(group) - 1 for group in repeated)
    log.info("%d exact duplicate examples (same sentence and label; kept, this is a report)%s", duplicates,
             "".join(f"; {g[0].sentence!r} ({g[0].label}) x{len(g)} at {_located(g)}" for g in repeated[:shown]))
    by_sentence: dict[str, list[list[Example]]] = {}
    for (sentence, _), group in by_pair.items():
        by_sentence.setdefault(sentence, []).append(group)
    multi = {s: groups for s, groups in by_sentence.items() if len(groups) > 1}
    log.info("%d sentences carry two or more labels (kept, this is a report)%s", len(multi), "".join(
        f"; {s!r}: " + ", ".join(f"{g[0].label} at {_located(g)}" for g in groups)
        for s, groups in list(multi.items())[:shown]))
    return {"duplicates": duplicates, "multi_label": len(multi)}


def check_distinct_files(fmt: str, source: dict, key: str) -> None:
    """Refuse a file that two of the settings `train`, `dev`, `test` stand for: the same file twice, or a directory
    that also holds another split's file (the public CoLA `raw/` folder holds train and dev); names both. Only
    `test` may repeat `dev` whole (the same files: test repeats dev, as for GLUE)."""
    files = {name: [path.resolve() for path in raw_files(fmt, source[name])] for name in SPLITS if source.get(name)}
    if files.get("test") == files.get("dev"):
        files.pop("test", None)
    seen: dict[Path, str] = {}
    for name, paths in files.items():
        for path in paths:
            other = seen.setdefault(path, name)
            if other != name:
                raise ConfigError(f"{key}.{name}", f"{path} is also {other} data ({key}.{other}: "
                                                   f"{_where(source[other])}): the splits must be different files")


#: Default of `tasks.<task>.data.max_shared`. The real data shares at most 5.9% of a split (counted by
#: `report_shared`): GLUE CoLA dev with train 18 of 1,043 examples (1.7%), GLUE SST-2 dev none of 872;
#: rasa-demo's nlu.md (9d04b622) carved as config/config.yaml does, 15 of 1,000 dev and 21 of 1,000 test
#: examples with train (2.1%); the thesis's own Sara split (samsucik/knowledge-distil-bert 62277f94,
#: data/glue_data/Sara) 57 of 970 dev and 50 of 987 test examples with train (5.9%, 5.1%: short replies such as
#: 'yes'). A split mixed up with another shares (nearly) all of it.
MAX_SHARED = 0.1


def _share(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigError(key, f"must be a share from 0 to 1, got {value!r}")
    return float(value)


def report_shared(splits: dict[str, list[Example]], where: dict[str, str], max_shared: float, key: str,
                  shown: int = 3) -> dict[str, int]:
    """Log how many dev and test examples have a sentence that an earlier split (train; dev for test) also holds.

    Exact matches of the normalised sentences; where test repeats dev (GLUE; or the same files), only train/dev.
    A share of a split above `max_shared` (config `{key}.max_shared`) is an `InputError` naming the split's files
    (`where`). Returns the counts of shared examples, keyed `train/dev`, `train/test`, `dev/test`.
    """
    counts = {}
    pairs = [("train", "dev")] + ([] if splits["test"] == splits["dev"] else [("train", "test"), ("dev", "test")])
    for first, second in pairs:
        earlier = {ex.sentence for ex in splits[first]}
        shared = [ex for ex in splits[second] if ex.sentence in earlier]
        share, distinct = len(shared) / len(splits[second]), list(dict.fromkeys(ex.sentence for ex in shared))
        sample = "".join(f"; {s[:40]!r}" for s in distinct[:shown])
        log.info("%s/%s: %d of %d %s examples (%.1f%%, %d distinct sentences) also occur in %s%s", first, second,
                 len(shared), len(splits[second]), second, 100 * share, len(distinct), first, sample)
        if share > max_shared:
            raise InputError(where[second], f"{len(shared)} of {len(splits[second])} {second} examples ({share:.0%}) "
                                            f"have a sentence that {first} ({where[first]}) also holds, more than "
                                            f"{key}.max_shared = {max_shared}{sample}")
        counts[f"{first}/{second}"] = len(shared)
    return counts


def _label_names(fmt: str, splits: dict[str, list[Example]]) -> list[str]:
    if fmt in DEV_AS_TEST_FORMATS:
        return list(BINARY_LABELS)
    return sorted({ex.label for ex in splits["train"]})


def _check_known(labels: list[str], examples: list[Example]) -> None:
    known = set(labels)
    for ex in examples:
        if ex.label not in known:
            raise InputError(ex.path, f"label {ex.label!r} does not occur in the training data", ex.line)


def _distribution(examples: list[Example], labels: list[str]) -> dict[str, int]:
    counts = Counter(ex.label for ex in examples)
    return {lab: counts[lab] for lab in labels}


def prepare_task(task: str, source: dict, out_dir: str | Path) -> dict:
    """Read a task's raw data (`source` = `tasks.<task>.data`) and write `out_dir/{train,dev,test}.tsv`, `labels.txt`.

    `train`, `dev`, `test`: a file, a list of files or a directory (`raw_files`). `pseudonymise: true` (Rasa
    formats) replaces person names and e-mail addresses first (`kdprobe.data.rasa.Pseudonymiser`). Duplicate
    examples and sentences with several labels are reported in the log (`report_repeats`). Missing dev/test files
    are carved out of train by `source['split']` (`{test, dev, seed, small_classes}`: counts or fractions of the
    examples read, `split_size`; stratified, test first, then dev from the rest; labels too small for every split
    by `small_classes`, `_carve`); for GLUE formats without a test file, test repeats dev. `source['max_train']`
    (optional) then keeps a stratified sample of that many training examples, in file order (seed `split.seed`,
    default 0), for runs at reduced scale. No file may serve two splits (`check_distinct_files`); examples whose
    sentence an earlier split holds are counted, more than `source['max_shared']` of a split (default `MAX_SHARED`)
    an error (`report_shared`). Returns a summary (sizes, labels, counts).
    """
    key = f"tasks.{task}.data"
    fmt = source.get("format")
    if fmt not in READERS:
        raise ConfigError(f"{key}.format", f"unknown format {fmt!r} (expected one of {', '.join(READERS)})")
    split = source.get("split") or {}
    rng = np.random.default_rng(int(split.get("seed", 0)))
    if not source.get("train"):
        raise ConfigError(f"{key}.train", "a training file is required")
    pseudonymiser = None
    if source.get("pseudonymise"):
        if fmt not in RASA_FORMATS:
            raise ConfigError(f"{key}.pseudonymise", f"names are found by Rasa's entity markup: needs a format of "
                                                     f"{', '.join(RASA_FORMATS)}, not {fmt!r}")
        pseudonymiser = rasa.Pseudonymiser()
    max_shared = _share(source.get("max_shared", MAX_SHARED), f"{key}.max_shared")
    check_distinct_files(fmt, source, key)
    where = _where(source["train"])
    splits = {name: load_examples(fmt, source[name], pseudonymiser) for name in SPLITS if source.get(name)}
    if pseudonymiser:
        log.info("pseudonymised %s: %d person names (entities %s) -> %s, %d e-mail addresses -> %s, in %d "
                 "examples", task, pseudonymiser.names, ", ".join(rasa.NAME_ENTITIES), rasa.PERSON_NAME,
                 pseudonymiser.emails, rasa.EMAIL_ADDRESS, pseudonymiser.examples)
    repeats = report_repeats([ex for examples in splits.values() for ex in examples])
    for name in ("test", "dev"):
        if name in splits and split.get(name):
            log.warning("%s: both a %s file and split.%s are given: the %s file wins, split.%s is not used", key, name,
                        name, name, name)
    carve = [name for name in ("test", "dev") if name not in splits and split.get(name)]
    small: list[str] = []
    if carve:
        splits["train"], carved, small = _carve(splits["train"], carve, split, rng, key, where)
        splits.update(carved)
    if "dev" not in splits:
        raise ConfigError(key, "needs a 'dev' file or 'split.dev'")
    max_train = source.get("max_train")
    if max_train is not None and (isinstance(max_train, bool) or not isinstance(max_train, int) or max_train < 1):
        raise ConfigError(f"{key}.max_train", f"must be a positive integer, got {max_train!r}")
    if max_train and len(splits["train"]) > max_train:  # after dev/test are carved: those stay whole
        n_read = len(splits["train"])
        _, splits["train"] = stratified_split(splits["train"], max_train, rng, where, reserve=0)
        log.info("kept a stratified sample of %d of %d training examples (max_train, seed %s)", max_train, n_read,
                 split.get("seed", 0))
    test_is_dev = "test" not in splits
    if test_is_dev:
        if fmt not in DEV_AS_TEST_FORMATS:
            raise ConfigError(key, "needs a 'test' file or 'split.test'")
        splits["test"] = splits["dev"]
        log.info("no test file for %s: test.tsv repeats dev.tsv (GLUE test labels are hidden)", task)
    labels = _label_names(fmt, splits)
    for name in ("dev", "test"):
        _check_known(labels, splits[name])
    shared = report_shared(splits, {name: _where(source[name]) if source.get(name) else f"{where} (carved {name})"
                                    for name in SPLITS}, max_shared, key)

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
        "train_only_labels": small,
        "pseudonymised": None if pseudonymiser is None else
        {"names": pseudonymiser.names, "emails": pseudonymiser.emails, "examples": pseudonymiser.examples},
        "shared": shared,
        **repeats,
    }
    for name in SPLITS:
        log.info("%s %s: %d examples %s", task, name, summary["sizes"][name], summary["distribution"][name])
    log.info("wrote %s/{%s}.tsv and labels.txt (%d labels)", out_dir, ",".join(SPLITS), len(labels))
    return summary

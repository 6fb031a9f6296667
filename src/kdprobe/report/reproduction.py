"""How close this run came to the thesis: its reported figures beside this run's, the difference, and a flag.

The reference is a CSV of reported figures (`read_reference`), one per row: `quantity, task, model, split,
reported, source, note`, `#` lines are comments. `reference_file('thesis')` is the thesis's own, shipped with
kdprobe (`thesis_reported.csv`: tables `tab:best-students` and `tab:runtimes` of the final thesis, each row citing
its tex line); any other value of `summary.reproduction.reference` is the path of such a file (the demo's:
`config/demo-reference.csv`). `reported` is the figure as written, read by `parse_reported`: `59.9`, `76.4M`,
`0.68ms`, `$\\sim$30min`, `17h`. Quantities, and what of this run each is set against:

- `score` (`split` dev or test): the headline metric x 100 (`results/summary/study.csv`, `dev_score` /
  `test_score`); a test row of a task whose `test.tsv` repeats dev (CoLA, SST-2: GLUE's test labels are hidden, the
  thesis's test scores are the GLUE server's) is `not comparable`;
- `params`, `params_without_embeddings`: the study table's column of that name;
- `ms_per_example`: `1000 / cpu_throughput`, ms per sentence at `summary.throughput_batch` on the CPU (the thesis:
  its eval set in batches of 256 on a laptop CPU);
- `wall_time` (`model`: teacher, gpt2, sample, logits, bert_s, lstm_s): the longest benchmarked job of that kind
  for the task, in seconds (`timed_jobs`): the elapsed time when a stage's jobs run side by side, as the
  thesis's sampling and logits ran in 4 parallel processes.

`reproduction_table` gives one row per reference row: `reference` and `ours` (in `unit`), `difference` (ours -
reference), `ratio` (ours / reference), `tolerance`, `status` (`ok`, `off`, `not comparable`, `not in this run`)
and `flag` (status `off`). A score is off when it differs by more than `tolerance.score` points, a size when its
ratio is more than `tolerance.params` from 1, a time when its ratio is above `tolerance.time_ratio` or below its
inverse (`Tolerance`; config `summary.reproduction.tolerance`).
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from kdprobe.errors import ConfigError, InputError
from kdprobe.report.cost import benchmark_parts, read_benchmark

__all__ = ["THESIS", "Tolerance", "judge", "parse_reported", "read_reference", "reference_file",
           "reproduction_table", "timed_jobs", "wall_times"]

#: `summary.reproduction.reference` that names the thesis's figures shipped with kdprobe.
THESIS = "thesis"
THESIS_FILE = "thesis_reported.csv"
COLUMNS = ["quantity", "task", "model", "split", "reported", "source", "note"]
#: quantity -> (unit of its values, the unit suffixes `reported` may carry and what each is worth in that unit)
QUANTITIES: dict[str, tuple[str, dict[str, float]]] = {
    "score": ("points (metric x 100)", {"": 1.0}),
    "params": ("parameters", {"": 1.0, "k": 1e3, "M": 1e6}),
    "params_without_embeddings": ("parameters", {"": 1.0, "k": 1e3, "M": 1e6}),
    "ms_per_example": ("ms", {"ms": 1.0, "s": 1e3}),
    "wall_time": ("s", {"s": 1.0, "min": 60.0, "h": 3600.0}),
}
#: kinds of timed job of `wall_time` rows (the thesis's `tab:runtimes` rows)
TIMED = ("teacher", "gpt2", "sample", "logits", "bert_s", "lstm_s")
REPORTED = re.compile(r"(?P<approx>\$\\sim\$|~)?\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<suffix>[A-Za-z]*)")
OUT_COLUMNS = ["quantity", "task", "model", "split", "unit", "reference", "ours", "difference", "ratio",
               "tolerance", "status", "flag", "approx", "reported", "source", "note"]


@dataclass(frozen=True)
class Tolerance:
    """How far this run may be from the reference before a row is flagged (config `summary.reproduction.tolerance`):
    `score` points of the metric x 100; `params` relative (0.02: 2 %); `time_ratio` a factor either way."""

    score: float
    params: float
    time_ratio: float

    @classmethod
    def from_config(cls, settings: Mapping[str, Any], key: str = "summary.reproduction.tolerance") -> "Tolerance":
        """The tolerance of the config section `key`; a missing or bad value is a ConfigError naming its key."""
        values = {}
        for name in ("score", "params", "time_ratio"):
            value = settings.get(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ConfigError(f"{key}.{name}", f"expected a number >= 0, got {value!r}")
            values[name] = float(value)
        if values["time_ratio"] < 1:
            raise ConfigError(f"{key}.time_ratio", f"a factor of at least 1, got {values['time_ratio']}")
        return cls(**values)


def reference_file(reference: str, key: str = "summary.reproduction.reference") -> Path:
    """The file of `summary.reproduction.reference`: the shipped thesis figures for `thesis`, else the path (relative
    to the working directory); a ConfigError naming `key` when there is no such file."""
    if reference != THESIS:
        path = Path(reference)
        if not path.is_file():
            raise ConfigError(key, f"{reference!r}: no such file (`{THESIS}`, or the path of a reference CSV)")
        return path
    path = Path(str(resources.files("kdprobe.report").joinpath(THESIS_FILE)))
    if not path.is_file():
        raise ConfigError(key, f"{THESIS!r}: {path} is missing from kdprobe's package data (reinstall kdprobe)")
    return path


def parse_reported(text: str, quantity: str) -> tuple[float, bool]:
    """(value in the quantity's unit, approximate?) of a reported figure: `76.4M` -> 76.4e6, `$\\sim$30min` (wall
    time, s) -> (1800.0, True). A ValueError says what is wrong."""
    if quantity not in QUANTITIES:
        raise ValueError(f"unknown quantity {quantity!r} (known: {', '.join(QUANTITIES)})")
    match = REPORTED.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a number with an optional unit (59.9, 2.42M, 0.68ms, $\\sim$30min)")
    units = QUANTITIES[quantity][1]
    if match["suffix"] not in units:
        allowed = ", ".join(repr(u) for u in units)
        raise ValueError(f"{quantity}: unit {match['suffix']!r} of {text!r} is not one of {allowed}")
    return float(match["number"]) * units[match["suffix"]], match["approx"] is not None


def read_reference(path: str | Path) -> pd.DataFrame:
    """The reference figures of `path` (module docstring) with their `value` and `approx`, checked: known
    quantities, splits only on scores, units that fit, a source on every row, no figure twice. Errors name the
    file and line."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "reference figures not found (summary.reproduction.reference)")
    lines = path.read_text(encoding="utf-8").splitlines()
    numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip() and not line.lstrip().startswith("#")]
    if not numbered:
        raise InputError(path, "no header and no figures")
    parsed = list(csv.reader([line for _, line in numbered]))
    header, rows = parsed[0], parsed[1:]
    if header != COLUMNS:
        raise InputError(path, f"header {header}, expected {COLUMNS}", line=numbered[0][0])
    records, seen = [], {}
    for (line, _), cells in zip(numbered[1:], rows):
        if len(cells) != len(COLUMNS):
            raise InputError(path, f"{len(cells)} fields, expected {len(COLUMNS)}", line=line)
        record = dict(zip(COLUMNS, (cell.strip() for cell in cells)))
        _check_record(record, path, line)
        key = (record["quantity"], record["task"], record["model"], record["split"])
        if key in seen:
            raise InputError(path, f"{'/'.join(k for k in key if k)} again (first on line {seen[key]})", line=line)
        seen[key] = line
        records.append(record | {"line": line})
    if not records:
        raise InputError(path, "a header but no figures")
    return pd.DataFrame(records)


def _check_record(record: dict, path: Path, line: int) -> None:
    """`record` (one row of a reference file) checked in place; gains `value` and `approx`."""
    quantity, split = record["quantity"], record["split"]
    if quantity not in QUANTITIES:
        raise InputError(path, f"unknown quantity {quantity!r} (known: {', '.join(QUANTITIES)})", line=line)
    if (quantity == "score") != bool(split) or split not in ("", "dev", "test"):
        raise InputError(path, f"split {split!r}: scores need dev or test, other quantities none", line=line)
    if quantity == "wall_time" and record["model"] not in TIMED:
        raise InputError(path, f"wall_time of {record['model']!r}: expected one of {', '.join(TIMED)}", line=line)
    if not record["task"] or not record["model"] or not record["source"]:
        raise InputError(path, "task, model and source are required", line=line)
    try:
        record["value"], record["approx"] = parse_reported(record["reported"], quantity)
    except ValueError as exc:
        raise InputError(path, str(exc), line=line) from None


def timed_jobs(paths: Iterable[str | Path]) -> dict[tuple[str, str], list[str]]:
    """{(task, kind): benchmark files} of the jobs `wall_time` rows compare (kinds `TIMED`), from Snakemake's
    benchmark paths: `teacher/<task>.tsv`, `gpt2/<task>.tsv`, `sample/<task>/*.tsv`, `logits/<task>/*.tsv`,
    `distil/<task>/<student>.tsv` below `benchmarks/`; other files (extra seeds, variants, other stages) are left
    out."""
    jobs: dict[tuple[str, str], list[str]] = {}
    for path in paths:
        rest = benchmark_parts(path)
        rest[-1] = rest[-1].removesuffix(".tsv")
        if len(rest) == 2 and rest[0] in ("teacher", "gpt2"):
            kind, task = rest[0], rest[1]
        elif len(rest) == 3 and rest[0] in ("sample", "logits"):
            kind, task = rest[0], rest[1]
        elif len(rest) == 3 and rest[0] == "distil" and rest[2] in TIMED:
            kind, task = rest[2], rest[1]
        else:
            continue
        jobs.setdefault((task, kind), []).append(str(path))
    return jobs


def wall_times(paths: Iterable[str | Path]) -> dict[tuple[str, str], float]:
    """{(task, kind): seconds of the longest of its jobs} (`timed_jobs`, `cost.read_benchmark`)."""
    return {key: max(read_benchmark(path)["wall_s"] for path in files) for key, files in timed_jobs(paths).items()}


def _true(value: Any) -> bool:
    """A study-table flag as pandas read it: a bool, or the text `True` / `False` in a column of mixed types."""
    return value if isinstance(value, bool) else str(value).strip().lower() in ("true", "1")


def _ours(row: pd.Series, study: pd.DataFrame, walls: Mapping[tuple[str, str], float]) -> tuple[float, str]:
    """(this run's value of a reference row, why it is missing or not comparable; '' when it is there)."""
    if row.quantity == "wall_time":
        value = walls.get((row.task, row.model))
        return (math.nan, "not in this run") if value is None else (value, "")
    match = study[(study["task"] == row.task) & (study["model"] == row.model)]
    if match.empty:
        return math.nan, "not in this run"
    mine = match.iloc[0]
    if row.quantity == "score":
        if row.split == "test" and _true(mine["test_is_dev"]):
            return math.nan, "not comparable"
        return 100.0 * float(mine[f"{row.split}_score"]), ""
    if row.quantity == "ms_per_example":
        throughput = float(mine["cpu_throughput"])
        return (1000.0 / throughput, "") if throughput > 0 else (math.nan, "not in this run")
    return float(mine[row.quantity]), ""


def judge(quantity: str, reference: float, ours: float, tolerance: Tolerance) -> tuple[float, float, float, bool]:
    """(difference, ratio, the tolerance that applies, off?) of one figure (module docstring)."""
    difference = ours - reference
    ratio = ours / reference if reference else math.nan
    if quantity == "score":
        return difference, ratio, tolerance.score, abs(difference) > tolerance.score
    if quantity in ("params", "params_without_embeddings"):
        return difference, ratio, tolerance.params, not abs(ratio - 1.0) <= tolerance.params
    limit = tolerance.time_ratio
    return difference, ratio, limit, not (1.0 / limit <= ratio <= limit)


def reproduction_table(reference: pd.DataFrame, study: pd.DataFrame, walls: Mapping[tuple[str, str], float],
                       tolerance: Tolerance) -> pd.DataFrame:
    """One row per reference figure, this run's beside it (module docstring). `study`: the study table
    (`scores.study_table`); `walls`: `wall_times`."""
    rows = []
    for row in reference.itertuples(index=False):
        ours, missing = _ours(row, study, walls)
        difference = ratio = limit = math.nan
        status = missing
        if not missing:
            difference, ratio, limit, off = judge(row.quantity, row.value, ours, tolerance)
            status = "off" if off else "ok"
        rows.append({"quantity": row.quantity, "task": row.task, "model": row.model, "split": row.split,
                     "unit": QUANTITIES[row.quantity][0], "reference": row.value, "ours": ours,
                     "difference": difference, "ratio": ratio, "tolerance": limit, "status": status,
                     "flag": status == "off", "approx": row.approx, "reported": row.reported, "source": row.source,
                     "note": row.note})
    return pd.DataFrame(rows, columns=OUT_COLUMNS)

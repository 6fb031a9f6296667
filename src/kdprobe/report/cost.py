"""What the study cost, from Snakemake's `benchmark:` files.

A benchmark file (`benchmarks/<rule>/<task>.tsv` or `benchmarks/<rule>/<task>/<...>.tsv`) is tab-separated with a
header (`s, h:m:s, max_rss, max_vms, max_uss, max_pss, io_in, io_out, mean_load, cpu_time`; newer Snakemake may add
columns) and one row per run of the job (more than one only under `repeat()`); `-` or `NA` is a value Snakemake
could not measure. `read_benchmark` sums wall (`s`) and CPU time (`cpu_time`) over the rows and takes the largest
`max_rss` (MB).

`cost_table(jobs)` turns `[{stage, task, path, gpus}]` into one row per stage and task: `jobs`, `wall_s`, `cpu_s`,
`max_rss_mb` (the largest of its jobs), `gpu_hours` (wall hours x the GPUs the rule asked for), then one row per
stage (`task` = `all`) and the study's `total` / `all` row; seconds and MB to 2 decimals, GPU-hours to 4.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from kdprobe.errors import InputError

REQUIRED = ("s", "max_rss", "cpu_time")
MISSING = {"-", "NA", "nan", ""}
COLUMNS = ["stage", "task", "jobs", "wall_s", "cpu_s", "max_rss_mb", "gpu_hours"]


def _number(text: str, path: Path, column: str, line: int) -> float:
    if text.strip() in MISSING:
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise InputError(path, f"column {column!r}: {text!r} is not a number", line=line) from None


def read_benchmark(path: str | Path) -> dict[str, float]:
    """`{wall_s, cpu_s, max_rss_mb, runs}` of one benchmark file (module docstring); a missing file, a missing
    column, a row of the wrong width or a non-number is an InputError naming the file and line."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "benchmark file not found (written by Snakemake after the job)")
    lines = [line.rstrip("\r\n") for line in path.read_text(encoding="utf-8").splitlines()]
    if not lines or not lines[0].strip():
        raise InputError(path, "empty benchmark file", line=1)
    header = lines[0].split("\t")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputError(path, f"not a Snakemake benchmark file: no column(s) {missing}", line=1)
    rows = [(number, line.split("\t")) for number, line in enumerate(lines[1:], start=2) if line.strip()]
    if not rows:
        raise InputError(path, "no measurement row under the header", line=2)
    wall, cpu, rss = [], [], []
    for number, cells in rows:
        if len(cells) != len(header):
            raise InputError(path, f"{len(cells)} fields, the header has {len(header)}", line=number)
        values = dict(zip(header, cells))
        wall.append(_number(values["s"], path, "s", number))
        cpu.append(_number(values["cpu_time"], path, "cpu_time", number))
        rss.append(_number(values["max_rss"], path, "max_rss", number))
    if any(math.isnan(w) for w in wall):
        raise InputError(path, "no wall time (column 's')")
    return {
        "wall_s": sum(wall),
        "cpu_s": math.nan if any(math.isnan(c) for c in cpu) else sum(cpu),
        "max_rss_mb": max((r for r in rss if not math.isnan(r)), default=math.nan),
        "runs": len(rows),
    }


def benchmark_parts(path: str | Path) -> list[str]:
    """The parts of `path` below its (last) `benchmarks/` directory: `[<rule>, <task>.tsv]`, `[<rule>, <task>, ...]`."""
    parts = Path(path).parts
    if "benchmarks" not in parts:
        raise InputError(path, "not under a benchmarks/ directory")
    return list(parts[len(parts) - parts[::-1].index("benchmarks"):])


def benchmark_key(path: str | Path) -> tuple[str, str]:
    """(stage, task) of `.../benchmarks/<stage>/<task>.tsv` or `.../benchmarks/<stage>/<task>/<...>.tsv`."""
    rest = benchmark_parts(path)
    if len(rest) < 2 or not rest[-1].endswith(".tsv"):
        raise InputError(path, "expected benchmarks/<rule>/<task>.tsv or benchmarks/<rule>/<task>/....tsv")
    return rest[0], rest[1].removesuffix(".tsv")


def benchmark_jobs(paths: Iterable[str | Path], gpus: Mapping[str, int]) -> list[dict]:
    """`cost_table` input from benchmark paths; `gpus`: the GPUs each stage (rule) asks for."""
    jobs = []
    for path in paths:
        stage, task = benchmark_key(path)
        if stage not in gpus:
            raise InputError(path, f"no GPU count for stage {stage!r} (known: {sorted(gpus)})")
        jobs.append({"stage": stage, "task": task, "path": str(path), "gpus": int(gpus[stage])})
    return jobs


def _aggregate(frame: pd.DataFrame) -> dict:
    return {
        "jobs": len(frame),
        "wall_s": frame["wall_s"].sum(),
        "cpu_s": frame["cpu_s"].sum(min_count=len(frame)),  # NaN if any job's CPU time is unknown
        "max_rss_mb": frame["max_rss_mb"].max(),
        "gpu_hours": frame["gpu_hours"].sum(),
    }


def cost_table(jobs: Iterable[Mapping]) -> pd.DataFrame:
    """Per stage and task, then per stage (`all`), then the whole study (`total`, `all`); see the module docstring.
    Stages keep the order they first appear in; tasks within a stage too."""
    records = []
    for job in jobs:
        bench = read_benchmark(job["path"])
        records.append({"stage": job["stage"], "task": job["task"], **bench,
                        "gpu_hours": bench["wall_s"] / 3600.0 * int(job["gpus"])})
    if not records:
        raise ValueError("no benchmark files to summarise")
    frame = pd.DataFrame(records)
    rows = []
    for stage, per_stage in frame.groupby("stage", sort=False):
        for task, per_task in per_stage.groupby("task", sort=False):
            rows.append({"stage": stage, "task": task, **_aggregate(per_task)})
        rows.append({"stage": stage, "task": "all", **_aggregate(per_stage)})
    rows.append({"stage": "total", "task": "all", **_aggregate(frame)})
    # the benchmark files' precision (seconds and MB to 2 decimals); GPU-hours to the second
    return pd.DataFrame(rows, columns=COLUMNS).round({"wall_s": 2, "cpu_s": 2, "max_rss_mb": 2, "gpu_hours": 4})

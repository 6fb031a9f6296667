"""The study's findings and its cost, as tables and plots (`results/summary/`).

- `scores`: per task, the teacher and both students side by side (task metrics on dev and test from the prediction
  files, the students' share of the teacher's score, parameters and their ratio to the teacher's, size on disk,
  measured CPU/GPU latency and throughput from `kdprobe.predict.speed`), and the study-wide table.
- `seeds`: every seed of every model scored, and each model's mean and standard deviation over its seeds.
- `cost`: wall time, CPU time, peak memory and GPU-hours per stage and task, from Snakemake's benchmark files.
- `plots`: score against size and against CPU latency; the cost per stage; the distance from the reference.
- `reproduction`: how close the run came to the thesis's reported figures (or another reference: the demo's own),
  figure by figure, flagged beyond a tolerance.

Entry points (the workflow's scripts call them): `write_task_summary` (rule `summary_task`), `write_study_summary`
(rule `summary_study`), `write_cost_summary` (rule `summary_cost`), `write_reproduction` (rule
`summary_reproduction`); `kdprobe.predict.speed.measure_model` (rule `speed`) measures what the task tables read.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from kdprobe.io import write_csv
from kdprobe.report.cost import benchmark_jobs, cost_table
from kdprobe.report.reproduction import THESIS_FILE, Tolerance, read_reference, reproduction_table, wall_times
from kdprobe.report.scores import read_task_table, study_table, task_table
from kdprobe.report.seeds import Run, seed_spread, seed_table

log = logging.getLogger(__name__)

__all__ = ["write_task_summary", "write_study_summary", "write_cost_summary", "write_reproduction"]


def write_task_summary(task: str, labels_path: str | Path, splits: Mapping[str, str | Path],
                       runs: Mapping[str, Sequence[Run]], speeds: Mapping[str, str | Path], out_csv: str | Path,
                       out_seeds_csv: str | Path) -> pd.DataFrame:
    """`seeds.seed_table` of every run into `out_seeds_csv`, and `scores.task_table` of each model's own run with
    its spread over seeds into `out_csv` (`results/summary/{task}.csv`). `runs`: {model: [(seed, None, {'dev':
    predictions, 'test': predictions}), (seed, variant name, {...}), ...]}, the teacher first."""
    seeds = seed_table(task, labels_path, splits, runs)
    frame = task_table(task, labels_path, splits, {model: model_runs[0][2] for model, model_runs in runs.items()},
                       speeds, spread=seed_spread(seeds))
    write_csv(out_seeds_csv, seeds)
    log.info("wrote %d runs (%s) to %s", len(seeds),
             ", ".join(f"{model}: {len(model_runs)} seed(s)" for model, model_runs in runs.items()), out_seeds_csv)
    write_csv(out_csv, frame)
    for row in frame.itertuples(index=False):
        log.info("%s %s: dev %s %.4f (share %.3f), test %.4f; over %d seed(s): dev %.4f +- %.4f, test %.4f +- "
                 "%.4f; %d parameters (%.3f of the teacher's); CPU %.2f ms, %.1f sentences/s", task, row.model,
                 row.metric, row.dev_score, row.dev_share, row.test_score, row.seeds, row.dev_score_mean,
                 row.dev_score_std, row.test_score_mean, row.test_score_std, row.params, row.params_ratio,
                 row.cpu_latency_ms, row.cpu_throughput)
    log.info("wrote %d rows to %s", len(frame), out_csv)
    return frame


def write_study_summary(task_csvs: Sequence[str | Path], out_csv: str | Path, out_png: str | Path) -> pd.DataFrame:
    """The per-task tables stacked (`scores.study_table`) into `out_csv`, and `plots.study_figure` as `out_png`."""
    from kdprobe.report.figures import save_figure
    from kdprobe.report.summary_plots import study_figure

    study = study_table([read_task_table(path) for path in task_csvs])
    write_csv(out_csv, study)
    log.info("read %d task tables; wrote %d rows to %s", len(task_csvs), len(study), out_csv)
    save_figure(study_figure(study), out_png)
    return study


def write_cost_summary(benchmarks: Sequence[str | Path], gpus: Mapping[str, int], out_csv: str | Path,
                       out_png: str | Path) -> pd.DataFrame:
    """`cost.cost_table` of the benchmark files (stage and task from their paths, `cost.benchmark_key`) into
    `out_csv`, and `plots.cost_figure` as `out_png`."""
    from kdprobe.report.figures import save_figure
    from kdprobe.report.summary_plots import cost_figure

    cost = cost_table(benchmark_jobs(benchmarks, gpus))
    write_csv(out_csv, cost)
    total = cost.iloc[-1]
    log.info("read %d benchmark files; the study: %.1f s wall time, %.1f s CPU time, %.0f MB peak, %.3f GPU-hours; "
             "wrote %s", len(benchmarks), total.wall_s, total.cpu_s, total.max_rss_mb, total.gpu_hours, out_csv)
    save_figure(cost_figure(cost), out_png)
    return cost


def write_reproduction(reference: str | Path, study_csv: str | Path, benchmarks: Sequence[str | Path],
                       tolerance: Tolerance, out_csv: str | Path, out_png: str | Path) -> pd.DataFrame:
    """`reproduction.reproduction_table` of the reference file, the study table and the benchmark files into
    `out_csv`, and `plots.reproduction_figure` as `out_png`; each figure off the reference is logged."""
    from kdprobe.report.figures import save_figure
    from kdprobe.report.summary_plots import reproduction_figure

    table = reproduction_table(read_reference(reference), read_task_table(study_csv), wall_times(benchmarks),
                               tolerance)
    write_csv(out_csv, table)
    counts = table["status"].value_counts()
    log.info("%d reference figures of %s: %s; tolerance: %.3g points, sizes %.3g, times x%.3g; wrote %s",
             len(table), reference, ", ".join(f"{n} {status}" for status, n in counts.items()), tolerance.score,
             tolerance.params, tolerance.time_ratio, out_csv)
    for row in table[table["flag"]].itertuples(index=False):
        log.warning("off: %s %s %s %s: ours %.4g, reference %.4g %s (%s, %s)", row.task, row.model, row.quantity,
                    row.split, row.ours, row.reference, row.unit, row.reported, row.source)
    name = "the thesis's figures" if Path(reference).name == THESIS_FILE else Path(reference).name
    save_figure(reproduction_figure(table, name), out_png)
    return table

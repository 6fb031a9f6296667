"""One ablation on one task (config `ablations`, `kdprobe.variants`): its table, its probing deltas and its plot.

`ablation_table(...)` builds `results/ablations/{task}/{name}.csv`, one row per point in the ablation's order:
`ablation`, `task`, `student`, `point` (its label, `init=teacher,temperature=1`), one column per axis key (the
point's label on it), `reference` (whether it is the reference point), `seeds`, `metric` (the headline);
for every metric m of the task (`metrics.task_metrics`) `dev_<m>_mean`, `dev_<m>_std`, `test_<m>_mean`,
`test_<m>_std` over the seeds (standard deviation n - 1; empty for one seed): dev scored from the dev prediction
files (the ones the bootstrap resamples), test from each run's `metrics.json`; `dev_score_by_seed` (each seed's dev
headline, `;`-separated, in seed order); `delta_dev` (the point's mean dev
headline minus the reference's), `delta_ci_low`, `delta_ci_high` (its 95% paired-bootstrap interval,
`paired_bootstrap`), `bootstrap_samples`; `distil_s_mean` (mean wall seconds of the points' distil jobs, from
their benchmark files), `params`, `params_without_embeddings`.

`paired_bootstrap` resamples the dev examples (one index vector per resample, shared by every run, so the points
are compared on the same examples), recomputes each seed's headline metric on it for both points, averages over
seeds and takes the 2.5 and 97.5 percentiles of the difference.

`probe_deltas(...)` builds `results/ablations/{task}/{name}.probe.csv` (with `probe: true`), one row per point and
probing task: `best_acc_mean`, `best_acc_std` (each seed's best-layer test accuracy of the main classifier, over
layers and poolings), `reference_best_acc_mean` and `delta` (the point's mean minus the reference's).
`ablation_figure` draws the dev headline per point (mean ± std, each seed a dot, the reference marked) and each
point's difference from the reference with its interval.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from kdprobe.errors import InputError
from kdprobe.io import read_csv_table, read_json, write_csv
from kdprobe.metrics import task_metrics
from kdprobe.registry import HEADLINE_METRIC, TASK
from kdprobe.report.cost import read_benchmark
from kdprobe.report.scores import count_lines, read_predictions
from kdprobe.splits import read_labels

log = logging.getLogger(__name__)

#: The interval of `paired_bootstrap` (percent).
CONFIDENCE = 95.0


@dataclass(frozen=True)
class AblationRun:
    """One seed of one point: its label (`point`), its axis labels, its seed and the files the summary reads."""

    point: str
    labels: Mapping[str, str]
    seed: int
    metrics: Path
    predictions: Path
    benchmark: Path


@dataclass(frozen=True)
class ProbedRun:
    """One seed of one point with its merged probe table (`probe: true`)."""

    point: str
    seed: int
    probe: Path


@dataclass(frozen=True)
class Bootstrap:
    """`summary.ablation_bootstrap`: resamples and the seed of the resampling."""

    samples: int
    seed: int


def _by_point(runs: Sequence) -> dict[str, list]:
    """`runs` (AblationRun or ProbedRun) grouped by point, in order."""
    points: dict[str, list] = {}
    for run in runs:
        points.setdefault(run.point, []).append(run)
    return points


def _test_metrics(path: Path, task: str) -> dict[str, float]:
    """The kept checkpoint's test metrics and parameter counts of a student's `metrics.json`, checked finite."""
    record = read_json(path)
    try:
        out = {f"test_{m}": float(record["test"][m]) for m in TASK[task].metrics}
        out |= {"params": int(record["n_params"]), "params_without_embeddings": int(record["n_params_without_embeddings"])}
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(path, f"not a student's metrics.json with the {task} metrics on test: {exc!r}") from None
    bad = [k for k, v in out.items() if not math.isfinite(v)]
    if bad:
        raise InputError(path, f"non-finite {bad}")
    return out


def read_dev_predictions(runs: Sequence[AblationRun], labels: Sequence[str], n_dev: int) -> list[pd.DataFrame]:
    """Every run's dev predictions (`read_predictions`), in order; an InputError naming the file whose sentences or
    gold labels are not the first run's in the same order (the bootstrap pairs them example by example)."""
    frames = [read_predictions(run.predictions, labels, n_dev) for run in runs]
    for run, frame in zip(runs, frames):
        for column in ("sentence", "gold"):
            if column in frame and not frame[column].equals(frames[0][column]):
                raise InputError(run.predictions, f"{column} column differs from {runs[0].predictions}'s: not the "
                                                  "same dev set")
    return frames


def paired_bootstrap(task: str, gold: np.ndarray, preds: Mapping[str, Sequence[np.ndarray]], reference: str,
                     bootstrap: Bootstrap) -> dict[str, tuple[float, float]]:
    """Per point of `preds` ({point: each seed's predictions}), the `CONFIDENCE`% interval of its mean headline
    metric minus the reference's over resampled dev examples (module docstring); the reference's is (0, 0)."""
    headline = HEADLINE_METRIC[task]
    rng = np.random.default_rng(bootstrap.seed)
    samples = rng.integers(0, len(gold), size=(bootstrap.samples, len(gold)))
    means = {point: np.mean([[task_metrics(task, gold[idx], pred[idx])[headline] for idx in samples]
                             for pred in seeds], axis=0) for point, seeds in preds.items()}
    tail = (100.0 - CONFIDENCE) / 2
    return {point: tuple(float(q) for q in np.percentile(mean - means[reference], [tail, 100.0 - tail]))
            for point, mean in means.items()}


def _spread(values: Sequence[float]) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else math.nan


def ablation_table(task: str, ablation: str, student: str, runs: Sequence[AblationRun], reference: str,
                   labels_path: str | Path, dev_path: str | Path, bootstrap: Bootstrap) -> pd.DataFrame:
    """The table of the module docstring; `runs` in the ablation's order (each point's seeds together),
    `reference` the reference point's label."""
    points = _by_point(runs)
    if reference not in points:
        raise ValueError(f"reference point {reference!r} is none of {list(points)}")
    headline = HEADLINE_METRIC[task]
    frames = read_dev_predictions(runs, read_labels(labels_path), count_lines(dev_path))
    gold = frames[0]["gold"].to_numpy()
    pred = {id(run): frame["pred"].to_numpy() for run, frame in zip(runs, frames)}
    preds = {point: [pred[id(run)] for run in seeds] for point, seeds in points.items()}
    intervals = paired_bootstrap(task, gold, preds, reference, bootstrap)
    dev = {id(run): task_metrics(task, gold, pred[id(run)]) for run in runs}
    rows = []
    for point, seeds in points.items():
        row = {"ablation": ablation, "task": task, "student": student, "point": point, **seeds[0].labels,
               "reference": point == reference, "seeds": len(seeds), "metric": headline}
        tests = [_test_metrics(run.metrics, task) for run in seeds]
        for m in TASK[task].metrics:
            row[f"dev_{m}_mean"], row[f"dev_{m}_std"] = _spread([dev[id(run)][m] for run in seeds])
            row[f"test_{m}_mean"], row[f"test_{m}_std"] = _spread([t[f"test_{m}"] for t in tests])
        row["dev_score_by_seed"] = ";".join(f"{dev[id(run)][headline]:.6f}" for run in seeds)
        rows.append(row | {"delta_ci_low": intervals[point][0], "delta_ci_high": intervals[point][1],
                           "bootstrap_samples": bootstrap.samples,
                           "distil_s_mean": float(np.mean([read_benchmark(r.benchmark)["wall_s"] for r in seeds])),
                           "params": tests[0]["params"], "params_without_embeddings": tests[0]["params_without_embeddings"]})
    table = pd.DataFrame(rows)
    reference_mean = table.loc[table["point"] == reference, f"dev_{headline}_mean"].iloc[0]
    table.insert(table.columns.get_loc("delta_ci_low"), "delta_dev", table[f"dev_{headline}_mean"] - reference_mean)
    return table


def best_layer_accuracy(path: Path) -> pd.Series:
    """Per probing task, the best test accuracy over layers and poolings of the main classifier of a merged probe
    table (`kdprobe.report.probing`)."""
    from kdprobe.report.probing import REQUIRED, main_classifier

    table = read_csv_table(path, REQUIRED)
    table = table[table["classifier"] == main_classifier(table)]
    return table.groupby("probe_task", sort=False)["test_acc"].max()


def probe_deltas(task: str, ablation: str, runs: Sequence[ProbedRun], reference: str) -> pd.DataFrame:
    """The probing table of the module docstring."""
    points = _by_point(runs)
    if reference not in points:
        raise ValueError(f"reference point {reference!r} is none of {list(points)}")
    best = {point: pd.DataFrame({run.seed: best_layer_accuracy(run.probe) for run in seeds})
            for point, seeds in points.items()}
    reference_mean = best[reference].mean(axis=1)
    rows = []
    for point, frame in best.items():
        for probe_task, accuracies in frame.iterrows():
            mean, std = _spread(accuracies.to_numpy())
            rows.append({"ablation": ablation, "task": task, "point": point, "reference": point == reference,
                         "probe_task": probe_task, "seeds": len(accuracies), "best_acc_mean": mean,
                         "best_acc_std": std, "reference_best_acc_mean": float(reference_mean[probe_task]),
                         "delta": mean - float(reference_mean[probe_task])})
    return pd.DataFrame(rows)


def ablation_figure(table: pd.DataFrame) -> Figure:
    """Left: each point's dev headline, mean ± std over seeds (bars), each seed a dot, the reference's mean a dashed
    line; right: each point's difference from the reference with its 95% interval."""
    from kdprobe.report.figures import metric_label, model_name, new_figure

    first = table.iloc[0]
    metric = first["metric"]
    fig, axes = new_figure(12, 4.8, 1, 2)
    score_ax, delta_ax = axes[0]
    xs = np.arange(len(table))
    colours = ["#d62728" if ref else "#1f77b4" for ref in table["reference"]]
    for x, (_, row), colour in zip(xs, table.iterrows(), colours):
        score_ax.errorbar(x, row[f"dev_{metric}_mean"], yerr=0 if math.isnan(row[f"dev_{metric}_std"]) else
                          row[f"dev_{metric}_std"], fmt="s", color=colour, capsize=5, markersize=7)
        seeds = [float(v) for v in str(row["dev_score_by_seed"]).split(";")]
        score_ax.plot([x] * len(seeds), seeds, "o", color="black", markersize=3, alpha=0.6)
        delta_ax.errorbar(x, row["delta_dev"], yerr=[[row["delta_dev"] - row["delta_ci_low"]],
                                                     [row["delta_ci_high"] - row["delta_dev"]]],
                          fmt="s", color=colour, capsize=5, markersize=7)
    reference = table[table["reference"]].iloc[0]
    score_ax.axhline(reference[f"dev_{metric}_mean"], color="#d62728", linestyle="--", linewidth=1)
    delta_ax.axhline(0, color="#d62728", linestyle="--", linewidth=1)
    handles = [score_ax.errorbar([], [], yerr=[], fmt="s", color="#1f77b4", capsize=5, label="point: mean ± std"),
               score_ax.errorbar([], [], yerr=[], fmt="s", color="#d62728", capsize=5,
                                 label=f"reference ({reference['point']})"),
               score_ax.plot([], [], "o", color="black", markersize=3, label="one seed")[0]]
    score_ax.legend(handles=handles, loc="best", fontsize=8)
    delta_ax.legend(handles=[delta_ax.errorbar([], [], yerr=[], fmt="s", color="#1f77b4", capsize=5,
                                               label=f"difference, {CONFIDENCE:.0f}% paired bootstrap")],
                    loc="best", fontsize=8)
    for ax in (score_ax, delta_ax):
        ax.set_xticks(xs, [p.replace(",", "\n") for p in table["point"]], fontsize=8)
        ax.set_xlabel("ablation point")
    score_ax.set_ylabel(f"{metric_label(metric)}, mean over {int(first['seeds'])} seeds")
    score_ax.set_title("dev score per point")
    delta_ax.set_ylabel(f"{metric_label(metric)} minus the reference's")
    delta_ax.set_title(f"difference from the reference ({int(first['bootstrap_samples'])} resamples of dev)")
    fig.suptitle(f"{first['task']}: {model_name(first['student'])} ablation {first['ablation']}")
    fig.tight_layout()
    return fig


def write_ablation_summary(task: str, ablation: str, student: str, runs: Sequence[AblationRun], reference: str,
                           labels_path: str | Path, dev_path: str | Path, bootstrap: Bootstrap,
                           out_csv: str | Path, out_png: str | Path) -> pd.DataFrame:
    """The ablation's table and its plot (rule `ablation_summary`)."""
    from kdprobe.report.figures import save_figure

    table = ablation_table(task, ablation, student, runs, reference, labels_path, dev_path, bootstrap)
    headline = HEADLINE_METRIC[task]
    write_csv(out_csv, table)
    for _, row in table.iterrows():
        log.info("%s %s %s: dev %s %.4f ± %.4f, difference %+.4f [%+.4f, %+.4f]", task, ablation, row["point"],
                 headline, row[f"dev_{headline}_mean"], row[f"dev_{headline}_std"], row["delta_dev"],
                 row["delta_ci_low"], row["delta_ci_high"])
    save_figure(ablation_figure(table), out_png)
    return table


def write_probe_deltas(task: str, ablation: str, runs: Sequence[ProbedRun], reference: str,
                       out_csv: str | Path) -> pd.DataFrame:
    """The ablation's probing deltas (rule `ablation_probe_summary`)."""
    deltas = probe_deltas(task, ablation, runs, reference)
    write_csv(out_csv, deltas)
    log.info("%s %s: probing deltas of %d points x %d probing tasks; wrote %s", task, ablation,
             deltas["point"].nunique(), deltas["probe_task"].nunique(), out_csv)
    return deltas

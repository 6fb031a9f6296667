"""Every seed of every model of a task (config `seeds`, `kdprobe.variants`), scored from its prediction files.

`seed_table(task, labels, splits, runs)` builds `results/summary/seeds/{task}.csv`, one row per model and seed:
`task`, `model`, `seed`, `run` (`own` for the model's own run, the headline one, else its variant name such as
`seed43`), `metric`, `dev_score`, `test_score` and every metric of `metrics.task_metrics` as `dev_<m>`, `test_<m>`.
`seed_spread(table)` gives per model `seeds` (how many went in), the mean and the standard deviation (n - 1; empty
for one seed) of the headline score on each split: the columns `SPREAD_COLUMNS` of the task and study tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from kdprobe.registry import HEADLINE_METRIC
from kdprobe.report.scores import SPLITS, count_lines, score_predictions
from kdprobe.splits import read_labels

SPREAD_COLUMNS = ["seeds", "dev_score_mean", "dev_score_std", "test_score_mean", "test_score_std"]
OWN_RUN = "own"

#: One run of a model: (seed, variant name or None for the model's own run, {split: predictions path}).
Run = tuple[int, "str | None", Mapping[str, "str | Path"]]


def seed_table(task: str, labels_path: str | Path, splits: Mapping[str, str | Path],
               runs: Mapping[str, Sequence[Run]]) -> pd.DataFrame:
    """The table of the module docstring; `runs`: {model: [its own run first, then its extra seeds]}."""
    labels = read_labels(labels_path)
    sizes = {split: count_lines(splits[split]) for split in SPLITS}
    headline = HEADLINE_METRIC[task]
    rows = []
    for model, model_runs in runs.items():
        if not model_runs or model_runs[0][1] is not None:
            raise ValueError(f"{task} {model}: the model's own run comes first, got {list(model_runs)}")
        for seed, variant, predictions in model_runs:
            row = {"task": task, "model": model, "seed": int(seed), "run": variant or OWN_RUN, "metric": headline}
            for split in SPLITS:
                scores = score_predictions(task, predictions[split], labels, sizes[split])
                row[f"{split}_score"] = scores[headline]
                row |= {f"{split}_{name}": value for name, value in sorted(scores.items())}
            rows.append(row)
    return pd.DataFrame(rows)


def seed_spread(table: pd.DataFrame) -> pd.DataFrame:
    """Per model (in table order): `SPREAD_COLUMNS` of its headline scores over its seeds."""
    out = []
    for model, runs in table.groupby("model", sort=False):
        row = {"model": model, "seeds": len(runs)}
        for split in SPLITS:
            values = runs[f"{split}_score"].to_numpy(dtype=float)
            row[f"{split}_score_mean"] = float(values.mean())
            row[f"{split}_score_std"] = float(values.std(ddof=1)) if len(values) > 1 else np.nan
        out.append(row)
    return pd.DataFrame(out, columns=["model", *SPREAD_COLUMNS])

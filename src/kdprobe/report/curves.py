"""Training curves as the training stages write them (`training.fit`): `curve.csv` with `step`, `epoch`
(fractional within an epoch), `loss` (mean training loss since the previous row), `lr`, then the dev metrics
`dev_<metric>` (teacher and students; GPT-2 has none)."""

from __future__ import annotations

import logging
import os
from typing import Sequence

import pandas as pd

from kdprobe.errors import InputError

log = logging.getLogger(__name__)

BASE = ("step", "epoch", "loss")


def read_curve(path: str | os.PathLike, dev_metrics: bool) -> pd.DataFrame:
    """A curve file, checked: `step`, `epoch`, `loss` (and, with `dev_metrics`, at least one `dev_*` column)
    present and numeric, at least one row, steps increasing."""
    try:
        curve = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise InputError(path, "empty file") from None
    missing = [c for c in BASE if c not in curve.columns]
    if dev_metrics and not dev_columns(curve):
        missing.append("dev_<metric>")
    if missing:
        raise InputError(path, f"missing columns {missing}")
    if curve.empty:
        raise InputError(path, "no rows")
    for column in [*BASE, *dev_columns(curve)]:
        values = pd.to_numeric(curve[column], errors="coerce")
        if values.isna().any():
            row = int(values.isna().to_numpy().nonzero()[0][0])
            raise InputError(path, f"column {column}: {curve[column].iloc[row]!r} is not a number", line=row + 2)
        curve[column] = values
    if not curve["step"].is_monotonic_increasing:
        raise InputError(path, "steps are not increasing")
    log.info("read %s: %d rows, columns %s", path, len(curve), list(curve.columns))
    return curve


def read_headline_curve(path: str | os.PathLike, task: str) -> pd.DataFrame:
    """`read_curve` of a teacher's or student's curve, which must have the task's headline dev metric."""
    from kdprobe.registry import HEADLINE_METRIC

    curve = read_curve(path, dev_metrics=True)
    column = f"dev_{HEADLINE_METRIC[task]}"
    if column not in curve.columns:
        raise InputError(path, f"missing column {column}, the headline metric of {task}")
    return curve


def dev_columns(curve: pd.DataFrame) -> list[str]:
    return [c for c in curve.columns if c.startswith("dev_")]


def shown_metrics(curve: pd.DataFrame, preferred: Sequence[str]) -> list[str]:
    """The dev columns to plot: `dev_<m>` for each metric in `preferred` that the curve has, else all of them."""
    chosen = [f"dev_{m}" for m in preferred if f"dev_{m}" in curve.columns]
    return chosen or dev_columns(curve)

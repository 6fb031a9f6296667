"""The t interval of a mean over seeds, shared by the probe tables (`kdprobe.probe.tables`) and their report
(`kdprobe.report.probing_stats`): numpy and `scipy.stats` only, no stage imported."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats

#: The confidence level of every interval in the probe tables and their report.
LEVEL = 0.95


def interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float, float, float]:
    """(mean, sample standard deviation (ddof 1), low, high) of `values`, low and high the `level` t interval of
    the mean (`scipy.stats.t.interval`, n - 1 degrees of freedom); equal values: std 0 and the interval the mean;
    one value: the mean and NaN for the rest. No value is a ValueError."""
    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        raise ValueError("interval of no values")
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan, math.nan
    std = float(x.std(ddof=1))
    if std == 0.0:
        return mean, 0.0, mean, mean
    low, high = stats.t.interval(level, len(x) - 1, loc=mean, scale=std / math.sqrt(len(x)))
    return mean, std, float(low), float(high)

"""Calibration of a classifier's confidence: equal-width reliability bins and the expected calibration error.

With `B` equal-width bins over [0, 1] (bin `b`, 1-based, holds the confidences in ((b-1)/B, b/B], the first bin
also 0), `n_b` sentences in bin `b` out of `N`, `acc_b` the share of them predicted correctly and `conf_b` their
mean confidence (the predicted class's probability), the expected calibration error (Guo et al. 2017) is

    ECE = sum_b (n_b / N) * |acc_b - conf_b|

a number in [0, 1]: 0 when, in every bin, the mean confidence equals the accuracy. Empty bins contribute nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Columns of `reliability_table`.
RELIABILITY_COLUMNS = ["bin", "lower", "upper", "count", "mean_confidence", "accuracy"]


def bin_index(confidence: np.ndarray, bins: int) -> np.ndarray:
    """0-based equal-width bin of each confidence: ((b-1)/B, b/B] is bin b-1; 0 falls into the first bin."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    confidence = np.asarray(confidence, dtype=np.float64)
    if confidence.size and (np.isnan(confidence).any() or confidence.min() < 0 or confidence.max() > 1):
        raise ValueError("confidences must lie in [0, 1]")
    # a confidence equal to an edge (k / B, correctly rounded as a literal 0.6 is) falls into the bin below it
    return np.searchsorted(bin_edges(bins)[1:-1], confidence, side="left")


def bin_edges(bins: int) -> np.ndarray:
    """The `bins + 1` edges k / bins, each the correctly rounded quotient (so 3 / 5 == 0.6)."""
    return np.arange(bins + 1) / bins


def reliability_table(confidence: np.ndarray, correct: np.ndarray, bins: int) -> pd.DataFrame:
    """One row per bin (`RELIABILITY_COLUMNS`): its bounds, how many predictions fall in it, their mean confidence
    and accuracy (both NaN for an empty bin)."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    if confidence.shape != correct.shape:
        raise ValueError("confidence and correct differ in length")
    index = bin_index(confidence, bins)
    count = np.bincount(index, minlength=bins)
    conf_sum = np.bincount(index, weights=confidence, minlength=bins)
    hit_sum = np.bincount(index, weights=correct.astype(np.float64), minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(count > 0, conf_sum / count, np.nan)
        accuracy = np.where(count > 0, hit_sum / count, np.nan)
    edges = bin_edges(bins)
    return pd.DataFrame({
        "bin": np.arange(1, bins + 1), "lower": edges[:-1], "upper": edges[1:], "count": count,
        "mean_confidence": mean_conf, "accuracy": accuracy,
    }, columns=RELIABILITY_COLUMNS)


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int) -> float:
    """ECE over `bins` equal-width bins (the module docstring defines it); 0.0 for no predictions."""
    table = reliability_table(confidence, correct, bins)
    total = int(table["count"].sum())
    if total == 0:
        return 0.0
    used = table[table["count"] > 0]
    gaps = (used["accuracy"] - used["mean_confidence"]).abs()
    return float((used["count"] / total * gaps).sum())

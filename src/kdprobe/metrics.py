"""Classification metrics of the study (CoLA MCC, SST-2 accuracy, Sara micro and macro F1)."""

from __future__ import annotations

import numpy as np

from kdprobe.registry import TASK


def accuracy(gold: np.ndarray, pred: np.ndarray) -> float:
    gold, pred = np.asarray(gold), np.asarray(pred)
    return float((gold == pred).mean()) if len(gold) else 0.0


def mcc(gold: np.ndarray, pred: np.ndarray) -> float:
    """Matthews correlation (multi-class form, as scikit-learn); 0 when undefined."""
    gold, pred = np.asarray(gold), np.asarray(pred)
    labels = np.union1d(gold, pred)
    c = np.zeros((len(labels), len(labels)), dtype=np.float64)
    # labels is sorted: each value's index by binary search (the paired bootstrap calls this thousands of times)
    np.add.at(c, (np.searchsorted(labels, gold), np.searchsorted(labels, pred)), 1)
    t, p = c.sum(axis=1), c.sum(axis=0)
    n, correct = c.sum(), np.trace(c)
    cov_yp = correct * n - t @ p
    cov_yy = n * n - t @ t
    cov_pp = n * n - p @ p
    denom = np.sqrt(cov_yy * cov_pp)
    return float(cov_yp / denom) if denom > 0 else 0.0


def f1_scores(gold: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """(micro F1, macro F1); macro averages over classes present in gold or pred."""
    gold, pred = np.asarray(gold), np.asarray(pred)
    micro = accuracy(gold, pred)  # single-label multi-class: micro F1 == accuracy
    f1s = []
    for c in np.union1d(gold, pred):
        tp = np.sum((pred == c) & (gold == c))
        fp = np.sum((pred == c) & (gold != c))
        fn = np.sum((pred != c) & (gold == c))
        denom = 2 * tp + fp + fn
        f1s.append(2 * tp / denom if denom else 0.0)
    return micro, float(np.mean(f1s)) if f1s else 0.0


def task_metrics(task: str, gold: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """All metrics reported for `task`; the headline one is `registry.TASK[task].headline`."""
    reported = TASK[task].metrics
    out = {"accuracy": accuracy(gold, pred)}
    if "mcc" in reported:
        out["mcc"] = mcc(gold, pred)
    if "micro_f1" in reported:
        out["micro_f1"], out["macro_f1"] = f1_scores(gold, pred)
    return out

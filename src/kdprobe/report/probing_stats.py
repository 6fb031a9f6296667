"""Statistics of probe tables with seeds and controls (issue 21): the per-seed accuracies of a table cell
(`seed_values`), the t interval of a mean (`interval`, from `kdprobe.intervals`: the probe tables' own), paired
differences over seeds (`paired_difference`), Tenney et al.'s (2019) expected layer (`expected_layer`), and the
per-model summary of a probe table (`probing_summary`: best layer, its interval and selectivity, the difference
from the teacher with a paired t-test over seeds). Torch-free; statistics by `scipy.stats`.

A probe table (`kdprobe.probe.tables.COLUMNS`) has one row per (model, probe_task, layer, pooling, classifier);
`test_acc_by_seed` / `control_acc_by_seed` hold the per-seed accuracies in seed order, seed i being the probe's
`seed + i` for every model, so seed i of one model pairs with seed i of another.
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from kdprobe.intervals import LEVEL, interval
from kdprobe.report.probing import classifier_order, model_order

__all__ = ["LEVEL", "SIGNIFICANCE", "SUMMARY_COLUMNS", "expected_layer", "interval", "paired_difference",
           "probing_summary", "reference_model", "seed_values"]

#: A difference is marked significant when its paired t-test's p-value is below this.
SIGNIFICANCE = 0.05

#: The columns of `probing_summary` (documented there).
SUMMARY_COLUMNS = [
    "scope", "model", "probe_task", "classifier", "pooling", "layer", "depth", "position", "seeds",
    "test_acc", "test_ci_low", "test_ci_high", "majority_acc", "above_majority",
    "control_acc", "selectivity", "selectivity_ci_low", "selectivity_ci_high",
    "expected_layer", "expected_position", "selectivity_layer", "selectivity_best",
    "reference", "reference_diff", "reference_diff_ci_low", "reference_diff_ci_high", "p_value", "significant",
    "selectivity_share",
    "test_acc_by_seed",
]


def seed_values(cell) -> np.ndarray:
    """The per-seed accuracies of a `*_by_seed` cell: `;`-joined numbers (`"0.81;0.79"`), one number (pandas reads a
    one-seed column as floats), or empty / NaN (no seeds: the control when `probe.control` is off) -> empty array.
    Anything else is a ValueError quoting the cell."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return np.empty(0)
    if isinstance(cell, (int, float, np.integer, np.floating)) and not isinstance(cell, bool):
        return np.array([float(cell)])
    text = str(cell).strip()
    if not text:
        return np.empty(0)
    try:
        values = np.array([float(part) for part in text.split(";")])
    except ValueError:
        raise ValueError(f"per-seed cell {cell!r} is not numbers joined by ';'") from None
    if not np.isfinite(values).all():
        raise ValueError(f"per-seed cell {cell!r} holds a value that is not finite")
    return values


def paired_difference(a_by_seed: Sequence[float], b_by_seed: Sequence[float], level: float = LEVEL
                      ) -> tuple[float, float, float, float]:
    """(mean of a_i - b_i, its `level` t interval low and high, the paired t-test's two-sided p-value) over the seeds
    both have (seed i with seed i; a longer one's extra seeds are left out). No paired seed: all NaN; one: the
    difference and NaN for the rest. Equal differences on every seed give p 0 (a non-zero difference) or NaN (none):
    `scipy.stats.ttest_rel`'s answer."""
    n = min(len(a_by_seed), len(b_by_seed))
    if n == 0:
        return math.nan, math.nan, math.nan, math.nan
    a, b = np.asarray(a_by_seed[:n], dtype=float), np.asarray(b_by_seed[:n], dtype=float)
    mean, _, low, high = interval(a - b, level)
    if n < 2:
        return mean, low, high, math.nan
    with warnings.catch_warnings():  # equal differences: scipy warns about the zero variance
        warnings.simplefilter("ignore", RuntimeWarning)
        p_value = float(stats.ttest_rel(a, b).pvalue)
    return mean, low, high, p_value


def expected_layer(layers: Sequence[float], scores: Sequence[float], cumulative: bool = True) -> float:
    """Tenney et al.'s (2019) expected layer, the centre of gravity of the differential scores:
    E[l] = sum_l l * d_l / sum_l d_l over the layers in increasing order, d_l = s_l - s_{l'} with l' the layer
    probed before l. The first layer probed is the reference (Tenney's layer 0): it has no d and no weight.

    Tenney's s_l is the score of a probe on a scalar mix of layers 0..l, which seldom falls as l grows. A probe
    table's scores are per layer and fall past the best layer; such negative d_l, taken as given, pull E[l] down
    and can put it outside the layers probed (scores 0.5, 0.9, 0.51 at layers 0-2 give E = -38). So by default
    (`cumulative`) s_l is the best score of the layers up to l (its running maximum: what a mix of them could at
    least reach): every d_l >= 0 and E[l] lies between the second layer probed and the best one. With
    `cumulative=False` the scores are used as given, negative d_l included. NaN when the d_l sum to <= 0 (no
    gain over the first layer probed), with fewer than two layers, or a NaN score."""
    order = np.argsort(np.asarray(layers, dtype=float), kind="stable")
    l = np.asarray(layers, dtype=float)[order]
    s = np.asarray(scores, dtype=float)[order]
    if len(l) < 2 or np.isnan(s).any():
        return math.nan
    if cumulative:
        s = np.maximum.accumulate(s)
    d = np.diff(s)
    total = d.sum()
    return float((l[1:] * d).sum() / total) if total > 0 else math.nan


def reference_model(scope: str) -> str:
    """The model a scope's models are compared with: the fine-tuned teacher of a downstream task; in scope
    `pretrained` (the pre-trained teacher and `teacher_random`), the pre-trained teacher."""
    return "pretrained" if scope == "pretrained" else "teacher"


def _best(group: pd.DataFrame) -> dict:
    """One (scope, model, probe_task, classifier) group's summary without the reference columns."""
    ranked = group.sort_values(["test_acc", "layer", "_row"], ascending=[False, True, True], kind="stable")
    best = ranked.iloc[0]
    curve = group[group["pooling"] == best["pooling"]].sort_values("layer")
    expected = expected_layer(curve["layer"], curve["test_acc"])
    selective = curve.dropna(subset=["selectivity"]).sort_values(["selectivity", "layer"], ascending=[False, True],
                                                                 kind="stable")
    depth = best["depth"]
    return {
        **{c: best[c] for c in ("scope", "model", "probe_task", "classifier", "pooling", "layer", "depth",
                                "position", "seeds", "test_acc", "test_ci_low", "test_ci_high", "majority_acc",
                                "control_acc", "selectivity", "selectivity_ci_low", "selectivity_ci_high",
                                "test_acc_by_seed")},
        "above_majority": best["test_acc"] - best["majority_acc"],
        "expected_layer": expected,
        "expected_position": expected / depth if depth else math.nan,  # depth 0: layer 0 only, no expected layer
        "selectivity_layer": selective["layer"].iloc[0] if len(selective) else math.nan,
        "selectivity_best": selective["selectivity"].iloc[0] if len(selective) else math.nan,
    }


def _compare(row: pd.Series, ref: pd.Series | None) -> dict:
    """The reference columns of a summary row given its reference's row (None: none, or the reference itself)."""
    if ref is None:
        return {"reference_diff": math.nan, "reference_diff_ci_low": math.nan, "reference_diff_ci_high": math.nan,
                "p_value": math.nan,
                "significant": False, "selectivity_share": math.nan}
    diff, low, high, p_value = paired_difference(seed_values(row["test_acc_by_seed"]),
                                                 seed_values(ref["test_acc_by_seed"]))
    share = (row["selectivity"] / ref["selectivity"] if ref["selectivity"] > 0 and not math.isnan(row["selectivity"])
             else math.nan)
    return {"reference_diff": diff, "reference_diff_ci_low": low, "reference_diff_ci_high": high, "p_value": p_value,
            "significant": bool(p_value < SIGNIFICANCE), "selectivity_share": share}


def probing_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per scope, model, probing task and classifier of a probe table read by `kdprobe.report.probing.
    read_probe_tables` (with scope, depth, position), one row (`SUMMARY_COLUMNS`); scopes and probing tasks in table
    order, models in `probing.ORDER`, classifiers mlp then linear:

    - pooling, layer, depth, position: the best layer, the (layer, pooling) of the highest mean test accuracy
      (ties: the lowest layer, then the first row); seeds, test_acc, test_ci_low/high (its 95% t interval),
      majority_acc, above_majority (test_acc - majority_acc), test_acc_by_seed: that row's.
    - control_acc, selectivity, selectivity_ci_low/high: the control task's accuracy and the selectivity (Hewitt
      and Liang 2019: test_acc - control_acc) at the best layer; NaN without `probe.control`.
    - expected_layer (`expected_layer` over the best pooling's layers and mean test accuracies), expected_position
      (expected_layer / depth); selectivity_layer, selectivity_best: the best pooling's layer of the highest
      selectivity (ties: the lowest) and that selectivity.
    - reference: the model it is compared with (`reference_model`: the scope's fine-tuned teacher, in scope
      `pretrained` the pre-trained teacher), if the table has it; reference_diff, reference_diff_ci_low/high,
      p_value: the difference of the best-layer accuracy from the reference's best-layer accuracy (same probing
      task and classifier), paired over seeds (`paired_difference`); significant: p_value < `SIGNIFICANCE`;
      selectivity_share: the best-layer selectivity / the reference's (NaN where the reference's is <= 0 or NaN).
      All NaN (significant False) for the reference itself and where no reference was probed.
    """
    if table.empty:
        raise ValueError("probing_summary: an empty probe table")
    keys = ["scope", "model", "probe_task", "classifier"]
    rows = [_best(group) for _, group in table.assign(_row=range(len(table))).groupby(keys, sort=False)]
    summary = pd.DataFrame(rows)
    by_key = {tuple(r[k] for k in keys): r for _, r in summary.iterrows()}
    compared = []
    for _, row in summary.iterrows():
        ref_model = reference_model(row["scope"])
        ref = by_key.get((row["scope"], ref_model, row["probe_task"], row["classifier"]))
        compared.append({"reference": ref_model if ref is not None else "",
                         **_compare(row, ref if ref is not None and row["model"] != ref_model else None)})
    summary = pd.concat([summary, pd.DataFrame(compared)], axis=1)
    ranks = {"scope": {s: i for i, s in enumerate(pd.unique(table["scope"]))},
             "model": {m: i for i, m in enumerate(model_order(table["model"]))},
             "probe_task": {t: i for i, t in enumerate(pd.unique(table["probe_task"]))},
             "classifier": {c: i for i, c in enumerate(classifier_order(table["classifier"]))}}
    order = summary.assign(**{f"_{k}": summary[k].map(v) for k, v in ranks.items()})
    order = order.sort_values([f"_{k}" for k in keys], kind="stable")
    return order[SUMMARY_COLUMNS].reset_index(drop=True)


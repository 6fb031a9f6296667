"""Where the teacher and the students fail on the dev set, and how confident they are (the thesis's section 6.1).

Reads `results/predictions/{task}/{model}.tsv` of every model (`sentence, gold, pred, confidence, p_<label>...`,
the rows of `dev.tsv` in order) and writes, per task (`analyse`): per-model scores, average confidence with its
standard deviation (overall, on hits, on mistakes) and calibration (`models.csv`, `calibration.csv`), the `top_k`
most and least confident mistakes and hits of each model (`mistakes.csv`, `hits.csv`), which models get each
sentence wrong (`wrong.csv`) and how many mistakes each set of models shares (`mistake_sets.csv`: a set of one
model is that model's unique mistakes), pairwise agreement (`agreement.csv`), the hits and mistakes model M1 shares
with M2 as a share of M1's (`overlap.csv`, the thesis's appendix figure `fig:hits-mistakes-overlap-all`), the
Pearson correlation of two models' confidences with its p-value (`correlation.csv`, thesis
`fig:confidence-correlation`), the class distribution of every split (`classes.csv`, thesis `fig:class-balance`),
a Markdown summary and the plots of `kdprobe.report.prediction_plots`. Settings (`analysis` section): `top_k`,
`calibration_bins`, `histogram_bins`.

Confidence is the probability of the predicted class (thesis section 6.2); a hit is a correct prediction, a
mistake a wrong one.
"""

from __future__ import annotations

import itertools
import logging
import os
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import pearsonr

from kdprobe.errors import InputError
from kdprobe.report.calibration import expected_calibration_error, reliability_table
from kdprobe.splits import label_ids, read_split

log = logging.getLogger(__name__)

REQUIRED = ("sentence", "gold", "pred", "confidence")
#: The output files of `analyse`, by key (the rule's named outputs).
OUTPUTS = ("summary", "models", "mistakes", "hits", "wrong", "mistake_sets", "agreement", "overlap", "correlation",
           "calibration", "classes", "confidence_plot", "reliability_plot", "agreement_plot", "overlap_plot",
           "correlation_plot", "average_confidence_plot", "classes_plot")
#: Correlations with a p-value below this are marked significant (the thesis's `fig:confidence-correlation`
#: caption, latex/s1513472-minf2.tex: "The ``*'' marks statistically significant correlation (for $p < 0.05$)").
SIGNIFICANCE = 0.05
#: The kinds of example `top_predictions` lists: wrong predictions and correct ones.
OUTCOMES = ("mistakes", "hits")


def read_predictions(paths: Mapping[str, str | os.PathLike]) -> dict[str, pd.DataFrame]:
    """The prediction tables of `{model: path}`, checked: the required columns, confidences in [0, 1], and the same
    sentences with the same gold labels in the same order in every file (they are all the dev set)."""
    if not paths:
        raise ValueError("read_predictions: no prediction files")
    frames: dict[str, pd.DataFrame] = {}
    first: tuple[str, pd.DataFrame] | None = None
    for model, path in paths.items():
        try:
            frame = pd.read_csv(path, sep="\t", keep_default_na=False,
                                dtype={"sentence": str, "gold": str, "pred": str})
        except pd.errors.EmptyDataError:
            raise InputError(path, "empty file") from None
        missing = [c for c in REQUIRED if c not in frame.columns]
        if missing:
            raise InputError(path, f"missing columns {missing} (expected sentence, gold, pred, confidence, "
                                   "p_<label>...)")
        if frame.empty:
            raise InputError(path, "no predictions")
        confidence = pd.to_numeric(frame["confidence"], errors="coerce")
        bad = confidence.isna() | (confidence < 0) | (confidence > 1)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(path, f"confidence {frame['confidence'].iloc[row]!r} is not a number in [0, 1]",
                             line=row + 2)
        frame = frame.assign(confidence=confidence.astype(float))
        if first is None:
            first = (str(path), frame)
        else:
            ref_path, ref = first
            if len(frame) != len(ref):
                raise InputError(path, f"{len(frame)} rows, but {ref_path} has {len(ref)}: not the same dev set")
            differs = (frame["sentence"] != ref["sentence"]) | (frame["gold"] != ref["gold"])
            if differs.any():
                row = int(np.flatnonzero(differs.to_numpy())[0])
                raise InputError(path, f"sentence or gold label differs from {ref_path} (row {row + 1}): "
                                       "not the same dev set", line=row + 2)
        log.info("read %s: %d predictions of %s", path, len(frame), model)
        frames[model] = frame
    return frames


def _wrong(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Boolean frame: one column per model, True where it mispredicts the sentence."""
    return pd.DataFrame({model: (f["pred"] != f["gold"]).to_numpy() for model, f in frames.items()})


def top_predictions(frames: Mapping[str, pd.DataFrame], k: int, outcome: str) -> pd.DataFrame:
    """The `k` most and the `k` least confident `outcome` (`mistakes` | `hits`) of each model (fewer when it has
    fewer; ties in dev order), as the thesis's analysis point P1 lists them. Columns: model, which
    (`most_confident` | `least_confident`), rank (1 = most / least confident), row (1-based dev row), sentence,
    gold, pred, confidence."""
    if k < 1:
        raise ValueError(f"top_k must be at least 1, got {k}")
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
    parts = []
    for model, frame in frames.items():
        correct = (frame["pred"] == frame["gold"]).to_numpy()
        chosen_rows = frame[correct if outcome == "hits" else ~correct].assign(row=lambda f: f.index + 1)
        for which, ascending in (("most_confident", False), ("least_confident", True)):
            chosen = chosen_rows.sort_values("confidence", ascending=ascending, kind="stable").head(k)
            parts.append(chosen.assign(model=model, which=which, rank=np.arange(1, len(chosen) + 1)))
    columns = ["model", "which", "rank", "row", "sentence", "gold", "pred", "confidence"]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def _set_name(models: tuple[str, ...]) -> str:
    return "+".join(models)


def _wrong_by(wrong: pd.DataFrame) -> pd.Series:
    """Per sentence, the models that get it wrong joined by '+' in model order ('' for none)."""
    return wrong.apply(lambda flags: _set_name(tuple(m for m in wrong.columns if flags[m])), axis=1)


def wrong_sentences(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Every dev sentence at least one model gets wrong: row (1-based), sentence, gold, `pred_<model>` of each
    model, `wrong_by` (the models that get it wrong, joined by '+', in model order)."""
    wrong = _wrong(frames)
    any_wrong = wrong.any(axis=1).to_numpy()
    first = next(iter(frames.values()))
    table = pd.DataFrame({"row": np.arange(1, len(first) + 1), "sentence": first["sentence"], "gold": first["gold"]})
    for model, frame in frames.items():
        table[f"pred_{model}"] = frame["pred"].to_numpy()
    table["wrong_by"] = _wrong_by(wrong).to_numpy()
    return table[any_wrong].reset_index(drop=True)


def mistake_sets(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """For every non-empty set of models, the dev sentences exactly that set gets wrong (a set of one model: the
    mistakes unique to it; all models: the shared ones). Columns: wrong_by, models (set size), sentences, share
    (of the dev set). Sets in order of size, then model order; sets with no sentence are listed with 0."""
    wrong = _wrong(frames)
    models = list(frames)
    n = len(wrong)
    counts = _wrong_by(wrong).value_counts()
    rows = []
    for size in range(1, len(models) + 1):
        for subset in itertools.combinations(models, size):
            count = int(counts.get(_set_name(subset), 0))
            rows.append({"wrong_by": _set_name(subset), "models": size, "sentences": count,
                         "share": count / n if n else 0.0})
    return pd.DataFrame(rows, columns=["wrong_by", "models", "sentences", "share"])


def agreement(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Every ordered pair of models (a model with itself included), so the table is a symmetric matrix in long form:
    `agreement` (share of dev sentences on which both predict the same label; 1 on the diagonal), `both_wrong`
    (share of dev sentences both get wrong; on the diagonal the model's error rate) and `mistake_overlap` (sentences
    both get wrong / sentences either gets wrong, Jaccard; NaN when neither makes a mistake)."""
    models = list(frames)
    wrong = _wrong(frames)
    rows = []
    for a, b in itertools.product(models, models):
        same = (frames[a]["pred"].to_numpy() == frames[b]["pred"].to_numpy())
        both = wrong[a].to_numpy() & wrong[b].to_numpy()
        either = wrong[a].to_numpy() | wrong[b].to_numpy()
        rows.append({"model_a": a, "model_b": b, "agreement": float(same.mean()), "both_wrong": float(both.mean()),
                     "mistake_overlap": float(both.sum() / either.sum()) if either.any() else float("nan")})
    return pd.DataFrame(rows, columns=["model_a", "model_b", "agreement", "both_wrong", "mistake_overlap"])


def agreement_matrix(table: pd.DataFrame, value: str) -> pd.DataFrame:
    """`agreement()`'s long table as a model x model matrix of `value`, rows and columns in model order."""
    order = list(pd.unique(table["model_a"]))
    return table.pivot(index="model_a", columns="model_b", values=value).loc[order, order]


def overlap(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Every ordered pair (M1, M2) of models, M1 = M2 included: how many hits (mistakes) M1 makes, how many of them
    M2 makes too, and that as a share of M1's (NaN when M1 has none), as the thesis's appendix figure
    `fig:hits-mistakes-overlap-all` defines it (its `Prediction analysis.ipynb`: hits of M1 and M2 / hits of M1).
    Columns: model_1, model_2, hits_1, hits_shared, hits_share, mistakes_1, mistakes_shared, mistakes_share."""
    wrong = _wrong(frames)
    rows = []
    for a, b in itertools.product(frames, frames):
        row: dict[str, Any] = {"model_1": a, "model_2": b}
        for outcome, flags_a, flags_b in (("hits", ~wrong[a], ~wrong[b]), ("mistakes", wrong[a], wrong[b])):
            own, shared = int(flags_a.sum()), int((flags_a & flags_b).sum())
            row |= {f"{outcome}_1": own, f"{outcome}_shared": shared,
                    f"{outcome}_share": shared / own if own else float("nan")}
        rows.append(row)
    return pd.DataFrame(rows, columns=["model_1", "model_2", "hits_1", "hits_shared", "hits_share", "mistakes_1",
                                       "mistakes_shared", "mistakes_share"])


def overlap_matrix(table: pd.DataFrame, value: str) -> pd.DataFrame:
    """`overlap()`'s long table as an M1 x M2 matrix of `value`, rows and columns in model order."""
    order = list(pd.unique(table["model_1"]))
    return table.pivot(index="model_1", columns="model_2", values=value).loc[order, order]


def confidence_correlation(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Every pair of different models (in model order): the Pearson correlation `r` of their dev confidences, its
    two-sided p-value (`scipy.stats.pearsonr`) and `significant` (p < `SIGNIFICANCE`), as in the thesis's
    `fig:confidence-correlation`. `r` and `p_value` are NaN (not significant) when either model's confidence is
    constant or there are fewer than 3 sentences: the correlation is undefined there."""
    rows = []
    for a, b in itertools.combinations(frames, 2):
        x, y = frames[a]["confidence"].to_numpy(), frames[b]["confidence"].to_numpy()
        if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
            r = p = float("nan")
        else:
            result = pearsonr(x, y)
            r, p = float(result.statistic), float(result.pvalue)
        rows.append({"model_a": a, "model_b": b, "sentences": len(x), "r": r, "p_value": p,
                     "significant": bool(p < SIGNIFICANCE)})
    return pd.DataFrame(rows, columns=["model_a", "model_b", "sentences", "r", "p_value", "significant"])


def class_distribution(split_paths: Mapping[str, str | os.PathLike], labels: Sequence[str]) -> pd.DataFrame:
    """How many examples of each label (in `labels` order, zeros included) every split `{name: TSV}` holds, and
    their share of the split (the thesis's `fig:class-balance`). Columns: split, label, count, share; a split
    file that repeats an earlier one (GLUE's test = dev) has `repeats` naming that split, else ''."""
    rows = []
    seen: dict[str, pd.DataFrame] = {}
    for split, path in split_paths.items():
        frame = read_split(path)
        label_ids(path, frame["label"].tolist(), labels)  # an unknown label names its line
        repeats = next((name for name, other in seen.items() if other.equals(frame)), "")
        seen[split] = frame
        counts = frame["label"].value_counts()
        for label in labels:
            count = int(counts.get(label, 0))
            rows.append({"split": split, "label": label, "count": count,
                         "share": count / len(frame) if len(frame) else float("nan"), "repeats": repeats})
    return pd.DataFrame(rows, columns=["split", "label", "count", "share", "repeats"])


def calibration(frames: Mapping[str, pd.DataFrame], bins: int) -> pd.DataFrame:
    """`calibration.reliability_table` of each model, with a leading `model` column."""
    parts = [reliability_table(f["confidence"].to_numpy(), (f["pred"] == f["gold"]).to_numpy(), bins)
             .assign(model=model) for model, f in frames.items()]
    table = pd.concat(parts, ignore_index=True)
    return table[["model", *[c for c in table.columns if c != "model"]]]


def _mean_std(values: np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1, as pandas' `std` the thesis's notebook used); NaN when too few."""
    mean = float(values.mean()) if len(values) else float("nan")
    return mean, float(values.std(ddof=1)) if len(values) > 1 else float("nan")


def model_summary(frames: Mapping[str, pd.DataFrame], bins: int) -> pd.DataFrame:
    """One row per model: sentences, accuracy, mistakes, unique_mistakes (no other model makes them), the mean and
    standard deviation of the confidence overall, on hits (`_correct`) and on mistakes (`_wrong`) (the thesis's
    `fig:prediction-analysis-avg-confidence`), and ece (`calibration_bins` bins)."""
    wrong = _wrong(frames)
    rows = []
    for model, frame in frames.items():
        mistaken = wrong[model].to_numpy()
        others = wrong.drop(columns=[model]).any(axis=1).to_numpy() if len(frames) > 1 else np.zeros_like(mistaken)
        conf = frame["confidence"].to_numpy()
        row: dict[str, Any] = {"model": model, "sentences": len(frame), "accuracy": float(1 - mistaken.mean()),
                               "mistakes": int(mistaken.sum()), "unique_mistakes": int((mistaken & ~others).sum())}
        for suffix, chosen in (("", conf), ("_correct", conf[~mistaken]), ("_wrong", conf[mistaken])):
            row[f"mean_confidence{suffix}"], row[f"std_confidence{suffix}"] = _mean_std(chosen)
        row["ece"] = expected_calibration_error(conf, ~mistaken, bins)
        rows.append(row)
    return pd.DataFrame(rows)


def _md_table(frame: pd.DataFrame, floats: str = "{:.3f}") -> list[str]:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "n/a" if np.isnan(value) else floats.format(value)
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + " --- |" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return lines


def _pm(mean: float, std: float) -> str:
    return "n/a" if np.isnan(mean) else f"{mean:.3f} ± {std:.3f}" if not np.isnan(std) else f"{mean:.3f}"


def _confidence_lines(models: pd.DataFrame) -> list[str]:
    table = pd.DataFrame({"model": models["model"], **{
        name: [_pm(m, s) for m, s in zip(models[f"mean_confidence{suffix}"], models[f"std_confidence{suffix}"])]
        for name, suffix in (("all", ""), ("hits", "_correct"), ("mistakes", "_wrong"))}})
    return ["", "## Average confidence (mean ± standard deviation)", ""] + _md_table(table)


def _overlap_lines(table: pd.DataFrame) -> list[str]:
    lines = []
    for outcome in OUTCOMES:
        matrix = (overlap_matrix(table, f"{outcome}_share") * 100).reset_index().rename(columns={"model_1": "M1"})
        lines += ["", f"## Shared {outcome}: % of M1's {outcome} that M2 (column) makes too", ""]
        lines += _md_table(matrix, "{:.1f}")
    return lines


def _correlation_lines(table: pd.DataFrame) -> list[str]:
    shown = pd.DataFrame({"models": table["model_a"] + " / " + table["model_b"],
                          "r": [("n/a" if np.isnan(r) else f"{r:.3f}") + ("*" if sig else "")
                                for r, sig in zip(table["r"], table["significant"])],
                          "p_value": table["p_value"]})
    return (["", f"## Pearson correlation of the confidences (* p < {SIGNIFICANCE})", ""]
            + (_md_table(shown, "{:.3g}") if len(shown) else ["one model only"]))


def _examples_lines(top: pd.DataFrame, outcome: str) -> list[str]:
    shown = top[(top["which"] == "most_confident") & (top["rank"] <= 3)]
    return (["", f"## Most confident {outcome}", ""]
            + (_md_table(shown[["model", "rank", "sentence", "gold", "pred", "confidence"]]) if len(shown)
               else ["none"]))


def summary_markdown(task: str, tables: Mapping[str, pd.DataFrame], settings: Mapping[str, Any]) -> str:
    """The short Markdown summary of one task from `analyse`'s tables (by output key): scores and calibration,
    average confidence, shared and unique mistakes, agreement, overlap of hits and mistakes, confidence correlation,
    and each model's most confident mistakes and hits (at most 3 shown; `mistakes.csv`, `hits.csv` have `top_k`)."""
    models = tables["models"]
    n = int(models["sentences"].iloc[0])
    lines = [f"# Prediction analysis: {task}", "",
             f"{n} dev sentences; expected calibration error (ECE) over {settings['calibration_bins']} "
             "equal-width confidence bins; confidence = the predicted class's probability.", "", "## Models", ""]
    lines += _md_table(models[["model", "sentences", "accuracy", "mistakes", "unique_mistakes", "ece"]])
    lines += _confidence_lines(models)
    lines += ["", "## Mistakes by the set of models that make them", "",
              "A set of one model: mistakes no other model makes.", ""]
    lines += _md_table(tables["mistake_sets"])
    lines += ["", "## Agreement (share of dev sentences with the same predicted label)", ""]
    matrix = agreement_matrix(tables["agreement"], "agreement").reset_index().rename(columns={"model_a": "model"})
    lines += _md_table(matrix)
    lines += _overlap_lines(tables["overlap"])
    lines += _correlation_lines(tables["correlation"])
    lines += _examples_lines(tables["mistakes"], "mistakes") + _examples_lines(tables["hits"], "hits")
    return "\n".join(lines) + "\n"

"""Where the teacher and the students fail on the dev set, and how confident they are (the thesis's section 6.1).

Reads `results/predictions/{task}/{model}.tsv` of every model (`sentence, gold, pred, confidence, p_<label>...`,
the rows of `dev.tsv` in order) and writes, per task (`analyse`): per-model scores and calibration (`models.csv`,
`calibration.csv`), the `top_k` most and least confident mistakes of each model (`mistakes.csv`), which models get
each sentence wrong (`wrong.csv`) and how many mistakes each set of models shares (`mistake_sets.csv`: a set of one
model is that model's unique mistakes), pairwise agreement (`agreement.csv`), a Markdown summary and the plots of
`kdprobe.report.prediction_plots`. Settings (`analysis` section): `top_k`, `calibration_bins`, `histogram_bins`.
"""

from __future__ import annotations

import itertools
import logging
import os
from typing import Any, Mapping

import numpy as np
import pandas as pd

from kdprobe.errors import InputError
from kdprobe.report.calibration import expected_calibration_error, reliability_table

log = logging.getLogger(__name__)

REQUIRED = ("sentence", "gold", "pred", "confidence")
#: The output files of `analyse`, by key (the rule's named outputs).
OUTPUTS = ("summary", "models", "mistakes", "wrong", "mistake_sets", "agreement", "calibration",
           "confidence_plot", "reliability_plot", "agreement_plot")


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


def top_mistakes(frames: Mapping[str, pd.DataFrame], k: int) -> pd.DataFrame:
    """The `k` most and the `k` least confident mistakes of each model (fewer when it makes fewer; ties in dev
    order). Columns: model, which (`most_confident` | `least_confident`), rank (1 = most / least confident),
    row (1-based dev row), sentence, gold, pred, confidence."""
    if k < 1:
        raise ValueError(f"top_k must be at least 1, got {k}")
    parts = []
    for model, frame in frames.items():
        wrong = frame[frame["pred"] != frame["gold"]].assign(row=lambda f: f.index + 1)
        for which, ascending in (("most_confident", False), ("least_confident", True)):
            chosen = wrong.sort_values("confidence", ascending=ascending, kind="stable").head(k)
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


def calibration(frames: Mapping[str, pd.DataFrame], bins: int) -> pd.DataFrame:
    """`calibration.reliability_table` of each model, with a leading `model` column."""
    parts = [reliability_table(f["confidence"].to_numpy(), (f["pred"] == f["gold"]).to_numpy(), bins)
             .assign(model=model) for model, f in frames.items()]
    table = pd.concat(parts, ignore_index=True)
    return table[["model", *[c for c in table.columns if c != "model"]]]


def model_summary(frames: Mapping[str, pd.DataFrame], bins: int) -> pd.DataFrame:
    """One row per model: sentences, accuracy, mistakes, unique_mistakes (no other model makes them),
    mean_confidence (overall, on correct and on wrong predictions) and ece (`calibration_bins` bins)."""
    wrong = _wrong(frames)
    rows = []
    for model, frame in frames.items():
        mistaken = wrong[model].to_numpy()
        others = wrong.drop(columns=[model]).any(axis=1).to_numpy() if len(frames) > 1 else np.zeros_like(mistaken)
        conf = frame["confidence"].to_numpy()
        rows.append({
            "model": model, "sentences": len(frame), "accuracy": float(1 - mistaken.mean()),
            "mistakes": int(mistaken.sum()), "unique_mistakes": int((mistaken & ~others).sum()),
            "mean_confidence": float(conf.mean()),
            "mean_confidence_correct": float(conf[~mistaken].mean()) if (~mistaken).any() else float("nan"),
            "mean_confidence_wrong": float(conf[mistaken].mean()) if mistaken.any() else float("nan"),
            "ece": expected_calibration_error(conf, ~mistaken, bins),
        })
    return pd.DataFrame(rows)


def _md_table(frame: pd.DataFrame, floats: str = "{:.3f}") -> list[str]:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "n/a" if np.isnan(value) else floats.format(value)
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + " --- |" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return lines


def summary_markdown(task: str, models: pd.DataFrame, sets: pd.DataFrame, agree: pd.DataFrame,
                     mistakes: pd.DataFrame, settings: Mapping[str, Any]) -> str:
    """The short Markdown summary of one task: scores and calibration, shared and unique mistakes, agreement, and
    each model's most confident mistakes (at most 3 shown; `mistakes.csv` has `top_k`)."""
    n = int(models["sentences"].iloc[0])
    lines = [f"# Prediction analysis: {task}", "",
             f"{n} dev sentences; expected calibration error (ECE) over {settings['calibration_bins']} "
             "equal-width confidence bins.", "", "## Models", ""]
    lines += _md_table(models)
    lines += ["", "## Mistakes by the set of models that make them", "",
              "A set of one model: mistakes no other model makes.", ""]
    lines += _md_table(sets)
    lines += ["", "## Agreement (share of dev sentences with the same predicted label)", ""]
    matrix = agreement_matrix(agree, "agreement").reset_index().rename(columns={"model_a": "model"})
    lines += _md_table(matrix)
    lines += ["", "## Most confident mistakes", ""]
    top = mistakes[(mistakes["which"] == "most_confident") & (mistakes["rank"] <= 3)]
    lines += _md_table(top[["model", "rank", "sentence", "gold", "pred", "confidence"]]) if len(top) else ["none"]
    return "\n".join(lines) + "\n"

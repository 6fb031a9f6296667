"""The prediction analysis of one task (rule `analyse_predictions`): every table of `kdprobe.report.predictions`
and every figure of `kdprobe.report.prediction_plots`, written to the paths the rule names."""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping

import pandas as pd

from kdprobe.io import write_csv, write_text
from kdprobe.report import prediction_plots as plots
from kdprobe.report.figures import save_figure
from kdprobe.report.predictions import (OUTPUTS, agreement, calibration, class_distribution, confidence_correlation,
                                        mistake_sets, model_summary, overlap, read_predictions, summary_markdown,
                                        top_predictions, wrong_sentences)
from kdprobe.splits import load_labels

log = logging.getLogger(__name__)


def analyse(
    prediction_paths: Mapping[str, str | os.PathLike],
    task: str,
    settings: Mapping[str, Any],
    outputs: Mapping[str, str | os.PathLike],
    data_dir: str | os.PathLike,
) -> dict[str, pd.DataFrame]:
    """Write every file of one task's prediction analysis: `outputs` maps each key of `OUTPUTS` to its path.
    `prediction_paths`: `{model: predictions TSV}` in the order models are reported; `settings`: the `analysis`
    config section; `data_dir`: the task's prepared data (`{train,dev,test}.tsv`, `labels.txt`), whose class
    distribution is tabled. Returns the tables by output key."""
    missing = [key for key in OUTPUTS if key not in outputs]
    if missing:
        raise ValueError(f"analyse: no output path for {missing}")
    bins, hist_bins, top_k = int(settings["calibration_bins"]), int(settings["histogram_bins"]), int(settings["top_k"])
    frames = read_predictions(prediction_paths)
    splits = {split: os.path.join(data_dir, f"{split}.tsv") for split in ("train", "dev", "test")}
    tables = {
        "models": model_summary(frames, bins),
        "mistakes": top_predictions(frames, top_k, "mistakes"),
        "hits": top_predictions(frames, top_k, "hits"),
        "wrong": wrong_sentences(frames),
        "mistake_sets": mistake_sets(frames),
        "agreement": agreement(frames),
        "overlap": overlap(frames),
        "correlation": confidence_correlation(frames),
        "calibration": calibration(frames, bins),
        "classes": class_distribution(splits, load_labels(data_dir)),
    }
    for key, table in tables.items():
        write_csv(outputs[key], table)
        log.info("wrote %s: %d rows", outputs[key], len(table))
    for _, row in tables["models"].iterrows():
        log.info("%s %s: accuracy %.4f, %d mistakes (%d unique), confidence %.3f +- %.3f, ECE %.4f", task,
                 row["model"], row["accuracy"], row["mistakes"], row["unique_mistakes"], row["mean_confidence"],
                 row["std_confidence"], row["ece"])
    for _, row in tables["correlation"].iterrows():
        log.info("%s confidence correlation %s / %s: r %.3f, p %.3g", task, row["model_a"], row["model_b"],
                 row["r"], row["p_value"])
    write_text(outputs["summary"], summary_markdown(task, tables, settings))
    figures = {
        "confidence_plot": lambda: plots.confidence_figure(frames, hist_bins, task),
        "reliability_plot": lambda: plots.reliability_figure(tables["calibration"], tables["models"], task),
        "agreement_plot": lambda: plots.agreement_figure(tables["agreement"], task),
        "overlap_plot": lambda: plots.overlap_figure(tables["overlap"], task),
        "correlation_plot": lambda: plots.correlation_figure(frames, tables["correlation"], task),
        "average_confidence_plot": lambda: plots.average_confidence_figure(tables["models"], task),
        "classes_plot": lambda: plots.classes_figure(tables["classes"], task),
    }
    for key, figure in figures.items():
        save_figure(figure(), outputs[key])
    return tables

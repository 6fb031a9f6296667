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
from kdprobe.report.predictions import (OUTPUTS, agreement, calibration, mistake_sets, model_summary, read_predictions,
                                        summary_markdown, top_mistakes, wrong_sentences)

log = logging.getLogger(__name__)


def analyse(
    prediction_paths: Mapping[str, str | os.PathLike],
    task: str,
    settings: Mapping[str, Any],
    outputs: Mapping[str, str | os.PathLike],
) -> dict[str, pd.DataFrame]:
    """Write every file of one task's prediction analysis: `outputs` maps each key of `OUTPUTS` to its path.
    `prediction_paths`: `{model: predictions TSV}` in the order models are reported; `settings`: the `analysis`
    config section. Returns the tables by output key."""
    missing = [key for key in OUTPUTS if key not in outputs]
    if missing:
        raise ValueError(f"analyse: no output path for {missing}")
    bins, hist_bins = int(settings["calibration_bins"]), int(settings["histogram_bins"])
    frames = read_predictions(prediction_paths)
    tables = {
        "models": model_summary(frames, bins),
        "mistakes": top_mistakes(frames, int(settings["top_k"])),
        "wrong": wrong_sentences(frames),
        "mistake_sets": mistake_sets(frames),
        "agreement": agreement(frames),
        "calibration": calibration(frames, bins),
    }
    for key, table in tables.items():
        write_csv(outputs[key], table)
        log.info("wrote %s: %d rows", outputs[key], len(table))
    for _, row in tables["models"].iterrows():
        log.info("%s %s: accuracy %.4f, %d mistakes (%d unique), ECE %.4f", task, row["model"], row["accuracy"],
                 row["mistakes"], row["unique_mistakes"], row["ece"])
    write_text(outputs["summary"], summary_markdown(task, tables["models"], tables["mistake_sets"],
                                                    tables["agreement"], tables["mistakes"], settings))
    save_figure(plots.confidence_figure(frames, hist_bins, task), outputs["confidence_plot"])
    save_figure(plots.reliability_figure(tables["calibration"], tables["models"], task), outputs["reliability_plot"])
    save_figure(plots.agreement_figure(tables["agreement"], task), outputs["agreement_plot"])
    return tables

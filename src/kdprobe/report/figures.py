"""What every kdprobe plot shares: the Agg backend, sizes readable at a report's width, model names and colours,
and atomic PNG writing."""

from __future__ import annotations

import logging
import os

import matplotlib

matplotlib.use("Agg")  # files only: no display, no GUI toolkit

import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.figure import Figure  # noqa: E402

from kdprobe.io import atomic_path  # noqa: E402
from kdprobe.registry import EMBED_MODELS, METRIC_DISPLAY, METRIC_UNITS, MODEL_DISPLAY, RANDOM_MODELS  # noqa: E402

log = logging.getLogger(__name__)

#: Pixels per inch of the PNGs: a figure 9 inches wide is 900 pixels, about a report's width.
DPI = 100
#: Colours of the models, the same in every plot (their names: `registry.MODEL_DISPLAY`).
MODEL_COLOURS = {"pretrained": "#7f7f7f", "teacher": "#1f77b4", "bert_s": "#ff7f0e", "lstm_s": "#2ca02c",
                 "gpt2": "#9467bd"}
#: A random-encoder baseline (`registry.RANDOM_MODELS`) in a light shade of its architecture's colour (matplotlib's
#: tab20 pairs), so it reads as that model's and stays apart from it with the same line styles.
RANDOM_COLOURS = {"teacher": "#aec7e8", "bert_s": "#ffbb78", "lstm_s": "#98df8a"}
#: Line styles and markers of the poolings in probing plots (markers tell poolings apart at a single layer).
POOLING_STYLES = {"mean": "-", "cls": "--", "max": ":", "last": "-."}
POOLING_MARKERS = {"mean": "o", "cls": "D", "max": "^", "last": "s"}

plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 9,
                     "figure.titlesize": 12, "axes.grid": True, "grid.alpha": 0.3})


def model_name(model: str) -> str:
    return MODEL_DISPLAY.get(model, model)


def model_colour(model: str) -> str | None:
    """The model's colour; an embed. baseline (`{student}_embed`) has its student's, a random baseline
    (`{model}_random`) a light shade of its architecture's (`RANDOM_COLOURS`)."""
    if model in RANDOM_MODELS:
        return RANDOM_COLOURS[RANDOM_MODELS[model]]
    return MODEL_COLOURS.get(model, MODEL_COLOURS.get(EMBED_MODELS.get(model, "")))


def metric_label(metric: str) -> str:
    """'dev MCC (-1 to 1)' for 'mcc' or 'dev_mcc'."""
    name = metric.removeprefix("dev_")
    return f"dev {METRIC_DISPLAY.get(name, name)} ({METRIC_UNITS.get(name, 'fraction')})"


def new_figure(width: float, height: float, nrows: int = 1, ncols: int = 1, **kwargs):
    """A figure of `width` x `height` inches (at `DPI`) with a grid of axes (`plt.subplots` arguments)."""
    return plt.subplots(nrows, ncols, figsize=(width, height), dpi=DPI, squeeze=False, **kwargs)


def save_figure(fig: Figure, path: str | os.PathLike) -> None:
    """Write `fig` as a PNG at `path` (under a temporary name first) and close it."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    finally:
        plt.close(fig)
    log.info("wrote %s", path)

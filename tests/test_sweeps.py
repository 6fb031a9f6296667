"""A sweep's summary (kdprobe.report.sweeps): the table from each grid point's metrics.json, the dev-score plot
against the setting, every point's curves in one figure, and errors naming the file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kdprobe.errors import InputError
from kdprobe.report.sweeps import CONFIGURED, curves_figure, sweep_figure, sweep_table, write_sweep_summary

PNG = b"\x89PNG\r\n\x1a\n"


def metrics(path, dev, test, epoch=3, params=1000):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"best_epoch": epoch, "dev": {"mcc": dev, "accuracy": 0.7}, "test": {"mcc": test},
                                "n_params": params, "n_params_without_embeddings": params // 2, "student": "lstm_s"}))
    return path


def curve(path, dev_at_end):
    epochs = np.arange(1, 5, dtype=float)
    pd.DataFrame({"step": epochs * 10, "epoch": epochs, "loss": 2 / epochs, "lr": 1e-3,
                  "dev_mcc": dev_at_end * epochs / 4}).to_csv(path, index=False)
    return path


def points(grid):
    keys = list(grid)
    values = [dict(zip(keys, combo)) for combo in zip(*grid.values())]
    return [{"name": "sweeps/s/" + ",".join(f"{k}={v}" for k, v in point.items()), "values": point}
            for point in values]


def test_table_rows_the_configured_run_then_each_grid_point(tmp_path):
    grid = points({"lr": [1e-3, 1e-2, 1e-1]})
    files = [metrics(tmp_path / f"{i}.json", dev, dev - 0.1, epoch=i + 1) for i, dev in enumerate((0.2, 0.4, 0.1))]
    table = sweep_table("cola", "s", "lstm_s", grid, files, metrics(tmp_path / "own.json", 0.3, 0.25))
    assert list(table["run"]) == [CONFIGURED, *(p["name"] for p in grid)]
    assert list(table["best_dev"]) == [0.3, 0.2, 0.4, 0.1] and list(table["test"]) == pytest.approx([.25, .1, .3, 0])
    assert list(table["lr"])[1:] == [1e-3, 1e-2, 1e-1] and pd.isna(table["lr"].iloc[0])
    assert list(table["best_epoch"]) == [3, 1, 2, 3] and set(table["metric"]) == {"mcc"}
    assert (table["params_without_embeddings"] == 500).all() and set(table["student"]) == {"lstm_s"}
    with pytest.raises(ValueError, match="3 grid points but 2 metrics"):
        sweep_table("cola", "s", "lstm_s", grid, files[:2], tmp_path / "own.json")
    (tmp_path / "bad.json").write_text(json.dumps({"dev": {"accuracy": 0.5}}))
    with pytest.raises(InputError, match=r"bad\.json.*mcc on dev and test"):
        sweep_table("cola", "s", "lstm_s", grid[:1], [tmp_path / "bad.json"], tmp_path / "own.json")


def test_figures_plot_dev_score_against_the_setting_and_every_curve(tmp_path):
    grid = points({"lr": [1e-3, 1e-3, 1e-2, 1e-2], "embedding_mode": ["static", "multichannel"] * 2})
    files = [metrics(tmp_path / f"{i}.json", 0.1 * (i + 1), 0.1) for i in range(4)]
    table = sweep_table("cola", "s", "lstm_s", grid, files, metrics(tmp_path / "own.json", 0.3, 0.25))
    fig = sweep_figure(table, ["lr", "embedding_mode"])
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "lr (log scale)" and ax.get_ylabel() == "best dev MCC (-1 to 1)"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["embedding_mode=static", "embedding_mode=multichannel", "configured settings (own run)"]
    static = ax.get_lines()[0]
    assert list(static.get_xdata()) == [1e-3, 1e-2] and list(static.get_ydata()) == pytest.approx([0.1, 0.3])
    # a categorical setting gets one tick per value, in grid order
    cat = points({"embeddings": ["word2vec", "teacher"]})
    table = sweep_table("cola", "s", "lstm_s", cat, files[:2], tmp_path / "own.json")
    ax = sweep_figure(table, ["embeddings"]).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["word2vec", "teacher"] and ax.get_xscale() == "linear"

    curves = [curve(tmp_path / f"c{i}.csv", 0.1 * (i + 1)) for i in range(2)]
    write_sweep_summary("cola", "s", "lstm_s", cat, files[:2], curves, tmp_path / "own.json", tmp_path / "s.csv",
                        tmp_path / "s.png", tmp_path / "s_curves.png")
    assert (tmp_path / "s.png").read_bytes()[:8] == PNG == (tmp_path / "s_curves.png").read_bytes()[:8]
    assert pd.read_csv(tmp_path / "s.csv").shape[0] == 3
    fig = curves_figure({"embeddings=word2vec": pd.read_csv(curves[0])}, "cola", "title")
    dev_ax, loss_ax = fig.axes
    assert dev_ax.get_ylabel() == "dev MCC (-1 to 1)" and loss_ax.get_yscale() == "log"
    assert dev_ax.get_xlabel() == loss_ax.get_xlabel() == "epoch"
    assert [t.get_text() for t in dev_ax.get_legend().get_texts()] == ["embeddings=word2vec"]
    pd.DataFrame({"step": [1], "epoch": [1.0], "loss": [1.0], "dev_accuracy": [0.5]}).to_csv(tmp_path / "x.csv")
    with pytest.raises(InputError, match=r"x\.csv.*dev_mcc"):
        write_sweep_summary("cola", "s", "lstm_s", cat[:1], files[:1], [tmp_path / "x.csv"], tmp_path / "own.json",
                            tmp_path / "t.csv", tmp_path / "t.png", tmp_path / "t_curves.png")
    assert not any((tmp_path / name).exists() for name in ("t.csv", "t.png", "t_curves.png"))


def test_sizes_plot_at_their_fractions_and_per_point_settings_label_the_markers(tmp_path):
    slim = points({"width": [1, "1/2", "1/16", 1, "1/2", "1/16"], "depth": [1, 1, 1, "1/2", "1/2", "1/2"]})
    files = [metrics(tmp_path / f"{i}.json", 0.1 * (i + 1), 0.1) for i in range(6)]
    table = sweep_table("cola", "s", "bert_s", slim, files, metrics(tmp_path / "own.json", 0.3, 0.25))
    assert list(table["width"])[1:] == [1, "1/2", "1/16"] * 2  # the table keeps them as written
    ax = sweep_figure(table, ["width", "depth"]).axes[0]
    assert ax.get_xscale() == "log" and [t.get_text() for t in ax.get_legend().get_texts()][:2] == ["depth=1",
                                                                                                    "depth=1/2"]
    assert list(ax.get_lines()[0].get_xdata()) == [1.0, 0.5, 0.0625]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "1/2", "1/16"]
    # points with a learning rate each: one line per depth, each marker labelled with its lr
    big = points({"width": [1, 2, 1, 2], "depth": [1, 1, 2, 2], "lr": [5e-4, 1e-4, 5e-4, 8e-5]})
    table = sweep_table("cola", "s", "bert_s", big, files[:4], tmp_path / "own.json")
    ax = sweep_figure(table, ["width", "depth", "lr"]).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["depth=1", "depth=2", "configured settings (own run)"]
    assert [t.get_text() for t in ax.texts] == ["lr=0.0005", "lr=0.0001", "lr=0.0005", "lr=8e-05"]
    assert list(ax.get_lines()[1].get_xdata()) == [1.0, 2.0]

"""Probing results on a common depth axis (the thesis's figure 6.1).

A probe table (`results/probe/{scope}/{model}.csv`, `kdprobe.probe.run.COLUMNS`) numbers layers from 0 (the
embeddings; BERT models only) to the model's depth. So that the 24-layer teacher and a 5-layer student share an
axis, a layer's position is `layer / depth`: 1 is the top layer of every model. The depth is the model's own (its
`config.json`'s `num_hidden_layers`, a student's `student.json` `layers`), never the largest layer probed.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from kdprobe.errors import InputError
from kdprobe.io import read_csv_table
from kdprobe.registry import EMBED_KIND, EMBED_MODELS

log = logging.getLogger(__name__)

#: Columns of a probe table that the plots read.
REQUIRED = ("model", "probe_task", "layer", "pooling", "test_acc", "majority_acc")
#: Order of the models in plots and tables.
ORDER = ("pretrained", "teacher", "bert_s", "lstm_s", *EMBED_MODELS)


def _positive_int(value, path: Path, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(path, f"{key} is {value!r}, not a positive integer")
    return value


def model_depth(kind: str, model: str | os.PathLike) -> int:
    """Layers above the embeddings of a model: a student directory's `student.json` (`layers`), a Hugging Face
    directory's `config.json` (`num_hidden_layers`), or, for a hub id (the pre-trained teacher), its cached config
    (`transformers.AutoConfig`, offline when `HF_HUB_OFFLINE=1`)."""
    path = Path(model)
    if kind == EMBED_KIND:  # a token table (kdprobe.students.embed): layer 0 only
        return 0
    if kind in ("bert_s", "lstm_s"):
        spec = path / "student.json"
        if not spec.is_file():
            raise InputError(spec, "missing: not a student directory")
        return _positive_int(json.loads(spec.read_text(encoding="utf-8")).get("layers"), spec, "layers")
    config_file = path / "config.json"
    if config_file.is_file():
        data = json.loads(config_file.read_text(encoding="utf-8"))
        return _positive_int(data.get("num_hidden_layers"), config_file, "num_hidden_layers")
    if path.exists():
        raise InputError(config_file, "missing: not a Hugging Face model directory")
    from transformers import AutoConfig  # a hub id: the probe job downloaded (cached) it

    return _positive_int(AutoConfig.from_pretrained(str(model)).num_hidden_layers, path, "num_hidden_layers")


def layer_position(layer: int | pd.Series, depth: int):
    """`layer / depth`: 0 = the embeddings, 1 = the top layer; depth 0 (an embed. baseline, layer 0 only): 0."""
    if depth < 0:
        raise ValueError(f"depth must be at least 0, got {depth}")
    return layer / depth if depth else layer * 0.0


def read_probe_table(path: str | os.PathLike, scope: str, depth: int) -> pd.DataFrame:
    """One merged probe table with `scope` (the downstream task, or `pretrained`), `depth` and `position`
    (`layer_position`) added; a layer outside 0..depth is an InputError (the table and the model disagree)."""
    table = read_csv_table(path, REQUIRED)
    outside = (table["layer"] < 0) | (table["layer"] > depth)
    if outside.any():
        row = int(outside.to_numpy().nonzero()[0][0])
        raise InputError(path, f"layer {table['layer'].iloc[row]} outside 0..{depth}, the model's depth",
                         line=row + 2)
    log.info("read %s: %d rows, depth %d", path, len(table), depth)
    return table.assign(scope=scope, depth=depth, position=layer_position(table["layer"], depth))


def read_probe_tables(entries: Iterable[tuple[str, str | os.PathLike, int]]) -> pd.DataFrame:
    """`read_probe_table` of every `(scope, path, depth)`, concatenated; the pre-trained teacher's rows get model
    `pretrained` (its table may say `teacher` or `pretrained`)."""
    frames = []
    for scope, path, depth in entries:
        table = read_probe_table(path, scope, depth)
        if scope == "pretrained":
            table = table.assign(model="pretrained")
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def model_order(models: Iterable[str]) -> list[str]:
    present = list(dict.fromkeys(models))
    return [m for m in ORDER if m in present] + [m for m in present if m not in ORDER]


def best_layers(table: pd.DataFrame) -> pd.DataFrame:
    """Per scope, model and probing task, the (layer, pooling) with the best test accuracy (the lowest layer, then
    the first pooling, on ties): scope, model, probe_task, layer, depth, position, pooling, test_acc, majority_acc,
    above_majority (test_acc - majority_acc). Probing tasks in table order; models in `ORDER`."""
    tasks = {t: i for i, t in enumerate(pd.unique(table["probe_task"]))}
    models = {m: i for i, m in enumerate(model_order(table["model"]))}
    scopes = {s: i for i, s in enumerate(pd.unique(table["scope"]))}
    ranked = table.assign(_row=range(len(table))).sort_values(
        ["test_acc", "layer", "_row"], ascending=[False, True, True], kind="stable")
    best = ranked.groupby(["scope", "model", "probe_task"], sort=False).head(1)
    best = best.assign(above_majority=best["test_acc"] - best["majority_acc"],
                       _s=best["scope"].map(scopes), _m=best["model"].map(models), _t=best["probe_task"].map(tasks))
    best = best.sort_values(["_s", "_m", "_t"], kind="stable")
    columns = ["scope", "model", "probe_task", "layer", "depth", "position", "pooling", "test_acc", "majority_acc",
               "above_majority"]
    return best[columns].reset_index(drop=True)


def majority_by_task(table: pd.DataFrame) -> Mapping[str, float]:
    """The majority baseline of each probing task (the same for every model: it depends on the data only)."""
    return table.groupby("probe_task", sort=False)["majority_acc"].first().to_dict()

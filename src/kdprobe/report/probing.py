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
from kdprobe.registry import EMBED_KIND, EMBED_MODELS, RANDOM_MODELS

log = logging.getLogger(__name__)

#: Columns of a probe table that the plots, the summary and the results page read (`kdprobe.probe.tables.COLUMNS`;
#: the control columns are empty, NaN, without `probe.control`).
REQUIRED = ("model", "probe_task", "layer", "pooling", "classifier", "test_acc", "test_ci_low", "test_ci_high",
            "majority_acc", "control_acc", "selectivity", "selectivity_ci_low", "selectivity_ci_high",
            "test_acc_by_seed")
#: The probes' classifiers (`probe.classifiers`) in the order tables and plots show them; the first present is the
#: main one (`main_classifier`).
CLASSIFIERS = ("mlp", "linear")
#: Their display names.
CLASSIFIER_NAMES = {"mlp": "MLP", "linear": "linear"}
#: Order of the models in plots and tables.
ORDER = ("pretrained", "teacher", "bert_s", "lstm_s", *EMBED_MODELS, *RANDOM_MODELS)


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
    """`read_probe_table` of every `(scope, path, depth)`, concatenated; in scope `pretrained` the pre-trained
    teacher's rows get model `pretrained` (its table may say `teacher` or `pretrained`; `teacher_random`, also in
    that scope, keeps its name)."""
    frames = []
    for scope, path, depth in entries:
        table = read_probe_table(path, scope, depth)
        if scope == "pretrained":
            table = table.assign(model=table["model"].replace({"teacher": "pretrained"}))
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def model_order(models: Iterable[str]) -> list[str]:
    present = list(dict.fromkeys(models))
    return [m for m in ORDER if m in present] + [m for m in present if m not in ORDER]


def classifier_order(classifiers: Iterable[str]) -> list[str]:
    """The classifiers present, `CLASSIFIERS` first (mlp, linear), then any other in table order."""
    present = list(dict.fromkeys(classifiers))
    return [c for c in CLASSIFIERS if c in present] + [c for c in present if c not in CLASSIFIERS]


def main_classifier(table: pd.DataFrame) -> str:
    """The classifier the accuracy figures and the overview show: mlp if probed, else the first of the table."""
    return classifier_order(table["classifier"])[0]


def majority_by_task(table: pd.DataFrame) -> Mapping[str, float]:
    """The majority baseline of each probing task (the same for every model: it depends on the data only)."""
    return table.groupby("probe_task", sort=False)["majority_acc"].first().to_dict()

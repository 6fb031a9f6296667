"""Hand-written sentences scored by every trained model: the thesis's perturbed-CoLA table (its section 6.2 and
appendix table `tab:own-CoLA-diagnostics`), for any task.

The sentences come from config (`analysis.score_sentences.<task>`: each entry a sentence, or `{sentence, label,
original}`: the label a name of the task's `labels.txt`, `original` whether it is a dev sentence rather than a
perturbed variant) or from the command line (`kdprobe score`, `kdprobe.cli`). `score_sentences` runs each model
(`predict.predictions.class_probabilities`: the same loading, truncation, batching and checks as the dev
predictions) and
returns one row per sentence: `sentence, label, original`, then `pred_<model>, confidence_<model>` of each model
(confidence = the predicted class's probability).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd
import torch

from kdprobe.errors import ConfigError
from kdprobe.predict.predictions import class_probabilities
from kdprobe.splits import normalise

log = logging.getLogger(__name__)

#: Columns before the per-model ones.
COLUMNS = ("sentence", "label", "original")


@dataclass(frozen=True)
class Sentence:
    """One sentence to score: its text, its expected label (None: not given) and whether it is an original
    (unperturbed) sentence."""

    text: str
    label: str | None = None
    original: bool = False


def sentence_entries(entries: Sequence[Any], key: str, labels: Sequence[str]) -> list[Sentence]:
    """The config list `key` (`analysis.score_sentences.<task>`) as `Sentence`s, checked: each entry a non-empty
    string or a mapping with a non-empty `sentence`, a `label` among `labels`, a boolean `original`; a bad entry is
    a `ConfigError` naming `key[i]`."""
    out = []
    for i, entry in enumerate(entries):
        where = f"{key}[{i}]"
        item = {"sentence": entry} if isinstance(entry, str) else entry
        if not isinstance(item, Mapping) or not isinstance(item.get("sentence"), str):
            raise ConfigError(where, f"expected a sentence or {{sentence, label, original}}, got {entry!r}")
        unknown = sorted(set(item) - {"sentence", "label", "original"})
        if unknown:
            raise ConfigError(where, f"unknown keys {unknown} (expected sentence, label, original)")
        text = normalise(item["sentence"])
        if not text:
            raise ConfigError(where, "the sentence is empty")
        label = item.get("label")
        if label is not None and str(label) not in labels:
            raise ConfigError(where, f"label {label!r} is not one of the task's labels ({', '.join(labels)})")
        original = item.get("original", False)
        if not isinstance(original, bool):
            raise ConfigError(where, f"original must be true or false, got {original!r}")
        out.append(Sentence(text, None if label is None else str(label), original))
    return out


def score_sentences(
    sentences: Sequence[Sentence],
    models: Mapping[str, str | Path],
    labels: Sequence[str],
    max_lengths: Mapping[str, int | None],
    device: torch.device | str = "cpu",
    batch_size: int = 64,
) -> pd.DataFrame:
    """Every sentence scored by every model of `{kind: model_dir}` (in that order): `COLUMNS`, then
    `pred_<kind>` (a label name) and `confidence_<kind>`; `label` is '' where none was given."""
    if not sentences:
        raise ConfigError("analysis.score_sentences", "no sentences to score")
    texts = [s.text for s in sentences]
    table = pd.DataFrame({"sentence": texts, "label": [s.label or "" for s in sentences],
                          "original": [s.original for s in sentences]})
    for kind, model_dir in models.items():
        probs = class_probabilities(kind, model_dir, texts, labels, max_lengths.get(kind), device, batch_size,
                                    lambda i: f"sentence {i + 1} ({texts[i]!r})", "the task's labels.txt")
        table[f"pred_{kind}"] = [labels[i] for i in probs.argmax(axis=1)]
        table[f"confidence_{kind}"] = probs.max(axis=1)
        given = table["label"] != ""
        if given.any():
            log.info("%s: %d of %d labelled sentences as labelled", kind,
                     int((table.loc[given, f"pred_{kind}"] == table.loc[given, "label"]).sum()), int(given.sum()))
    return table


def format_table(table: pd.DataFrame, models: Sequence[str]) -> str:
    """`score_sentences`' table as aligned text for a terminal: the label, then each model's prediction and
    confidence, then the sentence."""
    header = ["label"] + list(models) + ["sentence"]
    rows = [[row["label"] or "-"] + [f"{row[f'pred_{m}']} {row[f'confidence_{m}']:.2f}" for m in models]
            + [("(o) " if row["original"] else "") + row["sentence"]] for _, row in table.iterrows()]
    widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(len(header) - 1)]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(r[:-1], widths)) + "  " + r[-1] for r in [header, *rows]]
    return "\n".join(lines) + "\n"

"""Hand-written sentences scored by trained models (kdprobe.predict.score, `kdprobe score`, kdprobe.cli): the same
probabilities as the dev predictions of the same model, checked config entries, and the command line."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from kdprobe.cli import trained_model_dir
from kdprobe.errors import ConfigError
from kdprobe.predict.predictions import write_predictions
from kdprobe.predict.score import Sentence, format_table, score_sentences, sentence_entries
from kdprobe.students.testing import LABELS, make_task, make_teacher
from smk import ROOT


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished run's layout (results/teacher/cola/model, resources/data/cola) with a tiny teacher."""
    root = tmp_path_factory.mktemp("score")
    shutil.copytree(ROOT / "config", root / "config")  # the project directory: `kdprobe score` runs there
    splits = make_task(root / "resources" / "data" / "cola", n_train=60, n_dev=12, n_test=5, seed=4)
    make_teacher(trained_model_dir(root / "results", "cola", "teacher"), splits["train"][0])
    return {"root": root, "data": root / "resources" / "data" / "cola", "dev": splits["dev"]}


def test_scores_equal_the_dev_predictions_of_the_same_model(run, tmp_path):
    teacher = trained_model_dir(run["root"] / "results", "cola", "teacher")
    predictions = write_predictions("teacher", teacher, run["data"], tmp_path / "teacher.tsv", "cpu", batch_size=4,
                                    max_length=64)
    sentences = [Sentence(text, label, original=i == 0) for i, (text, label) in enumerate(zip(*run["dev"]))]
    table = score_sentences(sentences, {"teacher": teacher}, LABELS, {"teacher": 64})
    assert list(table.columns) == ["sentence", "label", "original", "pred_teacher", "confidence_teacher"]
    assert table["pred_teacher"].tolist() == predictions["pred"].tolist()
    assert np.allclose(table["confidence_teacher"], predictions["confidence"], atol=1e-6)
    assert table["original"].tolist() == [True] + [False] * (len(sentences) - 1)
    text = format_table(table, ["teacher"])
    assert text.splitlines()[0].split() == ["label", "teacher", "sentence"]
    assert f"(o) {sentences[0].text}" in text


def test_config_entries_are_checked_naming_the_entry():
    key = "analysis.score_sentences.cola"
    assert sentence_entries(["a  b ", {"sentence": "c", "label": "1", "original": True}], key, ["0", "1"]) == [
        Sentence("a b"), Sentence("c", "1", True)]
    for bad, match in [([{"sentence": "c", "label": "2"}], r"\[0\].*label '2' is not one of"),
                       (["ok", {"text": "c"}], r"\[1\].*expected a sentence"),
                       ([{"sentence": "c", "extra": 1}], r"unknown keys \['extra'\]"),
                       ([{"sentence": "c", "original": "yes"}], "original must be true or false"),
                       (["   "], "the sentence is empty")]:
        with pytest.raises(ConfigError, match=match) as err:
            sentence_entries(bad, key, ["0", "1"])
        assert key in str(err.value)


def test_the_thesis_configs_perturbed_cola_sentences():
    """The thesis's table tab:own-CoLA-diagnostics: 70 sentences, 21 of them original dev sentences."""
    entries = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["analysis"]["score_sentences"]["cola"]
    sentences = sentence_entries(entries, "analysis.score_sentences.cola", ["0", "1"])
    assert len(sentences) == 70 and sum(s.original for s in sentences) == 21
    assert sentences[0] == Sentence("i gave pete the book to impress.", "0", True)
    assert Sentence("my heart is pounding me.", "0", True) in sentences
    assert sentences[-1] == Sentence("we believed john to be a musician in the park.", "1", False)


def test_the_command_line_scores_the_given_sentences(run):
    out = run["root"] / "scored.csv"
    proc = subprocess.run([sys.executable, "-m", "kdprobe.cli", "score", "--task", "cola", "--models", "teacher",
                           "--configfile", str(ROOT / "config" / "demo.yaml"), "--output", str(out),
                           run["dev"][0][0], "an entirely new sentence ."],
                          cwd=run["root"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].split() == ["label", "teacher", "sentence"]
    table = pd.read_csv(out, keep_default_na=False)
    assert table["sentence"].tolist() == [run["dev"][0][0], "an entirely new sentence ."]
    assert set(table["pred_teacher"]) <= set(LABELS) and table["confidence_teacher"].between(0.5, 1).all()
    missing = subprocess.run([sys.executable, "-m", "kdprobe.cli", "score", "x", "--task", "cola", "--models",
                              "bert_s"], cwd=run["root"], capture_output=True, text=True, timeout=300)
    assert missing.returncode == 1 and "students/cola/bert_s/model" in missing.stderr

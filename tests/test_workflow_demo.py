"""The demo config end to end through Snakemake: every stage runs for real, and every final file is sane."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from kdprobe.config import shard_sizes
from kdprobe.data import read_labels, read_split
from kdprobe.probing.senteval import load as load_probing
from smk import snakemake

pytestmark = pytest.mark.workflow

TASKS = ("cola", "sst2", "sara")
MODELS = ("teacher", "bert_s", "lstm_s")
PROBE_TASKS = (
    "sentence_length", "word_content", "tree_depth", "bigram_shift", "top_constituents",
    "past_present", "subj_number", "obj_number", "odd_man_out", "coordination_inversion",
)
HEADLINE = {"cola": "mcc", "sst2": "accuracy", "sara": "micro_f1"}


def majority(labels) -> float:
    return Counter(labels).most_common(1)[0][1] / len(labels)


def test_nothing_left_to_do(demo):
    proc = snakemake(demo, "-n", "--configfile", "config/demo.yaml")
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.parametrize("task", TASKS)
def test_data_splits_are_disjoint_and_labelled(demo, task):
    data = demo / "resources/data" / task
    labels = read_labels(data / "labels.txt")
    train, dev = read_split(data / "train.tsv"), read_split(data / "dev.tsv")
    assert set(train.label) <= set(labels) and set(dev.label) <= set(labels)
    assert not set(train.sentence) & set(dev.sentence)
    if task == "sara":  # stratified split from one file: test is its own set
        test = read_split(data / "test.tsv")
        assert len(dev) == len(test) == 100 and not set(test.sentence) & set(train.sentence)


@pytest.mark.parametrize("task", TASKS)
def test_augmentation_and_transfer_set_are_aligned(demo, task):
    sizes = shard_sizes(300, 2)
    n_train = len(read_split(demo / f"resources/data/{task}/train.tsv"))
    n_classes = len(read_labels(demo / f"resources/data/{task}/labels.txt"))
    for i, size in enumerate(sizes):
        shard = pd.read_parquet(demo / f"results/augment/{task}/shard{i}.parquet")
        transfer = pd.read_parquet(demo / f"results/transfer/{task}/shard{i}.parquet")
        assert len(shard) == len(transfer) == size
        assert list(transfer.sentence) == list(shard.sentence)
        assert transfer.label.isna().all()
    train = pd.read_parquet(demo / f"results/transfer/{task}/train.parquet")
    assert len(train) == n_train and train.label.notna().all()
    assert all(len(row) == n_classes for row in train.logits)
    assert all(ids[0] != ids[-1] and len(ids) >= 2 for ids in train.input_ids)  # [CLS] ... [SEP]
    # the two shards were sampled with different seeds
    first, second = (set(pd.read_parquet(demo / f"results/augment/{task}/shard{i}.parquet").sentence) for i in (0, 1))
    assert first != second


@pytest.mark.parametrize("task", TASKS)
def test_teacher_learned_and_logged_its_dev_curve(demo, task):
    dev = read_split(demo / f"resources/data/{task}/dev.tsv")
    metrics = json.loads((demo / f"results/teacher/{task}/metrics.json").read_text())
    assert metrics["dev"]["accuracy"] > majority(dev.label)
    curve = pd.read_csv(demo / f"results/teacher/{task}/curve.csv")
    assert len(curve) >= 2 and curve["step"].is_monotonic_increasing


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("student", ("bert_s", "lstm_s"))
def test_students_beat_the_majority_baseline(demo, task, student):
    dev = read_split(demo / f"resources/data/{task}/dev.tsv")
    metrics = json.loads((demo / f"results/students/{task}/{student}/metrics.json").read_text())
    assert metrics["dev"]["accuracy"] > majority(dev.label), metrics
    if task == "cola":
        assert metrics["dev"]["mcc"] > 0
    if task == "sara":
        assert metrics["dev"]["micro_f1"] == pytest.approx(metrics["dev"]["accuracy"])
        assert 0 < metrics["dev"]["macro_f1"] <= 1
    curve = pd.read_csv(demo / f"results/students/{task}/{student}/curve.csv")
    assert len(curve) == 10  # demo epochs
    assert metrics["dev"][HEADLINE[task]] == pytest.approx(curve[f"dev_{HEADLINE[task]}"].max())


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("model", MODELS)
def test_predictions_are_consistent(demo, task, model):
    labels = read_labels(demo / f"resources/data/{task}/labels.txt")
    dev = read_split(demo / f"resources/data/{task}/dev.tsv")
    pred = pd.read_csv(demo / f"results/predictions/{task}/{model}.tsv", sep="\t", keep_default_na=False,
                       dtype={"gold": str, "pred": str})
    assert list(pred.sentence) == list(dev.sentence) and list(pred.gold) == list(dev.label)
    probs = pred[[f"p_{label}" for label in labels]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(pred.confidence, probs.max(axis=1), atol=1e-6)
    assert list(pred.pred) == [labels[i] for i in probs.argmax(axis=1)]


def _probe_tables(demo):
    yield "pretrained", "teacher", demo / "results/probe/pretrained/teacher.csv"
    for task in TASKS:
        for model in MODELS:
            yield task, model, demo / f"results/probe/{task}/{model}.csv"


def test_probe_tables_are_complete_and_sane(demo):
    probing = {name: load_probing(demo / f"resources/demo/probing/{name}.txt") for name in PROBE_TASKS}
    for scope, model, path in _probe_tables(demo):
        table = pd.read_csv(path)
        assert set(table.probe_task) == set(PROBE_TASKS), path
        assert table.test_acc.between(0, 1).all() and table.dev_acc.between(0, 1).all()
        for name, rows in table.groupby("probe_task"):
            (_, train_y), (_, dev_y), (_, test_y) = (probing[name][s] for s in ("train", "dev", "test"))
            top = Counter(train_y).most_common(1)[0][0]
            expected = sum(y == top for y in test_y) / len(test_y)
            assert rows.majority_acc.to_numpy() == pytest.approx(expected), (path, name)
            assert (rows.n_train == len(train_y)).all() and (rows.n_test == len(test_y)).all()
        layers = sorted(table.layer.unique())
        expected_layers = {"teacher": [1, 2, 3, 4], "bert_s": [1, 2], "lstm_s": [1]}[model]
        assert layers == ([1, 4] if scope == "pretrained" else expected_layers), path
        if model == "lstm_s":
            assert set(table.pooling) == {"last", "max"}


@pytest.mark.parametrize("task", TASKS)
def test_teacher_probes_beat_majority_on_surface_and_order_tasks(demo, task):
    table = pd.read_csv(demo / f"results/probe/{task}/teacher.csv")
    for name in ("sentence_length", "word_content", "bigram_shift"):
        rows = table[table.probe_task == name]
        assert rows.test_acc.max() > rows.majority_acc.iloc[0] + 0.05, rows


def test_every_rule_log_says_what_it_read_and_wrote(demo):
    logs = [p for p in (demo / "logs").rglob("*.log") if "fetch" not in p.parts]
    assert len(logs) > 100
    for path in logs:
        text = path.read_text()
        assert "reads:" in text and "wrote:" in text and "done in" in text, path

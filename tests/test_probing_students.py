"""Probing encoders for the students (BERT_S, LSTM_S) built with `kdprobe.students.build_student`."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from kdprobe.probe import encoders
from kdprobe.probe.run import COLUMNS, probe_model
from kdprobe.students import build_student, load_student
from kdprobe.students.testing import make_teacher, make_word2vec, synthetic_sentences
from kdprobe.students.testing import SECTION

BERT_S = {**SECTION["bert_s"],
          "layers": 3, "hidden": 12, "intermediate": 16, "heads": 2, "dropout": 0.0, "max_length": 32,
          "embeddings": "random"}
LSTM_S = {**SECTION["lstm_s"],
          "hidden": 8, "fc": 8, "dropout": 0.0, "embeddings": "random", "embedding_mode": "non-static",
          "embedding_dim": 8, "max_length": 32, "seed": 0}


@pytest.fixture(scope="module")
def student_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("students")
    sentences, _ = synthetic_sentences(80, seed=0)
    teacher = make_teacher(root / "teacher", sentences)
    torch.manual_seed(0)
    build_student("bert_s", BERT_S, 2, {"teacher_dir": str(teacher)}).save(root / "bert_s")
    build_student("lstm_s", LSTM_S, 2, {"sentences": sentences}).save(root / "lstm_s")
    build_student("lstm_s", {**LSTM_S, "layers": 2}, 2, {"sentences": sentences}).save(root / "lstm_s_deep")
    make_word2vec(root / "w2v.bin", ["good", "bad", "movie"], dim=6)
    build_student("bert_s", {**BERT_S, "embeddings": "word2vec", "embedding_mode": "multichannel"}, 2,
                  {"sentences": sentences, "word2vec": root / "w2v.bin"}).save(root / "bert_s_words")
    return {name: root / name for name in ("bert_s", "lstm_s", "lstm_s_deep", "bert_s_words")}


def _sentences(n, seed):
    return synthetic_sentences(n, seed)[0]


@pytest.mark.parametrize("name", ["bert_s", "bert_s_words"])
def test_bert_s_layers_and_features(student_dirs, name):
    enc = encoders.load_encoder("bert_s", str(student_dirs[name]), "cpu")
    assert (enc.depth, enc.first_layer) == (3, 0)  # layer 0 (E): the embedding output, as the thesis probed it
    assert encoders.resolve_layers(enc, "all") == [0, 1, 2, 3]
    for bad in (4, -1):
        with pytest.raises(ValueError, match=rf"probe\.layers\.bert_s.*layer {bad} does not exist.*depth 3"):
            encoders.resolve_layers(enc, [1, bad])
    sents = _sentences(10, seed=1)
    feats = encoders.encode(enc, sents, [1, 3], ["mean", "cls", "max"], batch_size=4)
    assert all(x.shape == (10, BERT_S["hidden"]) for x in feats.values())
    student = load_student(student_dirs[name])
    with torch.no_grad():
        batch = student.encode([sents[7]])
        states = student.layer_states(batch["input_ids"], batch["attention_mask"])[2][0]
    assert torch.allclose(feats[(3, "mean")][7], states.mean(0), atol=1e-5)
    assert torch.allclose(feats[(3, "cls")][7], states[0], atol=1e-5)


@pytest.mark.parametrize("name, depth", [("lstm_s", 1), ("lstm_s_deep", 2)])
def test_lstm_s_every_layer_last_and_max(student_dirs, name, depth):
    """Every BiLSTM layer is probed: `last` of the top layer is the classifier's input, `max` pools each layer."""
    enc = encoders.load_encoder("lstm_s", str(student_dirs[name]), "cpu")
    assert (enc.depth, enc.first_layer) == (depth, 1)
    assert encoders.resolve_layers(enc, "all") == list(range(1, depth + 1))
    with pytest.raises(ValueError, match=rf"probe\.layers\.lstm_s.*layer {depth + 1} does not exist.*depth {depth}"):
        encoders.resolve_layers(enc, [depth + 1])
    sents = _sentences(12, seed=2)
    layers = list(range(1, depth + 1))
    feats = encoders.encode(enc, sents, layers, ["last", "max"], batch_size=5)
    width = 2 * LSTM_S["hidden"]
    assert all(x.shape == (12, width) for x in feats.values()) and len(feats) == 2 * depth
    student = load_student(student_dirs[name])
    with torch.no_grad():
        batch = student.encode(sents)
        # the student's own classifier input: [forward final state; backward final state] of the top layer
        final = student._run_lstm(batch["input_ids"], batch["attention_mask"], per_token=False)
        states = student.layer_states(batch["input_ids"], batch["attention_mask"])
    assert len(states) == depth
    assert torch.allclose(feats[(depth, "last")], final, atol=1e-5)
    mask = batch["attention_mask"].bool().unsqueeze(-1)
    for layer in layers:
        assert torch.allclose(feats[(layer, "max")], states[layer - 1].masked_fill(~mask, -1e9).amax(1), atol=1e-5)
    if depth > 1:
        assert not torch.allclose(feats[(1, "max")], feats[(2, "max")])


def _probe_file(path):
    lines = []
    for split, n, seed in (("tr", 40, 1), ("va", 20, 2), ("te", 20, 3)):
        sentences, labels = synthetic_sentences(n, seed)
        lines += [f"{split}\t{label}\t{s}" for s, label in zip(sentences, labels)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


SETTINGS = {
    "grid": {"hidden": [10], "dropout": [0.0], "weight_decay": [1e-5]}, "word_content_logreg": True,
    "standardise": False, "lr": 1e-2, "batch_size": 64, "epoch_size": 1, "tenacity": 2, "max_epoch": 10, "seed": 0, "encode_batch_size": 16, "max_sentences": 0,
    "classifiers": ["mlp"], "seeds": 1, "control": False, "mdl": False,
    "layers": {"bert_s": "all", "lstm_s": "all"}, "pooling": {"bert_s": ["mean"], "lstm_s": ["last", "max"]},
}


@pytest.mark.parametrize("kind, name, rows", [
    ("bert_s", "bert_s", [(0, "mean"), (1, "mean"), (2, "mean"), (3, "mean")]),
    ("lstm_s", "lstm_s", [(1, "last"), (1, "max")]),
    ("lstm_s", "lstm_s_deep", [(1, "last"), (1, "max"), (2, "last"), (2, "max")]),
])
def test_probe_model_students(student_dirs, tmp_path, kind, name, rows):
    out = tmp_path / f"{kind}.csv"
    probe_model(kind, student_dirs[name], _probe_file(tmp_path / "polarity.txt"), SETTINGS, out, "cpu")
    table = pd.read_csv(out)
    assert list(table.columns) == COLUMNS
    assert list(zip(table["layer"], table["pooling"])) == rows
    assert set(table["model"]) == {kind} and set(table["probe_task"]) == {"polarity"}


def test_start_up_check_knows_the_lstm_s_depth():
    """`kdconfig.check_probe_layers` takes LSTM_S's depth from `students.lstm_s.layers`, per-task overrides too."""
    from kdprobe.config import check_probe_layers
    from kdprobe.errors import ConfigError

    config = {"teacher": {"model": "not-a-local-dir"}, "tasks": {"sst2": {}, "sara": {}},
              "students": {"lstm_s": {"layers": 2}}, "probe": {"layers": {"lstm_s": [1, 2]}}}
    check_probe_layers(config)
    config["tasks"]["sara"] = {"students": {"lstm_s": {"layers": 1}}}
    with pytest.raises(ConfigError, match=r"probe\.layers\.lstm_s.*layer 2 does not exist.*LSTM_S of sara has "
                                          r"depth 1"):
        check_probe_layers(config)
    config["tasks"]["sara"] = {"students": {"lstm_s": {"layers": 3}}}
    config["probe"]["layers"]["lstm_s"] = [3]
    with pytest.raises(ConfigError, match="LSTM_S of sst2 has depth 2"):
        check_probe_layers(config)

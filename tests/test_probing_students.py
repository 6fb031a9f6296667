"""Probing encoders for the students (BERT_S, LSTM_S) built with `kdprobe.students.build_student`."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from kdprobe.probing import encoders
from kdprobe.probing.run import COLUMNS, probe_model
from kdprobe.students import build_student, load_student
from kdprobe.students.testing import make_teacher, synthetic_sentences

BERT_S = {"layers": 3, "hidden": 12, "intermediate": 16, "heads": 2, "dropout": 0.0, "max_length": 32,
          "embeddings": "random"}
LSTM_S = {"hidden": 8, "fc": 8, "dropout": 0.0, "embeddings": "random", "embedding_mode": "non-static",
          "embedding_dim": 8, "max_length": 32, "seed": 0}


@pytest.fixture(scope="module")
def student_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("students")
    sentences, _ = synthetic_sentences(80, seed=0)
    teacher = make_teacher(root / "teacher", sentences)
    torch.manual_seed(0)
    build_student("bert_s", BERT_S, 2, {"teacher_dir": str(teacher)}).save(root / "bert_s")
    build_student("lstm_s", LSTM_S, 2, {"sentences": sentences}).save(root / "lstm_s")
    return {"bert_s": root / "bert_s", "lstm_s": root / "lstm_s"}


def _sentences(n, seed):
    return synthetic_sentences(n, seed)[0]


def test_bert_s_layers_and_features(student_dirs):
    enc = encoders.load_encoder("bert_s", str(student_dirs["bert_s"]), "cpu")
    assert (enc.depth, enc.first_layer) == (3, 1)
    assert encoders.resolve_layers(enc, "all") == [1, 2, 3]
    for bad in (4, 0):
        with pytest.raises(ValueError, match=rf"probe\.layers\.bert_s.*layer {bad} does not exist.*depth 3"):
            encoders.resolve_layers(enc, [1, bad])
    sents = _sentences(10, seed=1)
    feats = encoders.encode(enc, sents, [1, 3], ["mean", "cls", "max"], batch_size=4)
    assert all(x.shape == (10, BERT_S["hidden"]) for x in feats.values())
    student = load_student(student_dirs["bert_s"])
    with torch.no_grad():
        batch = student.encode([sents[7]])
        states = student.layer_states(batch["input_ids"], batch["attention_mask"])[2][0]
    assert torch.allclose(feats[(3, "mean")][7], states.mean(0), atol=1e-5)
    assert torch.allclose(feats[(3, "cls")][7], states[0], atol=1e-5)


def test_lstm_s_last_is_final_states_and_max(student_dirs):
    enc = encoders.load_encoder("lstm_s", str(student_dirs["lstm_s"]), "cpu")
    assert (enc.depth, enc.first_layer) == (1, 1)
    assert encoders.resolve_layers(enc, "all") == [1]
    with pytest.raises(ValueError, match=r"probe\.layers\.lstm_s.*layer 2 does not exist.*depth 1"):
        encoders.resolve_layers(enc, [2])
    sents = _sentences(12, seed=2)
    feats = encoders.encode(enc, sents, [1], ["last", "max"], batch_size=5)
    width = 2 * LSTM_S["hidden"]
    assert feats[(1, "last")].shape == (12, width) and feats[(1, "max")].shape == (12, width)
    student = load_student(student_dirs["lstm_s"])
    with torch.no_grad():
        batch = student.encode(sents)
        # the student's own classifier input: [forward final state; backward final state]
        final = student._run_lstm(batch["input_ids"], batch["attention_mask"], outputs=False)
        states = student.layer_states(batch["input_ids"], batch["attention_mask"])[0]
    assert torch.allclose(feats[(1, "last")], final, atol=1e-5)
    mask = batch["attention_mask"].bool().unsqueeze(-1)
    assert torch.allclose(feats[(1, "max")], states.masked_fill(~mask, -1e9).amax(1), atol=1e-5)


def _probe_file(path):
    lines = []
    for split, n, seed in (("tr", 40, 1), ("va", 20, 2), ("te", 20, 3)):
        sentences, labels = synthetic_sentences(n, seed)
        lines += [f"{split}\t{label}\t{s}" for s, label in zip(sentences, labels)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


SETTINGS = {
    "grid": {"hidden": [10], "dropout": [0.0]}, "lr": 1e-2, "batch_size": 64, "patience": 2, "max_epochs": 10,
    "seed": 0, "encode_batch_size": 16, "max_sentences": 0,
    "layers": {"bert_s": "all", "lstm_s": "all"}, "pooling": {"bert_s": ["mean"], "lstm_s": ["last", "max"]},
}


@pytest.mark.parametrize("kind, rows", [("bert_s", [(1, "mean"), (2, "mean"), (3, "mean")]),
                                        ("lstm_s", [(1, "last"), (1, "max")])])
def test_probe_model_students(student_dirs, tmp_path, kind, rows):
    out = tmp_path / f"{kind}.csv"
    probe_model(kind, student_dirs[kind], _probe_file(tmp_path / "polarity.txt"), SETTINGS, out, "cpu")
    table = pd.read_csv(out)
    assert list(table.columns) == COLUMNS
    assert list(zip(table["layer"], table["pooling"])) == rows
    assert set(table["model"]) == {kind} and set(table["probe_task"]) == {"polarity"}

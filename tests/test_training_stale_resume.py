"""Resumable state is keyed on the content of its inputs: a job interrupted, then rerun after an input changed in
place (same sentences, same lengths, same settings: as when the teacher is retrained), starts afresh and ends
exactly where a fresh run on the new inputs ends; the log says why the state was discarded."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

import kdprobe.transfer as logits_module
from kdprobe.augment import sample as sampling
from kdprobe.distil import distil
from kdprobe.io import read_json, write_parquet, write_tsv
from kdprobe.augment.gpt2 import finetune as finetune_lm
from kdprobe.transfer import write_transfer
from kdprobe.augment.sample import sample_shard
from kdprobe.students.testing import FILLER, NEGATIVE, POSITIVE, make_student_task, make_word2vec
from kdprobe.teacher import finetune as finetune_teacher
from kdprobe.training import TrainingInterrupted
from kdprobe.training import EpochEnd, RunFiles, StopAfter

from test_distil import BERT_S, LSTM_S
from test_lm import SETTINGS as LM_SETTINGS, make_tiny_gpt2
from test_logits import kill_logits_at_chunk
from test_teacher import SETTINGS as TEACHER_SETTINGS, make_sentences, make_task as make_teacher_task, make_tiny_bert


class Stop(Exception):
    pass


def retrain_in_place(model_dir: Path, seed: int = 1, keep_mtimes: bool = False) -> None:
    """New weights of the same shapes in `model_dir/model.safetensors` (same file size, as a retrained model);
    with `keep_mtimes` the files keep their modification times (a copy made with `cp -p` or `rsync -a`)."""
    path = model_dir / "model.safetensors"
    stat = path.stat()
    gen = torch.Generator().manual_seed(seed)
    weights = {k: v + 0.05 * torch.randn(v.shape, generator=gen).to(v.dtype) for k, v in load_file(path).items()}
    save_file(weights, str(path), metadata={"format": "pt"})
    assert path.stat().st_size == stat.st_size
    if keep_mtimes:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------------------------ students
@pytest.fixture
def student_task(tmp_path):
    return make_student_task(tmp_path / "inputs", n_train=96, n_dev=40, n_test=40, n_augmented=48, seed=3,
                             augment_seed=77)


def _distil(task, kind, settings, out, state, on_epoch_end=None):
    return distil(kind, "sst2", settings, task["transfer"], task["data"], task["teacher"], RunFiles.in_dir(out), state,
                  "cpu", word2vec=task["w2v"] if kind == "lstm_s" else None,
                  callbacks=[EpochEnd(on_epoch_end)] if on_epoch_end else [])


def _student_result(out: Path):
    return (read_json(out / "metrics.json"), load_file(str(out / "model" / "model.safetensors")),
            (out / "curve.csv").read_text())


def _stop_after_first(epoch, row):
    if epoch == 1:
        raise Stop


def _new_teacher_logits(path: Path, seed: int) -> None:
    """The same rows with other teacher logits: what a retrained teacher writes."""
    frame = pd.read_parquet(path)
    rng = np.random.default_rng(seed)
    frame["logits"] = [(-np.asarray(v) + rng.normal(0, 1, len(v))).astype(np.float32) for v in frame["logits"]]
    write_parquet(path, frame)


@pytest.mark.parametrize("kind,settings", [("bert_s", {**BERT_S, "epochs": 3}), ("lstm_s", {**LSTM_S, "epochs": 3})])
def test_student_starts_afresh_when_the_teacher_logits_change(student_task, tmp_path, caplog, kind, settings):
    state = tmp_path / "state.pt"
    with pytest.raises(Stop):
        _distil(student_task, kind, settings, tmp_path / "out", state, on_epoch_end=_stop_after_first)
    assert state.exists()
    _new_teacher_logits(student_task["transfer"][0], seed=5)
    with caplog.at_level(logging.INFO):
        _distil(student_task, kind, settings, tmp_path / "out", state)
    assert "discarding resume state" in caplog.text and "train.parquet" in caplog.text
    assert not state.exists()
    _distil(student_task, kind, settings, tmp_path / "fresh", None)
    resumed, fresh = _student_result(tmp_path / "out"), _student_result(tmp_path / "fresh")
    assert resumed[0] == fresh[0] and same_weights(resumed[1], fresh[1]) and resumed[2] == fresh[2]


def test_student_starts_afresh_when_the_word_vectors_change(student_task, tmp_path, caplog):
    settings = {**LSTM_S, "epochs": 2}
    state = tmp_path / "state.pt"
    with pytest.raises(Stop):
        _distil(student_task, "lstm_s", settings, tmp_path / "out", state, on_epoch_end=_stop_after_first)
    make_word2vec(student_task["w2v"], POSITIVE + NEGATIVE + FILLER[:10], dim=8, seed=9)
    with caplog.at_level(logging.INFO):
        _distil(student_task, "lstm_s", settings, tmp_path / "out", state)
    assert "discarding resume state" in caplog.text and "inputs.word2vec" in caplog.text
    _distil(student_task, "lstm_s", settings, tmp_path / "fresh", None)
    resumed, fresh = _student_result(tmp_path / "out"), _student_result(tmp_path / "fresh")
    assert resumed[0] == fresh[0] and same_weights(resumed[1], fresh[1])


def test_student_resumes_when_nothing_changed(student_task, tmp_path, caplog):
    """The control: with the same inputs the state is used (so the tests above fail for the right reason)."""
    settings = {**BERT_S, "epochs": 2}
    state = tmp_path / "state.pt"
    with pytest.raises(Stop):
        _distil(student_task, "bert_s", settings, tmp_path / "out", state, on_epoch_end=_stop_after_first)
    with caplog.at_level(logging.INFO):
        _distil(student_task, "bert_s", settings, tmp_path / "out", state)
    assert "resuming at epoch 2" in caplog.text and "discarding" not in caplog.text


# ------------------------------------------------------------------------------------------------ teacher
@pytest.fixture
def teacher_setup(tmp_path):
    root = tmp_path / "inputs"
    return make_tiny_bert(root / "bert", make_sentences(50)), make_teacher_task(root / "data")


def _teacher(setup, out: Path, state: Path | None, **kw):
    bert, data = setup
    return finetune_teacher(str(bert), data, "cola", TEACHER_SETTINGS, RunFiles.in_dir(out), state, "cpu", **kw)


def _teacher_result(out: Path):
    model = AutoModelForSequenceClassification.from_pretrained(out / "model").state_dict()
    return model, (out / "curve.csv").read_text(), read_json(out / "metrics.json")


def _flip_training_labels(data: Path) -> None:
    frame = pd.read_csv(data / "train.tsv", sep="\t", keep_default_na=False)
    frame["label"] = frame["label"].map({"pos": "neg", "neg": "pos"})
    write_tsv(data / "train.tsv", frame)


@pytest.mark.parametrize("change", ["labels", "base model"])
def test_teacher_starts_afresh_when_its_inputs_change(teacher_setup, tmp_path, caplog, change):
    bert, data = teacher_setup
    state = tmp_path / "state.pt"
    with pytest.raises(TrainingInterrupted):
        _teacher(teacher_setup, tmp_path / "cut", state, callbacks=[StopAfter(7)])
    assert state.exists()
    if change == "labels":
        _flip_training_labels(data)
    else:
        retrain_in_place(bert)
    with caplog.at_level(logging.INFO):
        _teacher(teacher_setup, tmp_path / "cut", state)
    assert "discarding resume state" in caplog.text
    assert ("train.tsv" if change == "labels" else "model.safetensors") in caplog.text
    _teacher(teacher_setup, tmp_path / "fresh", None)
    a, b = _teacher_result(tmp_path / "cut"), _teacher_result(tmp_path / "fresh")
    assert same_weights(a[0], b[0]) and a[1] == b[1] and a[2] == b[2]


# ------------------------------------------------------------------------------------------------ GPT-2
def test_gpt2_starts_afresh_when_the_base_model_changes(tmp_path, caplog):
    base = make_tiny_gpt2(tmp_path / "gpt2")
    train = tmp_path / "train.tsv"
    sents = make_sentences(30, seed=5)
    write_tsv(train, pd.DataFrame({"sentence": sents, "label": ["x"] * len(sents)}))
    state = tmp_path / "state.pt"
    with pytest.raises(TrainingInterrupted):
        finetune_lm(str(base), train, LM_SETTINGS, RunFiles.in_dir(tmp_path / "cut", metrics=False), state, "cpu",
                    callbacks=[StopAfter(6)])
    retrain_in_place(base)
    with caplog.at_level(logging.INFO):
        finetune_lm(str(base), train, LM_SETTINGS, RunFiles.in_dir(tmp_path / "cut", metrics=False), state, "cpu")
    assert "discarding resume state" in caplog.text and "model.safetensors" in caplog.text
    finetune_lm(str(base), train, LM_SETTINGS, RunFiles.in_dir(tmp_path / "fresh", metrics=False), None, "cpu")
    a = AutoModelForCausalLM.from_pretrained(tmp_path / "cut" / "model").state_dict()
    b = AutoModelForCausalLM.from_pretrained(tmp_path / "fresh" / "model").state_dict()
    assert same_weights(a, b)
    assert (tmp_path / "cut" / "curve.csv").read_text() == (tmp_path / "fresh" / "curve.csv").read_text()


# ------------------------------------------------------------------------------------------------ chunks
SAMPLE_SETTINGS = {"max_length": 10, "batch_size": 6, "temperature": 1.0, "top_k": 0, "chunk_size": 8}


def test_sampling_chunks_of_another_model_are_discarded(tmp_path, monkeypatch, caplog):
    """The model is replaced by one of other weights whose files keep sizes and modification times."""
    model = make_tiny_gpt2(tmp_path / "gpt2")
    real, calls = sampling.sample_batch, {"n": 0}

    def dying(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 3:  # chunks of 8 in batches of 6: chunk 0 done, dies in chunk 1
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(sampling, "sample_batch", dying)
    with pytest.raises(KeyboardInterrupt):
        sample_shard(model, 20, 9, SAMPLE_SETTINGS, tmp_path / "cut.parquet", tmp_path / "cut", "cpu")
    assert (tmp_path / "cut" / "chunk00000.parquet").exists()
    monkeypatch.setattr(sampling, "sample_batch", real)
    retrain_in_place(model, keep_mtimes=True)
    with caplog.at_level(logging.INFO):
        sample_shard(model, 20, 9, SAMPLE_SETTINGS, tmp_path / "cut.parquet", tmp_path / "cut", "cpu")
    assert "discarding 1 chunks" in caplog.text and "model.safetensors" in caplog.text
    sample_shard(model, 20, 9, SAMPLE_SETTINGS, tmp_path / "fresh.parquet", tmp_path / "fresh", "cpu")
    cut = pq.read_table(tmp_path / "cut.parquet").column("sentence").to_pylist()
    assert cut == pq.read_table(tmp_path / "fresh.parquet").column("sentence").to_pylist()


def test_logits_chunks_of_another_teacher_are_discarded(tmp_path, monkeypatch, caplog):
    base = make_tiny_bert(tmp_path / "base", make_sentences(50))
    teacher = tmp_path / "teacher"
    torch.manual_seed(1)
    AutoModelForSequenceClassification.from_pretrained(base, num_labels=3).save_pretrained(teacher)
    AutoTokenizer.from_pretrained(base).save_pretrained(teacher)
    sentences = make_sentences(23, seed=5)
    settings = {"batch_size": 3, "max_length": 16}
    monkeypatch.setattr(logits_module, "STREAM_BATCHES", 2)  # chunks of 6 sentences: 4 chunks
    real = kill_logits_at_chunk(monkeypatch, 3)["real"]
    with pytest.raises(KeyboardInterrupt):
        write_transfer(teacher, sentences, None, settings, tmp_path / "cut.parquet", "cpu", chunk_dir=tmp_path / "cut")
    monkeypatch.setattr(logits_module, "infer_logits", real)
    retrain_in_place(teacher, keep_mtimes=True)
    with caplog.at_level(logging.INFO):
        write_transfer(teacher, sentences, None, settings, tmp_path / "cut.parquet", "cpu", chunk_dir=tmp_path / "cut")
    assert "discarding 2 chunks" in caplog.text and "model.safetensors" in caplog.text
    write_transfer(teacher, sentences, None, settings, tmp_path / "fresh.parquet", "cpu",
                   chunk_dir=tmp_path / "fresh")
    assert pq.read_table(tmp_path / "cut.parquet").to_pylist() == pq.read_table(tmp_path / "fresh.parquet").to_pylist()

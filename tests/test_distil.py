"""Distillation on a small separable synthetic task: learning, outputs, resumability bit for bit."""

import collections
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

import kdprobe.distil as distil_module
from kdprobe.batching import PackedIds, epoch_batches, pad_batch
from kdprobe.distil import distil
from kdprobe.errors import ConfigError, InputError
from kdprobe.io import read_json, write_parquet
from kdprobe.students import load_student
from kdprobe.students.testing import make_student_task
from kdprobe.training import EpochEnd, RunFiles
from kdprobe.students.testing import SECTION

BERT_S = {**SECTION["bert_s"],
          "layers": 2, "hidden": 32, "intermediate": 64, "heads": 2, "dropout": 0.1, "max_length": 32,
          "embeddings": "random", "loss": "soft_ce", "temperature": 3.0, "optimizer": "adam", "lr": 3e-3,
          "betas": [0.9, 0.98], "batch_size": 16, "epochs": 5, "schedule": "linear", "warmup_epochs": 1, "clip_norm": 0,
          "seed": 7}
LSTM_S = {**SECTION["lstm_s"],
          "hidden": 16, "fc": 16, "dropout": 0.1, "embeddings": "word2vec", "embedding_mode": "multichannel",
          "loss": "mse", "temperature": 1.0, "optimizer": "adam", "lr": 1e-2, "betas": [0.9, 0.999],
          "batch_size": 16, "epochs": 6, "schedule": "none", "warmup_epochs": 0, "clip_norm": 30.0, "max_length": 32,
          "mse_reduction": "sum", "seed": 7}
# the thesis' LSTM_S optimiser; Adadelta starts too slowly to learn in a few dozen steps, so it is exercised by
# the resume test only
LSTM_S_ADADELTA = {**LSTM_S, "optimizer": "adadelta", "lr": 1.0, "rho": 0.95}


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    task = make_student_task(tmp_path_factory.mktemp("task"), n_train=160, n_dev=60, n_test=60, n_augmented=80,
                             seed=1, augment_seed=99)
    dev_labels = task["dev_labels"]
    return {**task, "majority": max(collections.Counter(dev_labels).values()) / len(dev_labels)}


def _run(task, kind, settings, out, state=None, on_epoch_end=None):
    """Distil into the run directory `out` (`out/model/`, `out/metrics.json`, `out/curve.csv`)."""
    return distil(kind, "sst2", settings, task["transfer"], task["data"], task["teacher"], RunFiles.in_dir(out),
                  state, "cpu", word2vec=task["w2v"] if kind == "lstm_s" else None,
                  callbacks=[EpochEnd(on_epoch_end)] if on_epoch_end else [])


@pytest.mark.parametrize("kind,settings", [("bert_s", BERT_S), ("lstm_s", LSTM_S)])
def test_distillation_beats_majority_and_writes_outputs(task, tmp_path, kind, settings):
    out, state = tmp_path / "student", tmp_path / "state" / "s.pt"
    metrics = _run(task, kind, settings, out, state)
    assert metrics["dev"]["accuracy"] >= task["majority"] + 0.2, (metrics, task["majority"])
    assert metrics["dev"]["accuracy"] >= 0.8
    assert not state.exists()
    assert {"student.json", "model.safetensors"} <= {p.name for p in (out / "model").iterdir()}
    assert {"model", "metrics.json", "curve.csv"} == {p.name for p in out.iterdir()}
    saved = read_json(out / "metrics.json")
    assert saved == metrics
    assert set(saved) >= {"dev", "test", "best_epoch", "n_params", "n_params_without_embeddings", "transfer_size"}
    assert saved["transfer_size"] == 240 and saved["transfer_labelled"] == 160
    assert saved["test"]["accuracy"] >= 0.8
    curve = pd.read_csv(out / "curve.csv")
    assert list(curve.columns) == ["step", "epoch", "loss", "lr", "grad_norm", "grad_norm_max", "dev_accuracy"]
    assert curve["epoch"].tolist() == list(range(1, settings["epochs"] + 1))
    assert curve["dev_accuracy"].max() == pytest.approx(saved["dev"]["accuracy"])
    assert curve["dev_accuracy"].iloc[saved["best_epoch"] - 1] == pytest.approx(saved["dev"]["accuracy"])
    assert curve["loss"].iloc[-1] < curve["loss"].iloc[0]
    # the written student is the best-dev one and predicts as reported
    student = load_student(out / "model", "cpu")
    assert student.labels == ["negative", "positive"]
    dev = pd.read_csv(task["data"] / "dev.tsv", sep="\t")
    with torch.inference_mode():
        pred = student(**student.encode(dev["sentence"].tolist())).argmax(1).numpy()
    assert np.mean(np.array(["negative", "positive"])[pred] == dev["label"].to_numpy()) == pytest.approx(
        saved["dev"]["accuracy"])


def test_warmup_and_decay_in_curve_and_metric_files_beside_the_model(task, tmp_path):
    settings = {**BERT_S, "epochs": 4, "warmup_epochs": 2}
    _run(task, "bert_s", settings, tmp_path / "out")
    assert not (tmp_path / "out" / "model" / "metrics.json").exists()
    assert read_json(tmp_path / "out" / "metrics.json")["best_epoch"] >= 1
    lr = pd.read_csv(tmp_path / "out" / "curve.csv")["lr"].tolist()
    assert lr[0] < lr[1] and lr[1] == pytest.approx(settings["lr"]) and lr[3] < lr[2] < lr[1]


def test_schedules_none_and_constant_in_curve_and_bad_settings(task, tmp_path):
    _run(task, "lstm_s", {**LSTM_S, "epochs": 3}, tmp_path / "a")
    assert pd.read_csv(tmp_path / "a" / "curve.csv")["lr"].tolist() == [LSTM_S["lr"]] * 3  # LSTM_S: not annealed
    settings = {**BERT_S, "epochs": 4, "schedule": "constant", "warmup_epochs": 2}
    _run(task, "bert_s", settings, tmp_path / "b")
    lr = pd.read_csv(tmp_path / "b" / "curve.csv")["lr"].tolist()
    assert lr[0] < lr[1] and lr[1:] == pytest.approx([settings["lr"]] * 3)  # warm-up, then no decay
    with pytest.raises(ConfigError, match="students.lstm_s.warmup_epochs"):
        _run(task, "lstm_s", {**LSTM_S, "warmup_epochs": 1}, tmp_path / "c")
    with pytest.raises(ConfigError, match="students.lstm_s.mse_reduction"):
        _run(task, "lstm_s", {**LSTM_S, "mse_reduction": "avg"}, tmp_path / "c")
    assert not (tmp_path / "c").exists()


class Stop(Exception):
    pass


def _weights(out):
    return load_file(str(out / "model" / "model.safetensors"))


def test_resume_after_an_epoch_is_bit_for_bit(task, tmp_path):
    settings = {**BERT_S, "epochs": 3}
    ref = _run(task, "bert_s", settings, tmp_path / "ref", tmp_path / "ref.pt")
    state = tmp_path / "state.pt"

    def stop_after_first(epoch, row):
        if epoch == 1:
            raise Stop

    with pytest.raises(Stop):
        _run(task, "bert_s", settings, tmp_path / "out", state, on_epoch_end=stop_after_first)
    assert state.exists() and not (tmp_path / "out" / "model").exists()
    resumed = _run(task, "bert_s", settings, tmp_path / "out", state)
    assert resumed == ref
    a, b = _weights(tmp_path / "ref"), _weights(tmp_path / "out")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "ref" / "curve.csv").read_text() == (tmp_path / "out" / "curve.csv").read_text()
    assert not state.exists()


def test_resume_mid_epoch_is_bit_for_bit(task, tmp_path, monkeypatch):
    settings = {**LSTM_S_ADADELTA, "epochs": 2, "save_every_steps": 4}
    ref = _run(task, "lstm_s", settings, tmp_path / "ref", tmp_path / "ref.pt")
    state = tmp_path / "state.pt"
    real_loss = distil_module.distillation_loss
    calls = {"n": 0}

    def failing_loss(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 15 + 9:  # epoch 2 (15 steps each), its step 9: the state of step 20 is on disk
            raise Stop
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(distil_module, "distillation_loss", failing_loss)
    with pytest.raises(Stop):
        _run(task, "lstm_s", settings, tmp_path / "out", state)
    saved = torch.load(state, weights_only=True)
    assert (saved["epoch"], saved["position"], saved["step"]) == (1, 5, 20)  # saved every 4 steps: 16 and 20
    monkeypatch.setattr(distil_module, "distillation_loss", real_loss)
    resumed = _run(task, "lstm_s", settings, tmp_path / "out", state)
    assert resumed == ref
    a, b = _weights(tmp_path / "ref"), _weights(tmp_path / "out")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "ref" / "curve.csv").read_text() == (tmp_path / "out" / "curve.csv").read_text()


def test_state_of_other_settings_is_ignored(task, tmp_path, caplog):
    state = tmp_path / "state.pt"

    def stop(epoch, row):
        raise Stop

    with pytest.raises(Stop):
        _run(task, "bert_s", {**BERT_S, "epochs": 2}, tmp_path / "out", state, on_epoch_end=stop)
    with caplog.at_level(logging.WARNING):
        metrics = _run(task, "bert_s", {**BERT_S, "epochs": 1, "lr": 1e-3}, tmp_path / "out", state)
    assert "discarding resume state" in caplog.text and "settings.lr" in caplog.text
    assert metrics["best_epoch"] == 1


def test_epoch_batches_are_length_grouped_and_deterministic():
    lengths = np.random.default_rng(0).integers(1, 60, size=1000)
    a = epoch_batches(lengths, 16, seed=3, epoch=0)
    assert [x.tolist() for x in a] == [x.tolist() for x in epoch_batches(lengths, 16, seed=3, epoch=0)]
    assert [x.tolist() for x in a] != [x.tolist() for x in epoch_batches(lengths, 16, seed=3, epoch=1)]
    assert sorted(np.concatenate(a).tolist()) == list(range(1000)) and len(a) == 63
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in a])
    assert spread < 5  # random batches would spread over ~50
    packed = PackedIds([np.array([1, 2, 3]), np.array([4]), np.array([], dtype=int)])
    assert packed[0].tolist() == [1, 2, 3] and packed[1].tolist() == [4] and len(packed[2]) == 0


def test_bad_transfer_files(task, tmp_path):
    frame = pd.read_parquet(task["transfer"][0])
    bad = frame.assign(logits=[np.zeros(3, np.float32)] * len(frame))
    write_parquet(tmp_path / "bad.parquet", bad)
    with pytest.raises(InputError, match="expected 2 logits"):
        distil("bert_s", "sst2", BERT_S, [tmp_path / "bad.parquet"], task["data"], task["teacher"],
               RunFiles.in_dir(tmp_path / "out"), None, "cpu")
    write_parquet(tmp_path / "noids.parquet", frame.drop(columns=["input_ids"]))
    with pytest.raises(InputError, match="input_ids"):
        distil("bert_s", "sst2", BERT_S, [tmp_path / "noids.parquet"], task["data"], task["teacher"],
               RunFiles.in_dir(tmp_path / "out"), None, "cpu")
    assert not (tmp_path / "out").exists()


class _Named(list):
    """Stand-in for Snakemake's named lists (input, output, wildcards)."""

    def __init__(self, **named):
        super().__init__(named.values())
        self.__dict__.update(named)

    def items(self):
        return self.__dict__.items()


@pytest.mark.parametrize("tensorboard", [False, True])
def test_workflow_script(task, tmp_path, monkeypatch, tensorboard):
    import runpy
    from pathlib import Path
    from types import SimpleNamespace

    from test_tensorboard import as_scalars, read_scalars

    monkeypatch.setattr("kdprobe.workflow._redirect_stderr", lambda log: None)  # keep pytest's stderr
    script = Path(__file__).resolve().parents[1] / "workflow" / "scripts" / "distil.py"
    out = tmp_path / "students" / "lstm_s"
    log = tmp_path / "logs" / "distil" / "sst2" / "lstm_s.log"
    snakemake = SimpleNamespace(
        input=_Named(dev=str(task["data"] / "dev.tsv"), transfer=[str(p) for p in task["transfer"]],
                     teacher=str(task["teacher"]), word2vec=str(task["w2v"])),
        output=_Named(model=str(out / "model"), metrics=str(out / "metrics.json"), curve=str(out / "curve.csv")),
        params=SimpleNamespace(settings={**LSTM_S, "epochs": 1}, state=str(tmp_path / "state" / "lstm_s.pt")),
        wildcards=_Named(task="sst2", student="lstm_s"),
        log=[str(log)], threads=1, config={"device": "cpu", "tensorboard": tensorboard}, rule="distil",
    )
    runpy.run_path(str(script), init_globals={"snakemake": snakemake})
    assert (out / "model" / "student.json").exists() and (out / "model" / "vocab.txt").exists()
    assert read_json(out / "metrics.json")["student"] == "lstm_s"
    curve = pd.read_csv(out / "curve.csv")
    assert len(curve) == 1
    events = log.with_suffix(".tensorboard")
    if tensorboard:
        assert read_scalars(events) == as_scalars(curve.to_dict("records"))
    else:
        assert not events.exists()


def test_packed_ids_padded_equals_student_pad():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(1, 50, size=n) for n in (3, 0, 7, 1, 5)]
    packed = PackedIds(seqs)
    for idx in ([0, 1, 2, 3, 4], [2, 0], [1], [4, 3]):
        ours, ref = packed.padded(idx, pad_id=9), _loop_pad([seqs[i] for i in idx], 9)
        assert torch.equal(ours["input_ids"], ref["input_ids"]) and torch.equal(ours["attention_mask"],
                                                                                ref["attention_mask"])
        listed = pad_batch([seqs[i].tolist() for i in idx], 9)  # lists of ints pad through the same gather
        assert torch.equal(listed["input_ids"], ref["input_ids"])
    empty = PackedIds([np.array([], dtype=int)])
    assert empty.padded([0], 9)["input_ids"].tolist() == [[9]]


def _loop_pad(seqs, pad_id):
    """The obvious row-by-row padding, as a reference."""
    width = max(max(len(s) for s in seqs), 1)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return {"input_ids": ids, "attention_mask": mask}

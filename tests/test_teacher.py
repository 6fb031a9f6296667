"""Teacher fine-tuning on a tiny BERT: outputs, curve, and bit-for-bit resume after interruptions."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tokenizers import BertWordPieceTokenizer
from transformers import AutoModelForSequenceClassification, BertConfig, BertModel, BertTokenizer

from kdprobe.errors import ConfigError
from kdprobe.io import read_json, write_text, write_tsv
from kdprobe.teacher import finetune
from kdprobe.training import TrainingInterrupted
from kdprobe.training import RunFiles, StopAfter, tensorboard
from test_tensorboard import as_scalars, read_scalars

WORDS = "the a cat dog bird sat ran sang on in at mat park tree day night good bad very not".split()


def make_sentences(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(2, 12))) for _ in range(n)]


def make_tiny_bert(path: Path, sentences: list[str] | None = None) -> Path:
    """A 1-layer BERT with a WordPiece tokenizer trained on `sentences`, saved to `path`."""
    wp = BertWordPieceTokenizer(lowercase=True)
    wp.train_from_iterator(sentences or WORDS, vocab_size=200, min_frequency=1, show_progress=False)
    tokenizer = BertTokenizer(vocab=wp.get_vocab())
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def make_task(path: Path, n_train: int = 40, n_dev: int = 12) -> Path:
    labels = ["neg", "pos"]
    for name, n, seed in (("train", n_train, 1), ("dev", n_dev, 2)):
        sents = make_sentences(n, seed)
        gold = ["pos" if "good" in s else "neg" for s in sents]
        write_tsv(path / f"{name}.tsv", pd.DataFrame({"sentence": sents, "label": gold}))
    write_text(path / "labels.txt", "\n".join(labels) + "\n")
    return path


SETTINGS = {
    "epochs": 2, "batch_size": 4, "lr": 1e-3, "betas": [0.9, 0.999], "warmup_fraction": 0.1, "dropout": 0.1,
    "max_length": 10, "evals_per_epoch": 3, "seed": 7, "save_every_steps": 3,
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("teacher")
    return make_tiny_bert(root / "bert", make_sentences(50)), make_task(root / "data")


def _run(setup, out: Path, **kw):
    bert, data = setup
    return finetune(str(bert), data, "cola", SETTINGS, RunFiles.in_dir(out), out / "state.pt", "cpu", **kw)


def test_finetune_writes_outputs(setup, tmp_path):
    metrics = _run(setup, tmp_path, callbacks=tensorboard(tmp_path / "cola.tensorboard"))
    assert set(metrics["dev"]) == {"accuracy", "mcc"}
    assert read_json(tmp_path / "metrics.json") == metrics
    curve = pd.read_csv(tmp_path / "curve.csv")
    assert list(curve.columns) == ["step", "epoch", "loss", "lr", "grad_norm", "grad_norm_max", "dev_accuracy", "dev_mcc"]
    assert len(curve) == 2 * 3 and curve["step"].iloc[-1] == 20 and curve["epoch"].iloc[-1] == 2.0
    assert read_scalars(tmp_path / "cola.tensorboard") == as_scalars(curve.to_dict("records"))
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "model")
    assert model.config.num_labels == 2 and model.config.id2label == {0: "neg", 1: "pos"}
    assert model.config.hidden_dropout_prob == 0.1
    assert not (tmp_path / "state.pt").exists()


def test_resume_is_bit_for_bit(setup, tmp_path, caplog):
    full = tmp_path / "full"
    _run(setup, full)
    cut = tmp_path / "cut"
    # killed at step 7 (state of step 6), then at step 14 in epoch 2 (state of step 12), then to the end
    with pytest.raises(TrainingInterrupted):
        _run(setup, cut, callbacks=[StopAfter(7)])
    assert (cut / "state.pt").exists() and not (cut / "model").exists()
    with caplog.at_level(logging.INFO), pytest.raises(TrainingInterrupted):
        _run(setup, cut, callbacks=[StopAfter(14)])
    assert "epoch 0, step 6" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO):
        _run(setup, cut)
    assert "epoch 1, step 12" in caplog.text
    a = AutoModelForSequenceClassification.from_pretrained(full / "model").state_dict()
    b = AutoModelForSequenceClassification.from_pretrained(cut / "model").state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (full / "curve.csv").read_text() == (cut / "curve.csv").read_text()
    assert read_json(full / "metrics.json") == read_json(cut / "metrics.json")


def test_state_of_other_settings_is_not_resumed(setup, tmp_path, caplog):
    with pytest.raises(TrainingInterrupted):
        _run(setup, tmp_path, callbacks=[StopAfter(4)])
    bert, data = setup
    other = {**SETTINGS, "lr": 5e-4}
    with caplog.at_level(logging.INFO):
        finetune(str(bert), data, "cola", other, RunFiles.in_dir(tmp_path), tmp_path / "state.pt", "cpu")
    assert "discarding resume state" in caplog.text and "settings.lr" in caplog.text
    fresh = tmp_path / "fresh"
    finetune(str(bert), data, "cola", other, RunFiles.in_dir(fresh), None, "cpu")
    assert (fresh / "curve.csv").read_text() == (tmp_path / "curve.csv").read_text()


def test_unknown_label_names_line(setup, tmp_path):
    bert, data = setup
    bad = tmp_path / "data"
    bad.mkdir()
    for f in ("dev.tsv", "labels.txt"):
        (bad / f).write_text((data / f).read_text())
    write_tsv(bad / "train.tsv", pd.DataFrame({"sentence": ["a cat", "a dog"], "label": ["pos", "meh"]}))
    with pytest.raises(Exception, match=r"train.tsv:3: label 'meh'"):
        finetune(str(bert), bad, "cola", SETTINGS, RunFiles.in_dir(tmp_path / "m"), None, "cpu")


def test_schedule_setting_reaches_the_loop(setup, tmp_path):
    bert, data = setup
    settings = {**SETTINGS, "schedule": "constant", "save_every_steps": 0}
    finetune(str(bert), data, "cola", settings, RunFiles.in_dir(tmp_path), None, "cpu")
    lr = pd.read_csv(tmp_path / "curve.csv")["lr"].tolist()
    assert lr == pytest.approx([SETTINGS["lr"]] * 6)  # 2 warm-up steps of 20, then no decay
    _run(setup, tmp_path / "lin")
    linear = pd.read_csv(tmp_path / "lin" / "curve.csv")["lr"].tolist()
    assert linear[-1] < linear[0]
    with pytest.raises(ConfigError, match="teacher.warmup_fraction"):
        finetune(str(bert), data, "cola", {**SETTINGS, "schedule": "none"}, RunFiles.in_dir(tmp_path / "m"), None, "cpu")

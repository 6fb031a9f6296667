"""Generated sentences hold anything: tabs, quotes, newlines, emoji, control characters, special-token text, or
nothing at all. They must reach the teacher logits and both students without misalignment.

An augmentation shard of such sentences goes through `logits.write_transfer` (streamed in several row groups,
length-sorted batches) and `distil.distil` (BERT_S on the stored teacher ids, LSTM_S on words). Row i of the
transfer set must be sentence i, its teacher-tokenizer ids and the teacher's logits for that sentence alone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from kdprobe import transfer as logits
from kdprobe.splits import read_sentences
from kdprobe.distil import distil, read_transfer
from kdprobe.io import write_parquet
from kdprobe.students.testing import (FILLER, NEGATIVE, POSITIVE, make_task, make_teacher, make_word2vec,
                                      synthetic_sentences)
from kdprobe.training import RunFiles
from kdprobe.students.testing import SECTION

AWKWARD = [
    "a tab\tinside",
    'double "quoted" text',
    "it 's a 'single quoted' one",
    '"',
    "a line\nbreak",
    "a windows\r\nline break",
    "emoji 😀🎉 and ❤️",
    "😀",
    "",
    " ",
    "\t",
    "\n",
    "zero\u200bwidth and e\u0301 combining",
    "right to left: שלום עולם",
    "nul \x00 and bell \x07 characters",
    "[CLS] [SEP] [PAD] [UNK] [MASK] as text",
    "NA",
    "null",
    "nan",
    "#comment, with a comma; and a semicolon $(touch PWNED) `id`",
    "the movie was good " * 40,  # longer than max_length: truncated
    "the movie was good",
    "the movie was good",  # a duplicate keeps its own row
]
MAX_LENGTH = 24


def _spread(teacher_dir):
    """Re-draw the untrained teacher's weights wide, so that every sentence gets logits of its own."""
    model = AutoModelForSequenceClassification.from_pretrained(str(teacher_dir))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() == 2:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    model.save_pretrained(str(teacher_dir))
    return teacher_dir


@pytest.fixture(scope="module")
def transfer(tmp_path_factory):
    root = tmp_path_factory.mktemp("awkward")
    splits = make_task(root / "data", n_train=120, n_dev=40, n_test=40, seed=3)
    train_sentences, train_labels = splits["train"]
    teacher = _spread(make_teacher(root / "teacher", train_sentences + synthetic_sentences(40, 5)[0]))
    augment = root / "augment" / "shard0.parquet"
    write_parquet(augment, pd.DataFrame({"sentence": AWKWARD}))
    settings = {"batch_size": 4, "max_length": MAX_LENGTH}
    mp = pytest.MonkeyPatch()
    mp.setattr(logits, "STREAM_BATCHES", 1)  # chunks of 4: several row groups, the last one short
    try:
        sentences, labels = read_sentences(augment)
        shard = root / "transfer" / "shard0.parquet"
        assert logits.write_transfer(teacher, sentences, labels, settings, shard, "cpu") == len(AWKWARD)
        train = root / "transfer" / "train.parquet"
        train_x, train_y = read_sentences(root / "data" / "train.tsv")
        logits.write_transfer(teacher, train_x, train_y, settings, train, "cpu")
    finally:
        mp.undo()
    return {"root": root, "teacher": teacher, "augment": augment, "shard": shard, "train": train,
            "n_train": len(train_sentences), "sentences": sentences, "labels": labels}


def test_augment_parquet_round_trips_every_sentence(transfer):
    assert transfer["sentences"] == AWKWARD and transfer["labels"] is None


def test_transfer_rows_align_with_their_sentences(transfer):
    table = pq.read_table(transfer["shard"])
    assert table.num_rows == len(AWKWARD)
    assert pq.ParquetFile(transfer["shard"]).num_row_groups == 6  # 5 x 4 + 3: streamed in chunks
    assert table.column("sentence").to_pylist() == AWKWARD
    assert table.column("label").to_pylist() == [None] * len(AWKWARD)
    tokenizer = AutoTokenizer.from_pretrained(str(transfer["teacher"]))
    stored = table.column("input_ids").to_pylist()
    for sentence, ids in zip(AWKWARD, stored):
        assert ids == tokenizer(sentence, truncation=True, max_length=MAX_LENGTH)["input_ids"], repr(sentence)
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id and len(ids) <= MAX_LENGTH
    assert len(stored[AWKWARD.index("")]) == 2  # nothing at all: [CLS] [SEP]


def test_transfer_logits_are_each_sentences_own(transfer):
    """Length-sorted, padded batches must not mix rows up: compare with each sentence run alone."""
    table = pq.read_table(transfer["shard"])
    model = AutoModelForSequenceClassification.from_pretrained(str(transfer["teacher"])).eval()
    stored = np.array(table.column("logits").to_pylist(), dtype=np.float32)
    with torch.inference_mode():
        alone = np.stack([model(input_ids=torch.tensor([ids])).logits[0].numpy()
                          for ids in table.column("input_ids").to_pylist()])
    np.testing.assert_allclose(stored, alone, rtol=1e-4, atol=1e-4)
    assert len({tuple(np.round(row, 3)) for row in stored}) >= 15  # distinct sentences, distinct logits


def test_distillation_reads_the_rows_in_order(transfer):
    frame = read_transfer([transfer["train"], transfer["shard"]], n_classes=2, need_ids=True)
    assert len(frame) == transfer["n_train"] + len(AWKWARD)
    tail = frame.iloc[transfer["n_train"]:]
    assert tail["sentence"].tolist() == AWKWARD and tail["label"].isna().all()
    shard = pq.read_table(transfer["shard"])
    assert [list(x) for x in tail["input_ids"]] == shard.column("input_ids").to_pylist()


BERT_S = {**SECTION["bert_s"],
          "layers": 1, "hidden": 16, "intermediate": 32, "heads": 2, "dropout": 0.1, "max_length": 16,
          "embeddings": "random", "loss": "soft_ce", "temperature": 3.0, "optimizer": "adam", "lr": 1e-3,
          "betas": [0.9, 0.98], "batch_size": 4, "epochs": 2, "warmup_epochs": 1, "clip_norm": 0, "seed": 1}
LSTM_S = {**SECTION["lstm_s"],
          "hidden": 8, "fc": 8, "dropout": 0.1, "embeddings": "word2vec", "embedding_mode": "multichannel",
          "loss": "mse", "temperature": 1.0, "optimizer": "adam", "lr": 1e-3, "betas": [0.9, 0.999],
          "batch_size": 4, "epochs": 2, "warmup_epochs": 0, "clip_norm": 30.0, "max_length": 16, "seed": 1}


@pytest.mark.parametrize("kind, settings", [("bert_s", BERT_S), ("lstm_s", LSTM_S)])
def test_students_train_on_awkward_sentences(transfer, tmp_path, kind, settings):
    word2vec = None
    if kind == "lstm_s":
        word2vec = tmp_path / "w2v.bin"
        make_word2vec(word2vec, POSITIVE + NEGATIVE + FILLER, dim=8)
    out = tmp_path / kind
    metrics = distil(kind, "sst2", settings, [transfer["train"], transfer["shard"]], transfer["root"] / "data",
                     transfer["teacher"], RunFiles.in_dir(out), tmp_path / "state.pt", "cpu", word2vec=word2vec)
    assert metrics["transfer_size"] == transfer["n_train"] + len(AWKWARD)
    assert metrics["transfer_labelled"] == transfer["n_train"]
    curve = pd.read_csv(out / "curve.csv")
    assert len(curve) == settings["epochs"] and np.isfinite(curve["loss"]).all()
    assert (out / "model" / "model.safetensors").exists() and (out / "model" / "student.json").exists()

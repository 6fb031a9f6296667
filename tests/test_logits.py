"""Teacher logits: input order and alignment survive any text; parquet types; reading the transfer sources."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from kdprobe.errors import InputError
from kdprobe.io import read_json, write_tsv
from kdprobe.runtime import OOM_MARKER, GpuOutOfMemory
from kdprobe.transfer import write_transfer
from kdprobe.splits import read_sentences

from test_teacher import make_sentences, make_tiny_bert

ODD = [
    "", "tab\tinside", 'say "hi" and \'bye\'', "new\nline\r\nand cr", "emoji 😀👍🏽 ok", "  padded  ", "\t",
    "ünïcödé façade", "the cat " * 40, "a", "back\\slash, comma; semi", "null\x00byte",
]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A tiny BERT with a 3-class classification head, as the teacher rule saves it."""
    root = tmp_path_factory.mktemp("logits")
    base = make_tiny_bert(root / "base", make_sentences(50))
    torch.manual_seed(1)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=3)
    model.save_pretrained(root / "teacher")
    AutoTokenizer.from_pretrained(base).save_pretrained(root / "teacher")
    return root / "teacher"


SETTINGS = {"batch_size": 3, "max_length": 16}


def test_rows_align_with_inputs_whatever_the_text(teacher, tmp_path):
    sentences = ODD + make_sentences(10, seed=3)
    labels = [None if i % 3 == 0 else f"l{i % 2}" for i in range(len(sentences))]
    out = tmp_path / "t.parquet"
    assert write_transfer(teacher, sentences, labels, SETTINGS, out, "cpu") == len(sentences)

    table = pq.read_table(out)
    assert table.schema == pa.schema([("sentence", pa.string()), ("input_ids", pa.list_(pa.int32())),
                                      ("logits", pa.list_(pa.float32())), ("label", pa.string())])
    rows = table.to_pylist()
    assert [r["sentence"] for r in rows] == sentences
    assert [r["label"] for r in rows] == labels

    tok = AutoTokenizer.from_pretrained(teacher)
    model = AutoModelForSequenceClassification.from_pretrained(teacher).eval()
    with torch.inference_mode():
        for sentence, row in zip(sentences, rows):
            ids = tok(sentence, truncation=True, max_length=16)["input_ids"]
            assert row["input_ids"] == ids
            assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id and len(ids) <= 16
            alone = model(input_ids=torch.tensor([ids])).logits[0]
            torch.testing.assert_close(torch.tensor(row["logits"]), alone, atol=1e-5, rtol=1e-4)
    assert max(len(r["input_ids"]) for r in rows) == 16  # the long sentence was truncated


def test_no_labels_and_no_sentences(teacher, tmp_path):
    write_transfer(teacher, ["a cat", "a dog"], None, SETTINGS, tmp_path / "a.parquet", "cpu")
    assert pq.read_table(tmp_path / "a.parquet").column("label").to_pylist() == [None, None]
    write_transfer(teacher, [], None, SETTINGS, tmp_path / "e.parquet", "cpu")
    empty = pq.read_table(tmp_path / "e.parquet")
    assert empty.num_rows == 0 and empty.schema.field("logits").type == pa.list_(pa.float32())


def test_read_sentences(tmp_path):
    write_tsv(tmp_path / "train.tsv", pd.DataFrame({"sentence": ['say "hi"', "", "NA", "null"],
                                                    "label": ["a", "b", "a", "b"]}))
    assert read_sentences(tmp_path / "train.tsv") == (['say "hi"', "", "NA", "null"], ["a", "b", "a", "b"])
    pq.write_table(pa.table({"sentence": pa.array(ODD, pa.string())}), tmp_path / "shard0.parquet")
    assert read_sentences(tmp_path / "shard0.parquet") == (ODD, None)
    pq.write_table(pa.table({"sentence": pa.array(["a", None], pa.string())}), tmp_path / "bad.parquet")
    with pytest.raises(InputError, match="null sentence in row 1"):
        read_sentences(tmp_path / "bad.parquet")


def test_rejects_mismatched_labels(teacher, tmp_path):
    with pytest.raises(ValueError, match="1 labels for 2 sentences"):
        write_transfer(teacher, ["a", "b"], ["x"], SETTINGS, tmp_path / "x.parquet", "cpu")


def test_streams_in_chunks_in_input_order(teacher, tmp_path, monkeypatch):
    import kdprobe.transfer as logits_module

    sentences = make_sentences(23, seed=4)
    labels = [f"l{i % 3}" for i in range(23)]
    whole = tmp_path / "whole.parquet"
    write_transfer(teacher, sentences, labels, SETTINGS, whole, "cpu")
    monkeypatch.setattr(logits_module, "STREAM_BATCHES", 2)  # chunks of 6 sentences
    chunked = tmp_path / "chunked.parquet"
    assert write_transfer(teacher, sentences, labels, SETTINGS, chunked, "cpu") == 23
    assert pq.ParquetFile(chunked).num_row_groups == 4
    a, b = pq.read_table(whole).to_pylist(), pq.read_table(chunked).to_pylist()
    assert [r["sentence"] for r in b] == sentences and [r["label"] for r in b] == labels
    for x, y in zip(a, b):
        assert x["input_ids"] == y["input_ids"]
        torch.testing.assert_close(torch.tensor(x["logits"]), torch.tensor(y["logits"]), atol=1e-5, rtol=1e-4)


def kill_logits_at_chunk(monkeypatch, chunk: int) -> dict:
    """Make `kdprobe.transfer.infer_logits` raise KeyboardInterrupt (a killed job) at its `chunk`-th call; returns
    the call counter `{"n": calls, "real": the real function}`."""
    import kdprobe.transfer as logits_module

    calls = {"n": 0, "real": logits_module.infer_logits}

    def dies(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == chunk:
            raise KeyboardInterrupt("killed")
        return calls["real"](*args, **kwargs)

    monkeypatch.setattr(logits_module, "infer_logits", dies)
    return calls


def test_a_killed_shard_resumes_at_its_first_missing_chunk(teacher, tmp_path, monkeypatch):
    import kdprobe.transfer as logits_module

    sentences = make_sentences(23, seed=5)
    monkeypatch.setattr(logits_module, "STREAM_BATCHES", 2)  # chunks of 6 sentences: 4 chunks
    whole = tmp_path / "whole.parquet"
    write_transfer(teacher, sentences, None, SETTINGS, whole, "cpu", chunk_dir=tmp_path / "state-a")
    assert not (tmp_path / "state-a").exists()  # chunks removed once the output is complete

    calls = kill_logits_at_chunk(monkeypatch, 3)
    out, state = tmp_path / "shard.parquet", tmp_path / "state-b"
    with pytest.raises(KeyboardInterrupt):
        write_transfer(teacher, sentences, None, SETTINGS, out, "cpu", chunk_dir=state)
    assert not out.exists()
    assert sorted(p.name for p in state.glob("chunk*")) == ["chunk00000.parquet", "chunk00001.parquet"]

    calls["n"] = -100
    assert write_transfer(teacher, sentences, None, SETTINGS, out, "cpu", chunk_dir=state) == 23
    assert calls["n"] == -100 + 2  # only chunks 2 and 3 were run again
    assert pq.read_table(out).to_pylist() == pq.read_table(whole).to_pylist()

    # chunks of other sentences are never reused
    write_transfer(teacher, sentences[:5], None, SETTINGS, tmp_path / "other.parquet", "cpu", chunk_dir=state)
    assert pq.read_table(tmp_path / "other.parquet").column("sentence").to_pylist() == sentences[:5]


def test_lanes_give_the_same_logits(teacher):
    from kdprobe.models import infer_logits
    from kdprobe.runtime import Lanes

    tok = AutoTokenizer.from_pretrained(teacher)
    model = AutoModelForSequenceClassification.from_pretrained(teacher).eval()
    ids = tok(make_sentences(17, seed=5) + ODD, truncation=True, max_length=16)["input_ids"]
    one = infer_logits(model, ids, 4, tok.pad_token_id, "cpu", lanes=Lanes(1))
    with Lanes(3) as lanes:
        three = infer_logits(model, ids, 4, tok.pad_token_id, "cpu", lanes=lanes)
    np.testing.assert_allclose(three, one, rtol=1e-5, atol=1e-6)
    assert not torch.is_inference_mode_enabled()


def test_chunks_of_another_gpu_or_dtype_are_discarded(teacher, tmp_path, monkeypatch, caplog):
    """The chunk manifest records the device's name and dtype: a retry on another GPU type or in bf16 starts
    afresh instead of joining its chunks to the earlier attempt's."""
    import kdprobe.transfer as logits_module

    sentences = make_sentences(23, seed=5)
    monkeypatch.setattr(logits_module, "STREAM_BATCHES", 2)  # 4 chunks
    calls = kill_logits_at_chunk(monkeypatch, 3)
    out, state = tmp_path / "shard.parquet", tmp_path / "state"
    with pytest.raises(KeyboardInterrupt):
        write_transfer(teacher, sentences, None, SETTINGS, out, "cpu", chunk_dir=state)
    assert read_json(state / "manifest.json")["numerics"] == {"device": "cpu", "dtype": "float32"}
    monkeypatch.setattr(logits_module, "numerics_record",
                        lambda device, dtype: {"device": "NVIDIA A100-SXM4-40GB", "dtype": "bfloat16"})
    calls["n"] = -100
    with caplog.at_level(logging.WARNING):
        assert write_transfer(teacher, sentences, None, SETTINGS, out, "cpu", chunk_dir=state) == 23
    assert calls["n"] == -100 + 4  # every chunk run again
    assert "discarding 2 chunks" in caplog.text and "numerics" in caplog.text


def test_a_retry_after_running_out_of_gpu_memory_halves_the_batch(teacher, tmp_path, monkeypatch, caplog):
    import kdprobe.transfer as logits_module

    sentences = make_sentences(23, seed=5)
    monkeypatch.setattr(logits_module, "STREAM_BATCHES", 2)  # chunks of 2 x logits.batch_size sentences
    whole = tmp_path / "whole.parquet"
    write_transfer(teacher, sentences, None, SETTINGS, whole, "cpu", chunk_dir=tmp_path / "state-a")
    real, batches = logits_module.infer_logits, []

    def too_big(forward, ids, batch_size, *args, **kwargs):  # a GPU that fits 2 sentences, after 2 chunks
        batches.append(batch_size)
        if batch_size > 2 and len(batches) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(forward, ids, batch_size, *args, **kwargs)

    monkeypatch.setattr(logits_module, "infer_logits", too_big)
    out, state = tmp_path / "shard.parquet", tmp_path / "state-b"
    with pytest.raises(GpuOutOfMemory, match=r"batches of 3 \(logits.batch_size\).*runs batches of 1"):
        write_transfer(teacher, sentences, None, SETTINGS, out, "cpu", chunk_dir=state)
    assert not out.exists() and read_json(state / OOM_MARKER)["batch_size"] == 3
    batches.clear()
    with caplog.at_level(logging.WARNING):
        assert write_transfer(teacher, sentences, None, SETTINGS, out, "cpu", chunk_dir=state) == 23
    assert batches == [1, 1]  # the two missing chunks, in halved batches; the done ones are kept
    assert "ran out of GPU memory with batches of 3 (logits.batch_size): batches of 1 now" in caplog.text
    assert not state.exists()  # the marker goes with the chunks once the output is complete
    for x, y in zip(pq.read_table(out).to_pylist(), pq.read_table(whole).to_pylist()):
        assert x["input_ids"] == y["input_ids"]
        torch.testing.assert_close(torch.tensor(x["logits"]), torch.tensor(y["logits"]), atol=1e-5, rtol=1e-4)

"""Size and speed measurement (`kdprobe.predict.speed`) on tiny models, and test-split predictions (`predict`, split=test)."""

import json

import pandas as pd
import pytest
import torch

from kdprobe.errors import ConfigError, InputError
from kdprobe.predict.predictions import write_predictions
from kdprobe.models import embedding_parameter_names, parameter_counts
from kdprobe.predict.speed import (check_settings, measure_model, time_forward,
                           timing_devices, weight_bytes)
from kdprobe.students import build_student
from kdprobe.students.testing import LABELS, make_task, make_teacher
from kdprobe.students.testing import SECTION

SETTINGS = {"latency_repeats": 7, "throughput_batch": 16, "throughput_batches": 3, "warmup": 2}


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    root = tmp_path_factory.mktemp("speed")
    splits = make_task(root / "data", n_train=40, n_dev=11, n_test=9, seed=4)
    teacher = make_teacher(root / "teacher", splits["train"][0])
    return {"root": root, "data": root / "data", "teacher": teacher, "splits": splits}


def test_time_forward_shape_and_calls():
    calls = []

    def forward(ids, mask):
        calls.append(tuple(ids.shape))
        assert ids.shape == mask.shape
        return torch.zeros(ids.shape[0], 2)

    sequences = [[1, 2, 3], [4, 5], [6]]
    out = time_forward(forward, sequences, 0, "cpu", latency_repeats=5, throughput_batch=4, throughput_batches=2,
                       warmup=3)
    # 3 + 5 single-sentence forwards, cycling through the three sentences; then 1 + 2 batches of 4 (cycled)
    assert calls[:8] == [(1, 3), (1, 2), (1, 1)] * 2 + [(1, 3), (1, 2)]
    assert calls[8:] == [(4, 3)] * 3
    assert len(out["latencies_ms"]) == 5 and len(out["batch_seconds"]) == 2
    assert out["latency_ms"] > 0 and out["throughput"] > 0
    assert out["latency_ms"] == pytest.approx(sorted(out["latencies_ms"])[2])
    assert out["throughput"] == pytest.approx(8 / sum(out["batch_seconds"]))
    with pytest.raises(ValueError, match="at least one sentence"):
        time_forward(forward, [], 0, "cpu", 1, 1, 1, 0)


def test_time_forward_measures_a_slow_model_as_slower():
    def fast(ids, mask):
        return ids.float()

    def slow(ids, mask):
        x = torch.randn(256, 256)
        for _ in range(30):
            x = x @ x / 256
        return x

    args = dict(latency_repeats=5, throughput_batch=4, throughput_batches=2, warmup=1)
    quick, sluggish = (time_forward(f, [[1, 2]], 0, "cpu", **args) for f in (fast, slow))
    assert sluggish["latency_ms"] > 3 * quick["latency_ms"]
    assert sluggish["throughput"] < quick["throughput"] / 3


@pytest.mark.parametrize("bad,key", [
    ({"latency_repeats": 0}, "summary.latency_repeats"),
    ({"throughput_batch": 2.5}, "summary.throughput_batch"),
    ({"warmup": -1}, "summary.warmup"),
    ({"throughput_batches": True}, "summary.throughput_batches"),
])
def test_bad_settings_name_the_key(bad, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        check_settings({**SETTINGS, **bad})
    missing = {k: v for k, v in SETTINGS.items() if k != key.split(".")[1]}
    with pytest.raises(ConfigError, match="missing"):
        check_settings(missing)


def test_parameter_counts_leave_out_embeddings():
    model = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 3))
    names = embedding_parameter_names(model)
    assert names == {"0.weight"}
    assert parameter_counts(model, names.__contains__) == (40 + 15, 15)


def test_weight_bytes_counts_weight_files_only(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"x" * 1000)
    (tmp_path / "pytorch_model.bin").write_bytes(b"x" * 24)
    (tmp_path / "vocab.txt").write_text("a\nb\n")
    assert weight_bytes(tmp_path) == 1024
    (tmp_path / "model.safetensors").unlink()
    (tmp_path / "pytorch_model.bin").unlink()
    with pytest.raises(InputError, match="no weight file"):
        weight_bytes(tmp_path)
    with pytest.raises(InputError, match="not found"):
        weight_bytes(tmp_path / "absent")


def test_measure_teacher_and_student(task, tmp_path):
    out = tmp_path / "teacher.json"
    record = measure_model("teacher", task["teacher"], task["data"], out, "cpu", SETTINGS, max_length=32)
    assert json.loads(out.read_text()) == json.loads(json.dumps(record))
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(str(task["teacher"]))
    word = model.bert.embeddings.word_embeddings.weight.numel()
    pos = model.bert.embeddings.position_embeddings.weight.numel()
    types = model.bert.embeddings.token_type_embeddings.weight.numel()
    assert record["params"] == sum(p.numel() for p in model.parameters())
    assert record["params_without_embeddings"] == record["params"] - word - pos - types
    assert record["disk_bytes"] == (task["teacher"] / "model.safetensors").stat().st_size
    cpu = record["cpu"]
    assert record["gpu"] is None
    assert cpu["latency_ms"] > 0 and cpu["throughput"] > 0 and cpu["threads"] == torch.get_num_threads()
    assert cpu["device_name"] and len(cpu["latencies_ms"]) == 7 and len(cpu["batch_seconds"]) == 3
    assert record["settings"] == SETTINGS

    torch.manual_seed(0)
    student = build_student("bert_s", {**SECTION["bert_s"], "layers": 1, "hidden": 16, "intermediate": 16, "heads": 2, "max_length": 32},
                            2, {"teacher_dir": task["teacher"], "labels": LABELS})
    student.save(tmp_path / "student")
    rec = measure_model("bert_s", tmp_path / "student", task["data"], tmp_path / "s.json", "cpu", SETTINGS)
    assert rec["params"] == student.n_params()
    assert rec["params_without_embeddings"] == student.n_params_without_embeddings() < rec["params"]
    with pytest.raises(InputError, match="stale"):
        measure_model("bert_s", tmp_path / "student", task["data"], tmp_path / "t.json", "cpu", SETTINGS,
                      max_length=64)
    assert not (tmp_path / "t.json").exists()


def test_measure_bad_inputs(task, tmp_path):
    with pytest.raises(ConfigError, match="unknown model kind"):
        measure_model("gpt9", task["teacher"], task["data"], tmp_path / "x.json", "cpu", SETTINGS)
    with pytest.raises(ConfigError, match="teacher.max_length"):
        measure_model("teacher", task["teacher"], task["data"], tmp_path / "x.json", "cpu", SETTINGS)
    with pytest.raises(InputError, match="not found"):
        measure_model("teacher", task["teacher"], tmp_path / "nodata", tmp_path / "x.json", "cpu", SETTINGS, 32)
    empty = tmp_path / "empty"
    make_task(empty, n_train=4, n_dev=4, n_test=4, seed=1)
    pd.DataFrame({"sentence": [], "label": []}).to_csv(empty / "dev.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match="no dev sentences"):
        measure_model("teacher", task["teacher"], empty, tmp_path / "x.json", "cpu", SETTINGS, 32)
    assert not (tmp_path / "x.json").exists()


def test_test_split_predictions(task, tmp_path):
    out = tmp_path / "teacher.test.tsv"
    frame = write_predictions("teacher", task["teacher"], task["data"], out, "cpu", max_length=32, split="test")
    sentences, gold = task["splits"]["test"]
    assert frame["sentence"].tolist() == sentences and frame["gold"].tolist() == gold
    dev = write_predictions("teacher", task["teacher"], task["data"], tmp_path / "dev.tsv", "cpu", max_length=32)
    assert dev["sentence"].tolist() == task["splits"]["dev"][0]  # the default split is still dev
    with pytest.raises(ConfigError, match="split"):
        write_predictions("teacher", task["teacher"], task["data"], tmp_path / "x.tsv", "cpu", max_length=32,
                          split="train")


def test_a_gpu_job_is_timed_on_the_cpu_and_its_gpu():
    assert timing_devices("cpu") == [torch.device("cpu")]
    assert timing_devices(torch.device("cuda:1")) == [torch.device("cpu"), torch.device("cuda:1")]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_measure_on_a_gpu(task, tmp_path):
    record = measure_model("teacher", task["teacher"], task["data"], tmp_path / "g.json", "cuda", SETTINGS, 32)
    assert record["cpu"]["latency_ms"] > 0 and record["gpu"]["latency_ms"] > 0 and record["gpu"]["throughput"] > 0
    assert record["gpu"]["device_name"] == torch.cuda.get_device_name(0)

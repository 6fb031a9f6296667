"""Device, dtype and batch-size decisions (`kdprobe.runtime`), on the CPU with CUDA mocked where needed."""

from __future__ import annotations

import contextlib
import logging

import pytest
import torch

from kdprobe import runtime
from kdprobe.augment import memory


@pytest.fixture
def fake_cuda(monkeypatch):
    """CUDA 'available' with a settable compute capability and free memory; nothing ever runs on it."""
    state = {"capability": (9, 0), "free": 70 * 2**30}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: state["capability"])
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (state["free"], 80 * 2**30))
    return state


def test_pick_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.pick_device("auto") == torch.device("cpu")
    assert runtime.pick_device("cpu") == torch.device("cpu")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        runtime.pick_device("cuda:1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.pick_device("auto") == torch.device("cuda")
    assert runtime.pick_device("cuda:1") == torch.device("cuda:1")


def test_bf16_needs_an_ampere_class_gpu(fake_cuda):
    cuda = torch.device("cuda")
    assert runtime.bf16_supported(cuda)
    fake_cuda["capability"] = (7, 5)
    assert not runtime.bf16_supported(cuda)
    assert not runtime.bf16_supported(torch.device("cpu"))


def test_bf16_not_supported_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert not runtime.bf16_supported(torch.device("cuda"))


@pytest.mark.parametrize("settings,kind,expected", [
    ({}, "inference", None),                  # sampling and logits run fp32, as the thesis did: bf16 is opt-in
    ({}, "training", None),                   # training: opt-in
    ({"bf16": True}, "training", torch.bfloat16),
    ({"bf16": True}, "inference", torch.bfloat16),
    ({"bf16": False}, "inference", None),
    (None, "inference", None),
])
def test_autocast_dtype_on_a_bf16_gpu(fake_cuda, settings, kind, expected):
    assert runtime.autocast_dtype(torch.device("cuda"), settings, kind) is expected


@pytest.mark.parametrize("settings", [{}, {"bf16": True}, {"bf16": False}])
@pytest.mark.parametrize("kind", ["inference", "training"])
def test_cpu_is_always_fp32(fake_cuda, settings, kind):
    assert runtime.autocast_dtype(torch.device("cpu"), settings, kind) is None
    assert isinstance(runtime.autocast(torch.device("cpu"), settings, kind), contextlib.nullcontext)


def test_bf16_requested_on_an_old_gpu_falls_back_with_a_warning(fake_cuda, caplog):
    fake_cuda["capability"] = (7, 0)
    with caplog.at_level(logging.WARNING, logger="kdprobe"):
        assert runtime.autocast_dtype(torch.device("cuda"), {"bf16": True}, "training") is None
    assert "bf16 requested" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="kdprobe"):
        assert runtime.autocast_dtype(torch.device("cuda"), {}, "inference") is None  # default: no warning
    assert "bf16" not in caplog.text


def test_autocast_context_on_a_bf16_gpu(fake_cuda, monkeypatch):
    made = []
    monkeypatch.setattr(torch, "autocast", lambda device_type, dtype: made.append((device_type, dtype)) or "ctx")
    assert runtime.autocast(torch.device("cuda:0"), {"bf16": True}, "inference") == "ctx"
    assert made == [("cuda", torch.bfloat16)]
    assert isinstance(runtime.autocast(torch.device("cuda:0"), {}, "inference"), contextlib.nullcontext)


def test_to_device_pins_and_copies_asynchronously_only_for_cuda(monkeypatch):
    batch = {"ids": torch.arange(4), "mask": torch.ones(4), "name": "x"}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert not runtime.pin_memory(torch.device("cpu"))
    moved = runtime.to_device(batch, torch.device("cpu"))
    assert moved["name"] == "x" and torch.equal(moved["ids"], batch["ids"])

    calls = []

    class Recorder(torch.Tensor):
        def pin_memory(self):
            calls.append("pin")
            return self

        def to(self, *args, **kwargs):
            calls.append(kwargs.get("non_blocking"))
            return torch.Tensor.to(self.as_subclass(torch.Tensor), "cpu")

    monkeypatch.setattr(runtime, "pin_memory", lambda device: True)
    moved = runtime.to_device({"ids": torch.arange(3).as_subclass(Recorder), "n": 3}, torch.device("cpu"))
    assert calls == ["pin", True] and moved["n"] == 3 and moved["ids"].tolist() == [0, 1, 2]


def test_pin_memory_decision(fake_cuda):
    assert runtime.pin_memory(torch.device("cuda"))
    assert not runtime.pin_memory(torch.device("cpu"))


def test_compile_only_when_asked(monkeypatch):
    seen = []
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: seen.append(kw) or ("compiled", fn))

    def fn(x):
        return x

    assert runtime.maybe_compile(fn, {}) is fn
    assert runtime.maybe_compile(fn, None) is fn
    assert runtime.maybe_compile(fn, {"compile": False}) is fn
    assert runtime.maybe_compile(fn, {"compile": True}) == ("compiled", fn)
    assert seen == [{"dynamic": True}]


def test_sampling_bytes_per_row_gpt2_medium():
    per_row = memory.sampling_bytes_per_row(layers=24, hidden=1024, vocab=50257, max_length=128, value_bytes=2)
    kv = 2 * 24 * 1024 * 129 * 2
    assert kv < per_row < kv * 1.1  # the KV cache dominates
    assert memory.sampling_bytes_per_row(24, 1024, 50257, 128, 4) > per_row


def test_sampling_batch_size_from_free_memory():
    dims = {"layers": 24, "hidden": 1024, "vocab": 50257, "max_length": 128}
    per_row = memory.sampling_bytes_per_row(**dims, value_bytes=2)
    rows = memory.sampling_batch_size(75 * 2**30, **dims)
    assert rows % 64 == 0 and rows * per_row <= 0.7 * 75 * 2**30 < (rows + 64) * per_row
    assert 3000 < rows < 5000  # an H100's free memory holds a few thousand rows of GPT-2 medium
    assert memory.sampling_batch_size(140 * 2**30, **dims) > rows  # H200
    assert memory.sampling_batch_size(75 * 2**30, **{**dims, "max_length": 256}) < rows
    assert memory.sampling_batch_size(75 * 2**30, **dims, value_bytes=4) < rows
    assert memory.sampling_batch_size(2**50, **dims) == memory.MAX_SAMPLING_BATCH
    assert memory.sampling_batch_size(2**50, **dims, cap=100) == 100
    assert memory.sampling_batch_size(30 * per_row, **dims) == 21  # fewer than `multiple`: not rounded to 0
    assert memory.sampling_batch_size(per_row // 2, **dims) == 1
    assert memory.sampling_batch_size(0, **dims) == 1


def test_resolve_sampling_batch(fake_cuda, monkeypatch):
    dims = {"layers": 6, "hidden": 384, "vocab": 1200, "max_length": 128, "value_bytes": 2}
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert memory.resolve_sampling_batch({"batch_size": 256}, cuda, **dims) == 256
    for auto in ({}, {"batch_size": None}, {"batch_size": "auto"}, {"batch_size": 0}):
        assert memory.resolve_sampling_batch(auto, cpu, **dims) == memory.CPU_SAMPLING_BATCH
    fake_cuda["free"] = 8 * 2**30
    expected = memory.sampling_batch_size(8 * 2**30, layers=6, hidden=384, vocab=1200, max_length=128)
    assert memory.resolve_sampling_batch({"batch_size": "auto"}, cuda, **dims) == expected
    assert runtime.free_memory(cuda) == 8 * 2**30 and runtime.free_memory(cpu) is None


def test_lanes_map_in_order_on_single_threaded_torch():
    threads = torch.get_num_threads()
    seen = []

    def work(i):
        seen.append(torch.get_num_threads())
        return i * i

    with runtime.Lanes(3) as lanes:
        assert lanes.map(work, range(7)) == [i * i for i in range(7)]
        assert lanes.map(work, []) == []
    assert set(seen) == {1} and torch.get_num_threads() == threads
    assert runtime.Lanes(1).pool is None and runtime.Lanes(0).n == 1


def test_lanes_per_device(fake_cuda):
    assert runtime.Lanes.for_device(torch.device("cuda")).n == 1
    assert runtime.Lanes.for_device(torch.device("cpu")).n == torch.get_num_threads()

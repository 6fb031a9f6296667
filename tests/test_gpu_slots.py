"""One GPU per job on a machine with several (`runtime.pick_device` / `claim_gpu`), with CUDA mocked on the CPU.

Snakemake's `--resources gpu=N` only counts GPU jobs; each job must then pick a GPU no other job holds. Locks are
`fcntl.flock` locks on per-GPU files, which conflict between open files even within one process, so "two jobs"
are two lock holders here, and real separate processes in `test_separate_processes_get_separate_gpus`.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from kdprobe import runtime

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def gpus(monkeypatch, tmp_path):
    """`n` mocked visible GPUs (settable); set_device calls recorded; locks in a fresh directory; no slot held."""
    state = {"n": 2, "current": []}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: state["n"])
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: state["current"].append(index))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("KDPROBE_GPU_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setattr(runtime, "_claimed", None)
    yield state
    if runtime._claimed is not None:
        runtime._claimed[1].close()


def test_a_job_takes_the_first_free_gpu_and_keeps_it(gpus, tmp_path, caplog):
    other = runtime.try_lock_gpu(0, tmp_path / "locks")  # another job holds GPU 0
    assert other is not None
    with caplog.at_level(logging.INFO, logger="kdprobe"):
        assert runtime.pick_device("auto", 1) == torch.device("cuda:1")
    assert gpus["current"] == [1]  # plain "cuda" means the claimed GPU too
    assert "GPU slot: cuda:1 of 2 visible GPUs" in caplog.text
    assert runtime.try_lock_gpu(1, tmp_path / "locks") is None  # held by this process now
    assert runtime.pick_device("cuda") == torch.device("cuda:1")  # the same slot on a second call
    other.close()
    assert runtime.pick_device("auto") == torch.device("cuda:1")  # kept for the life of the process


def test_two_lock_holders_never_share_a_gpu(gpus, tmp_path):
    first = runtime.try_lock_gpu(0, tmp_path / "locks")
    assert runtime.try_lock_gpu(0, tmp_path / "locks") is None
    second = runtime.try_lock_gpu(1, tmp_path / "locks")
    assert second is not None
    first.close()  # a job ends: its GPU is free again
    again = runtime.try_lock_gpu(0, tmp_path / "locks")
    assert again is not None
    again.close()
    second.close()


def test_a_job_waits_while_every_gpu_is_held(gpus, tmp_path, monkeypatch, caplog):
    held = [runtime.try_lock_gpu(i, tmp_path / "locks") for i in range(2)]
    sleeps = []

    def sleep(seconds):  # the first wait frees GPU 1 (its job ends)
        sleeps.append(seconds)
        held[1].close()

    monkeypatch.setattr(runtime.time, "sleep", sleep)
    with caplog.at_level(logging.WARNING, logger="kdprobe"):
        assert runtime.claim_gpu(2, tmp_path / "locks", poll=0.25) == 1
    assert sleeps == [0.25] and "all 2 visible GPUs are held" in caplog.text
    held[0].close()


def test_single_gpu_cpu_and_explicit_devices_take_no_lock(gpus, tmp_path):
    assert runtime.pick_device("cuda:1") == torch.device("cuda:1")
    assert runtime.pick_device("cpu") == torch.device("cpu")
    assert runtime.pick_device("auto", 0) == torch.device("cpu")  # a job that asked for no GPU takes none
    gpus["n"] = 1  # e.g. a SLURM job: CUDA_VISIBLE_DEVICES holds the one GPU it was given
    assert runtime.pick_device("auto", 1) == torch.device("cuda")
    assert runtime.pick_device("cuda") == torch.device("cuda")
    assert gpus["current"] == [] and not (tmp_path / "locks").exists()


def test_no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.pick_device("auto", 1) == torch.device("cpu")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        runtime.pick_device("cuda")


def test_gpu_key_is_the_same_in_every_process(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert [runtime.gpu_key(i) for i in range(2)] == ["2", "3"]  # the physical ids a narrowed list names
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-1234abcd/x, 0")
    assert [runtime.gpu_key(i) for i in range(2)] == ["GPU-1234abcd_x", "0"]  # a UUID, made safe as a file name
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert runtime.gpu_key(1) == "1"


def test_a_workflow_job_passes_its_gpu_request(gpus):
    from kdprobe.workflow import run

    def job(gpu):
        seen = []
        snakemake = SimpleNamespace(log=[], threads=1, config={"device": "auto"}, resources=SimpleNamespace(gpu=gpu),
                                    rule="predict", wildcards={}, input=[], output=[])
        run(snakemake, seen.append)
        return seen[0]

    assert job(0) == torch.device("cpu")  # e.g. prepare_data: Snakemake counts it as no GPU job
    assert job(1) == torch.device("cuda:0") and gpus["current"] == [0]


CHILD = textwrap.dedent("""
    import sys, torch
    torch.cuda.is_available = lambda: True
    torch.cuda.device_count = lambda: 2
    torch.cuda.set_device = lambda index: None
    from kdprobe import runtime
    runtime.GPU_POLL_SECONDS = 0.1
    print(runtime.pick_device("auto", 1), flush=True)
    sys.stdin.read()  # hold the GPU until the parent closes stdin
""")


def _job(lock_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "KDPROBE_GPU_LOCK_DIR": str(lock_dir), "PYTHONPATH": str(ROOT / "src")}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def test_separate_processes_get_separate_gpus(tmp_path):
    jobs = []
    try:
        jobs = [_job(tmp_path)]
        assert jobs[0].stdout.readline().strip() == "cuda:0"
        jobs.append(_job(tmp_path))
        assert jobs[1].stdout.readline().strip() == "cuda:1"
        jobs.append(_job(tmp_path))  # a third GPU job on two GPUs waits ...
        assert _wait_for_line(jobs[2].stderr, "all 2 visible GPUs are held", timeout=120)
        assert jobs[2].poll() is None
        jobs[0].stdin.close()  # ... until the first one ends
        assert jobs[0].wait(timeout=30) == 0
        assert jobs[2].stdout.readline().strip() == "cuda:0"
    finally:
        for job in jobs:
            if job.poll() is None:
                job.kill()
            job.wait()


def _wait_for_line(stream, text: str, timeout: float) -> bool:
    """Whether a line containing `text` arrives on `stream` within `timeout` seconds (read by a helper thread)."""
    found = threading.Event()

    def read():
        for line in stream:
            if text in line:
                found.set()
                return

    threading.Thread(target=read, daemon=True).start()
    return found.wait(timeout)

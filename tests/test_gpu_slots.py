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
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda device=None: SimpleNamespace(name="Mock GPU", total_memory=80 * 2**30))
    for name in ("SLURM_JOB_ID", "SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "SLURM_GPUS_ON_NODE", "CUBLAS_WORKSPACE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("KDPROBE_GPU_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setattr(runtime, "_claimed", None)
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    yield state
    if runtime._claimed is not None:
        runtime._claimed[1].close()
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32  # as before configure_cuda


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
    assert runtime.pick_device("auto", 0) == torch.device("cpu")
    assert runtime.pick_device("auto") == torch.device("cpu")  # outside Snakemake: nothing asked for a GPU
    with pytest.raises(runtime.GpuUnavailable, match="CUDA is not available"):
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


def test_a_gpu_job_without_cuda_stops_naming_the_cause(monkeypatch, tmp_path):
    """A job that asked for a GPU never trains on the CPU instead: it stops, naming torch's reason, its CUDA
    version, the driver's and CUDA_VISIBLE_DEVICES."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    def init():
        raise RuntimeError("The NVIDIA driver on your system is too old (found version 11040).")

    monkeypatch.setattr(torch.cuda, "init", init)
    driver = tmp_path / "version"
    driver.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  470.82.01  Wed Oct 27 2021\n")
    monkeypatch.setattr(runtime, "NVIDIA_DRIVER_VERSION", driver)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    with pytest.raises(runtime.GpuUnavailable) as err:
        runtime.pick_device("auto", 1)
    message = str(err.value)
    assert "asked for 1 GPU(s) but CUDA is not available" in message
    assert "driver on your system is too old" in message and "470.82.01" in message
    assert f"torch {torch.__version__} built for CUDA" in message and "CUDA_VISIBLE_DEVICES '0'" in message
    monkeypatch.setattr(runtime, "NVIDIA_DRIVER_VERSION", tmp_path / "missing")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(runtime.GpuUnavailable, match="no NVIDIA driver on this machine.*hides every GPU"):
        runtime.pick_device("cuda", 1)


def test_a_workflow_gpu_job_without_cuda_exits_before_its_work(monkeypatch, tmp_path):
    from kdprobe.workflow import run

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    log_file, called = tmp_path / "job.log", []
    snakemake = SimpleNamespace(log=[str(log_file)], threads=1, config={"device": "auto"},
                                resources=SimpleNamespace(gpu=1), rule="teacher", wildcards={}, input=[], output=[])
    stderr = os.dup(2)
    try:
        with pytest.raises(SystemExit) as exit_info:
            run(snakemake, called.append)
    finally:
        os.dup2(stderr, 2)  # run() pointed fd 2 at the job's log
        os.close(stderr)
        sys.stderr = sys.__stderr__
    assert exit_info.value.code == 1 and called == []
    assert "but CUDA is not available" in log_file.read_text()


@pytest.mark.parametrize("capability,archs,ok", [
    ((9, 0), ["sm_80", "sm_90"], True),
    ((8, 6), ["sm_80"], True),                 # same major version, older minor: binary compatible
    ((8, 0), ["sm_86"], False),                # a newer minor one is not
    ((9, 0), ["sm_70", "sm_80", "compute_80"], True),  # PTX compiled for the device at load time
    ((12, 0), ["sm_80", "sm_90"], False),      # a GPU newer than the build
    ((7, 0), ["sm_80", "compute_80"], False),  # an old GPU the build dropped
])
def test_compute_capability_against_the_arch_list(capability, archs, ok):
    assert runtime.arch_supported(capability, archs) is ok


def test_a_gpu_torch_was_not_built_for_stops_the_job(gpus, monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["sm_50", "sm_60", "sm_70"])
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100")
    with pytest.raises(runtime.GpuUnavailable, match=r"NVIDIA H100 has compute capability 9.0 .*sm_50, sm_60"):
        runtime.pick_device("auto", 1)


def test_every_gpu_job_logs_its_gpu_and_numerics(gpus, capfd):
    from kdprobe.workflow import run

    def job(config) -> str:
        snakemake = SimpleNamespace(log=[], threads=1, config={"device": "auto", **config},
                                    resources=SimpleNamespace(gpu=1), rule="logits", wildcards={}, input=[], output=[])
        run(snakemake, lambda device: None)
        return capfd.readouterr().err  # the job's log

    text = job({})
    assert "Mock GPU, compute capability 9.0, 80.0 GiB" in text and "bf16 supported" in text
    assert "fp32 matmul tf32, cuDNN tf32; deterministic off" in text
    try:
        text = job({"cuda": {"tf32": False, "deterministic": True}})
        assert torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.benchmark
    finally:
        torch.use_deterministic_algorithms(False)
    assert "fp32 matmul ieee, cuDNN ieee; deterministic on" in text


def test_cpu_jobs_keep_the_cuda_switches_alone(gpus):
    runtime.configure_cuda(torch.device("cpu"), tf32=False, deterministic=True)
    assert not torch.are_deterministic_algorithms_enabled()
    assert runtime.numerics_record(torch.device("cpu"), None) == {"device": "cpu", "dtype": "float32"}


def test_slurm_confined_devices_take_no_lock(gpus, tmp_path, monkeypatch, caplog):
    """Under SLURM with its GPUs confined to the job, every job sees its own as cuda:0 (the same name in every job
    of the node): no lock, or jobs on different GPUs would wait for each other."""
    monkeypatch.setenv("SLURM_JOB_ID", "123")
    monkeypatch.setenv("SLURM_JOB_GPUS", "2,3")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert runtime.pick_device("auto", 2) == torch.device("cuda")
    assert gpus["current"] == [] and not (tmp_path / "locks").exists()
    with caplog.at_level(logging.WARNING, logger="kdprobe"):  # more GPUs than it asked for: not confined
        assert runtime.pick_device("auto", 1) == torch.device("cuda:0")
    assert "SLURM job 123 asked for 1 GPU(s) but sees 2" in caplog.text
    assert (tmp_path / "locks" / "gpu-0.lock").exists()
    monkeypatch.delenv("SLURM_JOB_GPUS")  # no GPU allocation SLURM names: never taken as confined
    assert not runtime.slurm_confined(2, 2)


def test_the_lock_directory_is_never_a_per_job_tmpdir(monkeypatch, tmp_path):
    import tempfile

    monkeypatch.delenv("KDPROBE_GPU_LOCK_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "job123"))  # SLURM's per-job TMPDIR
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "job123"))
    assert runtime.gpu_lock_dir() == Path("/tmp") / f"kdprobe-gpu-locks-{os.getuid()}"


def test_chunk_numerics_name_the_gpu_and_its_switches(gpus, monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    runtime.configure_cuda(torch.device("cuda"), tf32=False)
    assert runtime.numerics_record(torch.device("cuda"), torch.bfloat16) == {
        "device": "NVIDIA H100 80GB HBM3", "dtype": "bfloat16", "tf32": False, "deterministic": False}

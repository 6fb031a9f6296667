"""Device choice, thread limits, seeding and RNG capture shared by every stage, and the one place that decides
how a stage uses its device (bf16 autocast, pinned memory, torch.compile, free GPU memory). Log set-up
and progress bars are in `kdprobe.logs` (torch-free)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import re
import socket
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger("kdprobe")


def pick_device(preference: str = "auto", gpus: int | None = None) -> torch.device:
    """The device of this process: 'cpu' and 'cuda:N' as given; 'auto' CUDA when present, else CPU; 'auto' and
    'cuda' on a machine with several visible GPUs: a GPU of its own (`claim_gpu`).

    `gpus`: the GPUs the job asked its scheduler for (Snakemake's `resources.gpu`; None: unknown). With 'auto', a
    job that asked for none runs on the CPU, so jobs that Snakemake does not count as GPU jobs never take one.
    """
    if preference == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        if gpus == 0:
            log.info("device auto: the job asked for no GPU (resources gpu=0), so it runs on the CPU")
            return torch.device("cpu")
    elif preference != "cuda":
        dev = torch.device(preference)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {preference!r} requested but CUDA is not available")
        return dev
    if not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but CUDA is not available")
    n = torch.cuda.device_count()
    if n <= 1:  # one GPU visible, e.g. the one SLURM gave this job through CUDA_VISIBLE_DEVICES
        return torch.device("cuda")
    index = claim_gpu(n)
    torch.cuda.set_device(index)  # code that says plain "cuda" lands on the claimed GPU too
    return torch.device(f"cuda:{index}")


# ------------------------------------------------------------------------------------------------- GPU slots
# Snakemake's `--resources gpu=N` only counts GPU jobs; it does not say which GPU a job should use. On a machine
# with several visible GPUs each job takes the first GPU whose lock file it can lock exclusively (`fcntl.flock`)
# and holds the lock until it exits (the kernel releases it however the process ends, so no lock goes stale).

#: The lock of the GPU this process claimed, held open for the life of the process: (index, file).
_claimed: tuple[int, Any] | None = None
#: Seconds between attempts while every GPU is taken.
GPU_POLL_SECONDS = 5.0


def gpu_lock_dir() -> Path:
    """Directory of the per-GPU lock files: `KDPROBE_GPU_LOCK_DIR`, else `<tmp>/kdprobe-gpu-locks-<uid>` (local
    to the machine, so only jobs that share its GPUs share the locks)."""
    override = os.environ.get("KDPROBE_GPU_LOCK_DIR")
    return Path(override) if override else Path(tempfile.gettempdir()) / f"kdprobe-gpu-locks-{os.getuid()}"


def gpu_key(index: int) -> str:
    """The name of visible GPU `index` in its lock file's name: its entry of CUDA_VISIBLE_DEVICES (a physical index
    or UUID, the same in every process that sees it), else the index itself. Nothing asks CUDA, so no CUDA context
    is made before `pick_device` has chosen the GPU."""
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    key = visible[index] if index < len(visible) else str(index)
    return re.sub(r"[^A-Za-z0-9_.-]", "_", key)


def try_lock_gpu(index: int, lock_dir: str | Path) -> Any | None:
    """The open, exclusively locked lock file of visible GPU `index`, or None when another process holds it."""
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    handle = open(lock_dir / f"gpu-{gpu_key(index)}.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    handle.flush()
    return handle


def claim_gpu(n: int, lock_dir: str | Path | None = None, poll: float | None = None) -> int:
    """Index (0..n-1) of the first visible GPU no other process holds, locked for the life of this process; the
    same index again on later calls. While all n are taken (more GPU jobs than GPUs), waits for one to free."""
    global _claimed
    if _claimed is not None:
        return _claimed[0]
    lock_dir = Path(lock_dir) if lock_dir is not None else gpu_lock_dir()
    waiting = False
    while True:
        for index in range(n):
            handle = try_lock_gpu(index, lock_dir)
            if handle is not None:
                _claimed = (index, handle)
                log.info("GPU slot: cuda:%d of %d visible GPUs (lock %s)", index, n, handle.name)
                return index
        if not waiting:
            log.warning("all %d visible GPUs are held by other kdprobe jobs (locks in %s): waiting for one to free; "
                        "is --resources gpu=N larger than the number of GPUs?", n, lock_dir)
            waiting = True
        time.sleep(GPU_POLL_SECONDS if poll is None else poll)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """All RNG states, as objects `torch.load(weights_only=True)` accepts."""
    py = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def single_thread(device: torch.device | str = "cpu"):
    """Run torch on one CPU thread inside the block (a no-op for a GPU device); the caller's setting is restored
    after. For models so small that threads cost more than they give, and to make CPU results thread-independent."""
    if torch.device(device).type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def limit_threads(threads: int) -> None:
    """Keep torch inside the cores the scheduler gave the job."""
    threads = max(1, int(threads))
    torch.set_num_threads(threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))


# ------------------------------------------------------------------------------------- device and dtype
# Everything that decides how a stage uses its device lives here: the device itself, bf16 autocast, pinned
# memory with non-blocking copies, optional torch.compile, and the sampling batch size from free GPU memory.
# Every function is a pure decision on its arguments (torch.cuda is asked only where named), so CPU tests can
# mock CUDA in.

#: Stages whose bf16 autocast is on by default on a bf16-capable GPU: inference only (the logits are upcast to
#: fp32 before anything is read from them). Training stages autocast only when their section says `bf16: true`.
BF16_DEFAULT = {"inference": True, "training": False}


def bf16_supported(device: torch.device) -> bool:
    """Whether `device` runs bf16 matmuls natively: a CUDA device of compute capability 8.0 or more."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return False
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8


def autocast_dtype(device: torch.device, settings: dict[str, Any] | None, kind: str = "training") -> torch.dtype | None:
    """The autocast dtype of a stage, or None for plain fp32.

    bf16 on CUDA only, and only where the device supports it; `settings['bf16']` (true/false) decides, and when it is
    absent `BF16_DEFAULT[kind]` does (`kind`: 'inference' or 'training'). CPU always runs fp32: bf16 there changes
    results for little gain on most CPUs, and on some virtual machines that advertise AMX its matmuls die with an
    illegal instruction.
    """
    device = torch.device(device)
    settings = settings or {}
    wanted = settings.get("bf16")
    if wanted is None:
        wanted = BF16_DEFAULT[kind]
    if not wanted or device.type != "cuda":
        return None
    if not bf16_supported(device):
        if settings.get("bf16"):
            log.warning("bf16 requested but %s does not support it: running fp32", device)
        return None
    return torch.bfloat16


def autocast(device: torch.device, settings: dict[str, Any] | None, kind: str = "training"):
    """Autocast context for `autocast_dtype(device, settings, kind)`; a no-op context when that is None."""
    dtype = autocast_dtype(device, settings, kind)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def pin_memory(device: torch.device) -> bool:
    """Whether host batches bound for `device` go through pinned memory (CUDA: then copies are asynchronous)."""
    return torch.device(device).type == "cuda" and torch.cuda.is_available()


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Move the tensors of a batch; to CUDA through pinned memory with non-blocking copies."""
    device = torch.device(device)
    if not pin_memory(device):
        return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    return {
        k: v.pin_memory().to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
        for k, v in batch.items()
    }


def tensor_to(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """One tensor to `device`, as `to_device` moves batches."""
    return to_device({"x": tensor}, device)["x"]


def maybe_compile(fn, settings: dict[str, Any] | None, **kwargs):
    """`torch.compile(fn, dynamic=True, **kwargs)` when `settings['compile']` is true, else `fn` itself.

    Off by default: compiling pays off on long GPU runs, costs minutes up front and needs a C++ toolchain on CPU.
    """
    if not (settings or {}).get("compile"):
        return fn
    kwargs.setdefault("dynamic", True)
    log.info("torch.compile(%s)", getattr(fn, "__name__", type(fn).__name__))
    return torch.compile(fn, **kwargs)


class Lanes:
    """Independent pieces of work (sampling batches, inference batches) side by side on a CPU: `n` Python threads,
    each running whole pieces with torch on one thread (torch ops release the GIL); `local` keeps per-lane state
    (e.g. a sampling decoder) between pieces.

    A batch of a small model is a few hundred small operations; with torch's own threads each of them is a
    parallel region that waits for every thread, so on a shared machine one descheduled thread stalls them all.
    Independent batches on independent threads never wait for each other. On a GPU (or with one thread) there is
    one lane and no pool. Thread-local torch state (`inference_mode`, autocast) must be entered inside the work.
    """

    def __init__(self, n: int):
        self.n = max(1, int(n))
        self.pool = ThreadPoolExecutor(self.n, thread_name_prefix="lane") if self.n > 1 else None
        self.local = threading.local()

    @classmethod
    def for_device(cls, device: torch.device) -> "Lanes":
        """One lane per torch thread on a CPU, one on a GPU."""
        return cls(torch.get_num_threads() if torch.device(device).type == "cpu" else 1)

    def map(self, fn, items) -> list:
        """`[fn(i) for i in items]`, in order, the calls spread over the lanes (torch single-threaded meanwhile)."""
        items = list(items)
        if self.pool is None or len(items) < 2:
            return [fn(i) for i in items]
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return list(self.pool.map(fn, items))
        finally:
            torch.set_num_threads(threads)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()

    def __enter__(self) -> "Lanes":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def free_memory(device: torch.device) -> int | None:
    """Free bytes on a CUDA device (`torch.cuda.mem_get_info`), None elsewhere."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return int(free)

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
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from kdprobe.errors import KdprobeError
from kdprobe.io import read_json, write_json

log = logging.getLogger("kdprobe")


def pick_device(preference: str = "auto", gpus: int | None = None) -> torch.device:
    """The device of this process: 'cpu' and 'cuda:N' as given; 'auto' CUDA when present, else CPU; 'auto' and
    'cuda' on a machine with several visible GPUs: a GPU of its own (`claim_gpu`, unless SLURM confines the job's
    devices: `slurm_confined`).

    `gpus`: the GPUs the job asked its scheduler for (Snakemake's `resources.gpu`; None: unknown). With 'auto', a
    job that asked for none runs on the CPU, so jobs that Snakemake does not count as GPU jobs never take one; a
    job that asked for one never falls back to the CPU: without a usable GPU it stops with `GpuUnavailable`,
    naming the cause (`cuda_diagnosis`), instead of training a large model on a few cores until its time runs out.
    """
    if preference == "auto" and gpus == 0:
        log.info("device auto: the job asked for no GPU (resources gpu=0), so it runs on the CPU")
        return torch.device("cpu")
    dev = torch.device("cuda" if preference == "auto" else preference)
    if dev.type != "cuda":
        return dev
    if not torch.cuda.is_available():
        if preference == "auto" and not gpus:
            return torch.device("cpu")
        asked = f"asked for {gpus} GPU(s)" if gpus else f"asked for device {preference!r}"
        raise GpuUnavailable(f"the job {asked} but CUDA is not available: {cuda_diagnosis()}")
    check_arch(dev)
    if dev.index is not None:
        return dev
    n = torch.cuda.device_count()
    if n <= 1 or slurm_confined(n, gpus):  # e.g. the one GPU SLURM gave this job through CUDA_VISIBLE_DEVICES
        return torch.device("cuda")
    index = claim_gpu(n)
    torch.cuda.set_device(index)  # code that says plain "cuda" lands on the claimed GPU too
    return torch.device(f"cuda:{index}")


class GpuUnavailable(KdprobeError, RuntimeError):
    """A job that needs a GPU has no usable one (no CUDA, an old driver, a device torch was not built for)."""


#: Where a loaded NVIDIA kernel driver reports its version (read by `cuda_diagnosis`).
NVIDIA_DRIVER_VERSION = Path("/proc/driver/nvidia/version")


def cuda_diagnosis() -> str:
    """Why CUDA is unusable, in one line: torch's own reason (`torch.cuda.init`), torch's version and the CUDA
    version it was built for, the kernel driver's version and CUDA_VISIBLE_DEVICES."""
    try:
        torch.cuda.init()
        reason = "torch.cuda.init() succeeded, but no device is usable"
    except Exception as exc:  # torch raises AssertionError (CPU build) or RuntimeError (driver) with the cause
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    built = torch.version.cuda or "none (a CPU-only build of torch: install a CUDA build)"
    try:
        driver = NVIDIA_DRIVER_VERSION.read_text().strip().splitlines()[0]
    except (OSError, IndexError):
        driver = f"none loaded ({NVIDIA_DRIVER_VERSION} missing: no NVIDIA driver on this machine)"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    visible = "unset" if visible is None else (repr(visible) + (" (hides every GPU)" if not visible.strip() else ""))
    return (f"{reason}; torch {torch.__version__} built for CUDA {built}; NVIDIA driver: {driver}; "
            f"CUDA_VISIBLE_DEVICES {visible}")


def arch_supported(capability: tuple[int, int], arch_list: list[str]) -> bool:
    """Whether torch built for `arch_list` (`torch.cuda.get_arch_list()`: 'sm_80', 'compute_90', ...) runs on a
    device of compute `capability`: a cubin of the same major version and no newer minor one (binary compatible),
    or PTX (`compute_XY`) of at most the device's version (compiled for it at load time)."""
    major, minor = capability
    for arch in arch_list:
        kind, _, number = arch.partition("_")
        if not number.isdigit():
            continue
        a_major, a_minor = int(number[:-1]), int(number[-1])
        if kind == "sm" and a_major == major and a_minor <= minor:
            return True
        if kind == "compute" and (a_major, a_minor) <= (major, minor):
            return True
    return False


def check_arch(device: torch.device) -> None:
    """Stop with `GpuUnavailable` when torch has no kernels for `device`'s compute capability."""
    arch_list = list(torch.cuda.get_arch_list())
    if not arch_list:  # torch does not say what it was built for
        return
    capability = tuple(torch.cuda.get_device_capability(device))
    if not arch_supported(capability, arch_list):
        raise GpuUnavailable(
            f"{torch.cuda.get_device_name(device)} has compute capability {capability[0]}.{capability[1]} (sm_"
            f"{capability[0]}{capability[1]}), but torch {torch.__version__} (CUDA {torch.version.cuda}) is built "
            f"for {', '.join(arch_list)}: install a torch build that supports it")


def slurm_confined(visible: int, gpus: int | None) -> bool:
    """Whether SLURM already confines this job's devices: inside a SLURM job with a GPU allocation
    (SLURM_JOB_GPUS, SLURM_STEP_GPUS or SLURM_GPUS_ON_NODE set) that sees no more GPUs than it asked for. Then the
    visible GPUs are the job's own (and, renumbered by SLURM's cgroup, the same `CUDA_VISIBLE_DEVICES=0` in every
    job of the node, so per-GPU locks would wrongly make such jobs wait for each other). A SLURM job that sees
    more GPUs than it asked for warns and takes one by lock (`claim_gpu`)."""
    env = os.environ
    if not env.get("SLURM_JOB_ID"):
        return False
    if gpus is not None and visible > gpus:
        log.warning("SLURM job %s asked for %d GPU(s) but sees %d (CUDA_VISIBLE_DEVICES=%s): SLURM does not "
                    "confine its devices (cgroup ConstrainDevices=no, --exclusive?); taking a free one by lock",
                    env["SLURM_JOB_ID"], gpus, visible, env.get("CUDA_VISIBLE_DEVICES", "unset"))
        return False
    if any(env.get(name) for name in ("SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "SLURM_GPUS_ON_NODE")):
        log.info("SLURM job %s: its %d visible GPU(s) are its own (no GPU lock)", env["SLURM_JOB_ID"], visible)
        return True
    return False


# ------------------------------------------------------------------------------------------------- GPU slots
# Snakemake's `--resources gpu=N` only counts GPU jobs; it does not say which GPU a job should use. On a machine
# with several visible GPUs each job takes the first GPU whose lock file it can lock exclusively (`fcntl.flock`)
# and holds the lock until it exits (the kernel releases it however the process ends, so no lock goes stale).

#: The lock of the GPU this process claimed, held open for the life of the process: (index, file).
_claimed: tuple[int, Any] | None = None
#: Seconds between attempts while every GPU is taken.
GPU_POLL_SECONDS = 5.0


#: The machine-wide directory the per-GPU lock directory lives in: never $TMPDIR, which batch systems often make
#: per job (SLURM's /tmp/job<N>), so that jobs sharing a machine's GPUs would never see each other's locks.
GPU_LOCK_ROOT = Path("/tmp")


def gpu_lock_dir() -> Path:
    """Directory of the per-GPU lock files: `KDPROBE_GPU_LOCK_DIR`, else `/tmp/kdprobe-gpu-locks-<uid>` (local
    to the machine, so only jobs that share its GPUs share the locks; not $TMPDIR: `GPU_LOCK_ROOT`)."""
    override = os.environ.get("KDPROBE_GPU_LOCK_DIR")
    return Path(override) if override else GPU_LOCK_ROOT / f"kdprobe-gpu-locks-{os.getuid()}"


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

#: Stages whose bf16 autocast is on by default on a bf16-capable GPU: none. Sampling and teacher logits run fp32,
#: as the thesis did, like training; bf16 is an opt-in (`bf16: true` in a section) whose error against fp32
#: `benchmarks/gpu_check.py` measures.
BF16_DEFAULT = {"inference": False, "training": False}


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


def configure_cuda(device: torch.device, tf32: bool = True, deterministic: bool = False) -> None:
    """The one place that sets the CUDA numerics policy of a job (config section `cuda`), logging it with the GPU:
    TF32 for fp32 matmuls and cuDNN (`tf32`; else IEEE fp32), and with `deterministic` torch's deterministic
    algorithms (cuDNN autotuning off, cuBLAS with a fixed workspace; ops without a deterministic version raise).
    A no-op on the CPU, whose results it never changes."""
    device = torch.device(device)
    if device.type != "cuda":
        return
    # the allow_tf32 switches, not the newer fp32_precision ones: once those are set, torch refuses to read the
    # allow_tf32 ones (and get_float32_matmul_precision), which other libraries (torch.compile's inductor) still do
    torch.backends.cuda.matmul.allow_tf32 = bool(tf32)
    torch.backends.cudnn.allow_tf32 = bool(tf32)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts: before any matmul
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True)
    log.info("GPU %s", describe_gpu(device))


def numerics_record(device: torch.device, dtype: torch.dtype | None) -> dict[str, Any]:
    """What a stage's numbers depend on beyond its settings: the device's name and the dtype it computes in, and
    on a GPU the TF32 and deterministic switches (`configure_cuda`); chunk manifests record it, so that chunks
    computed on another GPU type or in another precision are never joined with this job's."""
    device = torch.device(device)
    record: dict[str, Any] = {"device": "cpu", "dtype": str(dtype or torch.float32).removeprefix("torch.")}
    if device.type == "cuda":
        record |= {"device": torch.cuda.get_device_name(device),
                   "tf32": bool(torch.backends.cuda.matmul.allow_tf32),
                   "deterministic": torch.are_deterministic_algorithms_enabled()}
    return record


def describe_gpu(device: torch.device) -> str:
    """One line for the log: the GPU's name, compute capability and memory, torch's CUDA version, whether it
    runs bf16, and the numerics switches in force."""
    props = torch.cuda.get_device_properties(device)
    major, minor = torch.cuda.get_device_capability(device)
    bf16 = "supported" if bf16_supported(device) else "unsupported"
    deterministic = "on" if torch.are_deterministic_algorithms_enabled() else "off"
    matmul, cudnn = ("tf32" if on else "ieee" for on in (torch.backends.cuda.matmul.allow_tf32,
                                                         torch.backends.cudnn.allow_tf32))
    return (f"{device}: {props.name}, compute capability {major}.{minor}, {props.total_memory / 2**30:.1f} GiB; "
            f"torch {torch.__version__} CUDA {torch.version.cuda}; bf16 {bf16} (used only where a section says "
            f"bf16: true); fp32 matmul {matmul}, cuDNN {cudnn}; deterministic {deterministic}")


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


# ------------------------------------------------------------------------------------- CUDA out of memory
# A job that ran out of GPU memory leaves a marker file (the batch size it failed with) in its state directory
# (`oom.json` of a chunk store; `<state>.oom.json` beside a training state), which Snakemake's clean-up of a failed
# job keeps; its retry reads it and runs half that batch (training: micro-batches of half that size, accumulated). A side channel, not a
# rule param or resource: params are rerun triggers (a finished job would look out of date next to a plan made at
# attempt 1), and Snakemake's `attempt` does not say why the last attempt failed (a timeout needs no smaller batch).

#: The file an out-of-memory attempt leaves in a chunk store's state directory.
OOM_MARKER = "oom.json"


class GpuOutOfMemory(KdprobeError):
    """CUDA ran out of memory at a batch size (`halve_on_oom`)."""


def retry_batch(batch: int, marker: str | Path, key: str) -> int:
    """The GPU batch size of this attempt: `batch`, or at most half the one an earlier attempt of the job ran out
    of GPU memory with (the `marker` file it left), saying so."""
    marker = Path(marker)
    if not marker.exists():
        return batch
    failed = int(read_json(marker)["batch_size"])
    halved = max(1, min(batch, failed // 2))
    log.warning("an earlier attempt of this job ran out of GPU memory with batches of %d (%s): batches of %d now "
                "(%s; delete it to start again from %s)", failed, key, halved, marker, key)
    return halved


@contextlib.contextmanager
def halve_on_oom(batch: int, marker: str | Path, key: str, device: torch.device):
    """Turn CUDA running out of memory inside the block into `GpuOutOfMemory`, leaving the `marker` file behind so
    that the job's retry (`snakemake --retries`) runs half the batch (`retry_batch`)."""
    try:
        yield
    except torch.cuda.OutOfMemoryError as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "out of memory"
        if batch <= 1:
            raise GpuOutOfMemory(f"CUDA out of memory on {device} with batches of 1 ({key}): {detail}") from None
        write_json(Path(marker), {"batch_size": int(batch), "key": key})
        raise GpuOutOfMemory(f"CUDA out of memory on {device} with batches of {batch} ({key}): {detail}; a retry "
                             f"of the job (snakemake --retries) runs batches of {batch // 2}") from None


def halving_batches(n: int, batch_size: int, run: Callable[[int, int], None], device: torch.device | str,
                    what: str) -> None:
    """`run(start, size)` over items 0..n-1 in batches of `batch_size` (inference, within one job): when CUDA runs
    out of memory, that batch and the rest run at half the size (logged); out of memory at one item is
    `GpuOutOfMemory`. `what` names the items in messages."""
    start = 0
    while start < n:
        size = min(batch_size, n - start)
        try:
            run(start, size)
        except torch.cuda.OutOfMemoryError as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "out of memory"
            if batch_size <= 1:
                raise GpuOutOfMemory(f"CUDA out of memory on {device} with batches of 1 ({what}): {detail}") from None
            failed, batch_size = batch_size, max(1, batch_size // 2)
            torch.cuda.empty_cache()
            log.warning("CUDA ran out of memory with batches of %d %s: batches of %d from %d of %d on", failed, what,
                        batch_size, start, n)
            continue
        start += size


def clear_oom(marker: str | Path) -> None:
    """Forget an earlier attempt's out-of-memory batch (its `marker` file): the job has completed."""
    Path(marker).unlink(missing_ok=True)


def free_memory(device: torch.device) -> int | None:
    """Free bytes on a CUDA device (`torch.cuda.mem_get_info`), None elsewhere."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return int(free)

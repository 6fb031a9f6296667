"""The one adapter between a Snakemake `script:` job and a library call.

`run(snakemake, fn)` points stderr (logging, tqdm, warnings) at the rule's log, limits torch's threads to what the
scheduler granted, logs what the job reads and writes, calls `fn(device)`, and turns a `KdprobeError` into
one clear line and a non-zero exit. `run(snakemake, fn, device=False)`, for jobs that only read tables and plot,
calls `fn()` and never imports torch (about 1.5 s of every job's start-up).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any, Callable

from kdprobe.cluster import job_gpus
from kdprobe.errors import KdprobeError
from kdprobe.logs import configure_logging

log = logging.getLogger("kdprobe.workflow")


def _redirect_stderr(log_path: str) -> int:
    """Send fd 2 (and sys.stderr) to the log; return a duplicate of the original stderr."""
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    original = os.dup(2)
    fh = open(log_path, "a", buffering=1, encoding="utf-8")
    os.dup2(fh.fileno(), 2)
    sys.stderr = fh
    return original


def _files(named: Any) -> list[str]:
    return [str(f) for f in named]


def _device(snakemake: Any):
    """The job's torch device (`runtime.pick_device` from the config's `device` and the GPUs the job asked its
    scheduler for), with torch's threads limited to the job's and, on a GPU, the config's CUDA numerics policy
    (`runtime.configure_cuda`, section `cuda`) set and logged with the GPU."""
    from kdprobe.runtime import configure_cuda, limit_threads, pick_device  # here: kdprobe.runtime imports torch
    from kdprobe.settings import CudaSettings

    limit_threads(snakemake.threads)
    gpus = job_gpus(getattr(snakemake, "resources", None))  # `gpu`, or a `gres` GPU request
    chosen = pick_device(str(snakemake.config.get("device", "auto")), gpus)
    cuda = CudaSettings.from_config(snakemake.config)
    configure_cuda(chosen, tf32=cuda.tf32, deterministic=cuda.deterministic)
    return chosen


def run(snakemake: Any, fn: Callable[..., Any], device: bool = True) -> None:
    """Run `fn(device)` as the job of `snakemake`; with `device=False`, `fn()` (no torch, no device)."""
    original = _redirect_stderr(snakemake.log[0]) if snakemake.log else None
    configure_logging()
    log.info("rule %s %s", snakemake.rule, dict(snakemake.wildcards.items()))
    log.info("reads: %s", _files(snakemake.input))
    start = time.perf_counter()
    try:
        chosen = _device(snakemake) if device else None  # a GPU job without a usable GPU stops here
        log.info("threads: %s, device: %s", snakemake.threads, chosen if device else "none (no torch)")
        if device:
            fn(chosen)
        else:
            fn()
    except KdprobeError as err:
        log.error("%s", err)
        if original is not None:
            os.write(original, f"kdprobe error in rule {snakemake.rule}: {err}\n".encode())
        sys.exit(1)
    log.info("wrote: %s", _files(snakemake.output))
    log.info("done in %.1f s", time.perf_counter() - start)

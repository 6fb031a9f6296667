"""The one adapter between a Snakemake `script:` job and a library call.

`run(snakemake, fn)` points stderr (logging, tqdm, warnings) at the rule's log, limits threads to what the
scheduler granted, logs what the job reads and writes, calls `fn(device)`, and turns a `KdprobeError` into
one clear line and a non-zero exit.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any, Callable

import torch

from .errors import KdprobeError
from .runtime import configure_logging, limit_threads, pick_device

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


def run(snakemake: Any, fn: Callable[[torch.device], Any]) -> None:
    original = _redirect_stderr(snakemake.log[0]) if snakemake.log else None
    configure_logging()
    limit_threads(snakemake.threads)
    gpus = getattr(getattr(snakemake, "resources", None), "gpu", None)  # the GPUs the job asked its scheduler for
    device = pick_device(str(snakemake.config.get("device", "auto")), None if gpus is None else int(gpus))
    log.info("rule %s %s", snakemake.rule, dict(snakemake.wildcards.items()))
    log.info("reads: %s", _files(snakemake.input))
    log.info("threads: %s, device: %s", snakemake.threads, device)
    start = time.perf_counter()
    try:
        fn(device)
    except KdprobeError as err:
        log.error("%s", err)
        if original is not None:
            os.write(original, f"kdprobe error in rule {snakemake.rule}: {err}\n".encode())
        sys.exit(1)
    log.info("wrote: %s", _files(snakemake.output))
    log.info("done in %.1f s", time.perf_counter() - start)

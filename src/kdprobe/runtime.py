"""Device choice, seeding, RNG capture and progress bars shared by every stage."""

from __future__ import annotations

import logging
import os
import random
import sys
from typing import Any, Iterable

import numpy as np
import torch
from tqdm.auto import tqdm

log = logging.getLogger("kdprobe")


def pick_device(preference: str = "auto") -> torch.device:
    """'auto' takes CUDA when present, else CPU; 'cpu'/'cuda'/'cuda:N' are taken as given."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(preference)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {preference!r} requested but CUDA is not available")
    return dev


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


def progress(iterable: Iterable | None = None, **kwargs) -> tqdm:
    """tqdm that writes to stderr (the rule's log), with rate and ETA, readable in a plain log file."""
    kwargs.setdefault("mininterval", 5.0 if not sys.stderr.isatty() else 0.1)
    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("dynamic_ncols", False)
    kwargs.setdefault("ascii", not sys.stderr.isatty())
    return tqdm(iterable, **kwargs)


def configure_logging(level: int = logging.INFO) -> None:
    """Log lines with time stamps to stderr (which a Snakemake rule points at its log file)."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    logging.captureWarnings(True)


def limit_threads(threads: int) -> None:
    """Keep torch inside the cores the scheduler gave the job."""
    threads = max(1, int(threads))
    torch.set_num_threads(threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))

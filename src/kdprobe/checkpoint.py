"""Resumable training state kept outside a rule's outputs.

A training loop calls `ResumeState.load()` at start, `save()` at least every epoch and `clear()` once its outputs
are written. Files are written atomically and read with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from .io import atomic_path

log = logging.getLogger(__name__)


class ResumeState:
    """One state file per training job, e.g. `results/.state/teacher/cola.pt`."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None

    def load(self) -> dict[str, Any] | None:
        if self.path is None or not self.path.exists():
            return None
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        log.info("resuming from %s (epoch %s, step %s)", self.path, state.get("epoch"), state.get("step"))
        return state

    def save(self, state: dict[str, Any]) -> None:
        if self.path is None:
            return
        with atomic_path(self.path) as tmp:
            torch.save(state, tmp)

    def clear(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)

"""Resumable training state kept outside a rule's outputs, valid only for what it was made from.

A training loop builds a `ResumeState(path, key)`, calls `load()` at start, `save()` at least every epoch and
`clear()` once its outputs are written. `key` (`resume_key`) records the settings and the content digest of every
input file (`digest.content_digests`); a state saved under another key is discarded, and the log names what
changed. Files are written atomically and read with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping

import torch

from kdprobe.digest import content_digests, what_changed
from kdprobe.io import atomic_path

log = logging.getLogger(__name__)


def resume_key(settings: dict[str, Any], inputs: Mapping[str, str | Path], **extra: Any) -> dict[str, Any]:
    """What a state depends on: `settings`, the sha256 of every file of `inputs` (label: file or directory;
    `digest.content_digests`), and `extra` values (JSON-like; e.g. a digest of the token lengths)."""
    return {
        "settings": json.loads(json.dumps(settings, sort_keys=True, default=str)),
        "inputs": content_digests(inputs),
        **json.loads(json.dumps(extra, sort_keys=True, default=str)),
    }


class ResumeState:
    """One state file per training job, e.g. `results/.state/teacher/cola.pt`, valid for `key`."""

    def __init__(self, path: str | Path | None, key: dict[str, Any] | None = None):
        self.path = Path(path) if path else None
        self.key = key

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is none or it was made under another key (logged, with what
        changed)."""
        if self.path is None or not self.path.exists():
            return None
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        if state.get("key") != self.key:
            log.warning("discarding resume state %s: made from other inputs or settings (changed: %s)", self.path,
                        what_changed(state.get("key"), self.key))
            return None
        log.info("resuming from %s (epoch %s, step %s)", self.path, state.get("epoch"), state.get("step"))
        return state

    def save(self, state: dict[str, Any]) -> None:
        if self.path is None:
            return
        with atomic_path(self.path) as tmp:
            torch.save({**state, "key": self.key}, tmp)

    def clear(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)

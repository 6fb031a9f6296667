"""Resumable training state kept outside a rule's outputs, valid only for what it was made from.

A training loop builds a `ResumeState(path, key)`, calls `load()` at start, `save()` at least every epoch and
`clear()` once its outputs are written. `key` (`resume_key`) records the settings, the content digest of every
input file (`digest.content_digests`) and the code (`digest.code_record`); a state saved under another key is
discarded, and the log names what changed. Files are written atomically and read with
`torch.load(weights_only=True)`; one that cannot be read so (damaged, or holding more than tensors and plain
containers) is set aside as `<name>.corrupt` (`io.set_aside`), logged, and the job starts afresh.
"""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path
from typing import Any, Mapping

import torch

from kdprobe.digest import code_record, content_digests, what_changed
from kdprobe.io import atomic_path, set_aside

log = logging.getLogger(__name__)


def resume_key(settings: dict[str, Any], inputs: Mapping[str, str | Path], **extra: Any) -> dict[str, Any]:
    """What a state depends on: `settings`, the sha256 of every file of `inputs` (label: file or directory;
    `digest.content_digests`), the code (`digest.code_record`) and `extra` values (JSON-like; e.g. a digest of the
    token lengths)."""
    return {
        "settings": json.loads(json.dumps(settings, sort_keys=True, default=str)),
        "inputs": content_digests(inputs),
        "code": code_record(),
        **json.loads(json.dumps(extra, sort_keys=True, default=str)),
    }


class ResumeState:
    """One state file per training job, e.g. `results/.state/teacher/cola.pt`, valid for `key`."""

    def __init__(self, path: str | Path | None, key: dict[str, Any] | None = None):
        self.path = Path(path) if path else None
        self.key = key

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is none, it cannot be read (set aside, logged) or it was made under
        another key (logged, with what changed)."""
        if self.path is None or not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # whatever a damaged file raises (IndexError, EOFError, RuntimeError, ...)
            self._set_aside(exc)
            return None
        if not isinstance(state, dict):
            self._set_aside(TypeError(f"holds a {type(state).__name__}, not a state"))
            return None
        if state.get("key") != self.key:
            log.warning("discarding resume state %s: made from other inputs, settings or code (changed: %s)",
                        self.path,
                        what_changed(state.get("key"), self.key))
            return None
        log.info("resuming from %s (epoch %s, step %s)", self.path, state.get("epoch"), state.get("step"))
        return state

    def _set_aside(self, exc: Exception) -> None:
        detail = str(exc).splitlines()[0][:160] if str(exc) else "no detail"
        reason = ("not a weights-only torch file: damaged, or holding Python objects besides tensors and plain"
                  " containers" if isinstance(exc, pickle.UnpicklingError) else f"{type(exc).__name__}: {detail}")
        aside = set_aside(self.path)
        log.warning("saved state %s is unreadable (%s): set aside as %s, starting afresh", self.path, reason, aside)

    def save(self, state: dict[str, Any]) -> None:
        if self.path is None:
            return
        with atomic_path(self.path) as tmp:
            torch.save({**state, "key": self.key}, tmp)

    def clear(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)

"""Errors that carry where the bad input is, so users see one clear line."""

from __future__ import annotations

from pathlib import Path


class KdprobeError(Exception):
    """Base class of every error kdprobe raises on purpose."""


class InputError(KdprobeError):
    """Bad content in an input file: names the file and, where known, the line."""

    def __init__(self, path: str | Path, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class ConfigError(KdprobeError):
    """Bad configuration: names the config key (dotted path)."""

    def __init__(self, key: str, message: str):
        self.key, self.message = key, message
        super().__init__(f"config key '{key}': {message}")


class NonFiniteError(KdprobeError):
    """A NaN or infinite loss, logit or weight: names where it appeared (`where`) and what to check."""

    def __init__(self, where: str, message: str, check: str = "the learning rate, the temperature and the inputs"):
        self.where = where
        super().__init__(f"{where}: {message}; check {check}")

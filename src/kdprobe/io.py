"""Atomic output writing: nothing lands under its final name until it is complete."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from kdprobe.errors import InputError


def _tmp_sibling(path: Path, suffix: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary file path beside `path`; rename it onto `path` only if the block succeeds.

    The temporary keeps `path`'s suffix so libraries that dispatch on it (parquet, safetensors) work.
    """
    path = Path(path)
    tmp = _tmp_sibling(path, path.suffix)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside `path`; it replaces `path` only if the block succeeds.

    A previous `path` is moved aside first and removed only once the new directory is in place; if that last
    rename fails it is moved back, so `path` always holds a complete version (the old or the new one).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    old: Path | None = None
    try:
        yield tmp
        if path.exists() or path.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
        try:
            os.replace(tmp, path)
        except BaseException:
            if old is not None:
                os.replace(old / path.name, path)
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
        if old is not None:
            _remove(old)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path) -> Any:
    """The JSON document in `path`; not UTF-8 JSON is an `InputError` naming the file."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as err:  # json.JSONDecodeError, UnicodeDecodeError
        raise InputError(path, f"not valid JSON ({err})") from None


def set_aside(path: str | Path) -> Path:
    """Rename an unreadable saved file to `<name>.corrupt` beside it (replacing an earlier one), so a rerun starts
    afresh and the file stays for a look; returns the new path."""
    path = Path(path)
    aside = path.with_name(f"{path.name}.corrupt")
    os.replace(path, aside)
    return aside


def read_csv_table(path: str | Path, columns: Any, dtype: dict[str, Any] | None = None) -> pd.DataFrame:
    """A CSV table that must have `columns` and at least one row; otherwise an `InputError` naming the file.
    `dtype`: `pandas.read_csv`'s, for columns whose cells must not be guessed (say numbers kept as text)."""
    try:
        table = pd.read_csv(path, dtype=dtype)
    except pd.errors.EmptyDataError:
        raise InputError(path, "empty file") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(path, f"missing columns {missing}")
    if table.empty:
        raise InputError(path, "no rows")
    return table


def write_tsv(path: str | Path, frame: pd.DataFrame) -> None:
    """Tab-separated, header row, UTF-8; tabs or newlines inside cells are refused (they would misalign rows)."""
    for col in frame.columns:
        if frame[col].dtype == object or pd.api.types.is_string_dtype(frame[col].dtype):
            bad = frame[col].astype(str).str.contains(r"[\t\r\n]", regex=True)
            if bad.any():
                row = int(bad.to_numpy().nonzero()[0][0])
                raise ValueError(f"{path}: column {col!r} row {row} contains a tab or newline")
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False)


def write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_parquet(path: str | Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


#: Longest line (in characters) any reader accepts. Real lines are far shorter (SST-2 < 300, SentEval < 600); a
#: longer one means lost line breaks (old Mac CR-only line ends, a quote swallowing newlines) or a binary file.
MAX_LINE_CHARS = 10_000


def read_lines(path: str | Path, max_chars: int = MAX_LINE_CHARS) -> list[tuple[int, str]]:
    """`(line number, text)` of every line of a UTF-8 file; a BOM and CR line ends are dropped.

    `InputError` (naming the line) for bytes that are not UTF-8 and for a line longer than `max_chars`.
    """
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(path, f"not valid UTF-8 ({err.reason} at byte {err.start})",
                         data[: err.start].count(b"\n") + 1) from None
    lines = [(n, line.rstrip("\r")) for n, line in enumerate(text.split("\n"), start=1)]
    for n, line in lines:
        if len(line) > max_chars:
            raise InputError(path, f"line of {len(line)} characters (limit {max_chars}): a missing line break?", n)
    return lines

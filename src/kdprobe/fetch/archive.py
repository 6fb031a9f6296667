"""Extraction of zip and tar(.gz/.bz2/.xz) archives that cannot write outside the destination.

Every member of the archive is checked before anything is written, and one unsafe member refuses the whole
archive (an archive that carries one is not trusted for the rest either):
- absolute names (`/etc/x`, `\\x`, `C:x`), names with a `..` component, empty names or names with NUL;
- links of any kind, symbolic or hard, wherever they point (simplest rule that is safe; none of the study's
  sources contains links);
- device files, FIFOs, sockets and other special members;
- two members of one path (a file twice, or a file and a directory), a member below a file member, a file whose
  path is a directory in `dest_dir` (or below a file there);
- a truncated or corrupt archive (`FetchError`).
All of this is checked before any folder is made; only damage inside a member's data shows as it is read, and
then what was written is removed. Regular files are written by this module (never by `tarfile.extract` or
`zipfile.extract`) into a temporary directory beside `dest_dir`, with plain permissions (no set-uid bits, no
owners), and moved into place only when all of them are complete.
"""

from __future__ import annotations

import gzip
import logging
import lzma
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, IO, Iterable

from kdprobe.fetch.download import FetchError

log = logging.getLogger("kdprobe.fetch")


class UnsafeArchiveError(FetchError):
    """An archive member that could write outside the destination (or is not a plain file or directory)."""

    def __init__(self, archive: str | Path, member: str, reason: str):
        self.archive = str(archive)
        self.member = member
        self.reason = reason
        super().__init__(f"{archive}: refusing unsafe member {member!r}: {reason}; nothing was extracted")


@dataclass
class _Entry:
    name: str  # as stored
    rel: str  # normalised relative posix path ("" for the root)
    kind: str  # file | dir | symlink | hardlink | special
    open: Callable[[], IO[bytes]] | None = None


def archive_format(path: str | Path) -> str:
    """'zip' or 'tar' (any compression tarfile reads), judged by content rather than the file name."""
    path = Path(path)
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic[:2] == b"PK" and magic[2:4] in (b"\x03\x04", b"\x05\x06", b"\x07\x08"):
        return "zip"
    if tarfile.is_tarfile(path):
        return "tar"
    raise FetchError(f"{path}: neither a zip nor a tar archive")


def _unsafe_name(name: str) -> str | None:
    """Why a member name could write outside the destination, or None if it cannot."""
    if not name or "\x00" in name:
        return "empty name or NUL byte"
    unified = name.replace("\\", "/")
    if unified.startswith("/") or (len(unified) >= 2 and unified[1] == ":"):
        return "absolute path"
    if ".." in unified.split("/"):
        return "'..' path component"
    return None


def _normalise(name: str) -> str | None:
    """Relative posix path of a member (backslashes count as separators), or None if the name is unsafe."""
    if _unsafe_name(name):
        return None
    return "/".join(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))


def _zip_entries(zf: zipfile.ZipFile) -> list[_Entry]:
    entries = []
    for info in zf.infolist():
        mode = info.external_attr >> 16
        if info.create_system == 3 and mode and stat.S_ISLNK(mode):
            kind = "symlink"
        elif info.create_system == 3 and mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
            kind = "special"
        elif info.is_dir():
            kind = "dir"
        else:
            kind = "file"
        entries.append(_Entry(info.filename, _normalise(info.filename), kind, lambda info=info: zf.open(info)))
    return entries


def _tar_entries(tf: tarfile.TarFile) -> list[_Entry]:
    entries = []
    for member in tf.getmembers():
        if member.issym():
            kind = "symlink"
        elif member.islnk():
            kind = "hardlink"
        elif member.isdir():
            kind = "dir"
        elif member.isreg():
            kind = "file"
        else:  # character or block device, FIFO, anything else
            kind = "special"
        entries.append(_Entry(member.name, _normalise(member.name), kind, lambda m=member: tf.extractfile(m)))
    return entries


def _check(archive: Path, entries: Iterable[_Entry]) -> None:
    for entry in entries:
        if entry.rel is None:
            raise UnsafeArchiveError(archive, entry.name, _unsafe_name(entry.name) or "invalid name")
        if entry.kind in ("symlink", "hardlink"):
            raise UnsafeArchiveError(archive, entry.name, f"{entry.kind} (links are not extracted)")
        if entry.kind == "special":
            raise UnsafeArchiveError(archive, entry.name, "device file, FIFO or other special member")
        if entry.kind == "file" and not entry.rel:
            raise UnsafeArchiveError(archive, entry.name, "empty name (nothing left but '.' and '/')")
    _check_clashes(archive, entries)


def _check_clashes(archive: Path, entries: Iterable[_Entry]) -> None:
    """UnsafeArchiveError for two members of one path (but a directory listed twice) or a member below a file."""
    seen: dict[str, _Entry] = {}
    for entry in entries:
        other = seen.get(entry.rel)
        if other is not None and "file" in (entry.kind, other.kind):
            raise UnsafeArchiveError(archive, entry.name, f"duplicate name: member {other.name!r} has the same path")
        seen[entry.rel] = entry
    for rel, entry in seen.items():
        parts = rel.split("/")
        for i in range(1, len(parts)):
            above = seen.get("/".join(parts[:i]))
            if above is not None and above.kind == "file":
                raise UnsafeArchiveError(archive, entry.name,
                                         f"name clash: it lies below member {above.name!r}, a file")


def _check_destination(archive: Path, dest_dir: Path, rels: Iterable[str]) -> None:
    """FetchError when a file to extract would replace a directory of `dest_dir`, go below a file there or through
    a link leading outside it: checked before anything is written."""
    if not dest_dir.exists():
        return
    root = dest_dir.resolve()
    for rel in rels:
        path = dest_dir
        for part in rel.split("/")[:-1]:
            path = path / part
            if path.exists() and not path.is_dir():
                raise FetchError(f"{archive}: member {rel!r} clashes with {path}, a file; nothing was extracted")
            if (path.exists() or path.is_symlink()) and not path.resolve().is_relative_to(root):  # a link in dest_dir
                raise FetchError(f"{path}: its directory leads outside {dest_dir}; nothing was extracted")
        final = dest_dir.joinpath(*rel.split("/"))
        if final.is_dir():
            raise FetchError(f"{archive}: member {rel!r} clashes with {final}, a directory; nothing was extracted")


def _select(archive: Path, entries: list[_Entry], members: Iterable[str] | None) -> list[_Entry]:
    files = [e for e in entries if e.kind == "file" and e.rel]
    if members is None:
        return files
    chosen: dict[str, _Entry] = {}
    for wanted in members:
        rel = _normalise(wanted)
        if rel is None:
            raise FetchError(f"{archive}: requested member {wanted!r} is not a safe relative name")
        hits = [e for e in files if e.rel == rel or e.rel.startswith(rel + "/")]
        if not hits:
            sample = ", ".join(sorted(e.rel for e in files)[:10])
            raise FetchError(f"{archive}: no member {wanted!r} (it has: {sample}{', ...' if len(files) > 10 else ''})")
        for e in hits:
            chosen[e.rel] = e
    return list(chosen.values())


def _write(entry: _Entry, root: Path) -> Path:
    target = root.joinpath(*entry.rel.split("/"))
    resolved = target.resolve()
    if not resolved.is_relative_to(root.resolve()):  # defence in depth: the names were checked already
        raise UnsafeArchiveError("<archive>", entry.name, "resolves outside the destination")
    target.parent.mkdir(parents=True, exist_ok=True)
    src = entry.open()
    if src is None:
        raise FetchError(f"cannot read member {entry.name!r}")
    with src, open(target, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    os.chmod(target, 0o644)
    return target


#: What reading a truncated or corrupt archive raises (zipfile, tarfile and the decompressors under them).
CORRUPT = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile)


def _extract_into(selected: list[_Entry], dest_dir: Path) -> None:
    """Write `selected` into a temporary directory beside `dest_dir`, then move them into it (all checked before)."""
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.", suffix=".extract", dir=dest_dir.parent))
    try:
        for entry in selected:
            _write(entry, tmp)
        if not dest_dir.exists():
            os.replace(tmp, dest_dir)
            return
        for entry in selected:
            final = dest_dir.joinpath(*entry.rel.split("/"))
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp.joinpath(*entry.rel.split("/")), final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def extract(archive: str | Path, dest_dir: str | Path, members: Iterable[str] | None = None) -> list[Path]:
    """Extract regular files of a zip or tar archive under `dest_dir`; return their final paths.

    `members`: names (files, or directories meaning everything below them) to extract; None extracts all. The
    whole archive is checked first (see the module docstring); UnsafeArchiveError names the first bad member.
    Files are written into a temporary directory beside `dest_dir` and moved into it when all are complete;
    existing files of the same names are replaced, other files in `dest_dir` are left alone.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    fmt = archive_format(archive)
    try:
        with zipfile.ZipFile(archive) if fmt == "zip" else tarfile.open(archive, "r:*") as handle:
            entries = _zip_entries(handle) if fmt == "zip" else _tar_entries(handle)
            _check(archive, entries)
            selected = _select(archive, entries, None if members is None else list(members))
            rels = [entry.rel for entry in selected]
            _check_destination(archive, dest_dir, rels)
            _extract_into(selected, dest_dir)
    except CORRUPT as err:
        raise FetchError(f"{archive}: a truncated or corrupt {fmt} archive ({type(err).__name__}: {err}); nothing "
                         "was extracted; delete it and fetch it again") from err
    paths = [dest_dir.joinpath(*rel.split("/")) for rel in rels]
    log.info("extracted %d file(s) from %s into %s", len(paths), archive, dest_dir)
    return paths

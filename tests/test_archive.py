"""Archive extraction refuses, in one clear error and before it makes any folder, what it cannot extract whole:
empty names, duplicate names, name clashes (inside the archive and with the destination) and truncated archives."""

from __future__ import annotations

import io
import random
import tarfile
import warnings
import zipfile
from pathlib import Path

import pytest

from kdprobe.fetch.archive import UnsafeArchiveError, extract
from kdprobe.fetch.download import FetchError


def _zip(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of a duplicate name, and writes it
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def _tar(entries: list[tuple[str, bytes | None]], mode: str = "w") -> bytes:
    """A tar of files (data) and directories (None)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _refused(tmp_path: Path, data: bytes, error=UnsafeArchiveError, match: str = "") -> None:
    """Extracting `data` raises `error` and leaves every file and folder under tmp_path as it was."""
    archive = tmp_path / "a.bin"
    archive.write_bytes(data)
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(error, match=match):
        extract(archive, tmp_path / "dest")
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("entries, reason", [
    ([("ok.txt", b"1"), ("./.", b"x")], "empty name"),
    ([("ok.txt", b"1"), ("a/b.txt", b"2"), ("a//b.txt", b"3")], "duplicate name: member 'a/b.txt'"),
    ([("a/b.txt", b"1"), ("a/b.txt", b"2")], "duplicate name"),
    ([("a", b"1"), ("a/b.txt", b"2")], "name clash: it lies below member 'a', a file"),
])
def test_bad_names_are_refused_in_zip(tmp_path, entries, reason):
    _refused(tmp_path, _zip(entries), match=f"refusing unsafe member .*: {reason}.*; nothing was extracted")


@pytest.mark.parametrize("entries, reason", [
    ([("a/b.txt", b"1"), ("a/b.txt", b"2")], "duplicate name"),
    ([("a/b.txt", None), ("a/b.txt", b"2")], "duplicate name"),  # a directory and a file of one path
    ([("a", b"1"), ("a/b.txt", b"2")], "name clash"),
])
def test_bad_names_are_refused_in_tar(tmp_path, entries, reason):
    _refused(tmp_path, _tar(entries), match=reason)


def test_a_directory_listed_twice_is_fine(tmp_path):
    archive = tmp_path / "a.tar"
    archive.write_bytes(_tar([("a", None), ("a/", None), ("a/b.txt", b"2")]))
    assert extract(archive, tmp_path / "dest") == [tmp_path / "dest" / "a" / "b.txt"]


@pytest.mark.parametrize("existing", ["dir", "file"])
def test_a_clash_with_the_destination_is_refused_before_anything_is_written(tmp_path, existing):
    dest = tmp_path / "dest"
    (dest / "keep").mkdir(parents=True)
    if existing == "dir":  # a member file where the destination has a directory
        (dest / "b.txt").mkdir()
    else:  # a member below what is a file in the destination
        (dest / "a").write_text("mine")
    data = _zip([("keep/x.txt", b"0"), ("a/y.txt" if existing == "file" else "b.txt", b"1")])
    what = "a directory" if existing == "dir" else "a file"
    _refused(tmp_path, data, error=FetchError, match=f"clashes with {dest}.*{what}")


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz", "tar.xz"])
def test_a_truncated_archive_is_refused(tmp_path, kind):
    noise = random.Random(0).randbytes(50_000)  # incompressible: the archive's size follows the data's
    entries = [("a/x.txt", noise), ("a/y.txt", noise[::-1])]
    data = _zip(entries) if kind == "zip" else _tar(entries, {"tar": "w", "tar.gz": "w:gz", "tar.xz": "w:xz"}[kind])
    cut = data[: len(data) * 3 // 4]  # inside a/y.txt's data
    _refused(tmp_path, cut, error=FetchError, match=f"a truncated or corrupt {kind.split('.')[0]} archive .*; "
                                                   "nothing was extracted; delete it and fetch it again")

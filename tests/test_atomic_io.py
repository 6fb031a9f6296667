"""Interrupted writes and a full disk never leave a truncated file under its final name (`kdprobe.io`).

Each writer is made to fail part-way: an exception raised inside the block, or `OSError(ENOSPC)` from the write,
the fsync or the rename, after part of the data is already in the temporary file. Afterwards the final path
is absent (or still holds the previous complete version) and no temporary file is left beside it.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pandas as pd
import pytest

from kdprobe import io as kio
from kdprobe.data.prepare import prepare_task


def _enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _half_then_enospc(method):
    """A replacement for a writer method that writes half of the real output to its target, then fails."""

    def write(self, *args, **kwargs):
        method(self, *args, **kwargs)
        target = Path(self if isinstance(self, Path) else args[0])  # Path.write_text(data) | frame.to_x(target)
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 2])
        _enospc()

    return write


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".") or ".tmp" in p.name)


FRAME = pd.DataFrame({"sentence": ["a first sentence", "a second one"], "label": ["x", "y"]})
WRITERS = {
    "text": (lambda path: kio.write_text(path, "complete text\n" * 100), "out.txt"),
    "json": (lambda path: kio.write_json(path, {"key": list(range(100))}), "out.json"),
    "tsv": (lambda path: kio.write_tsv(path, FRAME), "out.tsv"),
    "csv": (lambda path: kio.write_csv(path, FRAME), "out.csv"),
    "parquet": (lambda path: kio.write_parquet(path, FRAME), "out.parquet"),
}


@pytest.mark.parametrize("kind", sorted(WRITERS))
@pytest.mark.parametrize("where", ["fsync", "replace"])
@pytest.mark.parametrize("previous", [False, True], ids=["new", "over-previous"])
def test_enospc_on_commit_leaves_nothing_truncated(tmp_path, monkeypatch, kind, where, previous):
    write, name = WRITERS[kind]
    path = tmp_path / name
    if previous:
        path.write_bytes(b"previous complete version")
    monkeypatch.setattr(kio.os, where, _enospc)
    with pytest.raises(OSError) as err:
        write(path)
    assert err.value.errno == errno.ENOSPC
    assert path.read_bytes() == b"previous complete version" if previous else not path.exists()
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "kind, method",
    [("text", (Path, "write_text")), ("json", (Path, "write_text")), ("tsv", (pd.DataFrame, "to_csv")),
     ("csv", (pd.DataFrame, "to_csv")), ("parquet", (pd.DataFrame, "to_parquet"))],
)
@pytest.mark.parametrize("previous", [False, True], ids=["new", "over-previous"])
def test_disk_full_mid_write_leaves_nothing_truncated(tmp_path, monkeypatch, kind, method, previous):
    """The writer itself fails with ENOSPC after half the bytes reached the temporary file."""
    write, name = WRITERS[kind]
    path = tmp_path / name
    if previous:
        path.write_bytes(b"previous complete version")
    owner, attr = method
    monkeypatch.setattr(owner, attr, _half_then_enospc(getattr(owner, attr)))
    with pytest.raises(OSError) as err:
        write(path)
    assert err.value.errno == errno.ENOSPC
    assert path.read_bytes() == b"previous complete version" if previous else not path.exists()
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
def test_exception_inside_atomic_path_block(tmp_path, exc):
    path = tmp_path / "model.safetensors"
    with pytest.raises(exc):
        with kio.atomic_path(path) as tmp:
            assert tmp.parent == tmp_path and tmp.suffix == ".safetensors" and tmp != path
            tmp.write_bytes(b"partial")
            raise exc()
    assert not path.exists() and _leftovers(tmp_path) == []


def test_atomic_path_success_replaces_whole(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"old")
    with kio.atomic_path(path) as tmp:
        tmp.write_bytes(b"new and complete")
        assert path.read_bytes() == b"old"  # the final name changes only when the block completes
    assert path.read_bytes() == b"new and complete" and _leftovers(tmp_path) == []


@pytest.mark.parametrize("previous", [False, True], ids=["new", "over-previous"])
@pytest.mark.parametrize("failure", ["exception", "enospc"])
def test_atomic_dir_interrupted(tmp_path, monkeypatch, previous, failure):
    path = tmp_path / "model"
    if previous:
        path.mkdir()
        (path / "config.json").write_text("{}")
    with pytest.raises((RuntimeError, OSError)):
        with kio.atomic_dir(path) as tmp:
            (tmp / "config.json").write_text('{"new": true}')
            (tmp / "model.safetensors").write_bytes(b"half")
            if failure == "exception":
                raise RuntimeError("killed mid-save")
            real_replace = os.replace

            def replace(src, dst):  # moving the previous version aside works; the final rename fails
                if str(src).endswith(".tmp"):
                    _enospc()
                return real_replace(src, dst)

            monkeypatch.setattr(kio.os, "replace", replace)
    if previous:
        assert sorted(p.name for p in path.iterdir()) == ["config.json"]
        assert (path / "config.json").read_text() == "{}"
    else:
        assert not path.exists()
    assert _leftovers(tmp_path) == []


def test_write_tsv_refusal_writes_nothing(tmp_path):
    path = tmp_path / "bad.tsv"
    with pytest.raises(ValueError, match="tab or newline"):
        kio.write_tsv(path, pd.DataFrame({"sentence": ["fine", "has\ta tab"]}))
    assert not path.exists() and _leftovers(tmp_path) == []


def test_prepare_task_is_all_or_nothing_on_a_full_disk(tmp_path, monkeypatch):
    """A disk that fills up while the third of four files is written: the two already written go again."""
    raw = tmp_path / "raw.tsv"
    raw.write_text("".join(f"sentence {i}\t{'ab'[i % 2]}\n" for i in range(20)))
    calls = {"n": 0}
    real = pd.DataFrame.to_csv

    def to_csv(self, target, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            _enospc()
        return real(self, target, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", to_csv)
    out = tmp_path / "out"
    source = {"format": "tsv", "train": str(raw), "split": {"dev": 4, "test": 4, "seed": 0}}
    with pytest.raises(OSError):
        prepare_task("t", source, out)
    assert sorted(p.name for p in out.iterdir()) == []


def test_write_transfer_interrupted_mid_stream(tmp_path, monkeypatch):
    """The logits stage streams row groups into its temporary file; a failure in a later chunk leaves no parquet."""
    from kdprobe import transfer as logits
    from kdprobe.students.testing import make_teacher, synthetic_sentences

    sentences, _ = synthetic_sentences(40, 0)
    teacher = make_teacher(tmp_path / "teacher", sentences)
    monkeypatch.setattr(logits, "STREAM_BATCHES", 2)  # chunks of 16
    real, calls = logits.infer_logits, {"n": 0}

    def infer(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            _enospc()
        return real(*args, **kwargs)

    monkeypatch.setattr(logits, "infer_logits", infer)
    out = tmp_path / "transfer" / "shard0.parquet"
    with pytest.raises(OSError):
        logits.write_transfer(teacher, sentences, None, {"batch_size": 8, "max_length": 32}, out, "cpu")
    assert calls["n"] == 2  # the first chunk had been written to the temporary file
    assert not out.exists() and _leftovers(out.parent) == []

"""Saved state (resume states, probe tables, chunks) is keyed on the code too, and damaged state or model files are
named: a resume state or chunk manifest that cannot be read is set aside and the job starts afresh; a damaged
student or Hugging Face model directory is one `InputError` naming the file and the command that rebuilds it."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pyarrow as pa
import pytest
import torch

import kdprobe
from kdprobe import checkpoint, chunks
from kdprobe.checkpoint import ResumeState, resume_key
from kdprobe.chunks import ChunkStore
from kdprobe.digest import STAGES, code_modules, code_record, file_sha256
from kdprobe.errors import InputError
from kdprobe.models import load_hf
from kdprobe.students import build_student, load_student
from kdprobe.students.testing import make_teacher, synthetic_sentences
from test_students import TINY_LSTM_S

SCHEMA = pa.schema([("sentence", pa.string())])


class NotATensor:
    """Pickled into a state, it makes the file one that a weights-only load refuses."""


def _other_code(monkeypatch, module, **changes):
    """`code_record` as it would be after an edit of the modules (or an upgrade of the packages) in `changes`."""
    record = code_record()
    edited = {**record, "modules": {**record["modules"], **changes.get("modules", {})},
              "packages": {**record["packages"], **changes.get("packages", {})}}
    monkeypatch.setattr(module, "code_record", lambda: edited)


def test_code_record_hashes_the_shared_modules_and_the_jobs_stages():
    record = code_record()
    root = Path(kdprobe.__file__).parent
    assert record["kdprobe"] == kdprobe.__version__ and record["packages"]["torch"] == torch.__version__
    probe = code_modules({"probe"})
    assert probe["probe/run.py"] == file_sha256(root / "probe" / "run.py")
    assert {"checkpoint.py", "models.py", "students/lstm_s.py", "__init__.py"} <= set(probe)  # shared
    assert not any(name.startswith(("teacher", "report/", "augment/", "fetch/")) for name in probe)
    every = {p.relative_to(root).as_posix() for p in root.rglob("*.py")}
    assert set(code_modules(set(STAGES))) == every


def test_the_stages_are_those_of_the_layout_rules():
    from test_layout import STAGES as LAYOUT_STAGES, STAND_INS

    assert set(STAGES) == set(LAYOUT_STAGES) | set(STAND_INS)


@pytest.mark.parametrize("changes,named", [
    ({"modules": {"probe/classifier.py": "0" * 64}}, "code.modules.probe/classifier.py"),
    ({"packages": {"torch": "0.0.1"}}, "code.packages.torch"),
])
def test_a_state_saved_by_other_code_is_discarded(tmp_path, monkeypatch, caplog, changes, named):
    (tmp_path / "train.tsv").write_text("sentence\tlabel\na\tb\n")
    state = ResumeState(tmp_path / "s.pt", resume_key({"lr": 1}, {"train.tsv": tmp_path / "train.tsv"}))
    state.save({"epoch": 1})
    _other_code(monkeypatch, checkpoint, **changes)
    with caplog.at_level(logging.WARNING, logger="kdprobe.checkpoint"):
        assert ResumeState(state.path, resume_key({"lr": 1}, {"train.tsv": tmp_path / "train.tsv"})).load() is None
    assert named in caplog.text


def test_chunks_made_by_other_code_are_discarded(tmp_path, monkeypatch):
    store = ChunkStore(tmp_path / "chunks", {"model": "abc"})
    store.write(0, pa.table({"sentence": ["a"]}, schema=SCHEMA))
    assert ChunkStore(tmp_path / "chunks", {"model": "abc"}).done(0)
    _other_code(monkeypatch, chunks, modules={"augment/sample.py": "0" * 64})
    assert not ChunkStore(tmp_path / "chunks", {"model": "abc"}).done(0)


def _truncated_state(path: Path) -> None:
    torch.save({"epoch": 1, "weights": torch.ones(100)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("damage", [
    lambda p: p.write_bytes(os.urandom(4096)),
    lambda p: p.write_bytes(b""),
    _truncated_state,
    lambda p: torch.save({"epoch": 1, "object": NotATensor()}, p),
    lambda p: torch.save([1, 2, 3], p),
], ids=["random-bytes", "empty", "truncated", "not-weights-only", "not-a-dict"])
def test_an_unreadable_state_is_set_aside_and_the_job_starts_afresh(tmp_path, caplog, damage):
    path = tmp_path / "students" / "cola" / "lstm_s.pt"
    path.parent.mkdir(parents=True)
    damage(path)
    data = path.read_bytes()
    state = ResumeState(path, {"settings": {}})
    with caplog.at_level(logging.WARNING, logger="kdprobe.checkpoint"):
        assert state.load() is None
    assert not path.exists() and (path.parent / "lstm_s.pt.corrupt").read_bytes() == data
    (record,) = caplog.records
    assert str(path) in record.getMessage() and "starting afresh" in record.getMessage()
    assert "weights_only=False" not in record.getMessage()
    state.save({"epoch": 2})
    assert state.load()["epoch"] == 2


def test_a_garbage_chunk_manifest_is_set_aside_and_its_chunks_discarded(tmp_path, caplog):
    directory = tmp_path / "logits" / "cola" / "train"
    ChunkStore(directory, {"model": "abc"}).write(0, pa.table({"sentence": ["a"]}, schema=SCHEMA))
    (directory / "manifest.json").write_bytes(b"\x00{not json")
    with caplog.at_level(logging.WARNING, logger="kdprobe.chunks"):
        store = ChunkStore(directory, {"model": "abc"})
    assert not store.done(0) and (directory / "manifest.json.corrupt").read_bytes() == b"\x00{not json"
    assert str(directory / "manifest.json") in caplog.text
    store.write(0, pa.table({"sentence": ["b"]}, schema=SCHEMA))
    assert ChunkStore(directory, {"model": "abc"}).done(0)  # the new manifest reads back


def test_an_unreadable_chunk_is_named_when_the_chunks_are_joined(tmp_path):
    store = ChunkStore(tmp_path / "chunks", {"model": "abc"})
    store.write(0, pa.table({"sentence": ["a"]}, schema=SCHEMA))
    store.path(1).write_bytes(b"PAR1 garbage")
    with pytest.raises(InputError, match=r"chunk00001\.parquet: unreadable chunk .*delete .*chunks and rerun"):
        store.join(2, tmp_path / "out.parquet", SCHEMA)
    assert not (tmp_path / "out.parquet").exists()


@pytest.fixture
def student_dir(tmp_path):
    torch.manual_seed(0)
    build_student("lstm_s", TINY_LSTM_S, 2, {"sentences": ["a good film", "a dull plot"]}).save(tmp_path / "student")
    return tmp_path / "student"


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _keys_dropped(path: Path) -> None:
    """`student.json` with only the keys that say what it is."""
    config = json.loads(path.read_text())
    path.write_text(json.dumps({key: config[key] for key in ("kind", "format_version")}))


@pytest.mark.parametrize("name,damage,message", [
    ("student.json", _truncate, "damaged: not valid JSON"),
    ("student.json", _keys_dropped, "damaged: KeyError"),
    ("model.safetensors", _truncate, "damaged: not a readable safetensors file"),
], ids=["truncated-json", "keys-missing", "truncated-weights"])
def test_a_damaged_student_names_the_file_and_the_remedy(student_dir, name, damage, message):
    damage(student_dir / name)
    with pytest.raises(InputError) as err:
        load_student(student_dir)
    assert str(err.value).startswith(f"{student_dir / name}: {message}")
    assert str(err.value).endswith(f"rebuild it: snakemake -f {student_dir}") and "\n" not in str(err.value)


def test_a_truncated_hugging_face_model_names_the_directory_and_the_remedy(tmp_path):
    sentences, _ = synthetic_sentences(40, 0)
    model = make_teacher(tmp_path / "teacher", sentences)
    _truncate(Path(model) / "model.safetensors")
    with pytest.raises(InputError, match=rf"^{tmp_path / 'teacher'}: cannot load the teacher: .*; rebuild it: "
                                         rf"snakemake -f {tmp_path / 'teacher'}$"):
        load_hf(model)



def test_a_truncated_base_model_stops_fine_tuning_with_one_line_naming_it(tmp_path):
    from kdprobe.teacher import finetune
    from kdprobe.training import RunFiles
    from test_teacher import SETTINGS, make_task, make_tiny_bert

    bert = make_tiny_bert(tmp_path / "bert")
    _truncate(bert / "model.safetensors")
    with pytest.raises(InputError, match=rf"^{bert}: cannot load the base model: .*; rebuild it: snakemake -f {bert}$"):
        finetune(str(bert), make_task(tmp_path / "data"), "cola", SETTINGS, RunFiles.in_dir(tmp_path / "out"), None,
                 "cpu")


def test_a_truncated_fine_tuned_gpt2_stops_sampling_with_one_line_naming_it(tmp_path):
    from kdprobe.augment.sample import sample_shard
    from test_lm import make_tiny_gpt2
    from test_sampling import SETTINGS

    gpt2 = make_tiny_gpt2(tmp_path / "gpt2")
    _truncate(gpt2 / "model.safetensors")
    with pytest.raises(InputError, match=rf"^{gpt2}: cannot load the fine-tuned GPT-2: .*; rebuild it: "
                                         rf"snakemake -f {gpt2}$"):
        sample_shard(gpt2, 4, 0, SETTINGS, tmp_path / "shard.parquet", tmp_path / "chunks", "cpu")
    assert not (tmp_path / "shard.parquet").exists()

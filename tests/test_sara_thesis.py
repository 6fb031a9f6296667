"""Format `sara_thesis`, the thesis's own Sara split (samsucik/knowledge-distil-bert @ 62277f94,
data/glue_data/Sara/): `intent_id<TAB>text` rows named by `int_to_intent.tsv`; the `tsv` reader refuses such
label-first files; config/config.yaml fetches the split and reads it."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import yaml

from kdprobe import registry
from kdprobe.data.prepare import (INTENT_NAMES, companion_files, prepare_task, raw_files, read_intent_names,
                                  read_sara_thesis, read_tsv)
from kdprobe.errors import InputError
from kdprobe.fetch import parse_sources
from kdprobe.splits import read_labels, read_split

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "sara_thesis"
#: The byte-exact copies of the shared folder (absent on a fresh machine: those tests skip).
REAL = ROOT.parent / "shared" / "real-data" / "sara-thesis"
SPLITS = ("train", "dev", "test")

needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"the thesis's Sara split is not at {REAL} (copies of "
                                                          f"samsucik/knowledge-distil-bert's data/glue_data/Sara)")
DATA = [pytest.param(FIXTURE, (12, 4, 4), 4, id="fixture"),
        pytest.param(REAL, (2853, 970, 987), 57, id="real", marks=needs_real)]


def _source(directory: Path, fmt: str = "sara_thesis") -> dict:
    return {"format": fmt, **{name: str(directory / f"{name}.tsv") for name in SPLITS}}


@pytest.mark.parametrize(("directory", "sizes", "n_labels"), DATA)
def test_prepare_task_reads_the_split_with_intent_names(directory, sizes, n_labels, tmp_path):
    summary = prepare_task("sara", _source(directory), tmp_path)
    assert tuple(summary["sizes"][name] for name in SPLITS) == sizes
    names = read_intent_names(directory / INTENT_NAMES)
    assert len(names) == n_labels
    assert read_labels(tmp_path / "labels.txt") == sorted(names.values()) == summary["labels"]
    for name in SPLITS:  # every line's id became its intent's name, sentences as written
        frame = read_split(tmp_path / f"{name}.tsv")
        rows = [line.split("\t") for line in (directory / f"{name}.tsv").read_text().splitlines() if line.strip()]
        assert list(frame["label"]) == [names[int(ident)] for ident, _ in rows]
        assert list(frame["sentence"]) == [" ".join(text.split()) for _, text in rows]
        assert set(frame["label"]) == set(names.values())  # every intent in every split


def test_fixture_keeps_integer_texts_and_pseudonyms():
    examples = read_sara_thesis(FIXTURE / "train.tsv")
    assert ("5000", "enter_data") in {(ex.sentence, ex.label) for ex in examples}  # as the real split has
    assert examples[4].sentence == "hi __PERSON_NAME__" and examples[4].line == 5


@needs_real
def test_the_copies_are_what_the_config_pins():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    pins = config["sources"]["data"]["sara"]["sha256"]
    assert {name: hashlib.sha256((REAL / f"{name}.tsv").read_bytes()).hexdigest() for name in pins} == pins


@pytest.mark.parametrize("directory", [pytest.param(FIXTURE, id="fixture"),
                                       pytest.param(REAL, id="real", marks=needs_real)])
def test_the_split_read_as_tsv_is_refused_naming_file_and_line(directory, tmp_path):
    for name in SPLITS:
        with pytest.raises(InputError, match="looks label-first.*use format sara_thesis") as err:
            read_tsv(directory / f"{name}.tsv")
        assert err.value.path == str(directory / f"{name}.tsv") and err.value.line == 1
    with pytest.raises(InputError, match=r"train\.tsv:1: .*label-first"):
        prepare_task("sara", _source(directory, "tsv"), tmp_path)


def test_the_refusal_names_the_first_line_with_a_text_label(tmp_path):
    path = tmp_path / "swapped.tsv"
    path.write_text("sentence\tlabel\n2\t100\n2\t5000\n0\tyes please\n")  # a header, then integer texts first
    with pytest.raises(InputError) as err:
        read_tsv(path)
    assert err.value.line == 4 and "label-first" in str(err.value)


@pytest.mark.parametrize("lines", [
    ["the movie was great\t1", "terrible\t0", "5000\t1"],  # integer labels, one integer sentence
    ["100\t1", "5000\t0"],  # integer labels, every sentence an integer: integer labels never trigger it
    ["5000\tenter_data", "my email is x\tenter_data", "hi\tgreet"],  # text labels, some integer sentences
], ids=["integer labels", "all integers", "some integer sentences"])
def test_sentence_label_tsv_with_integers_still_reads(lines, tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("\n".join(lines) + "\n")
    examples = read_tsv(path)
    assert [(ex.sentence, ex.label) for ex in examples] == [tuple(line.split("\t")) for line in lines]


def _copy(tmp_path: Path, **replace: str) -> Path:
    """The fixture in `tmp_path/data`, with files replaced ({file stem: content}; None removes the file)."""
    directory = tmp_path / "data"
    shutil.copytree(FIXTURE, directory)
    for stem, text in replace.items():
        if text is None:
            (directory / f"{stem}.tsv").unlink()
        else:
            (directory / f"{stem}.tsv").write_text(text)
    return directory


NAMES = "0\taffirm\n1\tgreet\n2\tenter_data\n3\tbye\n"


@pytest.mark.parametrize(("replace", "bad", "line", "message"), [
    ({"int_to_intent": None}, "train", None, r"int_to_intent\.tsv \(id<TAB>name\), which does not exist"),
    ({"train": "0\tyes\n7\thello\n"}, "train", 2, r"intent id 7 is not in .*int_to_intent\.tsv"),
    ({"train": "0\tyes\ngreet\thello\n"}, "train", 2, "intent id must be an integer, found 'greet'"),
    ({"train": "0\tyes\nhello\n"}, "train", 2, r"expected 2 tab-separated columns \(intent id, text\), found 1"),
    ({"train": "0\tyes\n1\thello\tthere\n"}, "train", 2, "expected 2 tab-separated columns"),
    ({"train": "0\tyes\n1\t  \n"}, "train", 2, "empty sentence"),
    ({"int_to_intent": NAMES + "1\tthank\n"}, "int_to_intent", 5, "intent id 1 repeats line 2"),
    ({"int_to_intent": NAMES + "4\tgreet\n"}, "int_to_intent", 5, "intent name 'greet' repeats line 2"),
    ({"int_to_intent": NAMES + "x\tthank\n"}, "int_to_intent", 5, "intent id must be an integer, found 'x'"),
    ({"int_to_intent": NAMES + "4\n"}, "int_to_intent", 5, r"columns \(intent id, intent name\), found 1"),
    ({"int_to_intent": NAMES + "4\tthank\tyou\n"}, "int_to_intent", 5, "expected 2 tab-separated columns"),
    ({"int_to_intent": NAMES + "4\t \n"}, "int_to_intent", 5, "empty intent name"),
    ({"int_to_intent": "\n"}, "int_to_intent", None, "no intents"),
], ids=["no int_to_intent.tsv", "unknown id", "non-integer id", "one column", "three columns", "empty text",
        "duplicate id", "duplicate name", "non-integer id in names", "names: one column", "names: three columns",
        "empty name", "no names"])
def test_refusals_name_file_and_line(replace, bad, line, message, tmp_path):
    directory = _copy(tmp_path, **replace)
    with pytest.raises(InputError, match=message) as err:
        prepare_task("sara", _source(directory), tmp_path / "out")
    assert err.value.path == str(directory / f"{bad}.tsv") and err.value.line == line
    assert not (tmp_path / "out").exists()


def test_a_directory_source_leaves_int_to_intent_out_and_the_workflow_sees_it():
    assert raw_files("sara_thesis", FIXTURE) == sorted(FIXTURE / f"{name}.tsv" for name in SPLITS)
    assert FIXTURE / INTENT_NAMES in raw_files("tsv", FIXTURE)  # other formats read every .tsv
    files = [FIXTURE / f"{name}.tsv" for name in SPLITS]
    assert companion_files("sara_thesis", files) == [FIXTURE / INTENT_NAMES]  # once, for rule prepare_data
    assert companion_files("tsv", files) == []


def test_the_thesis_config_fetches_and_reads_the_split():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    data = config["tasks"]["sara"]["data"]
    assert data["format"] == "sara_thesis" and "split" not in data and not data.get("pseudonymise")
    assert "sara_thesis" in registry.TASK["sara"].formats
    [source] = [s for s in parse_sources(config["sources"]) if s.key == "sara"]
    assert "62277f941afce0c9032f46e806f287d089e7a5a9/data/glue_data/Sara/{name}.tsv" in source.url
    fetched = {source.for_name(name).output for name in source.names}
    files = [Path(data[name]) for name in SPLITS]
    assert {str(p) for p in files + companion_files("sara_thesis", files)} == fetched
    assert set(source.sha256) == set(source.names)

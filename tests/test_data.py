"""Raw-data loaders and `prepare_task`: real formats, normalisation, stratified splits, clear input errors."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from kdprobe.data import (Example, normalise, prepare_task, read_cola, read_labels, read_rasa_md, read_split,
                          read_sst2, read_tsv, stratified_split, strip_entities)
from kdprobe.errors import ConfigError, InputError

RAW = Path(__file__).parent / "fixtures" / "raw"


def test_normalise_collapses_whitespace():
    assert normalise("  a\tb \n c\r\n  d  ") == "a b c d"


def test_read_cola():
    examples = read_cola(RAW / "cola" / "train.tsv")
    assert [ex.label for ex in examples] == ["1", "0", "1", "0", "1", "0"]
    assert examples[2].sentence == "The sailors rode the breeze clear of the rocks."
    assert examples[4].sentence == 'He said "hello" to me.'
    assert [ex.line for ex in examples] == [1, 2, 3, 4, 5, 6]


def test_bom_and_crlf_are_tolerated():
    examples = read_cola(RAW / "cola" / "bom_crlf.tsv")
    assert [(ex.sentence, ex.label) for ex in examples] == [("The cat sat.", "1"), ("Cat the sat.", "0")]


def test_read_sst2_strips_glue_trailing_space():
    examples = read_sst2(RAW / "sst2" / "train.tsv")
    assert len(examples) == 5
    assert examples[0] == Example("hide new secretions from the parental units", "0", 2)


def test_strip_entities_all_markup_styles():
    assert strip_entities("I am the [CTO](job_function:cto) of [Acme Corp](company)") == "I am the CTO of Acme Corp"
    assert strip_entities('my company is [Globex]{"entity": "company", "value": "globex"}') == "my company is Globex"
    assert strip_entities("compare [rasa x](product) and [[rasa") == "compare rasa x and [[rasa"


def test_read_rasa_md():
    examples = read_rasa_md(RAW / "sara" / "nlu.md")
    counts = Counter(ex.label for ex in examples)
    assert counts == {"greet": 5, "affirm": 5, "contact_sales": 5, "thank": 5}  # synonym/regex/lookup skipped
    by_text = {ex.sentence: ex for ex in examples}
    assert "hey sara" in by_text and by_text["hey sara"].line == 6
    assert "I am the CTO of Acme Corp" in by_text
    assert "my company is Globex" in by_text
    assert "of course" in by_text  # `*` bullets count too
    assert "yes, please" in by_text  # a tab inside an example is normalised


@pytest.mark.parametrize("name", ["nlu.tsv", "noheader.tsv"])
def test_read_tsv_with_and_without_header(name):
    examples = read_tsv(RAW / "sara" / name)
    assert [(ex.sentence, ex.label) for ex in examples] == [("hi there", "greet"), ("yes please", "affirm")]


def _examples(counts: dict[str, int]) -> list[Example]:
    return [Example(f"{lab} {i}", lab, i) for lab, n in counts.items() for i in range(n)]


def test_stratified_split_keeps_proportions_and_is_seed_stable():
    examples = _examples({"a": 60, "b": 30, "c": 10})
    rest, carved = stratified_split(examples, 20, np.random.default_rng(3), "x")
    assert Counter(ex.label for ex in carved) == {"a": 12, "b": 6, "c": 2}
    assert Counter(ex.label for ex in rest) == {"a": 48, "b": 24, "c": 8}
    assert set(rest).isdisjoint(carved) and len(rest) + len(carved) == len(examples)
    again = stratified_split(examples, 20, np.random.default_rng(3), "x")[1]
    other = stratified_split(examples, 20, np.random.default_rng(4), "x")[1]
    assert again == carved and other != carved


def test_stratified_split_rounds_by_largest_remainder():
    _, carved = stratified_split(_examples({"a": 5, "b": 3, "c": 2}), 5, np.random.default_rng(0), "x")
    assert Counter(ex.label for ex in carved) == {"a": 3, "b": 1, "c": 1}  # exact 2.5 / 1.5 / 1.0


def test_prepare_cola_test_repeats_dev(tmp_path):
    source = {"format": "cola", "train": str(RAW / "cola" / "train.tsv"), "dev": str(RAW / "cola" / "dev.tsv")}
    summary = prepare_task("cola", source, tmp_path)
    assert summary["sizes"] == {"train": 6, "dev": 2, "test": 2} and summary["test_is_dev"]
    assert read_labels(tmp_path / "labels.txt") == ["0", "1"]
    assert (tmp_path / "test.tsv").read_bytes() == (tmp_path / "dev.tsv").read_bytes()
    train = read_split(tmp_path / "train.tsv")
    assert list(train.columns) == ["sentence", "label"]
    assert train.sentence[4] == 'He said "hello" to me.' and list(train.label) == ["1", "0", "1", "0", "1", "0"]
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_prepare_sst2(tmp_path):
    source = {"format": "sst2", "train": str(RAW / "sst2" / "train.tsv"), "dev": str(RAW / "sst2" / "dev.tsv")}
    summary = prepare_task("sst2", source, tmp_path)
    assert summary["distribution"]["train"] == {"0": 3, "1": 2}
    assert read_split(tmp_path / "dev.tsv").sentence[0] == "it 's a charming and often affecting journey ."


def test_prepare_rasa_split_is_stratified_and_stable(tmp_path):
    source = {"format": "rasa_md", "train": str(RAW / "sara" / "nlu.md"), "split": {"test": 4, "dev": 4, "seed": 1}}
    summary = prepare_task("sara", source, tmp_path / "a")
    assert summary["labels"] == ["affirm", "contact_sales", "greet", "thank"]
    assert summary["sizes"] == {"train": 12, "dev": 4, "test": 4}
    for split in ("dev", "test"):
        assert summary["distribution"][split] == {"affirm": 1, "contact_sales": 1, "greet": 1, "thank": 1}
    frames = {s: read_split(tmp_path / "a" / f"{s}.tsv") for s in ("train", "dev", "test")}
    sentences = [set(f.sentence) for f in frames.values()]
    assert sum(map(len, sentences)) == len(set.union(*sentences)) == 20
    prepare_task("sara", source, tmp_path / "b")
    for name in ("train.tsv", "dev.tsv", "test.tsv", "labels.txt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_prepare_rasa_needs_a_test_set(tmp_path):
    source = {"format": "rasa_md", "train": str(RAW / "sara" / "nlu.md"), "split": {"dev": 4, "seed": 1}}
    with pytest.raises(ConfigError, match="tasks.sara.data"):
        prepare_task("sara", source, tmp_path)


def test_split_asking_too_much_of_a_class(tmp_path):
    path = tmp_path / "nlu.tsv"
    path.write_text("a\tbig\nb\tbig\nc\tbig\nd\tbig\ne\tbig\nf\tbig\ng\tsmall\n")
    source = {"format": "tsv", "train": str(path), "split": {"test": 4, "dev": 1, "seed": 0}}
    with pytest.raises(InputError, match=r"nlu.tsv: split asks for 1 examples of label 'small'"):
        prepare_task("sara", source, tmp_path / "out")


def test_unknown_dev_label_names_file_and_line(tmp_path):
    train, dev = tmp_path / "train.tsv", tmp_path / "dev.tsv"
    train.write_text("hi\tgreet\nbye\tgoodbye\n")
    dev.write_text("hello\tgreet\nyes\taffirm\n")
    source = {"format": "tsv", "train": str(train), "dev": str(dev), "test": str(dev)}
    with pytest.raises(InputError, match=r"dev.tsv:2: label 'affirm' does not occur"):
        prepare_task("t", source, tmp_path / "out")


MALFORMED = [
    ("cola", b"gj04\t1\t\tfine.\ngj04\t1\tmissing mark column\n", 2, "expected 4 tab-separated columns"),
    ("cola", b"gj04\t1\t\tfine.\ngj04\tyes\t\tbad label.\n", 2, "label must be 0 or 1"),
    ("cola", b"gj04\t1\t\tfine.\n\ngj04\t0\t*\t   \n", 3, "empty sentence"),
    ("cola", b"gj04\t1\t\tfine.\ngj04\t1\t\tbad \xff byte.\n", 2, "not valid UTF-8"),
    ("sst2", b"text\tlabel\nfine\t1\n", 1, "expected the header"),
    ("sst2", b"sentence\tlabel\nfine\t1\nno label here\n", 3, "expected 2 tab-separated columns"),
    ("sst2", b"sentence\tlabel\nfine\t2\n", 2, "label must be 0 or 1"),
    ("tsv", b"hi\tgreet\nhello\tgreet\textra\n", 2, "expected 2 tab-separated columns"),
    ("tsv", b"hi\tgreet\nhello\t \n", 2, "empty label"),
    ("rasa_md", b"- hi\n## intent:greet\n- hello\n", 1, "example before any"),
    ("rasa_md", b"## intent:greet\n- hello\nhello again\n", 3, "expected '- example'"),
    ("rasa_md", b"## intent:greet\n- hello\n- [](entity)\n-  \n", 4, "empty sentence"),
    ("rasa_md", b"## intent:\n- hello\n", 1, "without an intent name"),
]


@pytest.mark.parametrize("fmt, content, line, message", MALFORMED)
def test_malformed_input_names_file_and_line(tmp_path, fmt, content, line, message):
    path = tmp_path / "raw.txt"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as err:
        prepare_task("t", {"format": fmt, "train": str(path), "split": {"dev": 1, "test": 1}}, tmp_path / "out")
    assert err.value.path == str(path) and err.value.line == line
    assert str(err.value).startswith(f"{path}:{line}: ")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fmt, content", [("cola", b"\n\n"), ("sst2", b"sentence\tlabel\n"),
                                          ("rasa_md", b"## synonym:x\n- y\n"), ("tsv", b"")])
def test_no_examples(tmp_path, fmt, content):
    path = tmp_path / "raw.txt"
    path.write_bytes(content)
    with pytest.raises(InputError, match="no examples"):
        prepare_task("t", {"format": fmt, "train": str(path), "split": {"dev": 1, "test": 1}}, tmp_path / "out")


def test_unknown_format(tmp_path):
    with pytest.raises(ConfigError, match="tasks.t.data.format"):
        prepare_task("t", {"format": "csv", "train": "x"}, tmp_path)


def test_written_splits_round_trip_awkward_sentences(tmp_path):
    path = tmp_path / "raw.tsv"
    awkward = ['NA', 'null', '"quoted" start', "it 's a 'thing'", "#hash, comma"]
    path.write_text("".join(f"{s}\tx\n" for s in awkward) + "".join(f"s{i}\ty\n" for i in range(5)))
    source = {"format": "tsv", "train": str(path), "dev": str(path), "test": str(path)}
    prepare_task("t", source, tmp_path / "out")
    frame = read_split(tmp_path / "out" / "train.tsv")
    assert list(frame.sentence[:5]) == awkward and set(frame.label) == {"x", "y"}

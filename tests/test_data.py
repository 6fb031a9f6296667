"""Raw-data loaders and `prepare_task`: real formats, normalisation, stratified splits, clear input errors."""

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from kdprobe.data.prepare import Example, prepare_task, read_cola, read_rasa_md, read_sst2, read_tsv, split_size, stratified_split

from kdprobe.splits import normalise, read_labels, read_split
from kdprobe.errors import ConfigError, InputError
from kdprobe.data.rasa import strip_entities

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
    path = str(RAW / "sst2" / "train.tsv")
    assert examples[0] == Example("hide new secretions from the parental units", "0", 2, path)


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
    with pytest.raises(InputError, match=r"nlu.tsv: 1 labels have fewer than 3 examples.*: 'small' \(1\)"):
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
    dev = tmp_path / "dev.tsv"
    dev.write_text("a dev sentence\tx\nanother one\ty\n")
    source = {"format": "tsv", "train": str(path), "dev": str(dev), "test": str(dev)}
    prepare_task("t", source, tmp_path / "out")
    frame = read_split(tmp_path / "out" / "train.tsv")
    assert list(frame.sentence[:5]) == awkward and set(frame.label) == {"x", "y"}


# ------------------------------------------------------------------------------------- split sizes and rules --

def _tsv(path: Path, counts: dict[str, int]) -> Path:
    path.write_text("".join(f"{lab} example {i}\t{lab}\n" for lab, n in counts.items() for i in range(n)))
    return path


@pytest.mark.parametrize("value, n_read, expected", [(1000, 4800, 1000), (0.2, 4800, 960), (0.25, 10, 3),
                                                     (0.2, 3, 1), (2.0, 50, 2)])
def test_split_size_counts_and_fractions(value, n_read, expected):
    assert split_size(value, n_read, "k") == expected  # a fraction of the examples read, rounded half up


@pytest.mark.parametrize("value", [0, -3, 1.5, True, "0.2", 0.001])
def test_split_size_refuses_what_is_neither(value):
    with pytest.raises(ConfigError, match="tasks.x.data.split.test"):
        split_size(value, 100, "tasks.x.data.split.test")


@pytest.mark.parametrize("split", [{"test": 1000, "dev": 1000}, {"test": 0.2083, "dev": 0.2083}])
def test_thesis_proportions_as_counts_or_as_fractions_of_the_whole(tmp_path, split):
    """The thesis: 4,800 examples -> 1,000 test, then 1,000 dev out of the other 3,800, 2,800 train. A dev
    fraction is of all the examples read, not of what test left (1,000 / 4,800, not 1,000 / 3,800)."""
    counts = {f"intent{i:02d}": 53 + 2 * i for i in range(48)}  # 4,800 examples, 53..147 per intent
    assert sum(counts.values()) == 4800
    source = {"format": "tsv", "train": str(_tsv(tmp_path / "nlu.tsv", counts)), "split": {**split, "seed": 42}}
    summary = prepare_task("sara", source, tmp_path / "out")
    assert summary["sizes"] == {"train": 2800, "dev": 1000, "test": 1000}
    for name, share in (("train", 2800 / 4800), ("dev", 1000 / 4800), ("test", 1000 / 4800)):
        for label, n in summary["distribution"][name].items():  # stratified: within one of the exact share
            assert abs(n - counts[label] * share) <= 1, (name, label)


def test_fractions_of_the_whole_leave_the_rest_for_training(tmp_path):
    source = {"format": "tsv", "train": str(_tsv(tmp_path / "nlu.tsv", {"a": 24, "b": 16})),
              "split": {"test": 0.25, "dev": 0.25, "seed": 0}}
    assert prepare_task("t", source, tmp_path / "out")["sizes"] == {"train": 20, "dev": 10, "test": 10}


def test_splits_that_leave_no_training_data_are_refused(tmp_path):
    source = {"format": "tsv", "train": str(_tsv(tmp_path / "nlu.tsv", {"a": 24, "b": 16})),
              "split": {"test": 0.5, "dev": 20, "seed": 0}}
    with pytest.raises(ConfigError, match=r"tasks.t.data.split'.*20 test \+ 20 dev .* none of the 40"):
        prepare_task("t", source, tmp_path / "out")


def test_small_classes_are_an_error_naming_each_with_its_count(tmp_path):
    path = _tsv(tmp_path / "nlu.tsv", {"big": 30, "pair": 2, "single": 1, "trio": 3})
    source = {"format": "tsv", "train": str(path), "split": {"test": 5, "dev": 5, "seed": 0}}
    with pytest.raises(InputError) as err:
        prepare_task("sara", source, tmp_path / "out")
    assert err.value.path == str(path)
    assert "2 labels have fewer than 3 examples, too few for one in each of train and test and dev: " \
           "'pair' (2), 'single' (1)" in str(err.value)
    assert "tasks.sara.data.split.small_classes: train" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_small_classes_kept_in_train_only_when_asked(tmp_path, caplog):
    path = _tsv(tmp_path / "nlu.tsv", {"big": 30, "pair": 2, "single": 1, "trio": 3})
    source = {"format": "tsv", "train": str(path),
              "split": {"test": 5, "dev": 5, "seed": 0, "small_classes": "train"}}
    with caplog.at_level("INFO"):
        summary = prepare_task("sara", source, tmp_path / "out")
    assert summary["train_only_labels"] == ["pair", "single"]
    assert summary["labels"] == ["big", "pair", "single", "trio"]
    assert summary["distribution"]["train"] == {"big": 22, "pair": 2, "single": 1, "trio": 1}
    for name in ("dev", "test"):  # every other label is in every split, `trio` with its minimum of one
        assert summary["distribution"][name] == {"big": 4, "pair": 0, "single": 0, "trio": 1}
    assert "all their examples stay in train, none in test or dev: 'pair' (2), 'single' (1)" in caplog.text


def test_unknown_small_classes_rule(tmp_path):
    source = {"format": "tsv", "train": str(_tsv(tmp_path / "nlu.tsv", {"a": 9, "b": 9})),
              "split": {"test": 2, "dev": 2, "small_classes": "drop"}}
    with pytest.raises(ConfigError, match="tasks.t.data.split.small_classes"):
        prepare_task("t", source, tmp_path / "out")


def test_stratified_split_gives_every_class_one_and_keeps_the_reserve():
    # a proportional share of 0.3 would round to 0: every class is in the carved part at least once
    rest, carved = stratified_split(_examples({"a": 97, "b": 3}), 10, np.random.default_rng(0), "x")
    assert Counter(ex.label for ex in carved) == {"a": 9, "b": 1}
    # a share of 1.85 would take 2 of b's 3, leaving one where two must stay (train and a split still to carve)
    rest, carved = stratified_split(_examples({"a": 10, "b": 3}), 8, np.random.default_rng(0), "x", reserve=2)
    assert Counter(ex.label for ex in carved) == {"a": 7, "b": 1} and Counter(ex.label for ex in rest)["b"] == 2


@pytest.mark.parametrize("counts, n, reserve", [({"a": 8, "b": 2}, 1, 1),   # fewer than one per class
                                                ({"a": 8, "b": 2}, 9, 1),   # leaves too few outside
                                                ({"a": 8, "b": 1}, 10, 0),  # more than there are
                                                ({"a": 8, "b": 2}, 4, 2)])  # b cannot keep 2 and give 1
def test_stratified_split_that_cannot_hold_every_class(counts, n, reserve):
    with pytest.raises(InputError, match="cannot carve"):
        stratified_split(_examples(counts), n, np.random.default_rng(0), "x", reserve=reserve)


def test_repeats_are_reported_not_removed(tmp_path, caplog):
    path = tmp_path / "nlu.tsv"
    path.write_text("hi\tgreet\nhello\tgreet\nhi\tgreet\nyes\taffirm\nhi\tgreet\nok\taffirm\nok\tgreet\n")
    dev, test = shutil.copy(path, tmp_path / "dev.tsv"), shutil.copy(path, tmp_path / "test.tsv")
    source = {"format": "tsv", "train": str(path), "dev": dev, "test": test, "max_shared": 1}
    with caplog.at_level("INFO"):
        summary = prepare_task("t", source, tmp_path / "out")
    assert summary["sizes"]["train"] == 7  # kept
    # over everything read (train, dev and test are copies of one file here: 3 x 7 examples, 5 distinct pairs)
    assert summary["duplicates"] == 21 - 5 and summary["multi_label"] == 1
    assert "'hi' (greet) x9 at nlu.tsv:1, nlu.tsv:3, nlu.tsv:5" in caplog.text
    assert "1 sentences carry two or more labels" in caplog.text
    assert "'ok': affirm at nlu.tsv:6" in caplog.text and "greet at nlu.tsv:7" in caplog.text


def test_several_train_files_and_dev_errors_name_the_right_one(tmp_path):
    one, two = tmp_path / "one.tsv", tmp_path / "two.tsv"
    one.write_text("hi\tgreet\nhello\tgreet\n")
    two.write_text("yes\taffirm\nsure\taffirm\n")
    dev, test, bad = tmp_path / "dev.tsv", tmp_path / "test.tsv", tmp_path / "bad.tsv"
    dev.write_text("hey\tgreet\nyep\taffirm\n")
    test.write_text("hiya\tgreet\nok\taffirm\n")
    bad.write_text("howdy\tgreet\nbye\tgoodbye\n")
    source = {"format": "tsv", "train": [str(one), str(two)], "dev": str(dev), "test": [str(test), str(bad)]}
    with pytest.raises(InputError, match=r"bad.tsv:2: label 'goodbye' does not occur"):
        prepare_task("t", source, tmp_path / "out")
    summary = prepare_task("t", {**source, "test": str(test)}, tmp_path / "out")
    assert summary["sizes"] == {"train": 4, "dev": 2, "test": 2}
    assert list(read_split(tmp_path / "out" / "train.tsv").sentence) == ["hi", "hello", "yes", "sure"]


# ---------------------------------------------------------------------------------- splits kept apart --

def test_a_file_in_two_splits_is_refused_naming_both(tmp_path):
    train, dev = _tsv(tmp_path / "train.tsv", {"a": 3, "b": 3}), tmp_path / "dev.tsv"
    dev.write_text("a dev one\ta\nb dev one\tb\n")
    key = "config key 'tasks.t.data.dev'"
    with pytest.raises(ConfigError, match=f"{key}: {train} is also train data \\(tasks.t.data.train: {train}\\)"):
        prepare_task("t", {"format": "tsv", "train": str(train), "dev": str(train), "test": str(dev)}, tmp_path / "o")
    # a train directory that also holds the dev file: the public CoLA raw/ folder's layout
    with pytest.raises(ConfigError, match=f"{key}: {dev} is also train data \\(tasks.t.data.train: {tmp_path}\\)"):
        prepare_task("t", {"format": "tsv", "train": str(tmp_path), "dev": str(dev), "test": str(dev)}, tmp_path / "o")
    with pytest.raises(ConfigError, match=f"'tasks.t.data.test': {train} is also train data"):
        prepare_task("t", {"format": "tsv", "train": str(train), "dev": str(dev), "test": str(train)}, tmp_path / "o")
    with pytest.raises(ConfigError, match=f"'tasks.t.data.test': {dev} is also dev data"):  # test: only dev's whole
        prepare_task("t", {"format": "tsv", "train": str(train), "dev": str(dev), "test": [str(dev), str(dev)]},
                     tmp_path / "o")
    assert not (tmp_path / "o").exists()
    summary = prepare_task("t", {"format": "tsv", "train": str(train), "dev": str(dev), "test": str(dev)},
                           tmp_path / "o")  # test may repeat dev whole
    assert summary["sizes"] == {"train": 6, "dev": 2, "test": 2} and summary["shared"] == {"train/dev": 0}


def _shared_splits(tmp_path: Path, shared_dev: int) -> dict:
    """A tsv source whose dev file repeats `shared_dev` of train's 8 sentences among its 4."""
    train = _tsv(tmp_path / "train.tsv", {"a": 4, "b": 4})
    repeated = train.read_text().splitlines()[:shared_dev]
    (tmp_path / "dev.tsv").write_text("".join(f"{line}\n" for line in repeated)
                                      + "".join(f"new {i}\ta\n" for i in range(4 - shared_dev)))
    (tmp_path / "test.tsv").write_text("new 0\ta\nunseen\tb\nunseen too\tb\n")  # 'new 0': in dev when dev has it
    return {"format": "tsv", "train": str(train), "dev": str(tmp_path / "dev.tsv"), "test": str(tmp_path / "test.tsv")}


def test_sentences_shared_between_splits_are_counted_in_the_log(tmp_path, caplog):
    with caplog.at_level("INFO"):
        summary = prepare_task("t", {**_shared_splits(tmp_path, 1), "max_shared": 0.5}, tmp_path / "out")
    assert summary["shared"] == {"train/dev": 1, "train/test": 0, "dev/test": 1}
    assert "train/dev: 1 of 4 dev examples (25.0%, 1 distinct sentences) also occur in train; 'a example 0'" \
           in caplog.text
    assert "train/test: 0 of 3 test examples (0.0%, 0 distinct sentences) also occur in train" in caplog.text
    assert "dev/test: 1 of 3 test examples (33.3%, 1 distinct sentences) also occur in dev; 'new 0'" in caplog.text
    with pytest.raises(InputError, match="1 of 4 dev examples .25%. have a sentence that train"):  # default 0.1
        prepare_task("t", _shared_splits(tmp_path, 1), tmp_path / "out")


def test_a_split_mostly_shared_with_train_is_refused(tmp_path):
    source = {**_shared_splits(tmp_path, 3), "max_shared": 0.5}
    dev = source["dev"]
    with pytest.raises(InputError, match=f"^{dev}: 3 of 4 dev examples \\(75%\\) have a sentence that train "
                                         f"\\({source['train']}\\) also holds, more than tasks.t.data.max_shared = 0.5; "
                                         "'a example 0'; 'a example 1'; 'a example 2'$"):
        prepare_task("t", source, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert prepare_task("t", {**source, "max_shared": 0.75}, tmp_path / "out")["shared"]["train/dev"] == 3


def test_carved_splits_are_checked_as_well(tmp_path):
    path = tmp_path / "raw.tsv"
    path.write_text("same\ta\n" * 6 + "same\tb\n" * 6)  # every sentence one of two: whatever is carved is shared
    with pytest.raises(InputError, match=f"^{path} \\(carved dev\\): 2 of 2 dev examples \\(100%\\)"):
        prepare_task("t", {"format": "tsv", "train": str(path), "split": {"test": 2, "dev": 2, "seed": 0}},
                     tmp_path / "out")


@pytest.mark.parametrize("value", [1.5, -0.1, True, "0.1"])
def test_max_shared_must_be_a_share(tmp_path, value):
    with pytest.raises(ConfigError, match="'tasks.t.data.max_shared': must be a share from 0 to 1"):
        prepare_task("t", {**_shared_splits(tmp_path, 0), "max_shared": value}, tmp_path / "out")


def test_labels_txt_with_a_repeated_label_is_refused(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("greet\nbye\ngreet\n")
    with pytest.raises(InputError, match=f"^{path}:3: label 'greet' repeats line 1$"):
        read_labels(path)
    path.write_text("greet\nbye\n")
    assert read_labels(path) == ["greet", "bye"]


def test_a_dev_file_wins_over_split_dev_and_the_log_says_so(tmp_path, caplog):
    source = {"format": "cola", "train": str(RAW / "cola" / "train.tsv"), "dev": str(RAW / "cola" / "dev.tsv"),
              "split": {"dev": 3, "seed": 0}}
    with caplog.at_level("WARNING", logger="kdprobe.data.prepare"):
        summary = prepare_task("cola", source, tmp_path)
    assert summary["sizes"] == {"train": 6, "dev": 2, "test": 2}  # dev.tsv's two examples; train not carved
    assert "tasks.cola.data: both a dev file and split.dev are given: the dev file wins, split.dev is not used" \
        in caplog.text

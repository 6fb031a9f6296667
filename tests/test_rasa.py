"""Rasa NLU data: the YAML format next to markdown, several files or a directory, pseudonymisation."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml

from kdprobe.data.prepare import load_examples, prepare_task, raw_files, read_rasa_md, read_rasa_yaml

from kdprobe.splits import read_split
from kdprobe.errors import ConfigError, InputError
from kdprobe.data.rasa import Pseudonymiser
from smk import copy_project, planned_jobs, snakemake

SARA = Path(__file__).parent / "fixtures" / "raw" / "sara"


def _pairs(examples) -> list[tuple[str, str]]:
    return [(ex.sentence, ex.label) for ex in examples]


def test_yaml_reads_what_the_markdown_holds():
    """nlu.yml is nlu.md in Rasa's YAML: `|` and `|-` blocks, `- text:` items with metadata, an intent's
    metadata, synonym/regex/lookup entries skipped, comments and blank lines between entries."""
    examples = read_rasa_yaml(SARA / "nlu.yml")
    assert _pairs(examples) == _pairs(read_rasa_md(SARA / "nlu.md"))
    by_text = {ex.sentence: ex for ex in examples}
    assert by_text["hey sara"].line == 8 and by_text["yes, please"].line == 19  # `|` and `|-` block lines
    assert by_text["I am the CTO of Acme Corp"].line == 26  # the first line of a `text: |` block
    assert by_text["my company is Globex"].line == 28
    assert all(ex.path == str(SARA / "nlu.yml") for ex in examples)


def test_a_directory_stands_for_its_yaml_files():
    directory = SARA / "yaml"
    assert [p.relative_to(directory).as_posix() for p in raw_files("rasa_yaml", directory)] == [
        "general.yml", "lookups/location.yml", "responses/responses.yml", "sales.yaml"]  # not .backup.yml, notes.md
    examples = load_examples("rasa_yaml", directory)  # lookups and responses hold no examples: skipped
    assert sorted(_pairs(examples)) == sorted(_pairs(read_rasa_yaml(SARA / "nlu.yml")))
    listed = load_examples("rasa_yaml", [str(directory / "sales.yaml"), str(directory / "general.yml")])
    assert [ex.label for ex in listed[:5]] == ["contact_sales"] * 5  # a list is read in its order


def test_a_named_file_without_examples_is_an_error(tmp_path):
    with pytest.raises(InputError, match="responses.yml: no examples"):
        load_examples("rasa_yaml", [str(SARA / "yaml" / "general.yml"), str(SARA / "yaml/responses/responses.yml")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"empty: no files ending in \.yml or \.yaml"):
        load_examples("rasa_yaml", tmp_path / "empty")


def test_prepare_rasa_yaml_directory_equals_markdown(tmp_path):
    split = {"test": 4, "dev": 4, "seed": 1}
    from_md = prepare_task("sara", {"format": "rasa_md", "train": str(SARA / "nlu.md"), "split": split}, tmp_path / "a")
    from_yaml = prepare_task("sara", {"format": "rasa_yaml", "train": str(SARA / "nlu.yml"), "split": split},
                             tmp_path / "b")
    assert from_md == from_yaml
    for name in ("train.tsv", "dev.tsv", "test.tsv", "labels.txt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize("line_end, bom", [(b"\r\n", False), (b"\n", True)])
def test_yaml_with_crlf_or_byte_order_mark(tmp_path, line_end, bom):
    path = tmp_path / "nlu.yml"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + (SARA / "nlu.yml").read_bytes().replace(b"\n", line_end))
    assert _pairs(read_rasa_yaml(path)) == _pairs(read_rasa_yaml(SARA / "nlu.yml"))


GOOD = ["version: '3.1'", "nlu:", "- intent: greet", "  examples: |", "    - hi", "    - hello", "- intent: bye",
        "  examples: |", "    - bye now", "    - see you"]


def _with(line: int, *new: str) -> list[str]:
    """GOOD with line `line` (1-based) replaced by `new` (several lines, or none)."""
    return [*GOOD[: line - 1], *new, *GOOD[line:]]


MALFORMED = {
    "bullet missing": (_with(6, "    hello"), 6, "expected '- example' in intent 'greet', found 'hello'"),
    "empty example": (_with(6, "    -  "), 6, "empty sentence"),
    "markup cut off": (_with(10, "    - see [you](ent"), 10, "unterminated entity markup"),
    "bad indentation": (_with(6, "   - hello"), 6, "not valid YAML: did not find expected key"),
    "unclosed quote": (_with(3, "- intent: 'greet"), 11,
                       "not valid YAML: found unexpected end of stream .while scanning a quoted scalar from line 3."),
    "tab indentation": (_with(5, "\t- hi"), 5, "not valid YAML"),
    "two documents": ([*GOOD, "---", "nlu: []"], 11, "not valid YAML"),
    "nlu not a list": (["nlu:", "  intent: greet"], 2, "'nlu:' must be a list"),
    "top level a list": (["- intent: greet", "  examples: |", "    - hi"], 1, "expected a YAML mapping"),
    "entry of no kind": (_with(3, "- intnet: greet"), 3, "needs exactly one of 'intent', 'synonym'"),
    "entry of two kinds": (_with(3, "- intent: greet", "  synonym: hi"), 3, "needs exactly one of"),
    "entry not a mapping": (["nlu:", "- greet"], 2, "needs exactly one of"),
    "unknown key": (_with(4, "  exmaples: |"), 3, "unknown key 'exmaples' in an intent entry"),
    "no examples key": (GOOD[:3] + GOOD[6:], 3, "intent 'greet' has no examples"),
    "empty examples": (_with(4, "  examples:")[:4] + GOOD[6:], 3, "intent 'greet' has no examples"),
    "empty intent name": (_with(3, "- intent: ''"), 3, "without an intent name"),
    "intent name a list": (_with(3, "- intent: [a, b]"), 3, "the intent name must be a string"),
    "duplicate key": (_with(7, "- intent: bye", "  intent: farewell"), 8, "duplicate key 'intent'"),
    "text item without text": (["nlu:", "- intent: greet", "  examples:", "  - text: hi", "  - txt: hey"], 5,
                               "expected a '- text: ...' item"),
    "text item a string": (["nlu:", "- intent: greet", "  examples:", "  - hi"], 4, "expected a '- text: ...' item"),
    "examples a mapping": (["nlu:", "- intent: greet", "  examples: {a: b}"], 3, "'examples' must be a string"),
    # lines folded into one example would lose examples without a word
    "folded examples": (_with(4, "  examples: >"), 4, "'examples' folds lines into one example"),
    "plain examples over lines": (["nlu:", "- intent: greet", "  examples:", "    -hi", "    -hello", *GOOD[6:]], 4,
                                  "folds lines into one example"),
    "quoted examples over lines": (_with(4, "  examples: '- hi", "    - hello'")[:5] + GOOD[6:], 4,
                                   "folds lines into one example"),
    "tab in an intent name": (_with(3, '- intent: "gre\\tet"'), 3, r"intent name 'gre\\tet' holds a control"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_yaml_names_file_and_line(tmp_path, case):
    lines, line, message = MALFORMED[case]
    path = tmp_path / "nlu.yml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=message) as err:
        prepare_task("t", {"format": "rasa_yaml", "train": str(path), "split": {"dev": 1, "test": 1}},
                     tmp_path / "out")
    assert err.value.path == str(path) and err.value.line == line, str(err.value)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text", ["", "# only a comment\n", "version: '3.1'\nresponses:\n  utter_hi:\n  - text: hi\n",
                                  "nlu:\n- synonym: x\n  examples: |\n    - y\n"])
def test_yaml_without_intent_examples(tmp_path, text):
    path = tmp_path / "nlu.yml"
    path.write_text(text)
    assert read_rasa_yaml(path) == []
    with pytest.raises(InputError, match="nlu.yml: no examples"):
        load_examples("rasa_yaml", path)


def test_quoted_examples_with_blank_line_breaks_are_read(tmp_path):
    """A quoted string keeps the line breaks written as blank lines (how yaml.safe_dump writes a block)."""
    path = tmp_path / "nlu.yml"
    path.write_text("nlu:\n- intent: greet\n  examples: '- hi\n\n    - hello\n\n    '\n")
    assert _pairs(read_rasa_yaml(path)) == [("hi", "greet"), ("hello", "greet")]


def test_markdown_reads_rasas_section_kinds_only_for_intent_examples(tmp_path):
    path = tmp_path / "nlu.md"
    path.write_text("## intent:greet\n- hi\n- hey\n\n## lookup: location\ndata/lookups/location.txt\n\n"
                    "## synonym: USA\n- US\n## regex:zipcode\n- [0-9]{5}\n## intent : bye\n- bye\n")
    assert _pairs(read_rasa_md(path)) == [("hi", "greet"), ("hey", "greet"), ("bye", "bye")]


def test_a_directory_reads_upper_case_suffixes(tmp_path):
    shutil.copy(SARA / "nlu.yml", tmp_path / "NLU.YML")
    assert raw_files("rasa_yaml", tmp_path) == [tmp_path / "NLU.YML"]
    assert _pairs(load_examples("rasa_yaml", tmp_path)) == _pairs(read_rasa_yaml(SARA / "nlu.yml"))


def test_a_top_level_key_that_is_nearly_nlu_is_a_warning(tmp_path, caplog):
    shutil.copy(SARA / "nlu.yml", tmp_path / "general.yml")
    (tmp_path / "typo.yml").write_text("version: '3.1'\nNLU:\n- intent: greet\n  examples: |\n    - hi\n")
    with caplog.at_level("INFO"):
        examples = load_examples("rasa_yaml", tmp_path)
    assert _pairs(examples) == _pairs(read_rasa_yaml(SARA / "nlu.yml"))  # typo.yml holds no examples for Rasa
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [f"{tmp_path / 'typo.yml'}:2: top-level key 'NLU' is not Rasa's 'nlu' (lowercase): its "
                        "entries are not read"]


def test_yaml_tags_are_never_constructed(tmp_path):
    path = tmp_path / "nlu.yml"
    path.write_text("nlu:\n- intent: !!python/object/apply:os.system ['echo pwned']\n  examples: |\n    - hi\n")
    with pytest.raises(InputError, match="the intent name must be a string"):
        read_rasa_yaml(path)


# ------------------------------------------------------------------------------------------ pseudonymisation --

PSEUDONYMISED = [
    ("My name is __PERSON_NAME__", "enter_data"),
    ("I am __PERSON_NAME__, mail me at __EMAIL_ADDRESS__.", "enter_data"),
    ("it's __PERSON_NAME__", "enter_data"),
    ("__PERSON_NAME__ here, __EMAIL_ADDRESS__", "enter_data"),
    ("my email is __EMAIL_ADDRESS__ or __EMAIL_ADDRESS__", "enter_data"),
    ("i work at Acme Corp as cto", "enter_data"),
    ("i would like a call with __PERSON_NAME__", "contact_sales"),
    ("can someone from sales call me", "contact_sales"),  # entity `person` is not a name entity
    ("hey sara, follow @rasa_hq and email me at user@localhost", "contact_sales"),  # no domain: not an address
]


def test_pseudonymiser_replaces_name_entities_and_email_addresses():
    pseudonymiser = Pseudonymiser()
    assert _pairs(read_rasa_md(SARA / "people.md", pseudonymiser)) == PSEUDONYMISED
    assert (pseudonymiser.names, pseudonymiser.emails, pseudonymiser.examples) == (5, 4, 6)
    plain = _pairs(read_rasa_md(SARA / "people.md"))
    assert plain[0] == ("My name is Ada Quill", "enter_data")
    assert plain[4][0] == "my email is j@x.io or J.Doe@Example.COM"


def test_prepare_task_pseudonymises_yaml_and_logs_counts(tmp_path, caplog):
    path = tmp_path / "people.yml"
    path.write_text(yaml.safe_dump({"nlu": [
        {"intent": "enter_data", "examples": "- I am [Ada Quill](name)\n- mail: ada@quill.org\n- [Bo](PERSON)\n"},
        {"intent": "greet", "examples": "- hi [sara](bot_name)\n- hello\n- hey\n"}]}))
    dev, test = shutil.copy(path, tmp_path / "dev.yml"), shutil.copy(path, tmp_path / "test.yml")
    source = {"format": "rasa_yaml", "train": str(path), "dev": dev, "test": test, "pseudonymise": True,
              "max_shared": 1}
    with caplog.at_level("INFO"):
        summary = prepare_task("sara", source, tmp_path / "out")
    assert list(read_split(tmp_path / "out" / "train.tsv").sentence) == [
        "I am __PERSON_NAME__", "mail: __EMAIL_ADDRESS__", "__PERSON_NAME__", "hi sara", "hello", "hey"]
    assert summary["pseudonymised"] == {"names": 6, "emails": 3, "examples": 9}  # train, dev and test copies
    assert "pseudonymised sara: 6 person names (entities name, PERSON) -> __PERSON_NAME__, 3 e-mail addresses" \
           in caplog.text
    without = prepare_task("sara", {**source, "pseudonymise": False}, tmp_path / "plain")
    assert without["pseudonymised"] is None
    assert "I am Ada Quill" in set(read_split(tmp_path / "plain" / "train.tsv").sentence)


def test_pseudonymise_needs_a_rasa_format(tmp_path):
    source = {"format": "tsv", "train": str(SARA / "nlu.tsv"), "dev": str(SARA / "nlu.tsv"),
              "test": str(SARA / "nlu.tsv"), "pseudonymise": True}
    with pytest.raises(ConfigError, match="tasks.sara.data.pseudonymise"):
        prepare_task("sara", source, tmp_path / "out")


# ------------------------------------------------------------------------------------------------- workflow --

@pytest.mark.workflow
def test_workflow_reads_a_yaml_directory_and_reruns_when_one_of_its_files_changes(tmp_path):
    """`raw_inputs` hands Snakemake the directory's files: a changed file reruns prepare_data."""
    project = copy_project(tmp_path / "project")
    shutil.copytree(SARA / "yaml", project / "raw" / "nlu")
    override = tmp_path / "override.yaml"
    override.write_text(yaml.safe_dump({"tasks": {"sara": {"data": {
        "format": "rasa_yaml", "train": "raw/nlu", "dev": None, "test": None, "pseudonymise": True,
        "split": {"test": 0.2, "dev": 0.2, "seed": 1}}}}}))  # null: not the thesis split's dev and test files
    target = "resources/data/sara/labels.txt"
    snakemake(project, "--cores", "1", target, "--configfile", str(override))
    assert (project / target).read_text().split() == ["affirm", "contact_sales", "greet", "thank"]
    sizes = {s: len(read_split(project / f"resources/data/sara/{s}.tsv")) for s in ("train", "dev", "test")}
    assert sizes == {"train": 12, "dev": 4, "test": 4}
    log = (project / "logs/prepare_data/sara.log").read_text()
    assert "general.yml" in log and "sales.yaml" in log and "pseudonymised sara" in log
    assert "train/dev: 0 of 4 dev examples" in log and "dev/test: 0 of 4 test examples" in log  # shared sentences
    assert planned_jobs(project, target, "--configfile", str(override)) == Counter()
    sales = project / "raw" / "nlu" / "sales.yaml"
    sales.write_text(sales.read_text().replace("- cheers", "- cheers mate"))
    assert planned_jobs(project, target, "--configfile", str(override)) == Counter({"prepare_data": 1})
    snakemake(project, "--cores", "1", target, "--configfile", str(override))
    override.write_text(override.read_text().replace("pseudonymise: true", "pseudonymise: true\n      max_shared: 0.5"))
    assert "max_shared: 0.5" in override.read_text()
    assert planned_jobs(project, target, "--configfile", str(override)) == Counter({"prepare_data": 1})  # a param

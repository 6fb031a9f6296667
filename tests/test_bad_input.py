"""Bad input refused cleanly: a matrix of malformed raw files for every loader, malformed configs that the plan
tests (test_workflow_plan.py) do not cover, and both through Snakemake itself.

Every refusal is an `InputError` (or `ConfigError`) whose one-line message names the file and line (or the config
key), and nothing is written that Snakemake could take for a complete output.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from kdprobe.config import check_model_paths, is_hub_id, is_local_model
from kdprobe.data.prepare import prepare_task
from kdprobe.io import MAX_LINE_CHARS
from kdprobe.errors import ConfigError, InputError
from kdprobe.probe import senteval
from kdprobe.probe.run import probe_model
from smk import copy_project, planned_jobs, snakemake

# --------------------------------------------------------------------------------------------- raw files
# A well-formed file per format (lines without line ends); the cases below each break one line of it.
GOOD = {
    "cola": ["gj04\t1\t\tThe cat sat.", "gj04\t0\t*\tCat the sat.", "gj04\t1\t\tA dog ran.", "gj04\t0\t*\tRan dog a.",
             "gj04\t1\t\tBirds sing.", "gj04\t0\t*\tSing birds the."],
    "sst2": ["sentence\tlabel", "a fine film \t1", "a dull film \t0", "great acting \t1", "poor plot \t0",
             "lovely \t1", "boring \t0"],
    "tsv": ["sentence\tintent", "hi there\tgreet", "bye now\tgoodbye", "hello\tgreet", "see you\tgoodbye",
            "hey\tgreet", "ciao\tgoodbye"],
    "rasa_md": ["## intent:greet", "- hi there", "- hello", "- hey [sara](bot)", "## intent:goodbye", "- bye now",
                "- see you", "- ciao"],
    "senteval": ["tr\tPRES\tshe walks home .", "tr\tPAST\the walked home .", "tr\tPRES\tit rains .",
                 "va\tPAST\tthey ran .", "te\tPRES\twe run .", "te\tPAST\tit rained ."],
}
LONG = "word " * (MAX_LINE_CHARS // 5 + 10)


def _replace(fmt: str, line: int, text: str) -> list[str]:
    lines = list(GOOD[fmt])
    lines[line - 1] = text
    return lines


# (format, case) -> (lines or bytes, line the error names, message); "dev" in the case: the bad file is the dev file
CASES: dict[tuple[str, str], tuple[list[str] | bytes, int, str]] = {
    ("cola", "missing column"): (_replace("cola", 3, "gj04\t1\tA dog ran."), 3, "expected 4 tab-separated columns"),
    ("cola", "extra column"): (_replace("cola", 3, "gj04\t1\t\tA dog ran.\t1"), 3, r"columns .*found 5"),
    ("cola", "unknown label"): (_replace("cola", 3, "gj04\t2\t\tA dog ran."), 3, "label must be 0 or 1, found '2'"),
    ("cola", "empty sentence"): (_replace("cola", 3, "gj04\t1\t\t   "), 3, "empty sentence"),
    ("cola", "header where none belongs"): (["source\tlabel\tmark\tsentence", *GOOD["cola"]], 1,
                                            r"found 'label' \(a header line\?\)"),
    ("cola", "truncated"): ([*GOOD["cola"], "gj04\t0\t"], 7, "expected 4 tab-separated columns"),
    ("sst2", "missing column"): (_replace("sst2", 3, "a dull film 0"), 3, "expected 2 tab-separated columns"),
    ("sst2", "extra column"): (_replace("sst2", 3, "a dull film\t0\t0"), 3, "found 3"),
    ("sst2", "unknown label"): (_replace("sst2", 3, "a dull film\t-1"), 3, "label must be 0 or 1, found '-1'"),
    ("sst2", "empty sentence"): (_replace("sst2", 3, " \t0"), 3, "empty sentence"),
    ("sst2", "duplicated header"): (["sentence\tlabel", *GOOD["sst2"]], 2, "repeated header line"),
    ("sst2", "truncated"): ([*GOOD["sst2"], "poor pl"], 8, "expected 2 tab-separated columns"),
    ("tsv", "missing column"): (_replace("tsv", 3, "bye now goodbye"), 3, "expected 2 tab-separated columns"),
    ("tsv", "extra column"): (_replace("tsv", 3, "bye now\tgoodbye\tx"), 3, "found 3"),
    ("tsv", "empty sentence"): (_replace("tsv", 3, "  \tgoodbye"), 3, "empty sentence"),
    ("tsv", "empty label"): (_replace("tsv", 3, "bye now\t "), 3, "empty label"),
    ("tsv", "duplicated header"): (["sentence\tintent", *GOOD["tsv"]], 2, "repeated header line"),
    ("tsv", "header in the middle"): ([*GOOD["tsv"][:4], "text\tlabel", *GOOD["tsv"][4:]], 5,
                                      "repeated header line"),
    ("tsv", "truncated"): ([*GOOD["tsv"], "see yo"], 8, "expected 2 tab-separated columns"),
    ("rasa_md", "missing bullet"): (_replace("rasa_md", 3, "hello"), 3, "expected '- example' in intent 'greet'"),
    ("rasa_md", "empty sentence"): (_replace("rasa_md", 3, "-   "), 3, "empty sentence"),
    ("rasa_md", "duplicated header"): (["## intent:greet", *GOOD["rasa_md"]], 1, "intent 'greet' has no examples"),
    ("rasa_md", "truncated in markup"): ([*GOOD["rasa_md"], "- see [you](ent"], 9,
                                         "unterminated entity markup"),
    ("rasa_md", "truncated after a header"): ([*GOOD["rasa_md"], "## intent:tha"], 9, "intent 'tha' has no examples"),
    ("rasa_md", "example before a header"): (["- hi", *GOOD["rasa_md"]], 1, "example before any"),
    # a header Rasa does not know would drop its examples: `## intent:NAME`, `synonym`, `regex`, `lookup` only
    ("rasa_md", "header of no kind"): (_replace("rasa_md", 5, "## foo"), 5, "unknown section '## foo'"),
    ("rasa_md", "header misspelt"): (_replace("rasa_md", 5, "## inent:goodbye"), 5, "unknown section"),
    ("rasa_md", "header capitalised"): (_replace("rasa_md", 5, "## Intent:goodbye"), 5, "unknown section"),
    ("rasa_md", "header without a colon"): (_replace("rasa_md", 5, "## intent goodbye"), 5, "unknown section"),
    ("rasa_md", "header of three hashes"): (_replace("rasa_md", 5, "### intent:goodbye"), 5, "unknown section"),
    ("rasa_md", "tab in an intent name"): (_replace("rasa_md", 5, "## intent:good\tbye"), 5,
                                           r"intent name 'good\\tbye' holds a control character"),
}
for _fmt in ("cola", "sst2", "tsv", "rasa_md"):
    _text = "\n".join(GOOD[_fmt]).encode()
    _lines = _text.split(b"\n")
    CASES[(_fmt, "invalid UTF-8")] = (b"\n".join([*_lines[:2], _lines[2] + b" caf\xe9", *_lines[3:]]), 3,
                                      "not valid UTF-8")
    CASES[(_fmt, "truncated in a UTF-8 character")] = (_text + b"\n" + _lines[-1][:2] + b" caf\xc3", len(_lines) + 1,
                                                       "not valid UTF-8")
    _long = {"cola": f"gj04\t1\t\t{LONG}", "sst2": f"{LONG}\t1", "tsv": f"{LONG}\tgreet", "rasa_md": f"- {LONG}"}
    CASES[(_fmt, "very long line")] = (_replace(_fmt, 3, _long[_fmt]), 3, r"line of \d+ characters \(limit")
# labels outside the known set where it is data-defined: a dev label that the training file never has
CASES[("tsv", "dev label not in train")] = (["hello\tgreet", "yes\taffirm"], 2, "label 'affirm' does not occur")
CASES[("rasa_md", "dev label not in train")] = (["## intent:greet", "- hello", "## intent:affirm", "- yes"], 4,
                                                "label 'affirm' does not occur")


def _write(path: Path, content: list[str] | bytes, line_end: bytes = b"\n", bom: bool = False) -> Path:
    data = content if isinstance(content, bytes) else line_end.join(s.encode() for s in content) + line_end
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def _assert_one_line(err: InputError, path: Path, line: int, message: str) -> None:
    text = str(err)
    assert err.path == str(path) and err.line == line, text
    assert text.startswith(f"{path}:{line}: "), text
    assert re.search(message, text), text
    assert "\n" not in text and len(text) < 400, text  # one short line, never the offending content in full


@pytest.mark.parametrize("fmt, case", sorted(CASES), ids=[f"{f}-{c}" for f, c in sorted(CASES)])
def test_malformed_raw_file_is_refused_naming_file_and_line(tmp_path, fmt, case):
    content, line, message = CASES[(fmt, case)]
    out = tmp_path / "out"
    if "dev label" in case:
        train = _write(tmp_path / "train.txt", GOOD[fmt])
        bad = _write(tmp_path / "dev.txt", content)
        source = {"format": fmt, "train": str(train), "dev": str(bad), "test": str(bad)}  # test repeats dev
    else:
        bad = _write(tmp_path / "raw.txt", content)
        source = {"format": fmt, "train": str(bad), "split": {"dev": 1, "test": 1, "seed": 0}}
    with pytest.raises(InputError) as err:
        prepare_task("t", source, out)
    _assert_one_line(err.value, bad, line, message)
    assert not out.exists()  # nothing written, not even the directory


@pytest.mark.parametrize("fmt", ["cola", "sst2", "tsv", "rasa_md"])
@pytest.mark.parametrize("variant", ["crlf", "bom", "bom+crlf"])
def test_crlf_and_byte_order_mark_are_accepted(tmp_path, fmt, variant):
    source = {"format": fmt, "split": {"dev": 2, "test": 2, "seed": 0}}
    plain = _write(tmp_path / "plain.txt", GOOD[fmt])
    odd = _write(tmp_path / "odd.txt", GOOD[fmt], b"\r\n" if "crlf" in variant else b"\n", bom="bom" in variant)
    expected = prepare_task("t", {**source, "train": str(plain)}, tmp_path / "a")
    assert prepare_task("t", {**source, "train": str(odd)}, tmp_path / "b") == expected
    for name in ("train.tsv", "dev.tsv", "test.tsv", "labels.txt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert b"\r" not in (tmp_path / "b" / "train.tsv").read_bytes()


# ------------------------------------------------------------------------------------------------ SentEval
SENTEVAL_CASES = {
    "missing column": (_replace("senteval", 2, "tr\tPAST"), 2, "expected 3 tab-separated columns"),
    "extra column": (_replace("senteval", 2, "tr\tPAST\the walked\thome ."), 2, "found 4"),
    "unknown split": (_replace("senteval", 2, "dev\tPAST\the walked home ."), 2, "unknown split 'dev'"),
    "dev label not in train": (_replace("senteval", 4, "va\tFUTURE\tthey will run ."), 4,
                               "label 'FUTURE' does not occur in the training lines"),
    "test label not in train": ([*GOOD["senteval"], "te\tPERFECT\twe have run ."], 7, "label 'PERFECT'"),
    "empty sentence": (_replace("senteval", 2, "tr\tPAST\t  "), 2, "empty sentence"),
    "empty label": (_replace("senteval", 2, "tr\t\the walked home ."), 2, "empty label"),
    "a header line": (["split\tlabel\tsentence", *GOOD["senteval"]], 1, "unknown split 'split'"),
    "truncated": ([*GOOD["senteval"], "te\tPA"], 7, "expected 3 tab-separated columns"),
    "invalid UTF-8": (b"tr\tPRES\tshe walks .\ntr\tPAST\the walked \xff .\n", 2, "not valid UTF-8"),
    "truncated in a UTF-8 character": ("\n".join(GOOD["senteval"]).encode() + b"\nte\tPAST\tcaf\xc3", 7,
                                       "not valid UTF-8"),
    "very long line": (_replace("senteval", 2, f"tr\tPAST\t{LONG}"), 2, r"line of \d+ characters"),
}


@pytest.mark.parametrize("case", sorted(SENTEVAL_CASES))
def test_malformed_senteval_file_is_refused_naming_file_and_line(tmp_path, case):
    content, line, message = SENTEVAL_CASES[case]
    path = _write(tmp_path / "past_present.txt", content)
    with pytest.raises(InputError) as err:
        senteval.load(path)
    _assert_one_line(err.value, path, line, message)
    # the probe job reads its file before loading any model, and writes nothing
    settings = {"layers": {"pretrained": [1]}, "pooling": {"pretrained": ["mean"]}}
    out_csv = tmp_path / "out" / "past_present.csv"
    with pytest.raises(InputError):
        probe_model("pretrained", tmp_path / "no-model-needed", path, settings, out_csv)
    assert not out_csv.parent.exists()


def test_senteval_truncation_keeps_the_label_check_on_the_whole_file(tmp_path):
    """`max_sentences` keeps the first lines of each split, but labels are checked against every training line."""
    lines = ["tr\tPRES\ta .", "tr\tPRES\tb .", "tr\tPAST\tc .", "va\tPAST\td .", "te\tPAST\te ."]
    data = senteval.load(_write(tmp_path / "t.txt", lines), max_sentences=1)
    assert data["train"] == (["a ."], ["PRES"]) and data["dev"] == (["d ."], ["PAST"])


@pytest.mark.parametrize("variant", ["crlf", "bom", "bom+crlf"])
def test_senteval_accepts_crlf_and_byte_order_mark(tmp_path, variant):
    plain = senteval.load(_write(tmp_path / "a.txt", GOOD["senteval"]))
    odd = _write(tmp_path / "b.txt", GOOD["senteval"], b"\r\n" if "crlf" in variant else b"\n", bom="bom" in variant)
    assert senteval.load(odd) == plain


# ------------------------------------------------------------------------------------------- model paths
@pytest.mark.parametrize("value", ["bert-base-uncased", "google-bert/bert-large-uncased", "distilgpt2",
                                   "distilbert/distilgpt2", "sentence-transformers/all-MiniLM-L6-v2"])
def test_hub_ids_are_hub_ids(value):
    assert is_hub_id(value) and not is_local_model(value)


@pytest.mark.parametrize("value", ["/nonexistent/dir", "./bert", "../models/bert", "~/models/bert",
                                   "resources/models/x", "a/b/c", "models\\bert", "bert..large", "-bert",
                                   "$(touch PWNED)", "x;y", "`id`"])
def test_local_looking_values_are_local(value):
    assert is_local_model(value)


def _config(teacher: str = "bert-base-uncased", gpt2: str = "distilgpt2", sara: dict | None = None) -> dict:
    return {"teacher": {"model": teacher}, "gpt2": {"model": gpt2}, "tasks": {"sara": {"data": {}, **(sara or {})}},
            "sources": {"models": {}}}


@pytest.mark.parametrize(
    "config, key",
    [
        (_config(teacher="/nonexistent/dir"), "teacher.model"),
        (_config(gpt2="./models/gpt2"), "gpt2.model"),
        (_config(sara={"teacher": {"model": "/nope/bert"}}), "tasks.sara.teacher.model"),
        (_config(sara={"gpt2": {"model": "models/a/b"}}), "tasks.sara.gpt2.model"),
        (_config(teacher="$(touch PWNED)"), "teacher.model"),
    ],
)
def test_missing_local_model_is_refused_naming_the_key(config, key):
    with pytest.raises(ConfigError) as err:
        check_model_paths(config)
    assert err.value.key == key
    assert str(err.value).startswith(f"config key '{key}': local model path ")
    assert "does not exist and no rule produces it" in str(err.value)


def test_tilde_gets_a_hint():
    with pytest.raises(ConfigError, match="not expanded"):
        check_model_paths(_config(teacher="~/models/bert"))


def test_existing_produced_and_hub_models_pass(tmp_path):
    check_model_paths(_config())  # hub ids
    check_model_paths(_config(teacher=str(tmp_path)))  # an existing directory
    check_model_paths(_config(teacher="resources/models/bert"))  # below resources/: a rule's output
    produced = _config(teacher="./models/minilm/")
    produced["sources"]["models"]["minilm"] = {"repo": "x/y", "output": "models/minilm"}
    check_model_paths(produced)  # a sources.models entry's output (normalised)


# ---------------------------------------------------------------------------------------- through Snakemake
@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return copy_project(tmp_path_factory.mktemp("bad_input"))


def _override(tmp_path: Path, name: str, config: dict) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.mark.workflow
def test_prepare_data_on_a_malformed_file_fails_cleanly(project, tmp_path):
    raw = project / "raw"
    raw.mkdir(exist_ok=True)
    _write(raw / "cola_train.tsv", _replace("cola", 3, "gj04\t1\tA dog ran."))
    _write(raw / "cola_dev.tsv", GOOD["cola"])
    override = _override(tmp_path, "cola", {
        "tasks": {"cola": {"data": {"format": "cola", "train": "raw/cola_train.tsv", "dev": "raw/cola_dev.tsv"}}}
    })
    proc = snakemake(project, "--cores", "1", "resources/data/cola/train.tsv", "--configfile", override, check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    error = "raw/cola_train.tsv:3: expected 4 tab-separated columns (source, label, mark, sentence), found 3"
    lines = [line for line in text.splitlines() if error in line]
    assert lines == [f"kdprobe error in rule prepare_data: {error}"], text
    log = (project / "logs" / "prepare_data" / "cola.log").read_text()
    assert error in log and "Traceback" not in log
    assert not list(project.glob("resources/data/cola/*"))  # no output, complete or not


@pytest.mark.workflow
@pytest.mark.parametrize(
    "override, key",
    [
        ({"teacher": {"model": "/nonexistent/dir"}}, "teacher.model"),
        ({"tasks": {"sara": {"gpt2": {"model": "./no/such/gpt2"}}}}, "tasks.sara.gpt2.model"),
    ],
)
def test_missing_model_path_fails_at_start_up(project, tmp_path, override, key):
    proc = snakemake(project, "-n", "--configfile", _override(tmp_path, "model", override), check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"invalid configuration: config key '{key}': local model path" in text


@pytest.mark.workflow
def test_hub_id_models_plan_without_fetching(project, tmp_path):
    override = _override(tmp_path, "hub", {"teacher": {"model": "bert-base-uncased"},
                                           "gpt2": {"model": "distilbert/distilgpt2"}})
    jobs = planned_jobs(project, "results/students/sara/bert_s/metrics.json", "--configfile", override)
    assert jobs["teacher"] == 1 and jobs["gpt2"] == 1
    assert not [rule for rule in jobs if rule.startswith("fetch_") and rule != "fetch_sara"]


@pytest.mark.workflow
@pytest.mark.parametrize(
    "layers, key, message",
    [
        ({"bert_s": [1, 6]}, "probe.layers.bert_s", "layer 6 does not exist: the bert_s model BERT_S of cola has depth 5"),
        ({"lstm_s": [2]}, "probe.layers.lstm_s", "layer 2 does not exist"),
        ({"pretrained": [0, 3]}, "probe.layers.pretrained", "layer 3 does not exist: the pretrained model models/tiny"),
    ],
)
def test_probing_layer_beyond_the_models_depth_fails_at_start_up(project, tmp_path, tiny_teacher, layers, key,
                                                                   message):
    override = _override(tmp_path, "probe", {"teacher": {"model": "models/tiny"}, "probe": {"layers": layers}})
    proc = snakemake(project, "-n", "--configfile", override, check=False)
    assert proc.returncode != 0
    assert f"invalid configuration: config key '{key}': {message}" in proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def tiny_teacher(project):
    """A 2-layer BERT in the project copy (`models/tiny`) and a SentEval file for it."""
    from kdprobe.students.testing import make_teacher

    lines = GOOD["senteval"] * 3
    make_teacher(project / "models" / "tiny", [line.split("\t")[2] for line in lines], layers=2)
    return project / "models" / "tiny", _write(project / "past_present.txt", lines)


def test_probing_layer_beyond_the_depth_of_a_model_known_only_at_run_time(project, tiny_teacher, tmp_path):
    """A hub model's depth is known when the probe job loads it: refused then, before anything is written."""
    model, probe_file = tiny_teacher
    settings = {"layers": {"pretrained": [1, 5]}, "pooling": {"pretrained": ["mean"]}}
    out_csv = tmp_path / "probe" / "past_present.csv"
    with pytest.raises(ConfigError) as err:
        probe_model("pretrained", model, probe_file, settings, out_csv)
    assert err.value.key == "probe.layers.pretrained" and "layer 5 does not exist" in str(err.value)
    assert not out_csv.parent.exists()

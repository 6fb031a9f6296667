"""Security: no remote code, no pickles, no shell.

(a) No source passes `trust_remote_code=True` (static), and at run time every model loader of the library, given a
    model directory whose config and tokenizer ask for custom code, refuses it without running it.
(b) Every `torch.load` under src/ and workflow/ passes `weights_only=True`; nothing unpickles.
(c) Config strings never reach a shell: rules run `script:` (never `shell:`/`run:`), the library starts no shell,
    and Snakemake runs (a dry run and a real `prepare_data` job) with values holding `;`, `$(...)` and backticks
    leave no trace of having been executed.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from smk import ROOT, copy_project, snakemake

PY_SOURCES = sorted([*ROOT.glob("src/**/*.py"), *ROOT.glob("workflow/**/*.py")])
SMK_SOURCES = sorted([ROOT / "Snakefile", *ROOT.glob("workflow/**/*.smk")])
RAW = Path(__file__).parent / "fixtures" / "raw"


def _calls(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def _name(func: ast.expr) -> str:
    """Dotted name of a called function (`torch.load`, `subprocess.run`, `from_pretrained`)."""
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def _keyword(call: ast.Call, name: str):
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def test_sources_were_found():
    assert len(PY_SOURCES) > 30 and any(p.name == "teacher.py" for p in PY_SOURCES) and len(SMK_SOURCES) > 5


# --------------------------------------------------------------------------------------- (a) remote code
def test_no_source_trusts_remote_code():
    offenders = []
    for path in PY_SOURCES:
        for call in _calls(path):
            value = _keyword(call, "trust_remote_code")
            if value is not None and not (isinstance(value, ast.Constant) and value.value is False):
                offenders.append(f"{path.relative_to(ROOT)}:{call.lineno}")
            if any(kw.arg is None for kw in call.keywords) and _name(call.func).endswith("from_pretrained"):
                offenders.append(f"{path.relative_to(ROOT)}:{call.lineno} (**kwargs into from_pretrained)")
    for path in [*SMK_SOURCES, *ROOT.glob("config/*.yaml"), *ROOT.glob("profiles/**/*.yaml")]:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if re.search(r"trust_remote_code\s*[=:]\s*(?!False)", line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}")
    assert offenders == []


@pytest.fixture(scope="module")
def evil_model(tmp_path_factory):
    """A model directory whose config and tokenizer name custom code; the code leaves a marker when imported."""
    from kdprobe.students.testing import make_task, make_teacher, synthetic_sentences

    root = tmp_path_factory.mktemp("evil")
    model = make_teacher(root / "model", synthetic_sentences(30, 0)[0])
    marker = root / "PWNED"
    (model / "evil.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('remote code ran')\n"
        "from transformers import BertConfig, BertModel, BertTokenizer\n"
        "class EvilConfig(BertConfig):\n    model_type = 'kdprobe_evil'\n"
        "class EvilModel(BertModel):\n    config_class = EvilConfig\n"
        "class EvilTokenizer(BertTokenizer):\n    pass\n"
    )
    config = json.loads((model / "config.json").read_text())
    config["model_type"] = "kdprobe_evil"
    config["auto_map"] = {name: "evil.EvilModel" for name in (
        "AutoModel", "AutoModelForSequenceClassification", "AutoModelForCausalLM")} | {"AutoConfig": "evil.EvilConfig"}
    (model / "config.json").write_text(json.dumps(config))
    tokenizer_config = json.loads((model / "tokenizer_config.json").read_text())
    tokenizer_config["auto_map"] = {"AutoTokenizer": ["evil.EvilTokenizer", None]}
    tokenizer_config.pop("tokenizer_class", None)  # no built-in class to fall back on: only the custom code
    (model / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    make_task(root / "data", n_train=20, n_dev=10, n_test=10)
    return {"root": root, "model": model, "marker": marker, "data": root / "data"}


def _loaders(evil):
    from kdprobe import teacher, transfer as logits
    from kdprobe.augment import gpt2 as lm, sample as sampling
    from kdprobe.predict import predictions as predict
    from kdprobe.probe.encoders import load_encoder
    from kdprobe.students.common import WordPieceInput
    from kdprobe.training import RunFiles

    model, data, out = evil["model"], evil["data"], evil["root"] / "out"
    train = {"epochs": 1, "batch_size": 4, "lr": 1e-3, "betas": [0.9, 0.999], "warmup_fraction": 0.1,
             "dropout": 0.1, "max_length": 16, "evals_per_epoch": 1, "weight_decay": 0.0, "seed": 0}
    sample = {"max_length": 8, "batch_size": 4, "temperature": 1.0, "top_k": 0, "chunk_size": 4}
    return {
        "probing encoder (pretrained)": lambda: load_encoder("pretrained", str(model)),
        "probing encoder (teacher)": lambda: load_encoder("teacher", str(model)),
        "teacher fine-tuning": lambda: teacher.finetune(model, data, "sst2", train, RunFiles.in_dir(out / "teacher"),
                                                        None, "cpu"),
        "GPT-2 fine-tuning": lambda: lm.finetune(model, data / "train.tsv", train,
                                                 RunFiles.in_dir(out / "gpt2", metrics=False), None, "cpu"),
        "sampling": lambda: sampling.sample_shard(model, 4, 0, sample, out / "s.parquet", out / "chunks", "cpu"),
        "teacher logits": lambda: logits.write_transfer(model, ["a"], None, train, out / "t.parquet", "cpu"),
        "predictions": lambda: predict.write_predictions("teacher", model, data, out / "p.tsv", max_length=16),
        "student tokenizer": lambda: WordPieceInput(model, special_tokens=True),
    }


LOADERS = ["probing encoder (pretrained)", "probing encoder (teacher)", "teacher fine-tuning", "GPT-2 fine-tuning",
           "sampling", "teacher logits", "predictions", "student tokenizer"]


@pytest.mark.parametrize("loader", LOADERS)
def test_model_loaders_refuse_remote_code(evil_model, monkeypatch, loader):
    import transformers.dynamic_module_utils as dmu
    from transformers.models.auto import auto_factory, configuration_auto, tokenization_auto

    monkeypatch.setattr(dmu, "TIME_OUT_REMOTE_CODE", 0)  # a batch job: no terminal to prompt on
    asked: list = []
    for module in (auto_factory, configuration_auto, tokenization_auto):
        real = module.resolve_trust_remote_code

        def spy(trust_remote_code, *args, _real=real, **kwargs):
            asked.append(trust_remote_code)
            return _real(trust_remote_code, *args, **kwargs)

        monkeypatch.setattr(module, "resolve_trust_remote_code", spy)
    with pytest.raises(Exception, match="trust_remote_code"):
        _loaders(evil_model)[loader]()
    assert asked and all(value in (None, False) for value in asked), asked  # omitted or False, never True
    assert not evil_model["marker"].exists()
    assert not list(evil_model["root"].glob("out/**/*.*"))  # and nothing written


# ------------------------------------------------------------------------------------------- (b) pickles
def test_every_torch_load_is_weights_only():
    loads, offenders = [], []
    for path in PY_SOURCES:
        for call in _calls(path):
            name = _name(call.func)
            where = f"{path.relative_to(ROOT)}:{call.lineno}"
            if name == "torch.load":
                loads.append(where)
                value = _keyword(call, "weights_only")
                if not (isinstance(value, ast.Constant) and value.value is True):
                    offenders.append(where)
            if name.split(".")[0] in ("pickle", "cPickle", "dill", "joblib", "cloudpickle") or name in (
                    "torch.jit.load", "torch.serialization.load"):
                offenders.append(f"{where} ({name})")
            if name.endswith("np.load") or name.endswith("numpy.load"):
                value = _keyword(call, "allow_pickle")
                if value is not None and not (isinstance(value, ast.Constant) and value.value is False):
                    offenders.append(f"{where} (allow_pickle)")
    assert offenders == []
    assert loads, "expected the checkpoint and student loaders' torch.load calls"


def test_no_bare_torch_load_alias():
    """`from torch import load` would hide a call from the check above."""
    for path in PY_SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in ("torch", "pickle", "torch.serialization"):
                assert "load" not in {alias.name for alias in node.names}, f"{path}:{node.lineno}"


# --------------------------------------------------------------------------------------------- (c) shell
def test_rules_never_use_a_shell():
    offenders, scripts = [], 0
    for path in SMK_SOURCES:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            code = line.split("#", 1)[0]
            if re.match(r"\s*(shell|run|wrapper|notebook|cwl)\s*:", code) or re.search(r"\bshell\s*\(", code):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
            scripts += bool(re.match(r"\s*script\s*:", code))
    assert offenders == [] and scripts >= 10


def test_library_starts_no_shell():
    offenders = []
    for path in PY_SOURCES:
        for call in _calls(path):
            name = _name(call.func)
            where = f"{path.relative_to(ROOT)}:{call.lineno} ({name})"
            if name in ("os.system", "os.popen", "os.execl", "os.execlp", "os.spawnl", "subprocess.getoutput",
                        "subprocess.getstatusoutput", "shell"):
                offenders.append(where)
            value = _keyword(call, "shell")
            if value is not None and not (isinstance(value, ast.Constant) and value.value is False):
                offenders.append(where)
    assert offenders == []


# Values a shell would act on. File names cannot hold `/`, so the `$(...)` and backtick payloads only create
# marker files (`touch PWNED...`) in the working directory if anything ever runs them through a shell.
EVIL = {
    "semicolon": "raw/cola ; touch PWNED1 ;.tsv",
    "dollar": "raw/cola $(touch PWNED2) dev.tsv",
    "backtick": "raw/cola `touch PWNED3` test.tsv",
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    project = copy_project(tmp_path_factory.mktemp("shell"))
    (project / "raw").mkdir()
    shutil.copy(RAW / "cola" / "train.tsv", project / EVIL["semicolon"])
    shutil.copy(RAW / "cola" / "dev.tsv", project / EVIL["dollar"])
    shutil.copy(RAW / "cola" / "dev.tsv", project / EVIL["backtick"])
    return project


def _no_marker(project: Path) -> None:
    for where in (project, Path.cwd(), Path("/tmp")):
        assert not list(where.glob("PWNED*")), where
    assert not list(project.rglob("PWNED*"))


def _evil_config(tmp_path: Path, **extra) -> str:
    config = {"tasks": {"cola": {"data": {"format": "cola", "train": EVIL["semicolon"], "dev": EVIL["dollar"],
                                          "test": EVIL["backtick"],  # a copy of dev: share all its sentences
                                          "max_shared": 1}}}, **extra}
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.mark.workflow
def test_config_values_with_shell_syntax_run_as_plain_paths(project, tmp_path):
    override = _evil_config(tmp_path, probe={"data_dir": "resources/probing;touch PWNED4"})
    target = "resources/data/cola/train.tsv"
    dry = snakemake(project, "-n", target, "results/teacher/cola/metrics.json", "--configfile", override)
    assert "prepare_data" in dry.stdout + dry.stderr
    snakemake(project, "--cores", "1", target, "--configfile", override)
    _no_marker(project)
    from kdprobe.splits import read_split

    train = read_split(project / target)
    assert len(train) == 6 and train.sentence[4] == 'He said "hello" to me.'
    log = (project / "logs" / "prepare_data" / "cola.log").read_text()
    assert EVIL["semicolon"] in log  # the value went through as one literal path


@pytest.mark.workflow
@pytest.mark.parametrize("value", ["$(touch PWNED5)", "`touch PWNED6`", "x; touch PWNED7"])
def test_model_path_with_shell_syntax_is_refused_literally(project, tmp_path, value):
    override = _evil_config(tmp_path, teacher={"model": value})
    proc = snakemake(project, "--cores", "1", "results/teacher/cola/metrics.json", "--configfile", override,
                     check=False)
    assert proc.returncode != 0
    assert f"config key 'teacher.model': local model path {value!r} does not exist" in proc.stdout + proc.stderr
    _no_marker(project)

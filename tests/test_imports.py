"""Jobs import only what they need, since every Snakemake job is a fresh Python process that pays its imports:
jobs that read tables and plot never import torch or transformers, and LSTM_S jobs never import transformers' model
code (reading words, not transformers at all). Checked in fresh interpreters by what lands in `sys.modules`."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

import pytest

from kdprobe.students import build_student
from kdprobe.students.testing import LABELS, SECTION, make_student_task
from smk import ROOT

SCRIPTS = ROOT / "workflow" / "scripts"
#: Scripts of jobs that only read and write tables and text, and plot.
TABLE_SCRIPTS = ("plot_probing", "plot_curves", "analyse_predictions", "summary_task", "summary_study", "summary_cost",
                 "summary_reproduction", "sweep_summary", "prepare_data", "demo_data")
#: Those whose `run(...)` says `device=False` (no torch at run time either).
NO_DEVICE_SCRIPTS = TABLE_SCRIPTS
#: What the model-free jobs must not import, and what no LSTM_S job may import.
TORCH = ("torch", "transformers")
MODEL_CODE = ("transformers.modeling_utils", "transformers.models.bert.modeling_bert")


def _loaded(code: str, *args: str) -> set[str]:
    """The modules in `sys.modules` after running `code` (with `sys.argv[1:] == args`) in a fresh interpreter."""
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    proc = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def _kdprobe_imports(script: str) -> list[str]:
    """The kdprobe modules a workflow script imports at module level."""
    tree = ast.parse((SCRIPTS / f"{script}.py").read_text(encoding="utf-8"))
    found = [node.module for node in tree.body if isinstance(node, ast.ImportFrom) and node.module]
    found += [alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names]
    return [name for name in found if name.split(".")[0] == "kdprobe"]


@pytest.mark.parametrize("script", TABLE_SCRIPTS)
def test_table_and_plot_scripts_import_no_torch(script):
    modules = _kdprobe_imports(script)
    assert "kdprobe.workflow" in modules
    loaded = _loaded("".join(f"import {name}\n" for name in modules))
    assert not loaded & set(TORCH), f"{script}.py imports {sorted(loaded & set(TORCH))} through {modules}"


@pytest.mark.parametrize("script", NO_DEVICE_SCRIPTS)
def test_table_and_plot_scripts_ask_for_no_device(script):
    tree = ast.parse((SCRIPTS / f"{script}.py").read_text(encoding="utf-8"))
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "run"]
    assert len(calls) == 1
    device = [kw.value for kw in calls[0].keywords if kw.arg == "device"]
    assert len(device) == 1 and isinstance(device[0], ast.Constant) and device[0].value is False


SWEEP_JOB = r"""
import runpy, sys
from types import SimpleNamespace
class Named(list):  # Snakemake's named lists: the files in order, each name an attribute
    def __init__(self, **named):
        super().__init__(f for v in named.values() for f in (v if isinstance(v, list) else [v]))
        self.__dict__.update(named)
class Wildcards(dict):
    __getattr__ = dict.__getitem__
tmp = sys.argv[1]
points = [{"name": f"sweeps/s/lr={lr}", "values": {"lr": lr}} for lr in (0.01, 0.1)]
snakemake = SimpleNamespace(
    rule="sweep_summary", threads=1, config={"device": "auto"}, wildcards=Wildcards(task="cola", sweep="s"),
    log=[tmp + "/sweep.log"],
    input=Named(base=tmp + "/own.json", metrics=[tmp + "/0.json", tmp + "/1.json"], curves=[tmp + "/0.csv",
                tmp + "/1.csv"]),
    output=Named(table=tmp + "/s.csv", plot=tmp + "/s.png", curves=tmp + "/s_curves.png"),
    params=SimpleNamespace(student="lstm_s", points=points),
)
runpy.run_path(sys.argv[2], init_globals={"snakemake": snakemake})
"""


def test_a_sweep_summary_job_runs_without_torch(tmp_path):
    """A real table-and-plot job (rule sweep_summary's script, as Snakemake runs it) never imports torch."""
    for name, dev in (("own", 0.3), ("0", 0.2), ("1", 0.4)):
        (tmp_path / f"{name}.json").write_text(json.dumps({
            "best_epoch": 2, "dev": {"mcc": dev}, "test": {"mcc": dev}, "n_params": 10,
            "n_params_without_embeddings": 5}))
    for name in ("0", "1"):
        (tmp_path / f"{name}.csv").write_text("step,epoch,loss,lr,dev_mcc\n1,1.0,0.5,0.01,0.1\n2,2.0,0.4,0.01,0.2\n")
    loaded = _loaded(SWEEP_JOB, str(tmp_path), str(SCRIPTS / "sweep_summary.py"))
    assert (tmp_path / "s.csv").read_text().count("lstm_s") == 3 and (tmp_path / "s_curves.png").exists()
    assert "device: none (no torch)" in (tmp_path / "sweep.log").read_text()
    assert not loaded & set(TORCH)


def test_a_job_without_device_is_called_without_one():
    loaded = _loaded(
        "from types import SimpleNamespace\nfrom kdprobe.workflow import run\n"
        "seen = []\nsmk = SimpleNamespace(rule='r', threads=1, config={}, wildcards={}, log=[], input=[], output=[])\n"
        "run(smk, lambda: seen.append('called'), device=False)\nassert seen == ['called']\n"
    )
    assert not loaded & set(TORCH)


LSTM_S_JOBS = r"""
import json, sys
from pathlib import Path
job = json.loads(sys.argv[1])
out = Path(job["out"])
if job["distil"]:
    from kdprobe.distil import distil
    from kdprobe.training import RunFiles
    distil("lstm_s", "sst2", job["settings"], job["transfer"], job["data"], job["teacher"], RunFiles.in_dir(out), None,
           "cpu", word2vec=job["w2v"])
from kdprobe.predict.predictions import write_predictions
write_predictions("lstm_s", out / "model", job["data"], out / "dev.tsv", "cpu")
from kdprobe.probe.encoders import encode, load_encoder
assert len(encode(load_encoder("lstm_s", str(out / "model")), ["a good film ."], [1], ["last", "max"])) == 2
from kdprobe.predict.speed import measure_model
measure_model("lstm_s", out / "model", job["data"], out / "speed.json", "cpu",
              {"latency_repeats": 1, "throughput_batch": 4, "throughput_batches": 1, "warmup": 0})
"""
LSTM_S = {**SECTION["lstm_s"],
          "hidden": 8, "fc": 8, "dropout": 0.1, "embeddings": "word2vec", "embedding_mode": "multichannel",
          "loss": "mse", "temperature": 1.0, "optimizer": "adam", "lr": 1e-2, "betas": [0.9, 0.999], "batch_size": 16,
          "epochs": 1, "schedule": "none", "warmup_epochs": 0, "clip_norm": 30.0, "max_length": 32,
          "mse_reduction": "sum", "seed": 7}


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return make_student_task(tmp_path_factory.mktemp("task"), n_train=40, n_dev=12, n_test=12, n_augmented=8, seed=1,
                             augment_seed=9)


def _job(task, out, distil):
    return json.dumps({"out": str(out), "distil": distil, "settings": LSTM_S, "data": str(task["data"]),
                       "teacher": str(task["teacher"]), "w2v": str(task["w2v"]),
                       "transfer": [str(p) for p in task["transfer"]]})


def test_word_level_lstm_s_jobs_never_import_transformers(task, tmp_path):
    """Distil, predict, probe and speed of the LSTM_S that reads words (word2vec: the thesis's and the demo's)."""
    loaded = _loaded(LSTM_S_JOBS, _job(task, tmp_path, distil=True))
    assert (tmp_path / "dev.tsv").is_file() and (tmp_path / "speed.json").is_file()
    assert "torch" in loaded and "transformers" not in loaded


def test_wordpiece_lstm_s_jobs_use_the_tokenizer_but_no_model_code(task, tmp_path):
    """LSTM_S on the teacher's wordpieces needs the teacher's tokenizer (transformers), never its model code."""
    settings = {**LSTM_S, "embeddings": "teacher", "embedding_mode": "non-static"}
    build_student("lstm_s", settings, 2, {"teacher_dir": task["teacher"], "labels": LABELS}).save(tmp_path / "model")
    loaded = _loaded(LSTM_S_JOBS, _job(task, tmp_path, distil=False))
    assert (tmp_path / "dev.tsv").is_file()
    assert "transformers" in loaded and not loaded & set(MODEL_CODE)

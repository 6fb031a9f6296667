"""`benchmarks/gpu_check.py`: it refuses to run without a GPU, and its whole logic (kdprobe and the peers side by side,
every check, the page and its JSON) runs on the CPU with `--cpu-smoke`, writing only where `--out` says."""

import importlib.util
import json
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
DOCS_PAGE = ROOT / "docs" / "gpu.md"


def run_script(*args: str) -> subprocess.CompletedProcess:
    """The script in a fresh process that sees no GPU (also on a machine that has one)."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


def page_state():
    return DOCS_PAGE.stat().st_mtime_ns if DOCS_PAGE.exists() else None


@pytest.fixture(scope="module")
def gpu_check():
    if str(SCRIPT.parent) not in sys.path:  # as when it runs as a script: benchmarks/ on the path (bench_env)
        sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_refuses_to_run_without_a_gpu():
    before = page_state()
    proc = run_script()
    assert proc.returncode != 0
    assert "no CUDA GPU is available" in proc.stderr and "--cpu-smoke" in proc.stderr
    assert page_state() == before


@pytest.mark.parametrize("args", [["--cpu-smoke"], ["--cpu-smoke", "--out", str(DOCS_PAGE)]])
def test_smoke_run_needs_its_own_out(gpu_check, args, capsys):
    before = page_state()
    with pytest.raises(SystemExit) as exit_info:
        gpu_check.main(args)
    assert exit_info.value.code == 2
    assert "--cpu-smoke writes only to an --out path given explicitly" in capsys.readouterr().err
    assert page_state() == before


def test_cpu_smoke_runs_every_section_and_check(gpu_check, tmp_path):
    before = page_state()
    out = tmp_path / "smoke" / "gpu.md"
    proc = run_script("--cpu-smoke", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert page_state() == before  # docs/gpu.md is only ever written by a run on a GPU
    page, res = out.read_text(), json.loads(out.with_suffix(".json").read_text())
    assert res["smoke"] is True and "**SMOKE RUN**" in page and "measure nothing" in page
    assert res["complete"] and res["passed"] and not res["errors"] and not res["skipped"]
    for heading in ("## Machine", "## Models and data", "## Correctness", "## Speed", "## Peak GPU memory per check"):
        assert heading in page
    for table in page.split("\n\n"):  # every markdown table row has as many cells as its header
        rows = [line for line in table.splitlines() if line.startswith("|")]
        widths = {len(re.findall(r"(?<!\\)\|", line)) for line in rows}
        assert len(widths) <= 1, table

    checks = {c["name"]: c for c in res["sections"]["checks"]["checks"]}
    expected = ["sampling: bf16 vs fp32", "sampling: fp32 decoder vs the model's forward",
                "teacher logits: bf16 vs fp32",
                "LSTM_S: packed nn.LSTM on the CPU (stand-in for cuDNN), IEEE fp32",
                "BERT_S: training state saved and restored", "BERT_S: one step resumed vs uninterrupted",
                "LSTM_S: training state saved and restored", "LSTM_S: one step resumed vs uninterrupted"]
    for prefix in expected:
        matches = [c for name, c in checks.items() if name.startswith(prefix)]
        assert matches, f"no check {prefix!r} in {list(checks)}"
        assert all(c["pass"] for c in matches)
        assert all(f"| {gpu_check.cell(c['name'])} |" in page for c in matches)
    # the comparisons compared different arithmetic, not one computation with itself
    value = {prefix: next(c["values"] for n, c in checks.items() if n.startswith(prefix)) for prefix in expected}
    assert value["sampling: bf16 vs fp32"]["tv_max"] > 0
    assert value["teacher logits: bf16 vs fp32"]["max_abs"] > 0
    assert value["LSTM_S: packed nn.LSTM on the CPU (stand-in for cuDNN), IEEE fp32"]["logits_rel"] > 0
    # on a CPU the kernels are deterministic, so resuming must have been bit-exact
    assert value["BERT_S: one step resumed vs uninterrupted"]["exact"]
    assert value["LSTM_S: one step resumed vs uninterrupted"]["exact"]

    speed = res["sections"]
    for label in ("configured", "auto"):
        batch = speed["sampling"]["batches"][label]
        assert batch["kdprobe"]["runs"] and batch["generate"]["runs"] and batch["ratio"] > 0
        runs = batch["kdprobe"]["runs"] + batch["generate"]["runs"]
        assert all(run["tokens"] >= run["sentences"] > 0 for run in runs)
    assert speed["sampling"]["auto"] == 1024  # runtime.CPU_SAMPLING_BATCH: what `batch_size: auto` gives a CPU
    assert speed["logits"]["ratio"] > 0 and speed["logits"]["write_transfer"]["runs"]
    for kind, peer in (("bert_s", "HF BERT"), ("lstm_s", "packed nn.LSTM")):
        st = speed["students"][kind]
        assert st["peer"] == peer and st["kdprobe"]["runs"] and st[peer]["runs"] and st["ratio"] > 0
        assert st["kdprobe"]["runs"][0]["steps"] == st["steps"]
    for row in ("| sampling, configured batch (16) |", "| sampling, auto batch (1024) |",
                "| teacher logits (batch 32) |", "| BERT_S epoch slice (batch 16, 3 steps) |",
                "| LSTM_S epoch slice (batch 16, 3 steps) |"):
        assert row in page


def test_resume_verdict(gpu_check):
    bound = gpu_check.BOUNDS["resume_rel"]
    assert gpu_check.resume_verdict(exact=True, deterministic=True, rel_diff=0.0)[0]
    ok, why = gpu_check.resume_verdict(exact=False, deterministic=True, rel_diff=1e-9)
    assert not ok and "resume bug" in why  # deterministic kernels leave no excuse for a difference
    assert gpu_check.resume_verdict(exact=False, deterministic=False, rel_diff=bound / 10)[0]
    ok, why = gpu_check.resume_verdict(exact=False, deterministic=False, rel_diff=bound * 10)
    assert not ok and "not deterministic" in why


def test_identical_is_bit_for_bit(gpu_check):
    x = torch.linspace(0, 1, 7)
    nudged = x.clone()
    nudged[3] = torch.nextafter(nudged[3], torch.tensor(2.0))
    assert gpu_check.identical({"a": [x, (1, "b")]}, {"a": ([x.clone(), [1, "b"]])})
    assert not gpu_check.identical({"a": [x]}, {"a": [nudged]})
    assert not gpu_check.identical(x, x.double())
    assert not gpu_check.identical({"a": x}, {"a": x, "b": 1})


def test_resume_check_catches_a_state_that_is_not_restored(gpu_check, tmp_path, monkeypatch):
    """With the RNG states saved but not put back on resume, BERT_S's dropout draws other masks in the resumed
    step: the check must fail and call it a resume bug (a CPU's kernels are deterministic)."""
    sizes = gpu_check.SIZES["smoke"]
    setup = gpu_check.build(sizes, torch.device("cpu"), tmp_path)
    monkeypatch.setattr("kdprobe.training.set_rng_state", lambda state: None)
    saved, resumed = gpu_check.check_resume("bert_s", setup, sizes, torch.device("cpu"))
    assert saved["pass"]  # the state file itself is still right
    assert not resumed["pass"] and "resume bug" in resumed["measured"]
    assert resumed["values"]["deterministic"] and not resumed["values"]["exact"]

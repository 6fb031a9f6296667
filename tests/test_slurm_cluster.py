"""The SLURM profile against a real single-node SLURM cluster (tests/slurm/start_slurm.sh).

A two-rule workflow goes through `--profile profiles/slurm --profile profiles/slurm/local-test`: a GPU rule
(resources gpu=1) and a CPU rule that fails on its first attempt. Checks that jobs really went through SLURM, that
the GPU job got a GPU, that the failed job was resubmitted with `attempt`-scaled memory and the run completed, and
that job status came from squeue (the cluster has no accounting storage, so sacct would hang the run).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from slurm.kdprobe_slurm import OVERLAY, PROFILE, START

REPO = Path(__file__).resolve().parents[1]

SNAKEFILE = r"""
rule all:
    input: "gpu.txt", "cpu.txt"

rule gpu_job:
    output: "gpu.txt"
    threads: 2
    resources: gpu=1, mem_mb=lambda wc, attempt: 1000 * attempt, runtime=10
    shell: "echo job=$SLURM_JOB_ID cuda=${{CUDA_VISIBLE_DEVICES:-none}} python=$(command -v python) > {output}"

# Fails on its first attempt (no marker yet), succeeds when the profile's `retries` resubmits it.
rule cpu_job:
    output: "cpu.txt"
    resources: gpu=0, mem_mb=lambda wc, attempt: 500 * attempt, runtime=10
    shell:
        "if [ ! -e first_attempt_done ]; then touch first_attempt_done; echo failing on purpose >&2; exit 3; fi; "
        "echo job=$SLURM_JOB_ID cuda=${{CUDA_VISIBLE_DEVICES:-none}} > {output}"
"""


def _fields(path: Path) -> dict[str, str]:
    return dict(item.split("=", 1) for item in path.read_text().split())


def _sbatch_calls(log: str, rule: str) -> list[str]:
    """The plugin's `sbatch call: ...` debug lines (--verbose) for one rule, in submission order."""
    return [line for line in log.splitlines()
            if line.startswith("sbatch call:") and f"--comment rule_{rule} " in line]


@pytest.mark.slurm
def test_two_rule_workflow_through_slurm(slurm_cluster, tmp_path):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    proc = slurm_cluster.snakemake(tmp_path, "--verbose")
    log = proc.stdout
    tail = log[-8000:]
    assert proc.returncode == 0, f"snakemake failed ({proc.returncode}):\n{tail}"

    # Jobs went through SLURM: each submission has a job id, and squeue knows them under this run's job name.
    submitted = slurm_cluster.submitted(log)
    rules = [rule for rule, _ in submitted]
    assert sorted(rules) == ["cpu_job", "cpu_job", "gpu_job"], f"submissions: {submitted}\n{tail}"
    states = slurm_cluster.jobs_of_run(slurm_cluster.run_id(log))
    gpu_id = next(j for r, j in submitted if r == "gpu_job")
    cpu_first, cpu_retry = [j for r, j in submitted if r == "cpu_job"]
    assert states == {gpu_id: "COMPLETED", cpu_first: "FAILED", cpu_retry: "COMPLETED"}, states

    # Status came from squeue, never from sacct (no accounting storage here).
    assert "Falling back to 'sacct'" not in log
    assert "command=squeue" in log and "command=sacct" not in log  # the plugin's per-poll debug line

    # The GPU rule asked for a GPU (--gpus=1) and SLURM allocated one; the CPU rule asked for none.
    gpu_calls, cpu_calls = _sbatch_calls(log, "gpu_job"), _sbatch_calls(log, "cpu_job")
    assert len(gpu_calls) == 1 and len(cpu_calls) == 2, log[-8000:]
    assert "--gpus=1" in gpu_calls[0] and "--cpus-per-task=2" in gpu_calls[0]
    assert all("--gpus" not in call and "--gres" not in call for call in cpu_calls)
    assert all(" -p debug " in call for call in gpu_calls + cpu_calls)
    gpu_details = slurm_cluster.job_details(gpu_id)
    assert re.search(r"JOB_GRES=gpu(:\w+)?:1", gpu_details), gpu_details
    assert "JOB_GRES=gpu" not in slurm_cluster.job_details(cpu_retry)
    gpu_out = _fields(tmp_path / "gpu.txt")
    assert gpu_out["job"] == gpu_id
    assert gpu_out["cuda"] in {"0", "1"}, gpu_out  # SLURM's CUDA_VISIBLE_DEVICES for the allocated fake GPU
    # The submitting environment reaches the job (sbatch --export=ALL): the venv's python is the one on PATH.
    assert Path(gpu_out["python"]).parent == Path(sys.executable).parent, gpu_out

    # The failed first attempt was retried with attempt-scaled memory and the run completed.
    assert "Trying to restart job" in log
    assert "--mem 500 " in cpu_calls[0] and "--mem 1000 " in cpu_calls[1], cpu_calls
    cpu_out = _fields(tmp_path / "cpu.txt")
    assert cpu_out == {"job": cpu_retry, "cuda": "none"}


@pytest.mark.slurm
def test_start_script_is_idempotent(slurm_cluster):
    if os.geteuid() != 0:
        pytest.skip("start_slurm.sh needs root")
    proc = subprocess.run(["bash", str(START)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "slurmctld already running" in proc.stdout or "not started by this script" in proc.stdout, proc.stdout
    assert "cluster up" in proc.stdout


def test_profiles_parse_and_overlay_keeps_defaults():
    """A later --profile replaces whole top-level keys: the overlay's default-resources must restate the base's."""
    base = yaml.safe_load((PROFILE / "config.yaml").read_text())
    overlay = yaml.safe_load((OVERLAY / "config.yaml").read_text())
    local = yaml.safe_load((REPO / "profiles" / "local" / "config.yaml").read_text())
    assert base["executor"] == "slurm" and base["slurm-status-command"] == "squeue"
    for key, value in base["default-resources"].items():
        assert overlay["default-resources"].get(key) == value, key
    assert overlay["default-resources"]["slurm_partition"] == "'debug'"
    assert "executor" not in overlay  # the overlay only adjusts the slurm profile
    assert local["resources"]["gpu"] >= 1 and local["keep-going"] is False

"""The checks the snakemake-workflows catalogue runs on every workflow: `snakemake --lint` on the thesis and demo
configs, and `snakefmt --check` on the Snakefile and the rule files."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from smk import ROOT, copy_project, snakemake

SNAKEFMT = str(Path(sys.executable).with_name("snakefmt"))
RULE_FILES = [ROOT / "Snakefile", *sorted((ROOT / "workflow/rules").glob("*.smk"))]


@pytest.mark.workflow
@pytest.mark.parametrize("configfile", [None, "config/demo.yaml"], ids=["thesis", "demo"])
def test_snakemake_lint_is_clean(tmp_path, configfile):
    workdir = copy_project(tmp_path)  # --lint writes .snakemake/ where it runs
    args = ["--lint"] + (["--configfile", configfile] if configfile else [])
    proc = snakemake(workdir, *args, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Lints for" not in out, out


def test_snakefmt_check_is_clean():
    proc = subprocess.run(
        [SNAKEFMT, "--check", "--diff", *map(str, RULE_FILES)], capture_output=True, text=True
    )
    assert proc.returncode == 0, f"run `snakefmt Snakefile workflow/rules/`:\n{proc.stdout}{proc.stderr}"


def test_every_conda_directive_names_an_existing_environment():
    found = 0
    for path in RULE_FILES:
        for env in re.findall(r"^\s*conda:\s*\n\s*\"([^\"]+)\"", path.read_text(), re.M):
            found += 1
            assert (path.parent / env).resolve().is_file(), f"{path.name}: conda: {env} does not exist"
    assert found


def test_no_profile_forces_conda():
    """Rules name envs/kdprobe.yaml, but jobs run in the environment Snakemake runs in (the env file says why)."""
    for path in (ROOT / "profiles").rglob("*.yaml"):
        text = path.read_text()
        assert not re.search(r"^\s*(software-deployment-method|sdm|use-conda)\s*:", text, re.M), path

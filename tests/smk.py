"""Helpers for tests that drive Snakemake itself on a copy of the project."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
PROJECT_FILES = ("Snakefile", "workflow", "config", "profiles", "envs")


def copy_project(dest: Path) -> Path:
    """Copy what a workflow run needs (not results) into `dest`, so tests never touch the checkout."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
        else:
            shutil.copy2(src, dest / name)
    return dest


def env() -> dict[str, str]:
    out = dict(os.environ)
    out.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    out["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{out.get('PATH', '')}"
    return out


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 2400) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [SNAKEMAKE, *args], cwd=workdir, env=env(), text=True, capture_output=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


_STATS = re.compile(r"^(\w+)\s+(\d+)$")


def planned_jobs(workdir: Path, *args: str) -> Counter:
    """Jobs per rule that a dry run plans (parsed from Snakemake's 'Job stats' table)."""
    proc = snakemake(workdir, "-n", *args)
    text = proc.stdout + proc.stderr
    counts: Counter = Counter()
    if "Nothing to be done" in text:
        return counts
    table = text.split("Job stats:", 1)[1]
    for line in table.splitlines():
        match = _STATS.match(line.strip())
        if match and match.group(1) not in ("total", "all"):
            counts[match.group(1)] += int(match.group(2))
        if line.strip().startswith("total"):
            break
    return counts

"""Test-wide settings: never touch the network, keep torch on the cores we have."""

import os
import time
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

# Tiny test models run fastest on one thread (OpenMP spin-waits dominate on a busy 2-core box).
torch.set_num_threads(1)

# The session-scoped local SLURM cluster (tests/slurm/start_slurm.sh), for every test that asks for it.
from slurm.kdprobe_slurm import slurm_cluster  # noqa: E402,F401
from smk import copy_project, snakemake  # noqa: E402
# The loopback HTTP server of tests/test_fetch.py, for the fetch and pre-flight tests.
from test_fetch import server  # noqa: E402,F401


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """One complete demo run in a copy of the project, shared by the tests that inspect or re-plan it.

    `KDPROBE_DEMO_DIR` names an existing copy to complete and reuse instead (to iterate on these tests).
    """
    reuse = os.environ.get("KDPROBE_DEMO_DIR")
    workdir = Path(reuse) if reuse else copy_project(tmp_path_factory.mktemp("demo"))
    start = time.perf_counter()
    proc = snakemake(workdir, "--profile", "profiles/local", "--configfile", "config/demo.yaml", "--cores", "2")
    print(f"demo run: {time.perf_counter() - start:.0f} s wall")
    out = proc.stdout + proc.stderr
    assert "steps (100%) done" in out or (reuse and "Nothing to be done" in out)
    return workdir

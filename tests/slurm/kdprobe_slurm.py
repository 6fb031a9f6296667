"""The local SLURM test cluster as a session-scoped pytest fixture, plus helpers to run Snakemake on it.

Use it from any test module (it is not a conftest, so import it; tests under tests/slurm/ get it from
tests/slurm/conftest.py without importing):

    import sys; from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent / "slurm"))
    from kdprobe_slurm import slurm_cluster  # noqa: F401,E402  (pytest fixture)

    @pytest.mark.slurm
    def test_something(slurm_cluster, tmp_path):
        proc = slurm_cluster.snakemake(tmp_path, "--verbose", "results/x.txt")

The fixture runs tests/slurm/start_slurm.sh once per session (installing SLURM with apt-get if needed) and keeps
the cluster up until the session ends: every `snakemake` start asks `scontrol show config`, which waits ~9 s when
SLURM's tools are installed but no controller answers. At the end it stops the daemons only if this session
started them (KDPROBE_SLURM_KEEP=1 leaves them running). It skips when it cannot start a cluster (not root, or no
SLURM and no apt-get), with the reason; under CI=true that is a failure instead.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SLURM_DIR = Path(__file__).resolve().parent
REPO = SLURM_DIR.parents[1]
START = SLURM_DIR / "start_slurm.sh"
STOP = SLURM_DIR / "stop_slurm.sh"
PROFILE = REPO / "profiles" / "slurm"
OVERLAY = REPO / "profiles" / "slurm" / "local-test"
PARTITION = "debug"
BASE = Path(os.environ.get("KDPROBE_SLURM_DIR", "/var/lib/kdprobe-slurm"))
DAEMONS = ("munged", "slurmctld", "slurmd")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _skip_or_fail(reason: str):
    """Skip with the reason, printed; in CI (CI=true) the cluster is required, so fail instead."""
    print(f"\nSLURM test cluster unavailable: {reason}", file=sys.stderr)
    if _in_ci():
        pytest.fail(f"SLURM test cluster required in CI (CI=true) but unavailable: {reason}", pytrace=False)
    pytest.skip(f"SLURM test cluster unavailable: {reason}")


def _recorded_alive() -> set[str]:
    """Daemons that start_slurm.sh recorded as started by it and that still run."""
    alive = set()
    for name in DAEMONS:
        try:
            pid = (BASE / "started" / f"{name}.pid").read_text().strip()
            if Path(f"/proc/{pid}/comm").read_text().strip() == name:
                alive.add(name)
        except (OSError, ValueError):
            pass
    return alive


def _cluster_answers() -> bool:
    if not shutil.which("scontrol") or not shutil.which("sinfo"):
        return False
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=15)
        parts = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "is UP" in ping.stdout and PARTITION in parts.stdout.replace("*", "").split()


def job_env() -> dict[str, str]:
    """Environment for Snakemake runs on the cluster. sbatch passes it on (--export=ALL), so the venv's bin must be
    on PATH for rules that call `python`/`snakemake` by name; SLURM_*/SBATCH_* of an enclosing job and a
    CUDA_VISIBLE_DEVICES of ours would otherwise leak into the jobs."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "SBATCH_", "SRUN_")) and k != "CUDA_VISIBLE_DEVICES"}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([venv_bin, env.get("PATH", "/usr/bin:/bin")])
    return env


@dataclass
class SlurmCluster:
    """Handle on the running test cluster."""

    partition: str = PARTITION
    base_dir: Path = BASE
    profiles: tuple[Path, ...] = (PROFILE, OVERLAY)
    started_here: set[str] = field(default_factory=set)

    def profile_args(self) -> list[str]:
        args = []
        for p in self.profiles:
            args += ["--profile", str(p)]
        return args

    def snakemake(self, workdir: Path, *args: str, timeout: float = 900, check: bool = False
                  ) -> subprocess.CompletedProcess:
        """Run `snakemake --profile profiles/slurm --profile profiles/slurm/local-test ARGS` in workdir.
        stdout and stderr together in .stdout. On timeout Snakemake gets SIGINT (which cancels its SLURM jobs)."""
        cmd = [sys.executable, "-m", "snakemake", *self.profile_args(), *args]
        proc = subprocess.Popen(cmd, cwd=workdir, env=job_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            try:
                out, _ = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            raise AssertionError(f"snakemake timed out after {timeout} s:\n{out[-6000:]}")
        result = subprocess.CompletedProcess(cmd, proc.returncode, out, "")
        if check and proc.returncode != 0:
            raise AssertionError(f"snakemake failed ({proc.returncode}):\n{out[-8000:]}")
        return result

    @staticmethod
    def run_id(log: str) -> str:
        """The plugin's run UUID (the SLURM job name of all jobs of one Snakemake run)."""
        m = re.search(r"SLURM run ID: (\S+)", log)
        assert m, "no 'SLURM run ID' in the Snakemake log: did the run use the slurm executor?"
        return m.group(1)

    @staticmethod
    def submitted(log: str) -> list[tuple[str, str]]:
        """(rule, SLURM job id) for every submission in a Snakemake log, in order."""
        pattern = r"has been submitted with SLURM jobid (\d+) \(log: \S*/rule_([^/\s]+)/"
        return [(rule, job_id) for job_id, rule in re.findall(pattern, log)]

    @staticmethod
    def jobs_of_run(run_id: str) -> dict[str, str]:
        """SLURM job id -> state for the jobs named run_id, from squeue (finished jobs stay MinJobAge s)."""
        out = subprocess.run(["squeue", "--states=all", "--noheader", "--format=%i|%T", "--name", run_id],
                             capture_output=True, text=True, timeout=30, check=True).stdout
        return dict(line.split("|", 1) for line in out.split())

    @staticmethod
    def job_details(job_id: str) -> str:
        """`scontrol show job -d JOBID` (allocated GRES, TRES, times), while the job is within MinJobAge."""
        return subprocess.run(["scontrol", "show", "job", "-d", str(job_id)], capture_output=True, text=True,
                              timeout=30, check=True).stdout


_CLUSTER: SlurmCluster | None = None


@pytest.fixture(scope="session")
def slurm_cluster():
    """Start (or reuse) the single-node SLURM cluster for the whole session."""
    global _CLUSTER
    if _CLUSTER is not None:  # imported into several modules: one cluster, one teardown
        yield _CLUSTER
        return
    is_root = os.geteuid() == 0
    if not is_root:
        if _cluster_answers():  # someone started it for us: use it
            _CLUSTER = SlurmCluster()
            yield _CLUSTER
            return
        _skip_or_fail("tests/slurm/start_slurm.sh needs root (installs packages, starts daemons)")
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        _skip_or_fail("SLURM is not installed and there is no apt-get to install it")

    before = _recorded_alive()
    try:
        proc = subprocess.run(["bash", str(START)], capture_output=True, text=True, timeout=1200)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"start_slurm.sh timed out:\n{e.stdout}\n{e.stderr}", pytrace=False)
    if proc.returncode != 0:
        pytest.fail(f"start_slurm.sh failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}", pytrace=False)
    print(proc.stdout, file=sys.stderr)
    _CLUSTER = SlurmCluster(started_here=_recorded_alive() - before)
    try:
        yield _CLUSTER
    finally:
        if _CLUSTER.started_here and not before and os.environ.get("KDPROBE_SLURM_KEEP") != "1":
            subprocess.run(["bash", str(STOP)], capture_output=True, text=True, timeout=120)

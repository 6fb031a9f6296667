"""The GPU step of `make preflight`: before a run is submitted, a one-minute job on each GPU partition that the
planned GPU jobs go to runs kdprobe.runtime's CUDA checks there. A CPU-only torch, an old driver, a device that
SLURM hides or one that torch has no kernels for then fails in a minute, naming the partition and the cause,
instead of after a wait in the queue and three attempts of BERT-large.

Which requests: the plan, the output of `snakemake -n TARGET --profile ...` (`--plan FILE`), lists every job with
the resources the SLURM executor plugin gets: the workflow config's `resources:` (default, gpu_jobs, stage, parent,
rule) merged with the profile's default-resources and the command line, which the config alone does not show.
The partition, account, QoS, constraint, GPU form and extra options of each GPU job make one request (a partition
list `a,b`: one per partition). Each request gets one `sbatch --wait` with those options for one GPU, in the form
the plugin sends (`--gpus=[TYPE:]1`, or `--gres=gpu[:TYPE]:1` for `gpu_request: gres`: set_gres_string in
snakemake-executor-plugin-slurm's utils.py), one CPU, 4 GB and `--time-limit` minutes, running
`python -m kdprobe.gpu_preflight job CONFIG...` with this process's python. Options reach sbatch as an argument
list and the job's command as the arguments of a two-line script: no config value passes through a shell.

The job (`job CONFIG...`): `pick_device('cuda', gpus=1)` (without CUDA: `GpuUnavailable` with `cuda_diagnosis`;
a device torch has no kernels for: `check_arch`), `configure_cuda` with the config's `cuda` section, an fp32
matmul on the device against float64, and one line: `gpu-check: ok ...: <describe_gpu>; ...` or
`gpu-check: FAIL ...: <cause>`.

Command line: `python -m kdprobe.gpu_preflight --plan FILE CONFIG...`; a line per request, exit 1 when any fails.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kdprobe.cluster import GRES_GPUS, gpu_gres
from kdprobe.config import read_configs
from kdprobe.errors import KdprobeError

#: How the job's result line starts (the login side reads the last such line of the job's output).
PREFIX = "gpu-check:"
#: The batch script: runs the command given as its arguments, so that nothing is parsed by a shell.
WRAPPER = '#!/bin/sh\n# kdprobe GPU pre-flight (kdprobe.gpu_preflight): run the arguments as the command\nexec "$@"\n'
#: Side of the square fp32 matmul the job runs on the device.
MATMUL_SIZE = 512
#: Largest relative error (Frobenius norm, against float64 of the same fp32 inputs) of that matmul, with TF32 on and
#: off. Measured on this repository's CPU (IEEE fp32, seed 0): 2.4e-7; with both inputs rounded to TF32's 10-bit
#: mantissa (what TF32 tensor cores multiply): 2.9e-4. Each bound is about 30x over its mode's error and 1e-5 is
#: 30x under TF32's, so a wrong result fails, and so does TF32 in force where `cuda.tf32: false` asks for IEEE
#: fp32 (NVIDIA_TF32_OVERRIDE=1).
MATMUL_BOUND = {True: 1e-2, False: 1e-5}

_RULE = re.compile(r"^\s*(local)?rule (\S+):$")
_RESOURCES = re.compile(r"^\s*resources: (.*)$")
_ITEMS = re.compile(r", (?=\w+=)")


class GpuCheckFailed(KdprobeError):
    """The GPU computed a wrong result."""


@dataclass(frozen=True)
class GpuRequest:
    """Where a GPU job goes and how it asks for its GPU: one GPU pre-flight job each."""

    partition: str | None  # None: the cluster's default partition
    gpu: str  # --gpus=1 | --gpus=TYPE:1 | --gres=gpu[:TYPE]:1
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    extra: tuple[str, ...] = ()  # a non-GPU --gres and the words of slurm_extra

    def options(self) -> list[str]:
        """The sbatch options of the request, one argument each."""
        named = (("--partition", self.partition), ("--account", self.account), ("--qos", self.qos),
                 ("--constraint", self.constraint))
        return [f"{flag}={value}" for flag, value in named if value] + [self.gpu, *self.extra]

    def label(self) -> str:
        where = f"partition {self.partition}" if self.partition else "the default partition"
        return f"{where} ({' '.join(option for option in self.options() if not option.startswith('--partition'))})"


def plan_resources(plan: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) of each cluster job of a `snakemake -n` output; local rules (`localrule X:`) left out."""
    jobs: list[tuple[str, dict[str, str]]] = []
    rule = None
    for line in plan.splitlines():
        if match := _RULE.match(line):
            rule = None if match.group(1) else match.group(2)
        elif rule and (match := _RESOURCES.match(line)):
            jobs.append((rule, dict(item.partition("=")[::2] for item in _ITEMS.split(match.group(1)))))
            rule = None
    return jobs


def gpu_option(resources: dict[str, str]) -> str | None:
    """The GPU option, for one GPU, of a job with these resources, as the plugin forms it; None: no GPU job."""
    match = GRES_GPUS.match(resources.get("gres", ""))
    if match and int(match.group(2)) > 0:
        return "--gres=" + gpu_gres(1, match.group(1))
    if int(resources.get("gpu") or 0) > 0:
        model = resources.get("gpu_model")
        return f"--gpus={model}:1" if model else "--gpus=1"
    return None


def gpu_requests(plan: str) -> dict[GpuRequest, list[str]]:
    """{request: [rule, ...]} of the GPU jobs of a plan, in the order they first appear."""
    requests: dict[GpuRequest, list[str]] = {}
    for rule, res in plan_resources(plan):
        gpu = gpu_option(res)
        if gpu is None:
            continue
        gres = res.get("gres", "")
        extra = ([f"--gres={gres}"] if gres and not GRES_GPUS.match(gres) else []) + shlex.split(
            res.get("slurm_extra", ""))
        for partition in res.get("slurm_partition", "").split(","):
            request = GpuRequest(partition.strip() or None, gpu, res.get("slurm_account"), res.get("qos"),
                                 res.get("constraint"), tuple(extra))
            rules = requests.setdefault(request, [])
            if rule not in rules:
                rules.append(rule)
    return requests


@dataclass(frozen=True)
class Outcome:
    """What the GPU pre-flight job of one request found."""

    request: GpuRequest
    rules: tuple[str, ...]
    ok: bool
    job: str | None
    detail: str

    def line(self) -> str:
        job = f"GPU job {self.job}" if self.job else "GPU job"
        return (f"{'ok  ' if self.ok else 'FAIL'} {job} on {self.request.label()}, for rules "
                f"{', '.join(self.rules)}: {self.detail}")


def sbatch_command(request: GpuRequest, script: Path, output: str, job_argv: list[str], minutes: int) -> list[str]:
    """The sbatch argument list of the pre-flight job of `request` (waits for the job; prints its id first)."""
    return ["sbatch", "--wait", "--parsable", "--job-name=kdprobe-gpu-check", f"--time={minutes}", "--ntasks=1",
            "--cpus-per-task=1", "--mem=4G", f"--output={output}", *request.options(), str(script), *job_argv]


def _safe(name: str | None) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name or "default")


def _result(proc: subprocess.Popen, deadline: float) -> tuple[str | None, bool, str, str]:
    """(job id, finished, sbatch stdout, sbatch stderr) of one `sbatch --wait`; cancels a job past the deadline."""
    try:
        out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        finished = True
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        finished = False
    job = out.split()[0].split(";")[0] if out.split() else None
    if not finished and job:
        subprocess.run(["scancel", job], capture_output=True, text=True, timeout=60)
    return job, finished, out, err


def _outcome(request: GpuRequest, rules: list[str], proc: subprocess.Popen, output: str, deadline: float,
             wait_s: float) -> Outcome:
    job, finished, _out, err = _result(proc, deadline)
    if not finished:
        detail = f"not done after {wait_s:.0f} s (still queued? `squeue -j {job}`): cancelled"
        return Outcome(request, tuple(rules), False, job, detail)
    log = Path(output.replace("%j", job or "0"))
    text = log.read_text(errors="replace") if job and log.exists() else ""
    results = [line for line in text.splitlines() if line.startswith(PREFIX)]
    if results:
        verdict, _, detail = results[-1].removeprefix(PREFIX).strip().partition(" ")
        ok = verdict == "ok" and proc.returncode == 0
        return Outcome(request, tuple(rules), ok, job, detail + ("" if ok else f" (job output: {log})"))
    if not job:  # sbatch refused the request
        reason = " ".join(err.split()) or f"sbatch exited {proc.returncode}"
        return Outcome(request, tuple(rules), False, None, f"sbatch refused it: {reason}")
    tail = " | ".join(text.strip().splitlines()[-3:]) or "no output"
    return Outcome(request, tuple(rules), False, job, f"the job ended (sbatch exit {proc.returncode}) without a "
                                                      f"result line (TIMEOUT, killed?): {tail} (job output: {log})")


def run_checks(requests: dict[GpuRequest, list[str]], configs: list[str], log_dir: str | Path = "logs/preflight",
               minutes: int = 2, wait_s: float = 900.0, python: str = sys.executable) -> list[Outcome]:
    """Submit the pre-flight job of every request at once (`sbatch --wait`), and an Outcome for each, in order.
    The jobs' output goes to `log_dir` (it must be on the file system the compute nodes share, like logs/)."""
    log_dir = Path(log_dir).resolve()
    log_dir.mkdir(parents=True, exist_ok=True)
    script = log_dir / "gpu-check.sh"
    script.write_text(WRAPPER)
    job_argv = [python, "-m", "kdprobe.gpu_preflight", "job", *(str(Path(c).resolve()) for c in configs)]
    started = []
    for request, rules in requests.items():
        output = str(log_dir / f"gpu-check-{_safe(request.partition)}-%j.log")
        command = sbatch_command(request, script, output, job_argv, minutes)
        try:
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        except FileNotFoundError:
            raise KdprobeError("sbatch not found: run the GPU pre-flight where SLURM's commands are "
                               "(the login node), or skip it (make preflight GPU_CHECK=0)") from None
        started.append((request, rules, proc, output))
    deadline = time.monotonic() + wait_s
    return [_outcome(request, rules, proc, output, deadline, wait_s) for request, rules, proc, output in started]


# ---------------------------------------------------------------------------------------------- in the job


def matmul_error(device: Any, size: int = MATMUL_SIZE) -> float:
    """||A @ B on `device` - A @ B in float64|| / ||A @ B in float64|| (Frobenius) of fixed random fp32 A, B."""
    import torch

    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(size, size, generator=generator) for _ in range(2))
    exact = a.double() @ b.double()
    got = (a.to(device) @ b.to(device)).cpu().double()
    return float((got - exact).norm() / exact.norm())


def gpu_check(tf32: bool, deterministic: bool) -> str:
    """kdprobe.runtime's checks of a GPU job, on this job's GPU: the line to report, or an error with the cause."""
    from kdprobe.runtime import configure_cuda, describe_gpu, pick_device  # torch: only in the job

    device = pick_device("cuda", gpus=1)  # no CUDA, or no kernels for this device: GpuUnavailable with the cause
    configure_cuda(device, tf32=tf32, deterministic=deterministic)
    error, bound = matmul_error(device), MATMUL_BOUND[tf32]
    mode = "TF32" if tf32 else "IEEE fp32 (cuda.tf32: false)"
    if not error <= bound:  # NaN too
        raise GpuCheckFailed(f"{describe_gpu(device)}: a {MATMUL_SIZE}x{MATMUL_SIZE} fp32 matmul is off float64 by "
                             f"{error:.1e} (relative), over the {bound:.0e} {mode} allows: a faulty GPU, or TF32 "
                             f"forced on (NVIDIA_TF32_OVERRIDE)?")
    return (f"{describe_gpu(device)}; jobs compute in float32; a {MATMUL_SIZE}x{MATMUL_SIZE} fp32 matmul is within "
            f"{error:.1e} of float64 (bound {bound:.0e}, {mode})")


def _where() -> str:
    env = os.environ
    return (f"node {env.get('SLURMD_NODENAME') or socket.gethostname()}, partition "
            f"{env.get('SLURM_JOB_PARTITION', '?')}, job {env.get('SLURM_JOB_ID', '?')}")


def job_main(configs: list[str]) -> int:
    """The pre-flight job: one `gpu-check:` line on stdout; exit 1 when a check fails."""
    from kdprobe.logs import configure_logging
    from kdprobe.settings import CudaSettings

    configure_logging()  # pick_device's warnings (a job that sees more GPUs than it asked for) go to stderr
    try:
        cuda = CudaSettings.from_config(read_configs(configs))
        line = gpu_check(cuda.tf32, cuda.deterministic)
    except Exception as exc:  # every failure is the result to report: CUDA's own errors are RuntimeErrors
        cause = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        cause = cause if isinstance(exc, KdprobeError) else f"{type(exc).__name__}: {cause}"
        print(f"{PREFIX} FAIL {_where()}: {cause}", flush=True)
        return 1
    print(f"{PREFIX} ok {_where()}: {line}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m kdprobe.gpu_preflight --plan FILE CONFIG...` (the login side) or `... job CONFIG...` (the job)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["job"]:
        return job_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m kdprobe.gpu_preflight", description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", required=True, help="the output of `snakemake -n TARGET --profile ...`")
    parser.add_argument("--log-dir", default="logs/preflight", help="the jobs' output (a shared file system)")
    parser.add_argument("--time-limit", type=int, default=2, help="each job's time limit, minutes [2]")
    parser.add_argument("--wait", type=float, default=900.0, help="seconds to wait for all jobs, queue included")
    parser.add_argument("configs", nargs="+", help="the config files of the run (for its `cuda` section)")
    args = parser.parse_args(argv)
    plan = Path(args.plan).read_text()
    if "This was a dry-run" not in plan and "Nothing to be done" not in plan:
        print(f"preflight: {args.plan} is not the output of a `snakemake -n` that succeeded", file=sys.stderr)
        return 1
    requests = gpu_requests(plan)
    if not requests:
        print(f"preflight: the plan ({args.plan}) has no GPU job: no GPU partition to check")
        return 0
    try:
        outcomes = run_checks(requests, args.configs, args.log_dir, args.time_limit, args.wait)
    except KdprobeError as err:
        print(f"preflight: {err}", file=sys.stderr)
        return 1
    for outcome in outcomes:
        print(f"preflight: {outcome.line()}", file=sys.stdout if outcome.ok else sys.stderr)
    failed = [outcome.request.label() for outcome in outcomes if not outcome.ok]
    print(f"preflight: {len(outcomes) - len(failed)} of {len(outcomes)} GPU requests ok"
          + (f"; failed: {'; '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

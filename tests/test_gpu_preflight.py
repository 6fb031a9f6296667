"""The GPU step of `make preflight` (kdprobe.gpu_preflight): which GPU requests a plan holds, what the job on
each reports (CUDA mocked on this CPU for the passing case, the real CPU-only torch for the failing one), and one
real `sbatch --wait` job per request on the local SLURM test cluster (tests/slurm/start_slurm.sh)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from kdprobe import gpu_preflight, runtime
from kdprobe.gpu_preflight import GpuRequest


#: A `snakemake -n` plan in the form Snakemake 9 prints it (a GPU rule, a local rule, a CPU rule, and the forms a
#: site's resources take: a partition list, a GPU model, a typed gres, a non-GPU gres, slurm_extra).
PLAN = """
[Mon Dec  7 12:10:08 2026]
rule teacher:
    input: resources/data/cola/train.tsv
    output: results/teacher/cola/model
    jobid: 4
    wildcards: task=cola
    resources: tmpdir=/tmp, mem_mb=32000, mem=32 GB, disk_mb=<TBD>, slurm_partition=gpu, runtime=120, gpu=1
Shell command: None

[Mon Dec  7 12:10:08 2026]
localrule fetch_cola:
    output: resources/raw/cola/train.tsv
    resources: tmpdir=/tmp, gpu=1

[Mon Dec  7 12:10:08 2026]
rule prepare_data:
    resources: tmpdir=/tmp, mem_mb=4000, slurm_partition=cpu, runtime=20, gpu=0

[Mon Dec  7 12:10:08 2026]
rule teacher:
    resources: tmpdir=/tmp, mem_mb=32000, slurm_partition=gpu, runtime=120, gpu=1

[Mon Dec  7 12:10:08 2026]
rule sample:
    resources: tmpdir=/tmp, slurm_partition=gpu,gpu-long, qos=gpu, gpu_model=a100, runtime=90, gpu=1

[Mon Dec  7 12:10:08 2026]
rule distil:
    resources: tmpdir=/tmp, slurm_partition=gpu, gres=gpu:v100:2, slurm_extra=--exclusive --comment='a b'

[Mon Dec  7 12:10:08 2026]
rule probe:
    resources: tmpdir=/tmp, slurm_partition=gpu, gres=shard:1, gpu=1, constraint=ampere
This was a dry-run (flag -n). The order of jobs does not reflect the order of execution.
"""


def test_a_plan_gives_one_request_per_partition_and_gpu_form():
    requests = gpu_preflight.gpu_requests(PLAN)
    assert list(requests.items()) == [
        (GpuRequest("gpu", "--gpus=1"), ["teacher"]),  # two teacher jobs, one request; fetch_cola is local
        (GpuRequest("gpu", "--gpus=a100:1", qos="gpu"), ["sample"]),
        (GpuRequest("gpu-long", "--gpus=a100:1", qos="gpu"), ["sample"]),
        (GpuRequest("gpu", "--gres=gpu:v100:1", extra=("--exclusive", "--comment=a b")), ["distil"]),
        (GpuRequest("gpu", "--gpus=1", constraint="ampere", extra=("--gres=shard:1",)), ["probe"]),
    ]
    # each asks for ONE GPU of the kind its jobs ask for, in the form the SLURM executor plugin sends
    assert GpuRequest("gpu", "--gres=gpu:v100:1", qos="q").options() == ["--partition=gpu", "--qos=q",
                                                                          "--gres=gpu:v100:1"]


def test_the_sbatch_command_is_an_argument_list_with_the_request(tmp_path):
    request = GpuRequest("gpu; rm -rf ~", "--gpus=1", account="lab")
    command = gpu_preflight.sbatch_command(request, tmp_path / "gpu-check.sh", "out-%j.log", ["python", "-m", "x"], 2)
    assert command[:3] == ["sbatch", "--wait", "--parsable"] and "--time=2" in command
    assert "--partition=gpu; rm -rf ~" in command  # one argument, never parsed by a shell
    assert command[-4:] == [str(tmp_path / "gpu-check.sh"), "python", "-m", "x"]


@pytest.fixture
def mocked_gpu(monkeypatch):
    """One mocked H100 that torch was built for; its matmul runs on the CPU (it is the CPU's IEEE fp32 result)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["sm_80", "sm_90"])
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda device=None: SimpleNamespace(name="NVIDIA H100 80GB HBM3", total_memory=80 * 2**30,
                                                            major=9, minor=0))
    for name in ("SLURM_JOB_ID", "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(name, raising=False)
    real = gpu_preflight.matmul_error
    monkeypatch.setattr(gpu_preflight, "matmul_error", lambda device, size=gpu_preflight.MATMUL_SIZE:
                        real(torch.device("cpu"), size))
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32


def _config(tmp_path: Path, cuda: dict) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"cuda": cuda}))
    return str(path)


def test_the_job_reports_its_gpu_when_cuda_works(mocked_gpu, tmp_path, capsys):
    assert gpu_preflight.job_main([_config(tmp_path, {"tf32": False})]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("gpu-check: ok node ") and "partition ?" in line
    assert "NVIDIA H100 80GB HBM3, compute capability 9.0" in line and "fp32 matmul ieee" in line
    assert "(bound 1e-05, IEEE fp32 (cuda.tf32: false))" in line


def test_the_job_fails_with_the_cause_on_a_cpu_only_torch(tmp_path, capsys):
    assert not torch.cuda.is_available()  # this machine: the CPU build of torch
    assert gpu_preflight.job_main([_config(tmp_path, {"tf32": True})]) == 1
    line = capsys.readouterr().out.strip()
    assert line.startswith("gpu-check: FAIL node ")
    assert "asked for 1 GPU(s) but CUDA is not available" in line and f"torch {torch.__version__}" in line


def test_the_job_fails_on_a_gpu_torch_has_no_kernels_for(mocked_gpu, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["sm_50", "sm_60", "sm_70"])
    assert gpu_preflight.job_main([_config(tmp_path, {})]) == 1
    assert "compute capability 9.0 (sm_90), but torch" in capsys.readouterr().out


def test_a_wrong_matmul_fails_the_check(mocked_gpu, monkeypatch):
    """TF32's rounding where `cuda.tf32: false` asks for IEEE fp32 (NVIDIA_TF32_OVERRIDE=1) is caught."""
    def tf32_rounded(device, size=gpu_preflight.MATMUL_SIZE):
        generator = torch.Generator().manual_seed(0)
        a, b = (torch.randn(size, size, generator=generator) for _ in range(2))
        rounded = [(x.view(torch.int32) & ~0x1FFF).view(torch.float32) for x in (a, b)]  # 10-bit mantissa
        exact = a.double() @ b.double()
        return float(((rounded[0] @ rounded[1]).double() - exact).norm() / exact.norm())

    monkeypatch.setattr(gpu_preflight, "matmul_error", tf32_rounded)
    with pytest.raises(gpu_preflight.GpuCheckFailed, match=r"off float64 by .*over the 1e-05 IEEE fp32"):
        gpu_preflight.gpu_check(tf32=False, deterministic=False)
    assert "bound 1e-02, TF32" in gpu_preflight.gpu_check(tf32=True, deterministic=False)


def test_the_cpus_fp32_matmul_is_within_the_ieee_bound():
    assert gpu_preflight.matmul_error(torch.device("cpu")) < gpu_preflight.MATMUL_BOUND[False] / 10


def test_a_plan_that_is_not_a_dry_run_is_refused(tmp_path, capsys):
    plan = tmp_path / "dry-run.txt"
    plan.write_text("WorkflowError: something failed\n")
    assert gpu_preflight.main(["--plan", str(plan), _config(tmp_path, {})]) == 1
    assert "is not the output of a `snakemake -n` that succeeded" in capsys.readouterr().err


@pytest.mark.slurm
def test_on_slurm_each_request_runs_one_job_and_a_cpu_only_torch_fails_naming_the_partition(
        slurm_cluster, tmp_path, capsys):
    plan = tmp_path / "dry-run.txt"
    plan.write_text(PLAN.replace("slurm_partition=gpu,gpu-long", "slurm_partition=debug")
                    .replace("slurm_partition=gpu", "slurm_partition=debug").replace(", gpu_model=a100", "")
                    .replace("gres=gpu:v100:2, slurm_extra=--exclusive --comment='a b'", "gpu=1")
                    .replace("gres=shard:1, gpu=1, constraint=ampere", "gpu=1, slurm_partition=nowhere"))
    code = gpu_preflight.main(["--plan", str(plan), "--log-dir", str(tmp_path / "logs"), "--wait", "300",
                               _config(tmp_path, {})])
    out = capsys.readouterr()
    assert code == 1
    # one job on partition debug (--gpus=1), for every GPU rule there; one refused by sbatch (no such partition)
    assert "FAIL GPU job " in out.err and "on partition debug (--gpus=1), for rules teacher, distil" in out.err
    assert "CUDA is not available" in out.err and "torch " in out.err and "CUDA_VISIBLE_DEVICES" in out.err
    assert "on partition debug (--qos=gpu --gpus=1), for rules sample" in out.err
    assert "partition nowhere" in out.err and "sbatch refused it: sbatch: error: invalid partition" in out.err.lower()
    assert "0 of 3 GPU requests ok" in out.out
    logs = sorted((tmp_path / "logs").glob("gpu-check-debug-*.log"))
    assert len(logs) == 2 and all("gpu-check: FAIL node" in log.read_text() for log in logs)
    assert all("partition debug" in log.read_text() for log in logs)  # SLURM_JOB_PARTITION: it ran there
    assert runtime.cuda_diagnosis().split(";")[1] in logs[0].read_text()

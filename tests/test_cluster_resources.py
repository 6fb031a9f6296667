"""What rules ask their cluster for (`kdprobe.cluster`, common.smk `rule_resources`): SLURM site settings for GPU and
CPU rules apart, the `max_runtime` cap over retries, `--gpus` or `--gres` GPU requests, the schema's guard on what
reaches sbatch, and a dry run of the demo whose planned jobs carry them."""

from __future__ import annotations

import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
import yaml

from kdprobe import cluster
from kdprobe import config as kdconfig
from kdprobe.errors import ConfigError
from kdprobe.variants import seeds_of
from smk import ROOT, copy_project, snakemake

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
SITE = {
    "default": {"threads": 1, "mem_mb": 1000, "runtime": 60, "gpu": 0},
    "gpu_jobs": {"slurm_partition": "gpu", "qos": "gpuqos", "constraint": "a100|h100", "max_runtime": 150,
                 "slurm_account": "proj"},
    "cpu_jobs": {"slurm_partition": "cpu", "slurm_extra": "--mail-type=FAIL", "max_runtime": 100},
    "teacher": {"runtime": 60, "gpu": 1},
    "summary": {"runtime": 5},
    "predict": {"gpu": 1, "slurm_partition": "gpu-short"},
}


def _runtimes(resources: dict, attempts: int = 3) -> list[int]:
    return [resources["runtime"](None, attempt) for attempt in range(1, attempts + 1)]


def test_gpu_and_cpu_rules_get_their_own_site_settings():
    gpu = cluster.rule_resources(SITE, "teacher")
    cpu = cluster.rule_resources(SITE, "summary_task", "summary")
    assert {k: gpu[k] for k in cluster.SLURM_KEYS if k in gpu} == {
        "slurm_partition": "gpu", "qos": "gpuqos", "constraint": "a100|h100", "slurm_account": "proj"}
    assert gpu["gpu"] == 1
    assert {k: cpu[k] for k in cluster.SLURM_KEYS if k in cpu} == {
        "slurm_partition": "cpu", "slurm_extra": "--mail-type=FAIL"}
    assert cpu["gpu"] == 0 and "gpu_model" not in cpu
    # a rule's own entry (and a `use rule` child's parent entry) wins over the site entry
    assert cluster.rule_resources(SITE, "predict")["slurm_partition"] == "gpu-short"
    assert cluster.rule_resources(SITE, "predict_test", parent="predict")["slurm_partition"] == "gpu-short"
    # a rule whose own entry turns its GPU off is a CPU rule: the CPU site settings, no GPU partition
    off = cluster.rule_resources({**SITE, "predict_test": {"gpu": 0}}, "predict_test", parent="predict")
    assert off["gpu"] == 0 and off["slurm_partition"] == "gpu-short"  # its parent's own partition still applies
    assert cluster.rule_resources({**SITE, "speed": {"gpu": 0}}, "speed")["slurm_partition"] == "cpu"


def test_retries_scale_runtime_up_to_the_cap():
    assert _runtimes(cluster.rule_resources(SITE, "teacher")) == [60, 120, 150]  # gpu_jobs.max_runtime: 150
    assert _runtimes(cluster.rule_resources(SITE, "prepare_data")) == [60, 100, 100]  # cpu_jobs.max_runtime: 100
    uncapped = {"default": SITE["default"]}
    assert _runtimes(cluster.rule_resources(uncapped, "teacher")) == [60, 120, 180]
    memory = cluster.rule_resources(SITE, "teacher")["mem_mb"]
    assert [memory(None, a) for a in (1, 2, 3)] == [1000, 2000, 3000]


def test_runtime_over_the_cap_names_both_keys():
    entries = {**SITE, "teacher": {"runtime": 720, "gpu": 1}}
    with pytest.raises(ConfigError, match=r"resources\.teacher\.runtime.*720.*resources\.gpu_jobs\.max_runtime: 150"):
        cluster.rule_resources(entries, "teacher")


def test_gres_style_gpu_request_reaches_plugin_and_job():
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    entries = {**SITE, "gpu_jobs": {**SITE["gpu_jobs"], "gpu_request": "gres", "gpu_model": "a100"}}
    gres = cluster.rule_resources(entries, "teacher")
    assert gres["gres"] == "gpu:a100:1" and "gpu" not in gres and "gpu_model" not in gres
    gpus = cluster.rule_resources({**SITE, "gpu_jobs": {"gpu_model": "h100"}}, "teacher")
    assert (gpus["gpu"], gpus["gpu_model"]) == (1, "h100") and "gres" not in gpus

    def sbatch_gpu_options(resources: dict) -> str:  # what the installed plugin makes of them
        plain = {k: v for k, v in resources.items() if not callable(v)}
        return set_gres_string(SimpleNamespace(resources=SimpleNamespace(get=plain.get, **plain))).strip()

    assert sbatch_gpu_options(gres) == "--gres=gpu:a100:1"
    assert sbatch_gpu_options(gpus) == "--gpus=h100:1"
    assert sbatch_gpu_options(cluster.rule_resources(entries, "summary_task", "summary")) == ""
    # the job learns its GPU count from either form
    assert cluster.job_gpus(SimpleNamespace(gres="gpu:a100:2")) == 2
    assert cluster.job_gpus(SimpleNamespace(gres="gpu:1")) == 1
    assert cluster.job_gpus(SimpleNamespace(gpu=1, gres="tmpdisk:10")) == 1
    assert cluster.job_gpus(SimpleNamespace(gres="tmpdisk:10")) is None
    # a GPU gres request and another gres item cannot both go (the plugin sends one --gres)
    clash = {**entries, "teacher": {"gpu": 1, "gres": "tmpdisk:100"}}
    with pytest.raises(ConfigError, match=r"resources\.teacher\.gres"):
        cluster.rule_resources(clash, "teacher")


def _config_with(resources: dict) -> dict:
    """The demo's config (config/config.yaml with config/demo.yaml over it, as Snakemake merges them)."""
    base, demo = (yaml.safe_load((ROOT / "config" / name).read_text()) for name in ("config.yaml", "demo.yaml"))
    return kdconfig.deep_merge(base, {**demo, "resources": {**demo["resources"], **resources}})


def test_schema_takes_site_settings_and_refuses_shell_syntax():
    kdconfig.validate(_config_with({key: SITE[key] for key in ("gpu_jobs", "cpu_jobs")}), SCHEMA)
    bad = [
        ("cpu_jobs", {"slurm_extra": "--mail-type=FAIL; rm -rf ~"}),
        ("cpu_jobs", {"slurm_partition": "cpu $(id)"}),
        ("gpu_jobs", {"gres": "gpu:1"}),  # GPUs are asked for with gpu / gpu_request
        ("cpu_jobs", {"gpu_model": "a100"}),  # only GPU rules read it
        ("gpu_jobs", {"gpu": 1}),  # the kind of a rule is its own, not the site's
        ("gpu_jobs", {"gpu_model": "a100-80g"}),  # the plugin refuses '-' in a GPU model
        ("teacher", {"max_runtime": 0}),
    ]
    for entry, value in bad:
        with pytest.raises(ConfigError, match=rf"resources\.{entry}"):
            kdconfig.validate(_config_with({entry: value}), SCHEMA)


@pytest.mark.workflow
def test_planned_jobs_carry_the_site_settings(tmp_path):
    """A dry run of the demo with site settings: each planned job's resources line (what the SLURM plugin reads)."""
    project = copy_project(tmp_path / "project")
    overlay = {"resources": {
        "gpu_jobs": {"slurm_partition": "gpu", "qos": "gpuqos", "constraint": "a100", "gpu_model": "a100",
                     "max_runtime": 15},
        "cpu_jobs": {"slurm_partition": "cpu", "slurm_extra": "--mail-type=FAIL"},
        "teacher": {"threads": 1, "mem_mb": 1000, "runtime": 10, "gpu": 1},
        "probe": {"threads": 1, "mem_mb": 1000, "runtime": 10, "gpu": 1, "gpu_request": "gres"},
    }}
    (project / "config" / "site.yaml").write_text(yaml.safe_dump(overlay))
    out = snakemake(project, "-n", "results/probe/sara/bert_s.csv", "--configfile", "config/demo.yaml",
                    "config/site.yaml").stdout
    jobs = re.findall(r"^rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", out, re.M)
    assert {rule for rule, _ in jobs} >= {"demo_data", "prepare_data", "teacher", "distil", "probe"}, out[-3000:]
    for rule, line in jobs:
        res = dict(item.split("=", 1) for item in line.split(", "))
        if rule == "teacher":
            assert (res["gpu"], res["gpu_model"], res["slurm_partition"], res["qos"], res["constraint"]) == (
                "1", "a100", "gpu", "gpuqos", "a100"), line
        elif rule == "probe":
            assert res["gres"] == "gpu:a100:1" and "gpu" not in res and res["slurm_partition"] == "gpu", line
        else:  # the demo's other rules ask for no GPU: CPU partition, never a GPU option
            assert res["gpu"] == "0" and res["slurm_partition"] == "cpu", line
            assert res["slurm_extra"] == "--mail-type=FAIL" and not {"gpu_model", "gres", "qos"} & set(res), line


def _profile_group_args() -> list[str]:
    """profiles/slurm's group settings as command-line options (a dry run without the SLURM executor)."""
    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    return ["--group-components", *profile["group-components"], "--resources", *profile["resources"],
            "--set-resource-scopes", *profile["set-resource-scopes"]]


@pytest.mark.workflow
def test_short_jobs_of_a_model_go_as_one_cluster_job(tmp_path):
    """With the SLURM profile's group settings, each model's predictions (dev, test, its seeds') and speed are one
    group job, and no other rule is grouped."""
    project = copy_project(tmp_path / "project")
    out = snakemake(project, "-n", "results/summary/sara.csv", "--configfile", "config/demo.yaml",
                    *_profile_group_args()).stdout
    groups = {name: re.findall(r"^    rule (\w+):$", body, re.M)
              for name, body in re.findall(r"Group job (\S+) \(jobs in lexicogr\. order\):\n((?:\n|    .*\n)+)", out)}
    assert set(groups) == {"predict_sara_teacher", "predict_sara_bert_s", "predict_sara_lstm_s"}, out[-3000:]
    config = _config_with({})
    for name, rules in groups.items():
        extra = len(seeds_of(config, "sara", name.removeprefix("predict_sara_"))) - 1
        assert sorted(rules) == sorted(["predict", "predict_test", "speed"]
                                       + ["predict_variant", "predict_test_variant"] * extra), (name, rules)


def test_configured_partitions_must_exist():
    entries = {**SITE, "predict": {"slurm_partition": "gpu-short,gpu"}}
    cluster.check_partitions(entries, {"gpu", "gpu-short", "cpu", "debug"})
    with pytest.raises(ConfigError, match=r"resources\.predict\.slurm_partition.*no partition gpu-short"):
        cluster.check_partitions(entries, {"gpu", "cpu"})


@pytest.mark.slurm
def test_preflight_asks_the_cluster_for_its_partitions(slurm_cluster, tmp_path):
    """`python -m kdprobe.cluster` (make preflight) against the test cluster's sinfo (one partition, `debug`)."""
    def preflight(partition: str) -> subprocess.CompletedProcess:
        overlay = tmp_path / f"{partition}.yaml"
        overlay.write_text(yaml.safe_dump({"resources": {"gpu_jobs": {"slurm_partition": partition}}}))
        return subprocess.run([sys.executable, "-m", "kdprobe.cluster", str(ROOT / "config" / "config.yaml"),
                               str(overlay)], capture_output=True, text=True, timeout=120)

    ok, bad = preflight(slurm_cluster.partition), preflight("nosuch")
    assert ok.returncode == 0, ok.stderr
    assert bad.returncode == 1 and "'resources.gpu_jobs.slurm_partition': no partition nosuch" in bad.stderr, bad

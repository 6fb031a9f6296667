"""What a rule asks its cluster for: config `resources:` entries merged into one rule's Snakemake resources.

An entry is named after a rule, its `use rule` parent, its stage or `default`; `gpu_jobs` and `cpu_jobs` hold the
site settings (partition, account, QoS, node features, runtime cap) of the rules that ask for a GPU and of those
that ask for none. Precedence, lowest first: `default`, `gpu_jobs`/`cpu_jobs`, the stage, the parent, the rule.
The names of what goes to the SLURM executor plugin are the plugin's resources (snakemake-executor-plugin-slurm
docs/further.md, "SLURM-specific Resources"; `set_gres_string` in its utils.py for `gpu`, `gpu_model`, `gres`).
Torch-free: common.smk imports it when Snakemake parses the workflow. `python -m kdprobe.cluster CONFIG...` (make
preflight) checks on the login node that the configured partitions exist.
"""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any, Mapping

from kdprobe.config import read_configs
from kdprobe.errors import ConfigError

#: The resources passed to the SLURM executor plugin unchanged, when a merged entry sets them.
SLURM_KEYS = ("slurm_partition", "slurm_account", "qos", "constraint", "slurm_extra")
#: The site entries: applied to the rules that ask for a GPU / for none.
SITE = {True: "gpu_jobs", False: "cpu_jobs"}


def resource_spec(entries: Mapping[str, dict], rule: str, stage: str | None = None,
                  parent: str | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """The merged entry of `rule` and, for each key, the entry it came from (`resources.<name>`)."""
    layers = [name for name in (stage, parent, rule) if name]
    gpus = 0
    for name in ["default", *layers]:
        gpus = entries.get(name, {}).get("gpu", gpus)
    spec: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for name in ["default", SITE[gpus > 0], *layers]:
        for key, value in entries.get(name, {}).items():
            spec[key], origin[key] = value, f"resources.{name}.{key}"
    return spec, origin


def _check(spec: dict[str, Any], origin: dict[str, str]) -> None:
    """Refuse combinations the plugin or the site would turn into a wrong request, naming the config keys."""
    cap = spec.get("max_runtime")
    if cap is not None and spec["runtime"] > cap:
        raise ConfigError(origin["runtime"], f"{spec['runtime']} minutes is over the site's cap "
                                             f"{origin['max_runtime']}: {cap} minutes")
    if spec.get("gpu", 0) and spec.get("gpu_request") == "gres" and spec.get("gres"):
        raise ConfigError(origin["gres"], f"the plugin sends one --gres item; with {origin['gpu_request']}: gres "
                                          "it is the GPU request, so other generic resources go in slurm_extra")


def gpu_gres(gpus: int, model: str | None) -> str:
    """The `--gres` value of `gpus` GPUs (of type `model`): `gpu:N` or `gpu:TYPE:N`."""
    return f"gpu:{model}:{gpus}" if model else f"gpu:{gpus}"


def rule_resources(entries: Mapping[str, dict], rule: str, stage: str | None = None,
                   parent: str | None = None) -> dict[str, Any]:
    """The Snakemake `resources:` of `rule`. mem_mb and runtime grow with the attempt number, so a retried job
    asks for more; runtime never beyond `max_runtime`. GPUs go as `gpu` (+ `gpu_model`: --gpus=[TYPE:]N) or,
    with `gpu_request: gres`, as `gres` (--gres=gpu[:TYPE]:N); `gpu_model` only reaches rules that ask for a GPU.
    """
    spec, origin = resource_spec(entries, rule, stage, parent)
    _check(spec, origin)
    mem, runtime, gpus = spec["mem_mb"], spec["runtime"], spec.get("gpu", 0)
    cap = spec.get("max_runtime")
    out: dict[str, Any] = {
        "mem_mb": lambda wildcards, attempt: mem * attempt,
        "runtime": lambda wildcards, attempt: runtime * attempt if cap is None else min(runtime * attempt, cap),
    }
    if gpus and spec.get("gpu_request") == "gres":
        out["gres"] = gpu_gres(gpus, spec.get("gpu_model"))
    else:
        out["gpu"] = gpus
        if gpus and spec.get("gpu_model"):
            out["gpu_model"] = spec["gpu_model"]
        if spec.get("gres"):
            out["gres"] = spec["gres"]
    out.update({key: spec[key] for key in SLURM_KEYS if key in spec})
    return out


#: A `gres` GPU request: gpu:N or gpu:TYPE:N (groups: TYPE or None, N).
GRES_GPUS = re.compile(r"^gpu(?::([A-Za-z0-9_.]+))?:(\d+)$")


def job_gpus(resources: Any) -> int | None:
    """The GPUs a running job asked for: its `gpu` resource, else the count of a `gres` GPU request (gpu:N,
    gpu:TYPE:N); None when it says neither (a job outside Snakemake's resources)."""
    gpus = getattr(resources, "gpu", None)
    if gpus is not None:
        return int(gpus)
    match = GRES_GPUS.match(str(getattr(resources, "gres", "") or ""))
    return int(match.group(2)) if match else None



def partitions(entries: Mapping[str, dict]) -> dict[str, list[str]]:
    """{config key: [partition, ...]} of every `slurm_partition` the `resources:` entries set."""
    return {f"resources.{name}.slurm_partition": entry["slurm_partition"].split(",")
            for name, entry in entries.items() if "slurm_partition" in entry}


def check_partitions(entries: Mapping[str, dict], known: set[str]) -> None:
    """Every configured partition is one of the cluster's (`known`, from sinfo), else a ConfigError naming it."""
    for key, names in partitions(entries).items():
        missing = [name for name in names if name not in known]
        if missing:
            raise ConfigError(key, f"no partition {', '.join(missing)} on this cluster "
                                   f"(sinfo: {', '.join(sorted(known))})")


def sinfo_partitions() -> set[str]:
    """The partitions of the cluster this runs on (`sinfo -h -o %P`; the default one is marked with '*')."""
    out = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, check=True, timeout=60).stdout
    return {line.strip().rstrip("*") for line in out.splitlines() if line.strip()}


def main(argv: list[str] | None = None) -> int:
    """`python -m kdprobe.cluster CONFIG...`: the partitions of the merged config files (as Snakemake merges
    --configfile: later over earlier) exist on this cluster. Exit 1 naming the config key when one does not."""
    config = read_configs(argv if argv is not None else sys.argv[1:])
    try:
        check_partitions(config.get("resources", {}), sinfo_partitions())
    except ConfigError as err:
        print(f"preflight: {err}", file=sys.stderr)
        return 1
    named = partitions(config.get("resources", {}))
    print("preflight: the configured partitions exist:",
          "; ".join(f"{key}: {', '.join(names)}" for key, names in named.items()) or "none set")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

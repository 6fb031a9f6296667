"""The library floors are the ones the code needs, the same in pyproject.toml and envs/kdprobe.yaml, and the conda
environment names the channel each package lives on (the reasons are comments beside the floors)."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from smk import ROOT

#: package -> the oldest version the code works with (pyproject.toml says why)
FLOORS = {"transformers": "4.56", "snakemake-executor-plugin-slurm": "2.7.1"}
#: packages that conda-forge does not carry: bioconda's
BIOCONDA = {"snakemake-minimal", "snakemake-executor-plugin-slurm"}
#: conda name -> PyPI name, where they differ
CONDA_TO_PYPI = {"pytorch": "torch", "snakemake-minimal": "snakemake"}


def pyproject() -> dict[str, SpecifierSet]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {req.name: req.specifier for req in map(Requirement, deps)}


def conda_env() -> tuple[list[str], dict[str, tuple[str | None, SpecifierSet]]]:
    """The env's channels, and per package (PyPI name) its channel prefix and version range."""
    env = yaml.safe_load((ROOT / "envs" / "kdprobe.yaml").read_text())
    out = {}
    for dep in env["dependencies"]:
        if not isinstance(dep, str) or dep in ("pip",) or dep.startswith("python="):
            continue
        channel, _, spec = dep.rpartition("::")
        name, version_range = re.fullmatch(r"([a-z0-9_-]+)\s*([^\s]*)(?:\s+\S+)?", spec).groups()
        out[CONDA_TO_PYPI.get(name, name)] = (channel or None, SpecifierSet(version_range))
    return env["channels"], out


def test_floors_are_what_the_code_needs():
    specs = pyproject()
    for name, floor in FLOORS.items():
        below = Version(floor).release[:-1] + (Version(floor).release[-1] - 1,)
        assert floor in specs[name] and ".".join(map(str, below)) not in specs[name], (name, specs[name])
        assert version(name) in specs[name]  # and the installed one satisfies it


def test_conda_env_has_the_pyproject_floors_and_channels():
    channels, env = conda_env()
    specs = pyproject()
    assert channels[0] == "conda-forge" and "bioconda" in channels
    for name, spec in specs.items():
        assert name in env, f"envs/kdprobe.yaml lacks {name}"
        assert env[name][1] == spec, (name, env[name][1], spec)
    for name, (channel, _) in env.items():
        conda_name = {v: k for k, v in CONDA_TO_PYPI.items()}.get(name, name)
        assert (channel == "bioconda") == (conda_name in BIOCONDA), (name, channel)
    pytorch = next(d for d in yaml.safe_load((ROOT / "envs" / "kdprobe.yaml").read_text())["dependencies"]
                   if str(d).startswith("pytorch"))
    assert pytorch.endswith("*cuda*"), "the env must ask for a CUDA build (CONDA_OVERRIDE_CUDA on a login node)"

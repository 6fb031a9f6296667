"""Repeated seeds and declared sweeps: which extra runs of which models a config asks for, with their settings and
readable names.

A *variant* is one extra training run of a model of one task, written below that model's own directory under a
readable name (never a hash), so each variant is one job and editing one reruns only it:
- extra seeds (config `seeds`, per task `tasks.<task>.seeds`): `seeds.<model>: K` trains `teacher` or a student K
  times, with the model's `seed`, `seed + 1`, ... `seed + K - 1`. The first is the model itself (the study's
  paths keep their meaning); the others are the variants `seed<N>`, e.g. `results/students/sara/bert_s/seed43/`.
- sweeps (config `sweeps.<name>`): a grid over settings of one student, per task, and/or an explicit list of
  `points`; every point is the variant `sweeps/<name>/<label>` with the label made of its values, e.g.
  `results/students/cola/lstm_s/sweeps/lr/lr=0.001/`. Keys are the student's settings, plus the size multipliers
  `width` (the student's width settings, `registry.STUDENT[kind].width_keys`, and its attention heads, `heads_key`)
  and `depth` (its `depth_key`, `layers`).

Multipliers are positive numbers or fractions written `"p/q"` (`"1/3"`, labelled `1over3`). A scaled setting is
`round_half_up(value x multiplier)` computed exactly (BERT_S at width 1/8: hidden 204 -> 26, intermediate 750 -> 94;
depth 1/2: layers 5 -> 3), as the thesis' tables tab:sizes-bert and tab:sizes-lstm have them; heads are at least 1
(3 heads at width 1/4 -> 1) and the hidden size must stay a multiple of them. A setting scaled to 0, or a hidden size
not divisible by the heads, is a ConfigError naming the sweep's key.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from kdprobe.config import check_init_settings, section, student_settings
from kdprobe.errors import ConfigError
from kdprobe.registry import STUDENT

MULTIPLIERS = ("width", "depth")
SEED_PREFIX = "seed"
SWEEP_PREFIX = "sweeps"
#: Points one sweep may have, grid and `points` together (each is one job per task; the thesis' largest grid,
#: config/config.yaml lstm_s_size, has 25); the schema bounds each list to 64 values. A bound keeps a typo such as a 1000-value
#: list crossed with another from making even a dry run's DAG too large to build.
MAX_GRID_POINTS = 256
#: Characters a sweep label keeps; any other character of a value becomes `-`.
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")
#: A multiplier written as a fraction, `"1/3"` (labelled `1over3`).
_FRACTION = re.compile(r"^([1-9][0-9]*)/([1-9][0-9]*)$")


@dataclass(frozen=True)
class Variant:
    """One extra run: `model` (teacher or a student) of `task`, `name` its path below the model's directory,
    `settings` its whole settings section, `values` what distinguishes it (`{"seed": N}` or the grid values) and
    `sweep` the sweep it belongs to (None for a seed)."""

    task: str
    model: str
    name: str
    settings: dict[str, Any] = field(compare=False)
    values: dict[str, Any] = field(compare=False)
    sweep: str | None = None


def model_settings(config: dict, task: str, model: str) -> dict[str, Any]:
    """The settings section of `model` on `task`: the teacher's, or the student's with the task's overrides."""
    return section(config, task, "teacher") if model == "teacher" else student_settings(config, task, model)


def seed_count(config: dict, task: str, model: str) -> int:
    """K, the number of seeds `model` is trained with on `task` (1 when `seeds` does not name it)."""
    return int(section(config, task, "seeds").get(model, 1))


def seeds_of(config: dict, task: str, model: str) -> list[int]:
    """The seeds of `model` on `task`, the model's own (its headline run) first."""
    base = int(model_settings(config, task, model)["seed"])
    return [base + i for i in range(seed_count(config, task, model))]


def probe_seeds(config: dict, task: str) -> bool:
    """Whether the extra seeds of `task`'s models are probed too (`seeds.probe`)."""
    return bool(section(config, task, "seeds").get("probe", False))


def seed_variants(config: dict, task: str, model: str) -> list[Variant]:
    """The extra seeds of `model` on `task` (every seed but the first)."""
    settings = model_settings(config, task, model)
    return [Variant(task, model, f"{SEED_PREFIX}{seed}", settings | {"seed": seed}, {"seed": seed})
            for seed in seeds_of(config, task, model)[1:]]


def _label_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "-".join(_label_value(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str) and (fraction := _FRACTION.match(value)):
        return f"{fraction[1]}over{fraction[2]}"
    return _LABEL_UNSAFE.sub("-", str(value))


def sweep_label(values: dict[str, Any]) -> str:
    """The readable name of one grid point: `key=value` joined by `,` in grid order (`lr=0.001,batch_size=64`)."""
    return ",".join(f"{key}={_label_value(value)}" for key, value in values.items())


def multiplier(value: Any, key: str = "width") -> Fraction:
    """`value` (a positive number, or a fraction `"p/q"`) as an exact Fraction; a ConfigError naming `key` else."""
    if isinstance(value, str) and (fraction := _FRACTION.match(value)):
        return Fraction(int(fraction[1]), int(fraction[2]))
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
        raise ConfigError(key, f"{value!r} is not a multiplier (a positive number, or a fraction such as '1/3')")
    return Fraction(str(value))  # the written decimal, exactly: 0.0625 is 1/16


def scaled(value: int, factor: Fraction) -> int:
    """`value x factor` rounded half up, exactly (204 x 1/8 = 25.5 -> 26; 5 x 1/2 = 2.5 -> 3)."""
    return math.floor(Fraction(int(value)) * factor + Fraction(1, 2))


def apply_multipliers(student: str, settings: dict[str, Any], width: Any = 1, depth: Any = 1,
                      key: str = "sweeps") -> dict[str, Any]:
    """`settings` with the student's width settings (and heads, at least 1) scaled by `width` and its depth
    setting by `depth`, each rounded half up (`scaled`); a ConfigError naming `key`.width / `key`.depth for a
    setting scaled to 0 or a hidden size no longer a multiple of the heads."""
    out = dict(settings)
    kind = STUDENT[student]
    factors = {"width": multiplier(width, f"{key}.width"), "depth": multiplier(depth, f"{key}.depth")}
    for name, setting in [*(("width", k) for k in kind.width_keys), ("depth", kind.depth_key)]:
        out[setting] = scaled(out[setting], factors[name])
        if out[setting] < 1:
            raise ConfigError(f"{key}.{name}", f"{name} {_label_value(width if name == 'width' else depth)} scales "
                                               f"{setting} {settings[setting]} to 0")
    if kind.heads_key is not None:
        heads = out[kind.heads_key] = max(1, scaled(out[kind.heads_key], factors["width"]))
        hidden = out[kind.width_keys[0]]
        if hidden % heads:
            raise ConfigError(f"{key}.width", f"width {_label_value(width)} gives hidden {hidden}, not a "
                                              f"multiple of its {heads} heads ({settings[kind.heads_key]} scaled)")
    return out


def enabled_sweeps(config: dict, task: str) -> dict[str, dict]:
    """The sweeps that run on `task`: enabled, and `tasks` (default: every task) naming it."""
    return {name: sweep for name, sweep in (config.get("sweeps") or {}).items()
            if sweep.get("enabled", True) and task in sweep.get("tasks", list(config["tasks"]))}


def sweep_points(sweep: dict, name: str) -> list[tuple[str, dict[str, Any]]]:
    """Every point of a sweep as (its config key, its values): the grid's product (the first key varies slowest),
    then the explicit `points` in their order."""
    keys = list(sweep.get("grid") or {})
    grid = [(f"sweeps.{name}.grid", dict(zip(keys, combo)))
            for combo in itertools.product(*(sweep["grid"][key] for key in keys))] if keys else []
    return grid + [(f"sweeps.{name}.points.{i}", dict(point)) for i, point in enumerate(sweep.get("points") or [])]


def sweep_variants(config: dict, task: str, name: str) -> list[Variant]:
    """Every point of sweep `name` on `task` (`sweep_points` order): the student's settings on `task`, then the
    sweep's `settings`, then the point's values, then its multipliers."""
    sweep = config["sweeps"][name]
    student = sweep["student"]
    base = student_settings(config, task, student) | copy.deepcopy(sweep.get("settings", {}))
    variants = []
    for key, values in sweep_points(sweep, name):
        settings = base | {k: copy.deepcopy(v) for k, v in values.items() if k not in MULTIPLIERS}
        settings = apply_multipliers(student, settings, values.get("width", 1), values.get("depth", 1), key)
        variants.append(Variant(task, student, f"{SWEEP_PREFIX}/{name}/{sweep_label(values)}", settings, values,
                                sweep=name))
    return variants


def all_variants(config: dict, task: str) -> list[Variant]:
    """Every extra run of `task`: the extra seeds of each model, then every enabled sweep's grid points."""
    models = ["teacher", *config["students"]]
    out = [v for model in models for v in seed_variants(config, task, model)]
    for name in enabled_sweeps(config, task):
        out += sweep_variants(config, task, name)
    return out


def find_variant(config: dict, task: str, model: str, name: str) -> Variant:
    """The variant `name` of `model` on `task`; a ConfigError when the config declares no such run."""
    for variant in all_variants(config, task):
        if variant.model == model and variant.name == name:
            return variant
    raise ConfigError("seeds / sweeps", f"no run {name!r} of {model} on {task} is declared")


def variant_names(config: dict) -> list[str]:
    """Every variant name of every task (for the workflow's wildcard constraint)."""
    return sorted({v.name for task in config["tasks"] for v in all_variants(config, task)})


def _check_keys(config: dict, name: str, sweep: dict) -> None:
    """ConfigError for a grid or point key that is neither a setting of the student nor a multiplier, a `settings`
    key that is no setting, points whose keys differ, or more than `MAX_GRID_POINTS` points."""
    key, student = f"sweeps.{name}", sweep["student"]
    known = set(config["students"][student]) | set(MULTIPLIERS)
    where = [(f"{key}.grid.{k}", k) for k in sweep.get("grid") or {}]
    where += [(f"{key}.points.{i}.{k}", k) for i, point in enumerate(sweep.get("points") or []) for k in point]
    for at, setting in where:
        if setting not in known:
            raise ConfigError(at, f"not a setting of students.{student} nor a multiplier ({', '.join(MULTIPLIERS)})")
    for setting in sweep.get("settings", {}):
        if setting not in config["students"][student]:
            raise ConfigError(f"{key}.settings.{setting}", f"not a setting of students.{student}")
    points = math.prod(len(v) for v in (sweep.get("grid") or {}).values()) * bool(sweep.get("grid"))
    points += len(sweep.get("points") or [])
    if points > MAX_GRID_POINTS:
        raise ConfigError(f"{key}.grid", f"{points} grid points, more than {MAX_GRID_POINTS} (each is one job per "
                                         "task); split the sweep or shorten its lists")
    first = None
    for at, values in sweep_points(sweep, name):
        first = first or (at, list(values))
        if set(values) != set(first[1]):
            raise ConfigError(at, f"keys {sorted(values)} differ from {first[0]}'s {sorted(first[1])}: every point "
                                  "of a sweep sets the same keys (its table has one column each)")


def check_variants(config: dict, schema_path: str | Path) -> None:
    """ConfigError naming the key for an enabled sweep of an unknown student or task, an unknown key (`_check_keys`),
    too many points, two points with one label, a bad multiplier (`apply_multipliers`), or a point whose settings
    the student's schema rejects. (A disabled sweep is only checked by the schema: it may name a student this
    config leaves out.)"""
    schema = yaml.safe_load(Path(schema_path).read_text())
    for name, sweep in (config.get("sweeps") or {}).items():
        if not sweep.get("enabled", True):
            continue
        key = f"sweeps.{name}"
        student = sweep["student"]
        if student not in config["students"]:
            raise ConfigError(f"{key}.student", f"unknown student {student!r} (students: {sorted(config['students'])})")
        for task in sweep.get("tasks", []):
            if task not in config["tasks"]:
                raise ConfigError(f"{key}.tasks", f"unknown task {task!r} (tasks: {sorted(config['tasks'])})")
        _check_keys(config, name, sweep)
        validator = jsonschema.Draft202012Validator(
            {"$defs": schema["$defs"], **schema["properties"]["students"]["properties"][student]})
        for task in sweep.get("tasks", list(config["tasks"])):
            variants = sweep_variants(config, task, name)
            labels = [v.name for v in variants]
            if len(set(labels)) != len(labels):
                raise ConfigError(f"{key}.points" if sweep.get("points") else f"{key}.grid",
                                  f"two points share a name: {labels}")
            for variant in variants:
                error = next(iter(validator.iter_errors(variant.settings)), None)
                if error is not None:
                    where = ".".join(str(p) for p in error.path)
                    raise ConfigError(key, f"grid point {variant.name} on {task}: students.{student}.{where}: "
                                      f"{error.message}")
                if student == "bert_s":  # a width or depth the teacher's layers cannot fill
                    check_init_settings(config, task, variant.settings,
                                        where=f"point {variant.name} on {task}: ")

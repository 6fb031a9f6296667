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
- ablations (config `ablations.<name>`): the product of labelled axes over settings of one student, each point
  trained with K seeds; every point and seed is the variant `ablations/<name>/<label>/seed<N>`, with the label
  `key=label,...` in axis order, e.g. `results/students/cola/bert_s/ablations/init/init=teacher,temperature=1/seed42/`.
  An axis is a list of scalars (labelled as sweep values are) or a mapping label -> value (any value: the form a
  mapping or list value needs). The seeds are the student's `seed`, `seed + 1`, ... `seed + K - 1`.

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

from kdprobe.config import check_init_settings, check_terms_settings, section, student_settings
from kdprobe.errors import ConfigError
from kdprobe.registry import STUDENT

MULTIPLIERS = ("width", "depth")
SEED_PREFIX = "seed"
SWEEP_PREFIX = "sweeps"
ABLATION_PREFIX = "ablations"
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
    `sweep` the sweep it belongs to (None for a seed), `ablation` the ablation (its `values`: the point's axis labels
    and `seed`)."""

    task: str
    model: str
    name: str
    settings: dict[str, Any] = field(compare=False)
    values: dict[str, Any] = field(compare=False)
    sweep: str | None = None
    ablation: str | None = None


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


def _enabled(config: dict, section_name: str, task: str) -> dict[str, dict]:
    return {name: entry for name, entry in (config.get(section_name) or {}).items()
            if entry.get("enabled", True) and task in entry.get("tasks", list(config["tasks"]))}


def enabled_sweeps(config: dict, task: str) -> dict[str, dict]:
    """The sweeps that run on `task`: enabled, and `tasks` (default: every task) naming it."""
    return _enabled(config, "sweeps", task)


def enabled_ablations(config: dict, task: str) -> dict[str, dict]:
    """The ablations that run on `task`: enabled, and `tasks` (default: every task) naming it."""
    return _enabled(config, "ablations", task)


def sweep_points(sweep: dict, name: str) -> list[tuple[str, dict[str, Any]]]:
    """Every point of a sweep as (its config key, its values): the grid's product (the first key varies slowest),
    then the explicit `points` in their order."""
    keys = list(sweep.get("grid") or {})
    grid = [(f"sweeps.{name}.grid", dict(zip(keys, combo)))
            for combo in itertools.product(*(sweep["grid"][key] for key in keys))] if keys else []
    return grid + [(f"sweeps.{name}.points.{i}", dict(point)) for i, point in enumerate(sweep.get("points") or [])]


def _point_settings(student: str, base: dict[str, Any], values: dict[str, Any], key: str) -> dict[str, Any]:
    """`base` with a point's values (deep copies) over it, then its multipliers (`apply_multipliers`)."""
    settings = base | {k: copy.deepcopy(v) for k, v in values.items() if k not in MULTIPLIERS}
    return apply_multipliers(student, settings, values.get("width", 1), values.get("depth", 1), key)


def sweep_variants(config: dict, task: str, name: str) -> list[Variant]:
    """Every point of sweep `name` on `task` (`sweep_points` order): the student's settings on `task`, then the
    sweep's `settings`, then the point's values, then its multipliers."""
    sweep = config["sweeps"][name]
    student = sweep["student"]
    base = student_settings(config, task, student) | copy.deepcopy(sweep.get("settings", {}))
    return [Variant(task, student, f"{SWEEP_PREFIX}/{name}/{sweep_label(values)}",
                    _point_settings(student, base, values, key), values, sweep=name)
            for key, values in sweep_points(sweep, name)]


def ablation_axes(ablation: dict, name: str) -> dict[str, dict[str, Any]]:
    """Each axis of ablation `name` as {label: value}: a list's scalars labelled as sweep values are
    (`_label_value`), a mapping as written; a list holding a mapping or a list is a ConfigError asking for the
    `{label: value}` form."""
    axes = {}
    for key, values in (ablation.get("axis") or {}).items():
        if isinstance(values, dict):
            axes[key] = {str(label): value for label, value in values.items()}
            continue
        for i, value in enumerate(values):
            if isinstance(value, (dict, list, tuple)):
                raise ConfigError(f"ablations.{name}.axis.{key}.{i}", f"{value!r} needs a label: write the axis as a "
                                  "mapping {label: value, ...}, e.g. {teacher: {from: teacher, every: 2}}")
        axes[key] = {_label_value(value): value for value in values}
    return axes


def ablation_points(ablation: dict, name: str) -> list[dict[str, str]]:
    """Every point of ablation `name` as {axis key: label}: the axes' product, the first key varying slowest."""
    axes = ablation_axes(ablation, name)
    return [dict(zip(axes, combo)) for combo in itertools.product(*(list(labels) for labels in axes.values()))]


def reference_point(ablation: dict, name: str) -> dict[str, str]:
    """The reference point's labels: `reference` (axis key -> label), the first label of each axis it omits."""
    axes = ablation_axes(ablation, name)
    given = {key: _label_value(label) for key, label in (ablation.get("reference") or {}).items()}
    return {key: given.get(key, next(iter(labels))) for key, labels in axes.items()}


def ablation_seeds(config: dict, task: str, name: str) -> list[int]:
    """The seeds of every point of ablation `name` on `task`: K (`seeds`, default 2) from the student's `seed` (its
    seed on `task` after the ablation's `settings`)."""
    ablation = config["ablations"][name]
    base = student_settings(config, task, ablation["student"]) | ablation.get("settings", {})
    return [int(base["seed"]) + i for i in range(int(ablation.get("seeds", 2)))]


def ablation_run(name: str, labels: dict[str, str], seed: int) -> str:
    """The variant name of one point and seed: `ablations/<name>/<label>/seed<N>`."""
    return f"{ABLATION_PREFIX}/{name}/{sweep_label(labels)}/{SEED_PREFIX}{seed}"


def ablation_variants(config: dict, task: str, name: str) -> list[Variant]:
    """Every point x seed of ablation `name` on `task` (points in `ablation_points` order, each point's seeds
    together): the student's settings on `task`, then the ablation's `settings`, then the point's values (then
    multipliers, as a sweep's), then the seed. Each variant's `values` are the point's labels and its `seed`."""
    ablation = config["ablations"][name]
    student = ablation["student"]
    axes = ablation_axes(ablation, name)
    base = student_settings(config, task, student) | copy.deepcopy(ablation.get("settings", {}))
    variants = []
    for labels in ablation_points(ablation, name):
        values = {key: axes[key][label] for key, label in labels.items()}
        settings = _point_settings(student, base, values, f"ablations.{name}.axis")
        variants += [Variant(task, student, ablation_run(name, labels, seed), settings | {"seed": seed},
                             labels | {"seed": seed}, ablation=name) for seed in ablation_seeds(config, task, name)]
    return variants


def all_variants(config: dict, task: str) -> list[Variant]:
    """Every extra run of `task`: the extra seeds of each model, then every enabled sweep's grid points, then every
    enabled ablation's points and seeds."""
    models = ["teacher", *config["students"]]
    out = [v for model in models for v in seed_variants(config, task, model)]
    for name in enabled_sweeps(config, task):
        out += sweep_variants(config, task, name)
    for name in enabled_ablations(config, task):
        out += ablation_variants(config, task, name)
    return out


def find_variant(config: dict, task: str, model: str, name: str) -> Variant:
    """The variant `name` of `model` on `task`; a ConfigError when the config declares no such run."""
    for variant in all_variants(config, task):
        if variant.model == model and variant.name == name:
            return variant
    raise ConfigError("seeds / sweeps / ablations", f"no run {name!r} of {model} on {task} is declared")


def variant_names(config: dict) -> list[str]:
    """Every variant name of every task (for the workflow's wildcard constraint)."""
    return sorted({v.name for task in config["tasks"] for v in all_variants(config, task)})


def _student_keys(schema: dict, student: str) -> set[str]:
    """The settings of `students.<student>`: the keys of its schema (additionalProperties false), whether this
    config sets them or not (`init`, `transfer`, absent from the thesis config, can be swept and ablated)."""
    return set(schema["$defs"][student]["properties"])


def _check_keys(config: dict, name: str, sweep: dict, schema: dict) -> None:
    """ConfigError for a grid or point key that is neither a setting of the student (`_student_keys`) nor a
    multiplier, a `settings` key that is no setting, points whose keys differ, or more than `MAX_GRID_POINTS`
    points."""
    key, student = f"sweeps.{name}", sweep["student"]
    settings = _student_keys(schema, student)
    known = settings | set(MULTIPLIERS)
    where = [(f"{key}.grid.{k}", k) for k in sweep.get("grid") or {}]
    where += [(f"{key}.points.{i}.{k}", k) for i, point in enumerate(sweep.get("points") or []) for k in point]
    for at, setting in where:
        if setting not in known:
            raise ConfigError(at, f"not a setting of students.{student} nor a multiplier ({', '.join(MULTIPLIERS)})")
    for setting in sweep.get("settings", {}):
        if setting not in settings:
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


def _check_student_and_tasks(config: dict, key: str, entry: dict) -> str:
    """The entry's student; a ConfigError naming `key`.student / `key`.tasks for an unknown student or task."""
    student = entry["student"]
    if student not in config["students"]:
        raise ConfigError(f"{key}.student", f"unknown student {student!r} (students: {sorted(config['students'])})")
    for task in entry.get("tasks", []):
        if task not in config["tasks"]:
            raise ConfigError(f"{key}.tasks", f"unknown task {task!r} (tasks: {sorted(config['tasks'])})")
    return student


def _check_runs(config: dict, key: str, student: str, task: str, variants: list[Variant], validator,
                what: str = "point") -> None:
    """ConfigError naming `key` for a run whose settings the student's schema rejects, (BERT_S) whose `init`
    the teacher's layers cannot fill (`check_init_settings`), or whose loss terms do not fit the student or the
    teacher (`check_terms_settings`)."""
    for variant in variants:
        error = next(iter(validator.iter_errors(variant.settings)), None)
        if error is not None:
            where = ".".join(str(p) for p in error.path)
            raise ConfigError(key, f"{what} {variant.name} on {task}: students.{student}.{where}: {error.message}")
        if student == "bert_s":  # a width or depth the teacher's layers cannot fill
            check_init_settings(config, task, variant.settings, where=f"point {variant.name} on {task}: ")
        check_terms_settings(config, task, student, variant.settings, where=f"point {variant.name} on {task}: ")


def _check_ablation(config: dict, name: str, ablation: dict, schema: dict) -> str:
    """ConfigError naming the key for an ablation's unknown student or task, an axis key or `settings` key that is
    no setting of the student (nor a multiplier; `seed` is no axis: the seeds are `seeds`), an empty axis, two
    labels of one axis alike, a `reference` key that is no axis or label that is not the axis's, or more than
    `MAX_GRID_POINTS` points; returns the student. A setting is a key of the student's schema (`schema`), set in
    this config or not (`init`, absent from the thesis config, is an axis of its ablations)."""
    key = f"ablations.{name}"
    student = _check_student_and_tasks(config, key, ablation)
    settings = _student_keys(schema, student)
    known = settings | set(MULTIPLIERS)
    axes = ablation_axes(ablation, name)
    for setting, values in (ablation.get("axis") or {}).items():
        if setting == "seed":
            raise ConfigError(f"{key}.axis.seed", f"not an axis: every point runs with the seeds `{key}.seeds` says")
        if setting not in known:
            raise ConfigError(f"{key}.axis.{setting}", f"not a setting of students.{student} nor a multiplier "
                                                       f"({', '.join(MULTIPLIERS)})")
        if not values or len(axes[setting]) != len(values):
            raise ConfigError(f"{key}.axis.{setting}", f"{values!r}: an axis needs at least one value, each with "
                                                       "its own label")
    for setting in ablation.get("settings", {}):
        if setting not in settings:
            raise ConfigError(f"{key}.settings.{setting}", f"not a setting of students.{student}")
    for setting, label in (ablation.get("reference") or {}).items():
        if setting not in axes:
            raise ConfigError(f"{key}.reference.{setting}", f"not an axis of the ablation (axes: {list(axes)})")
        if _label_value(label) not in axes[setting]:
            raise ConfigError(f"{key}.reference.{setting}", f"unknown label {label!r} (labels: {list(axes[setting])})")
    points = math.prod(len(labels) for labels in axes.values())
    if points > MAX_GRID_POINTS:
        raise ConfigError(f"{key}.axis", f"{points} points, more than {MAX_GRID_POINTS} (each is K jobs per task); "
                                         "split the ablation or shorten its axes")
    return student


def _validator(schema: dict, student: str):
    return jsonschema.Draft202012Validator(
        {"$defs": schema["$defs"], **schema["properties"]["students"]["properties"][student]})


def check_variants(config: dict, schema_path: str | Path) -> None:
    """ConfigError naming the key for an enabled sweep or ablation of an unknown student or task, an unknown key
    (`_check_keys`, `_check_ablation`), too many points, two points with one label, a bad multiplier
    (`apply_multipliers`), or a point whose settings the student's schema rejects (`_check_runs`). (A disabled
    sweep or ablation is only checked by the schema: it may name a student this config leaves out.)"""
    schema = yaml.safe_load(Path(schema_path).read_text())
    for name, sweep in (config.get("sweeps") or {}).items():
        if not sweep.get("enabled", True):
            continue
        key = f"sweeps.{name}"
        student = _check_student_and_tasks(config, key, sweep)
        _check_keys(config, name, sweep, schema)
        for task in sweep.get("tasks", list(config["tasks"])):
            variants = sweep_variants(config, task, name)
            labels = [v.name for v in variants]
            if len(set(labels)) != len(labels):
                raise ConfigError(f"{key}.points" if sweep.get("points") else f"{key}.grid",
                                  f"two points share a name: {labels}")
            _check_runs(config, key, student, task, variants, _validator(schema, student), "grid point")
    for name, ablation in (config.get("ablations") or {}).items():
        if ablation.get("enabled", True):
            student = _check_ablation(config, name, ablation, schema)
            for task in ablation.get("tasks", list(config["tasks"])):
                _check_runs(config, f"ablations.{name}", student, task, ablation_variants(config, task, name),
                            _validator(schema, student))

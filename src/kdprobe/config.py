"""Configuration access for the workflow: schema validation and per-task settings.

`tasks.<task>.<section>` overrides the top-level `<section>` for that task (for students:
`tasks.<task>.students.<student>`), so one task's edit invalidates only that task's jobs.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import ConfigError


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def validate(config: dict, schema_path: str | Path) -> None:
    """Validate against the JSON schema (defaults are not filled in); raise ConfigError naming the key."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.path), list(map(str, e.path))))
    if errors:
        err = errors[0]
        if err.validator == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            raise ConfigError(_key([*err.path, extra[0]]), "unknown key")
        raise ConfigError(_key(err.path), err.message)
    for task, entry in config["tasks"].items():
        for student in entry.get("students", {}):
            if student not in config["students"]:
                raise ConfigError(f"tasks.{task}.students.{student}", "unknown student")


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def section(config: dict, task: str, name: str) -> dict[str, Any]:
    """Top-level section `name` with `tasks.<task>.<name>` merged over it."""
    return deep_merge(config.get(name, {}), config["tasks"][task].get(name, {}))


def student_settings(config: dict, task: str, student: str) -> dict[str, Any]:
    override = config["tasks"][task].get("students", {}).get(student, {})
    return deep_merge(config["students"][student], override)


def shard_sizes(total: int, shards: int) -> list[int]:
    """Split `total` sentences over `shards` as evenly as possible (earlier shards take the remainder)."""
    return [total // shards + (i < total % shards) for i in range(shards)]


def probe_settings(config: dict, kind: str) -> dict[str, Any]:
    """Probe settings one job depends on: the shared ones plus only `kind`'s layers and pooling."""
    probe = config["probe"]
    out = {k: copy.deepcopy(v) for k, v in probe.items() if k not in ("layers", "pooling", "tasks", "data_dir")}
    out["layers"] = {kind: probe["layers"][kind]}
    out["pooling"] = {kind: probe["pooling"][kind]}
    return out

"""The config schema documents itself: every setting it accepts says what it does (`description:`), so the schema is
the one reference for config keys, and a key added without one fails here."""

from __future__ import annotations

import re

import pytest
import yaml

from smk import ROOT

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def _undocumented(node, where: str) -> list[str]:
    """Dotted names of the properties under `node` (any depth) that have no `description`."""
    missing = []
    if isinstance(node, dict):
        for name, sub in (node.get("properties") or {}).items():
            key = f"{where}.{name}" if where else name
            if not (isinstance(sub, dict) and sub.get("description")):
                missing.append(key)
            missing += _undocumented(sub, key)
        for keyword, sub in node.items():
            if keyword in ("properties", "if"):  # `if` tests keys, it declares none
                continue
            if keyword == "$defs":
                for name, definition in sub.items():
                    missing += _undocumented(definition, f"$defs.{name}")
            elif isinstance(sub, (dict, list)):
                for item in sub if isinstance(sub, list) else [sub]:
                    missing += _undocumented(item, where)
    return missing


def test_every_setting_has_a_description():
    schema = yaml.safe_load(SCHEMA.read_text())
    assert _undocumented(schema, "") == []


def test_the_check_finds_an_undocumented_key():
    schema = {"properties": {"a": {"type": "object", "description": "x",
                                   "properties": {"b": {"type": "integer"}}}},
              "$defs": {"d": {"properties": {"c": {"allOf": [{"properties": {"e": {}}}], "description": "y"}}}}}
    assert sorted(_undocumented(schema, "")) == ["$defs.d.c.e", "a.b"]


# ------------------------------------------------------------------------------------------------ bounds
def _thesis(**override):
    import copy

    from kdprobe.config import deep_merge

    return deep_merge(copy.deepcopy(yaml.safe_load((ROOT / "config" / "config.yaml").read_text())), override)


@pytest.mark.parametrize("override, key", [
    ({"students": {"bert_s": {"temperature": 1.0e+20}}}, "students.bert_s.temperature"),  # a NaN loss
    ({"students": {"bert_s": {"temperature": 1.0e-30}}}, "students.bert_s.temperature"),  # zero gradients
    ({"students": {"lstm_s": {"temperature": 101}}}, "students.lstm_s.temperature"),
    ({"augment": {"temperature": 0.01}}, "augment.temperature"),
    ({"seeds": {"teacher": 1000000}}, "seeds.teacher"),  # a dry run that never ends
    ({"tasks": {"sara": {"seeds": {"bert_s": 101}}}}, "tasks.sara.seeds.bert_s"),
    ({"sweeps": {"big": {"student": "lstm_s", "grid": {"lr": [1e-3 * (i + 1) for i in range(65)]}}}},
     "sweeps.big.grid.lr"),
])
def test_out_of_range_values_are_refused_naming_the_key(override, key):
    from kdprobe.config import validate
    from kdprobe.errors import ConfigError

    with pytest.raises(ConfigError, match=rf"config key '{re.escape(key)}'"):
        validate(_thesis(**override), SCHEMA)


def test_the_bounds_themselves_are_allowed():
    from kdprobe.config import validate
    from kdprobe.variants import check_variants

    grid = {"lr": [1e-3 * (i + 1) for i in range(16)], "dropout": [i / 20 for i in range(16)]}  # 256 points
    config = _thesis(students={"bert_s": {"temperature": 0.05}, "lstm_s": {"temperature": 100}},
                     augment={"temperature": 100}, seeds={"teacher": 100},
                     sweeps={"big": {"student": "lstm_s", "tasks": ["sara"], "grid": grid}})
    validate(config, SCHEMA)
    check_variants(config, SCHEMA)


def test_a_sweep_of_more_grid_points_than_the_bound_is_refused():
    from kdprobe.config import validate
    from kdprobe.errors import ConfigError
    from kdprobe.variants import MAX_GRID_POINTS, check_variants

    grid = {"lr": [1e-3 * (i + 1) for i in range(16)], "dropout": [i / 20 for i in range(17)]}  # 272 points
    config = _thesis(sweeps={"big": {"student": "lstm_s", "tasks": ["sara"], "grid": grid}})
    validate(config, SCHEMA)  # each list is short enough: their product is not
    with pytest.raises(ConfigError, match=rf"'sweeps.big.grid': 272 grid points, more than {MAX_GRID_POINTS}"):
        check_variants(config, SCHEMA)

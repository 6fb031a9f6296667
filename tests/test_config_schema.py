"""The config schema documents itself: every setting it accepts says what it does (`description:`), so the schema is
the one reference for config keys, and a key added without one fails here."""

from __future__ import annotations

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

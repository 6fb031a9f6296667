"""The closed vocabularies have one home each (`kdprobe.registry`), and the schema agrees with them: its enums of
tasks, students, formats, poolings and losses, its `resources` keys (rule and stage names), and the defaults it
states for optional settings (`kdprobe.settings`)."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch
import yaml

from kdprobe import registry
from kdprobe.cluster import SITE
from kdprobe.data.prepare import READERS
from kdprobe.loss_terms import TERM_KEYS, TERMS
from kdprobe.losses import LOSSES
from kdprobe.settings import OptimizerSettings, TrainSettings
from smk import ROOT

SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
DEFS = SCHEMA["$defs"]
RULES = ROOT / "workflow" / "rules"


def resolve(node: dict) -> dict:
    """A property's schema with its `$ref` (one level, `#/$defs/...`) and `allOf` parts merged under it."""
    out = {}
    for part in node.get("allOf", []):
        out |= resolve(part)
    if "$ref" in node:
        target = SCHEMA
        for key in node["$ref"].removeprefix("#/").split("/"):
            target = target[key]
        out |= resolve(target)
    return out | {k: v for k, v in node.items() if k not in ("$ref", "allOf")}


def test_tasks_and_students_of_the_schema_are_the_registries():
    assert SCHEMA["properties"]["tasks"]["propertyNames"]["enum"] == list(registry.TASKS)
    assert list(SCHEMA["properties"]["students"]["properties"]) == list(registry.STUDENTS)
    sweep = SCHEMA["properties"]["sweeps"]["additionalProperties"]["properties"]
    assert sweep["student"]["enum"] == list(registry.STUDENTS)
    assert sweep["tasks"]["items"]["enum"] == list(registry.TASKS)


def test_every_task_format_is_read_and_in_the_schema():
    formats = DEFS["data"]["properties"]["format"]["enum"]
    assert set(formats) == set(READERS)
    assert {f for task in registry.TASK.values() for f in task.formats} <= set(formats)
    assert set(registry.DEV_AS_TEST_FORMATS) == {"cola", "sst2"}  # GLUE hides its test labels


def test_metrics_and_headlines():
    from kdprobe.metrics import task_metrics
    import numpy as np

    gold = pred = np.array([0, 1, 1, 0])
    for name, task in registry.TASK.items():
        assert set(task_metrics(name, gold, pred)) == {"accuracy", *task.metrics}
        assert registry.HEADLINE_METRIC[name] == task.metrics[0]
        assert all(m in registry.METRIC_DISPLAY and m in registry.METRIC_UNITS for m in ("accuracy", *task.metrics))


def test_poolings_and_losses_match_the_schema():
    allowed = set(DEFS["pooling"]["items"]["enum"]) if "items" in DEFS["pooling"] else set()
    assert allowed == {p for poolings in registry.POOLINGS.values() for p in poolings}
    assert list(SCHEMA["properties"]["probe"]["properties"]["pooling"]["properties"]) == list(registry.PROBE_KINDS)
    assert set(DEFS["student_common"]["loss"]["oneOf"][0]["enum"]) == set(LOSSES)
    assert set(DEFS["loss_term"]["properties"]["term"]["enum"]) == set(TERMS) >= set(LOSSES)
    assert {k for keys in TERM_KEYS.values() for k in keys} | {"term", "weight"} == set(DEFS["loss_term"]["properties"])
    for kind in registry.STUDENT.values():
        props = DEFS[kind.name]["properties"]
        assert kind.default_loss in LOSSES
        assert kind.default_embeddings in props["embeddings"]["enum"]
        assert all(key in props for key in (*kind.width_keys, kind.depth_key)), kind.name


def test_student_modules_are_the_registrys():
    import importlib

    for kind in registry.STUDENT.values():
        module = importlib.import_module(kind.module)
        assert module.KIND == kind.name
        assert callable(module.reads_words) and callable(module.reads_teacher_ids)


@pytest.mark.parametrize("section,key,evals", [("teacher", "teacher", 1), ("gpt2", "gpt2", 10),
                                               ("bert_s", "students.bert_s", 1), ("lstm_s", "students.lstm_s", 1)])
def test_code_defaults_are_the_schemas(section, key, evals):
    """Every default the training settings apply is the one the schema states (`default:`) for that section."""
    props = {name: resolve(node) for name, node in DEFS[section]["properties"].items()}
    minimal = {"epochs": 1, "batch_size": 1, "seed": 0, "lr": 1.0, "optimizer": "adam"}
    train = TrainSettings.from_section(minimal, key, evals_per_epoch=evals)
    checked = 0
    for field in dataclasses.fields(TrainSettings):
        if field.name in props and "default" in props[field.name]:
            assert getattr(train, field.name) == props[field.name]["default"], (section, field.name)
            checked += 1
    assert checked >= 3, f"{section}: the schema states too few defaults"
    if "rho" in props:
        assert OptimizerSettings.from_section(minimal, key).rho == props["rho"]["default"]
    if "eps" in props:
        assert OptimizerSettings.from_section(minimal, key).eps == props["eps"]["default"]


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adams_epsilon_reaches_the_optimiser(name):
    """`eps` (the thesis's code: 1e-6 for both students) is Adam's and AdamW's, not torch's default."""
    section = {"lr": 1e-3, "optimizer": name, "betas": [0.9, 0.98], "eps": 1e-6}
    optimizer = OptimizerSettings.from_section(section, "students.bert_s").build(torch.nn.Linear(2, 2))
    assert all(group["eps"] == 1e-6 and group["betas"] == (0.9, 0.98) for group in optimizer.param_groups)


def _rule_names() -> set[str]:
    names = set()
    for path in RULES.glob("*.smk"):
        text = path.read_text()
        names |= set(re.findall(r"^\s*rule (\w+):", text, re.M))
        names |= set(re.findall(r"^use rule \w+ as (\w+)", text, re.M))
    return names


def test_resources_keys_are_rules_or_stages():
    keys = SCHEMA["properties"]["resources"]["propertyNames"]["enum"]
    stages = {path.stem for path in RULES.glob("*.smk")} - {"common"}
    rules = _rule_names() | {"demo_bert", "demo_gpt2", "demo_word2vec"}  # demo.smk builds these in a loop
    assert set(keys) - {"default", *SITE.values()} - stages - rules == set()
    for path in [ROOT / "config" / name for name in ("config.yaml", "demo.yaml", "laptop.yaml", "laptop-offline.yaml")]:
        used = set((yaml.safe_load(path.read_text()) or {}).get("resources", {}))
        assert used <= set(keys), (path.name, used - set(keys))


def test_every_rule_asks_for_resources_under_its_own_name():
    for path in RULES.glob("*.smk"):
        for match in re.finditer(r"rule_(?:threads|resources)\(\"(\w+)\"(?:, \"(\w+)\")?\)", path.read_text()):
            rule, stage = match.groups()
            assert rule in _rule_names() | {"demo_data"}, (path.name, rule)
            assert stage in (None, path.stem), (path.name, rule, stage)


def test_use_rule_parents_are_the_rule_files():
    """common.smk's USE_RULE_PARENTS (whose `resources` entry a `use rule` rule falls back to) names every
    `use rule PARENT as RULE` of the rule files, with the parent's own resources entry."""
    declared = dict(re.findall(r'^    "(\w+)": "(\w+)",$', (RULES / "common.smk").read_text().split("USE_RULE_PARENTS = {")[1]
                               .split("}")[0], re.M))
    found = {}
    for path in RULES.glob("*.smk"):
        found |= {child: parent for parent, child in re.findall(r"^use rule (\w+) as (\w+)", path.read_text(), re.M)}
    root = {child: parent for child, parent in found.items()}
    for child in root:  # a rule made from a made rule takes the first real rule's entry
        while root[child] in found:
            root[child] = found[root[child]]
    assert declared == root

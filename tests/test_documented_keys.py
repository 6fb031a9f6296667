"""Every config key the documentation mentions is one the schema accepts, and the sampler gets every `augment` key.

Mentions are collected from every page (README.md, docs/*.md, config/*.md), the comments of config/*.yaml and
the module docstrings of src/kdprobe: dotted paths whose first part is a config section (`teacher.max_length`, `tasks.<task>.data`,
`sources.models.*.output`), `key: value` examples (`compile: true`), `settings['key']`, and the keys listed in a
docstring's settings paragraph (`Settings (`augment` section): `max_length`, ...`). A mention the schema refuses
is documentation of a setting a user cannot set: the kind of drift this test exists to catch.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from kdprobe import config as kdconfig
from kdprobe.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
TOP = set(SCHEMA["properties"])
#: `<task>`, `{task}` or `*`: any key at that level
PLACEHOLDER = re.compile(r"<[^<>]+>|\{[^{}]+\}|\*")
PART = r"(?:[a-z0-9_]+|<[a-z_]+>|\{[a-z_]+\}|\*)"
DOTTED = re.compile(rf"(?<![\w./\-<{{])([a-z][a-z0-9_]*(?:\.{PART})+)(?![\w(/\-])")
KEY_VALUE = re.compile(r"^([a-z][a-z0-9_]*): \S")
SETTINGS_ITEM = re.compile(r"settings\[['\"]([a-z0-9_]+)['\"]\]")
FILE_SUFFIXES = {"json", "csv", "tsv", "txt", "yaml", "yml", "md", "py", "smk", "parquet", "pt", "bin", "gz", "zip",
                 "safetensors", "log", "lock", "rst"}
#: values, not keys, that settings paragraphs name beside the keys
LITERALS = {"true", "false", "null"}


# ------------------------------------------------------------------------------------------------ the schema
def _deref(node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        target = SCHEMA
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _branches(node: dict) -> list[dict]:
    """`node` and the alternatives it combines (allOf, oneOf, anyOf), references followed."""
    node = _deref(node)
    out = [node]
    for keyword in ("allOf", "oneOf", "anyOf"):
        for sub in node.get(keyword, []):
            out += _branches(sub)
    return out


def _children(node: dict, name: str) -> list[dict]:
    """The schemas of key `name` below `node` (a placeholder: of any key)."""
    out = []
    for branch in _branches(node):
        props = branch.get("properties") or {}
        extra = branch.get("additionalProperties")
        if PLACEHOLDER.fullmatch(name):
            out += list(props.values()) + ([extra] if isinstance(extra, dict) else [])
        elif name in props:
            out.append(props[name])
        elif isinstance(extra, dict):
            out.append(extra)
    return out


def _nodes(path: str) -> list[dict]:
    """The schemas of the dotted key `path` (placeholders match any key); none when the schema lacks it."""
    nodes = [SCHEMA]
    for name in path.split("."):
        nodes = [child for node in nodes for child in _children(node, name)]
    return nodes


def accepts(path: str) -> bool:
    return bool(_nodes(path))


def _all_keys(node) -> set[str]:
    """Every property name anywhere in the schema."""
    out = set()
    if isinstance(node, dict):
        out |= set(node.get("properties") or {})
        for value in node.values():
            out |= _all_keys(value)
    elif isinstance(node, list):
        for value in node:
            out |= _all_keys(value)
    return out


ALL_KEYS = _all_keys(SCHEMA)


def _values(node) -> set[str]:
    """Every enum member and const anywhere below `node` (references followed), as text."""
    out = set()
    if isinstance(node, dict):
        node = _deref(node)
        out |= {str(v) for v in node.get("enum", [])} | ({str(node["const"])} if "const" in node else set())
        for value in node.values():
            out |= _values(value)
    elif isinstance(node, list):
        for value in node:
            out |= _values(value)
    return out


ALL_VALUES = _values(SCHEMA)


# ------------------------------------------------------------------------------------------------ the mentions
def _is_code(path: str) -> bool:
    """`teacher.finetune`, `students.load_student`, `students.bilstm`: a name that kdprobe module `first` defines or
    imports, or a submodule of it, rather than a config key (read from the source: nothing is imported)."""
    first, second = path.split(".")[:2]
    package = ROOT / "src" / "kdprobe" / first
    if (package / f"{second}.py").exists() or (package / second).is_dir():
        return True
    source = package / "__init__.py" if package.is_dir() else package.with_suffix(".py")
    if not source.exists():
        return False
    names = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return second in names


def _config_paths(text: str) -> set[str]:
    """Dotted mentions in `text` that start at a config section (files and code attributes left out)."""
    out = set()
    for path in DOTTED.findall(text):
        parts = path.split(".")
        if parts[0] in TOP and parts[-1] not in FILE_SUFFIXES and not _is_code(path):
            out.add(path)
    return out


def _backticked(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", text)


def _comments(path: Path) -> str:
    return "\n".join(line.split("#", 1)[1] for line in path.read_text().splitlines() if "#" in line)


def _docstrings() -> dict[str, str]:
    out = {}
    for path in sorted((ROOT / "src" / "kdprobe").rglob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text()))
        if doc:
            out[str(path.relative_to(ROOT))] = doc
    return out


def _settings_paragraphs(doc: str) -> list[tuple[list[str], list[str]]]:
    """(sections, keys) of each `Settings (`x` section): `a`, `b` ...` / `Settings read: ...` list (the sentence
    after the colon)."""
    out = []
    for paragraph in re.split(r"\n\s*\n", doc):
        match = re.search(r"Settings(?: read)?(?: \(([^()]*)\))?:", paragraph)
        if not match:
            continue
        sections = _backticked(match.group(1) or "")
        sentence = re.split(r"\.\s+(?=[A-Z])", paragraph[match.end():])[0]
        keys = [t for t in _backticked(sentence) if re.fullmatch(r"[a-z][a-z0-9_]*", t)]
        out.append((sections, keys))
    return out


def pages() -> list[Path]:
    """Every page of the documentation: the README, docs/*.md and config/*.md (config/README.md)."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "config").glob("*.md"))]


def _mentions() -> list[tuple[str, str, str]]:
    """(where, kind, key) of every mention: kind `path` (dotted, checked as a path) or `key` (a bare key name)."""
    texts = {str(p.relative_to(ROOT)): p.read_text() for p in pages()}
    texts |= {str(p.relative_to(ROOT)): _comments(p) for p in sorted((ROOT / "config").glob("*.yaml"))}
    texts |= _docstrings()
    found = []
    for where, text in texts.items():
        found += [(where, "path", path) for path in sorted(_config_paths(text))]
        for span in _backticked(text):
            match = KEY_VALUE.match(span)
            if match:
                found.append((where, "key", match.group(1)))
        found += [(where, "key", key) for key in SETTINGS_ITEM.findall(text)]
    for where, doc in _docstrings().items():
        for sections, keys in _settings_paragraphs(doc):
            for key in keys:
                if sections:
                    values = set().union(*(_values(n) for s in sections for n in _nodes(s)))
                    if key in LITERALS or key in values:
                        continue
                    found += [(where, "path", f"{section}.{key}") for section in sections]
                elif key not in LITERALS | ALL_VALUES:
                    found.append((where, "key", key))
    return found


def test_every_documented_key_is_in_the_schema():
    refused = sorted({f"{where}: {key}" for where, kind, key in _mentions()
                      if not (accepts(key) if kind == "path" else key in ALL_KEYS)})
    assert refused == [], "documented but refused by the schema:\n" + "\n".join(refused)


def test_the_collector_reads_every_page():
    names = {str(p.relative_to(ROOT)) for p in pages()}
    assert {"README.md", "config/README.md", "docs/internals.md", "docs/configuration.md", "docs/cluster.md"} <= names
    assert {str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md")} <= names  # no page in a subfolder
    where = {where for where, _, _ in _mentions()}
    assert {"config/README.md", "docs/configuration.md", "docs/cluster.md"} <= where


def test_the_collector_finds_mentions_and_drift():
    found = {(kind, key) for _, kind, key in _mentions()}
    # known mentions of each kind are found ...
    assert ("path", "teacher.model") in found and ("path", "tasks.<task>.data") in found
    assert ("path", "augment.bf16") in found and ("path", "augment.compile") in found  # sampling's settings paragraph
    assert ("key", "compile") in found  # docs/internals.md: `compile: true`
    # ... and the checks refuse what the schema lacks
    assert accepts("students.bert_s.compile") and accepts("tasks.sara.augment.batch_size")
    assert accepts("sources.models.*.output") and accepts("resources.default.gpu_model")
    assert not accepts("augment.bf17") and not accepts("students.gru_s.layers") and "bf17" not in ALL_KEYS
    assert _config_paths("set `augment.bf17: true` (see `teacher.finetune`, `teacher.json`)") == {"augment.bf17"}


# ------------------------------------------------------------------------------------------------ shard settings
def _example(node: dict):
    """A valid value of a schema node."""
    node = _deref(node)
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return node["enum"][0]
    if "oneOf" in node:
        return _example(node["oneOf"][0])
    return {"boolean": True, "integer": 3, "number": 0.5, "string": "x"}[node["type"]]


def test_every_augment_key_reaches_the_sampler():
    keys = _deref(SCHEMA["$defs"]["augment"])["properties"]
    assert set(kdconfig.SHARD_SPLIT_KEYS) <= set(keys)
    # the generated kinds' sections reach rule generate only (kdconfig.generated_shard_settings), never the sampler
    assert set(kdconfig.GENERATED_SECTIONS) <= set(keys)
    keys = {key: node for key, node in keys.items() if key not in kdconfig.GENERATED_SECTIONS}
    augment = {key: _example(node) for key, node in keys.items()} | {"sentences": 10, "shards": 3, "seed": 100}
    config = {"augment": augment, "tasks": {"sst2": {"augment": {"temperature": 0.7}}, "cola": {}}}
    settings = [kdconfig.shard_settings(config, "sst2", i) for i in range(3)]
    for shard, got in enumerate(settings):
        passed = {k: v for k, v in augment.items() if k not in kdconfig.SHARD_SPLIT_KEYS} | {"temperature": 0.7}
        assert got == passed | {"sentences": [4, 3, 3][shard], "seed": 100 + shard}
    assert kdconfig.shard_settings(config, "cola", 0)["temperature"] == augment["temperature"]
    with pytest.raises(ConfigError, match="augment.shards"):
        kdconfig.shard_settings(config, "sst2", 3)


def test_predictions_carry_the_training_max_length():
    config = {"teacher": {"max_length": 128}, "students": {"bert_s": {"max_length": 64}, "lstm_s": {"max_length": 50}},
              "tasks": {"sara": {"teacher": {"max_length": 96}, "students": {"lstm_s": {"max_length": 40}}},
                        "cola": {}}}
    assert kdconfig.model_max_length(config, "sara", "teacher") == 96
    assert kdconfig.model_max_length(config, "cola", "teacher") == 128
    assert kdconfig.model_max_length(config, "sara", "lstm_s") == 40
    assert kdconfig.model_max_length(config, "sara", "bert_s") == 64

"""Configuration access for the workflow: schema validation and per-task settings.

`tasks.<task>.<section>` overrides the top-level `<section>` for that task (for students:
`tasks.<task>.students.<student>`), so one task's edit invalidates only that task's jobs.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable

import jsonschema
import yaml

from kdprobe.errors import ConfigError
from kdprobe.registry import EMBED_KIND, STUDENT, STUDENTS
from kdprobe.loss_terms import check_against_teacher as check_terms_against_teacher
from kdprobe.loss_terms import parse_terms
from kdprobe.student_init import check_against_teacher, init_model, init_source, spec_layers


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def restore_on_keys(node: Any) -> None:
    """In place: the key `on` of a loss term (`{term: hard_ce, on: gold}`) back from the `True` that YAML 1.1
    (PyYAML, and so Snakemake's config loading) reads an unquoted `on` as, wherever a mapping with a `term` key
    sits in the config (students, per-task overrides, sweep and ablation points)."""
    if isinstance(node, dict):
        if "term" in node and True in node and "on" not in node:
            node["on"] = node.pop(True)
        for value in node.values():
            restore_on_keys(value)
    elif isinstance(node, list):
        for value in node:
            restore_on_keys(value)


def validate(config: dict, schema_path: str | Path) -> None:
    """Validate against the JSON schema (defaults are not filled in; `restore_on_keys` first, in place); raise
    ConfigError naming the key."""
    restore_on_keys(config)
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.path), list(map(str, e.path))))
    if errors:
        err = errors[0]
        # oneOf / anyOf (a loss name or a list of terms): the alternative that got deepest names the key best
        while err.context and max(len(e.absolute_path) for e in err.context) > len(err.absolute_path):
            err = max(err.context, key=lambda e: len(e.absolute_path))
        if err.validator == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            raise ConfigError(_key([*err.absolute_path, extra[0]]), "unknown key")
        raise ConfigError(_key(err.absolute_path), err.message)
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


def read_configs(paths: Iterable[str | Path]) -> dict:
    """The config files `paths` merged as Snakemake merges `--configfile`: later over earlier (`deep_merge`)."""
    config: dict = {}
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            config = deep_merge(config, yaml.safe_load(fh) or {})
    return config


def section(config: dict, task: str, name: str) -> dict[str, Any]:
    """Top-level section `name` with `tasks.<task>.<name>` merged over it."""
    return deep_merge(config.get(name, {}), config["tasks"][task].get(name, {}))


def student_settings(config: dict, task: str, student: str) -> dict[str, Any]:
    override = config["tasks"][task].get("students", {}).get(student, {})
    return deep_merge(config["students"][student], override)


def model_max_length(config: dict, task: str, model: str) -> int:
    """The token limit `model` (teacher or a student) of `task` is trained with, and so predicts with."""
    settings = section(config, task, "teacher") if model == "teacher" else student_settings(config, task, model)
    return int(settings["max_length"])


#: `augment` keys that `shard_settings` turns into one shard's own values (`sentences`, `seed`) or that only
#: matter through them (`shards`); every other `augment` key reaches the sampler as it is, but the sections of the
#: generated kinds (`GENERATED_SECTIONS`), which only rule `generate` reads.
SHARD_SPLIT_KEYS = ("sentences", "shards", "seed")
#: `augment` sections of the generated transfer-set kinds (`generated_shard_settings`), not GPT-2 sampling settings.
GENERATED_SECTIONS = ("rules", "random_words")


def shard_settings(config: dict, task: str, shard: int) -> dict[str, Any]:
    """What shard `shard` of `task`'s augmentation depends on: its own size and seed, and every sampling setting."""
    aug = section(config, task, "augment")
    if not 0 <= shard < aug["shards"]:
        raise ConfigError("augment.shards", f"shard {shard} of {task} requested but augment.shards is {aug['shards']}")
    return {k: v for k, v in aug.items() if k not in SHARD_SPLIT_KEYS + GENERATED_SECTIONS} | {
        "sentences": shard_sizes(aug["sentences"], aug["shards"])[shard],
        "seed": aug["seed"] + shard,
    }


def generated_shard_settings(config: dict, task: str, kind: str, shard: int) -> dict[str, Any]:
    """What shard `shard` of `task`'s generated transfer set `kind` (rules | random_words) depends on: its seed
    (augment.seed + shard) and chunk size; rules: the shard's place (`shard`, `shards`: its share of the training
    sentences) and `augment.rules`; random_words: its share of `augment.random_words.sentences` (default
    `augment.sentences`)."""
    aug = section(config, task, "augment")
    if not 0 <= shard < aug["shards"]:
        raise ConfigError("augment.shards", f"shard {shard} of {task} requested but augment.shards is {aug['shards']}")
    own = dict(aug.get(kind) or {})
    out = {"seed": aug["seed"] + shard, "chunk_size": aug["chunk_size"]}
    if kind == "rules":
        return out | {"shard": shard, "shards": aug["shards"], "rules": own}
    return out | {"sentences": shard_sizes(int(own.get("sentences", aug["sentences"])), aug["shards"])[shard]}


def shard_sizes(total: int, shards: int) -> list[int]:
    """Split `total` sentences over `shards` as evenly as possible (earlier shards take the remainder)."""
    return [total // shards + (i < total % shards) for i in range(shards)]


#: The SentEval probing task that SentEval probes with logistic regression whatever the classifier's hidden size
#: (`senteval/probing.py`), here when `probe.word_content_logreg` is true.
LOGREG_PROBE_TASK = "word_content"


#: `probe` keys that choose jobs or their inputs, not what a probing task's table holds.
PROBE_JOB_KEYS = ("layers", "pooling", "tasks", "data_dir", "word_content_logreg", "embed_baseline",
                  "random_baseline")


def probe_settings(config: dict, kind: str, probe_task: str) -> dict[str, Any]:
    """Probe settings one probe job depends on: the shared ones, only `kind`'s layers and pooling (the embed.
    baseline has one layer, 0, its table), and `word_content_logreg` only for WordContent, whose logistic
    regression uses `grid.weight_decay` but neither `grid.hidden` nor `grid.dropout` (left out then, so editing
    them reruns no WordContent job, nor editing `classifiers`: WordContent is then probed by the linear probe)."""
    probe = config["probe"]
    shared = {k: copy.deepcopy(v) for k, v in probe.items() if k not in PROBE_JOB_KEYS}
    layers = [0] if kind == EMBED_KIND else probe["layers"][kind]
    out = shared | {"layers": {kind: layers}, "pooling": {kind: probe["pooling"][kind]}}
    if probe_task == LOGREG_PROBE_TASK:
        out["word_content_logreg"] = probe["word_content_logreg"]
        if probe["word_content_logreg"]:  # the linear probe alone (kdprobe.probe.run): no MLP setting counts
            out["grid"] = {"weight_decay": out["grid"]["weight_decay"]}
            out.pop("classifiers", None)
    return out


# ------------------------------------------------------------------------------------------------ model paths
#: A Hugging Face hub id: `name` or `org/name`, letters, digits, `-`, `_`, `.` (not first or last, no `..`/`--`).
_HUB_PART = r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9])?"
_HUB_ID = re.compile(rf"{_HUB_PART}(?:/{_HUB_PART})?")
#: Where this workflow's own rules write (fetch and demo rules): a path below it counts as produced by a rule,
#: and a missing producer is reported by Snakemake itself when it builds the DAG.
RULE_OUTPUT_PREFIXES = ("resources/",)
#: Config sections whose `model` setting is a model directory or a hub id.
MODEL_SECTIONS = ("teacher", "gpt2")


def is_hub_id(value: str) -> bool:
    """Whether `value` has the shape of a Hugging Face hub id (`name` or `org/name`)."""
    return bool(_HUB_ID.fullmatch(value)) and ".." not in value and "--" not in value


def is_local_model(value: str) -> bool:
    """Whether a model setting names a local path (rather than a hub id).

    Local: it exists here; or it starts with `/`, `./`, `../`, `~` or `resources/`; or it has more than one `/`
    or a backslash; or it is no valid hub id. Otherwise (`bert-base-uncased`, `distilbert/distilgpt2`) it is a
    hub id. To use a local directory that looks like a hub id, write it as `./name` or `./org/name`.
    """
    value = str(value)
    if os.path.exists(value):
        return True
    if value.startswith(("/", "./", "../", "~", *RULE_OUTPUT_PREFIXES)) or "\\" in value:
        return True
    return value.count("/") > 1 or not is_hub_id(value)


def model_settings(config: dict) -> list[tuple[str, str]]:
    """`(config key, value)` of every model setting: `teacher.model`, `gpt2.model` and per-task overrides."""
    out = [(f"{name}.model", config[name]["model"]) for name in MODEL_SECTIONS
           if isinstance(config.get(name), dict) and "model" in config[name]]
    for task, entry in (config.get("tasks") or {}).items():
        for name in MODEL_SECTIONS:
            value = ((entry or {}).get(name) or {}).get("model")
            if value is not None:
                out.append((f"tasks.{task}.{name}.model", value))
    return out


def produced_models(config: dict) -> set[str]:
    """Model directories a rule of this workflow produces: the `output` of every `sources.models` entry."""
    models = ((config.get("sources") or {}).get("models") or {})
    return {os.path.normpath(str(entry["output"])) for entry in models.values()
            if isinstance(entry, dict) and entry.get("output")}


def check_model_paths(config: dict, produced: Iterable[str] | None = None) -> None:
    """Refuse, at start-up, a model setting that names a local path nothing provides.

    A setting that `is_local_model` must exist, or be produced by a rule: a `sources.models.*.output` (or one
    of `produced`), or a path below `RULE_OUTPUT_PREFIXES`. Hub ids pass (they are downloaded, or read from
    the Hugging Face cache offline). Raises `ConfigError` naming the key, e.g. `teacher.model`.
    """
    made = produced_models(config) | {os.path.normpath(p) for p in (produced or ())}
    for key, value in model_settings(config):
        value = str(value)
        if not is_local_model(value) or os.path.exists(value):
            continue
        if os.path.normpath(value) in made or value.startswith(RULE_OUTPUT_PREFIXES):
            continue
        hint = " (`~` is not expanded: write the full path)" if value.startswith("~") else ""
        raise ConfigError(
            key,
            f"local model path {value!r} does not exist and no rule produces it{hint}; give an existing "
            "Hugging Face model directory, a `sources.models` entry's output, or a hub id (`name` or `org/name`)",
        )


# ------------------------------------------------------------------------------------------------ probe layers
def _model_config(path: str) -> dict[str, Any] | None:
    """The `config.json` of a local Hugging Face model directory (None when there is none here)."""
    config_file = Path(path) / "config.json"
    if not config_file.is_file():
        return None
    try:
        data = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # the job that loads the model reports a broken directory
    return data if isinstance(data, dict) else None


def _model_depth(path: str) -> int | None:
    """Layers above the embeddings of a local Hugging Face model directory (None when unknown here)."""
    data = _model_config(path)
    if data is None:
        return None
    depth = data.get("num_hidden_layers", data.get("n_layer"))
    return depth if isinstance(depth, int) and not isinstance(depth, bool) else None


#: Student settings that only training reads: the embed. baseline's table (a student built, not trained) does not
#: depend on them, so they are left out of rule embed_model's params (`embed_table_settings`).
TRAINING_ONLY = ("loss", "mse_reduction", "temperature", "optimizer", "lr", "rho", "betas", "eps", "batch_size",
                 "epochs", "schedule", "warmup_epochs", "clip_norm", "save_every_steps", "eval_every_steps",
                 "eval_batch_size", "bf16", "compile")


def embed_table_settings(config: dict, task: str, student: str) -> dict[str, Any]:
    """The settings of `task`'s `student` that its untrained token table depends on (all but `TRAINING_ONLY`:
    the architecture too, whose initialisation comes before the table's in the seeded random stream)."""
    return {k: v for k, v in student_settings(config, task, student).items() if k not in TRAINING_ONLY}


def _probe_baseline(config: dict, key: str, task: str) -> bool:
    """`probe.<key>` (true, false or a list of tasks; absent: false) for `task`."""
    value = config["probe"].get(key, False)
    return task in value if isinstance(value, list) else bool(value)


def embed_baseline(config: dict, task: str) -> bool:
    """Whether `task`'s students get an embed. baseline probed (`probe.embed_baseline`: true, false or tasks)."""
    return _probe_baseline(config, "embed_baseline", task)


def random_baseline(config: dict, task: str) -> bool:
    """Whether `task`'s students get a random-encoder baseline probed, `{student}_random`, and with it the random
    teacher in scope `pretrained` (`probe.random_baseline`: true, false or tasks; `kdprobe.random_models`)."""
    return _probe_baseline(config, "random_baseline", task)


def check_probe_layers(config: dict) -> None:
    """Refuse, at start-up, a `probe.layers.<kind>` entry beyond the depth of the model it probes.

    Depths known before any job runs: a teacher given as an existing local directory (its `config.json`; the
    fine-tuned teacher has the depth of the model it starts from), BERT_S and LSTM_S (`students.<kind>.layers`,
    per-task overrides included: transformer or BiLSTM layers). A hub id not yet downloaded is checked when its probe job
    loads it (`kdprobe.probe.encoders.resolve_layers`). Layer 0 (embeddings) exists for the BERT models (teachers,
    BERT_S), not for LSTM_S.
    """
    probe_layers = (config.get("probe") or {}).get("layers") or {}
    depths: dict[str, list[tuple[int, int, str]]] = {}  # kind -> [(first layer, depth, model)]
    teacher_models = {config["teacher"]["model"]} | {
        (entry.get("teacher") or {}).get("model") for entry in config["tasks"].values()
    } - {None}
    for model in sorted(teacher_models):
        depth = _model_depth(str(model))
        if depth is not None:
            depths.setdefault("teacher", []).append((0, depth, str(model)))
            if model == config["teacher"]["model"]:
                depths.setdefault("pretrained", []).append((0, depth, str(model)))
    students = config.get("students") or {}
    for task in config["tasks"]:
        for kind in STUDENTS:
            if kind in students:
                depth = int(student_settings(config, task, kind)[STUDENT[kind].depth_key])
                first = 1 if kind == "lstm_s" else 0  # LSTM_S has no embedding layer to probe
                depths.setdefault(kind, []).append((first, depth, f"{kind.upper()} of {task}"))
    for kind, spec in probe_layers.items():
        if not isinstance(spec, list):
            continue  # `all`
        for first, depth, model in depths.get(kind, []):
            for layer in spec:
                if not first <= layer <= depth:
                    valid = f"0..{depth}, 0 = embeddings" if first == 0 else f"1..{depth}"
                    raise ConfigError(f"probe.layers.{kind}", f"layer {layer} does not exist: the {kind} model "
                                                              f"{model} has depth {depth} (valid layers {valid})")


# ------------------------------------------------------------------------------------------ student init
def init_model_path(settings: dict[str, Any]) -> str | None:
    """`student_init.init_model`, refusing a hub id (`is_local_model`): the pre-trained model must be a local
    directory, an input of rule distil, so that its content keys the run."""
    model = init_model(settings)
    if model is not None and not is_local_model(model):
        raise ConfigError("students.bert_s.init.model", f"{model!r} is a hub id; give a local directory (fetch it "
                                                        "with a sources: entry, docs/cluster.md), so its content "
                                                        "keys the run")
    return model


def check_init_settings(config: dict, task: str, settings: dict[str, Any], where: str = "") -> None:
    """Refuse BERT_S `settings` of `task` whose `init` cannot start from the teacher or the pre-trained model it
    names (`kdprobe.student_init`): the setting itself, and, when the model (`init.model`, or `task`'s
    `teacher.model`: the fine-tuned teacher has the architecture it starts from) is a local directory with a
    `config.json`, the widths, `max_length` and layers against it (a model not yet here is checked when the
    distil job builds the student). `where` goes before the message."""
    source = init_source(settings)
    teacher_model = str(section(config, task, "teacher")["model"])
    model = init_model_path(settings) if source == "pretrained" else teacher_model
    where_model = f"the pre-trained model {model}" if source == "pretrained" else f"the teacher {model} of {task}"
    try:
        teacher = _model_config(model) if source != "random" else None
        if teacher is None:
            spec_layers(settings)
        else:
            check_against_teacher(settings, teacher, where=where_model)
    except ConfigError as err:
        raise ConfigError(err.key, f"{where}{err.message}") from None


def check_student_init(config: dict) -> None:
    """At start-up: `check_init_settings` of every task's `students.bert_s` (per-task overrides merged)."""
    if "bert_s" not in (config.get("students") or {}):
        return
    for task in config["tasks"]:
        check_init_settings(config, task, student_settings(config, task, "bert_s"))


# ------------------------------------------------------------------------------------------ loss terms
def check_terms_settings(config: dict, task: str, student: str, settings: dict[str, Any], where: str = "") -> None:
    """`settings`' `loss`, when a list of terms (`kdprobe.loss_terms`), checked against the student, and its hidden
    and attention terms against `task`'s teacher's `config.json` when `teacher.model` is a local directory (else
    the distil job checks them when it loads the teacher). `where` goes before the message."""
    if not isinstance(settings.get("loss"), list):
        return
    try:
        terms = parse_terms(settings, f"students.{student}", student)
        model = str(section(config, task, "teacher")["model"])
        teacher = _model_config(model) if any(t.needs_teacher for t in terms) else None
        if teacher is not None:
            check_terms_against_teacher(terms, settings, teacher, where=f"the teacher {model} of {task}")
    except ConfigError as err:
        raise ConfigError(err.key, f"{where}{err.message}") from None


def check_loss_terms(config: dict) -> None:
    """At start-up: `check_terms_settings` of every task's students (per-task overrides merged)."""
    for task in config["tasks"]:
        for student in config.get("students") or {}:
            check_terms_settings(config, task, student, student_settings(config, task, student))
"""Students initialised from the teacher (`students.bert_s.init`): the setting read and checked against the
teacher's architecture. Torch-free, so that `kdprobe.config`'s start-up checks read it; `kdprobe.students.bert_s`
(`init_from_teacher`) copies the tensors.

- `init` absent, or `{from: random}`: the student's own random initialisation (as before this setting existed).
- `{from: teacher, layers: [l_0, ..., l_{L-1}]}`: the student's encoder layer k (0-based) starts as the
  teacher's encoder layer l_k (0-based: a 12-layer teacher has layers 0..11); L, the number of entries, is
  `students.bert_s.layers`. DistilBERT (Sanh et al. 2019): `[0, 2, 4, 7, 9, 11]` of 12 for 6 layers.
- `{from: teacher, every: n}`: l_k = k * n for k = 0..L-1 (`every: 2` with 5 layers: 0, 2, 4, 6, 8); the last,
  (L - 1) * n, must be a layer of the teacher. `every: 1` is the teacher's first L layers.
- `{from: pretrained, model: <directory>, layers: [...] | every: n}`: the same copy, from a pre-trained BERT
  (before any fine-tuning, e.g. the teacher's own `resources/models/bert-large-uncased` or a BERT-base) cut to
  the chosen layers: "a truncated pre-trained model". `model` is a local directory (a `sources:` entry fetches a
  hub model into one; a hub id is refused: the rule takes the directory as an input, so its content keys the run),
  and its vocabulary must be the teacher's (the student reads the teacher's wordpieces), checked at build time.
- `layers` and `every` exclude each other; null stands for not given (config files and per-task overrides merge
  key by key: `every: null` clears an `every` merged from elsewhere). With `from: random` both are ignored, so a
  per-task `init: {from: random}` switches one task back to a random start.

Besides the layers, the embeddings are copied (word embeddings: the rows of the tokenizer's ids; position
embeddings: the first `max_length` rows; token types; their LayerNorm) and the pooler; the classifier is not (it
starts random, as every student's). Tensors are copied as they are, so the student's width must be the
teacher's: `hidden`, `intermediate` and `heads` equal to its `hidden_size`, `intermediate_size` and
`num_attention_heads`, `max_length` at most its `max_position_embeddings`, and its activation and LayerNorm
epsilon those BERT_S builds with (`gelu`, 1e-12).

Embedding setups (`embeddings`, `embedding_mode`, `channel_combine`): the word table comes from the teacher, so
the student must read the teacher's wordpieces: `embeddings: random` or `teacher` (both use the teacher's
tokenizer; with teacher init they start alike: every word table, static and trained channel alike, holds the
teacher's vectors) in any mode. Refused: `embeddings: word2vec` (a word vocabulary of the transfer set, not the
teacher's wordpieces: there is no teacher row for a word) and multichannel with `channel_combine: concat` (its
Linear(2 x width, hidden) between the tables and the embedding LayerNorm is random, so the copied layers would not
read what the teacher's read).
"""

from __future__ import annotations

from typing import Any

from kdprobe.errors import ConfigError

SOURCES = ("random", "teacher", "pretrained")
SECTION = "students.bert_s"
#: BERT_S's activation and LayerNorm epsilon (transformers' `BertConfig` defaults, which BERT_S builds with)
STUDENT_ACT, STUDENT_LAYER_NORM_EPS = "gelu", 1e-12
#: (student setting, teacher `config.json` key): the widths that must agree for the tensors to be copied as they are
WIDTHS = (("hidden", "hidden_size"), ("intermediate", "intermediate_size"), ("heads", "num_attention_heads"))


def init_source(settings: dict) -> str:
    """`random` (also when `init` is absent) or `teacher`; anything else is a ConfigError naming the key."""
    spec = settings.get("init") or {}
    if not isinstance(spec, dict):
        raise ConfigError(f"{SECTION}.init", f"{spec!r} is not a mapping such as {{from: teacher, every: 2}}")
    source = spec.get("from", "random")
    if source not in SOURCES:
        raise ConfigError(f"{SECTION}.init.from", f"{source!r} is not one of {list(SOURCES)}")
    return source


def init_model(settings: dict) -> str | None:
    """The pre-trained model of `{from: pretrained, model: ...}` as written (None for another source); a missing
    `model` is a ConfigError naming `init.model` (`config.init_model_path` also refuses a hub id)."""
    if init_source(settings) != "pretrained":
        return None
    model = settings["init"].get("model")
    if not model:
        raise ConfigError(f"{SECTION}.init.model", "from: pretrained needs model: the pre-trained BERT directory")
    return str(model)


def _int(value: Any, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(key, f"{value!r} is not an integer of at least {minimum}")
    return value


def spec_layers(settings: dict) -> list[int] | None:
    """The teacher layer of each student layer (`layers`, or `every` expanded), checked against the student's
    own settings only: one per `students.bert_s.layers`, an embedding setup that reads the teacher's wordpieces.
    None for a random initialisation."""
    if init_source(settings) == "random":
        return None  # `layers` and `every` are ignored: a per-task `{from: random}` switches a task back
    spec = {k: v for k, v in settings["init"].items() if v is not None}  # null: not given (clears a merged key)
    if ("layers" in spec) == ("every" in spec):
        raise ConfigError(f"{SECTION}.init", f"with `from: {init_source(settings)}`, give `layers` (a list) or `every` "
                                             "(a number), one of them (null clears one merged from another config)")
    depth = _int(settings.get("layers"), f"{SECTION}.layers", 1)
    if "every" in spec:
        step = _int(spec["every"], f"{SECTION}.init.every", 1)
        layers = [k * step for k in range(depth)]
    else:
        if not isinstance(spec["layers"], list):
            raise ConfigError(f"{SECTION}.init.layers", f"{spec['layers']!r} is not a list of teacher layers")
        layers = [_int(layer, f"{SECTION}.init.layers", 0) for layer in spec["layers"]]
        if len(layers) != depth:
            raise ConfigError(f"{SECTION}.init.layers", f"{len(layers)} teacher layers {layers} for a student of "
                                                        f"{depth} layers ({SECTION}.layers): give one per layer")
    embeddings = settings.get("embeddings")
    if embeddings not in ("random", "teacher"):
        raise ConfigError(f"{SECTION}.embeddings", f"{embeddings!r} cannot start from the teacher: teacher init copies "
                                                   "the teacher's wordpiece embeddings, so the student must read its "
                                                   "wordpieces (embeddings: random or teacher)")
    if settings.get("embedding_mode") == "multichannel" and settings.get("channel_combine") == "concat":
        raise ConfigError(f"{SECTION}.channel_combine", "concat puts a random Linear(2 x width, hidden) between the "
                                                        "teacher's word vectors and its layers; with init from the "
                                                        "teacher use channel_combine: mean")
    return layers


def check_against_teacher(settings: dict, teacher: dict[str, Any], where: str = "the teacher") -> list[int] | None:
    """`spec_layers`, and (teacher init) the student's widths, `max_length` and the layers against the teacher's
    `config.json` (`teacher`, a dict); a ConfigError names the student's key and gives the teacher's value."""
    layers = spec_layers(settings)
    if layers is None:
        return None
    if teacher.get("model_type", "bert") != "bert":
        raise ConfigError(f"{SECTION}.init", f"{where} is a {teacher['model_type']!r} model; BERT_S starts from BERT "
                                             "teachers only (model_type bert)")
    for key, teacher_key in WIDTHS:
        if key in settings and teacher.get(teacher_key) is not None and settings[key] != teacher[teacher_key]:
            raise ConfigError(f"{SECTION}.{key}", f"{settings[key]}, but {where} has {teacher_key} "
                                                  f"{teacher[teacher_key]}: init from the teacher copies its tensors "
                                                  "as they are, so the widths must match")
    positions = teacher.get("max_position_embeddings")
    if positions is not None and settings.get("max_length", 0) > positions:
        raise ConfigError(f"{SECTION}.max_length", f"{settings['max_length']}, but {where} has "
                                                   f"max_position_embeddings {positions}")
    depth = teacher.get("num_hidden_layers")
    if depth is not None and max(layers) >= depth:
        key = "every" if settings["init"].get("every") is not None else "layers"
        raise ConfigError(f"{SECTION}.init.{key}", f"teacher layer {max(layers)} does not exist: {where} has "
                                                   f"num_hidden_layers {depth} (layers 0..{depth - 1}); "
                                                   f"the student's layers would come from {layers}")
    for teacher_key, ours in (("hidden_act", STUDENT_ACT), ("layer_norm_eps", STUDENT_LAYER_NORM_EPS)):
        if teacher.get(teacher_key, ours) != ours:
            raise ConfigError(f"{SECTION}.init", f"{where} has {teacher_key} {teacher[teacher_key]!r}, BERT_S "
                                                 f"builds with {ours!r}: its copied layers would compute otherwise")
    if teacher.get("type_vocab_size", 2) < 2:
        raise ConfigError(f"{SECTION}.init", f"{where} has type_vocab_size {teacher['type_vocab_size']}; BERT_S has 2")
    return layers

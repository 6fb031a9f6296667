"""The loss as named, weighted terms (`students.<student>.loss` given as a list): the setting read and checked.
Torch-free, so that `kdprobe.config`'s start-up checks read it; `kdprobe.losses` computes the terms and
`kdprobe.distil_terms` runs them on a batch.

`loss` is a string as before (`soft_ce` with the section's `temperature`, `mse` with its `mse_reduction`: one
term of weight 1, the same numbers) or a list of terms, each `{term: <kind>, weight: <float, default 1>, ...}`; the
total is the weighted sum. Kinds and their keys:
- `soft_ce`: `temperature` (default the section's), `temperature_schedule` `constant` (default) or `linear` with
  `final_temperature` (`temperature_at`).
- `mse`: `reduction` `sum` | `mean` (default the section's `mse_reduction`).
- `hard_ce`: `on` `gold` (the transfer set's `label` column: mean cross-entropy over the batch's labelled rows, 0
  for a batch without any) or `teacher_argmax`.
- `hidden_mse`, `hidden_cosine`: `map` `{student_layer: teacher_layer}` in hidden-state indices as Hugging Face's
  `output_hidden_states` numbers them (0 = the embedding output, k = the output of transformer layer k), summed
  over the pairs; `projection` `linear` (default: a learned Linear(student hidden, teacher hidden) per pair) or
  `none` (refused when the widths differ).
- `attention_mse`: `map` in the same numbering, so layers are 1-based (k = the attention probabilities of
  transformer layer k, whose output is hidden state k; 0 has no attention and is refused), summed over the pairs;
  `heads` `match` (head by head: equal head counts) or `average` (the head-averaged maps).
Hidden and attention terms read the teacher's internal states of the same tokens: BERT_S on the teacher's
wordpieces only (`TEACHER_TERMS`). Each term's curve column is `loss_<name>`: its kind, or `<kind>_<index>` when
the kind occurs more than once. A bad term is a ConfigError naming the key, e.g. `students.bert_s.loss.2.map`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from kdprobe.errors import ConfigError

#: The string form's names (`losses.LOSSES`), each one term of weight 1.
LOGIT_TERMS = ("soft_ce", "mse")
#: Terms on the teacher's internal states: they need the teacher on the fly in the distil job.
TEACHER_TERMS = ("hidden_mse", "hidden_cosine", "attention_mse")
TERMS = (*LOGIT_TERMS, "hard_ce", *TEACHER_TERMS)
#: The keys each kind takes besides `term` and `weight`.
TERM_KEYS = {
    "soft_ce": ("temperature", "temperature_schedule", "final_temperature"),
    "mse": ("reduction",),
    "hard_ce": ("on",),
    "hidden_mse": ("map", "projection"),
    "hidden_cosine": ("map", "projection"),
    "attention_mse": ("map", "heads"),
}
SCHEDULES = ("constant", "linear")
HARD_TARGETS = ("gold", "teacher_argmax")
PROJECTIONS = ("linear", "none")
HEADS = ("match", "average")
MSE_REDUCTIONS = ("sum", "mean")


@dataclass(frozen=True)
class LossTerm:
    """One term of the loss: its `kind`, curve `name` (`loss_<name>`), `weight` and the kind's own settings; `key`
    is its config key (`students.bert_s.loss.2`)."""

    key: str
    kind: str
    name: str
    weight: float = 1.0
    temperature: float = 1.0  # soft_ce
    schedule: str = "constant"  # soft_ce
    final_temperature: float | None = None  # soft_ce, linear schedule
    reduction: str = "sum"  # mse
    on: str = "gold"  # hard_ce
    layer_map: tuple[tuple[int, int], ...] = ()  # hidden_*, attention_mse: (student, teacher) pairs
    projection: str = "linear"  # hidden_*
    heads: str = "match"  # attention_mse

    @property
    def needs_teacher(self) -> bool:
        return self.kind in TEACHER_TERMS

    def temperature_at(self, step: int, total: int) -> float:
        """soft_ce's temperature for the optimiser step after `step` of `total` steps. `linear`: T0 + (T1 - T0) x
        step / total, the form of TextBrewer's linear weight schedulers (airaria/TextBrewer @ 2c105fa,
        src/textbrewer/schedulers.py lines 5-9, `linear_decay_weight_scheduler(x) = 1 - x`, applied in
        distiller_basic.py lines 165-171 with x = global_step / total_global_steps after each step; TextBrewer's
        own temperature schedulers, lines 11-46, are constant or per-example, not scheduled over steps)."""
        if self.schedule == "constant" or total <= 0:
            return self.temperature
        return self.temperature + (self.final_temperature - self.temperature) * min(step, total) / total

    def describe(self) -> str:
        extra = {"soft_ce": lambda: f"T={self.temperature:g}" + (
                     f"->{self.final_temperature:g} linear" if self.schedule == "linear" else ""),
                 "mse": lambda: self.reduction, "hard_ce": lambda: self.on,
                 "attention_mse": lambda: f"map {dict(self.layer_map)}, heads {self.heads}"}.get(
            self.kind, lambda: f"map {dict(self.layer_map)}, projection {self.projection}")()
        return f"{self.weight:g} x {self.name} ({extra})"


def _number(value: Any, key: str, low: float | None = None, high: float | None = None, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(key, f"{value!r} is not a number")
    value = float(value)
    if value != value or (low is not None and (value <= low if strict else value < low)) or \
            (high is not None and value > high):
        bound = f"{'above' if strict else 'at least'} {low:g}" + (f" and at most {high:g}" if high is not None else "")
        raise ConfigError(key, f"{value:g} must be {bound}")
    return value


def _choice(spec: Mapping[str, Any], name: str, options: tuple[str, ...], default: str, key: str) -> str:
    value = spec.get(name, default)
    if value not in options:
        raise ConfigError(f"{key}.{name}", f"{value!r} is not one of {list(options)}")
    return value


def _layer(value: Any, key: str) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(key, f"layer {value!r} is not an integer of at least 0")
    return value


def _layer_map(spec: Mapping[str, Any], kind: str, depth: int, key: str) -> tuple[tuple[int, int], ...]:
    """`map`'s (student, teacher) pairs, student layers checked against the student's `depth` (teacher layers:
    `check_against_teacher`)."""
    value = spec.get("map")
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(f"{key}.map", f"{value!r} is not a mapping {{student_layer: teacher_layer}} such as {{1: 4}}")
    first = 1 if kind == "attention_mse" else 0
    pairs = sorted((_layer(s, f"{key}.map"), _layer(t, f"{key}.map.{s}")) for s, t in value.items())
    what = "attention maps of layers 1.." if first else "hidden states 0 (the embeddings).."
    for student, teacher in pairs:
        if not first <= student <= depth:
            raise ConfigError(f"{key}.map", f"student layer {student} does not exist: {kind} matches the {what}"
                                            f"{depth} ({key.rsplit('.', 2)[0]}.layers {depth})")
        if teacher < first:
            raise ConfigError(f"{key}.map.{student}", f"teacher layer {teacher}: {kind} matches the {what}")
    if len({s for s, _ in pairs}) != len(pairs):
        raise ConfigError(f"{key}.map", "a student layer is mapped twice")
    return tuple(pairs)


def _term(spec: Any, index: int, section: Mapping[str, Any], key: str, depth: int) -> LossTerm:
    key = f"{key}.{index}"
    if not isinstance(spec, Mapping):
        raise ConfigError(key, f"{spec!r} is not a mapping such as {{term: soft_ce, weight: 1}}")
    kind = spec.get("term")
    if kind not in TERMS:
        raise ConfigError(f"{key}.term", f"{kind!r} is not one of {list(TERMS)}")
    extra = sorted(set(spec) - {"term", "weight", *TERM_KEYS[kind]})
    if extra:
        raise ConfigError(f"{key}.{extra[0]}", f"unknown key for term {kind} (it takes {list(TERM_KEYS[kind])})")
    out: dict[str, Any] = {"key": key, "kind": kind, "name": kind,
                           "weight": _number(spec.get("weight", 1.0), f"{key}.weight", 0.0)}
    if kind == "soft_ce":
        out["temperature"] = _number(spec.get("temperature", section.get("temperature", 1.0)),
                                     f"{key}.temperature", 0.05, 100)
        out["schedule"] = _choice(spec, "temperature_schedule", SCHEDULES, "constant", key)
        if out["schedule"] == "linear":
            if spec.get("final_temperature") is None:
                raise ConfigError(f"{key}.final_temperature", "missing: temperature_schedule linear decays to it")
            out["final_temperature"] = _number(spec["final_temperature"], f"{key}.final_temperature", 0.05, 100)
        elif spec.get("final_temperature") is not None:
            raise ConfigError(f"{key}.final_temperature", "only with temperature_schedule: linear")
    elif kind == "mse":
        out["reduction"] = _choice(spec, "reduction", MSE_REDUCTIONS, section.get("mse_reduction") or "sum", key)
    elif kind == "hard_ce":
        out["on"] = _choice(spec, "on", HARD_TARGETS, "gold", key)
    else:
        out["layer_map"] = _layer_map(spec, kind, depth, key)
        if kind == "attention_mse":
            out["heads"] = _choice(spec, "heads", HEADS, "match", key)
        else:
            out["projection"] = _choice(spec, "projection", PROJECTIONS, "linear", key)
    return LossTerm(**out)


def parse_terms(section: Mapping[str, Any], key: str, student: str) -> tuple[LossTerm, ...]:
    """The terms of `section['loss']` (a list; `key` is the section's, `students.<student>`), checked against the
    student's own settings: known kinds and keys, layers within `layers`, teacher terms on BERT_S reading the
    teacher's wordpieces only."""
    value = section.get("loss")
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{key}.loss", f"{value!r} is not a loss name or a non-empty list of terms")
    depth = section.get("layers", 0)
    terms = [_term(spec, i, section, f"{key}.loss", depth if isinstance(depth, int) else 0)
             for i, spec in enumerate(value)]
    for term in terms:
        if term.needs_teacher and student != "bert_s":
            raise ConfigError(f"{term.key}.term", f"{term.kind} matches the teacher's internal states, which only "
                                                  "BERT_S (a transformer on the teacher's wordpieces) has")
        if term.needs_teacher and section.get("embeddings") == "word2vec":
            raise ConfigError(f"{term.key}.term", f"{term.kind} runs the teacher on the student's tokens, which with "
                                                  "embeddings: word2vec are words, not the teacher's wordpieces")
    counts = {kind: sum(t.kind == kind for t in terms) for kind in TERMS}
    return tuple(LossTerm(**{**t.__dict__, "name": t.kind if counts[t.kind] == 1 else f"{t.kind}_{i}"})
                 for i, t in enumerate(terms))


def check_against_teacher(terms: tuple[LossTerm, ...], section: Mapping[str, Any], teacher: Mapping[str, Any],
                          where: str = "the teacher") -> None:
    """The teacher terms' layers, widths and heads against the teacher's `config.json` (`teacher`): teacher layers
    that exist, `projection: none` only at equal widths, `heads: match` only at equal head counts, `max_length`
    within its positions."""
    depth, width, heads = (teacher.get(k) for k in ("num_hidden_layers", "hidden_size", "num_attention_heads"))
    for term in (t for t in terms if t.needs_teacher):
        for _, layer in term.layer_map:
            if depth is not None and layer > depth:
                raise ConfigError(f"{term.key}.map", f"teacher layer {layer} does not exist: {where} has "
                                                     f"num_hidden_layers {depth}")
        if term.kind != "attention_mse" and term.projection == "none" and width not in (None, section.get("hidden")):
            raise ConfigError(f"{term.key}.projection", f"none, but the student's hidden {section.get('hidden')} is "
                                                        f"not {where}'s hidden_size {width}: use projection: linear")
        if term.kind == "attention_mse" and term.heads == "match" and heads not in (None, section.get("heads")):
            raise ConfigError(f"{term.key}.heads", f"match, but the student has {section.get('heads')} heads and "
                                                   f"{where} {heads}: use heads: average")
    positions = teacher.get("max_position_embeddings")
    if any(t.needs_teacher for t in terms) and positions is not None and section.get("max_length", 0) > positions:
        raise ConfigError(f"{terms[0].key.rsplit('.', 2)[0]}.max_length",
                          f"{section['max_length']}, but {where} (run on the student's tokens for the hidden and "
                          f"attention terms) has max_position_embeddings {positions}")

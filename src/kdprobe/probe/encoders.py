"""Per-layer sentence features from the four kinds of model that the study probes.

`load_encoder(kind, model_dir, device)` gives a `LayerEncoder`; `encode(encoder, sentences, layers, poolings)`
runs every requested layer and pooling in ONE forward pass per batch (length-sorted batches, padded to the
longest sentence of the batch, `torch.inference_mode()`) and returns `{(layer, pooling): (N, d) float32 CPU
tensor}` in the order of `sentences`.

Layers are numbered as in the thesis: for BERT models (`teacher`, `pretrained`, `bert_s`) layer i is
`hidden_states[i]` of the Hugging Face model, 0 ("E") being the embedding output before the first transformer
layer and 1..L the transformer layers (for BERT_S 1..L are `Student.layer_states(...)`); for LSTM_S layers 1..L
are `Student.layer_states(...)[i - 1]`, its BiLSTM layers (per-token outputs of both directions;
`students.lstm_s.layers`, one in the thesis). The `embed` kind (`kdprobe.students.embed`, the thesis's "embed."
baseline) has layer 0 only: a student's token-embedding table before training. The depth is asked of the loaded
model. `layers: all` means every layer the model has, 0 included where it has one (the thesis probed BERT_S at
E and 1..5).

Poolings (masks come from the attention mask, so padding never counts):
- `mean`: masked mean over all tokens of the sentence INCLUDING the special tokens ([CLS], [SEP], ...) that the
  model's own encoding adds, as sentence-transformers does; for `lstm_s` the mean over its time steps.
- `cls`: the state at position 0 ([CLS]); BERT models only.
- `max`: masked max over tokens / time steps, per dimension.
- `last` (`lstm_s` only): the forward half of a BiLSTM layer's output at the last valid token concatenated with
  the backward half at position 0, i.e. the final states of both directions (of the top layer: the classifier's
  input) (right padding assumed, which both the Hugging Face tokenizers and `Student.encode` produce).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from kdprobe.errors import ConfigError
from kdprobe.logs import progress
from kdprobe.models import load_hf
from kdprobe.registry import POOLINGS, PROBE_KINDS
from kdprobe.runtime import halving_batches

log = logging.getLogger(__name__)



class ProbeSettingError(ConfigError, ValueError):
    """A `probe.*` setting this model cannot satisfy (a `ConfigError` that is also a `ValueError`)."""


@dataclass
class LayerEncoder:
    """What `encode` needs from a model.

    `states(sentences)` returns `(layer_states, attention_mask)` for one batch: `layer_states[i]` is the
    `(B, T, H)` output of layer `first_layer + i`, on the model's device. `sort_key(sentences)` gives one
    integer per sentence whose order approximates token length (for length-sorted batches).
    """

    kind: str
    name: str
    depth: int  # number of layers above the embeddings
    first_layer: int  # lowest layer number `states` returns (0 for BERT models, 1 for students)
    states: Callable[[list[str]], tuple[Sequence[torch.Tensor], torch.Tensor]]
    sort_key: Callable[[list[str]], list[int]]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def all_layers(self) -> list[int]:
        return list(range(self.first_layer, self.depth + 1))


# ----------------------------------------------------------------------------------------------------------
# model loading


def _hf_encoder(kind: str, model_dir: str, device: torch.device) -> LayerEncoder:
    # The fine-tuned teacher is a classifier: only its encoder is run (the head plays no part in probing).
    tokenizer, model = load_hf(model_dir, head=kind == "teacher", what=f"the {kind} model")
    tokenizer.padding_side = "right"
    model = model.base_model if kind == "teacher" else model
    model.to(device).eval()
    config = model.config
    max_length = min(int(tokenizer.model_max_length), int(getattr(config, "max_position_embeddings", 512)))
    accepted = set(tokenizer.model_input_names)

    def sort_key(sentences: list[str]) -> list[int]:
        enc = tokenizer(sentences, truncation=True, max_length=max_length)
        return [len(ids) for ids in enc["input_ids"]]

    def states(sentences: list[str]):
        enc = tokenizer(sentences, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        enc = {k: v.to(device) for k, v in enc.items() if k in accepted}
        out = model(**enc, output_hidden_states=True, return_dict=True)
        return out.hidden_states, enc["attention_mask"]

    return LayerEncoder(
        kind=kind,
        name=str(model_dir),
        depth=int(config.num_hidden_layers),
        first_layer=0,
        states=states,
        sort_key=sort_key,
        extra={"model": model, "tokenizer": tokenizer, "max_length": max_length},
    )


def _word_sort_key(sentences: list[str]) -> list[int]:
    """Word count, then characters: a close proxy for word-level and wordpiece lengths alike."""
    return [len(s.split()) * 10_000 + min(len(s), 9_999) for s in sentences]


def _student_encoder(kind: str, model_dir: str, device: torch.device) -> LayerEncoder:
    from kdprobe.students import load_student

    student = load_student(model_dir, device)
    student.eval()

    def layers(ids: torch.Tensor, mask: torch.Tensor) -> Sequence[torch.Tensor]:
        if kind == "bert_s":  # the BERT inside BERT_S gives layer 0 (its embedding output) and 1..L
            return student.bert(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        return student.layer_states(ids, mask)

    def states(sentences: list[str]):
        enc = student.encode(sentences)
        ids = enc["input_ids"].to(device)
        mask = enc["attention_mask"].to(device)
        return layers(ids, mask), mask

    first = 0 if kind == "bert_s" else 1
    with torch.inference_mode():
        depth = len(states(["a"])[0]) - 1 + first  # the interface promises no depth attribute: ask the model
    return LayerEncoder(
        kind=kind, name=str(model_dir), depth=depth, first_layer=first, states=states, sort_key=_word_sort_key,
        extra={"student": student},
    )


def load_encoder(kind: str, model_dir: str, device: str | torch.device = "cpu") -> LayerEncoder:
    """Load `model_dir` as a `kind` model (teacher | pretrained | bert_s | lstm_s | embed) onto `device`."""
    if kind not in PROBE_KINDS:
        raise ValueError(f"unknown model kind {kind!r} (expected one of {', '.join(PROBE_KINDS)})")
    device = torch.device(device)
    if kind in ("teacher", "pretrained"):
        enc = _hf_encoder(kind, str(model_dir), device)
    elif kind == "embed":
        enc = _embed_encoder(str(model_dir), device)
    else:
        enc = _student_encoder(kind, str(model_dir), device)
    log.info("loaded %s model %s: depth %d%s", kind, model_dir, enc.depth,
             " (+ embedding layer 0)" if enc.first_layer == 0 else "")
    return enc


def _embed_encoder(model_dir: str, device: torch.device) -> LayerEncoder:
    from kdprobe.students.embed import load_embed_model

    model = load_embed_model(model_dir, device)

    def states(sentences: list[str]):
        enc = model.encode(sentences)
        ids = enc["input_ids"].to(device)
        return [model.vectors(ids)], enc["attention_mask"].to(device)

    return LayerEncoder(kind="embed", name=str(model_dir), depth=0, first_layer=0, states=states,
                        sort_key=_word_sort_key, extra={"embed": model})


# ----------------------------------------------------------------------------------------------------------
# settings


def resolve_layers(encoder: LayerEncoder, spec: Any) -> list[int]:
    """`probe.layers.<kind>`: `all` or a list of layer numbers, checked against the model's depth."""
    key = f"probe.layers.{encoder.kind}"
    if spec == "all":
        return encoder.all_layers
    items = [spec] if isinstance(spec, int) else spec
    if not isinstance(items, (list, tuple)) or not items:
        raise ProbeSettingError(key, f"expected 'all' or a non-empty list of layer numbers, got {spec!r}")
    out: list[int] = []
    for layer in items:
        if isinstance(layer, bool) or not isinstance(layer, int):
            raise ProbeSettingError(key, f"layer {layer!r} is not an integer")
        if not encoder.first_layer <= layer <= encoder.depth:
            valid = (f"{encoder.first_layer}..{encoder.depth}" + (", 0 = embeddings" if encoder.first_layer == 0
                                                                   else ""))
            raise ProbeSettingError(
                key,
                f"layer {layer} does not exist: the {encoder.kind} model {encoder.name} has depth {encoder.depth} "
                f"(valid layers {valid})",
            )
        if layer not in out:
            out.append(layer)
    return out


def resolve_poolings(kind: str, spec: Any) -> list[str]:
    """`probe.pooling.<kind>`: a non-empty list of poolings this kind of model supports."""
    key = f"probe.pooling.{kind}"
    items = [spec] if isinstance(spec, str) else spec
    if not isinstance(items, (list, tuple)) or not items:
        raise ProbeSettingError(key, f"expected a non-empty list of poolings, got {spec!r}")
    out: list[str] = []
    for pooling in items:
        if pooling not in POOLINGS[kind]:
            raise ProbeSettingError(
                key, f"pooling {pooling!r} is not available for {kind} (choose from {', '.join(POOLINGS[kind])})"
            )
        if pooling not in out:
            out.append(pooling)
    return out


# ----------------------------------------------------------------------------------------------------------
# pooling and encoding


def pool(states: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool `(B, T, H)` states over time under a `(B, T)` attention mask (1 = token, right padding)."""
    valid = mask.bool()
    if pooling == "mean":
        m = valid.unsqueeze(-1).to(states.dtype)
        return (states * m).sum(1) / m.sum(1).clamp(min=1.0)
    if pooling == "max":
        out = states.masked_fill(~valid.unsqueeze(-1), float("-inf")).amax(1)
        return out.masked_fill(~valid.any(1, keepdim=True), 0.0)  # a row without tokens: zeros, not -inf
    if pooling == "cls":
        return states[:, 0]
    if pooling == "last":
        half = states.shape[-1] // 2
        last = (valid.sum(1) - 1).clamp(min=0)
        rows = torch.arange(states.shape[0], device=states.device)
        return torch.cat([states[rows, last, :half], states[:, 0, half:]], dim=-1)
    raise ValueError(f"unknown pooling {pooling!r}")


def encode(
    encoder: LayerEncoder,
    sentences: Sequence[str],
    layers: Sequence[int],
    poolings: Sequence[str],
    batch_size: int = 128,
    desc: str = "encode",
) -> dict[tuple[int, str], torch.Tensor]:
    """Features `{(layer, pooling): (N, d) float32 CPU tensor}`, rows in the order of `sentences`.

    `layers` and `poolings` must already be resolved (`resolve_layers`, `resolve_poolings`). Batches are formed
    over sentences sorted by length (longest first, so an out-of-memory error shows on the first batch); when CUDA
    runs out of memory, that batch and the rest run at half the size (`runtime.halving_batches`).
    """
    sentences = list(sentences)
    n = len(sentences)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    out: dict[tuple[int, str], torch.Tensor] = {}
    if n == 0:
        return out
    keys = encoder.sort_key(sentences)
    order = sorted(range(n), key=lambda i: (-keys[i], i))
    bar = progress(total=n, desc=desc, unit="sent")

    def run(start: int, size: int) -> None:
        idx = order[start : start + size]
        layer_states, mask = encoder.states([sentences[i] for i in idx])
        rows = torch.tensor(idx, dtype=torch.long)
        for layer in layers:
            states = layer_states[layer - encoder.first_layer]
            for pooling in poolings:
                feats = pool(states, mask, pooling).float().cpu()
                if (layer, pooling) not in out:
                    out[(layer, pooling)] = torch.empty((n, feats.shape[-1]), dtype=torch.float32)
                out[(layer, pooling)][rows] = feats
        bar.update(len(idx))

    with torch.inference_mode():
        halving_batches(n, batch_size, run, "the GPU", "sentences")
    bar.close()
    return out

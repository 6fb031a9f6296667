"""The two students of the study behind one interface.

```python
build_student(kind, settings, n_classes, vocab_info) -> Student      # kind 'bert_s' | 'lstm_s'
load_student(model_dir, device="cpu") -> Student                     # student.json + model.safetensors (+ vocab)
student.encode(sentences, max_length=None) -> {'input_ids', 'attention_mask'}   # long, CPU, padded to longest
student(input_ids, attention_mask) -> logits (B, C)
student.layer_states(input_ids, attention_mask) -> [ (B, T, H) per probe-able layer ]
student.save(model_dir)
```

`settings` is the config section `students.<kind>` (architecture keys: see `bert_s` and `lstm_s`; input
embeddings: `channels`; sizes: `Student.n_params_without_embeddings`, and the thesis's count of trainable
non-embedding parameters `common.thesis_size`); `vocab_info` says where the input vocabulary and initial
embeddings come from:
- `teacher_dir`: the teacher's Hugging Face directory (tokenizer; its wordpiece embeddings when
  `embeddings: teacher`; its `config.json` and weights when BERT_S's `init` is `{from: teacher, ...}`,
  `kdprobe.student_init`). Needed by students that read wordpieces.
- `words` (list, `[PAD]`, `[UNK]` first) or `sentences` (to build it from): the word vocabulary of a student that
  reads words (`reads_words(kind, settings)`: LSTM_S unless it has teacher embeddings, BERT_S with word2vec).
- `word2vec`: word2vec file (default `settings['word2vec']`).
- `labels`: label names, stored in `student.json` (optional).
Random initialisation comes from torch's global RNG (seed it first, e.g. `runtime.set_seed`); random and unknown
word vectors from `settings['seed']`.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from types import ModuleType

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from kdprobe.errors import ConfigError, InputError
from kdprobe.io import read_json
from kdprobe.students.common import CONFIG_FILE, FORMAT_VERSION, WEIGHTS_FILE, Student

log = logging.getLogger(__name__)

#: The student kinds; each is a module of this package, imported on first use (BERT_S pulls in transformers:
#: seconds an LSTM_S job need not pay).
_MODULES = ("bert_s", "lstm_s")


def _module(kind: str) -> ModuleType:
    if kind not in _MODULES:
        raise ConfigError("student", f"unknown student {kind!r}; choose one of {sorted(_MODULES)}")
    return importlib.import_module(f"{__name__}.{kind}")


__all__ = ["Student", "build_student", "load_student", "reads_teacher_ids", "reads_words"]


def reads_teacher_ids(kind: str, settings: dict) -> bool:
    """Whether a `kind` student with `settings` reads the teacher's stored token ids of the transfer set (BERT_S on
    wordpieces: the same tokenizer), so distillation loads them (`Student.reads_teacher_ids` once built)."""
    return _module(kind).reads_teacher_ids(settings)


def reads_words(kind: str, settings: dict) -> bool:
    """Whether a `kind` student with `settings` reads word-level input (its vocabulary built from the transfer
    set, `embeddings.build_vocab`), rather than the teacher's wordpieces."""
    return _module(kind).reads_words(settings)


def build_student(kind: str, settings: dict, n_classes: int, vocab_info: dict | None = None) -> Student:
    """A freshly initialised student of `kind` for `n_classes` classes."""
    module = _module(kind)
    if int(n_classes) < 2:
        raise ConfigError("student", f"need at least 2 classes, got {n_classes}")
    student = module.build(settings, int(n_classes), dict(vocab_info or {}))
    log.info(
        "built %s: %s; %d parameters, %d without embeddings, %d trainable, %d trainable without embeddings "
        "(the thesis's count)",
        kind, {k: v for k, v in student.config.items() if k != "labels"},
        student.n_params(), student.n_params_without_embeddings(), student.n_trainable_params(),
        student.n_thesis_params(),
    )
    return student


def load_student(model_dir: str | Path, device: str | torch.device = "cpu") -> Student:
    """The student saved in `model_dir`, on `device`, in eval mode; a damaged `student.json` or weight file is an
    `InputError` naming it and the command that rebuilds it."""
    model_dir = Path(model_dir)
    config_path = model_dir / CONFIG_FILE
    rebuild = f"rebuild it: snakemake -f {model_dir}"
    if not config_path.exists():
        raise InputError(config_path, "not a student directory (student.json missing)")
    try:
        config = read_json(config_path)
    except InputError as exc:
        raise InputError(config_path, f"damaged: not valid JSON; {rebuild}") from exc
    if not isinstance(config, dict):
        raise InputError(config_path, f"damaged: not a JSON object; {rebuild}")
    kind = config.pop("kind", None)
    version = config.pop("format_version", None)
    if kind not in _MODULES:
        raise InputError(config_path, f"unknown student kind {kind!r}")
    if version != FORMAT_VERSION:
        raise InputError(config_path, f"student format version {version}, this code reads {FORMAT_VERSION}")
    try:
        student = _module(kind).load(config, model_dir)
    except (KeyError, TypeError) as exc:  # a key missing, or of the wrong type
        raise InputError(config_path, f"damaged: {type(exc).__name__} {exc} building the student; {rebuild}") from None
    weights = model_dir / WEIGHTS_FILE
    if not weights.exists():
        raise InputError(weights, "student weights missing")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise InputError(weights, f"damaged: not a readable safetensors file ({exc}); {rebuild}") from None
    try:
        student.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise InputError(weights, f"weights do not fit student.json: {exc}") from None
    student.to(device).eval()
    log.info("loaded %s student from %s", kind, model_dir)
    return student

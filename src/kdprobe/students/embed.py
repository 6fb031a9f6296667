"""The thesis's "embed." baseline: a student's token-embedding table BEFORE training, probed like a model.

The thesis (`latex/s1513472-minf2.tex`, figure `fig:probing-students`; its `pytorch-transformers` fork at 32e7945,
`examples/probe_model.py` with `examples/distillation/embedding_model.py`) probed, beside each student, the
embeddings it started from: word2vec's 300-d vectors or the teacher's 1024-d wordpieces as loaded, with no
projection, average-pooled over the sentence's tokens. Here the table is the one the student's own build gives
(`kdprobe.distil.read_inputs` and `build`, the same calls and seed as distillation: the transfer set's word
vocabulary, the word2vec file, the teacher's wordpiece matrix, unknown words U[-0.25, 0.25], or BERT's random
initialisation), read before any training step; tokens are the student's own (BERT_S's [CLS] and [SEP]
included).

`kdprobe.distil.build_embed_model` (rule `embed_model`) builds the student and `save_embed_model` writes its
table to a directory (`results/embed/{task}/{student}/`): `embed.json` (student kind, token kind, special
tokens, max length, table shape, embedding setup), `embeddings.safetensors` (`weight`: the V x E table) and the
student's input files (vocabulary or tokenizer). `load_embed_model(path)` reads it back as an `EmbedModel`
(`encode`, `vectors`), which `kdprobe.probe.encoders` probes as kind `embed` at layer 0.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from kdprobe.batching import pad_batch
from kdprobe.errors import InputError
from kdprobe.io import atomic_dir, read_json, write_json

log = logging.getLogger(__name__)

CONFIG_FILE = "embed.json"
TABLE_FILE = "embeddings.safetensors"
FORMAT_VERSION = 1


def initial_table(student: torch.nn.Module) -> torch.Tensor:
    """The token-embedding table of a freshly built student: its `nn.Embedding` tables with one row per input
    token and the student's padding row (position and token-type tables have no padding row), whose
    parameters the student counts as embeddings. A multichannel student starts its channels from one matrix, so
    identical copies count once; distinct tables are concatenated per token."""
    vocab = int(student.config["vocab_size"])
    tables: list[torch.Tensor] = []
    for name, module in student.named_modules():
        if (isinstance(module, torch.nn.Embedding) and module.num_embeddings == vocab
                and module.padding_idx == student.pad_id and student.embedding_parameter(f"{name}.weight")):
            weight = module.weight.detach().float().cpu()
            if not any(torch.equal(weight, t) for t in tables):
                tables.append(weight)
    if not tables:
        raise ValueError(f"{student.kind}: no token-embedding table with {vocab} rows and padding row {student.pad_id}")
    return torch.cat(tables, dim=1).contiguous()


def save_embed_model(student: torch.nn.Module, out_dir: str | Path) -> Path:
    """Write `student`'s token table (`initial_table`) and input files to `out_dir` (replaced atomically)."""
    table = initial_table(student)
    config = {
        "format_version": FORMAT_VERSION, "student": student.kind, "tokens": student.inputs.kind,
        "special_tokens": bool(student.special_tokens), "max_length": student.max_length,
        "vocab_size": int(table.shape[0]), "dim": int(table.shape[1]), "pad_id": student.pad_id,
        "embeddings": student.config.get("embeddings"), "embedding_mode": student.config.get("embedding_mode"),
    }
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        student.inputs.save(tmp)
        save_file({"weight": table}, str(tmp / TABLE_FILE), metadata={"format": "pt"})
        write_json(tmp / CONFIG_FILE, config)
    log.info("wrote %s: the %s table before training, %d x %d (%s, %s)", out_dir, student.kind, *table.shape,
             config["embeddings"], config["embedding_mode"])
    return out_dir


@dataclass
class EmbedModel:
    """A student's input encoder and untrained token table: `encode(sentences)` as the student encodes them
    (right-padded ids and attention mask), `vectors(ids)` the table's rows (B, T, E)."""

    inputs: Any
    table: torch.Tensor
    max_length: int
    pad_id: int

    def encode(self, sentences: list[str]) -> dict[str, torch.Tensor]:
        return pad_batch(self.inputs.tokenize(list(sentences), self.max_length), self.pad_id)

    def vectors(self, input_ids: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.embedding(input_ids, self.table)


def load_embed_model(model_dir: str | Path, device: str | torch.device = "cpu") -> EmbedModel:
    """The embed. baseline in `model_dir` (`build_embed_model`); a damaged or foreign directory is an
    `InputError` naming the file."""
    from kdprobe.students.common import load_input

    model_dir = Path(model_dir)
    config_path = model_dir / CONFIG_FILE
    if not config_path.is_file():
        raise InputError(config_path, "missing: not an embed. baseline directory (rule embed_model writes one)")
    config = read_json(config_path)
    if not isinstance(config, dict) or config.get("format_version") != FORMAT_VERSION:
        raise InputError(config_path, f"not an embed. baseline of format {FORMAT_VERSION}; rebuild it: "
                                      f"snakemake -f {model_dir}")
    try:
        table = load_file(str(model_dir / TABLE_FILE))["weight"]
    except (SafetensorError, OSError, KeyError) as exc:
        raise InputError(model_dir / TABLE_FILE, f"unreadable table ({exc}); rebuild it: snakemake -f {model_dir}"
                         ) from None
    if tuple(table.shape) != (config["vocab_size"], config["dim"]):
        raise InputError(model_dir / TABLE_FILE, f"table of shape {tuple(table.shape)}, {CONFIG_FILE} says "
                                                 f"{config['vocab_size']} x {config['dim']}")
    inputs = load_input(config["tokens"], model_dir, special_tokens=bool(config["special_tokens"]))
    return EmbedModel(inputs, table.float().to(device), int(config["max_length"]), int(config["pad_id"]))

"""BERT_S: a small BERT (thesis: 5 layers, hidden 204, intermediate 750, 3 heads) over the teacher's wordpieces.

- Input: the teacher's WordPiece tokenizer with its special tokens (`[CLS] ... [SEP]`), copied into the student
  directory. Position embeddings cover `max_length` positions. In distillation the transfer set's stored teacher
  ids are reused as they are (`fit_teacher_ids`: cut to `max_length`, keeping the final [SEP]).
- Embeddings (`embeddings` setting):
  `random`: BERT's own wordpiece embedding table (V, hidden), initialised as BERT does (N(0, 0.02)).
  `teacher`: the teacher's wordpiece embedding matrix (V, E) (E = 1024 for BERT-large) followed by a trainable
  linear projection E -> hidden; it replaces BERT's word-embedding table, so position and token-type embeddings,
  LayerNorm and dropout apply after the projection as usual. The teacher matrix is trained along with the rest
  unless `freeze_embeddings: true` (optional setting; default false).
- Classifier as `BertForSequenceClassification`: dropout, then a linear layer on the pooled [CLS] output
  (BERT's pooler: dense + tanh on the first token).
- `layer_states`: the outputs of the transformer layers 1..L (the embedding output, layer 0, is not included).
- Size without embeddings (word, position, token-type tables and the projection excluded; embedding LayerNorm,
  layers, pooler and classifier counted) at thesis sizes with 2 classes: 2,417,888 (~2.42M).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import BertConfig, BertModel

from ..errors import ConfigError
from .common import Student, WordPieceInput, choice, setting, teacher_word_embeddings

KIND = "bert_s"
_EMBEDDING_PREFIXES = (
    "bert.embeddings.word_embeddings.",
    "bert.embeddings.position_embeddings.",
    "bert.embeddings.token_type_embeddings.",
)


class ProjectedEmbedding(nn.Module):
    """Wordpiece embedding table of another width, projected to the model width by a trainable linear layer."""

    def __init__(self, vocab_size: int, embedding_dim: int, hidden: int, pad_id: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.projection = nn.Linear(embedding_dim, hidden)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.projection(self.embedding(input_ids))


class BertStudent(Student):
    kind = KIND
    special_tokens = True
    reads_teacher_ids = True

    def __init__(self, config: dict[str, Any], inputs: WordPieceInput):
        super().__init__(config, inputs)
        c = self.config
        if c["hidden"] % c["heads"]:
            raise ConfigError("students.bert_s.heads", f"hidden {c['hidden']} is not a multiple of {c['heads']} heads")
        self.bert_config = BertConfig(
            vocab_size=c["vocab_size"],
            hidden_size=c["hidden"],
            num_hidden_layers=c["layers"],
            num_attention_heads=c["heads"],
            intermediate_size=c["intermediate"],
            hidden_dropout_prob=c["dropout"],
            attention_probs_dropout_prob=c["dropout"],
            max_position_embeddings=c["max_length"],
            type_vocab_size=2,
            pad_token_id=inputs.pad_id,
        )
        self.bert = BertModel(self.bert_config, add_pooling_layer=True)
        if c["embeddings"] == "teacher":
            self.bert.set_input_embeddings(
                ProjectedEmbedding(c["vocab_size"], c["embedding_dim"], c["hidden"], inputs.pad_id)
            )
            if c.get("freeze_embeddings"):
                self.bert.get_input_embeddings().embedding.weight.requires_grad_(False)
        self.dropout = nn.Dropout(c["dropout"])
        self.classifier = nn.Linear(c["hidden"], c["n_classes"])
        nn.init.normal_(self.classifier.weight, std=self.bert_config.initializer_range)
        nn.init.zeros_(self.classifier.bias)

    def fit_teacher_ids(self, ids: np.ndarray) -> np.ndarray:
        """The teacher's ids as they are (same tokenizer), cut to `max_length` keeping the final [SEP]."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) > self.max_length:
            sep = self.inputs.tokenizer.sep_token_id
            ids = np.concatenate([ids[: self.max_length - 1], [ids[-1] if sep is None else sep]])
        return ids

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask)
        return self.classifier(self.dropout(out.pooler_output))

    def layer_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[torch.Tensor]:
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        return list(out.hidden_states[1:])

    def embedding_parameter(self, name: str) -> bool:
        return name.startswith(_EMBEDDING_PREFIXES)


def build(settings: dict, n_classes: int, vocab_info: dict) -> BertStudent:
    kind = "students.bert_s"
    teacher_dir = vocab_info.get("teacher_dir")
    if not teacher_dir:
        raise ConfigError(kind, "BERT_S needs vocab_info['teacher_dir'] (the teacher's tokenizer)")
    inputs = WordPieceInput(teacher_dir, special_tokens=True)
    embeddings = choice(settings, "embeddings", ("random", "teacher"), "random", kind)
    hidden = int(setting(settings, "hidden", 204, kind))
    matrix = teacher_word_embeddings(teacher_dir) if embeddings == "teacher" else None
    vocab_size = matrix.shape[0] if matrix is not None else inputs.vocab_size
    if vocab_size < inputs.vocab_size:
        raise ConfigError(kind, f"teacher embeddings have {vocab_size} rows, its tokenizer {inputs.vocab_size} ids")
    config = {
        "layers": int(setting(settings, "layers", 5, kind)),
        "hidden": hidden,
        "intermediate": int(setting(settings, "intermediate", 750, kind)),
        "heads": int(setting(settings, "heads", 3, kind)),
        "dropout": float(setting(settings, "dropout", 0.1, kind)),
        "max_length": int(setting(settings, "max_length", 128, kind)),
        "embeddings": embeddings,
        "embedding_dim": int(matrix.shape[1]) if matrix is not None else hidden,
        "freeze_embeddings": bool(settings.get("freeze_embeddings", False)),
        "vocab_size": int(vocab_size),
        "n_classes": int(n_classes),
        "tokens": inputs.kind,
        "labels": vocab_info.get("labels"),
    }
    model = BertStudent(config, inputs)
    if matrix is not None:
        with torch.no_grad():
            model.bert.get_input_embeddings().embedding.weight.copy_(matrix)
    return model


def load(config: dict, model_dir: Path) -> BertStudent:
    return BertStudent(config, WordPieceInput(model_dir, special_tokens=True))

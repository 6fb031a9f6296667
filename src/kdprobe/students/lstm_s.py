"""LSTM_S (Tang et al. 2019): embeddings -> one BiLSTM layer -> [last forward state; last backward state] ->
FC + ReLU + dropout -> linear to the classes.

- Embeddings (`embeddings` setting):
  `word2vec`: word-level tokens (`embeddings.word_tokenize`, vocabulary of the transfer set), vectors from the
  word2vec file, unknown words U[-0.25, 0.25] (seeded);
  `random`: the same word-level vocabulary, every vector U[-0.25, 0.25], width `embedding_dim` (default 300);
  `teacher`: the teacher's wordpieces (no [CLS]/[SEP]) and its wordpiece embedding matrix, followed by a trainable
  linear projection to `embedding_dim` (default 300) when the widths differ; the projection is shared by the
  channels and counts as part of the embeddings.
- Modes (`embedding_mode`), as Kim (2014): `static` one frozen table; `non-static` one trainable table;
  `multichannel` two copies of the same initial table, one frozen and one trained, whose vectors are
  CONCATENATED per token (LSTM input = 2 x embedding width). Concatenation is what gives the thesis' ~2.41M
  parameters (input 600 -> BiLSTM 300); summing would give ~1.69M.
- Padding is respected: the final states are those of each sentence's last real token (forward) and first token
  (backward). On a GPU through packed sequences (cuDNN); on a CPU through `bilstm.bilstm`, which computes the same
  with no work on padding, the input-side products once per distinct word of the batch, and a hand-written
  backward pass that skips the frozen channel.
- `layer_states`: one layer, the BiLSTM per-token outputs (B, T, 2 x hidden), zeros at padded steps.
- Size without embeddings at thesis sizes, 2 classes: multichannel 2,406,002; static / non-static 1,686,002.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..embeddings import build_vocab, load_word2vec
from ..errors import ConfigError
from .bilstm import bilstm
from .common import (
    Student,
    WordInput,
    WordPieceInput,
    choice,
    load_input,
    setting,
    teacher_word_embeddings,
    uniform_embeddings,
)

KIND = "lstm_s"
MODES = ("static", "non-static", "multichannel")


class ChannelEmbedding(nn.Module):
    """One or two embedding tables (frozen `static`, trainable `tuned`), optionally projected, concatenated."""

    def __init__(self, vocab_size: int, dim: int, mode: str, pad_id: int, projection_dim: int | None = None):
        super().__init__()
        def table() -> nn.Embedding:
            return nn.Embedding(vocab_size, dim, padding_idx=pad_id)

        self.static = table() if mode in ("static", "multichannel") else None
        self.tuned = table() if mode in ("non-static", "multichannel") else None
        if self.static is not None:
            self.static.weight.requires_grad_(False)
        self.projection = nn.Linear(dim, projection_dim) if projection_dim else None
        self.out_features = (projection_dim or dim) * len(self.channels())

    def channels(self) -> list[nn.Embedding]:
        return [e for e in (self.static, self.tuned) if e is not None]

    def initialise(self, matrix: torch.Tensor) -> None:
        with torch.no_grad():
            for emb in self.channels():
                emb.weight.copy_(matrix)

    def channel_vectors(self, input_ids: torch.Tensor) -> list[torch.Tensor]:
        """Each channel's (projected) vectors; the LSTM input is their concatenation."""
        vectors = [emb(input_ids) for emb in self.channels()]
        return vectors if self.projection is None else [self.projection(v) for v in vectors]

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        vectors = self.channel_vectors(input_ids)
        return vectors[0] if len(vectors) == 1 else torch.cat(vectors, dim=-1)


class LstmStudent(Student):
    kind = KIND
    special_tokens = False

    def __init__(self, config: dict[str, Any], inputs: WordPieceInput | WordInput):
        super().__init__(config, inputs)
        c = self.config
        self.embed = ChannelEmbedding(
            c["vocab_size"], c["embedding_dim"], c["embedding_mode"], inputs.pad_id, c.get("projection_dim")
        )
        self.lstm = nn.LSTM(self.embed.out_features, c["hidden"], num_layers=1, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * c["hidden"], c["fc"])
        self.dropout = nn.Dropout(c["dropout"])
        self.out = nn.Linear(c["fc"], c["n_classes"])

    def _run_lstm(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, outputs: bool):
        lengths = attention_mask.sum(dim=1).clamp_min(1)
        if input_ids.device.type == "cpu":
            words, positions = torch.unique(input_ids, return_inverse=True)
            return bilstm(self.lstm, self.embed.channel_vectors(words), positions, lengths, outputs)
        lengths = lengths.to("cpu", torch.int64)
        packed = pack_padded_sequence(self.embed(input_ids), lengths, batch_first=True, enforce_sorted=False)
        out, (h_n, _) = self.lstm(packed)
        if outputs:
            return pad_packed_sequence(out, batch_first=True, total_length=input_ids.shape[1])[0]
        return torch.cat([h_n[-2], h_n[-1]], dim=-1)  # last layer: forward final state, backward final state

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        final = self._run_lstm(input_ids, attention_mask, outputs=False)
        return self.out(self.dropout(torch.relu(self.fc(final))))

    def layer_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[torch.Tensor]:
        return [self._run_lstm(input_ids, attention_mask, outputs=True)]

    def embedding_parameter(self, name: str) -> bool:
        return name.startswith("embed.")


def build(settings: dict, n_classes: int, vocab_info: dict) -> LstmStudent:
    kind = "students.lstm_s"
    source = choice(settings, "embeddings", ("word2vec", "teacher", "random"), "word2vec", kind)
    mode = choice(settings, "embedding_mode", MODES, "multichannel", kind)
    seed = int(settings.get("seed", 0) or 0)
    width = int(setting(settings, "embedding_dim", 300, kind))
    projection_dim = None
    if source == "teacher":
        teacher_dir = vocab_info.get("teacher_dir")
        if not teacher_dir:
            raise ConfigError(kind, "teacher embeddings need vocab_info['teacher_dir']")
        inputs: WordPieceInput | WordInput = WordPieceInput(teacher_dir, special_tokens=False)
        matrix = teacher_word_embeddings(teacher_dir)
        if matrix.shape[0] < inputs.vocab_size:
            raise ConfigError(kind, f"teacher embeddings: {matrix.shape[0]} rows, tokenizer: {inputs.vocab_size} ids")
        if matrix.shape[1] != width:
            projection_dim = width
    else:
        words = vocab_info.get("words")
        if words is None:
            if vocab_info.get("sentences") is None:
                raise ConfigError(kind, "word-level LSTM_S needs vocab_info['words'] or vocab_info['sentences']")
            words = build_vocab(vocab_info["sentences"])
        inputs = WordInput(words)
        if source == "word2vec":
            path = vocab_info.get("word2vec") or settings.get("word2vec")
            if not path:
                raise ConfigError(f"{kind}.word2vec", "word2vec embeddings need a word2vec file")
            matrix = load_word2vec(path, inputs.words, seed=seed)
        else:
            matrix = uniform_embeddings(inputs.vocab_size, width, seed, pad_id=inputs.pad_id)
    config = {
        "hidden": int(setting(settings, "hidden", 300, kind)),
        "fc": int(setting(settings, "fc", 400, kind)),
        "dropout": float(setting(settings, "dropout", 0.1, kind)),
        "max_length": int(setting(settings, "max_length", 128, kind)),
        "embeddings": source,
        "embedding_mode": mode,
        "embedding_dim": int(matrix.shape[1]),
        "projection_dim": projection_dim,
        "vocab_size": int(matrix.shape[0]),
        "n_classes": int(n_classes),
        "tokens": inputs.kind,
        "labels": vocab_info.get("labels"),
    }
    model = LstmStudent(config, inputs)
    model.embed.initialise(matrix)
    return model


def load(config: dict, model_dir: Path) -> LstmStudent:
    return LstmStudent(config, load_input(config["tokens"], model_dir, special_tokens=False))

"""LSTM_S (Tang et al. 2019): embeddings -> `layers` stacked BiLSTM layers (thesis: one) -> [last forward state;
last backward state] of the top layer -> FC + ReLU + dropout -> linear to the classes.

- Embeddings (`embeddings` setting; sources and modes in `channels`):
  `word2vec`: word-level tokens (`embeddings.word_tokenize`, vocabulary of the transfer set), vectors from the
  word2vec file, unknown words U[-0.25, 0.25] (seeded);
  `random`: the same word-level vocabulary, every vector U[-0.25, 0.25], width `embedding_dim` (default 300);
  `teacher`: the teacher's wordpieces (no [CLS]/[SEP]) and its wordpiece embedding matrix, followed by a trainable
  linear projection to `embedding_dim` (default 300) when the widths differ; the projection is shared by the
  channels and counts as part of the embeddings. With `teacher_projection: false` the vectors go in at the
  teacher's width (1024 for BERT-large; 2048 multichannel), as in the thesis's code (its BiRNN student has no
  projection: pytorch-transformers fork @ 32e7945, `examples/distillation/base.py` `init_embedding`).
- Modes (`embedding_mode`), as Kim (2014): `static` one frozen table; `non-static` one trainable table;
  `multichannel` two copies of the same initial table, one frozen and one trained, whose vectors are
  CONCATENATED per token (LSTM input = 2 x embedding width). Concatenation is what gives the thesis' ~2.41M
  parameters (input 600 -> BiLSTM 300); summing would give ~1.69M.
- Depth (`layers`, default 1): layer l+1 reads layer l's outputs of both directions concatenated (2 x hidden);
  between layers `nn.LSTM`'s dropout with the student's `dropout` (training mode only).
- Padding is respected: the final states are those of each sentence's last real token (forward) and first token
  (backward). Training on a GPU runs packed sequences through `nn.LSTM` (cuDNN); on a CPU, and for the per-token
  states of every layer on any device (`nn.LSTM` returns only the top layer's), `bilstm.bilstm` computes the same
  with no work on padding, the first layer's input-side products once per distinct word of the batch, and a
  hand-written backward pass that skips the frozen channel.
- `layer_states`: layers 1..L, each the BiLSTM's per-token outputs (B, T, 2 x hidden), zeros at padded steps.
- Size without embeddings at thesis sizes, 2 classes: multichannel 2,406,002; static / non-static 1,686,002; each
  further layer adds 2 x 4 x hidden x (2 x hidden + hidden + 2) = 2,164,800. The thesis's rule
  (`common.thesis_size`) gives the same (every embedding-side name starts `embed.`); with teacher embeddings
  unprojected, multichannel, 57 classes (Sara): 5,903,257.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from kdprobe.students.bilstm import bilstm
from kdprobe.students.channels import MODES, ChannelEmbedding, teacher_vectors, uniform_embeddings, word2vec_vectors, word_input
from kdprobe.students.common import Student, WordInput, WordPieceInput, choice, flag, load_input, setting

KIND = "lstm_s"
SOURCES = ("word2vec", "teacher", "random")


def reads_words(settings: dict) -> bool:
    """Whether LSTM_S with `settings` reads words (a vocabulary of the transfer set), not the teacher's wordpieces."""
    return settings.get("embeddings") != "teacher"


def reads_teacher_ids(settings: dict) -> bool:
    """LSTM_S tokenises every sentence itself (words, or wordpieces with teacher embeddings)."""
    return False


class LstmStudent(Student):
    kind = KIND
    special_tokens = False

    def __init__(self, config: dict[str, Any], inputs: WordPieceInput | WordInput):
        super().__init__(config, inputs)
        c = self.config
        layers = int(c.get("layers", 1))  # student.json of earlier versions: one layer
        self.embed = ChannelEmbedding(
            c["vocab_size"], c["embedding_dim"], c["embedding_mode"], inputs.pad_id, c.get("projection_dim")
        )
        self.lstm = nn.LSTM(self.embed.out_features, c["hidden"], num_layers=layers, batch_first=True,
                            bidirectional=True, dropout=c["dropout"] if layers > 1 else 0.0)
        self.fc = nn.Linear(2 * c["hidden"], c["fc"])
        self.dropout = nn.Dropout(c["dropout"])
        self.out = nn.Linear(c["fc"], c["n_classes"])

    def _run_lstm(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, per_token: bool):
        """The top layer's final states (B, 2H), or with `per_token` every layer's per-token states."""
        lengths = attention_mask.sum(dim=1).clamp_min(1)
        if per_token or input_ids.device.type == "cpu":
            words, positions = torch.unique(input_ids, return_inverse=True)
            return bilstm(self.lstm, self.embed.channel_vectors(words), positions, lengths, per_token)
        return self._packed_final_states(input_ids, lengths)

    def _packed_final_states(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The top layer's final states through packed sequences and `nn.LSTM` (cuDNN on a GPU)."""
        packed = pack_padded_sequence(self.embed(input_ids), lengths.to("cpu", torch.int64), batch_first=True,
                                      enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)
        return torch.cat([h_n[-2], h_n[-1]], dim=-1)  # top layer: forward final state, backward final state

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        final = self._run_lstm(input_ids, attention_mask, per_token=False)
        return self.out(self.dropout(torch.relu(self.fc(final))))

    def layer_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[torch.Tensor]:
        return self._run_lstm(input_ids, attention_mask, per_token=True)

    def embedding_parameter(self, name: str) -> bool:
        return name.startswith("embed.")


def build(settings: dict, n_classes: int, vocab_info: dict) -> LstmStudent:
    kind = "students.lstm_s"
    source = choice(settings, "embeddings", SOURCES, None, kind)
    mode = choice(settings, "embedding_mode", MODES, None, kind)
    width = int(setting(settings, "embedding_dim", 300, kind))
    projection_dim = None
    if source == "teacher":
        inputs, matrix = teacher_vectors(vocab_info, kind, special_tokens=False)
        if matrix.shape[1] != width and flag(settings, "teacher_projection", True, kind):
            projection_dim = width
    else:
        inputs = word_input(vocab_info, kind, special_tokens=False)
        if source == "word2vec":
            matrix = word2vec_vectors(settings, vocab_info, inputs, kind)
        else:
            seed = int(setting(settings, "seed", kind=kind))
            matrix = uniform_embeddings(inputs.vocab_size, width, seed, pad_id=inputs.pad_id)
    config = {
        "layers": int(setting(settings, "layers", kind=kind)),
        "hidden": int(setting(settings, "hidden", kind=kind)),
        "fc": int(setting(settings, "fc", kind=kind)),
        "dropout": float(setting(settings, "dropout", kind=kind)),
        "max_length": int(setting(settings, "max_length", kind=kind)),
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

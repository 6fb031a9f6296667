"""The input embeddings of both students: where the vectors come from (`embeddings`) and how they are used
(`embedding_mode`), as Kim (2014) has them.

- Sources (the input encoder and the initial vectors): `word2vec` (`word_input`, `word2vec_vectors`): word-level
  tokens (`embeddings.word_tokenize`, vocabulary of the transfer set), vectors from the word2vec file, unknown
  words U[-0.25, 0.25] (seeded); `teacher` (`teacher_vectors`): the teacher's wordpieces and its wordpiece
  embedding matrix (`teacher_word_embeddings`); `random`: as each student defines it (`uniform_embeddings` for
  LSTM_S's words).
- Modes: `static` one frozen table; `non-static` one trainable table; `multichannel` two copies of the same initial
  table, one frozen and one trained.
- `ChannelEmbedding` holds the tables and, when the model needs another width than the vectors', a trainable
  linear projection. `combine` says how two channels meet: `concat` (LSTM_S: its input is 2 x the width; a
  projection, if any, is shared by the channels and applied to each before), `mean` (BERT_S's default: each
  channel projected by the shared projection, then averaged; Kim's sum of a shared filter's responses, scaled,
  makes multichannel equal non-static at initialisation) or `concat-project` (BERT_S as the thesis's code builds
  it: the raw channels concatenated, then one projection from 2 x the width to the model's; it exists in
  multichannel mode even when the widths agree).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import safe_open
from torch import nn

from kdprobe.embeddings import CLS, PAD, SEP, UNK, build_vocab, load_word2vec
from kdprobe.errors import ConfigError, InputError
from kdprobe.students.common import WEIGHTS_FILE, WordInput, WordPieceInput, setting

MODES = ("static", "non-static", "multichannel")
COMBINE = ("concat", "mean", "concat-project")

log = logging.getLogger(__name__)


class ChannelEmbedding(nn.Module):
    """One or two embedding tables (frozen `static`, trainable `tuned`), combined by `combine` (`concat` | `mean` |
    `concat-project`, see the module's docstring) and optionally projected to `projection_dim` (`concat-project`
    needs it)."""

    def __init__(self, vocab_size: int, dim: int, mode: str, pad_id: int, projection_dim: int | None = None,
                 combine: str = "concat"):
        super().__init__()
        if mode not in MODES or combine not in COMBINE:
            raise ValueError(f"mode {mode!r} / combine {combine!r}: expected one of {MODES} / {COMBINE}")
        if combine == "concat-project" and not projection_dim:
            raise ValueError("combine 'concat-project' needs a projection_dim")

        def table() -> nn.Embedding:
            return nn.Embedding(vocab_size, dim, padding_idx=pad_id)

        self.static = table() if mode in ("static", "multichannel") else None
        self.tuned = table() if mode in ("non-static", "multichannel") else None
        if self.static is not None:
            self.static.weight.requires_grad_(False)
        n_channels = len(self.channels())
        # one projection: of each channel (concat, mean) or of the channels side by side (concat-project)
        self.project_combined = combine == "concat-project"
        in_features = dim * n_channels if self.project_combined else dim
        self.projection = nn.Linear(in_features, projection_dim) if projection_dim else None
        self.combine = combine
        width = projection_dim or dim
        self.out_features = width * n_channels if combine == "concat" else width

    def channels(self) -> list[nn.Embedding]:
        return [e for e in (self.static, self.tuned) if e is not None]

    def initialise(self, matrix: torch.Tensor) -> None:
        """Every channel starts from `matrix` (V, dim)."""
        with torch.no_grad():
            for emb in self.channels():
                emb.weight.copy_(matrix)

    def channel_vectors(self, input_ids: torch.Tensor) -> list[torch.Tensor]:
        """Each channel's vectors, projected when the projection is per channel (not with `concat-project`)."""
        vectors = [emb(input_ids) for emb in self.channels()]
        if self.projection is None or self.project_combined:
            return vectors
        return [self.projection(v) for v in vectors]

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        vectors = self.channel_vectors(input_ids)
        if self.project_combined:
            return self.projection(torch.cat(vectors, dim=-1))
        if len(vectors) == 1:
            return vectors[0]
        return torch.cat(vectors, dim=-1) if self.combine == "concat" else torch.stack(vectors).mean(0)


# ------------------------------------------------------------------------------------------------ sources
def _weight_files(teacher_dir: Path) -> list[Path]:
    """The teacher's safetensors weight files: `model.safetensors`, or the shards its index names."""
    index = teacher_dir / "model.safetensors.index.json"
    if (teacher_dir / WEIGHTS_FILE).exists():
        return [teacher_dir / WEIGHTS_FILE]
    if index.exists():
        return sorted({teacher_dir / f for f in json.loads(index.read_text())["weight_map"].values()})
    return []


def teacher_tensors(teacher_dir: str | Path, select: Callable[[str], bool]) -> dict[str, torch.Tensor]:
    """The tensors of the teacher's weights whose names `select` accepts, read alone (safetensors, sharded or not;
    else `pytorch_model.bin`), as stored: names and dtypes the teacher's."""
    teacher_dir = Path(teacher_dir)
    out: dict[str, torch.Tensor] = {}
    for path in _weight_files(teacher_dir):
        with safe_open(str(path), framework="pt") as fh:
            out |= {key: fh.get_tensor(key) for key in fh.keys() if select(key)}
    bin_path = teacher_dir / "pytorch_model.bin"
    if not out and bin_path.exists():
        state = torch.load(bin_path, map_location="cpu", weights_only=True)
        out = {key: value for key, value in state.items() if select(key)}
    return out


def teacher_word_embeddings(teacher_dir: str | Path) -> torch.Tensor:
    """The teacher's wordpiece embedding matrix (V, E), read alone from its safetensors (or .bin) weights."""
    tensors = teacher_tensors(teacher_dir, lambda key: key.endswith("word_embeddings.weight"))
    if not tensors:
        raise InputError(teacher_dir, "no wordpiece embedding matrix (*word_embeddings.weight) in the teacher's "
                                      "weights")
    key = min(tensors, key=len)  # the encoder's, not e.g. a decoder copy with a longer prefix
    tensor = tensors[key].float()
    log.info("teacher embeddings %s from %s: %s", key, teacher_dir, tuple(tensor.shape))
    return tensor


def uniform_embeddings(
    vocab_size: int, dim: int, seed: int, pad_id: int | None = 0, bound: float = 0.25
) -> torch.Tensor:
    """U[-bound, bound] vectors from a generator seeded with `seed`; the PAD row zero."""
    gen = torch.Generator().manual_seed(int(seed))
    matrix = (torch.rand(vocab_size, dim, generator=gen) * 2 - 1) * bound
    if pad_id is not None:
        matrix[pad_id] = 0
    return matrix


def word_input(vocab_info: dict[str, Any], section: str, special_tokens: bool) -> WordInput:
    """Word-level input over `vocab_info['words']`, or over the vocabulary of `vocab_info['sentences']`; with
    `special_tokens`, `[CLS]` and `[SEP]` follow `[PAD]`, `[UNK]` in it."""
    words = vocab_info.get("words")
    if words is None:
        if vocab_info.get("sentences") is None:
            raise ConfigError(section, "word-level input needs vocab_info['words'] or vocab_info['sentences']")
        words = build_vocab(vocab_info["sentences"])
    if special_tokens:
        words = [PAD, UNK, CLS, SEP, *(w for w in words[2:] if w not in (CLS, SEP))]
    return WordInput(words, special_tokens)


def word2vec_vectors(settings: dict, vocab_info: dict[str, Any], inputs: WordInput, section: str) -> torch.Tensor:
    """The word2vec vectors of the vocabulary (`vocab_info['word2vec']`, else `settings['word2vec']`); words not in
    the file U[-0.25, 0.25] from `settings['seed']`."""
    path = vocab_info.get("word2vec") or settings.get("word2vec")
    if not path:
        raise ConfigError(f"{section}.word2vec", "word2vec embeddings need a word2vec file")
    return load_word2vec(path, inputs.words, seed=int(setting(settings, "seed", kind=section)))


def teacher_vectors(vocab_info: dict[str, Any], section: str, special_tokens: bool
                    ) -> tuple[WordPieceInput, torch.Tensor]:
    """The teacher's tokenizer and its wordpiece embedding matrix (V, E)."""
    teacher_dir = vocab_info.get("teacher_dir")
    if not teacher_dir:
        raise ConfigError(section, "teacher embeddings need vocab_info['teacher_dir']")
    inputs = WordPieceInput(teacher_dir, special_tokens)
    matrix = teacher_word_embeddings(teacher_dir)
    if matrix.shape[0] < inputs.vocab_size:
        raise ConfigError(section, f"teacher embeddings have {matrix.shape[0]} rows, its tokenizer "
                                   f"{inputs.vocab_size} ids")
    return inputs, matrix

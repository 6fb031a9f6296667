"""What both students share: input encoders (wordpieces or words), the `Student` base class (encode, save,
parameter counts), and the settings helpers (input embeddings: `channels`).

A student directory holds `student.json` (kind, architecture, input encoding, labels: everything `load_student`
needs), `model.safetensors` (the state dict), and the input vocabulary: the teacher's tokenizer files
(`tokenizer.json`, `tokenizer_config.json`, ...) for wordpiece input, `vocab.txt` for word-level input.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from safetensors.torch import save_file

from kdprobe.batching import pad_batch
from kdprobe.embeddings import CLS, PAD, SEP, UNK, encode_words, read_vocab, word_tokenize, write_vocab
from kdprobe.errors import ConfigError, InputError
from kdprobe.io import atomic_path, write_json

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CONFIG_FILE = "student.json"
WEIGHTS_FILE = "model.safetensors"
VOCAB_FILE = "vocab.txt"


# ------------------------------------------------------------------------------------------------ settings
def setting(settings: dict, key: str, default: Any = None, kind: str = "students") -> Any:
    """`settings[key]`, or `default`; a missing key without default is a ConfigError naming the key."""
    if key in settings and settings[key] is not None:
        return settings[key]
    if default is None:
        raise ConfigError(f"{kind}.{key}", "missing")
    return default


def choice(settings: dict, key: str, options: Sequence[str], default: str | None, kind: str) -> str:
    value = str(setting(settings, key, default, kind))
    if value not in options:
        raise ConfigError(f"{kind}.{key}", f"{value!r} is not one of {list(options)}")
    return value


def flag(settings: dict, key: str, default: bool, kind: str) -> bool:
    """`settings[key]` (a boolean), or `default`; anything else is a ConfigError naming the key."""
    value = settings.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ConfigError(f"{kind}.{key}", f"{value!r} is not true or false")
    return value


# ------------------------------------------------------------------------------------------- parameter counts
#: The thesis's "trainable non-embedding parameters" (table tab:best-students): its code (pytorch-transformers
#: fork @ 32e7945, examples/distillation/distiller_from_finetuned.py, lines 128-137) counts the trainable
#: parameters and subtracts the trainable ones whose name contains this. For BERT_S that is all of
#: `bert.embeddings` (word, position and token-type tables, the projections of the embedding width, which the
#: fork names `token_embedding_dimensionality_reduction`, and the embedding LayerNorm); for LSTM_S the word tables
#: (`static_embed`, `non_static_embed` there; LSTM_S has no projection there). kdprobe's parameter names put the
#: same layers under names with "embed" (`bert.embeddings.*`, `embed.*`), projections included.
THESIS_EMBEDDING_MARK = "embed"


def thesis_size(model: torch.nn.Module) -> int:
    """Trainable parameters whose name does not contain "embed": the thesis's size of a student."""
    return sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and THESIS_EMBEDDING_MARK not in n)


# ------------------------------------------------------------------------------------------- input encoders
class WordPieceInput:
    """The teacher's WordPiece tokenizer (a Hugging Face tokenizer directory)."""

    kind = "wordpieces"

    def __init__(self, tokenizer_dir: str | Path, special_tokens: bool):
        from transformers import AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        except (OSError, ValueError) as exc:
            raise InputError(tokenizer_dir, f"cannot load a tokenizer: {exc}") from None
        self.special_tokens = special_tokens
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(pad) if pad is not None else 0
        self.vocab_size = len(self.tokenizer)

    def tokenize(self, sentences: list[str], max_length: int) -> list[list[int]]:
        if not sentences:
            return []
        ids = self.tokenizer(
            list(sentences), add_special_tokens=self.special_tokens, truncation=True, max_length=max_length
        )["input_ids"]
        unk = self.tokenizer.unk_token_id if self.tokenizer.unk_token_id is not None else self.pad_id
        return [list(x) if len(x) else [int(unk)] for x in ids]

    def save(self, model_dir: Path) -> None:
        """The tokenizer files, each moved into `model_dir` atomically."""
        with tempfile.TemporaryDirectory(dir=model_dir, prefix=".tokenizer.") as tmp:
            self.tokenizer.save_pretrained(tmp)
            for name in os.listdir(tmp):
                os.replace(os.path.join(tmp, name), model_dir / name)


class WordInput:
    """Word-level tokens (`embeddings.word_tokenize`) over a fixed vocabulary (`[PAD]`=0, `[UNK]`=1, ...); with
    `special_tokens` each sentence is `[CLS] words [SEP]` (both in the vocabulary), as BERT's input is."""

    kind = "words"

    def __init__(self, words: list[str], special_tokens: bool = False):
        if len(words) < 2 or words[0] != PAD or words[1] != UNK:
            raise ValueError(f"a word vocabulary starts with {PAD}, {UNK}")
        self.words = list(words)
        self.index = {w: i for i, w in enumerate(self.words)}
        if special_tokens and not {CLS, SEP} <= self.index.keys():
            raise ValueError(f"a word vocabulary with special tokens has {CLS} and {SEP}")
        self.special = (self.index[CLS], self.index[SEP]) if special_tokens else None
        self.pad_id = 0
        self.vocab_size = len(self.words)

    def tokenize(self, sentences: list[str], max_length: int) -> list[list[int]]:
        if self.special is None:
            return [encode_words(word_tokenize(s), self.index, max_length) for s in sentences]
        cls, sep = self.special
        return [[cls, *encode_words(word_tokenize(s), self.index, max(max_length - 2, 1)), sep] for s in sentences]

    def save(self, model_dir: Path) -> None:
        write_vocab(model_dir / VOCAB_FILE, self.words)


def load_input(tokens: str, model_dir: Path, special_tokens: bool) -> WordPieceInput | WordInput:
    if tokens == "words":
        path = model_dir / VOCAB_FILE
        if not path.exists():
            raise InputError(path, "word vocabulary of a word-level student is missing")
        return WordInput(read_vocab(path), special_tokens)
    return WordPieceInput(model_dir, special_tokens)


# ---------------------------------------------------------------------------------------------- Student
class Student(torch.nn.Module):
    """Base class of BERT_S and LSTM_S; subclasses set `kind`, build layers from `config` and implement
    `forward`, `layer_states` and `embedding_parameter(name)`."""

    kind: str = ""
    #: whether the input uses the teacher tokenizer's special tokens ([CLS] ... [SEP])
    special_tokens: bool = False

    def __init__(self, config: dict[str, Any], inputs: WordPieceInput | WordInput):
        super().__init__()
        self.config = dict(config)
        self.inputs = inputs
        self.labels: list[str] | None = config.get("labels")

    # ---- input
    @property
    def max_length(self) -> int:
        return int(self.config["max_length"])

    @property
    def pad_id(self) -> int:
        return int(self.inputs.pad_id)

    def tokenize(self, sentences: list[str], max_length: int | None = None) -> list[list[int]]:
        """Token ids per sentence, unpadded, truncated to `max_length` (default and cap: the student's)."""
        limit = min(int(max_length), self.max_length) if max_length else self.max_length
        return self.inputs.tokenize(list(sentences), limit)

    def pad(self, sequences: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
        """Right-pad id lists to the longest one: `input_ids`, `attention_mask` (long, CPU)."""
        return pad_batch(sequences, self.pad_id)

    def encode(self, sentences: list[str], max_length: int | None = None) -> dict[str, torch.Tensor]:
        return self.pad(self.tokenize(sentences, max_length))

    #: whether the transfer set's stored teacher-tokenizer ids are this student's input (see `fit_teacher_ids`)
    reads_teacher_ids: bool = False

    def fit_teacher_ids(self, ids: np.ndarray) -> np.ndarray:  # pragma: no cover
        """One stored teacher-tokenizer id sequence as this student's input (students with `reads_teacher_ids`)."""
        raise NotImplementedError

    # ---- model
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def layer_states(  # pragma: no cover
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> list[torch.Tensor]:
        raise NotImplementedError

    def embedding_parameter(self, name: str) -> bool:  # pragma: no cover
        """Whether parameter `name` belongs to the input embeddings (excluded from the thesis' size figure)."""
        raise NotImplementedError

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def n_params_without_embeddings(self) -> int:
        return sum(p.numel() for n, p in self.named_parameters() if not self.embedding_parameter(n))

    def n_trainable_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def n_thesis_params(self) -> int:
        """Trainable non-embedding parameters as the thesis counts them (`thesis_size`)."""
        return thesis_size(self)

    # ---- files
    def save(self, model_dir: str | Path) -> None:
        """Write the input vocabulary, `model.safetensors`, then `student.json` (last: it marks completeness);
        every file is written under a temporary name and renamed into place."""
        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        self.inputs.save(model_dir)
        state = {k: v.detach().to("cpu").contiguous() for k, v in self.state_dict().items()}
        with atomic_path(model_dir / WEIGHTS_FILE) as tmp:
            # one metadata key only: safetensors orders several differently from process to process
            save_file(state, str(tmp), metadata={"format": "pt"})
        write_json(
            model_dir / CONFIG_FILE,
            {**self.config, "kind": self.kind, "labels": self.labels, "format_version": FORMAT_VERSION},
        )
        log.info("saved %s student to %s (%d parameters)", self.kind, model_dir, self.n_params())


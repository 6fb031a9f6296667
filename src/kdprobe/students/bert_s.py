"""BERT_S: a small BERT (thesis: 5 layers, hidden 204, intermediate 750, 3 heads).

- Input: with `random` or `teacher` embeddings, the teacher's WordPiece tokenizer with its special tokens
  (`[CLS] ... [SEP]`), copied into the student directory; in distillation the transfer set's stored teacher ids
  are reused as they are (`fit_teacher_ids`: cut to `max_length`, keeping the final [SEP]). With `word2vec`
  embeddings, word-level tokens as LSTM_S reads them (`embeddings.word_tokenize`, vocabulary of the transfer set)
  plus `[CLS]` and `[SEP]` in the vocabulary and around each sentence; `vocab.txt` in the student directory.
  Position embeddings cover `max_length` positions.
- Embeddings (`embeddings` setting):
  `random`: BERT's own wordpiece embedding table (V, hidden), initialised as BERT does (N(0, 0.02));
  `teacher`: the teacher's wordpiece embedding matrix (V, E) (E = 1024 for BERT-large);
  `word2vec`: the word2vec vectors of the vocabulary (V, 300), unknown words (and [CLS], [SEP]) U[-0.25, 0.25].
  Vectors of another width than `hidden` go through a trainable linear projection to `hidden`. Position and
  token-type embeddings, LayerNorm and dropout apply after it as usual.
- Modes (`embedding_mode`, `channels.ChannelEmbedding` as LSTM_S has them; default `non-static`, the thesis'
  trainable embeddings): `static` one frozen table, `non-static` one trainable table, `multichannel` a frozen
  and a trained copy of the same initial table. How multichannel's two channels meet (`channel_combine`):
  `mean` (default) each projected by one shared projection (when of another width than `hidden`), then AVERAGED
  per token (at initialisation multichannel equals non-static); `concat` as the thesis's code builds it
  (pytorch-transformers fork @ 32e7945, `modeling_bert.py` `BertEmbeddings`, lines 181-221): the two vectors
  CONCATENATED, then one trainable Linear(2 x width, hidden), present even when width = hidden. Except for
  random non-static embeddings (BERT's own table), the tables replace BERT's word-embedding table.
  Where the thesis's fork differs and kdprobe does not follow (no effect on the non-embedding size): in
  multichannel mode it doubles the token-type table too (frozen + trained, concatenated, Linear(2 x hidden,
  hidden)), and in static mode it freezes the token-type table; with one sentence per input every token has
  type 0, so either way the token-type term is one vector added to every token (here: one trained vector).
- Classifier as `BertForSequenceClassification`: dropout, then a linear layer on the pooled [CLS] output
  (BERT's pooler: dense + tanh on the first token).
- Initialisation (`init`, `kdprobe.student_init`): absent or `{from: random}`, the above; `{from: teacher,
  layers: [...]}` or `{from: teacher, every: n}` (or `from: pretrained` with `model`, a pre-trained BERT with the
  teacher's vocabulary, in place of the fine-tuned teacher), then, after the student's own initialisation (so the
  classifier is the one a random student of the same seed has), `init_from_teacher` copies, under
  `torch.no_grad`, the fine-tuned teacher's tensors into the same-named ones of `self.bert` (a `BertModel` as the
  teacher's `bert.`): embeddings (word rows 0..V-1 into every word table, static and trained channel alike;
  position rows 0..max_length-1; token types; LayerNorm), encoder layer `layers[k]` into layer k, the pooler.
  The widths must be the teacher's and the input its wordpieces (`embeddings: random` or `teacher`); checked
  against its `config.json` before anything is built. `student.json` records `init: {from: teacher,
  layers: [...]}` (and `model` for a pre-trained one).
- `layer_states`: the outputs of the transformer layers 1..L (the embedding output, layer 0, is not included).
- Size without embeddings (`n_params_without_embeddings`: word tables and their projection, position and
  token-type tables excluded; embedding LayerNorm, layers, pooler and classifier counted) at thesis sizes with 2
  classes: 2,417,888, whatever the embeddings and mode (the projection belongs to the embeddings: it only exists
  to fit their width). The thesis's own count (`common.thesis_size`: trainable parameters whose name has no
  "embed", so the embedding LayerNorm is out too): 2,417,480 (its table: 2.42M); 57 classes (Sara): 2,428,755.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import BertConfig, BertModel

from kdprobe.errors import ConfigError, InputError
from kdprobe.io import read_json
from kdprobe.config import init_model_path
from kdprobe.student_init import check_against_teacher, init_source, spec_layers
from kdprobe.students.channels import (MODES, ChannelEmbedding, teacher_tensors, teacher_vectors, word2vec_vectors,
                                       word_input)
from kdprobe.students.common import Student, WordInput, WordPieceInput, choice, load_input, setting

log = logging.getLogger(__name__)

KIND = "bert_s"
SOURCES = ("random", "teacher", "word2vec")
#: `channel_combine`: how multichannel's two channels meet (`mean`: projected, averaged; `concat`: the thesis's)
CHANNEL_COMBINE = ("mean", "concat")
_EMBEDDING_PREFIXES = (
    "bert.embeddings.word_embeddings.",
    "bert.embeddings.position_embeddings.",
    "bert.embeddings.token_type_embeddings.",
)


def reads_words(settings: dict) -> bool:
    """Whether BERT_S with `settings` reads words (a vocabulary of the transfer set), not wordpieces."""
    return settings.get("embeddings") == "word2vec"


def reads_teacher_ids(settings: dict) -> bool:
    """Whether BERT_S with `settings` reads the teacher's ids (it does on wordpieces: the teacher's tokenizer)."""
    return not reads_words(settings)


class BertStudent(Student):
    kind = KIND
    special_tokens = True

    def __init__(self, config: dict[str, Any], inputs: WordPieceInput | WordInput):
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
        mode = c.get("embedding_mode", "non-static")  # student.json of earlier versions: trainable
        if c["embeddings"] != "random" or mode != "non-static":
            width = c["embedding_dim"]
            # student.json of earlier versions: averaged channels
            if mode == "multichannel" and c.get("channel_combine", "mean") == "concat":
                projection_dim, combine = c["hidden"], "concat-project"  # Linear(2 x width, hidden), as the thesis
            else:
                projection_dim, combine = (c["hidden"] if width != c["hidden"] else None), "mean"
            channels = ChannelEmbedding(c["vocab_size"], width, mode, inputs.pad_id,
                                        projection_dim=projection_dim, combine=combine)
            if c["embeddings"] == "random":
                channels.initialise(self.bert.get_input_embeddings().weight)  # BERT's initialisation
            self.bert.set_input_embeddings(channels)
        self.dropout = nn.Dropout(c["dropout"])
        self.classifier = nn.Linear(c["hidden"], c["n_classes"])
        nn.init.normal_(self.classifier.weight, std=self.bert_config.initializer_range)
        nn.init.zeros_(self.classifier.bias)

    @property
    def reads_teacher_ids(self) -> bool:
        return self.inputs.kind == "wordpieces"

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

    def forward_internals(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, attentions: bool = False
                          ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], tuple[torch.Tensor, ...] | None]:
        """One forward pass: the logits, every hidden state (0 = the embedding output, k = layer k's output) and,
        with `attentions`, each layer's attention probabilities (an attention implementation that returns them:
        `distil_terms.with_attention_maps`)."""
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True,
                        output_attentions=attentions)
        return self.classifier(self.dropout(out.pooler_output)), out.hidden_states, out.attentions

    def layer_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[torch.Tensor]:
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        return list(out.hidden_states[1:])

    def embedding_parameter(self, name: str) -> bool:
        return name.startswith(_EMBEDDING_PREFIXES)


def build(settings: dict, n_classes: int, vocab_info: dict) -> BertStudent:
    kind = "students.bert_s"
    source = choice(settings, "embeddings", SOURCES, None, kind)
    mode = choice(settings, "embedding_mode", MODES, None, kind)
    combine = choice(settings, "channel_combine", CHANNEL_COMBINE, "mean", kind)
    init = _init_source(settings, vocab_info)
    teacher_layers = None if init is None else init[1]
    hidden = int(setting(settings, "hidden", kind=kind))
    max_length = int(setting(settings, "max_length", kind=kind))
    if max_length < 3:
        raise ConfigError(f"{kind}.max_length", f"{max_length} leaves no room for a token between [CLS] and [SEP]")
    matrix = None
    if source == "word2vec":
        inputs: WordPieceInput | WordInput = word_input(vocab_info, kind, special_tokens=True)
        matrix = word2vec_vectors(settings, vocab_info, inputs, kind)
    elif source == "teacher":
        inputs, matrix = teacher_vectors(vocab_info, kind, special_tokens=True)
    else:
        if not vocab_info.get("teacher_dir"):
            raise ConfigError(kind, "BERT_S with random embeddings needs vocab_info['teacher_dir'] (its tokenizer)")
        inputs = WordPieceInput(vocab_info["teacher_dir"], special_tokens=True)
    config = {
        "layers": int(setting(settings, "layers", kind=kind)),
        "hidden": hidden,
        "intermediate": int(setting(settings, "intermediate", kind=kind)),
        "heads": int(setting(settings, "heads", kind=kind)),
        "dropout": float(setting(settings, "dropout", kind=kind)),
        "max_length": max_length,
        "embeddings": source,
        "embedding_mode": mode,
        "channel_combine": combine,
        "embedding_dim": int(matrix.shape[1]) if matrix is not None else hidden,
        "vocab_size": int(matrix.shape[0]) if matrix is not None else inputs.vocab_size,
        "n_classes": int(n_classes),
        "tokens": inputs.kind,
        "labels": vocab_info.get("labels"),
    }
    if init is not None:  # provenance only: loading a student does not read it
        config["init"] = {"from": init_source(settings), "layers": teacher_layers} | (
            {"model": str(init[0])} if init_source(settings) == "pretrained" else {})
    model = BertStudent(config, inputs)
    if matrix is not None:
        model.bert.get_input_embeddings().initialise(matrix)
    if init is not None:
        init_from_teacher(model, init[0], teacher_layers)
    return model


def _init_source(settings: dict, vocab_info: dict) -> tuple[Path, list[int]] | None:
    """The model a BERT_S starts from (`init`: the fine-tuned teacher, or a pre-trained BERT with the teacher's
    vocabulary) and the layer each student layer copies, checked against its config.json before anything is built
    or read; None for a random start."""
    kind, source = "students.bert_s", init_source(settings)
    if source == "random":
        spec_layers(settings)  # `layers` or `every` without `from: teacher`
        return None
    if not vocab_info.get("teacher_dir"):
        raise ConfigError(f"{kind}.init", "init from a BERT needs vocab_info['teacher_dir'] (the tokenizer)")
    model_dir = Path(init_model_path(settings) or vocab_info["teacher_dir"])
    config_file = model_dir / "config.json"
    if not config_file.is_file():
        raise InputError(config_file, f"init from {source} reads the model's config.json: missing")
    what = f"the pre-trained model {model_dir}" if source == "pretrained" else f"the teacher {model_dir}"
    layers = check_against_teacher(settings, read_json(config_file), where=what)
    if source == "pretrained":
        _check_same_vocabulary(model_dir, Path(vocab_info["teacher_dir"]))
    return model_dir, layers


def _check_same_vocabulary(model_dir: Path, teacher_dir: Path) -> None:
    """InputError unless the pre-trained model's tokenizer has the teacher's vocabulary (token -> id): the student
    reads the teacher's wordpieces, so each copied embedding row must be the same wordpiece's."""
    from transformers import AutoTokenizer

    try:
        ours = AutoTokenizer.from_pretrained(str(model_dir)).get_vocab()
    except (OSError, ValueError) as exc:
        raise InputError(model_dir, f"init.model: no tokenizer to compare with the teacher's ({exc})") from None
    if ours != AutoTokenizer.from_pretrained(str(teacher_dir)).get_vocab():
        raise InputError(model_dir, f"students.bert_s.init.model: its vocabulary differs from the teacher's "
                                    f"({teacher_dir}): the student reads the teacher's wordpieces, so the copied "
                                    "embedding rows would belong to other tokens")


_WORD_TABLE = "embeddings.word_embeddings."
_LAYER = re.compile(r"encoder\.layer\.(\d+)\.")


def _teacher_name(name: str, layers: list[int]) -> str:
    """The teacher's `BertModel` parameter that student parameter `name` (of `BertStudent.bert`) starts from."""
    if name.startswith(_WORD_TABLE):  # BERT's own table, or a ChannelEmbedding's static / tuned channel
        if name.endswith(("static.weight", "tuned.weight")) or name == f"{_WORD_TABLE}weight":
            return f"{_WORD_TABLE}weight"
        raise ConfigError("students.bert_s.init", f"{name} has no counterpart in the teacher (a projection of the "
                                                  "word vectors: refused with teacher init)")
    match = _LAYER.match(name)
    return f"encoder.layer.{layers[int(match[1])]}.{name[match.end():]}" if match else name


def init_from_teacher(model: BertStudent, teacher_dir: str | Path, layers: list[int]) -> int:
    """Copy the teacher's tensors into `model` (after its own initialisation), bit for bit: the embeddings (word
    rows 0..V-1, position rows 0..max_length-1, token types, LayerNorm), encoder layer `layers[k]` into layer k,
    the pooler (kept as initialised when the model has none: a masked-LM checkpoint); the classifier keeps its own
    initialisation. `teacher_dir` may be a pre-trained BERT (`init: {from: pretrained}`), whose weights' names
    have a `bert.` prefix or none. Returns the number of tensors copied; the shapes were checked against the
    model's config.json (`student_init.check_against_teacher`) and are again here."""
    wanted = set(layers)

    def select(key: str) -> bool:
        match = _LAYER.search(key)
        return int(match[1]) in wanted if match else ("embeddings." in key or "pooler." in key)

    state = teacher_tensors(teacher_dir, select)
    words = [k for k in state if k.endswith(f"{_WORD_TABLE}weight")]
    if not words:
        raise InputError(teacher_dir, "no BERT embeddings (*embeddings.word_embeddings.weight) in the teacher's weights")
    prefix = min(words, key=len)[: -len(f"{_WORD_TABLE}weight")]  # `bert.` of BertForSequenceClassification
    copied = 0
    with torch.no_grad():
        for name, param in model.bert.named_parameters():
            source = prefix + _teacher_name(name, layers)
            legacy = source.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
            tensor = state.get(source, state.get(legacy))
            if tensor is None and name.startswith("pooler."):  # a masked-LM checkpoint has none: the own stays
                log.warning("no %s in %s: the student's pooler keeps its own initialisation", source, teacher_dir)
                continue
            if tensor is None:
                raise InputError(teacher_dir, f"no tensor {source} in the model's weights (for the student's {name})")
            tensor = tensor[: param.shape[0]] if "embeddings." in name and tensor.dim() == 2 else tensor
            if tensor.shape != param.shape:
                raise InputError(teacher_dir, f"the teacher's {source} is {tuple(tensor.shape)}, the student's "
                                              f"{name} {tuple(param.shape)}")
            param.copy_(tensor)
            copied += 1
    log.info("initialised BERT_S from %s: %d tensors: embeddings (word rows 0..%d, position rows 0..%d, "
             "token types, LayerNorm), teacher layers %s as student layers 0..%d, the pooler; the classifier is "
             "the student's own", teacher_dir, copied, model.config["vocab_size"] - 1, model.max_length - 1, layers,
             len(layers) - 1)
    return copied


def load(config: dict, model_dir: Path) -> BertStudent:
    return BertStudent(config, load_input(config["tokens"], model_dir, special_tokens=True))

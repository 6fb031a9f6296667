"""Random-encoder baselines (Zhang and Bowman 2018): each architecture of the study with random weights, probed at
every layer like the trained model (models `{student}_random` per task and `teacher_random` in scope
`pretrained`), so that a probe's accuracy can be read against what the architecture and its input encoding give
without any training.

- A student (`reinitialise_student`; `kdprobe.distil.build_random_model`, rule `random_student`): built as
  distillation builds it (`distil.read_inputs`, `distil.build`: the same tokenizer or word vocabulary, embedding
  width, channels and projection), then EVERY parameter drawn anew from torch's generator seeded with `seed`
  (forked: the caller's random state is left as it was), module by module in `named_modules` order, the token
  tables last, each with the student's own initialisation:
  - BERT_S: BERT's (`BertConfig.initializer_range`, 0.02): Linear and Embedding weights N(0, 0.02), biases 0, the
    padding row 0, LayerNorm weight 1 and bias 0 (the classifier too, as BERT_S builds it); the projection of
    vectors wider than `hidden` (word2vec, teacher) `nn.Linear.reset_parameters`, as BERT_S builds it; the token
    tables N(0, 0.02), BERT_S's `random` embeddings.
  - LSTM_S: `reset_parameters` of its nn.LSTM and nn.Linear layers (as LSTM_S builds them); the token tables
    U[-0.25, 0.25] (`LSTM_TABLE_BOUND`: LSTM_S's `random` embeddings and its unknown words), the PAD row 0.
  A multichannel student gets one random table in both channels (its channels start equal). Word2vec- and
  teacher-initialised tables are replaced too: nothing trained or pre-trained is left. The student is saved as a
  trained one is (`Student.save`: `student.json`, `model.safetensors`, the vocabulary or tokenizer files), so
  `kdprobe.probe.encoders.load_encoder('bert_s' | 'lstm_s', dir)` probes it.
- The teacher (`build_random_teacher`, rule `random_teacher`): the pre-trained teacher's architecture (its
  `config.json` through `AutoConfig`, no remote code) as the class the fine-tuned teacher is
  (`AutoModelForSequenceClassification.from_config` after `torch.manual_seed(seed)`: the model's own
  initialisation, no weight loaded), saved with the teacher's tokenizer (`save_pretrained`), so
  `load_encoder('teacher', dir)` probes it (its encoder; the head, there so the directory loads as a teacher, is
  never run).

Both live here, not in `kdprobe.teacher` (fine-tuning) or `kdprobe.students` (architectures): one module says how
every random baseline is drawn; `kdprobe.distil.build_random_model`, beside `build_embed_model`, builds the
student as distillation does and calls `reinitialise_student`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from kdprobe.io import atomic_dir
from kdprobe.students.channels import ChannelEmbedding
from kdprobe.students.common import Student

log = logging.getLogger(__name__)

#: LSTM_S's random and unknown word vectors are U[-bound, bound] (`channels.uniform_embeddings`).
LSTM_TABLE_BOUND = 0.25


def token_tables(student: Student) -> list[nn.Embedding]:
    """The student's token-embedding tables: its channels (frozen and trained copies), or BERT's own table."""
    embedding = student.bert.get_input_embeddings() if student.kind == "bert_s" else student.embed
    return embedding.channels() if isinstance(embedding, ChannelEmbedding) else [embedding]


@torch.no_grad()
def _bert_init(module: nn.Module, std: float) -> bool:
    """BERT's initialisation of one module (`BertPreTrainedModel._init_weights`); False for a module it has none
    for."""
    if isinstance(module, nn.LayerNorm):
        module.weight.fill_(1.0)
        module.bias.zero_()
    elif isinstance(module, (nn.Linear, nn.Embedding)):
        module.weight.normal_(0.0, std)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.zero_()
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            module.weight[module.padding_idx].zero_()
    else:
        return False
    return True


@torch.no_grad()
def _table(student: Student, shape: torch.Size) -> torch.Tensor:
    """One random token table as the student initialises random embeddings, its padding row 0."""
    if student.kind == "bert_s":
        matrix = torch.empty(shape).normal_(0.0, student.bert_config.initializer_range)
    else:
        matrix = (torch.rand(shape) * 2 - 1) * LSTM_TABLE_BOUND
    matrix[student.pad_id] = 0
    return matrix


def reinitialise_student(student: Student, seed: int) -> Student:
    """Draw every parameter of `student` anew (in place; see the module's docstring) from torch's generator seeded
    with `seed`; returns it. A module with parameters of its own that this knows no initialisation for is a
    `TypeError`: nothing is left as it was built."""
    tables = token_tables(student)
    table_ids = {id(t) for t in tables}
    # the modules initialised by their own `reset_parameters`: all of LSTM_S's; BERT_S's channel projection
    own = {id(m) for m in (student if student.kind == "lstm_s" else student.bert.get_input_embeddings()).modules()}
    drawn = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        for name, module in student.named_modules():
            params = list(module.parameters(recurse=False))
            if not params or id(module) in table_ids:
                continue
            if id(module) in own and hasattr(module, "reset_parameters"):
                module.reset_parameters()
            elif id(module) in own or not _bert_init(module, student.bert_config.initializer_range):
                raise TypeError(f"{student.kind}: no initialisation for module {name!r} ({type(module).__name__})")
            drawn += len(params)
        matrix = _table(student, tables[0].weight.shape)
        with torch.no_grad():
            for table in tables:
                table.weight.copy_(matrix)
    log.info("%s: every parameter drawn anew from seed %d (%d tensors, %d token tables)", student.kind, seed, drawn,
             len(tables))
    return student


def save_random_student(student: Student, out_dir: str | Path) -> Path:
    """Write `student` as distillation writes a trained one (`Student.save` into a directory renamed into place,
    as `training.RunFiles.write` does)."""
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        student.save(tmp)
    return out_dir


def build_random_teacher(model: str | Path, out_dir: str | Path, seed: int) -> Path:
    """The random teacher (rule `random_teacher`): `model`'s architecture (a hub id or directory: its config and
    tokenizer only, never its weights) with weights from `torch.manual_seed(seed)`, written to `out_dir` (replaced
    atomically) as a fine-tuned teacher directory is (`training.save_pretrained`)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from kdprobe.models import load_errors
    from kdprobe.training import save_pretrained

    with load_errors(model, "the pre-trained teacher"):
        config = AutoConfig.from_pretrained(str(model))
        tokenizer = AutoTokenizer.from_pretrained(str(model))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        net = AutoModelForSequenceClassification.from_config(config, dtype=torch.float32)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        save_pretrained(tmp, net.eval(), tokenizer)
    log.info("wrote %s: %s's architecture (%s, %d layers) with random weights from seed %d", out_dir, model,
             config.model_type, config.num_hidden_layers, seed)
    return out_dir

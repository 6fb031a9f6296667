"""Loading a trained model to run it on sentences: the one place that knows how each kind is loaded.

- `load_hf(model_dir, head=True)`: a Hugging Face BERT directory (or hub id) as `(tokenizer, model)` in fp32, the
  sequence-classification model with `head`, else the bare encoder (the pre-trained teacher); a directory that
  cannot be loaded (a file missing, damaged or truncated) is an `InputError` naming it and the command that
  rebuilds it (`load_errors`). Never with `trust_remote_code`.
- `load_classifier(kind, model_dir, max_length, device)`: the teacher or a student (`kdprobe.students`) behind one
  `Classifier`: its forward, tokenizer, pad id, classes, labels and parameter counts. Sentences are truncated at
  the `max_length` the model was trained with (the teacher's `teacher.max_length`; a student's own, which a given
  value must equal, else the student is stale).
- `batched_logits(forward, ids, pad_id, batch_size, device)`: (N, C) logits in input order from length-sorted
  batches; `infer_logits(model, ids, ...)`: the same for a Hugging Face classifier, on CPU lanes or a GPU, with
  bf16 autocast where the settings ask for it (`bf16: true`: the teacher's dev evaluation, the transfer logits).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from safetensors import SafetensorError

from kdprobe import registry
from kdprobe.batching import pad_batch
from kdprobe.errors import ConfigError, InputError, NonFiniteError
from kdprobe.logs import progress
from kdprobe.runtime import Lanes, autocast, halving_batches, to_device

log = logging.getLogger(__name__)

Forward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@contextlib.contextmanager
def load_errors(model_dir: str | Path, what: str) -> Iterator[None]:
    """Turn what loading a Hugging Face directory raises when a file of it is missing, damaged or truncated
    (`OSError`, `ValueError`, `SafetensorError`) into one `InputError` naming the directory and, for a local one,
    the command that rebuilds it."""
    try:
        yield
    except (OSError, ValueError, SafetensorError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        remedy = f"; rebuild it: snakemake -f {model_dir}" if Path(model_dir).is_dir() else ""
        raise InputError(model_dir, f"cannot load {what}: {detail}{remedy}") from None


def load_hf(model_dir: str | Path, head: bool = True, what: str = "the teacher") -> tuple[Any, torch.nn.Module]:
    """`(tokenizer, model)` of a Hugging Face directory or hub id, in fp32 and eval mode, on the CPU."""
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    loader = AutoModelForSequenceClassification if head else AutoModel
    with load_errors(model_dir, what):
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        model = loader.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    return tokenizer, model


def embedding_parameter_names(model: torch.nn.Module) -> set[str]:
    """Names of the parameters of every `nn.Embedding` of `model` (BERT: word, position and token-type embeddings,
    as BERT_S counts them)."""
    names = set()
    for prefix, module in model.named_modules():
        if isinstance(module, torch.nn.Embedding):
            names |= {f"{prefix}.{name}" if prefix else name for name, _ in module.named_parameters()}
    return names


def parameter_counts(model: torch.nn.Module, is_embedding: Callable[[str], bool]) -> tuple[int, int]:
    """(all parameters, parameters outside the input embeddings)."""
    total = without = 0
    for name, param in model.named_parameters():
        total += param.numel()
        without += 0 if is_embedding(name) else param.numel()
    return total, without


@dataclass
class Classifier:
    """A trained teacher or student, ready to run: `forward(input_ids, attention_mask) -> logits` and
    `tokenize(sentences) -> id lists` (truncated at `max_length`); `labels` are a student's stored label names
    (None for the teacher, whose `labels.txt` is the task's)."""

    kind: str
    module: torch.nn.Module
    forward: Forward
    tokenize: Callable[[list[str]], list[list[int]]]
    pad_id: int
    n_classes: int
    max_length: int
    labels: list[str] | None
    is_embedding: Callable[[str], bool]

    def counts(self) -> tuple[int, int]:
        """(all parameters, parameters outside the input embeddings)."""
        return parameter_counts(self.module, self.is_embedding)

    def to(self, device: torch.device | str) -> "Classifier":
        self.module.to(device).eval()
        return self


def _teacher(model_dir: Path, max_length: int | None) -> Classifier:
    if not max_length:
        raise ConfigError("teacher.max_length", "running the teacher needs the max_length it was trained with")
    tokenizer, model = load_hf(model_dir)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    limit = int(max_length)
    log.info("teacher input truncated at %d tokens (teacher.max_length)", limit)
    return Classifier(
        kind="teacher", module=model, forward=lambda i, m: model(input_ids=i, attention_mask=m).logits,
        tokenize=lambda sentences: tokenizer(sentences, truncation=True, max_length=limit)["input_ids"],
        pad_id=int(pad), n_classes=int(model.config.num_labels), max_length=limit, labels=None,
        is_embedding=embedding_parameter_names(model).__contains__,
    )


def _student(model_dir: Path, max_length: int | None) -> Classifier:
    from kdprobe.students import load_student

    student = load_student(model_dir, "cpu")
    if max_length and int(max_length) != student.max_length:
        raise InputError(model_dir / "student.json", f"the student was trained with max_length {student.max_length}, "
                                                     f"the config says {max_length}: the student is stale, rerun distil")
    log.info("%s input truncated at %d tokens (its training max_length)", student.kind, student.max_length)
    return Classifier(
        kind=student.kind, module=student, forward=student, tokenize=student.tokenize, pad_id=student.pad_id,
        n_classes=int(student.config["n_classes"]), max_length=student.max_length, labels=student.labels,
        is_embedding=student.embedding_parameter,
    )


def load_classifier(kind: str, model_dir: str | Path, max_length: int | None = None,
                    device: torch.device | str = "cpu") -> Classifier:
    """The trained `kind` model (`registry.MODELS`: teacher | bert_s | lstm_s) of `model_dir`, on `device`."""
    if kind not in registry.MODELS:
        raise ConfigError("model", f"unknown model kind {kind!r}; choose one of {list(registry.MODELS)}")
    model_dir = Path(model_dir)
    classifier = _teacher(model_dir, max_length) if kind == "teacher" else _student(model_dir, max_length)
    return classifier.to(device)


def batched_logits(
    forward: Forward,
    sequences: Sequence[Sequence[int]],
    pad_id: int,
    batch_size: int,
    device: torch.device | str,
    desc: str | None = None,
) -> torch.Tensor:
    """(N, C) float32 CPU logits of `forward(input_ids, attention_mask)` over id sequences, in input order;
    batches are formed from length-sorted sequences so padding stays small. The caller sets eval mode. When CUDA
    runs out of memory, that batch and the rest run at half the size (`runtime.halving_batches`)."""
    n = len(sequences)
    order = np.argsort(np.fromiter((len(s) for s in sequences), dtype=np.int64, count=n), kind="stable")
    out: list[torch.Tensor] = []  # a list: `run` fills it at the first batch
    bar = progress(total=n, desc=desc, unit="sent", disable=desc is None)

    def run(start: int, size: int) -> None:
        idx = order[start : start + size]
        enc = pad_batch([sequences[i] for i in idx], pad_id)
        logits = forward(enc["input_ids"].to(device), enc["attention_mask"].to(device)).float().cpu()
        if not out:
            out.append(torch.empty(n, logits.shape[1], dtype=torch.float32))
        out[0][torch.from_numpy(idx)] = logits
        bar.update(len(idx))

    with torch.inference_mode():
        halving_batches(n, batch_size, run, device, "sentences")
    bar.close()
    return out[0] if out else torch.empty(0, 0)


def infer_logits(
    model: Callable[..., Any],
    input_ids: Sequence[Sequence[int]],
    batch_size: int,
    pad_id: int,
    device: torch.device | str,
    settings: dict[str, Any] | None = None,
    bar=None,
    n_classes: int | None = None,
    lanes: Lanes | None = None,
) -> np.ndarray:
    """Logits (n, classes) float32 of a Hugging Face sequence classifier for token id lists, in input order.

    Batches of `batch_size` sentences in descending length order (the largest batch first, so memory
    trouble shows at once), each padded to its longest; `bar` (a tqdm) advances by sentences. On a CPU the
    batches run side by side on `lanes` (default: one per torch thread; `runtime.Lanes`). `model` may be a
    `torch.compile`d module (then give `n_classes`); bf16 autocast on a bf16 GPU when `settings['bf16']` is true.
    """
    device = torch.device(device)
    if isinstance(model, torch.nn.Module):
        model.eval()
    if n_classes is None:
        n_classes = model.config.num_labels
    lengths = np.fromiter((len(s) for s in input_ids), dtype=np.int64, count=len(input_ids))
    order = np.argsort(-lengths, kind="stable")
    out = np.zeros((len(input_ids), n_classes), dtype=np.float32)
    starts = range(0, len(order), batch_size)

    def run(start: int) -> None:
        idx = order[start : start + batch_size]
        batch = to_device(pad_batch([input_ids[i] for i in idx], pad_id), device)
        with torch.inference_mode(), autocast(device, settings or {}, kind="inference"):
            logits = model(**batch).logits
        out[idx] = logits.float().cpu().numpy()
        if bar is not None:
            bar.update(len(idx))

    own = lanes is None
    lanes = Lanes.for_device(device) if own else lanes
    try:
        lanes.map(run, starts)
    finally:
        if own:
            lanes.close()
    return out


def check_finite_logits(logits: np.ndarray | torch.Tensor, where: Callable[[int], str], check: str) -> None:
    """`NonFiniteError` for the first row of `logits` (n, classes) holding a NaN or infinite value, `where(row)`
    naming it and `check` what to look at; nothing is written from such logits."""
    values = np.asarray(logits)
    row = first_nonfinite_row(values)
    if row is not None:
        raise NonFiniteError(where(row), f"the logits {values[row].tolist()} are NaN or infinite; nothing was written",
                             check=check)


def first_nonfinite_row(values: np.ndarray) -> int | None:
    """The index of the first row of `values` (n, classes) holding a NaN or infinite value; None when all are
    finite."""
    bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
    return int(bad[0]) if len(bad) else None

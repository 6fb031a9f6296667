"""Minimum description length of a probing task's labels given a representation, by the online code of Voita and
Titov (2020, "Information-Theoretic Probing with Minimum Description Length", sections 2.2.2 and 3).

The N training examples, in one seeded order, are cut at the timesteps t_1 < t_2 < ... < t_S = N given by the
portions 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.25, 12.5, 25, 50 and 100 percent of N (their schedule; `portion_bounds`).
The first block, examples [0, t_1), is sent with the uniform code, t_1 * log2(K) bits for K classes; each next
block [t_i, t_{i+1}) with -sum log2 p(y | x) under a probe trained on the first t_i examples only. The online
codelength is the sum over blocks; the uniform codelength N * log2(K); compression = uniform / online (1: the
representation tells the probe nothing it could learn from these examples; larger: it does).

Tiny training sets: a boundary is round(portion * N) (halves rounded up), at least 1; boundaries that coincide
(every portion below 1 / N gives 1) are merged into one, so the timesteps are strictly increasing and the last is
always N. With N = 1 there is one block, coded uniformly (compression 1); with N < 1000 the early blocks merge and
fewer probes are trained (N = 20: timesteps 1, 3, 5, 10, 20).

`online_codelength` does the arithmetic over any scorer (testable without training); `probe_codelength` scores
with kdprobe's SentEval probe (`kdprobe.probe.classifier.train_probes`, early stopping on the dev set).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch.nn import functional as F

from kdprobe.errors import NonFiniteError
from kdprobe.probe.classifier import EVAL_BATCH, check_features, setting, standardise, train_probes, training_options

log = logging.getLogger(__name__)

#: Voita and Titov's portions of the training set, in units of 0.01 percent (0.1 % ... 100 %).
PORTIONS = (10, 20, 40, 80, 160, 320, 625, 1250, 2500, 5000, 10000)
_WHOLE = 10000


@dataclass
class MDLResult:
    bits: float  # online codelength of the training labels (bits)
    uniform_bits: float  # N * log2(K)
    compression: float  # uniform_bits / bits
    bounds: list[int]  # timesteps t_1 < ... < t_S = N: block i is [t_{i-1}, t_i), block 1 is [0, t_1)
    block_bits: list[float]  # bits of each block, the first by the uniform code

    def row(self) -> dict[str, float]:
        """The probe table's MDL columns."""
        return {"mdl_bits": self.bits, "uniform_bits": self.uniform_bits, "compression": self.compression}


def portion_bounds(n: int) -> list[int]:
    """Timesteps of the online code for `n` training examples: round(portion * n) (halves up) for every portion in
    `PORTIONS`, at least 1, duplicates merged; strictly increasing, ending at `n`."""
    if n < 1:
        raise ValueError(f"the online code needs at least one training example, got {n}")
    counts = (max(1, (2 * n * p + _WHOLE) // (2 * _WHOLE)) for p in PORTIONS)  # exact integer round-half-up
    return list(dict.fromkeys(counts))


def online_codelength(
    n: int,
    n_classes: int,
    log_probs_of_block: Callable[[int, int], Any],
    desc: str = "online code",
) -> MDLResult:
    """Online codelength of `n` labels of `n_classes` classes.

    `log_probs_of_block(start, end)` trains on examples [0, start) and returns the NATURAL-log probabilities its
    model gives the true labels of examples [start, end), one per example (shape (end - start,)). It is called once
    per block after the first, in order. Non-finite log-probabilities raise `NonFiniteError`.
    """
    if n_classes < 2:
        raise ValueError(f"the online code needs at least 2 classes, got {n_classes}")
    bounds = portion_bounds(n)
    block_bits = [bounds[0] * math.log2(n_classes)]
    log.info("%s: %d examples in %d blocks; block 1 (%d examples, uniform code): %.1f bits",
             desc, n, len(bounds), bounds[0], block_bits[0])
    for i, (start, end) in enumerate(zip(bounds, bounds[1:]), start=2):
        log_probs = np.asarray(log_probs_of_block(start, end), dtype=np.float64)
        if log_probs.shape != (end - start,):
            raise ValueError(f"{desc}: block {i} [{start}, {end}) needs {end - start} log-probabilities, "
                             f"got shape {log_probs.shape}")
        if not np.isfinite(log_probs).all():
            row = start + int(np.flatnonzero(~np.isfinite(log_probs))[0])
            raise NonFiniteError(f"{desc}: block {i}, training example {row + 1}",
                                 "the probe's log-probability of its label is NaN or infinite",
                                 check="the learning rate and the features")
        if (log_probs > 1e-6).any():
            raise ValueError(f"{desc}: block {i} [{start}, {end}) has log-probabilities above 0")
        block_bits.append(float(-log_probs.sum() / math.log(2)))
        log.info("%s: block %d/%d (probe on %d examples, scoring %d): %.1f bits, %.1f so far",
                 desc, i, len(bounds), start, end - start, block_bits[-1], sum(block_bits))
    bits = float(sum(block_bits))
    uniform = n * math.log2(n_classes)
    return MDLResult(bits, uniform, uniform / bits, bounds, block_bits)


@torch.inference_mode()
def _true_label_log_probs(stack: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Natural-log probabilities setting 0 of a trained `ProbeStack` gives labels `y` of features `x`."""
    stack.eval()
    out = []
    for start in range(0, len(y), EVAL_BATCH):
        logits = stack(x[start : start + EVAL_BATCH])[0]  # setting 0: (rows, classes)
        log_probs = F.log_softmax(logits.double(), dim=-1)
        out.append(log_probs.gather(1, y[start : start + EVAL_BATCH, None])[:, 0].cpu())
    return torch.cat(out).numpy()


def probe_codelength(
    x_train: Any,
    y_train: Any,
    x_dev: Any,
    y_dev: Any,
    n_classes: int,
    hidden: int,
    dropout: float,
    weight_decay: float,
    settings: dict[str, Any],
    seed: int,
    device: str | torch.device = "cpu",
    desc: str = "online code",
) -> MDLResult:
    """Online codelength of the training labels given the features, with kdprobe's SentEval probe.

    The training examples are put in the order of a permutation seeded with `seed` (numpy's `default_rng`); for
    each block after the first a fresh probe of one setting (`hidden` 0: logistic regression, then `dropout` must
    be 0) is trained by `train_probes` on the examples before the block, with early stopping on the whole dev set
    and `settings` (the `probe` config section: `lr`, `batch_size`, `epoch_size`, `tenacity`, `max_epoch`,
    `standardise`), seed `seed`; the block is coded with its log-softmax. `standardise` uses the statistics of
    all N training features, as `fit_grid` does: the online code transmits labels only, the features are known to
    sender and receiver alike (and a few examples' statistics would blow the features up).
    """
    device = torch.device(device)
    x_tr, x_dev = (torch.as_tensor(x, dtype=torch.float32) for x in (x_train, x_dev))
    y_tr, y_dev = (torch.as_tensor(y, dtype=torch.long) for y in (y_train, y_dev))
    check_features(desc, {"train": (x_tr, y_tr), "dev": (x_dev, y_dev)})
    for name, y in {"train": y_tr, "dev": y_dev}.items():
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= n_classes):
            raise ValueError(f"{desc}: {name} labels must lie in [0, {n_classes})")
    if len(y_dev) == 0:
        raise ValueError(f"{desc}: the probe needs at least one dev example for early stopping")
    order = torch.as_tensor(np.random.default_rng(seed).permutation(len(y_tr)))
    x_tr, y_tr = x_tr[order].to(device), y_tr[order].to(device)
    x_dev, y_dev = x_dev.to(device), y_dev.to(device)
    if setting(settings, "standardise"):
        x_tr, x_dev = standardise(x_tr, x_dev)
    train_kw = training_options(settings) | {"seed": int(seed)}

    def log_probs_of_block(start: int, end: int) -> np.ndarray:
        trained = train_probes(x_tr[:start], y_tr[:start], x_dev, y_dev, n_classes, [int(hidden)], [float(dropout)],
                               [float(weight_decay)], desc=f"{desc} (probe on {start} examples)", **train_kw)
        return _true_label_log_probs(trained.stack, x_tr[start:end], y_tr[start:end])

    return online_codelength(len(y_tr), n_classes, log_probs_of_block, desc=desc)

"""The SentEval MLP probe and its hyper-parameter grid.

Probe: `Linear(d, hidden) -> sigmoid -> dropout -> Linear(hidden, n_classes)` (`hidden: 0` gives logistic
regression: dropout on the input, then one linear layer). Adam, cross-entropy, mini-batches drawn from a seeded
permutation of the full training tensor (no DataLoader). After every epoch the dev accuracy is evaluated; training
stops after `patience` evaluations in a row without a strictly better dev accuracy, or after `max_epochs`; the
best-dev weights are kept. Features are standardised with training-set statistics. On a CPU the probes train on
one thread: their matrices are too small for intra-op parallelism to pay, and on a busy node spinning worker
threads made a grid 10-20x slower.

`fit_grid` trains one probe per `grid.hidden` x `grid.dropout` setting (hidden outer, dropout inner) and reports
the TEST accuracy of the setting with the best dev accuracy; ties go to the first setting in grid order. Every
setting starts from the same seed, so a setting's score does not depend on its place in the grid.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

log = logging.getLogger(__name__)

_EVAL_BATCH = 16384


@dataclass
class GridResult:
    test_acc: float
    dev_acc: float
    hidden: int
    dropout: float
    majority_acc: float
    n_train: int
    n_dev: int
    n_test: int
    epochs: int  # epochs trained by the chosen setting (including the patience tail)
    #: every setting tried, in grid order: hidden, dropout, dev_acc, test_acc, epochs
    grid: list[dict[str, Any]] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("grid")
        return out


def build_probe(dim: int, hidden: int, dropout: float, n_classes: int) -> nn.Module:
    if hidden <= 0:
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, n_classes))
    return nn.Sequential(nn.Linear(dim, hidden), nn.Sigmoid(), nn.Dropout(dropout), nn.Linear(hidden, n_classes))


def majority_accuracy(y_train: Any, y_test: Any) -> float:
    """Accuracy on the test labels of always predicting the most frequent TRAINING label (ties: lowest index)."""
    y_train = np.asarray(torch.as_tensor(y_train).cpu(), dtype=np.int64)
    y_test = np.asarray(torch.as_tensor(y_test).cpu(), dtype=np.int64)
    if len(y_train) == 0 or len(y_test) == 0:
        return 0.0
    majority = int(np.bincount(y_train).argmax())
    return float((y_test == majority).mean())


def standardise(x_train: torch.Tensor, *others: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Centre and scale every split with the training mean and standard deviation (constant features: scale 1)."""
    mean = x_train.mean(0, keepdim=True)
    std = x_train.std(0, unbiased=False, keepdim=True)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    return tuple((x - mean) / std for x in (x_train, *others))


@contextlib.contextmanager
def _one_cpu_thread(device: torch.device):
    if device.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@torch.inference_mode()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    if len(y) == 0:
        return 0.0
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=y.device)
    for start in range(0, len(y), _EVAL_BATCH):
        pred = model(x[start : start + _EVAL_BATCH]).argmax(-1)
        correct += (pred == y[start : start + _EVAL_BATCH]).sum()
    model.train(was_training)
    return correct.item() / len(y)


def train_probe(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_dev: torch.Tensor,
    y_dev: torch.Tensor,
    n_classes: int,
    hidden: int,
    dropout: float,
    *,
    lr: float = 1e-3,
    batch_size: int = 64,
    patience: int = 5,
    max_epochs: int = 200,
    seed: int = 42,
) -> tuple[nn.Module, float, int]:
    """Train one probe with early stopping on dev accuracy; return (best-dev model, best dev accuracy, epochs).

    Tensors must already be standardised and on one device. Deterministic for a given seed and device.
    """
    device = x_train.device
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), _one_cpu_thread(device):
        torch.manual_seed(seed)
        model = build_probe(x_train.shape[1], hidden, dropout, n_classes).to(device)
        # The fused kernel (CPU and CUDA) cuts the per-step overhead that dominates these tiny models.
        fused = device.type in ("cpu", "cuda")
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, fused=fused or None)
        order_rng = torch.Generator().manual_seed(seed)
        n = len(y_train)
        best_acc, best_state, bad, epoch = -1.0, None, 0, 0
        for epoch in range(1, max_epochs + 1):
            model.train()
            perm = torch.randperm(n, generator=order_rng).to(device)
            for start in range(0, n, batch_size):
                idx = perm[start : start + batch_size]
                loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            dev_acc = accuracy(model, x_dev, y_dev)
            if dev_acc > best_acc:
                best_acc, bad = dev_acc, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                bad += 1
                if bad >= patience:
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return model, best_acc, epoch


def fit_grid(
    train: tuple[torch.Tensor, torch.Tensor],
    dev: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    settings: dict[str, Any],
    n_classes: int | None = None,
    device: str | torch.device = "cpu",
) -> GridResult:
    """Fit the probe for every grid setting; report the test accuracy of the best-dev setting.

    `train`, `dev`, `test` are `(features (N, d), labels (N,) int)`; `settings` is the `probe` config section
    (`grid.hidden`, `grid.dropout`, `lr`, `batch_size`, `patience`, `max_epochs`, `seed`). `n_classes` defaults
    to the largest label in any split + 1.
    """
    device = torch.device(device)
    (x_tr, y_tr), (x_dev, y_dev), (x_te, y_te) = (
        (torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)) for x, y in (train, dev, test)
    )
    for name, (x, y) in {"train": (x_tr, y_tr), "dev": (x_dev, y_dev), "test": (x_te, y_te)}.items():
        if x.ndim != 2 or len(x) != len(y):
            raise ValueError(f"{name}: features {tuple(x.shape)} do not match labels {tuple(y.shape)}")
    if len(y_tr) == 0 or len(y_dev) == 0:
        raise ValueError("the probe needs at least one training and one dev example")
    if n_classes is None:
        n_classes = int(max(y.max().item() if len(y) else 0 for y in (y_tr, y_dev, y_te))) + 1
    x_tr, x_dev, x_te = standardise(x_tr, x_dev, x_te)
    x_tr, x_dev, x_te = (x.to(device) for x in (x_tr, x_dev, x_te))
    y_tr, y_dev, y_te = (y.to(device) for y in (y_tr, y_dev, y_te))
    grid = settings["grid"]
    if not grid["hidden"] or not grid["dropout"]:
        raise ValueError("probe.grid: `hidden` and `dropout` need at least one value each")
    best: dict[str, Any] | None = None
    tried = []
    for hidden, dropout in ((h, p) for h in grid["hidden"] for p in grid["dropout"]):
        start = time.perf_counter()
        model, dev_acc, epochs = train_probe(
            x_tr, y_tr, x_dev, y_dev, n_classes, int(hidden), float(dropout),
            lr=float(settings["lr"]), batch_size=int(settings["batch_size"]),
            patience=int(settings["patience"]), max_epochs=int(settings["max_epochs"]),
            seed=int(settings["seed"]),
        )
        entry = {
            "hidden": int(hidden), "dropout": float(dropout), "dev_acc": dev_acc,
            "test_acc": accuracy(model, x_te, y_te), "epochs": epochs,
        }
        tried.append(entry)
        log.debug("probe hidden=%d dropout=%.2f: dev %.4f test %.4f after %d epochs (%.1f s)",
                  entry["hidden"], entry["dropout"], dev_acc, entry["test_acc"], epochs,
                  time.perf_counter() - start)
        if best is None or dev_acc > best["dev_acc"]:
            best = entry
    return GridResult(
        test_acc=best["test_acc"],
        dev_acc=best["dev_acc"],
        hidden=best["hidden"],
        dropout=best["dropout"],
        majority_acc=majority_accuracy(y_tr, y_te),
        n_train=len(y_tr),
        n_dev=len(y_dev),
        n_test=len(y_te),
        epochs=best["epochs"],
        grid=tried,
    )

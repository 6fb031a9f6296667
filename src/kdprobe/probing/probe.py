"""The SentEval MLP probe and its hyper-parameter grid.

Probe: `Linear(d, hidden) -> sigmoid -> dropout -> Linear(hidden, n_classes)` (`hidden: 0` gives logistic
regression: dropout on the input, then one linear layer). Adam, cross-entropy, mini-batches drawn from a seeded
permutation of the full training tensor (no DataLoader). After every epoch the dev accuracy is evaluated; training
stops after `patience` evaluations in a row without a strictly better dev accuracy, or after `max_epochs`; the
best-dev weights are kept. Features are standardised with training-set statistics.

`fit_grid` trains one probe per `grid.hidden` x `grid.dropout` setting and reports the TEST accuracy of the
setting with the best dev accuracy; ties go to the first setting in grid order (hidden outer, dropout inner). The
settings train side by side as one `ProbeStack` (one optimiser step for all of them: these models are so small
that per-step overhead, not arithmetic, sets their speed), each with its own initial weights, dropout masks and
early stopping from its own seeded generator, so a setting's score does not depend on the rest of the grid. On a
CPU the probes train on one thread: their matrices are too small for intra-op parallelism to pay, and on a busy
node spinning worker threads made a grid 10-20x slower.
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


class ProbeStack(nn.Module):
    """Several probes of one input width, trained side by side as one module: `hiddens[s]`, `dropouts[s]` are
    setting s's sizes (all 0: logistic regressions; all > 0: MLPs padded to the widest, the padding masked out).

    Setting s draws its initial weights and its dropout masks from its own generator seeded with `seed`, and its
    loss is its own mean cross-entropy, so its training does not depend on the other settings in the stack.
    Weights are initialised as `nn.Linear` does (U(-1/sqrt(fan_in), 1/sqrt(fan_in))).
    """

    def __init__(self, dim: int, hiddens: list[int], dropouts: list[float], n_classes: int, seed: int,
                 device: torch.device):
        super().__init__()
        if len({h > 0 for h in hiddens}) != 1:
            raise ValueError("a probe stack holds either logistic regressions (hidden 0) or MLPs, not both")
        self.hiddens, self.dropouts, self.n_classes = list(hiddens), list(dropouts), n_classes
        self.generators = [torch.Generator(device=device).manual_seed(seed) for _ in hiddens]
        self.mlp = hiddens[0] > 0
        width = max(hiddens) if self.mlp else dim  # what dropout applies to: hidden units, or the input
        self.width = width
        n = len(hiddens)
        self.mask = torch.zeros(n, width, device=device)
        for s, h in enumerate(hiddens):
            self.mask[s, : (h if self.mlp else dim)] = 1.0
        self.keep_scale = torch.tensor([1.0 / (1.0 - p) for p in dropouts], device=device)[:, None]

        def uniform(g, fan_in, *shape):
            bound = 1.0 / fan_in**0.5
            return (torch.rand(*shape, generator=g, device=device) * 2 - 1) * bound

        w1, b1, w2, b2 = [], [], [], []
        for g, h in zip(self.generators, hiddens):
            if self.mlp:
                w1.append(F.pad(uniform(g, dim, h, dim).T, (0, width - h)))
                b1.append(F.pad(uniform(g, dim, h), (0, width - h)))
                w2.append(F.pad(uniform(g, h, n_classes, h).T, (0, 0, 0, width - h)))
                b2.append(uniform(g, h, n_classes))
            else:
                w2.append(uniform(g, dim, n_classes, dim).T)
                b2.append(uniform(g, dim, n_classes))
        if self.mlp:
            self.w1 = nn.Parameter(torch.stack(w1, dim=1))  # (dim, settings, width): one matmul for all settings
            self.b1 = nn.Parameter(torch.stack(b1))  # (settings, width)
        self.w2 = nn.Parameter(torch.stack(w2))  # (settings, width, classes)
        self.b2 = nn.Parameter(torch.stack(b2))  # (settings, classes)

    def _keep(self, rows: int) -> torch.Tensor:
        """Dropout keep-masks (settings, rows, width), scaled by 1/(1-p), zero at padded units."""
        if not self.training:
            return self.mask[:, None, :]
        keep = []
        for s, (g, p) in enumerate(zip(self.generators, self.dropouts)):
            if p > 0:
                keep.append((torch.rand(rows, self.width, generator=g, device=self.mask.device) >= p) * self.mask[s])
            else:
                keep.append(self.mask[s].expand(rows, -1))
        return torch.stack(keep) * self.keep_scale[:, :, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (settings, rows, classes) of every setting for features `x` (rows, dim)."""
        rows = len(x)
        if self.mlp:
            h = torch.sigmoid(torch.addmm(self.b1.reshape(-1), x, self.w1.reshape(x.shape[1], -1)))
            h = h.view(rows, len(self.hiddens), self.width).transpose(0, 1) * self._keep(rows)
        else:
            h = x[None] * self._keep(rows)
        return torch.baddbmm(self.b2[:, None, :], h, self.w2)

    @torch.inference_mode()
    def accuracies(self, x: torch.Tensor, y: torch.Tensor) -> list[float]:
        """Accuracy of every setting on `(x, y)`."""
        if len(y) == 0:
            return [0.0] * len(self.hiddens)
        was_training = self.training
        self.eval()
        correct = torch.zeros(len(self.hiddens), dtype=torch.long, device=y.device)
        for start in range(0, len(y), _EVAL_BATCH):
            pred = self(x[start : start + _EVAL_BATCH]).argmax(-1)
            correct += (pred == y[start : start + _EVAL_BATCH]).sum(1)
        self.train(was_training)
        return (correct.double() / len(y)).tolist()

    def setting_dims(self) -> dict[str, int]:
        """The dimension of each parameter that indexes the settings."""
        return {"w1": 1, "b1": 0, "w2": 0, "b2": 0} if self.mlp else {"w2": 0, "b2": 0}


@dataclass
class TrainedProbes:
    stack: ProbeStack  # every setting at its best-dev weights
    dev_acc: list[float]  # best dev accuracy of each setting
    epochs: list[int]  # epochs each setting trained (including its patience tail)


def train_probes(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_dev: torch.Tensor,
    y_dev: torch.Tensor,
    n_classes: int,
    hiddens: list[int],
    dropouts: list[float],
    *,
    lr: float = 1e-3,
    batch_size: int = 64,
    patience: int = 5,
    max_epochs: int = 200,
    seed: int = 42,
) -> TrainedProbes:
    """Train one probe per (hiddens[s], dropouts[s]) side by side, each with its own early stopping on dev accuracy.

    All settings see the same mini-batches (a permutation seeded with `seed` per epoch). A setting stops after
    `patience` epochs in a row without a strictly better dev accuracy, or after `max_epochs`; its best-dev weights
    are kept. The stack trains until every setting has stopped (settings that stopped go on computing, but their
    kept weights, accuracy and epochs are those of their own run). Tensors must already be standardised and on one
    device. Deterministic for a given seed and device.
    """
    device = x_train.device
    with _one_cpu_thread(device):
        stack = ProbeStack(x_train.shape[1], hiddens, dropouts, n_classes, seed, device)
        dims = stack.setting_dims()
        # The fused kernel (CPU and CUDA) cuts the per-step overhead that dominates these small models.
        optimizer = torch.optim.Adam(stack.parameters(), lr=lr, fused=device.type in ("cpu", "cuda") or None)
        order_rng = torch.Generator().manual_seed(seed)
        n, settings = len(y_train), len(hiddens)
        best = {name: p.detach().clone() for name, p in stack.named_parameters()}
        best_acc, bad, epochs = [-1.0] * settings, [0] * settings, [0] * settings
        active = list(range(settings))
        for epoch in range(1, max_epochs + 1):
            stack.train()
            perm = torch.randperm(n, generator=order_rng).to(device)
            for start in range(0, n, batch_size):
                idx = perm[start : start + batch_size]
                logits = stack(x_train[idx])  # (settings, batch, classes)
                loss = F.cross_entropy(logits.reshape(-1, n_classes), y_train[idx].repeat(settings),
                                       reduction="sum") / len(idx)  # the sum of every setting's mean loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            dev_acc = stack.accuracies(x_dev, y_dev)
            improved = [s for s in active if dev_acc[s] > best_acc[s]]
            if improved:
                index = torch.tensor(improved, device=device)
                with torch.no_grad():
                    for name, p in stack.named_parameters():
                        best[name].index_copy_(dims[name], index, p.index_select(dims[name], index))
            for s in active:
                epochs[s] = epoch
                if s in improved:
                    best_acc[s], bad[s] = dev_acc[s], 0
                else:
                    bad[s] += 1
            active = [s for s in active if bad[s] < patience]
            if not active:
                break
        with torch.no_grad():
            for name, p in stack.named_parameters():
                p.copy_(best[name])
    stack.eval()
    return TrainedProbes(stack, best_acc, epochs)


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
    pairs = [(int(h), float(p)) for h in grid["hidden"] for p in grid["dropout"]]
    tried: list[dict[str, Any]] = []
    for group in ([pair for pair in pairs if pair[0] <= 0], [pair for pair in pairs if pair[0] > 0]):
        if not group:
            continue
        start = time.perf_counter()
        trained = train_probes(
            x_tr, y_tr, x_dev, y_dev, n_classes, [h for h, _ in group], [p for _, p in group],
            lr=float(settings["lr"]), batch_size=int(settings["batch_size"]),
            patience=int(settings["patience"]), max_epochs=int(settings["max_epochs"]),
            seed=int(settings["seed"]),
        )
        test_acc = trained.stack.accuracies(x_te, y_te)
        for s, (hidden, dropout) in enumerate(group):
            tried.append({"hidden": hidden, "dropout": dropout, "dev_acc": trained.dev_acc[s],
                          "test_acc": test_acc[s], "epochs": trained.epochs[s]})
        log.debug("probes %s: %.1f s", group, time.perf_counter() - start)
    tried.sort(key=lambda entry: pairs.index((entry["hidden"], entry["dropout"])))
    best = max(tried, key=lambda entry: entry["dev_acc"])  # the first in grid order on ties
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

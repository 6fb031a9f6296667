"""SentEval's probe (`senteval/tools/classifier.py`, class `MLP`; `senteval/tools/validation.py`,
`SplitClassifier`) and the hyper-parameter grid around it.

Probe: `Linear(d, hidden) -> Dropout(p) -> Sigmoid -> Linear(hidden, n_classes)`, dropout BEFORE the sigmoid (a
dropped unit outputs sigmoid(0) = 0.5); `hidden: 0` is logistic regression, `Linear(d, n_classes)` alone, with no
dropout. Weights initialised as `nn.Linear` does. Raw features (SentEval standardises nothing; `standardise`
centres and scales with training statistics, as an option). Adam (torch defaults but `lr`) with an L2 penalty
added to the gradient (Adam's coupled `weight_decay`, as SentEval sets it) on every weight and bias; mean
cross-entropy over mini-batches of `batch_size` drawn from a seeded permutation per pass (the batch mean: SentEval
sets `size_average = False` after building its loss, which has no effect on PyTorch >= 0.4.1).

Early stopping as SentEval's `PyTorchClassifier.fit`: training runs in rounds of `epoch_size` passes over the
training set, with the dev accuracy after each round; a round with a strictly better dev accuracy saves the
weights, every other round adds one to a count that is never reset, and the round that finds the count already at
`tenacity` stops training (so the (tenacity + 1)-th round without a new best). A round starts while the passes
so far are at most `max_epoch` (SentEval's `nepoch <= max_epoch`: at most 51 rounds, 204 passes, by default).
The best round's weights are kept.

`fit_grid` trains one probe per `grid.hidden` x `grid.dropout` x `grid.weight_decay` setting (the weight decay
innermost: SentEval's `SplitClassifier` searches it within each classifier setting) and reports the TEST accuracy
of the setting with the best dev accuracy. Dev accuracies are compared as SentEval does, in percent rounded to two
decimals, ties going to the first setting in grid order. SentEval then retrains the chosen setting with the same
seed and scores that on test; training is deterministic here, so the kept weights of the chosen setting are
scored instead.

The settings train side by side as one `ProbeStack` (one optimiser step for all of them: these models are so
small that per-step overhead, not arithmetic, sets their speed), each with its own initial weights, dropout masks,
weight decay and early stopping, drawn from its own seeded generator, so a setting's score does not depend on the
rest of the grid. On a CPU the probes train on one thread: their matrices are too small for intra-op parallelism
to pay, and on a busy node spinning worker threads made a grid 10-20x slower.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from kdprobe.errors import ConfigError, NonFiniteError
from kdprobe.logs import progress
from kdprobe.runtime import single_thread

log = logging.getLogger(__name__)

_EVAL_BATCH = 16384


def setting(settings: dict[str, Any], *path: str) -> Any:
    """`settings[path[0]][path[1]]...` of the `probe` config section; a missing key is a `ConfigError`."""
    value: Any = settings
    for key in path:
        try:
            value = value[key]
        except (KeyError, TypeError):
            raise ConfigError("probe." + ".".join(path), "missing") from None
    return value


@dataclass
class GridResult:
    test_acc: float
    dev_acc: float
    hidden: int  # 0: logistic regression
    dropout: float  # applied dropout (0 for logistic regression, which has none)
    weight_decay: float
    epochs: int  # passes over the training set the chosen setting trained (SentEval's `nepoch`)
    majority_acc: float
    n_train: int
    n_dev: int
    n_test: int
    #: every setting tried, in grid order: hidden, dropout, weight_decay, dev_acc, test_acc, epochs
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


class ProbeStack(nn.Module):
    """Several probes of one input width, trained side by side as one module. Setting s has `hiddens[s]` hidden
    units, dropout `dropouts[s]` and L2 penalty `weight_decays[s]`; all hidden sizes 0 (logistic regressions,
    dropout 0) or all > 0 (MLPs padded to the widest, the padding masked out).

    Setting s draws its initial weights and its dropout masks (of its own width) from its own generator seeded
    with `seed`, its loss is its own mean cross-entropy and its penalty its own, so its training does not depend on
    the other settings in the stack. Weights are initialised as `nn.Linear` does (U(-1/sqrt(fan_in),
    1/sqrt(fan_in)) for weights and biases).
    """

    def __init__(self, dim: int, hiddens: list[int], dropouts: list[float], weight_decays: list[float],
                 n_classes: int, seed: int, device: torch.device):
        super().__init__()
        if not len(hiddens) == len(dropouts) == len(weight_decays):
            raise ValueError("hiddens, dropouts and weight_decays need one value per setting")
        if len({h > 0 for h in hiddens}) != 1:
            raise ValueError("a probe stack holds either logistic regressions (hidden 0) or MLPs, not both")
        self.mlp = hiddens[0] > 0
        if not self.mlp and any(dropouts):
            raise ValueError("logistic regression (hidden 0) has no dropout")
        self.hiddens, self.dropouts, self.n_classes = list(hiddens), list(dropouts), n_classes
        self.generators = [torch.Generator(device=device).manual_seed(seed) for _ in hiddens]
        self.width = width = max(hiddens) if self.mlp else dim
        self.register_buffer("weight_decay", torch.tensor(weight_decays, dtype=torch.float32, device=device))
        mask = torch.zeros(len(hiddens), width, device=device)  # 1 at a setting's own hidden units
        for s, h in enumerate(hiddens):
            mask[s, : (h if self.mlp else dim)] = 1.0
        self.register_buffer("mask", mask)

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

    def _dropout_scale(self, rows: int) -> torch.Tensor:
        """Dropout masks (settings, rows, width), kept units scaled by 1/(1-p); setting s draws (rows, hiddens[s])
        values from its own generator, whatever the stack's width."""
        scale = []
        for g, h, p in zip(self.generators, self.hiddens, self.dropouts):
            if p > 0:
                keep = (torch.rand(rows, h, generator=g, device=self.mask.device) >= p).float() / (1.0 - p)
                scale.append(F.pad(keep, (0, self.width - h)))
            else:
                scale.append(torch.ones(rows, self.width, device=self.mask.device))
        return torch.stack(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (settings, rows, classes) of every setting for features `x` (rows, dim)."""
        if not self.mlp:
            return torch.matmul(x, self.w2) + self.b2[:, None, :]
        rows = len(x)
        pre = torch.addmm(self.b1.reshape(-1), x, self.w1.reshape(x.shape[1], -1))
        pre = pre.view(rows, len(self.hiddens), self.width).transpose(0, 1)  # (settings, rows, width)
        if self.training and any(self.dropouts):
            pre = pre * self._dropout_scale(rows)  # dropout, then the sigmoid
        h = torch.sigmoid(pre) * self.mask[:, None, :]  # padded units (sigmoid(0) = 0.5) switched off
        return torch.baddbmm(self.b2[:, None, :], h, self.w2)

    def add_weight_decay(self) -> None:
        """Add each setting's L2 penalty to its gradients (`grad += weight_decay * param`, as Adam's own)."""
        if not bool(self.weight_decay.any()):
            return
        dims = self.setting_dims()
        for name, p in self.named_parameters():
            shape = [1] * p.ndim
            shape[dims[name]] = -1
            p.grad.add_(p.detach() * self.weight_decay.view(shape))

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
    epochs: list[int]  # passes over the training set each setting trained (its rounds x epoch_size)


def train_probes(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_dev: torch.Tensor,
    y_dev: torch.Tensor,
    n_classes: int,
    hiddens: list[int],
    dropouts: list[float],
    weight_decays: list[float] | None = None,
    *,
    lr: float = 1e-3,
    batch_size: int = 64,
    epoch_size: int = 4,
    tenacity: int = 5,
    max_epoch: int = 200,
    seed: int = 42,
    desc: str = "probes",
) -> TrainedProbes:
    """Train one probe per (hiddens[s], dropouts[s], weight_decays[s]) side by side, each with SentEval's early
    stopping on dev accuracy (module docstring): rounds of `epoch_size` passes, stop at the round that finds
    `tenacity` earlier rounds without a new best, no round started after `max_epoch` passes; best-round weights.

    All settings see the same mini-batches (a permutation seeded with `seed` per pass). The stack trains until
    every setting has stopped (settings that stopped go on computing, but their kept weights, accuracy and passes
    are those of their own run). Weight decays default to 0. Tensors must already be on one device.
    Deterministic for a given seed and device.
    """
    if min(epoch_size, tenacity + 1, max_epoch + 1, batch_size) < 1:
        raise ValueError("epoch_size and batch_size must be >= 1, tenacity and max_epoch >= 0")
    weight_decays = [0.0] * len(hiddens) if weight_decays is None else list(weight_decays)
    device = x_train.device
    with single_thread(device):
        stack = ProbeStack(x_train.shape[1], hiddens, dropouts, weight_decays, n_classes, seed, device)
        dims = stack.setting_dims()
        # The fused kernel (CPU and CUDA) cuts the per-step overhead that dominates these small models.
        optimizer = torch.optim.Adam(stack.parameters(), lr=lr, fused=device.type in ("cpu", "cuda") or None)
        order_rng = torch.Generator().manual_seed(seed)
        n, settings = len(y_train), len(hiddens)
        best = {name: p.detach().clone() for name, p in stack.named_parameters()}
        best_acc, bad, epochs = [-1.0] * settings, [0] * settings, [0] * settings
        active = list(range(settings))
        passes = 0
        bar = progress(total=max_epoch // epoch_size + 1, desc=desc, unit="round")
        while active and passes <= max_epoch:
            stack.train()
            for _ in range(epoch_size):
                perm = torch.randperm(n, generator=order_rng).to(device)
                for start in range(0, n, batch_size):
                    idx = perm[start : start + batch_size]
                    logits = stack(x_train[idx])  # (settings, batch, classes)
                    loss = F.cross_entropy(logits.reshape(-1, n_classes), y_train[idx].repeat(settings),
                                           reduction="sum") / len(idx)  # the sum of every setting's mean loss
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    stack.add_weight_decay()
                    optimizer.step()
            passes += epoch_size
            dev_acc = stack.accuracies(x_dev, y_dev)
            improved = [s for s in active if dev_acc[s] > best_acc[s]]
            if improved:
                index = torch.tensor(improved, device=device)
                with torch.no_grad():
                    for name, p in stack.named_parameters():
                        best[name].index_copy_(dims[name], index, p.index_select(dims[name], index))
            stopped = []
            for s in active:
                epochs[s] = passes
                if s in improved:
                    best_acc[s] = dev_acc[s]
                elif bad[s] >= tenacity:
                    stopped.append(s)
                else:
                    bad[s] += 1
            active = [s for s in active if s not in stopped]
            bar.update()
            bar.set_postfix(training=len(active), best_dev=f"{max(best_acc):.4f}", refresh=False)
        bar.close()
        with torch.no_grad():
            for name, p in stack.named_parameters():
                p.copy_(best[name])
    stack.eval()
    return TrainedProbes(stack, best_acc, epochs)


def grid_settings(settings: dict[str, Any], logistic: bool = False) -> list[tuple[int, float, float]]:
    """The `(hidden, dropout, weight_decay)` settings of the `probe.grid`, in grid order: hidden outer, then dropout,
    weight decay innermost. Logistic regression (hidden 0; every setting when `logistic`, SentEval's rule for
    WordContent, which then reads `grid.weight_decay` only) has no dropout: it enters once per weight decay, with
    dropout 0.
    """
    decays = [float(w) for w in setting(settings, "grid", "weight_decay")]
    if logistic:
        shapes = [(0, 0.0)]
    else:
        shapes = [(int(h), float(p) if int(h) > 0 else 0.0)
                  for h in setting(settings, "grid", "hidden") for p in setting(settings, "grid", "dropout")]
    if not shapes or not decays:
        raise ConfigError("probe.grid", "`hidden`, `dropout` and `weight_decay` need at least one value each")
    return list(dict.fromkeys((h, p, w) for h, p in shapes for w in decays))


def fit_grid(
    train: tuple[torch.Tensor, torch.Tensor],
    dev: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    settings: dict[str, Any],
    n_classes: int | None = None,
    device: str | torch.device = "cpu",
    *,
    logistic: bool = False,
    desc: str = "probes",
) -> GridResult:
    """Fit the probe for every grid setting; report the test accuracy of the best-dev setting.

    `train`, `dev`, `test` are `(features (N, d), labels (N,) int)`; `settings` is the `probe` config section
    (`grid.hidden`, `grid.dropout`, `grid.weight_decay`, `standardise`, `lr`, `batch_size`, `epoch_size`,
    `tenacity`, `max_epoch`, `seed`). `logistic`: logistic regression whatever `grid.hidden` says (SentEval's
    WordContent). `n_classes` defaults to the largest label in any split + 1.
    """
    device = torch.device(device)
    (x_tr, y_tr), (x_dev, y_dev), (x_te, y_te) = (
        (torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)) for x, y in (train, dev, test)
    )
    for name, (x, y) in {"train": (x_tr, y_tr), "dev": (x_dev, y_dev), "test": (x_te, y_te)}.items():
        if x.ndim != 2 or len(x) != len(y):
            raise ValueError(f"{name}: features {tuple(x.shape)} do not match labels {tuple(y.shape)}")
        finite = torch.isfinite(x).all(dim=1)
        if not finite.all():
            row = int((~finite).nonzero()[0])
            raise NonFiniteError(f"{desc}: {name} sentence {row + 1}", "its features are NaN or infinite; no probe "
                                 "was trained", check="the model's weights and that sentence")
    if len(y_tr) == 0 or len(y_dev) == 0:
        raise ValueError("the probe needs at least one training and one dev example")
    if n_classes is None:
        n_classes = int(max(y.max().item() if len(y) else 0 for y in (y_tr, y_dev, y_te))) + 1
    if setting(settings, "standardise"):
        x_tr, x_dev, x_te = standardise(x_tr, x_dev, x_te)
    x_tr, x_dev, x_te = (x.to(device) for x in (x_tr, x_dev, x_te))
    y_tr, y_dev, y_te = (y.to(device) for y in (y_tr, y_dev, y_te))
    combos = grid_settings(settings, logistic)
    tried: list[dict[str, Any]] = []
    for group in ([c for c in combos if c[0] == 0], [c for c in combos if c[0] > 0]):
        if not group:
            continue
        start = time.perf_counter()
        hiddens, dropouts, decays = (list(column) for column in zip(*group))
        trained = train_probes(
            x_tr, y_tr, x_dev, y_dev, n_classes, hiddens, dropouts, decays,
            lr=float(setting(settings, "lr")), batch_size=int(setting(settings, "batch_size")),
            epoch_size=int(setting(settings, "epoch_size")), tenacity=int(setting(settings, "tenacity")),
            max_epoch=int(setting(settings, "max_epoch")), seed=int(setting(settings, "seed")),
            desc=f"{desc} ({'logistic' if hiddens[0] == 0 else 'MLP'}, {len(group)} settings)",
        )
        test_acc = trained.stack.accuracies(x_te, y_te)
        for s, (hidden, dropout, decay) in enumerate(group):
            tried.append({"hidden": hidden, "dropout": dropout, "weight_decay": decay, "dev_acc": trained.dev_acc[s],
                          "test_acc": test_acc[s], "epochs": trained.epochs[s]})
        log.debug("probes %s: %.1f s", group, time.perf_counter() - start)
    tried.sort(key=lambda entry: combos.index((entry["hidden"], entry["dropout"], entry["weight_decay"])))
    # SentEval compares dev accuracies in percent rounded to 2 decimals; max keeps the first in grid order on ties
    best = max(tried, key=lambda entry: round(100 * entry["dev_acc"], 2))
    return GridResult(
        test_acc=best["test_acc"],
        dev_acc=best["dev_acc"],
        hidden=best["hidden"],
        dropout=best["dropout"],
        weight_decay=best["weight_decay"],
        epochs=best["epochs"],
        majority_acc=majority_accuracy(y_tr, y_te),
        n_train=len(y_tr),
        n_dev=len(y_dev),
        n_test=len(y_te),
        grid=tried,
    )

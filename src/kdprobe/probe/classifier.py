"""SentEval's probe (`senteval/tools/classifier.py`, class `MLP`; `senteval/tools/validation.py`,
`SplitClassifier`) and the hyper-parameter grid around it.

Probes (`probe.classifiers`): `mlp`, `Linear(d, hidden) -> Dropout(p) -> Sigmoid -> Linear(hidden, n_classes)`,
dropout BEFORE the sigmoid (a dropped unit outputs sigmoid(0) = 0.5); `linear`, logistic regression (hidden 0),
`Linear(d, n_classes)` alone, with no dropout. Weights initialised as `nn.Linear` does. Raw features (SentEval standardises nothing; `standardise`
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

`fit_grid` trains one `mlp` probe per `grid.hidden` x `grid.dropout` x `grid.weight_decay` setting (the weight
decay innermost: SentEval's `SplitClassifier` searches it within each classifier setting), or one `linear` probe per
`grid.weight_decay`, and reports the TEST accuracy
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
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from kdprobe.errors import ConfigError, NonFiniteError
from kdprobe.logs import progress
from kdprobe.runtime import single_thread

log = logging.getLogger(__name__)

EVAL_BATCH = 16384


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
        self.seed = int(seed)
        if len({h > 0 for h in hiddens}) != 1:
            raise ValueError("a probe stack holds either logistic regressions (hidden 0) or MLPs, not both")
        self.mlp = hiddens[0] > 0
        if not self.mlp and any(dropouts):
            raise ValueError("logistic regression (hidden 0) has no dropout")
        self.hiddens, self.dropouts, self.n_classes = list(hiddens), list(dropouts), n_classes
        self.generators = [torch.Generator(device=device).manual_seed(self.seed) for _ in hiddens]
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
    def accuracies(self, x: torch.Tensor, y: torch.Tensor, label_sets: torch.Tensor | None = None) -> list[float]:
        """Accuracy of every setting on `(x, y)`; `y` (rows,), or (label sets, rows) with setting s scored on
        `y[label_sets[s]]`."""
        rows = y.shape[-1]
        if rows == 0:
            return [0.0] * len(self.hiddens)
        target = y[None] if y.ndim == 1 else y[label_sets]  # (1 or settings, rows)
        was_training = self.training
        self.eval()
        correct = torch.zeros(len(self.hiddens), dtype=torch.long, device=y.device)
        for start in range(0, rows, EVAL_BATCH):
            pred = self(x[start : start + EVAL_BATCH]).argmax(-1)
            correct += (pred == target[:, start : start + EVAL_BATCH]).sum(1)
        self.train(was_training)
        return (correct.double() / rows).tolist()

    def setting_dims(self) -> dict[str, int]:
        """The dimension of each parameter that indexes the settings."""
        return {"w1": 1, "b1": 0, "w2": 0, "b2": 0} if self.mlp else {"w2": 0, "b2": 0}


class SeededStacks(nn.Module):
    """`ProbeStack`s of one grid, one per seed, trained side by side (one optimiser step for all): member s of
    the whole is setting s % (settings per seed) of stack s // (settings per seed). In training each stack reads
    its own batches (its seed's order); `forward` of shared features gives every member's logits."""

    def __init__(self, dim: int, hiddens: list[int], dropouts: list[float], weight_decays: list[float],
                 n_classes: int, seeds: Sequence[int], device: torch.device):
        super().__init__()
        self.stacks = nn.ModuleList(ProbeStack(dim, hiddens, dropouts, weight_decays, n_classes, seed, device)
                                    for seed in seeds)
        self.size, self.n_classes = len(hiddens), n_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (members, rows, classes): `x` (rows, dim) for every stack, or (stacks, rows, dim), stack i's
        rows `x[i]`."""
        return torch.cat([stack(x[i] if x.ndim == 3 else x) for i, stack in enumerate(self.stacks)])

    def add_weight_decay(self) -> None:
        for stack in self.stacks:
            stack.add_weight_decay()

    @torch.inference_mode()
    def accuracies(self, x: torch.Tensor, y: torch.Tensor, label_sets: torch.Tensor | None = None) -> list[float]:
        """Accuracy of every member on `(x, y[label_sets[member]])`, `y` (label sets, rows); or on `(x, y)`, `y`
        (rows,) without `label_sets`."""
        if label_sets is None:
            y, label_sets = y.reshape(1, -1), torch.zeros(self.size * len(self.stacks), dtype=torch.long,
                                                          device=y.device)
        return [acc for i, stack in enumerate(self.stacks)
                for acc in stack.accuracies(x, y, label_sets[i * self.size : (i + 1) * self.size])]

    def copy_members(self, source: dict[str, torch.Tensor], target: dict[str, torch.Tensor],
                     members: list[int]) -> None:
        """`target[name][member] = source[name][member]` for every parameter `name` (of `named_parameters`) and
        member, along each stack's setting dimension."""
        for i, stack in enumerate(self.stacks):
            local = [m - i * self.size for m in members if i * self.size <= m < (i + 1) * self.size]
            if not local:
                continue
            index = torch.tensor(local, device=next(stack.parameters()).device)
            for name, dim in stack.setting_dims().items():
                key = f"stacks.{i}.{name}"
                target[key].index_copy_(dim, index, source[key].index_select(dim, index))


@dataclass
class TrainedProbes:
    stack: SeededStacks  # every setting at its best-dev weights
    dev_acc: list[float]  # best dev accuracy of each setting
    epochs: list[int]  # passes over the training set each setting trained (its rounds x epoch_size)


def _train_pass(stack: SeededStacks, optimizer: torch.optim.Optimizer, x_train: torch.Tensor, y_train: torch.Tensor,
                orders: list[torch.Generator], label_sets: torch.Tensor, batch_size: int) -> None:
    """One pass over the training set: each seed's stack in its own order (`orders[i]`, one permutation per pass),
    batch j of every stack in one step; member m learns the labels `y_train[label_sets[m]]`."""
    n, device = y_train.shape[-1], x_train.device
    perms = torch.stack([torch.randperm(n, generator=g) for g in orders]).to(device)  # (seeds, n)
    stack_of = torch.arange(len(orders), device=device).repeat_interleave(stack.size)  # each member's stack
    for start in range(0, n, batch_size):
        idx = perms[:, start : start + batch_size]  # (seeds, batch)
        logits = stack(x_train[idx[0]] if len(orders) == 1 else x_train[idx])  # (members, batch, classes)
        target = y_train[label_sets[:, None], idx[stack_of]]  # (members, batch)
        loss = F.cross_entropy(logits.reshape(-1, stack.n_classes), target.reshape(-1),
                               reduction="sum") / idx.shape[1]  # the sum of every setting's mean loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        stack.add_weight_decay()
        optimizer.step()


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
    seed: int | Sequence[int] = 42,
    label_sets: Sequence[int] | None = None,
    desc: str = "probes",
) -> TrainedProbes:
    """Train one probe per (hiddens[s], dropouts[s], weight_decays[s]) side by side, each with SentEval's early
    stopping on dev accuracy (module docstring): rounds of `epoch_size` passes, stop at the round that finds
    `tenacity` earlier rounds without a new best, no round started after `max_epoch` passes; best-round weights.

    `seed`: one seed, or several: the settings are then trained once per seed (a `ProbeStack` each, in one
    `SeededStacks`), and the result's members are seed-major (member k * len(hiddens) + s: setting s with seed k);
    a member's initial weights, dropout masks and batch order (a permutation per pass, drawn from a generator of
    its seed) come from its seed, so it trains as it would alone. `y_train`, `y_dev`: labels (N,), or (label
    sets, N) with setting s learning `y[label_sets[s]]` (say a task and its control task, side by side). The stack
    trains until every member has stopped (members that stopped go on computing, but their kept weights, accuracy
    and passes are those of their own run). Weight decays default to 0. Tensors must already be on one device.
    Deterministic for given seeds and device.
    """
    if min(epoch_size, tenacity + 1, max_epoch + 1, batch_size) < 1:
        raise ValueError("epoch_size and batch_size must be >= 1, tenacity and max_epoch >= 0")
    weight_decays = [0.0] * len(hiddens) if weight_decays is None else list(weight_decays)
    device = x_train.device
    y_train, y_dev = (y if y.ndim == 2 else y[None] for y in (y_train, y_dev))
    seeds = [int(seed)] if isinstance(seed, int) else [int(s) for s in seed]
    sets = torch.tensor([0] * len(hiddens) if label_sets is None else list(label_sets), device=device)
    if len(sets) != len(hiddens) or int(sets.max()) >= len(y_train) or len(y_dev) != len(y_train):
        raise ValueError(f"label_sets {sets.tolist()} do not match {len(y_train)} label sets of training labels")
    sets = sets.repeat(len(seeds))  # every member's
    with single_thread(device):
        stack = SeededStacks(x_train.shape[1], hiddens, dropouts, weight_decays, n_classes, seeds, device)
        # The fused kernel (CPU and CUDA) cuts the per-step overhead that dominates these small models.
        optimizer = torch.optim.Adam(stack.parameters(), lr=lr, fused=device.type in ("cpu", "cuda") or None)
        orders = [torch.Generator().manual_seed(s) for s in seeds]
        settings = len(hiddens) * len(seeds)
        best = {name: p.detach().clone() for name, p in stack.named_parameters()}
        best_acc, bad, epochs = [-1.0] * settings, [0] * settings, [0] * settings
        active = list(range(settings))
        passes = 0
        bar = progress(total=max_epoch // epoch_size + 1, desc=desc, unit="round")
        while active and passes <= max_epoch:
            stack.train()
            for _ in range(epoch_size):
                _train_pass(stack, optimizer, x_train, y_train, orders, sets, batch_size)
            passes += epoch_size
            dev_acc = stack.accuracies(x_dev, y_dev, sets)
            improved = [s for s in active if dev_acc[s] > best_acc[s]]
            if improved:
                with torch.no_grad():
                    stack.copy_members(dict(stack.named_parameters()), best, improved)
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


#: The probes of `probe.classifiers`: SentEval's MLP over the grid, and logistic regression over its weight decays.
CLASSIFIERS = ("mlp", "linear")


def grid_settings(settings: dict[str, Any], classifier: str = "mlp") -> list[tuple[int, float, float]]:
    """The `(hidden, dropout, weight_decay)` settings of the `probe.grid` for `classifier`, in grid order: for
    `mlp` hidden outer, then dropout, weight decay innermost; for `linear` (logistic regression: hidden 0, no
    dropout; also SentEval's rule for WordContent) one per `grid.weight_decay`, the only key it reads.
    """
    if classifier not in CLASSIFIERS:
        raise ConfigError("probe.classifiers", f"unknown classifier {classifier!r} (expected one of "
                          f"{', '.join(CLASSIFIERS)})")
    decays = [float(w) for w in setting(settings, "grid", "weight_decay")]
    if classifier == "linear":
        shapes = [(0, 0.0)]
    else:
        hiddens = [int(h) for h in setting(settings, "grid", "hidden")]
        if 0 in hiddens:
            raise ConfigError("probe.grid.hidden", "0 (logistic regression) is the linear probe: list `linear` in "
                              "probe.classifiers instead")
        shapes = [(h, float(p)) for h in hiddens for p in setting(settings, "grid", "dropout")]
    if not shapes or not decays:
        raise ConfigError("probe.grid", "`hidden`, `dropout` and `weight_decay` need at least one value each")
    return list(dict.fromkeys((h, p, w) for h, p in shapes for w in decays))


#: The most first-layer weights (floats) of one stack trained side by side: small probes gain from sharing steps
#: (per-step overhead dominates them), wide ones lose once their weights and Adam's state outgrow the CPU's caches
#: (benchmarks/probe_controls.py: at width 1024 one 216-member stack took 1.5x the time of separate runs).
STACK_FLOATS = 2**22


def stack_chunks(seeds: Sequence[int], label_sets: int, dim: int,
                 combos: Sequence[tuple[int, float, float]]) -> list[tuple[list[int], list[int]]]:
    """How `fit_grids` splits its runs (seeds x label sets, each the grid `combos` on `dim` inputs) into stacks
    trained one after another: `(seeds, label sets)` of each, as many seeds with every label set as fit
    `STACK_FLOATS` (first-layer weights, MLPs padded to the widest), else one run per stack. A run's result does
    not depend on the split."""
    width = max((c[0] for c in combos), default=0) or 1
    run_floats = len(combos) * dim * width
    if run_floats * label_sets <= STACK_FLOATS:
        k = max(1, STACK_FLOATS // (run_floats * label_sets))
        return [(list(seeds[i : i + k]), list(range(label_sets))) for i in range(0, len(seeds), k)]
    return [([seed], [label_set]) for seed in seeds for label_set in range(label_sets)]


def training_options(settings: dict[str, Any]) -> dict[str, Any]:
    """`train_probes`' keyword settings from the `probe` section: `lr`, `batch_size`, `epoch_size`, `tenacity`,
    `max_epoch`."""
    return {"lr": float(setting(settings, "lr")), "batch_size": int(setting(settings, "batch_size")),
            "epoch_size": int(setting(settings, "epoch_size")), "tenacity": int(setting(settings, "tenacity")),
            "max_epoch": int(setting(settings, "max_epoch"))}


def fit_grid(train: Any, dev: Any, test: Any, settings: dict[str, Any], n_classes: int | None = None,
             **options: Any) -> GridResult:
    """`fit_grids` of one label set with one seed, `settings['seed']`: the `classifier` probe (`mlp` | `linear`,
    `grid_settings`) for every grid setting, the test accuracy of the best-dev setting. `options`: `fit_grids`'
    `device`, `classifier`, `desc`."""
    return fit_grids(train, dev, test, settings, n_classes, seeds=[int(setting(settings, "seed"))], **options)[0][0]


def check_features(desc: str, parts: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Features (N, d) that match their labels ((N,) or (label sets, N)) and are finite, per split of `parts`."""
    for name, (x, y) in parts.items():
        if x.ndim != 2 or y.ndim not in (1, 2) or len(x) != y.shape[-1]:
            raise ValueError(f"{name}: features {tuple(x.shape)} do not match labels {tuple(y.shape)}")
        finite = torch.isfinite(x).all(dim=1)
        if not finite.all():
            row = int((~finite).nonzero()[0])
            raise NonFiniteError(f"{desc}: {name} sentence {row + 1}", "its features are NaN or infinite; no probe "
                                 "was trained", check="the model's weights and that sentence")


def fit_grids(
    train: tuple[torch.Tensor, torch.Tensor],
    dev: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    settings: dict[str, Any],
    n_classes: int | None = None,
    device: str | torch.device = "cpu",
    *,
    classifier: str = "mlp",
    seeds: Sequence[int],
    desc: str = "probes",
) -> list[list[GridResult]]:
    """The grid of `classifier` once per seed and label set, side by side (`train_probes`, in the stacks
    `stack_chunks` makes): result
    `[label set][seed]`, each the test accuracy of that run's best-dev setting (SentEval's choice: dev accuracy in
    percent rounded to 2 decimals, the first in grid order on ties).

    `train`, `dev`, `test` are `(features (N, d), labels)`, labels (N,) int or (label sets, N) (say a task and
    its control task); `settings` is the `probe` config section (`grid.hidden`, `grid.dropout`,
    `grid.weight_decay`, `standardise`, `lr`, `batch_size`, `epoch_size`, `tenacity`, `max_epoch`; `seed` is
    `seeds`' business here). Runs share stacks as `stack_chunks` says; a run's result does not depend on the other
    seeds or label sets in its stack.
    `n_classes` defaults to the largest label in any split + 1.
    """
    device = torch.device(device)
    (x_tr, y_tr), (x_dev, y_dev), (x_te, y_te) = (
        (torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)) for x, y in (train, dev, test)
    )
    check_features(desc, {"train": (x_tr, y_tr), "dev": (x_dev, y_dev), "test": (x_te, y_te)})
    y_tr, y_dev, y_te = (y if y.ndim == 2 else y[None] for y in (y_tr, y_dev, y_te))
    if y_tr.shape[1] == 0 or y_dev.shape[1] == 0:
        raise ValueError("the probe needs at least one training and one dev example")
    if n_classes is None:
        n_classes = int(max(y.max().item() if y.numel() else 0 for y in (y_tr, y_dev, y_te))) + 1
    if setting(settings, "standardise"):
        x_tr, x_dev, x_te = standardise(x_tr, x_dev, x_te)
    x_tr, x_dev, x_te = (x.to(device) for x in (x_tr, x_dev, x_te))
    y_tr, y_dev, y_te = (y.to(device) for y in (y_tr, y_dev, y_te))
    combos = grid_settings(settings, classifier)
    results: dict[tuple[int, int], GridResult] = {}
    for chunk_seeds, chunk_sets in stack_chunks(seeds, len(y_tr), x_tr.shape[1], combos):
        start = time.perf_counter()
        per_seed = [(label_set, combo) for label_set in range(len(chunk_sets)) for combo in combos]
        trained = train_probes(
            x_tr, y_tr[chunk_sets], x_dev, y_dev[chunk_sets], n_classes, [c[0] for _, c in per_seed],
            [c[1] for _, c in per_seed], [c[2] for _, c in per_seed], **training_options(settings),
            seed=chunk_seeds, label_sets=[label_set for label_set, _ in per_seed],
            desc=f"{desc} ({classifier}, {len(combos)} settings x {len(chunk_seeds)} seeds x {len(chunk_sets)} "
                 "label sets)")
        member_sets = torch.tensor([ls for _ in chunk_seeds for ls, _ in per_seed], device=device)
        test_acc = trained.stack.accuracies(x_te, y_te[chunk_sets], member_sets)
        log.debug("probes %s: %.1f s", combos, time.perf_counter() - start)
        runs = [(seed, label_set) for seed in chunk_seeds for label_set in chunk_sets]  # as the members: seed-major
        for r, (seed, label_set) in enumerate(runs):
            tried = [{"hidden": hidden, "dropout": dropout, "weight_decay": decay, "dev_acc": trained.dev_acc[m],
                      "test_acc": test_acc[m], "epochs": trained.epochs[m]}
                     for m, (hidden, dropout, decay) in enumerate(combos, start=r * len(combos))]
            best = max(tried, key=lambda entry: round(100 * entry["dev_acc"], 2))
            results[seed, label_set] = GridResult(
                test_acc=best["test_acc"], dev_acc=best["dev_acc"], hidden=best["hidden"],
                dropout=best["dropout"], weight_decay=best["weight_decay"], epochs=best["epochs"],
                majority_acc=majority_accuracy(y_tr[label_set], y_te[label_set]), n_train=y_tr.shape[1],
                n_dev=y_dev.shape[1], n_test=y_te.shape[1], grid=tried)
    return [[results[seed, label_set] for seed in seeds] for label_set in range(len(y_tr))]

"""Probing: SentEval loader, SentEval's probe and its grid, the majority baseline, probe jobs' settings, merging."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from kdprobe import config as kdconfig
from kdprobe.errors import ConfigError, InputError
from kdprobe.probe import classifier as probe, run, senteval
from kdprobe.probe.run import COLUMNS, merge_probes
from kdprobe.probe.tables import read_probe_csv

CONFIG = Path(__file__).resolve().parents[1] / "config" / "config.yaml"

#: SentEval's probe with the thesis' grid (config/config.yaml's defaults).
SETTINGS = {
    "grid": {"hidden": [50, 100, 200], "dropout": [0.0, 0.1, 0.2], "weight_decay": [1e-5, 1e-4, 1e-3, 1e-2]},
    "standardise": False,
    "lr": 1e-3,
    "batch_size": 64,
    "epoch_size": 4,
    "tenacity": 5,
    "max_epoch": 200,
    "seed": 42,
}


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------- loader


GOOD = [
    "tr\tPRES\tshe walks home .",
    "va\tPAST\the walked home .",
    "tr\tPAST\tthey ran .",
    "te\tPRES\twe run .",
    "",  # blank lines are skipped
    "tr\tPRES\tit rains .",
    "te\tPAST\tit rained .",
]


def test_load_splits_labels_and_order(tmp_path):
    path = _write(tmp_path / "past_present.txt", GOOD)
    data = senteval.load(path)
    assert set(data) == {"train", "dev", "test"}
    assert data["train"] == (["she walks home .", "they ran .", "it rains ."], ["PRES", "PAST", "PRES"])
    assert data["dev"] == (["he walked home ."], ["PAST"])
    assert data["test"] == (["we run .", "it rained ."], ["PRES", "PAST"])
    assert senteval.task_name(path) == "past_present"
    assert senteval.label_index(data) == {"PAST": 0, "PRES": 1}


def test_load_max_sentences_keeps_first_per_split(tmp_path):
    data = senteval.load(_write(tmp_path / "t.txt", GOOD), max_sentences=1)
    assert data["train"] == (["she walks home ."], ["PRES"])
    assert data["dev"] == (["he walked home ."], ["PAST"])
    assert data["test"] == (["we run ."], ["PRES"])


def test_label_index_sorts_integer_labels_numerically(tmp_path):
    lines = ["tr\t10\ta b", "tr\t5\ta", "tr\t11\ta", "tr\t7\ta", "va\t7\ta", "te\t11\ta"]
    data = senteval.load(_write(tmp_path / "tree_depth.txt", lines))
    assert senteval.label_index(data) == {"5": 0, "7": 1, "10": 2, "11": 3}


@pytest.mark.parametrize(
    "bad, line, message",
    [
        ("tr\tPRES", 2, "3 tab-separated columns"),
        ("tr\tPRES\tone\ttwo", 2, "found 4"),
        ("xx\tPRES\tsentence", 2, "unknown split 'xx'"),
        ("tr\tPRES\t   ", 2, "empty sentence"),
        ("tr\t\tsentence", 2, "empty label"),
    ],
)
def test_load_rejects_malformed_lines(tmp_path, bad, line, message):
    path = _write(tmp_path / "t.txt", [GOOD[0], bad, *GOOD[1:]])
    with pytest.raises(InputError, match=message) as err:
        senteval.load(path)
    assert err.value.line == line
    assert f"t.txt:{line}:" in str(err.value)


def test_load_rejects_missing_split(tmp_path):
    path = _write(tmp_path / "t.txt", [line for line in GOOD if not line.startswith("te")])
    with pytest.raises(InputError, match=r"no lines for split te \(test\)"):
        senteval.load(path)


# ---------------------------------------------------------------------------------------------- probe


def _separable(n, dim=64, seed=0):
    """Two well-separated Gaussian clouds along a random direction (linearly separable with a wide margin)."""
    g = torch.Generator().manual_seed(seed)
    direction = torch.nn.functional.normalize(torch.randn(dim, generator=torch.Generator().manual_seed(99)), dim=0)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, dim, generator=g) + (y.float() * 2 - 1).unsqueeze(1) * 4.0 * direction
    return x, y


def _random_labels(n, dim=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=g), torch.randint(0, 2, (n,), generator=g)


def _xor(n, seed=0):
    """Label = whether the signs of two features differ: learnable by an MLP, not by a linear model."""
    g = torch.Generator().manual_seed(seed)
    signs = torch.randint(0, 2, (n, 2), generator=g) * 2 - 1
    x = signs.float() + 0.2 * torch.randn(n, 2, generator=g)
    return x, (signs[:, 0] != signs[:, 1]).long()


def _train(data, hiddens, dropouts, decays=None, **kwargs):
    (x_tr, y_tr), (x_dev, y_dev) = data
    return probe.train_probes(x_tr, y_tr, x_dev, y_dev, 2, hiddens, dropouts, decays, **kwargs)


def test_config_defaults_are_sentevals():
    """config/config.yaml's probe is SentEval's (`classifier.py`, `validation.py`, `probing.py`) with the thesis'
    hidden x dropout grid (section 4.4) and seed."""
    settings = yaml.safe_load(CONFIG.read_text())["probe"]
    assert settings["grid"] == {"hidden": [50, 100, 200], "dropout": [0.0, 0.1, 0.2],
                                "weight_decay": [1e-5, 1e-4, 1e-3, 1e-2]}
    assert {k: settings[k] for k in ("lr", "batch_size", "epoch_size", "tenacity", "max_epoch", "seed")} == {
        "lr": 1e-3, "batch_size": 64, "epoch_size": 4, "tenacity": 5, "max_epoch": 200, "seed": 42}
    assert settings["standardise"] is False and settings["word_content_logreg"] is True


def test_mlp_applies_dropout_before_the_sigmoid():
    """Linear -> Dropout -> Sigmoid -> Linear: a dropped unit outputs sigmoid(0) = 0.5, a kept one
    sigmoid(2 * 3) (p = 0.5 scales kept pre-activations by 2). Dropout after the sigmoid would give 0 and
    2 * sigmoid(3)."""
    hidden = 200
    stack = probe.ProbeStack(3, [hidden], [0.5], [0.0], hidden, seed=0, device=torch.device("cpu"))
    with torch.no_grad():  # pre-activations 3 everywhere; the output layer copies the hidden units
        stack.w1.zero_()
        stack.b1.fill_(3.0)
        stack.w2.copy_(torch.eye(hidden)[None])
        stack.b2.zero_()
    x = torch.randn(50, 3)
    stack.train()
    out = stack(x)[0]
    dropped = torch.isclose(out, torch.tensor(0.5))
    kept = torch.isclose(out, torch.sigmoid(torch.tensor(6.0)))
    assert bool((dropped | kept).all())
    assert 0.4 < dropped.float().mean().item() < 0.6
    stack.eval()  # no dropout at evaluation
    assert torch.allclose(stack(x)[0], torch.sigmoid(torch.tensor(3.0)).expand(50, hidden))


def test_stack_matches_sentevals_modules_in_eval():
    """With dropout off, setting s computes exactly `Linear -> Sigmoid -> Linear` with its own weights."""
    stack = probe.ProbeStack(6, [4, 9], [0.1, 0.2], [0.0, 0.0], 3, seed=5, device=torch.device("cpu")).eval()
    x = torch.randn(7, 6)
    for s, h in enumerate([4, 9]):
        mlp = torch.nn.Sequential(torch.nn.Linear(6, h), torch.nn.Dropout(0.1), torch.nn.Sigmoid(),
                                  torch.nn.Linear(h, 3)).eval()
        with torch.no_grad():
            mlp[0].weight.copy_(stack.w1[:, s, :h].T)
            mlp[0].bias.copy_(stack.b1[s, :h])
            mlp[3].weight.copy_(stack.w2[s, :h].T)
            mlp[3].bias.copy_(stack.b2[s])
        assert torch.allclose(stack(x)[s], mlp(x), atol=1e-6)


def test_logistic_regression_is_one_linear_layer_without_dropout():
    stack = probe.ProbeStack(5, [0, 0], [0.0, 0.0], [0.0, 1e-3], 3, seed=1, device=torch.device("cpu"))
    x = torch.randn(8, 5)
    stack.train()
    assert torch.allclose(stack(x), torch.einsum("rd,sdc->src", x, stack.w2) + stack.b2[:, None])
    with pytest.raises(ValueError, match="no dropout"):
        probe.ProbeStack(5, [0], [0.1], [0.0], 3, seed=1, device=torch.device("cpu"))


def test_probe_learns_linearly_separable_data():
    result = probe.fit_grid(_separable(400, seed=1), _separable(100, seed=2), _separable(100, seed=3), SETTINGS)
    assert result.test_acc >= 0.98
    assert result.dev_acc >= 0.98
    assert (result.n_train, result.n_dev, result.n_test) == (400, 100, 100)
    assert len(result.grid) == 3 * 3 * 4
    assert 0.3 < result.majority_acc < 0.7


def test_mlp_learns_what_logistic_regression_cannot():
    data = _xor(600, seed=1), _xor(200, seed=2), _xor(200, seed=3)
    settings = dict(SETTINGS, lr=1e-2, grid={"hidden": [20], "dropout": [0.0], "weight_decay": [1e-5]})
    assert probe.fit_grid(*data, settings).test_acc > 0.95
    assert probe.fit_grid(*data, settings, classifier="linear").test_acc < 0.7


def test_probe_is_at_chance_on_random_labels():
    result = probe.fit_grid(
        _random_labels(400, seed=1), _random_labels(200, seed=2), _random_labels(400, seed=3), SETTINGS
    )
    assert abs(result.test_acc - 0.5) < 0.1
    assert result.test_acc < result.majority_acc + 0.08  # not meaningfully above the baseline


def test_probe_is_deterministic():
    data = (_separable(200, seed=1), _random_labels(50, seed=2), _separable(50, seed=3))
    small = dict(SETTINGS, grid={"hidden": [20], "dropout": [0.0, 0.2], "weight_decay": [1e-4, 1e-2]})
    a, b = probe.fit_grid(*data, small), probe.fit_grid(*data, small)
    assert a.grid == b.grid


def test_raw_features_by_default_standardised_as_an_option(monkeypatch):
    """SentEval feeds the probe raw features; `standardise: true` centres and scales them with train statistics."""
    seen = []
    real = probe.train_probes

    def spy(x_train, y_train, x_dev, *args, **kwargs):
        seen.append((x_train, x_dev))
        return real(x_train, y_train, x_dev, *args, **kwargs)

    monkeypatch.setattr(probe, "train_probes", spy)
    (x_tr, y_tr), dev, test = _separable(100, 8, 1), _separable(30, 8, 2), _separable(30, 8, 3)
    x_tr = x_tr * 5 + 3
    small = dict(SETTINGS, grid={"hidden": [10], "dropout": [0.1], "weight_decay": [1e-4]}, max_epoch=0)
    probe.fit_grid((x_tr, y_tr), dev, test, small)
    assert torch.equal(seen[0][0], x_tr) and torch.equal(seen[0][1], dev[0])
    probe.fit_grid((x_tr, y_tr), dev, test, dict(small, standardise=True))
    assert torch.allclose(seen[1][0].mean(0), torch.zeros(8), atol=1e-5)
    assert torch.allclose(seen[1][0].std(0, unbiased=False), torch.ones(8), atol=1e-5)
    assert torch.allclose(seen[1][1], (dev[0] - x_tr.mean(0)) / x_tr.std(0, unbiased=False), atol=1e-5)


def test_majority_baseline_uses_train_majority_on_test():
    # train majority is class 2; on test, class 2 is 1 of 4 although class 1 is the test majority
    assert probe.majority_accuracy([2, 2, 2, 1, 0], [1, 1, 1, 2]) == pytest.approx(0.25)
    # ties go to the lowest class index
    assert probe.majority_accuracy([1, 0, 1, 0], [0, 0, 1]) == pytest.approx(2 / 3)


def test_majority_baseline_in_result():
    x = torch.randn(10, 3)
    y_train = torch.tensor([1, 1, 1, 1, 1, 1, 0, 0, 0, 2])
    y_test = torch.tensor([0, 1, 2, 1, 0, 0, 0, 1, 2, 2])
    small = dict(SETTINGS, grid={"hidden": [5], "dropout": [0.0], "weight_decay": [0.0]}, max_epoch=2)
    result = probe.fit_grid((x, y_train), (x, y_train), (x, y_test), small)
    assert result.majority_acc == pytest.approx(0.3)


def test_standardise_uses_train_statistics():
    train = torch.tensor([[1.0, 5.0], [3.0, 5.0]])
    test = torch.tensor([[2.0, 6.0]])
    std_train, std_test = probe.standardise(train, test)
    assert torch.allclose(std_train, torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
    assert torch.allclose(std_test, torch.tensor([[0.0, 1.0]]))  # constant train feature: scale 1


def test_grid_settings_order_and_logistic_regression():
    grid = {"hidden": [20, 50], "dropout": [0.0, 0.1], "weight_decay": [1e-5, 1e-3]}
    # the MLP: hidden outer, dropout, weight decay innermost
    assert probe.grid_settings({"grid": grid}) == [
        (20, 0.0, 1e-5), (20, 0.0, 1e-3), (20, 0.1, 1e-5), (20, 0.1, 1e-3),
        (50, 0.0, 1e-5), (50, 0.0, 1e-3), (50, 0.1, 1e-5), (50, 0.1, 1e-3)]
    # the linear probe (and SentEval's WordContent rule): logistic regression over the weight decays alone
    assert probe.grid_settings({"grid": {"weight_decay": [1e-5, 1e-3]}}, "linear") == [
        (0, 0.0, 1e-5), (0, 0.0, 1e-3)]
    with pytest.raises(ConfigError, match=r"probe\.grid\.weight_decay"):
        probe.grid_settings({"grid": {"hidden": [50], "dropout": [0.0]}})
    with pytest.raises(ConfigError, match="at least one value"):
        probe.grid_settings({"grid": dict(grid, weight_decay=[])})
    # hidden 0 is the linear probe, asked for by name, not mixed into the MLP's grid
    with pytest.raises(ConfigError, match=r"probe\.grid\.hidden.*probe\.classifiers"):
        probe.grid_settings({"grid": dict(grid, hidden=[0, 50])})
    with pytest.raises(ConfigError, match=r"probe\.classifiers.*'tree'"):
        probe.grid_settings({"grid": grid}, "tree")


def test_grid_picks_best_dev_setting_and_first_on_rounded_ties(monkeypatch):
    dev_scores = {(20, 0.0, 1e-5): 0.6, (20, 0.0, 1e-3): 0.9, (50, 0.0, 1e-5): 0.90004, (50, 0.0, 1e-3): 0.7}
    groups = []
    real = probe.train_probes

    def scripted(x_train, y_train, x_dev, y_dev, n_classes, hiddens, dropouts, decays, **kwargs):
        groups.append(list(zip(hiddens, dropouts, decays)))
        trained = real(x_train, y_train, x_dev, y_dev, n_classes, hiddens, dropouts, decays, max_epoch=0)
        with torch.no_grad():  # setting (h, p, wd) predicts class 1 iff h == 20: test accuracy tells them apart
            trained.stack.stacks[0].w2.zero_()
            trained.stack.stacks[0].b2.copy_(torch.tensor([[0.0, 1.0] if h == 20 else [1.0, 0.0] for h in hiddens]))
        trained.dev_acc = [dev_scores[key] for key in zip(hiddens, dropouts, decays)]
        return trained

    monkeypatch.setattr(probe, "train_probes", scripted)
    x = torch.randn(4, 2)
    y = torch.tensor([0, 0, 0, 1])
    grid = {"hidden": [20, 50], "dropout": [0.0], "weight_decay": [1e-5, 1e-3]}
    result = probe.fit_grid((x, y), (x, y), (x, y), dict(SETTINGS, grid=grid))
    # the grid trains as one stack, reported in grid order
    assert groups == [list(dev_scores)]
    assert [(e["hidden"], e["dropout"], e["weight_decay"]) for e in result.grid] == list(dev_scores)
    # 90.00 % twice (SentEval rounds to 0.01 %): the first in grid order wins over the slightly higher second
    assert (result.hidden, result.dropout, result.weight_decay, result.dev_acc) == (20, 0.0, 1e-3, 0.9)
    assert result.test_acc == pytest.approx(0.25)  # hidden 20 predicts class 1


def test_weight_decay_is_chosen_on_dev():
    """A crushing L2 penalty leaves the probe at chance; the grid picks the weight decay that learns."""
    data = _separable(300, dim=16, seed=1), _separable(100, dim=16, seed=2), _separable(100, dim=16, seed=3)
    small = dict(SETTINGS, grid={"hidden": [20], "dropout": [0.0], "weight_decay": [30.0, 1e-5]})
    result = probe.fit_grid(*data, small)
    heavy, light = result.grid
    assert heavy["weight_decay"] == 30.0 and heavy["dev_acc"] < 0.75
    assert (result.weight_decay, result.dev_acc) == (1e-5, light["dev_acc"]) and light["dev_acc"] > 0.95


def test_weight_decay_is_adams_coupled_l2():
    """One step of a stacked setting with weight decay wd equals `torch.optim.Adam(weight_decay=wd)` on
    SentEval's `nn.Sequential` MLP (dropout 0), as SentEval sets it."""
    (x, y), wd = _separable(64, dim=6, seed=4), 0.05
    stack = probe.ProbeStack(6, [5, 5], [0.0, 0.0], [0.0, wd], 2, seed=3, device=torch.device("cpu"))
    mlp = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Dropout(0.0), torch.nn.Sigmoid(), torch.nn.Linear(5, 2))
    with torch.no_grad():
        mlp[0].weight.copy_(stack.w1[:, 1].T)
        mlp[0].bias.copy_(stack.b1[1])
        mlp[3].weight.copy_(stack.w2[1].T)
        mlp[3].bias.copy_(stack.b2[1])
    reference = torch.optim.Adam(mlp.parameters(), lr=0.1, weight_decay=wd)
    optimizer = torch.optim.Adam(stack.parameters(), lr=0.1)
    for _ in range(3):
        torch.nn.functional.cross_entropy(mlp(x), y).backward()
        reference.step()
        reference.zero_grad()
        logits = stack(x)
        torch.nn.functional.cross_entropy(logits.reshape(-1, 2), y.repeat(2), reduction="sum").div(len(y)).backward()
        stack.add_weight_decay()
        optimizer.step()
        optimizer.zero_grad()
    assert torch.allclose(stack.w1[:, 1].T, mlp[0].weight, atol=1e-5)
    assert torch.allclose(stack.w2[1].T, mlp[3].weight, atol=1e-5)
    assert torch.allclose(stack.b2[1], mlp[3].bias, atol=1e-5)


def _scripted_dev(monkeypatch, scripts):
    """Make `ProbeStack.accuracies` return `scripts[s][round]` for setting s (the last value once a script ends),
    recording each round's parameters and counting training forward passes."""
    record = {"params": [], "train_steps": 0}
    forward = probe.ProbeStack.forward

    def accuracies(self, x, y, label_sets=None):
        record["params"].append({name: p.detach().clone() for name, p in self.named_parameters()})
        r = len(record["params"]) - 1
        return [script[min(r, len(script) - 1)] for script in scripts]

    def counting_forward(self, x):
        record["train_steps"] += self.training
        return forward(self, x)

    monkeypatch.setattr(probe.ProbeStack, "accuracies", accuracies)
    monkeypatch.setattr(probe.ProbeStack, "forward", counting_forward)
    return record


def test_rounds_and_tenacity_as_sentevals_fit(monkeypatch):
    """Rounds of epoch_size passes; a round without a new best counts, the count is never reset, and the round
    that finds it at `tenacity` stops; the best round's weights are kept (SentEval's `PyTorchClassifier.fit`)."""
    # setting 0: rounds 1, 3 and 5 improve; 2 and 4 do not (count 2 = tenacity); round 6 finds the count at 2
    # and stops. A count reset at each improvement would go on; stopping when the count reaches 2 would stop
    # at round 4. Setting 1 improves every round: it runs to the max_epoch cap.
    record = _scripted_dev(monkeypatch, [[0.5, 0.5, 0.6, 0.6, 0.7, 0.7], [i / 100 for i in range(100)]])
    data = _separable(100, dim=4, seed=1), _separable(20, dim=4, seed=2)
    trained = _train(data, [3, 3], [0.0, 0.0], epoch_size=3, tenacity=2, max_epoch=30, batch_size=64)
    # a round starts while passes <= max_epoch: rounds after 0, 3, ..., 30 passes, 11 rounds, 33 passes
    assert trained.epochs == [6 * 3, 11 * 3]
    assert len(record["params"]) == 11 and record["train_steps"] == 11 * 3 * 2  # 2 batches of 64 per pass
    assert trained.dev_acc == [0.7, 0.10]
    best_round = record["params"][4]  # setting 0's round 5
    assert torch.equal(trained.stack.stacks[0].w1[:, 0], best_round["w1"][:, 0])
    assert torch.equal(trained.stack.stacks[0].w2[0], best_round["w2"][0])
    assert torch.equal(trained.stack.stacks[0].w2[1], record["params"][10]["w2"][1])


def test_a_round_ends_training_when_max_epoch_is_reached(monkeypatch):
    _scripted_dev(monkeypatch, [[i / 100 for i in range(100)]])
    data = _separable(100, dim=4, seed=1), _separable(20, dim=4, seed=2)
    assert _train(data, [3], [0.0], epoch_size=4, tenacity=5, max_epoch=10).epochs == [12]  # rounds at 0, 4, 8
    assert _train(data, [3], [0.0], epoch_size=4, tenacity=5, max_epoch=0).epochs == [4]  # one round


def test_best_dev_weights_are_kept():
    data = _separable(200, seed=1), _random_labels(60, seed=2)
    trained = _train(data, [10, 20], [0.0, 0.3], [1e-4, 1e-2], epoch_size=1, tenacity=3, max_epoch=30)
    x_dev, y_dev = data[1]
    assert trained.stack.accuracies(x_dev, y_dev) == pytest.approx(trained.dev_acc)


@pytest.mark.parametrize("hidden", [0, 20])
def test_a_setting_trains_as_it_would_alone(hidden):
    """Each setting in a stack has its own initial weights, dropout masks, weight decay and early stopping: its
    result and weights are the ones it gets trained alone, whatever else the stack holds."""
    data = _separable(300, dim=16, seed=1), _random_labels(80, dim=16, seed=2)
    hiddens = [hidden, 0, 0] if hidden == 0 else [hidden, 40, 5]
    dropouts = [0.0, 0.0, 0.0] if hidden == 0 else [0.2, 0.0, 0.5]
    kwargs = dict(epoch_size=2, tenacity=2, max_epoch=24)
    together = _train(data, hiddens, dropouts, [1e-3, 0.0, 1e-1], **kwargs)
    alone = _train(data, hiddens[:1], dropouts[:1], [1e-3], **kwargs)
    assert together.dev_acc[0] == pytest.approx(alone.dev_acc[0])
    assert together.epochs[0] == alone.epochs[0]
    width = hidden or 16
    assert torch.allclose(together.stack.stacks[0].w2[0, :width], alone.stack.stacks[0].w2[0], atol=1e-5)
    assert torch.allclose(together.stack.stacks[0].b2[0], alone.stack.stacks[0].b2[0], atol=1e-5)
    if hidden:
        assert torch.allclose(together.stack.stacks[0].w1[:, 0, :hidden], alone.stack.stacks[0].w1[:, 0], atol=1e-5)


def test_a_grid_entry_does_not_depend_on_the_rest_of_the_grid():
    data = _separable(200, dim=16, seed=1), _random_labels(80, dim=16, seed=2), _separable(80, dim=16, seed=3)
    small = dict(SETTINGS, max_epoch=16)
    full = probe.fit_grid(*data, dict(small, grid={"hidden": [10, 30], "dropout": [0.0, 0.2],
                                                     "weight_decay": [1e-4, 1e-2]}))
    for entry in (full.grid[3], full.grid[6]):
        one = probe.fit_grid(*data, dict(small, grid={"hidden": [entry["hidden"]], "dropout": [entry["dropout"]],
                                                        "weight_decay": [entry["weight_decay"]]}))
        assert one.grid[0] == pytest.approx(entry)


def test_padded_hidden_units_stay_inert():
    """A narrow MLP padded to the stack's widest keeps zero weights (and so no effect) in its padding, although
    its padded units' sigmoid is 0.5."""
    data = _separable(200, dim=8, seed=1), _separable(50, dim=8, seed=2)
    trained = _train(data, [3, 12], [0.0, 0.5], [1e-2, 1e-2], epoch_size=1, max_epoch=5)
    stack = trained.stack.stacks[0]
    assert stack.w1.shape == (8, 2, 12)
    assert torch.count_nonzero(stack.w1[:, 0, 3:]) == 0 and torch.count_nonzero(stack.b1[0, 3:]) == 0
    assert torch.count_nonzero(stack.w2[0, 3:]) == 0


def test_stack_rejects_mixed_kinds():
    with pytest.raises(ValueError, match="either logistic regressions"):
        probe.ProbeStack(4, [0, 10], [0.0, 0.0], [0.0, 0.0], 2, seed=1, device=torch.device("cpu"))


# ---------------------------------------------------------------------------------------------- probe_model


def _bag_of_words(sentences, vocabulary):
    return torch.tensor([[float(word in s.split()) for word in vocabulary] for s in sentences])


@pytest.fixture
def bag_of_words_encoder(monkeypatch):
    """`probe_model` with a stand-in encoder: layer 1 = the bag of words of the sentence (no model needed)."""
    vocabulary = ["cat", "dog", "bird", "fish", "runs", "sleeps", "eats", "sings"]
    monkeypatch.setattr(run, "load_encoder", lambda kind, path, device: None)
    monkeypatch.setattr(run, "resolve_layers", lambda encoder, spec: [1])
    monkeypatch.setattr(run, "encode", lambda encoder, sentences, layers, poolings, batch_size, desc:
                        {(1, "mean"): _bag_of_words(sentences, vocabulary)})
    return vocabulary


def _word_content_file(path, vocabulary):
    """SentEval's WordContent: the label is the one target word (here the animal) the sentence holds."""
    g = torch.Generator().manual_seed(0)
    animals, verbs = vocabulary[:4], vocabulary[4:]
    lines = []
    for split, n in (("tr", 240), ("va", 60), ("te", 60)):
        for a, v in torch.randint(4, (n, 2), generator=g).tolist():
            lines.append(f"{split}\t{animals[a]}\tthe {animals[a]} {verbs[v]} .")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


PROBE_MODEL_SETTINGS = dict(
    SETTINGS, grid={"hidden": [16], "dropout": [0.1], "weight_decay": [1e-5, 1e-3]}, lr=1e-2, max_epoch=40,
    word_content_logreg=True, encode_batch_size=8, layers={"teacher": "all"}, pooling={"teacher": ["mean"]},
    classifiers=["mlp"], seeds=1, control=False, mdl=False,
)


@pytest.mark.parametrize("logreg", [True, False])
def test_word_content_is_probed_by_logistic_regression(bag_of_words_encoder, tmp_path, logreg):
    path = _word_content_file(tmp_path / "word_content.txt", bag_of_words_encoder)
    settings = dict(PROBE_MODEL_SETTINGS, word_content_logreg=logreg)
    table = run.probe_model("teacher", "unused", path, settings, tmp_path / "out.csv")
    row = pd.read_csv(tmp_path / "out.csv").iloc[0]
    assert list(table.columns) == COLUMNS
    assert (row.hidden, row.dropout) == ((0, 0.0) if logreg else (16, 0.1))
    assert row.weight_decay in (1e-5, 1e-3) and row.epochs % 4 == 0
    assert row.test_acc > 0.95  # the target word is in the features


def test_only_word_content_takes_the_logistic_regression(bag_of_words_encoder, tmp_path):
    path = _word_content_file(tmp_path / "word_content.txt", bag_of_words_encoder)
    other = tmp_path / "odd_man_out.txt"
    other.write_text(path.read_text(), encoding="utf-8")
    row = run.probe_model("teacher", "unused", other, PROBE_MODEL_SETTINGS, tmp_path / "out.csv").iloc[0]
    assert (row.hidden, row.dropout) == (16, 0.1)


def test_probe_jobs_carry_exactly_their_settings():
    """Each probe job's params hold the probe settings its output depends on (`kdconfig.probe_settings`)."""
    config = yaml.safe_load(CONFIG.read_text())
    probe_cfg = config["probe"]
    other = kdconfig.probe_settings(config, "bert_s", "bigram_shift")
    assert "word_content_logreg" not in other and "tasks" not in other and "data_dir" not in other
    assert other["grid"] == probe_cfg["grid"] and other["layers"] == {"bert_s": probe_cfg["layers"]["bert_s"]}
    for key in ("standardise", "lr", "batch_size", "epoch_size", "tenacity", "max_epoch", "seed"):
        assert other[key] == probe_cfg[key]
    word_content = kdconfig.probe_settings(config, "bert_s", "word_content")
    assert word_content["word_content_logreg"] is True
    assert word_content["grid"] == {"weight_decay": probe_cfg["grid"]["weight_decay"]}  # no hidden or dropout
    config["probe"]["word_content_logreg"] = False
    assert kdconfig.probe_settings(config, "bert_s", "word_content")["grid"] == probe_cfg["grid"]


# ---------------------------------------------------------------------------------------------- merge


def _table(model, task, layers=(1, 2)):
    return pd.DataFrame(
        [
            {"model": model, "probe_task": task, "layer": layer, "pooling": "mean", "classifier": "mlp", "seeds": 1,
             "test_acc": 0.5, "dev_acc": 0.5, "hidden": 50, "dropout": 0.0, "weight_decay": 1e-4, "epochs": 24,
             "majority_acc": 0.5, "n_train": 10, "n_dev": 5, "n_test": 5, "test_acc_by_seed": "0.500000"}
            for layer in layers
        ],
        columns=COLUMNS,
    )


def test_merge_orders_by_expected_tasks(tmp_path):
    paths = []
    for task in ("word_content", "bigram_shift", "sentence_length"):
        paths.append(tmp_path / f"{task}.csv")
        _table("bert_s", task).to_csv(paths[-1], index=False)
    out = tmp_path / "merged.csv"
    merged = merge_probes(paths, out, expected_tasks=["sentence_length", "word_content", "bigram_shift"])
    assert list(merged["probe_task"]) == ["sentence_length"] * 2 + ["word_content"] * 2 + ["bigram_shift"] * 2
    assert list(merged["layer"]) == [1, 2] * 3
    assert read_probe_csv(out).equals(merged)
    assert list(pd.read_csv(out).columns) == COLUMNS
    # without expected tasks: alphabetical
    merged = merge_probes(paths, out)
    assert list(merged["probe_task"].unique()) == ["bigram_shift", "sentence_length", "word_content"]


def test_merge_rejects_missing_task_duplicates_and_bad_columns(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    _table("teacher", "tree_depth").to_csv(a, index=False)
    _table("teacher", "odd_man_out").to_csv(b, index=False)
    with pytest.raises(InputError, match=r"no results for probe tasks \['past_present'\]"):
        merge_probes([a, b], tmp_path / "m.csv", expected_tasks=["tree_depth", "odd_man_out", "past_present"])
    with pytest.raises(InputError, match="not in probe.tasks"):
        merge_probes([a, b], tmp_path / "m.csv", expected_tasks=["tree_depth"])
    with pytest.raises(InputError, match="duplicate result"):
        merge_probes([a, a], tmp_path / "m.csv")
    _table("teacher", "tree_depth").drop(columns=["dev_acc"]).to_csv(b, index=False)
    with pytest.raises(InputError, match="missing columns"):
        merge_probes([a, b], tmp_path / "m.csv")
    assert not (tmp_path / "m.csv").exists()


# ---------------------------------------------------------------------------------------------- seeds and controls


def test_seeds_and_label_sets_in_one_stack_train_as_they_would_alone(monkeypatch):
    """`fit_grids` trains every seed x label set x grid setting in one stack; each run's grid equals the run alone
    (its own initial weights, dropout masks and batch order from its seed, its own labels)."""
    (x_tr, y_tr), (x_dev, y_dev), (x_te, y_te) = (_separable(160, dim=6, seed=s) for s in (1, 2, 3))
    g = torch.Generator().manual_seed(9)
    shuffled = [y[torch.randperm(len(y), generator=g)] for y in (y_tr, y_dev, y_te)]
    small = dict(SETTINGS, max_epoch=8, epoch_size=2, tenacity=1,
                 grid={"hidden": [6, 12], "dropout": [0.0, 0.3], "weight_decay": [1e-4]})
    parts = [(x, torch.stack([y, z])) for (x, y), z in zip([(x_tr, y_tr), (x_dev, y_dev), (x_te, y_te)], shuffled)]
    together = probe.fit_grids(*parts, small, seeds=[5, 6])
    assert [len(row) for row in together] == [2, 2]  # [label set][seed]
    for label_set, labels in enumerate([(y_tr, y_dev, y_te), shuffled]):
        for i, seed in enumerate([5, 6]):
            alone = probe.fit_grid(*zip((x_tr, x_dev, x_te), labels), dict(small, seed=seed))
            assert together[label_set][i].grid == alone.grid
    assert together[0][0].grid != together[0][1].grid  # the seeds differ
    # wide probes train one run at a time (probe.classifier.STACK_FLOATS): the same results
    assert probe.stack_chunks([5, 6], 2, 6, probe.grid_settings(small)) == [([5, 6], [0, 1])]
    monkeypatch.setattr(probe, "STACK_FLOATS", 1)
    assert probe.stack_chunks([5, 6], 2, 6, probe.grid_settings(small)) == [([5], [0]), ([5], [1]), ([6], [0]),
                                                                            ([6], [1])]
    apart = probe.fit_grids(*parts, small, seeds=[5, 6])
    assert [[r.grid for r in row] for row in apart] == [[r.grid for r in row] for row in together]
    assert together[0][0].test_acc > 0.8 > 0.7 > together[1][0].test_acc  # real labels learnt, shuffled not


def test_probe_rows_carry_seeds_intervals_controls_and_online_code(bag_of_words_encoder, tmp_path):
    path = _word_content_file(tmp_path / "odd_man_out.txt", bag_of_words_encoder)
    settings = dict(PROBE_MODEL_SETTINGS, classifiers=["mlp", "linear"], seeds=3, control=True, mdl=True)
    table = run.probe_model("teacher", "unused", path, settings, tmp_path / "out.csv")
    written = pd.read_csv(tmp_path / "out.csv")
    assert list(written.columns) == COLUMNS
    assert list(written["classifier"]) == ["mlp", "linear"] and set(written["seeds"]) == {3}
    for row in written.itertuples():
        by_seed = [float(v) for v in row.test_acc_by_seed.split(";")]
        control = [float(v) for v in row.control_acc_by_seed.split(";")]
        assert len(by_seed) == len(control) == 3
        assert row.test_acc == pytest.approx(sum(by_seed) / 3)
        assert row.test_ci_low <= row.test_acc <= row.test_ci_high
        assert row.selectivity == pytest.approx(row.test_acc - row.control_acc)
        assert row.selectivity == pytest.approx(sum(t - c for t, c in zip(by_seed, control)) / 3)
        assert row.test_acc > 0.95  # the target word is in the features
        assert row.uniform_bits == pytest.approx(row.n_train * 2)  # 4 classes: 2 bits each
        assert row.compression == pytest.approx(row.uniform_bits / row.mdl_bits) and row.compression > 1.2
    assert len(table) == 2
    # one seed, no control, no online code: those columns are empty, not made up
    plain = run.probe_model("teacher", "unused", path, PROBE_MODEL_SETTINGS, tmp_path / "plain.csv")
    assert plain["test_std"].isna().all() and plain["control_acc"].isna().all() and plain["mdl_bits"].isna().all()

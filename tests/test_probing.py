"""Probing: SentEval loader, the MLP probe and its grid, the majority baseline, merging tables."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from kdprobe.errors import InputError
from kdprobe.probing import probe, senteval
from kdprobe.probing.run import COLUMNS, merge_probes

SETTINGS = {
    "grid": {"hidden": [50, 100, 200], "dropout": [0.0, 0.1, 0.2]},
    "lr": 1e-3,
    "batch_size": 64,
    "patience": 5,
    "max_epochs": 200,
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


def test_probe_learns_linearly_separable_data():
    result = probe.fit_grid(_separable(400, seed=1), _separable(100, seed=2), _separable(100, seed=3), SETTINGS)
    assert result.test_acc >= 0.98
    assert result.dev_acc >= 0.98
    assert (result.n_train, result.n_dev, result.n_test) == (400, 100, 100)
    assert len(result.grid) == 9
    assert 0.3 < result.majority_acc < 0.7


def test_probe_is_at_chance_on_random_labels():
    result = probe.fit_grid(
        _random_labels(400, seed=1), _random_labels(200, seed=2), _random_labels(400, seed=3), SETTINGS
    )
    assert abs(result.test_acc - 0.5) < 0.1
    assert result.test_acc < result.majority_acc + 0.08  # not meaningfully above the baseline


def test_probe_is_deterministic():
    data = (_separable(200, seed=1), _random_labels(50, seed=2), _separable(50, seed=3))
    small = dict(SETTINGS, grid={"hidden": [20], "dropout": [0.0, 0.2]})
    a, b = probe.fit_grid(*data, small), probe.fit_grid(*data, small)
    assert a.grid == b.grid


def test_majority_baseline_uses_train_majority_on_test():
    # train majority is class 2; on test, class 2 is 1 of 4 although class 1 is the test majority
    assert probe.majority_accuracy([2, 2, 2, 1, 0], [1, 1, 1, 2]) == pytest.approx(0.25)
    # ties go to the lowest class index
    assert probe.majority_accuracy([1, 0, 1, 0], [0, 0, 1]) == pytest.approx(2 / 3)


def test_majority_baseline_in_result():
    x = torch.randn(10, 3)
    y_train = torch.tensor([1, 1, 1, 1, 1, 1, 0, 0, 0, 2])
    y_test = torch.tensor([0, 1, 2, 1, 0, 0, 0, 1, 2, 2])
    small = dict(SETTINGS, grid={"hidden": [5], "dropout": [0.0]}, max_epochs=2)
    result = probe.fit_grid((x, y_train), (x, y_train), (x, y_test), small)
    assert result.majority_acc == pytest.approx(0.3)


def test_standardise_uses_train_statistics():
    train = torch.tensor([[1.0, 5.0], [3.0, 5.0]])
    test = torch.tensor([[2.0, 6.0]])
    std_train, std_test = probe.standardise(train, test)
    assert torch.allclose(std_train, torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
    assert torch.allclose(std_test, torch.tensor([[0.0, 1.0]]))  # constant train feature: scale 1


def test_grid_picks_best_dev_setting_and_first_on_ties(monkeypatch):
    dev_scores = {(0, 0.0): 0.6, (0, 0.1): 0.9, (50, 0.0): 0.9, (50, 0.1): 0.7}
    groups = []
    real = probe.train_probes

    def scripted(x_train, y_train, x_dev, y_dev, n_classes, hiddens, dropouts, **kwargs):
        groups.append(list(zip(hiddens, dropouts)))
        trained = real(x_train, y_train, x_dev, y_dev, n_classes, hiddens, dropouts, max_epochs=1)
        with torch.no_grad():  # setting (h, p) predicts class 1 iff h == 0: test accuracy tells the groups apart
            trained.stack.w2.zero_()
            trained.stack.b2.copy_(torch.tensor([[0.0, 1.0] if h == 0 else [1.0, 0.0] for h in hiddens]))
        trained.dev_acc = [dev_scores[(h, p)] for h, p in zip(hiddens, dropouts)]
        return trained

    monkeypatch.setattr(probe, "train_probes", scripted)
    x = torch.randn(4, 2)
    y = torch.tensor([0, 0, 0, 1])
    result = probe.fit_grid((x, y), (x, y), (x, y), dict(SETTINGS, grid={"hidden": [0, 50], "dropout": [0.0, 0.1]}))
    # logistic regressions and MLPs train as two stacks; the grid is reported hidden outer, dropout inner
    assert groups == [[(0, 0.0), (0, 0.1)], [(50, 0.0), (50, 0.1)]]
    assert [(e["hidden"], e["dropout"]) for e in result.grid] == [(0, 0.0), (0, 0.1), (50, 0.0), (50, 0.1)]
    assert (result.hidden, result.dropout, result.dev_acc) == (0, 0.1, 0.9)  # the first of the two 0.9s
    assert result.test_acc == pytest.approx(0.25)  # hidden 0 predicts class 1


def _train(data, hiddens, dropouts, **kwargs):
    (x_tr, y_tr), (x_dev, y_dev) = data
    return probe.train_probes(x_tr, y_tr, x_dev, y_dev, 2, hiddens, dropouts, **kwargs)


def test_early_stopping_and_epoch_cap():
    data = _random_labels(100, seed=1), _random_labels(50, seed=2)
    assert _train(data, [10], [0.0], patience=1, max_epochs=200).epochs[0] < 200
    assert _train(data, [10], [0.0], patience=100, max_epochs=3).epochs == [3]


def test_best_dev_weights_are_kept():
    data = _separable(200, seed=1), _random_labels(60, seed=2)
    trained = _train(data, [10, 20], [0.0, 0.3], patience=3, max_epochs=30)
    x_dev, y_dev = data[1]
    assert trained.stack.accuracies(x_dev, y_dev) == pytest.approx(trained.dev_acc)


@pytest.mark.parametrize("hidden", [0, 20])
def test_a_setting_trains_as_it_would_alone(hidden):
    """Each setting in a stack has its own initial weights, dropout masks and early stopping: its result is the
    one it gets trained alone, whatever else the stack holds."""
    data = _separable(300, dim=16, seed=1), _random_labels(80, dim=16, seed=2)
    others = [0, 0] if hidden == 0 else [40, 5]
    together = _train(data, [hidden, *others], [0.2, 0.0, 0.5], patience=2, max_epochs=25)
    alone = _train(data, [hidden], [0.2], patience=2, max_epochs=25)
    assert together.dev_acc[0] == pytest.approx(alone.dev_acc[0])
    assert together.epochs[0] == alone.epochs[0]
    x_dev, y_dev = data[1]
    assert together.stack.accuracies(x_dev, y_dev)[0] == pytest.approx(alone.stack.accuracies(x_dev, y_dev)[0])


def test_padded_hidden_units_stay_inert():
    """A narrow MLP padded to the stack's widest keeps zero weights (and so no effect) in its padding."""
    data = _separable(200, dim=8, seed=1), _separable(50, dim=8, seed=2)
    trained = _train(data, [3, 12], [0.0, 0.5], max_epochs=5)
    stack = trained.stack
    assert stack.w1.shape == (8, 2, 12)
    assert torch.count_nonzero(stack.w1[:, 0, 3:]) == 0 and torch.count_nonzero(stack.b1[0, 3:]) == 0
    assert torch.count_nonzero(stack.w2[0, 3:]) == 0


def test_stack_rejects_mixed_kinds():
    with pytest.raises(ValueError, match="either logistic regressions"):
        probe.ProbeStack(4, [0, 10], [0.0, 0.0], 2, seed=1, device=torch.device("cpu"))


# ---------------------------------------------------------------------------------------------- merge


def _table(model, task, layers=(1, 2)):
    return pd.DataFrame(
        [
            {"model": model, "probe_task": task, "layer": layer, "pooling": "mean", "test_acc": 0.5, "dev_acc": 0.5,
             "hidden": 50, "dropout": 0.0, "majority_acc": 0.5, "n_train": 10, "n_dev": 5, "n_test": 5}
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
    assert pd.read_csv(out).equals(merged)
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

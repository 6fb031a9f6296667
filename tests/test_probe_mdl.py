"""Online code MDL (kdprobe.probe.mdl): the portion schedule, the codelength arithmetic, the real probe."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kdprobe.errors import ConfigError, NonFiniteError
from kdprobe.probe import mdl

#: a quick probe: large steps, short patience
FAST = {"standardise": False, "lr": 0.1, "batch_size": 32, "epoch_size": 4, "tenacity": 1, "max_epoch": 12}


def test_portion_bounds_1000():
    # 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.25 (62.5 rounded up), 12.5, 25, 50, 100 percent of 1000
    assert mdl.portion_bounds(1000) == [1, 2, 4, 8, 16, 32, 63, 125, 250, 500, 1000]


def test_portion_bounds_small_sets_merge_duplicates():
    assert mdl.portion_bounds(1) == [1]
    assert mdl.portion_bounds(2) == [1, 2]
    assert mdl.portion_bounds(5) == [1, 3, 5]  # 50 % of 5 = 2.5 -> 3
    assert mdl.portion_bounds(20) == [1, 3, 5, 10, 20]  # 6.25 % -> 1.25 -> 1 (merged), 12.5 % -> 2.5 -> 3
    with pytest.raises(ValueError, match="at least one"):
        mdl.portion_bounds(0)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 20, 99, 1000, 12345])
def test_portion_bounds_strictly_increasing_to_n(n):
    bounds = mdl.portion_bounds(n)
    assert bounds[0] >= 1 and bounds[-1] == n
    assert all(a < b for a, b in zip(bounds, bounds[1:]))


def test_online_codelength_by_hand():
    calls = []

    def half(start, end):
        calls.append((start, end))
        return np.full(end - start, math.log(0.5))

    result = mdl.online_codelength(20, 4, half)
    # blocks [0,1) [1,3) [3,5) [5,10) [10,20): the first 1 example x log2(4) = 2 bits, the other 19 at 1 bit each
    assert calls == [(1, 3), (3, 5), (5, 10), (10, 20)]
    assert result.bounds == [1, 3, 5, 10, 20]
    assert result.block_bits == pytest.approx([2.0, 2.0, 2.0, 5.0, 10.0])
    assert result.bits == pytest.approx(21.0)
    assert result.uniform_bits == pytest.approx(40.0)
    assert result.compression == pytest.approx(40.0 / 21.0)
    assert result.row() == pytest.approx({"mdl_bits": 21.0, "uniform_bits": 40.0, "compression": 40.0 / 21.0})


def test_online_codelength_varied_probabilities():
    # n = 5, K = 2: blocks [0,1) [1,3) [3,5); p = 0.25, 1 then 0.5, 0.125: 1 + (2 + 0) + (1 + 3) = 7 bits
    probs = {1: [0.25, 1.0], 3: [0.5, 0.125]}
    result = mdl.online_codelength(5, 2, lambda start, end: np.log(probs[start]))
    assert result.bits == pytest.approx(7.0)
    assert result.compression == pytest.approx(5.0 / 7.0)


def test_perfect_and_uniform_predictors():
    perfect = mdl.online_codelength(1000, 4, lambda start, end: np.zeros(end - start))
    assert perfect.bits == pytest.approx(2.0)  # only the first example, by the uniform code
    assert perfect.compression == pytest.approx(1000.0)  # 1000 x 2 bits over 2 bits
    uniform = mdl.online_codelength(1000, 4, lambda start, end: np.full(end - start, math.log(0.25)))
    assert uniform.bits == pytest.approx(2000.0)
    assert uniform.compression == pytest.approx(1.0)


def test_single_example_is_the_uniform_code():
    result = mdl.online_codelength(1, 3, lambda start, end: pytest.fail("no block to score"))
    assert result.bits == pytest.approx(math.log2(3)) and result.compression == pytest.approx(1.0)


def test_online_codelength_rejects_bad_scores():
    with pytest.raises(NonFiniteError, match="training example 3"):
        mdl.online_codelength(20, 4, lambda start, end: np.r_[-1.0, -np.inf, np.zeros(end - start - 2)])
    with pytest.raises(NonFiniteError):
        mdl.online_codelength(20, 4, lambda start, end: np.full(end - start, np.nan))
    with pytest.raises(ValueError, match="needs 2 log-probabilities"):
        mdl.online_codelength(20, 4, lambda start, end: np.zeros(end - start + 1))
    with pytest.raises(ValueError, match="above 0"):
        mdl.online_codelength(20, 4, lambda start, end: np.full(end - start, 0.5))
    with pytest.raises(ValueError, match="2 classes"):
        mdl.online_codelength(20, 1, lambda start, end: np.zeros(end - start))


def _separable(n, k, seed):
    """Features whose first k columns are the label's one-hot (scaled), the rest noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    x = torch.randn(n, 6, generator=g) * 0.3
    x[:, :k] += 3.0 * torch.nn.functional.one_hot(y, k).float()
    return x, y


@pytest.mark.parametrize("hidden", [0, 8])
def test_probe_codelength_separable_beats_shuffled(hidden):
    k = 4
    (x_tr, y_tr), (x_dev, y_dev) = _separable(300, k, 1), _separable(60, k, 2)
    args = (k, hidden, 0.0, 1e-4, FAST, 7)
    real = mdl.probe_codelength(x_tr, y_tr, x_dev, y_dev, *args)
    shuffled_y = y_tr[torch.randperm(len(y_tr), generator=torch.Generator().manual_seed(3))]
    shuffled = mdl.probe_codelength(x_tr, shuffled_y, x_dev, y_dev, *args)
    assert real.uniform_bits == pytest.approx(600.0)
    assert real.bounds == mdl.portion_bounds(300)
    assert real.compression > 2.0
    assert 0.7 < shuffled.compression < 1.2
    assert real.compression > 2 * shuffled.compression


def test_probe_codelength_deterministic_and_standardised():
    (x_tr, y_tr), (x_dev, y_dev) = _separable(60, 2, 4), _separable(20, 2, 5)
    scaled = {**FAST, "standardise": True}
    a = mdl.probe_codelength(x_tr * 50 + 7, y_tr, x_dev * 50 + 7, y_dev, 2, 0, 0.0, 0.0, scaled, 3)
    b = mdl.probe_codelength(x_tr * 50 + 7, y_tr, x_dev * 50 + 7, y_dev, 2, 0, 0.0, 0.0, scaled, 3)
    assert a.block_bits == b.block_bits
    # standardised with all training statistics: an affine change of the features changes nothing
    raw = mdl.probe_codelength(x_tr, y_tr, x_dev, y_dev, 2, 0, 0.0, 0.0, scaled, 3)
    assert a.block_bits == pytest.approx(raw.block_bits, rel=1e-3, abs=1e-3)
    assert a.compression > 1.5
    unscaled = mdl.probe_codelength(x_tr * 50 + 7, y_tr, x_dev * 50 + 7, y_dev, 2, 0, 0.0, 0.0, FAST, 3)
    assert unscaled.bits != pytest.approx(a.bits, rel=1e-2)


def test_probe_codelength_bad_input():
    (x_tr, y_tr), (x_dev, y_dev) = _separable(30, 2, 6), _separable(10, 2, 7)
    x_bad = x_tr.clone()
    x_bad[4, 1] = float("nan")
    with pytest.raises(NonFiniteError, match="train sentence 5"):
        mdl.probe_codelength(x_bad, y_tr, x_dev, y_dev, 2, 0, 0.0, 0.0, FAST, 1)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        mdl.probe_codelength(x_tr, y_tr + 1, x_dev, y_dev, 2, 0, 0.0, 0.0, FAST, 1)
    with pytest.raises(ValueError, match="do not match"):
        mdl.probe_codelength(x_tr, y_tr[:-1], x_dev, y_dev, 2, 0, 0.0, 0.0, FAST, 1)
    with pytest.raises(ConfigError, match="probe.lr"):
        mdl.probe_codelength(x_tr, y_tr, x_dev, y_dev, 2, 0, 0.0, 0.0, {k: v for k, v in FAST.items() if k != "lr"}, 1)


def test_probe_codelength_nonfinite_probe_raises(monkeypatch):
    (x_tr, y_tr), (x_dev, y_dev) = _separable(30, 2, 8), _separable(10, 2, 9)
    monkeypatch.setattr(mdl, "_true_label_log_probs", lambda stack, x, y: np.full(len(y), np.nan))
    with pytest.raises(NonFiniteError, match="block 2"):
        mdl.probe_codelength(x_tr, y_tr, x_dev, y_dev, 2, 0, 0.0, 0.0, FAST, 1)

"""The training loop's step-level features: dev scored every N optimiser steps, gradient norms in the curve, and
micro-batches accumulated into the same optimiser steps after CUDA ran out of memory (`training.fit`)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from kdprobe.io import read_json
from kdprobe.runtime import GpuOutOfMemory
from kdprobe.settings import TrainSettings
from kdprobe.training import Batches, OptimStep, Resume, accumulate, fit, oom_marker
from test_training import _model, _regression as _data


def _run(settings, tmp_path=None, fits=None, **kw):
    """Fit a linear regression; `fits(idx)` False for a batch makes its forward raise CUDA's out-of-memory error."""
    model, (x, y) = _model(), _data()
    seen = []

    def batch_loss(idx):
        seen.append(len(idx))
        if fits is not None and not fits(idx):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
        return torch.nn.functional.mse_loss(model(x[idx]).squeeze(1), y[idx])

    result = fit(model, Batches(np.full(len(x), 5), batch_loss), torch.optim.Adam(model.parameters(), lr=0.05),
                 TrainSettings.from_section(settings, "students.test"), device="cpu",
                 resume=Resume(None if tmp_path is None else tmp_path / "state.pt", settings), **kw)
    return model, result, seen


def test_eval_every_steps_adds_rows_and_keeps_the_best_of_them():
    scores = iter([0.1, 0.8, 0.3, 0.5, 0.2, 0.4])  # rows at steps 2, 4, 5 (epoch end), 6, 8, 10 (epoch end)
    settings = {"epochs": 2, "batch_size": 8, "seed": 1, "schedule": "none", "eval_every_steps": 2}
    _, result, _ = _run(settings, evaluate=lambda: {"dev_acc": next(scores)}, keep_best="dev_acc")
    assert [r["step"] for r in result.curve] == [2, 4, 5, 6, 8, 10]
    assert [r["epoch"] for r in result.curve] == pytest.approx([0.4, 0.8, 1.0, 1.2, 1.6, 2.0])
    assert result.best["step"] == 4 and result.best["dev_acc"] == 0.8
    # without the key: one row per epoch
    _, plain, _ = _run({**settings, "eval_every_steps": 0}, evaluate=lambda: {"dev_acc": 0.0}, keep_best="dev_acc")
    assert [r["step"] for r in plain.curve] == [5, 10]


def test_curve_rows_carry_the_gradient_norms_of_their_steps():
    model, (x, y) = _model(), _data()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: every step sees the same gradient
    step = OptimStep(optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0), model.parameters())
    idx = np.arange(len(x))
    step(lambda i: torch.nn.functional.mse_loss(model(x[i]).squeeze(1), y[i]), idx)
    expected = torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters())).item()
    assert step.grad_norm.item() == pytest.approx(expected) and expected > 0
    _, result, _ = _run({"epochs": 3, "batch_size": 40, "seed": 0, "schedule": "none"})
    norms = [r["grad_norm"] for r in result.curve]
    assert len(norms) == 3 and norms[0] == pytest.approx(expected, rel=1e-6)  # one step per row: its own norm
    assert all(r["grad_norm_max"] >= r["grad_norm"] > 0 for r in result.curve)
    assert norms[2] < norms[0]  # the regression converges


def test_micro_batches_add_up_to_the_whole_batch_gradient():
    x, y = _data(n=10)
    weights = {}
    for micro in (None, 4, 1):
        model = _model()
        loss = accumulate(lambda i: torch.nn.functional.mse_loss(model(x[i]).squeeze(1), y[i]), np.arange(10),
                          micro, None)
        weights[micro] = (loss.item(), model.weight.grad.clone())
    for micro in (4, 1):
        assert weights[micro][0] == pytest.approx(weights[None][0], rel=1e-6)
        assert torch.allclose(weights[micro][1], weights[None][1], rtol=1e-5, atol=1e-7)


def test_token_weighted_micro_batches_give_a_token_mean_loss():
    # a language model's loss is a mean over tokens: micro-batches weigh by their tokens, not their sentences
    tokens = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    owner = np.array([0, 0, 0, 0, 0, 1])  # sentence 0 has 5 tokens, sentence 1 has 1
    w = torch.zeros((), requires_grad=True)

    def mean_over_tokens(idx):
        return (w * tokens[torch.from_numpy(np.isin(owner, idx))]).mean()

    whole = accumulate(mean_over_tokens, np.array([0, 1]), None, None)
    grad_whole, w.grad = w.grad.clone(), None
    split = accumulate(mean_over_tokens, np.array([0, 1]), 1, lambda idx: float(np.isin(owner, idx).sum()))
    assert split.item() == pytest.approx(whole.item()) and w.grad.item() == pytest.approx(grad_whole.item())
    w.grad = None
    by_sentence = accumulate(mean_over_tokens, np.array([0, 1]), 1, None)
    assert w.grad.item() != pytest.approx(grad_whole.item()) and by_sentence is not None


def test_a_retry_after_cuda_ran_out_of_memory_accumulates_half_batches(tmp_path, caplog):
    settings = {"epochs": 3, "batch_size": 16, "seed": 3, "schedule": "none"}
    reference, ref_result, _ = _run(settings)
    # a GPU that fits 8 examples, from the second epoch on (the first epoch's state is saved)
    state = tmp_path / "state.pt"
    with pytest.raises(GpuOutOfMemory, match=r"batches of 16 \(students.test.batch_size\).*runs batches of 8"):
        _run(settings, tmp_path, fits=lambda idx: len(idx) <= 8 or not state.exists())
    marker = oom_marker(state)
    assert marker == tmp_path / "state.oom.json" and read_json(marker)["batch_size"] == 16
    with caplog.at_level(logging.INFO):
        model, result, seen = _run(settings, tmp_path, fits=lambda idx: len(idx) <= 8)
    assert max(seen) <= 8 and "micro-batches of 8, accumulated" in caplog.text
    assert "resuming at epoch 2" in caplog.text and not marker.exists()
    # the same optimiser steps as the uninterrupted run, to rounding
    assert [r["step"] for r in result.curve] == [r["step"] for r in ref_result.curve]
    assert [r["loss"] for r in result.curve] == pytest.approx([r["loss"] for r in ref_result.curve], rel=1e-5)
    assert torch.allclose(model.weight, reference.weight, rtol=1e-5, atol=1e-6)


def test_out_of_memory_at_one_example_is_final(tmp_path):
    with pytest.raises(GpuOutOfMemory, match="batches of 1"):
        _run({"epochs": 1, "batch_size": 1, "seed": 0, "schedule": "none"}, tmp_path, fits=lambda idx: False)
    assert not oom_marker(tmp_path / "state.pt").exists()

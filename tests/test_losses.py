"""Distillation losses: soft cross-entropy (Hinton, T^2-scaled) and logit MSE."""

import pytest
import torch
import torch.nn.functional as F

from kdprobe.errors import ConfigError
from kdprobe.losses import LOSSES, distillation_loss, logit_mse, soft_cross_entropy
from kdprobe.settings import LossSettings


def _logits(seed=0, b=6, c=4, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, c, generator=g) * scale, torch.randn(b, c, generator=g) * scale


@pytest.mark.parametrize("temperature", [1.0, 2.0, 3.0, 7.5])
def test_soft_ce_is_kl_plus_teacher_entropy_times_t2(temperature):
    s, t = _logits()
    p = F.softmax(t / temperature, dim=-1)
    log_q = F.log_softmax(s / temperature, dim=-1)
    kl = F.kl_div(log_q, p, reduction="batchmean")  # KL(teacher || student), mean over the batch
    entropy = -(p * p.log()).sum(-1).mean()
    expected = (kl + entropy) * temperature**2
    assert torch.allclose(soft_cross_entropy(s, t, temperature), expected, atol=1e-5)


def test_soft_ce_at_t1_is_cross_entropy_with_soft_targets():
    s, t = _logits(1)
    assert torch.allclose(soft_cross_entropy(s, t, 1.0), F.cross_entropy(s, F.softmax(t, -1)), atol=1e-6)


@pytest.mark.parametrize("temperature", [1.0, 3.0, 10.0])
def test_soft_ce_gradient_is_t_times_prob_difference(temperature):
    s, t = _logits(2)
    s = s.clone().requires_grad_(True)
    soft_cross_entropy(s, t, temperature).backward()
    expected = temperature * (F.softmax(s.detach() / temperature, -1) - F.softmax(t / temperature, -1)) / s.shape[0]
    assert torch.allclose(s.grad, expected, atol=1e-6)


def test_t2_scaling_keeps_gradient_magnitude_across_temperatures():
    s, t = _logits(3, scale=1.0)
    norms, raw = {}, {}
    for temperature in (10.0, 20.0, 40.0):
        x = s.clone().requires_grad_(True)
        soft_cross_entropy(x, t, temperature).backward()
        norms[temperature] = x.grad.norm().item()
        raw[temperature] = norms[temperature] / temperature**2  # what an unscaled loss would give
    # scaled: nearly constant (-> (s - t - mean) / (C * B) as T grows); unscaled: falls as 1/T^2
    assert norms[40.0] == pytest.approx(norms[10.0], rel=0.02)
    assert raw[10.0] / raw[20.0] == pytest.approx(4.0, rel=0.02)
    centred = (s - s.mean(-1, keepdim=True)) - (t - t.mean(-1, keepdim=True))
    assert norms[40.0] == pytest.approx((centred / (s.shape[1] * s.shape[0])).norm().item(), rel=0.02)


def test_soft_ce_does_not_backpropagate_into_teacher():
    s, t = _logits(4)
    t = t.clone().requires_grad_(True)
    soft_cross_entropy(s.requires_grad_(True), t, 3.0).backward()
    assert t.grad is None


def test_mse_sums_over_classes_as_thesis_equation_2_7():
    s, t = _logits(5, b=6, c=4)
    expected = sum(((s[b] - t[b]) ** 2).sum() for b in range(6)) / 6  # per example a sum over classes
    assert torch.allclose(logit_mse(s, t), expected)
    assert torch.allclose(logit_mse(s, t, "sum"), expected)
    assert torch.allclose(logit_mse(s, t, "mean"), F.mse_loss(s, t))
    assert torch.allclose(logit_mse(s, t, "sum"), logit_mse(s, t, "mean") * 4)
    with pytest.raises(ValueError, match="median"):
        logit_mse(s, t, "median")


@pytest.mark.parametrize("reduction,scale", [("sum", 1.0), ("mean", 1 / 60)])
def test_mse_gradient_is_2_diff_over_batch_or_also_over_classes(reduction, scale):
    """Summed: d/ds = 2 (s - t) / B; averaged: C times smaller (60 classes: Sara's order of magnitude)."""
    s, t = _logits(6, b=5, c=60)
    s = s.clone().requires_grad_(True)
    logit_mse(s, t, reduction).backward()
    assert torch.allclose(s.grad, 2 * (s.detach() - t) / 5 * scale, atol=1e-6)


def test_loss_settings_defaults_and_errors():
    assert LossSettings.from_section({}, "students.lstm_s", "mse") == LossSettings("students.lstm_s", "mse", 1.0, "sum")
    assert LossSettings.from_section({"loss": "soft_ce", "temperature": 3, "mse_reduction": "mean"},
                                     "students.bert_s", "mse") == LossSettings("students.bert_s", "soft_ce", 3.0, "mean")
    with pytest.raises(ConfigError, match=r"students.lstm_s.mse_reduction"):
        LossSettings.from_section({"mse_reduction": "avg"}, "students.lstm_s", "mse")
    with pytest.raises(ConfigError, match=r"students.bert_s.loss"):
        LossSettings.from_section({"loss": "kl"}, "students.bert_s", "soft_ce")


def test_lookup_by_config_name():
    s, t = _logits(6)
    assert set(LOSSES) == {"soft_ce", "mse"}
    assert torch.equal(distillation_loss("soft_ce", s, t, temperature=3.0), soft_cross_entropy(s, t, 3.0))
    assert torch.equal(distillation_loss("mse", s, t, temperature=3.0), logit_mse(s, t))  # T ignored; sum
    assert torch.equal(distillation_loss("mse", s, t, mse_reduction="mean"), logit_mse(s, t, "mean"))
    with pytest.raises(ConfigError, match="kl"):
        distillation_loss("kl", s, t)
    with pytest.raises(ValueError):
        soft_cross_entropy(s, t, 0.0)

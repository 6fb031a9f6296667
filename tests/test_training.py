"""The shared training core: learning-rate schedules, content digests, best-dev weights, the lr in the curve."""

from __future__ import annotations

import hashlib
import logging
import os

import numpy as np
import pytest
import torch

from kdprobe.checkpoint import ResumeState, resume_key
from kdprobe.digest import content_digests, differences, file_sha256, what_changed
from kdprobe.errors import ConfigError
from kdprobe.schedule import lr_factor, make_scheduler, schedule_steps
from kdprobe.settings import TrainSettings
from kdprobe.training import Batches, EpochEnd, Resume, fit, trainable_copy


# ------------------------------------------------------------------------------------------------ schedules
@pytest.mark.parametrize("kind,expected", [
    # warm-up 4 of 10 steps: (k + 1) / 4, then linear: (10 - k) / 6; constant: 1; none: 1 from the start
    ("linear", [0.25, 0.5, 0.75, 1.0, 1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6]),
    ("constant", [0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
    ("none", [1.0] * 10),
])
def test_lr_factor_at_each_step(kind, expected):
    warmup = 0 if kind == "none" else 4
    assert [lr_factor(kind, k, warmup, 10) for k in range(10)] == pytest.approx(expected)


def test_linear_without_warmup_decays_from_the_first_step():
    assert [lr_factor("linear", k, 0, 4) for k in range(4)] == pytest.approx([1.0, 0.75, 0.5, 0.25])
    assert lr_factor("constant", 3, 0, 4) == 1.0


@pytest.mark.parametrize("kind", ["linear", "constant", "none"])
def test_scheduler_sets_the_optimizer_lr_of_each_step(kind):
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=0.2)
    warmup = 0 if kind == "none" else 3
    scheduler = make_scheduler(optimizer, kind, warmup, 8)
    used = []
    for _ in range(8):
        used.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert used == pytest.approx([0.2 * lr_factor(kind, k, warmup, 8) for k in range(8)])


def test_schedule_steps_reads_the_section():
    assert schedule_steps("teacher", "linear", 0.1, None, 25, 4) == 10
    assert schedule_steps("students.bert_s", "constant", None, 2, 15, 9) == 30
    assert schedule_steps("students.lstm_s", "none", None, 0, 15, 9) == 0
    assert schedule_steps("students.lstm_s", "linear", None, None, 15, 9) == 0
    with pytest.raises(ConfigError, match=r"'students.lstm_s.warmup_epochs'.*'none' has no warm-up"):
        schedule_steps("students.lstm_s", "none", None, 1, 15, 9)
    with pytest.raises(ConfigError, match=r"'gpt2.warmup_fraction'"):
        schedule_steps("gpt2", "none", 0.1, None, 15, 9)
    with pytest.raises(ConfigError, match=r"'teacher.schedule'.*cosine"):
        schedule_steps("teacher", "cosine", None, None, 15, 9)
    with pytest.raises(ConfigError, match="not both"):
        schedule_steps("teacher", "linear", 0.1, 1, 15, 9)


# ------------------------------------------------------------------------------------------------ fit
def _regression(n=40, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=gen)
    return x, x @ torch.tensor([1.0, -2.0, 0.5]) + 0.1


def _model():
    torch.manual_seed(0)
    return torch.nn.Linear(3, 1)


def _fit(settings, model=None, tmp_path=None, on_epoch_end=None, **kw):
    model = model or _model()
    x, y = _regression()
    optimizer = torch.optim.SGD(model.parameters(), lr=float(settings["lr"]))

    def batch_loss(idx):
        return torch.nn.functional.mse_loss(model(x[idx]).squeeze(1), y[idx])

    result = fit(model, Batches(np.full(len(x), 5), batch_loss), optimizer, TrainSettings.from_section(settings, "test"),
                 device="cpu", resume=Resume(None if tmp_path is None else tmp_path / "state.pt", settings),
                 callbacks=[EpochEnd(on_epoch_end)] if on_epoch_end else [], **kw)
    return model, result


@pytest.mark.parametrize("kind,warmup,rows", [
    # 2 steps per epoch; each row has the lr of its epoch's last step
    ("none", 0, [0.1, 0.1, 0.1, 0.1]),                 # LSTM_S: constant lr
    ("constant", 2, [0.05, 0.1, 0.1, 0.1]),            # warm-up 2 epochs (4 steps), then flat
    ("linear", 2, [0.05, 0.1, 0.075, 0.025]),          # then decay: steps 4-7 at 1, 3/4, 1/2, 1/4
])
def test_curve_records_the_schedule(kind, warmup, rows):
    settings = {"epochs": 4, "batch_size": 20, "lr": 0.1, "schedule": kind, "warmup_epochs": warmup, "seed": 1}
    _, result = _fit(settings)
    assert [r["lr"] for r in result.curve] == pytest.approx(rows)
    assert [r["epoch"] for r in result.curve] == [1, 2, 3, 4] and [r["step"] for r in result.curve] == [2, 4, 6, 8]


def test_keep_best_restores_the_best_rows_weights(tmp_path):
    scores = iter([0.5, 0.9, 0.9, 0.7])  # epoch 2 is best; epoch 3 ties it and does not replace it
    model, snapshots = _model(), {}
    settings = {"epochs": 4, "batch_size": 8, "lr": 0.05, "schedule": "none", "seed": 2}
    _, result = _fit(settings, model, tmp_path, evaluate=lambda: {"dev_acc": next(scores)}, keep_best="dev_acc",
                     on_epoch_end=lambda epoch, row: snapshots.setdefault(epoch, trainable_copy(model)))
    assert result.best["epoch"] == 2 and result.best["dev_acc"] == 0.9 and result.steps == 20
    assert all(torch.equal(model.state_dict()[k], snapshots[2][k]) for k in snapshots[2])
    assert not torch.equal(model.state_dict()["weight"], snapshots[4]["weight"])
    assert (tmp_path / "state.pt").exists()  # left for the caller to clear once its outputs are written


def test_without_keep_best_the_final_weights_stay():
    model, last = _model(), {}
    _, result = _fit({"epochs": 2, "batch_size": 8, "lr": 0.05, "seed": 2}, model,
                     evaluate=lambda: {"dev_acc": 1.0}, on_epoch_end=lambda e, row: last.update(trainable_copy(model)))
    assert result.best is None and torch.equal(model.state_dict()["weight"], last["weight"])


def test_clip_norm_bounds_the_update():
    settings = {"epochs": 1, "batch_size": 40, "lr": 1.0, "schedule": "none", "seed": 0}
    start = _model().weight.detach().clone()
    clipped, _ = _fit({**settings, "clip_norm": 0.01})
    free, _ = _fit(settings)
    # one SGD step at lr 1: the clipped update has norm <= 0.01 over all parameters, the free one is larger
    assert (clipped.weight.detach() - start).norm() <= 0.01 + 1e-6
    assert (free.weight.detach() - start).norm() > 0.1


# ------------------------------------------------------------------------------------------------ digests
def test_content_digests_cover_directories_in_sorted_order(tmp_path):
    (tmp_path / "m" / "sub").mkdir(parents=True)
    (tmp_path / "m" / "b.txt").write_bytes(b"bee")
    (tmp_path / "m" / "sub" / "a.bin").write_bytes(b"\x00" * 3_000_000)  # more than one read block
    (tmp_path / "labels.txt").write_text("x\n")
    got = content_digests({"model": tmp_path / "m", "labels": tmp_path / "labels.txt"})
    assert list(got) == ["model/b.txt", "model/sub/a.bin", "labels"]
    assert got["model/sub/a.bin"] == hashlib.sha256(b"\x00" * 3_000_000).hexdigest()
    (tmp_path / "m").rename(tmp_path / "moved")  # where the inputs lie does not matter, only what they hold
    assert content_digests({"model": tmp_path / "moved", "labels": tmp_path / "labels.txt"}) == got
    with pytest.raises(Exception, match="input not found"):
        content_digests({"x": tmp_path / "missing"})


def test_digest_sees_content_that_keeps_size_and_mtime(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"weights-1")
    before, stat = file_sha256(path), path.stat()
    path.write_bytes(b"weights-2")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert file_sha256(path) != before


def test_differences_name_the_changed_keys():
    old = {"settings": {"lr": 1, "epochs": 2}, "inputs": {"a.tsv": "1", "b.tsv": "2"}}
    new = {"settings": {"lr": 2, "epochs": 2}, "inputs": {"a.tsv": "1", "c.tsv": "3"}}
    assert differences(old, new) == ["inputs.b.tsv", "inputs.c.tsv", "settings.lr"]
    assert differences(old, old) == [] and differences(None, new) == ["<record>"]
    many = {"inputs": {f"f{i}": str(i) for i in range(12)}}
    assert what_changed({"inputs": {}}, many) == ", ".join(f"inputs.f{i}" for i in (0, 1, 10, 11, 2, 3, 4, 5, 6, 7)) \
        + " and 2 more"
    assert what_changed(None, new).startswith("everything")


def test_resume_state_of_another_key_is_discarded_with_the_reason(tmp_path, caplog):
    (tmp_path / "train.tsv").write_text("a\n")
    key = resume_key({"lr": 1, "betas": (0.9, 0.99)}, {"train.tsv": tmp_path / "train.tsv"}, lengths="abc")
    assert key["settings"]["betas"] == [0.9, 0.99]  # as JSON: the same key after any round trip
    ResumeState(tmp_path / "s.pt", key).save({"epoch": 1, "step": 3})
    assert ResumeState(tmp_path / "s.pt", key).load()["step"] == 3
    (tmp_path / "train.tsv").write_text("b\n")
    other = resume_key({"lr": 1, "betas": (0.9, 0.99)}, {"train.tsv": tmp_path / "train.tsv"}, lengths="abc")
    with caplog.at_level(logging.WARNING):
        assert ResumeState(tmp_path / "s.pt", other).load() is None
    assert "discarding resume state" in caplog.text and "(changed: inputs.train.tsv)" in caplog.text

"""TensorBoard events of the training loop (config key `tensorboard`): the curve rows read back, nothing when off,
appended on resume (a killed run's later rows hidden), replaced on a fresh start; the scripts' directory."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from kdprobe.errors import ConfigError
from kdprobe.settings import TrainSettings
from kdprobe.training import Batches, Resume, StopAfter, TrainingInterrupted, fit, tensorboard, tensorboard_dir

# 40 examples in batches of 10: 4 steps per epoch, a curve row after every step (evals_per_epoch 4)
SETTINGS = {"epochs": 3, "batch_size": 10, "lr": 0.05, "schedule": "linear", "warmup_epochs": 1, "seed": 3,
            "evals_per_epoch": 4}


def _fit(events, state, score, stop_after_steps=None):
    """Fit a linear regression; `score(step)` is the dev metric of each row (it tells runs apart)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    x = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
    y = x @ torch.tensor([1.0, -2.0, 0.5])
    optimizer = torch.optim.SGD(model.parameters(), lr=SETTINGS["lr"])
    steps = iter(range(1, 100))

    def batch_loss(idx):
        return torch.nn.functional.mse_loss(model(x[idx]).squeeze(1), y[idx])

    stop = [StopAfter(stop_after_steps)] if stop_after_steps else []
    return fit(model, Batches(np.full(40, 5), batch_loss), optimizer, TrainSettings.from_section(SETTINGS, "test"),
               device="cpu", resume=Resume(state, SETTINGS), evaluate=lambda: {"dev_acc": score(next(steps))},
               callbacks=tensorboard(events) + stop)


def read_scalars(directory: Path) -> dict[str, list[tuple[int, float]]]:
    """The scalars of a TensorBoard directory: {tag: [(step, value), ...]}."""
    acc = EventAccumulator(str(directory))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def as_scalars(curve) -> dict[str, list[tuple[int, float]]]:
    """Curve rows as `read_scalars` should find them (every column but `step`, at the row's step)."""
    tags = [k for k in curve[0] if k != "step"]
    return {tag: [(row["step"], pytest.approx(row[tag], rel=1e-6)) for row in curve] for tag in tags}


def test_events_are_the_curve_rows(tmp_path):
    result = _fit(tmp_path / "teacher" / "cola.tensorboard", tmp_path / "state.pt", lambda step: 0.5 + step / 100)
    assert len(result.curve) == 12 and [r["step"] for r in result.curve] == list(range(1, 13))
    got = read_scalars(tmp_path / "teacher" / "cola.tensorboard")
    assert sorted(got) == ["dev_acc", "epoch", "grad_norm", "grad_norm_max", "loss", "lr"]
    assert got == as_scalars(result.curve)


def test_nothing_is_written_when_off(tmp_path):
    result = _fit(None, tmp_path / "state.pt", lambda step: 0.5)
    assert len(result.curve) == 12
    assert [p.name for p in tmp_path.rglob("*")] == ["state.pt"]


def _wait_for_the_next_second():
    """Event file names start with the second they were made in: a later file must sort after an earlier one."""
    now = int(time.time())
    while int(time.time()) == now:
        time.sleep(0.05)


def test_resumed_run_appends_and_hides_the_killed_runs_later_rows(tmp_path):
    events, state = tmp_path / "run.tensorboard", tmp_path / "state.pt"
    # killed at step 6: rows 1-6 written, the state saved at the end of epoch 1 (step 4)
    with pytest.raises(TrainingInterrupted):
        _fit(events, state, lambda step: 0.1, stop_after_steps=6)
    assert [s for s, _ in read_scalars(events)["dev_acc"]] == [1, 2, 3, 4, 5, 6]
    _wait_for_the_next_second()
    result = _fit(events, state, lambda step: 0.9)  # resumes at step 4: its rows 5-12 score 0.9
    assert len(list(events.iterdir())) == 2  # appended: a second event file in the same directory
    got = read_scalars(events)
    assert got["dev_acc"] == [(s, pytest.approx(0.1 if s <= 4 else 0.9)) for s in range(1, 13)]
    assert got == as_scalars(result.curve)


def test_fresh_run_replaces_an_older_runs_events(tmp_path):
    events = tmp_path / "run.tensorboard"
    _fit(events, None, lambda step: 0.1)
    result = _fit(events, None, lambda step: 0.7)  # no state: starts afresh
    assert len(list(events.iterdir())) == 1
    got = read_scalars(events)
    assert got["dev_acc"] == [(s, pytest.approx(0.7)) for s in range(1, 13)]
    assert got == as_scalars(result.curve)


def test_the_scripts_directory_is_beside_the_log():
    assert tensorboard_dir(False, ["logs/teacher/cola.log"]) is None
    assert tensorboard_dir(False, []) is None
    assert tensorboard_dir(True, ["logs/distil/sst2/bert_s.log"]) == Path("logs/distil/sst2/bert_s.tensorboard")
    with pytest.raises(ConfigError, match="'tensorboard'.*no log"):
        tensorboard_dir(True, [])


def test_missing_package_names_the_key_and_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"'tensorboard'.*pip install 'kdprobe\[tensorboard\]'"):
        tensorboard_dir(True, ["logs/gpt2/cola.log"])
    with pytest.raises(ConfigError, match="'tensorboard'"):
        _fit(tmp_path / "run.tensorboard", None, lambda step: 0.5)
    assert tensorboard_dir(False, ["logs/gpt2/cola.log"]) is None  # off: the package is not needed

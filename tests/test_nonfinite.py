"""NaN is never a result: a NaN or infinite loss, logit or weight stops the job with an error naming where it
appeared, and nothing is written that looks complete (training loop, transfer set, teacher logits, sampling,
predictions, probe features)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from kdprobe.augment.sample import sample_batch
from kdprobe.batching import epoch_batches
from kdprobe.distil import read_transfer
from kdprobe.errors import InputError, NonFiniteError
from kdprobe.io import write_parquet, write_text, write_tsv
from kdprobe.losses import distillation_loss
from kdprobe.predict.predictions import write_predictions
from kdprobe.probe.classifier import fit_grid
from kdprobe.settings import TrainSettings
from kdprobe.students.testing import LABELS, make_teacher, synthetic_sentences
from kdprobe.training import Batches, Resume, fit
from kdprobe.transfer import write_transfer

from test_lm import make_tiny_gpt2


# ------------------------------------------------------------------------------------------- the training loop
def _fit(batch_loss, model, n=40, lr=0.1, state=None, **section):
    section = {"epochs": 2, "batch_size": 4, "seed": 3, "schedule": "none", **section}
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    return fit(model, Batches(np.full(n, 5), batch_loss), optimizer, TrainSettings.from_section(section, "test"),
               device="cpu", resume=Resume(state, section), desc="test")


def _regression(bad_row=None):
    torch.manual_seed(0)
    x = torch.randn(40, 3)
    if bad_row is not None:
        x[bad_row, 1] = float("nan")
    model = torch.nn.Linear(3, 1)
    return model, lambda idx: torch.nn.functional.mse_loss(model(x[idx]).squeeze(1), x[idx].sum(1))


def test_a_nan_loss_names_the_first_bad_step_epoch_and_batch():
    model, loss = _regression(bad_row=17)
    batch = next(i for i, idx in enumerate(epoch_batches(np.full(40, 5), 4, 3, 0)) if 17 in idx)
    assert batch > 0  # later batches are NaN too (the weights are): the error names the first
    with pytest.raises(NonFiniteError, match=rf"test: training step {batch + 1} \(epoch 1, batch {batch + 1} of 10\)"
                                             r": the loss is NaN or infinite; check the learning rate, the "
                                             r"temperature and the inputs"):
        _fit(loss, model)


def test_no_state_is_saved_after_a_nan_loss(tmp_path):
    first = int(epoch_batches(np.full(40, 5), 4, 3, 0)[0][0])
    model, loss = _regression(bad_row=first)
    state = tmp_path / "state.pt"
    with pytest.raises(NonFiniteError, match=r"training step 1 \(epoch 1, batch 1 of 10\)"):
        _fit(loss, model, state=state, save_every_steps=1)
    assert not state.exists()


def test_a_diverging_learning_rate_stops_training():
    model, loss = _regression()
    with pytest.raises(NonFiniteError, match=r"training step \d+ \(epoch \d, batch \d+ of 10\): the loss is NaN"):
        _fit(loss, model, lr=1e6)


def test_soft_ce_at_a_huge_temperature_stops_training():
    model, _ = _regression()
    teacher = torch.randn(40, 3)

    def loss(idx):
        student = torch.cat([model(teacher[idx]), -model(teacher[idx])], dim=1)
        return distillation_loss("soft_ce", student, teacher[idx, :2], temperature=1e20)

    with pytest.raises(NonFiniteError, match=r"training step 1 \(epoch 1, batch 1 of 10\)"):
        _fit(loss, model)


def test_weights_that_turn_non_finite_on_the_last_step_are_refused():
    model = torch.nn.Linear(2, 1)

    def loss(idx):  # a finite loss (0) whose gradient is infinite: the weights become -inf
        return (model.weight - model.weight.detach()).sqrt().sum()

    with pytest.raises(NonFiniteError, match=r"test: the trained model: 1 of 2 weight tensors hold NaN or infinite "
                                             r"values \(weight\); nothing was saved"):
        _fit(loss, model, n=4, epochs=1)


def test_finite_training_is_untouched():
    model, loss = _regression()
    result = _fit(loss, model)
    assert result.steps == 20 and all(np.isfinite(row["loss"]) for row in result.curve)


# ------------------------------------------------------------------------------------------- transfer set
@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return make_teacher(tmp_path_factory.mktemp("nonfinite") / "teacher", synthetic_sentences(60, 0)[0])


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e300])  # 1e300 overflows float32
def test_the_distil_stage_refuses_a_non_finite_teacher_logit(tmp_path, value):
    logits = [np.array([0.5, -0.5]) for _ in range(480)]
    logits[331] = np.array([0.1, value])
    path = tmp_path / "train.parquet"
    write_parquet(path, pd.DataFrame({"sentence": ["a b"] * 480, "logits": logits, "label": ["positive"] * 480}))
    with pytest.raises(InputError, match=rf"{path}: row 331: the teacher logits .* are not all finite"):
        read_transfer([path], 2, need_ids=False)


@pytest.fixture(scope="module")
def broken_teacher(teacher, tmp_path_factory):
    """The teacher with [UNK]'s embedding NaN: only a sentence with an unknown word gets NaN logits."""
    tokenizer = AutoTokenizer.from_pretrained(teacher)
    model = AutoModelForSequenceClassification.from_pretrained(teacher)
    with torch.no_grad():
        model.bert.embeddings.word_embeddings.weight[tokenizer.unk_token_id] = float("nan")
    broken = tmp_path_factory.mktemp("broken") / "teacher"
    model.save_pretrained(broken)
    tokenizer.save_pretrained(broken)
    assert tokenizer.unk_token_id in tokenizer(SENTENCES[2])["input_ids"]
    return broken


SENTENCES = ["the movie was good", "a plot", "the \u2603 film", "it was dull"]


def test_the_transfer_stage_refuses_non_finite_logits_before_writing(teacher, broken_teacher, tmp_path):
    out = tmp_path / "t.parquet"
    with pytest.raises(NonFiniteError, match=r"sentence 2 'the \u2603 film': the logits .* are NaN or infinite; "
                                             r"nothing was written; check the teacher's weights"):
        write_transfer(broken_teacher, SENTENCES, None, {"batch_size": 4, "max_length": 16}, out, "cpu")
    assert not out.exists()
    write_transfer(teacher, SENTENCES, None, {"batch_size": 4, "max_length": 16}, out, "cpu")  # a sound teacher
    assert out.exists()


def test_predictions_refuse_non_finite_logits_before_writing(teacher, broken_teacher, tmp_path):
    write_text(tmp_path / "labels.txt", "".join(f"{name}\n" for name in LABELS))
    write_tsv(tmp_path / "dev.tsv", pd.DataFrame({"sentence": SENTENCES, "label": LABELS * 2}))
    out = tmp_path / "teacher.tsv"
    with pytest.raises(NonFiniteError, match=rf"teacher {broken_teacher}, dev.tsv sentence 3: the logits .* NaN"):
        write_predictions("teacher", broken_teacher, tmp_path, out, "cpu", max_length=16)
    assert not out.exists()
    assert len(write_predictions("teacher", teacher, tmp_path, out, "cpu", max_length=16)) == 4


# ------------------------------------------------------------------------------------------- sampling
class NanAt(torch.nn.Module):
    """Wraps an LM: its next-token logits are NaN from generation step `step` on."""

    def __init__(self, inner, step: int):
        super().__init__()
        self.inner, self.step = inner, step

    def forward(self, input_ids, past_key_values=None, use_cache=True):
        start = past_key_values.get_seq_length() if past_key_values is not None else 0
        out = self.inner(input_ids=input_ids, past_key_values=past_key_values, use_cache=use_cache)
        if start >= self.step:
            out.logits[:, -1, 0] = float("nan")
        return out


def test_sampling_refuses_nan_logits(tmp_path):
    path = make_tiny_gpt2(tmp_path / "gpt2")
    model, tok = AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)
    eos = tok.eos_token_id
    kw = dict(bos=eos, eos=eos, max_length=8, generator=torch.Generator().manual_seed(0), device=torch.device("cpu"))
    assert len(sample_batch(NanAt(model, step=99), 4, **kw)) == 4  # the wrapper alone changes nothing
    with pytest.raises(NonFiniteError, match=r"sampling, token 3: the language model's next-token logits are NaN"):
        sample_batch(NanAt(model, step=2), 4, **kw)


# ------------------------------------------------------------------------------------------- probing
def test_the_probe_refuses_non_finite_features():
    g = torch.Generator().manual_seed(0)
    split = [(torch.randn(n, 8, generator=g), torch.randint(0, 2, (n,), generator=g)) for n in (40, 20, 20)]
    settings = {"grid": {"hidden": [4], "dropout": [0.0], "weight_decay": [0.0]}, "standardise": False, "lr": 1e-3,
                "batch_size": 16, "epoch_size": 1, "tenacity": 1, "max_epoch": 2, "seed": 0}
    assert 0 <= fit_grid(*split, settings, desc="bert_s sara layer 2 mean").test_acc <= 1
    split[1][0][7, 3] = float("inf")
    with pytest.raises(NonFiniteError, match=r"bert_s sara layer 2 mean: dev sentence 8: its features are NaN or "
                                             r"infinite; no probe was trained; check the model's weights"):
        fit_grid(*split, settings, desc="bert_s sara layer 2 mean")

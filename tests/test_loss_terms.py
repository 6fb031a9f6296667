"""The loss as named, weighted terms (`students.<student>.loss` as a list; `kdprobe.loss_terms`,
`kdprobe.losses`, `kdprobe.distil_terms`): every term against a hand computation on small tensors, the settings'
refusals naming the key, the teacher's states of one forward pass, and distillation of a tiny BERT_S with hidden
and attention terms end to end (curve columns, TensorBoard tags, resume bit for bit, non-finite terms)."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file

import kdprobe.distil_terms as distil_terms
from kdprobe import config as kdconfig
from kdprobe.distil import distil
from kdprobe.errors import ConfigError, NonFiniteError
from kdprobe.loss_terms import check_against_teacher, parse_terms
from kdprobe.losses import attention_mse, hard_cross_entropy, hidden_cosine, hidden_mse, soft_cross_entropy
from kdprobe.settings import LossSettings
from kdprobe.students.testing import LABELS, SECTION, make_task, make_teacher, make_transfer
from kdprobe.training import EpochEnd, RunFiles, TensorBoard

ROOT = Path(__file__).resolve().parents[1]
BERT_S = {**SECTION["bert_s"], "layers": 2, "hidden": 32, "intermediate": 64, "heads": 2, "dropout": 0.1,
          "max_length": 32, "embeddings": "random", "temperature": 3.0, "mse_reduction": "sum", "optimizer": "adam",
          "lr": 3e-3, "betas": [0.9, 0.98], "batch_size": 16, "epochs": 5, "schedule": "linear", "warmup_epochs": 1,
          "clip_norm": 0, "seed": 7}
TERMS = [{"term": "soft_ce"}, {"term": "hard_ce", "weight": 0.5, "on": "gold"},
         {"term": "hidden_mse", "weight": 0.2, "map": {1: 1, 0: 0}},
         {"term": "attention_mse", "weight": 2.0, "map": {2: 2}, "heads": "match"}]


# ------------------------------------------------------------------------------------------ hand computations
def test_hard_ce_is_the_mean_over_labelled_rows_and_zero_without_any():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]], requires_grad=True)
    got = hard_cross_entropy(logits, torch.tensor([0, -1, 1]))
    expected = (math.log(1 + math.exp(-2.0)) + math.log(2.0)) / 2  # rows 0 and 2; row 1 has no label
    assert got.item() == pytest.approx(expected, rel=1e-6)
    none = hard_cross_entropy(logits, torch.tensor([-1, -1, -1]))
    assert none.item() == 0.0
    none.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))  # a gradient of 0, not a missing one


def test_hidden_mse_and_cosine_over_real_tokens():
    student = torch.tensor([[[1.0, 0.0], [1.0, 1.0], [9.0, 9.0]]])
    teacher = torch.tensor([[[0.0, 1.0], [2.0, 2.0], [0.0, 0.0]]])
    mask = torch.tensor([[1, 1, 0]])  # the third token is padding
    # squared errors: token 0: 1 + 1, token 1: 1 + 1; / (2 tokens x 2 units)
    assert hidden_mse(student, teacher, mask).item() == pytest.approx(4 / 4)
    # 1 - cos: token 0 orthogonal (1), token 1 parallel (0)
    assert hidden_cosine(student, teacher, mask).item() == pytest.approx(0.5, abs=1e-6)


def test_attention_mse_heads_match_and_average():
    # one row, 2 heads, 2 tokens of which the second is padding: only the (0, 0) entry of each head counts
    student = torch.tensor([[[[0.6, 0.4], [0.5, 0.5]], [[0.2, 0.8], [0.1, 0.9]]]])
    teacher = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]], [[0.5, 0.5], [1.0, 0.0]]]])
    mask = torch.tensor([[1, 0]])
    assert attention_mse(student, teacher, mask, "match").item() == pytest.approx(((0.6 - 1) ** 2 + (0.2 - 0.5) ** 2) / 2)
    # averaged over heads first: student 0.4, teacher 0.75 at (0, 0)
    assert attention_mse(student, teacher, mask, "average").item() == pytest.approx((0.4 - 0.75) ** 2)
    full = torch.tensor([[1, 1]])
    assert attention_mse(student, teacher, full, "match").item() == pytest.approx(
        float(((student - teacher) ** 2).sum()) / (2 * 4))
    with pytest.raises(ValueError, match="equal head counts"):
        attention_mse(student, teacher[:, :1], mask, "match")


def test_soft_ce_temperature_schedule_is_linear_over_the_steps():
    term = parse_terms({"loss": [{"term": "soft_ce", "temperature": 4, "temperature_schedule": "linear",
                                  "final_temperature": 1}]}, "students.bert_s", "bert_s")[0]
    assert [term.temperature_at(s, 6) for s in (0, 2, 3, 6)] == [4.0, 3.0, 2.5, 1.0]
    constant = parse_terms({"temperature": 3, "loss": [{"term": "soft_ce"}]}, "students.bert_s", "bert_s")[0]
    assert constant.temperature_at(5, 6) == 3.0  # the section's temperature is the default


def test_the_string_form_is_unchanged_and_defaults_come_from_the_section():
    plain = LossSettings.from_section({"loss": "soft_ce", "temperature": 3}, "students.bert_s", "soft_ce")
    assert plain == LossSettings("students.bert_s", "soft_ce", 3.0, "sum") and plain.terms == ()
    loss = LossSettings.from_section({"loss": [{"term": "mse"}, {"term": "mse", "reduction": "sum", "weight": 2}],
                                      "mse_reduction": "mean", "layers": 2}, "students.lstm_s", "mse")
    assert [(t.name, t.reduction, t.weight) for t in loss.terms] == [("mse_0", "mean", 1.0), ("mse_1", "sum", 2.0)]
    assert not loss.needs_teacher


@pytest.mark.parametrize("loss,key,says", [
    ([{"term": "soft_ce"}, {"term": "mse"}, {"term": "hidden_mse", "map": {3: 1}}], "students.bert_s.loss.2.map",
     "student layer 3"),
    ([{"term": "attention_mse", "map": {0: 1}}], "students.bert_s.loss.0.map", "attention maps of layers 1.."),
    ([{"term": "attention_mse", "map": {1: 0}}], "students.bert_s.loss.0.map.1", "teacher layer 0"),
    ([{"term": "hidden_mse", "map": {}}], "students.bert_s.loss.0.map", "not a mapping"),
    ([{"term": "soft_ce", "heads": "match"}], "students.bert_s.loss.0.heads", "unknown key for term soft_ce"),
    ([{"term": "kl"}], "students.bert_s.loss.0.term", "not one of"),
    ([{"term": "hard_ce", "on": "silver"}], "students.bert_s.loss.0.on", "not one of"),
    ([{"term": "soft_ce", "temperature_schedule": "linear"}], "students.bert_s.loss.0.final_temperature", "missing"),
    ([{"term": "soft_ce", "final_temperature": 1}], "students.bert_s.loss.0.final_temperature", "only with"),
    ([{"term": "mse", "weight": -1}], "students.bert_s.loss.0.weight", "at least 0"),
    ([], "students.bert_s.loss", "non-empty list"),
])
def test_bad_terms_are_refused_naming_the_key(loss, key, says):
    with pytest.raises(ConfigError) as err:
        LossSettings.from_section({**BERT_S, "loss": loss}, "students.bert_s", "soft_ce")
    assert err.value.key == key and says in err.value.message, str(err.value)


def test_teacher_terms_need_bert_s_on_wordpieces_and_a_fitting_teacher():
    with pytest.raises(ConfigError, match="students.lstm_s.loss.0.term"):
        parse_terms({"layers": 1, "loss": [{"term": "hidden_cosine", "map": {1: 1}}]}, "students.lstm_s", "lstm_s")
    with pytest.raises(ConfigError, match="students.bert_s.loss.0.term.*word2vec"):
        parse_terms({**BERT_S, "embeddings": "word2vec", "loss": [{"term": "hidden_mse", "map": {1: 1}}]},
                    "students.bert_s", "bert_s")
    section = {**BERT_S, "loss": [{"term": "hidden_mse", "map": {1: 2}, "projection": "none"},
                                  {"term": "attention_mse", "map": {2: 4}}]}
    terms = parse_terms(section, "students.bert_s", "bert_s")
    teacher = {"num_hidden_layers": 4, "hidden_size": 32, "num_attention_heads": 2, "max_position_embeddings": 64}
    check_against_teacher(terms, section, teacher)  # fits
    for change, key in (({"hidden_size": 16}, "students.bert_s.loss.0.projection"),
                        ({"num_attention_heads": 4}, "students.bert_s.loss.1.heads"),
                        ({"num_hidden_layers": 3}, "students.bert_s.loss.1.map"),
                        ({"max_position_embeddings": 16}, "students.bert_s.max_length")):
        with pytest.raises(ConfigError) as err:
            check_against_teacher(terms, section, teacher | change)
        assert err.value.key == key, str(err.value)


def test_start_up_checks_the_terms_against_a_local_teacher(tmp_path):
    teacher = make_teacher(tmp_path / "teacher", ["a b c", "d e f"], layers=2)
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["teacher"]["model"] = str(teacher)
    config["students"]["bert_s"] |= {"max_length": 32, "loss": [{"term": "soft_ce"}, {"term": "hidden_mse", "map": {1: 3}}]}
    kdconfig.validate(config, ROOT / "workflow" / "schemas" / "config.schema.yaml")
    with pytest.raises(ConfigError, match="students.bert_s.loss.1.map.*num_hidden_layers 2"):
        kdconfig.check_loss_terms(config)
    config["students"]["bert_s"]["loss"][1]["map"] = {1: 2}
    kdconfig.check_loss_terms(config)
    config["students"]["bert_s"]["loss"][1]["shape"] = 1
    with pytest.raises(ConfigError, match="students.bert_s.loss.1.shape.*unknown key"):
        kdconfig.validate(config, ROOT / "workflow" / "schemas" / "config.schema.yaml")


def test_attention_maps_are_the_probabilities_before_dropout():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=32, attention_probs_dropout_prob=0.5)).eval()
    ids, mask = torch.randint(5, 30, (2, 6)), torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
    reference = model(input_ids=ids, attention_mask=mask).last_hidden_state  # sdpa
    distil_terms.with_attention_maps(model)
    out = model(input_ids=ids, attention_mask=mask, output_attentions=True)
    assert torch.allclose(out.last_hidden_state, reference, atol=1e-5)
    assert torch.all(out.attentions[0][1, :, :, 4:] == 0)  # padded keys get no attention
    model.train()
    maps = model(input_ids=ids, attention_mask=mask, output_attentions=True).attentions
    assert torch.allclose(maps[1].sum(-1), torch.ones(2, 2, 6), atol=1e-5)  # dropout's zeros are not in them


# ------------------------------------------------------------------------------------------------ end to end
def _fine_tune(teacher_dir, sentences, labels, steps=100):
    """A few Adam steps of the tiny teacher on the task, so that its internal states carry the label (an untrained
    teacher's would pull the student away from it); saved in place."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(teacher_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(teacher_dir)).train()
    enc = tok(sentences, padding=True, return_tensors="pt")
    y = torch.tensor([LABELS.index(label) for label in labels])
    optimizer, g = torch.optim.Adam(model.parameters(), lr=3e-3), torch.Generator().manual_seed(0)
    for _ in range(steps):
        i = torch.randint(0, len(y), (16,), generator=g)
        loss = model(input_ids=enc["input_ids"][i], attention_mask=enc["attention_mask"][i], labels=y[i]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval().save_pretrained(str(teacher_dir))


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    """The synthetic task with a fine-tuned 2-layer teacher of BERT_S's widths (hidden 32, 2 heads) and an untrained
    one of another width (hidden 16)."""
    root = tmp_path_factory.mktemp("terms")
    splits = make_task(root / "data", n_train=160, n_dev=60, n_test=60, seed=1)
    sentences, labels = splits["train"]
    teacher = make_teacher(root / "teacher", sentences, layers=2, hidden=32, intermediate=64, seed=3)
    _fine_tune(teacher, sentences, labels)
    narrow = make_teacher(root / "narrow", sentences, layers=2, hidden=16, seed=3)
    transfer = root / "train.parquet"
    make_transfer(transfer, teacher, sentences, labels, seed=1)
    return {"data": root / "data", "teacher": teacher, "narrow": narrow, "transfer": [transfer]}


def _run(task, settings, out, state=None, teacher="teacher", callbacks=()):
    return distil("bert_s", "sst2", settings, task["transfer"], task["data"], task[teacher], RunFiles.in_dir(out),
                  state, "cpu", callbacks=list(callbacks))


def test_one_teacher_pass_per_batch_and_the_weighted_total(task, monkeypatch):
    calls = []
    real = distil_terms.TeacherStates.__call__

    def counted(self, ids, mask):
        calls.append(ids.shape)
        return real(self, ids, mask)

    monkeypatch.setattr(distil_terms.TeacherStates, "__call__", counted)
    seen = []
    real_total = distil_terms.TermLoss.__call__

    def total(self, batch, teacher_logits, idx):
        before = {k: v.clone() for k, v in self.parts.sums.items()}
        out = real_total(self, batch, teacher_logits, idx)
        values = {k: (self.parts.sums[k] - before[k]).item() / len(idx) for k in before}
        seen.append((out.item(), values))
        return out

    monkeypatch.setattr(distil_terms.TermLoss, "__call__", total)
    settings = {**BERT_S, "epochs": 1, "loss": TERMS}
    _run(task, settings, Path(task["data"]).parent / "once")
    assert len(calls) == math.ceil(160 / 16)  # one teacher forward pass per batch, whole batches
    weights = {"soft_ce": 1.0, "hard_ce": 0.5, "hidden_mse": 0.2, "attention_mse": 2.0}
    for out, values in seen:
        assert out == pytest.approx(sum(weights[k] * v for k, v in values.items()), rel=1e-5)


def test_teacher_states_are_the_teachers_own(task):
    from transformers import AutoModelForSequenceClassification

    loss = LossSettings.from_section({**BERT_S, "loss": TERMS}, "students.bert_s", "soft_ce")
    states = distil_terms.TeacherStates(task["teacher"], loss, BERT_S, torch.device("cpu"), {})
    reference = AutoModelForSequenceClassification.from_pretrained(str(task["teacher"])).eval()
    ids, mask = torch.tensor([[2, 7, 8, 9, 3], [2, 10, 3, 0, 0]]), torch.tensor([[1] * 5, [1, 1, 1, 0, 0]])
    hidden, maps = states(ids, mask)
    with torch.no_grad():
        ref = reference(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    assert len(hidden) == 3 and all(torch.allclose(a, b, atol=1e-5) for a, b in zip(hidden, ref.hidden_states))
    assert len(maps) == 2 and maps[0].shape == (2, 2, 5, 5)
    # the layers above the deepest mapped one are not run (at least one is: transformers records no state without)
    for layer_map, n_states in (({2: 1}, 2), ({1: 0}, 2)):
        loss = LossSettings.from_section({**BERT_S, "loss": [{"term": "hidden_cosine", "map": layer_map}]},
                                         "students.bert_s", "soft_ce")
        cut = distil_terms.TeacherStates(task["teacher"], loss, BERT_S, torch.device("cpu"), {})
        hidden, maps = cut(ids, mask)
        assert len(cut.model.encoder.layer) == n_states - 1 and maps is None
        assert len(hidden) == n_states and all(torch.allclose(a, b, atol=1e-5) for a, b in zip(hidden, ref.hidden_states))


def test_distil_trains_bert_s_with_hidden_and_attention_terms(task, tmp_path):
    settings = {**BERT_S, "epochs": 10, "loss": TERMS}
    events = tmp_path / "events"
    metrics = _run(task, settings, tmp_path / "out", tmp_path / "s.pt", callbacks=[TensorBoard(events)])
    assert metrics["dev"]["accuracy"] >= 0.8
    curve = pd.read_csv(tmp_path / "out" / "curve.csv")
    assert list(curve.columns) == ["step", "epoch", "loss", "loss_soft_ce", "loss_hard_ce", "loss_hidden_mse",
                                   "loss_attention_mse", "lr", "grad_norm", "grad_norm_max", "dev_accuracy"]
    for column in ("loss_soft_ce", "loss_hidden_mse", "loss_attention_mse"):
        assert curve[column].iloc[-1] < curve[column].iloc[0], column
    # the row's total is the weighted sum of its terms' means
    weighted = curve["loss_soft_ce"] + 0.5 * curve["loss_hard_ce"] + 0.2 * curve["loss_hidden_mse"] + \
        2.0 * curve["loss_attention_mse"]
    assert np.allclose(curve["loss"], weighted, rtol=1e-6)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events))
    acc.Reload()
    assert {"loss", "loss/soft_ce", "loss/hard_ce", "loss/hidden_mse", "loss/attention_mse"} <= set(
        acc.Tags()["scalars"])
    # equal widths: the projections are learned but not saved with the student
    saved = load_file(str(tmp_path / "out" / "model" / "model.safetensors"))
    assert not any("projection" in k for k in saved)


class Stop(Exception):
    pass


def test_resume_covers_the_projections_bit_for_bit(task, tmp_path):
    settings = {**BERT_S, "epochs": 2, "loss": [{"term": "soft_ce", "temperature_schedule": "linear",
                                                 "final_temperature": 1},
                                                {"term": "hidden_cosine", "map": {2: 2}, "projection": "linear"}]}
    ref = _run(task, settings, tmp_path / "ref", tmp_path / "ref.pt", teacher="narrow")
    state = tmp_path / "state.pt"

    def stop(epoch, row):
        raise Stop

    with pytest.raises(Stop):
        _run(task, settings, tmp_path / "out", state, teacher="narrow", callbacks=[EpochEnd(stop)])
    saved = torch.load(state, weights_only=True)
    assert {"projections.hidden_cosine_2.weight", "projections.hidden_cosine_2.bias"} <= set(saved["model"])
    assert saved["model"]["projections.hidden_cosine_2.weight"].shape == (16, 32)  # student 32 -> teacher 16
    assert set(saved["parts"]) == {"soft_ce", "hidden_cosine"}
    assert _run(task, settings, tmp_path / "out", state, teacher="narrow") == ref
    a, b = (load_file(str(d / "model" / "model.safetensors")) for d in (tmp_path / "ref", tmp_path / "out"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "ref" / "curve.csv").read_text() == (tmp_path / "out" / "curve.csv").read_text()


def test_projection_none_at_other_widths_is_refused_naming_the_key(task, tmp_path):
    settings = {**BERT_S, "loss": [{"term": "hidden_mse", "map": {1: 1}, "projection": "none"}]}
    with pytest.raises(ConfigError, match="students.bert_s.loss.0.projection"):
        _run(task, settings, tmp_path / "out", teacher="narrow")
    assert not (tmp_path / "out").exists()


def test_a_non_finite_term_stops_the_job_naming_it(task, tmp_path, monkeypatch):
    monkeypatch.setattr(distil_terms, "hidden_mse", lambda s, t, mask: torch.tensor(float("nan")))
    with pytest.raises(NonFiniteError, match="hidden_mse"):
        _run(task, {**BERT_S, "epochs": 1, "loss": TERMS}, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_hard_ce_on_gold_refuses_a_label_outside_labels_txt(task, tmp_path):
    from kdprobe.errors import InputError
    from kdprobe.io import write_parquet

    frame = pd.read_parquet(task["transfer"][0])
    frame.loc[3, "label"] = "neutral"
    write_parquet(tmp_path / "bad.parquet", frame)
    settings = {**BERT_S, "loss": [{"term": "hard_ce", "on": "gold"}]}
    with pytest.raises(InputError, match="row 3: label 'neutral'"):
        distil("bert_s", "sst2", settings, [tmp_path / "bad.parquet"], task["data"], task["teacher"],
               RunFiles.in_dir(tmp_path / "out"), None, "cpu")


def test_a_list_of_one_soft_ce_term_trains_as_the_string_form(task, tmp_path):
    settings = {**BERT_S, "epochs": 2}
    _run(task, {**settings, "loss": "soft_ce"}, tmp_path / "string")
    _run(task, {**settings, "loss": [{"term": "soft_ce"}]}, tmp_path / "list")
    string, listed = (pd.read_csv(tmp_path / d / "curve.csv") for d in ("string", "list"))
    assert listed["loss"].tolist() == string["loss"].tolist() == listed["loss_soft_ce"].tolist()
    a, b = (load_file(str(tmp_path / d / "model" / "model.safetensors")) for d in ("string", "list"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_soft_ce_term_is_the_string_forms_number():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    term = parse_terms({"temperature": 3, "loss": [{"term": "soft_ce"}]}, "students.bert_s", "bert_s")[0]
    assert torch.equal(term.weight * soft_cross_entropy(s, t, term.temperature_at(0, 10)),
                       soft_cross_entropy(s, t, 3.0))


def test_an_unquoted_on_key_in_yaml_is_read_as_on():
    """YAML 1.1 reads an unquoted `on` as True (`{term: hard_ce, on: gold}` -> `{'term': 'hard_ce', True: 'gold'}`):
    validation restores the key, in student sections, per-task overrides and ablation axes alike."""
    root = Path(__file__).resolve().parents[1]
    text = (root / "config" / "config.yaml").read_text() + """
ablations:
  hard:
    student: bert_s
    axis: {loss: {hard_only: [{term: hard_ce, on: teacher_argmax}]}}
"""
    config = yaml.safe_load(text)
    config["students"]["bert_s"]["loss"] = yaml.safe_load("[{term: soft_ce}, {term: hard_ce, weight: 0.1, on: gold}]")
    assert True in config["students"]["bert_s"]["loss"][1]
    kdconfig.validate(config, root / "workflow" / "schemas" / "config.schema.yaml")
    assert config["students"]["bert_s"]["loss"][1] == {"term": "hard_ce", "weight": 0.1, "on": "gold"}
    assert config["ablations"]["hard"]["axis"]["loss"]["hard_only"] == [{"term": "hard_ce", "on": "teacher_argmax"}]

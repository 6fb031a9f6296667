"""The random-encoder baselines (Zhang and Bowman 2018; kdprobe.random_models, kdprobe.distil.build_random_model):
each architecture with every weight random and its tokenizer, vocabulary and embedding setup kept, saved as the
trained model is and probed like it; `probe.random_baseline`; the workflow's jobs; how the reports name and draw
them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from kdprobe.config import probe_settings, random_baseline
from kdprobe.distil import build, build_random_model, distil, read_inputs
from kdprobe.probe import encoders
from kdprobe.random_models import build_random_teacher, reinitialise_student
from kdprobe.registry import MODEL_DISPLAY, RANDOM_MODELS
from kdprobe.report.figures import model_colour
from kdprobe.report.probing import model_depth, model_order, read_probe_tables
from kdprobe.students import load_student, reads_teacher_ids
from kdprobe.students.channels import teacher_word_embeddings
from kdprobe.students.embed import initial_table
from kdprobe.students.testing import SECTION, make_student_task
from kdprobe.training import RunFiles

from smk import copy_project, planned_jobs, snakemake

TRAINING = {"epochs": 1, "batch_size": 8, "lr": 1e-2, "optimizer": "adam", "loss": "mse", "mse_reduction": "sum",
            "temperature": 1.0, "schedule": "none", "warmup_epochs": 0, "clip_norm": 0, "betas": [0.9, 0.999]}
BERT_S = {**SECTION["bert_s"], **TRAINING, "layers": 2, "hidden": 8, "intermediate": 8, "heads": 2, "max_length": 24,
          "seed": 3}
LSTM_S = {**SECTION["lstm_s"], **TRAINING, "hidden": 6, "fc": 6, "max_length": 24, "seed": 5}
#: (kind, embeddings, embedding_mode): every source of initial vectors, each mode once per student
SETUPS = [("bert_s", "random", "non-static"), ("bert_s", "word2vec", "multichannel"), ("bert_s", "teacher", "static"),
          ("lstm_s", "random", "non-static"), ("lstm_s", "word2vec", "multichannel"), ("lstm_s", "teacher", "static")]
SENTENCES = ["a good movie", "the plot was really very dull and sad"]


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return make_student_task(tmp_path_factory.mktemp("random"), n_train=40, n_dev=12, n_test=6, n_augmented=20,
                             seed=2, augment_seed=9)


def _settings(task, kind, embeddings, mode, **extra):
    return {**(BERT_S if kind == "bert_s" else LSTM_S), "embeddings": embeddings, "embedding_mode": mode,
            "word2vec": str(task["w2v"]), **extra}


def _random(task, kind, settings, out):
    return build_random_model(kind, settings, task["transfer"], task["data"], task["teacher"], out,
                              word2vec=task["w2v"])


def _untrained(task, kind, settings):
    paths = [str(p) for p in task["transfer"]]
    data = read_inputs(paths, task["data"], need_ids=reads_teacher_ids(kind, settings))
    return build(kind, settings, data, task["teacher"], task["w2v"], settings["seed"], paths[0])[0]


def _tensors(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(str(directory / "model.safetensors"))


def _copied(model: dict[str, torch.Tensor], sources: list[torch.Tensor]) -> list[str]:
    """The tensors of `model` equal to any source tensor of the same shape."""
    return [name for name, t in model.items()
            if any(s.shape == t.shape and torch.equal(s.to(t.dtype), t) for s in sources)]


def _probe_every_layer(kind: str, directory: Path) -> encoders.LayerEncoder:
    encoder = encoders.load_encoder(kind, str(directory))
    layers = encoders.resolve_layers(encoder, "all")
    features = encoders.encode(encoder, SENTENCES, layers, ["mean"], batch_size=2)
    assert sorted(layer for layer, _ in features) == layers
    assert all(f.shape[0] == 2 and torch.isfinite(f).all() for f in features.values())
    return encoder


@pytest.mark.parametrize(("kind", "embeddings", "mode"), SETUPS)
def test_a_random_student_has_the_students_shapes_and_vocabulary_and_none_of_its_weights(task, tmp_path, kind,
                                                                                          embeddings, mode):
    settings = _settings(task, kind, embeddings, mode)
    distil(kind, "sst2", settings, task["transfer"], task["data"], task["teacher"], RunFiles.in_dir(tmp_path / "run"),
           None, "cpu", word2vec=task["w2v"])
    trained_dir, random_dir = tmp_path / "run" / "model", _random(task, kind, settings, tmp_path / "random")
    trained, rand = _tensors(trained_dir), _tensors(random_dir)
    assert {k: v.shape for k, v in rand.items()} == {k: v.shape for k, v in trained.items()}
    # student.json and the vocabulary or tokenizer files: the trained student's, byte for byte
    names = sorted(p.name for p in random_dir.iterdir())
    assert names == sorted(p.name for p in trained_dir.iterdir())
    for name in set(names) - {"model.safetensors"}:
        assert (random_dir / name).read_bytes() == (trained_dir / name).read_bytes(), name
    # nothing trained, loaded (word2vec, the teacher's wordpieces) or left from the untrained build
    # (an untrained tensor constant by design, LayerNorm's ones or a zero bias, is the architecture's, not copied)
    untrained = _untrained(task, kind, settings)
    sources = [*trained.values(), initial_table(untrained), teacher_word_embeddings(task["teacher"]),
               *(v for v in untrained.state_dict().values() if v.unique().numel() > 1)]
    assert _copied(rand, sources) == []
    # deterministic for the seed; another seed, other weights
    again = _tensors(_random(task, kind, settings, tmp_path / "again"))
    assert all(torch.equal(again[k], rand[k]) for k in rand)
    other = _tensors(_random(task, kind, {**settings, "seed": settings["seed"] + 1}, tmp_path / "other"))
    assert not any(torch.equal(other[k], rand[k]) for k in rand if rand[k].unique().numel() > 1)
    # probed like the trained student, at every layer
    assert _probe_every_layer(kind, random_dir).all_layers == encoders.load_encoder(kind, str(trained_dir)).all_layers
    assert model_depth(kind, random_dir) == model_depth(kind, trained_dir)


def test_random_tables_are_the_students_random_initialisation(task, tmp_path):
    """BERT_S's tables N(0, 0.02) (BERT's), LSTM_S's U[-0.25, 0.25]; the padding row 0; multichannel: one table."""
    bert = load_student(_random(task, "bert_s", _settings(task, "bert_s", "word2vec", "multichannel"), tmp_path / "b"))
    table = bert.bert.get_input_embeddings()
    assert torch.equal(table.static.weight, table.tuned.weight) and not table.static.weight.requires_grad
    assert abs(float(table.static.weight[1:].std()) - 0.02) < 0.004 and table.static.weight[bert.pad_id].eq(0).all()
    lstm = load_student(_random(task, "lstm_s", _settings(task, "lstm_s", "teacher", "multichannel"), tmp_path / "l"))
    weight = lstm.embed.static.weight
    assert torch.equal(weight, lstm.embed.tuned.weight) and weight.abs().max() <= 0.25 and weight.abs().max() > 0.2
    assert weight[lstm.pad_id].eq(0).all()
    assert lstm.embed.projection is not None  # the teacher's 16-d wordpieces projected to embedding_dim, as trained


class _Odd(nn.Module):
    """A module with a parameter of its own and no initialisation anyone knows."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(2))


@pytest.mark.parametrize("kind", ["bert_s", "lstm_s"])
def test_a_module_without_a_known_initialisation_is_refused(task, kind):
    student = _untrained(task, kind, _settings(task, kind, "random", "non-static"))
    student.extra = _Odd()
    with pytest.raises(TypeError, match="no initialisation for module 'extra'"):
        reinitialise_student(student, 0)


def _pretrained(task, out: Path) -> Path:
    """A stand-in for the pre-trained teacher: the tiny teacher with every tensor moved off its initialisation."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(str(task["teacher"]))
    generator = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.05)
    model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(task["teacher"])).save_pretrained(str(out))
    return out


def test_the_random_teacher_is_the_architecture_and_tokenizer_without_its_weights(task, tmp_path):
    from transformers import AutoTokenizer

    pretrained = _pretrained(task, tmp_path / "pretrained")
    out = build_random_teacher(pretrained, tmp_path / "random", seed=0)
    source, rand = _tensors(pretrained), _tensors(out)
    assert {k: v.shape for k, v in rand.items()} == {k: v.shape for k, v in source.items()}
    assert _copied(rand, list(source.values())) == []
    ours, theirs = AutoTokenizer.from_pretrained(str(out)), AutoTokenizer.from_pretrained(str(pretrained))
    assert ours.get_vocab() == theirs.get_vocab() and ours(SENTENCES)["input_ids"] == theirs(SENTENCES)["input_ids"]
    again = _tensors(build_random_teacher(pretrained, tmp_path / "again", seed=0))
    assert all(torch.equal(again[k], rand[k]) for k in rand)
    other = _tensors(build_random_teacher(pretrained, tmp_path / "other", seed=1))
    assert not torch.equal(other["bert.embeddings.word_embeddings.weight"], rand["bert.embeddings.word_embeddings.weight"])
    encoder = _probe_every_layer("teacher", out)
    assert encoder.all_layers == [0, 1] and model_depth("teacher", out) == 1


def test_random_baseline_setting_and_the_reports():
    assert random_baseline({"probe": {"random_baseline": ["sara"]}}, "sara")
    assert not random_baseline({"probe": {"random_baseline": ["sara"]}}, "cola")
    assert random_baseline({"probe": {"random_baseline": True}}, "cola")
    assert not random_baseline({"probe": {"random_baseline": False}}, "cola")
    config = {"probe": {"random_baseline": ["sara"], "layers": {"bert_s": "all"}, "pooling": {"bert_s": ["mean"]},
                        "tasks": ["sentence_length"], "data_dir": "x", "word_content_logreg": True, "lr": 0.001}}
    assert "random_baseline" not in probe_settings(config, "bert_s", "sentence_length")  # which tasks: no table
    assert RANDOM_MODELS == {"teacher_random": "teacher", "bert_s_random": "bert_s", "lstm_s_random": "lstm_s"}
    assert MODEL_DISPLAY["bert_s_random"] == "BERT_S (random)" and MODEL_DISPLAY["teacher_random"] == "teacher (random)"
    colours = {model_colour(m) for m in ("teacher", "bert_s", "lstm_s", *RANDOM_MODELS)}
    assert len(colours) == 6 and None not in colours
    assert model_order(["lstm_s_random", "bert_s", "teacher_random", "pretrained"]) == \
        ["pretrained", "bert_s", "teacher_random", "lstm_s_random"]


def test_the_random_teacher_keeps_its_name_in_the_pretrained_scope(tmp_path):
    rows = {"probe_task": "sentence_length", "layer": 1, "pooling": "mean", "classifier": "mlp", "test_acc": 0.5,
            "test_ci_low": 0.4, "test_ci_high": 0.6, "majority_acc": 0.2, "control_acc": float("nan"),
            "selectivity": float("nan"), "selectivity_ci_low": float("nan"), "selectivity_ci_high": float("nan"),
            "test_acc_by_seed": "0.5"}
    for model in ("teacher", "teacher_random"):
        pd.DataFrame([{"model": model, **rows}]).to_csv(tmp_path / f"{model}.csv", index=False)
    table = read_probe_tables([("pretrained", tmp_path / "teacher.csv", 2), ("pretrained", tmp_path / "teacher_random.csv", 2)])
    assert list(table["model"]) == ["pretrained", "teacher_random"]


@pytest.mark.workflow
def test_the_demo_plans_the_random_baselines(tmp_path):
    project = copy_project(tmp_path / "plan")
    jobs = planned_jobs(project, "--configfile", "config/demo.yaml")
    assert jobs["random_student"] == 2 and jobs["random_teacher"] == 1  # probe.random_baseline: [sara]
    proc = snakemake(project, "-n", "--configfile", "config/demo.yaml")
    text = proc.stdout + proc.stderr
    for path in ("results/probe/sara/bert_s_random.csv", "results/probe/sara/lstm_s_random.csv",
                 "results/probe/pretrained/teacher_random.csv", "results/random/sara/bert_s",
                 "results/random/teacher"):
        assert path in text, path
    assert "results/probe/cola/bert_s_random.csv" not in text

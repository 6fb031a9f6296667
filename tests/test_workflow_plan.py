"""Dry runs of the thesis configuration: what Snakemake plans, with no data or models present."""

from __future__ import annotations

import pytest
import yaml

from smk import copy_project, planned_jobs, snakemake

pytestmark = pytest.mark.workflow

PROBES = 10


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return copy_project(tmp_path_factory.mktemp("plan"))


def test_headline_target_plans_the_whole_sara_chain(project):
    jobs = planned_jobs(project, "results/probe/sara/bert_s.csv")
    assert jobs == {
        "fetch_sara": 1,
        "fetch_bert_large_uncased": 1,
        "fetch_gpt2_medium": 1,
        "fetch_probing": PROBES,
        "prepare_data": 1,
        "teacher": 1,
        "gpt2": 1,
        "sample": 4,  # 4 shards
        "logits": 5,  # train + 4 shards
        "distil": 1,
        "probe": PROBES,  # one job per SentEval task
        "merge_probes": 1,
    }


def test_default_target_plans_the_whole_study(project):
    jobs = planned_jobs(project)
    tasks, models = 3, 3
    assert jobs["prepare_data"] == tasks
    assert jobs["teacher"] == tasks and jobs["gpt2"] == tasks
    assert jobs["sample"] == 4 * tasks and jobs["logits"] == 5 * tasks
    assert jobs["distil"] == 2 * tasks
    assert jobs["predict"] == models * tasks
    # every task x model, plus the pre-trained teacher once
    assert jobs["probe"] == PROBES * (models * tasks + 1)
    assert jobs["merge_probes"] == models * tasks + 1
    assert jobs["fetch_word2vec"] == 1 and jobs["fetch_cola"] == 1 and jobs["fetch_sst2"] == 1


def test_shards_follow_the_config(project, tmp_path):
    override = tmp_path / "six.yaml"
    override.write_text(yaml.safe_dump({"augment": {"shards": 6}}))
    jobs = planned_jobs(project, "results/students/cola/lstm_s/metrics.json", "--configfile", str(override))
    assert jobs["sample"] == 6 and jobs["logits"] == 7


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"teacher": {"lrr": 1e-5}}, "teacher.lrr"),
        ({"teacher": {"batch_size": 0}}, "teacher.batch_size"),
        ({"augment": {"sentences": -5}}, "augment.sentences"),
        ({"students": {"bert_s": {"epochs": "many"}}}, "students.bert_s.epochs"),
        ({"tasks": {"mnli": {"data": {"format": "tsv", "train": "x.tsv"}}}}, "tasks"),
        ({"students": {"gru_s": {}}}, "students.gru_s"),
        ({"probe": {"tasks": ["sentence_length", "syntax_magic"]}}, "probe.tasks.1"),
    ],
)
def test_bad_config_is_refused_naming_the_key(project, tmp_path, override, key):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(override))
    proc = snakemake(project, "-n", "--configfile", str(path), check=False)
    assert proc.returncode != 0
    assert f"config key '{key}'" in proc.stdout + proc.stderr

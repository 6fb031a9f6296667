"""Dry runs of the thesis configuration: what Snakemake plans, with no data or models present."""

from __future__ import annotations

import math

import pytest
import yaml

from smk import ROOT, copy_project, planned_jobs, snakemake

pytestmark = pytest.mark.workflow

PROBES = 10


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return copy_project(tmp_path_factory.mktemp("plan"))


def test_headline_target_plans_the_whole_sara_chain(project):
    jobs = planned_jobs(project, "results/probe/sara/bert_s.csv")
    assert jobs == {
        "fetch_sara": 4,  # the thesis's split: train, dev, test and int_to_intent.tsv
        "fetch_bert_large_uncased": 1,
        "fetch_gpt2_medium": 1,
        "fetch_probing": PROBES,
        "prepare_data": 1,
        "teacher": 1,
        "gpt2": 1,
        "sample": 4,  # 4 shards
        "logits": 5,  # train + 4 shards
        "distil": 1,
        "probe": 1,  # one job per model: every SentEval task, the model loaded once
    }


def test_default_target_plans_the_whole_study(project):
    jobs = planned_jobs(project)
    tasks, models = 3, 3
    assert jobs["prepare_data"] == tasks
    assert jobs["teacher"] == tasks and jobs["gpt2"] == tasks
    assert jobs["sample"] == 4 * tasks and jobs["logits"] == 5 * tasks
    assert jobs["distil"] == 2 * tasks
    assert jobs["predict"] == models * tasks
    # every task x model, each student's embed. baseline (probe.embed_baseline) and random baseline
    # (probe.random_baseline), the pre-trained teacher and the random teacher once
    assert jobs["probe"] == (models + 2 + 2) * tasks + 2 and jobs["embed_model"] == 2 * tasks
    assert jobs["random_student"] == 2 * tasks and jobs["random_teacher"] == 1
    assert jobs["fetch_word2vec"] == 1 and jobs["fetch_cola"] == 1 and jobs["fetch_sst2"] == 1


def test_shards_follow_the_config(project, tmp_path):
    override = tmp_path / "six.yaml"
    override.write_text(yaml.safe_dump({"augment": {"shards": 6}}))
    jobs = planned_jobs(project, "results/students/cola/lstm_s/metrics.json", "--configfile", str(override))
    assert jobs["sample"] == 6 and jobs["logits"] == 7


def test_seeds_and_a_thesis_sweep_plan_one_job_per_run(project, tmp_path):
    """Three seeds of the teacher on Sara (probed too) and the thesis' BERT_S learning-rate grid on CoLA: one job per
    extra seed and per grid point, below the models' own directories; the headline target is unchanged."""
    override = tmp_path / "runs.yaml"
    override.write_text(yaml.safe_dump({
        "tasks": {"sara": {"seeds": {"teacher": 3, "probe": True}}},
        "sweeps": {"bert_s_lr": {"enabled": True, "tasks": ["cola"]}}}))
    jobs = planned_jobs(project, "--configfile", str(override))
    assert jobs["teacher_variant"] == 2 and jobs["distil_variant"] == 7 and jobs["sweep_summary"] == 1
    assert jobs["predict_variant"] == jobs["predict_test_variant"] == 2
    assert jobs["probe_variant"] == 2
    proc = snakemake(project, "-n", "results/sweeps/cola/bert_s_lr.csv", "results/summary/seeds/sara.csv",
                     "--configfile", str(override))
    text = proc.stdout + proc.stderr
    assert "results/students/cola/bert_s/sweeps/bert_s_lr/lr=5e-06/model" in text
    assert "results/teacher/sara/seed44/model" in text and "results/teacher/sara/seed45" not in text
    assert planned_jobs(project, "results/probe/sara/bert_s.csv", "--configfile", str(override))["distil"] == 1


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
        ({"seeds": {"bert_s": 0}}, "seeds.bert_s"),
        ({"sweeps": {"x": {"student": "lstm_s", "grid": {"hiden": [1, 2]}}}}, "sweeps.x.grid.hiden"),
    ],
)
def test_bad_config_is_refused_naming_the_key(project, tmp_path, override, key):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(override))
    proc = snakemake(project, "-n", "--configfile", str(path), check=False)
    assert proc.returncode != 0
    assert f"config key '{key}'" in proc.stdout + proc.stderr


def test_the_demo_fetches_nothing_and_carves_its_own_sara(project):
    """config/demo.yaml's Sara is its generated markdown: `dev: null` and `test: null` unset the thesis split's
    files (else the demo would read, and fetch, the thesis's dev and test), and split carves them instead."""
    jobs = planned_jobs(project, "--configfile", "config/demo.yaml")
    assert not [rule for rule in jobs if rule.startswith("fetch_")], jobs
    assert jobs["score_sentences"] == 1 and jobs["analyse_predictions"] == 3  # the thesis's perturbed CoLA


def test_the_thesis_final_overlay_plans_the_tuned_students_and_chapter_5(project):
    """config/thesis-final.yaml over the thesis config: the study with its tuned students, and chapter 5's
    exploration as 149 extra student runs (CoLA 94, SST-2 35, Sara 20) summarised by 19 sweep tables."""
    jobs = planned_jobs(project, "--configfile", "config/config.yaml", "config/thesis-final.yaml")
    assert jobs["distil"] == 6 and jobs["distil_variant"] == 149
    assert jobs["sweep_summary"] == 19 and "predict_variant" not in jobs  # sweeps are read from metrics.json
    assert jobs["teacher"] == 3 and jobs["probe"] == 23  # 16 and the random baselines: 2 per task, the teacher


def test_each_student_reads_the_transfer_set_its_settings_name(project, tmp_path):
    """students.<student>.transfer picks the parts: BERT_S on the d-lite variants (rule generate, their logits),
    LSTM_S on the training set only; a sweep over `transfer` gets each point's parts; only the kinds used are built
    (no GPT-2 here), and the transfer summary reads each kind's shards."""
    override = tmp_path / "kinds.yaml"
    override.write_text(yaml.safe_dump({
        "students": {"bert_s": {"transfer": "rules"}, "lstm_s": {"transfer": {"kind": "none", "fraction": 0.5}}},
        "sweeps": {"kinds": {"student": "lstm_s", "tasks": ["cola"], "grid": {"transfer": ["random_words"]}}}}))
    targets = ["results/students/cola/bert_s/metrics.json", "results/students/cola/lstm_s/metrics.json",
               "results/sweeps/cola/kinds.csv", "results/summary/transfer/cola.csv"]
    jobs = planned_jobs(project, *targets, "--configfile", str(override))
    assert "gpt2" not in jobs and "sample" not in jobs
    assert jobs["generate"] == 8 and jobs["logits"] == 9  # 4 rules + 4 random_words shards; + train
    assert jobs["distil"] == 2 and jobs["distil_variant"] == 1 and jobs["transfer_summary"] == 1
    proc = snakemake(project, "-n", "-p", *targets, "--configfile", str(override))
    inputs = {}
    for block in (proc.stdout + proc.stderr).split("\nrule ")[1:]:
        lines = dict(line.strip().split(": ", 1) for line in block.splitlines()[1:] if ": " in line)
        if block.startswith(("distil:", "distil_variant:")):
            inputs[lines["output"].split(",")[0]] = lines["input"]
    bert = inputs["results/students/cola/bert_s/model"]
    assert "results/transfer/cola/rules/shard3.parquet" in bert and "results/transfer/cola/shard0" not in bert
    lstm = inputs["results/students/cola/lstm_s/model"]
    assert "results/transfer/cola/train.parquet" in lstm and "shard" not in lstm
    point = inputs["results/students/cola/lstm_s/sweeps/kinds/transfer=random_words/model"]
    assert "results/transfer/cola/random_words/shard0.parquet" in point and "rules" not in point
    # GPT-2 comes back with a run that uses it
    assert planned_jobs(project, "results/students/cola/bert_s/metrics.json")["sample"] == 4


ABLATIONS_YAML = yaml.safe_load((ROOT / "config" / "ablations.yaml").read_text())


def test_the_ablations_config_plans_every_point(project, tmp_path):
    """config/ablations.yaml over the thesis config: every point x seed of every ablation on every task is one
    distil_variant job, scored on dev (predict_variant), probed where `probe: true`, and summarised per task."""
    landed = ABLATIONS_YAML
    assert set(landed["ablations"]) == {"init", "embeddings", "loss", "transfer", "transfer_lstm", "temperature"}
    override = tmp_path / "ablations.yaml"
    override.write_text(yaml.safe_dump(landed))
    tasks = 3
    runs = {name: math.prod(len(v) for v in a["axis"].values()) * a["seeds"] * tasks
            for name, a in landed["ablations"].items()}
    probed = sum(runs[name] for name, a in landed["ablations"].items() if a.get("probe"))
    jobs = planned_jobs(project, "--configfile", str(override))
    # per task: init 2 x 3 seeds, embeddings 2 x 3, loss 2 x 3, transfer 6 x 3, transfer_lstm 4 x 3, temperature 3 x 3
    assert jobs["distil_variant"] == jobs["predict_variant"] == sum(runs.values()) == (6 + 6 + 6 + 18 + 12 + 9) * 3
    assert jobs["probe_variant"] == probed == (6 + 6 + 6) * 3 and "predict_test_variant" not in jobs
    assert jobs["ablation_summary"] == len(landed["ablations"]) * tasks
    assert jobs["ablation_probe_summary"] == 3 * tasks and jobs["distil"] == 2 * tasks
    # the rules and random-words transfer sets each ablation point on them reads: 4 shards each, their logits
    assert jobs["generate"] == 2 * 4 * tasks and jobs["logits"] == (1 + 4 + 8) * tasks
    text = "\n".join(snakemake(project, "-n", "results/ablations/cola/init.csv", "--configfile", str(override)).stdout
                     .splitlines())
    for point in ("init=scratch", "init=teacher"):
        for seed in (42, 43, 44):
            assert f"results/students/cola/bert_s/ablations/init/{point}/seed{seed}/model" in text

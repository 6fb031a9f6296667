"""Dry runs of the thesis configuration: what Snakemake plans, with no data or models present."""

from __future__ import annotations

import copy
import math

import pytest
import yaml

from kdprobe.config import deep_merge, validate
from kdprobe.errors import ConfigError
from kdprobe.variants import check_variants
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


#: PENDING-MERGE (issue 20; the lead removes these entries after merging the branches named): axes of
#: config/ablations.yaml whose values the schema accepts only once another branch lands: `loss` as a list of terms
#: (wt-loss), `transfer` (wt-transfer). Until then the thesis dry run below leaves these axes out (an ablation with
#: no other axis is left out whole); test_pending_ablation_axes_are_still_refused fails once an axis is accepted,
#: to say that its entry is to go.
PENDING_AXES = {"loss": "wt-loss", "transfer": "wt-transfer"}
ABLATIONS_YAML = yaml.safe_load((ROOT / "config" / "ablations.yaml").read_text())


def _landed_ablations() -> dict:
    """config/ablations.yaml without the axes of `PENDING_AXES`."""
    out = copy.deepcopy(ABLATIONS_YAML)
    for name, ablation in list(out["ablations"].items()):
        ablation["axis"] = {k: v for k, v in ablation["axis"].items() if k not in PENDING_AXES}
        if not ablation["axis"]:
            del out["ablations"][name]
    return out


def test_pending_ablation_axes_are_still_refused():
    thesis = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    schema = ROOT / "workflow" / "schemas" / "config.schema.yaml"
    for name, ablation in ABLATIONS_YAML["ablations"].items():
        for axis in set(ablation["axis"]) & set(PENDING_AXES):
            cfg = deep_merge(copy.deepcopy(thesis), {"ablations": {name: {**ablation, "axis": {
                axis: ablation["axis"][axis]}}}})
            with pytest.raises(ConfigError) as err:
                validate(cfg, schema)
                check_variants(cfg, schema)
            assert err.value.key.startswith(f"ablations.{name}") and axis in str(err.value), (
                f"{name}.axis.{axis} is accepted now: remove {axis!r} from PENDING_AXES ({PENDING_AXES[axis]} landed)")


def test_the_ablations_config_plans_every_point(project, tmp_path):
    """config/ablations.yaml over the thesis config: every point x seed of every ablation on every task is one
    distil_variant job, scored on dev (predict_variant), probed where `probe: true`, and summarised per task."""
    landed = _landed_ablations()
    assert set(landed["ablations"]) >= {"init", "embeddings", "temperature"}
    override = tmp_path / "ablations.yaml"
    override.write_text(yaml.safe_dump(landed))
    tasks = 3
    runs = {name: math.prod(len(v) for v in a["axis"].values()) * a["seeds"] * tasks
            for name, a in landed["ablations"].items()}
    probed = sum(runs[name] for name, a in landed["ablations"].items() if a.get("probe"))
    jobs = planned_jobs(project, "--configfile", str(override))
    assert jobs["distil_variant"] == jobs["predict_variant"] == sum(runs.values()) == 2 * 9 * 2 + 27
    assert jobs["probe_variant"] == probed == 36 and "predict_test_variant" not in jobs
    assert jobs["ablation_summary"] == len(landed["ablations"]) * tasks
    assert jobs["ablation_probe_summary"] == 2 * tasks and jobs["distil"] == 2 * tasks
    text = "\n".join(snakemake(project, "-n", "results/ablations/cola/init.csv", "--configfile", str(override)).stdout
                     .splitlines())
    for point in ("init=scratch", "init=teacher"):
        for seed in (42, 43, 44):
            assert f"results/students/cola/bert_s/ablations/init/{point}/seed{seed}/model" in text

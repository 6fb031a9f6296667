"""Invalidation precision: one config edit (or one script edit) plans exactly the jobs it touches.

Each case dry-runs the completed demo with an override file and Snakemake's default rerun triggers.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
import yaml

from smk import planned_jobs

pytestmark = pytest.mark.workflow

#: What any finished job changes at the end of the study: the study-wide summary, the cost table that reads
#: every job's benchmark file, and the comparison with the reference that reads both.
STUDY = {"summary_study": 1, "summary_cost": 1, "summary_reproduction": 1}


def add(*parts: dict[str, int]) -> dict[str, int]:
    """Job counts of several parts of a plan, summed per rule."""
    return dict(sum((Counter(part) for part in parts), Counter()))


def seeds_of(students: int) -> dict[str, int]:
    """The extra seed of `students` students (config/demo.yaml: both students twice on Sara): trained and scored."""
    return {"distil_variant": students, "predict_variant": students, "predict_test_variant": students}


#: The demo's sweep: two learning rates of LSTM_S on CoLA, and its summary.
SWEEP = {"distil_variant": 2, "sweep_summary": 1}
#: The demo's ablation: BERT_S on CoLA, 4 points x 2 seeds, each trained and scored on dev, and its summary.
ABLATION = {"distil_variant": 8, "predict_variant": 8, "ablation_summary": 1}
#: Its points on the GPT-2 transfer set (transfer=gpt2; the others read the training set alone): 2 points x 2 seeds.
ABLATION_GPT2 = {"distil_variant": 4, "predict_variant": 4, "ablation_summary": 1}
#: CoLA's models score the thesis's perturbed sentences (analysis.score_sentences.cola): redone when one changes.
SCORED = {"score_sentences": 1}


def embeds_of(students: int) -> dict[str, int]:
    """The embed. and random baselines (config/demo.yaml: Sara's students) of `students` students whose inputs
    changed (the transfer set, the teacher or their embedding settings): rebuilt and probed again."""
    return {"embed_model": students, "random_student": students, "probe": 2 * students}


def plots_of(tasks: int) -> dict[str, int]:
    """What changed probes of `tasks` downstream tasks redo: their probing plots (accuracy, selectivity, online
    code), the overview and the cost table."""
    return {"plot_probing": tasks, "plot_probing_selectivity": tasks, "plot_probing_mdl": tasks,
            "plot_probing_overview": 1, "summary_cost": 1}


def downstream_of_students(n_students: int, tasks: int = 1) -> dict[str, int]:
    """A student's dev and test predictions, speed and probing job, for `n_students` (task, student) pairs over
    `tasks` downstream tasks; then those tasks' analysis, curves, plots and summaries."""
    return {"distil": n_students, "predict": n_students, "predict_test": n_students, "speed": n_students,
            "probe": n_students, "analyse_predictions": tasks,
            "plot_student_curves": tasks, "summary_task": tasks, **plots_of(tasks), **STUDY}


def downstream_of_teacher(tasks: int) -> dict[str, int]:
    """A teacher's logits (train + 2 shards), both students and all three models' predictions, speed and probes."""
    return {**downstream_of_students(2 * tasks, tasks), "teacher": tasks, "logits": 3 * tasks,
            "predict": 3 * tasks, "predict_test": 3 * tasks, "speed": 3 * tasks, "probe": 3 * tasks,
            "plot_teacher_curve": tasks}


CASES = {
    "bert_s learning rate of one task": (
        {"tasks": {"sara": {"students": {"bert_s": {"lr": 2.0e-3}}}}},
        add(downstream_of_students(1), seeds_of(1)),
    ),
    "bert_s loss as weighted terms on one task (that student only, as any student setting)": (
        {"tasks": {"sara": {"students": {"bert_s": {"loss": [{"term": "soft_ce", "weight": 0.5},
                                                             {"term": "hard_ce", "weight": 0.1}]}}}}},
        add(downstream_of_students(1), seeds_of(1)),
    ),
    "augmentation sentences of one task": (
        {"tasks": {"cola": {"augment": {"sentences": 200}}}},
        add({"sample": 2, "logits": 2, "transfer_summary": 1}, downstream_of_students(2), SWEEP, ABLATION_GPT2,
            SCORED),
    ),
    "number of shards": (
        {"tasks": {"sst2": {"augment": {"shards": 3}}}},
        {"sample": 3, "logits": 3, "transfer_summary": 1, **downstream_of_students(2)},
    ),
    "probe hidden sizes (every model's probing job; inside, not WordContent's saved table)": (
        {"probe": {"grid": {"hidden": [100]}}},
        {"probe": 15, **plots_of(3)},  # 3 x 3 models, the pre-trained and random teachers, Sara's 4 baselines
    ),
    "probe weight decays (every model's probing job)": (
        {"probe": {"grid": {"weight_decay": [1.0e-3]}}},
        {"probe": 15, **plots_of(3)},  # 3 x 3 models, the pre-trained and random teachers, Sara's 4 baselines
    ),
    "WordContent's logistic regression (every model's probing job; inside, WordContent only)": (
        {"probe": {"word_content_logreg": False}},
        {"probe": 15, **plots_of(3)},  # 3 x 3 models, the pre-trained and random teachers, Sara's 4 baselines
    ),
    "teacher learning rate (all tasks, not GPT-2, not the pre-trained probe)": (
        {"teacher": {"lr": 7.0e-4}},
        add(downstream_of_teacher(3), seeds_of(2), SWEEP, ABLATION, embeds_of(2), SCORED),
    ),
    "teacher epochs of one task": (
        {"tasks": {"sara": {"teacher": {"epochs": 11}}}},
        add(downstream_of_teacher(1), seeds_of(2), embeds_of(2)),
    ),
    "GPT-2 learning rate (not the teacher)": (
        {"gpt2": {"lr": 5.0e-4}},
        add({"gpt2": 3, "sample": 6, "logits": 6, "plot_gpt2_curve": 3, "transfer_summary": 3},
            downstream_of_students(6, 3), seeds_of(2),
            SWEEP, ABLATION_GPT2, embeds_of(2), SCORED),
    ),
    "LSTM_S embedding mode": (
        {"students": {"lstm_s": {"embedding_mode": "static"}}},
        add(downstream_of_students(3, 3), seeds_of(1), SWEEP, embeds_of(1), SCORED),
    ),
    "teacher probe layers (teacher probes only: the fine-tuned ones and the random one)": (
        {"probe": {"layers": {"teacher": [2, 4]}}},
        {"probe": 4, **plots_of(3)},
    ),
    "probe seeds (every model's probing job, every plot of them)": (
        {"probe": {"seeds": 3}},
        {"probe": 15, **plots_of(3)},
    ),
    "demo BERT pre-training (not the data, GPT-2 or word2vec)": (
        {"demo": {"bert": {"pretrain_steps": 900}}},
        add({"demo_bert": 1}, downstream_of_teacher(3), seeds_of(2), SWEEP, ABLATION,
            {"probe": 2, "random_teacher": 1}, embeds_of(2), SCORED),
    ),
    "demo word2vec (LSTM_S only)": (
        {"demo": {"word2vec": {"epochs": 5}}},
        add({"demo_word2vec": 1}, downstream_of_students(3, 3), seeds_of(1), SWEEP, embeds_of(1), SCORED),
    ),
    "logits batch size of one task": (
        {"tasks": {"cola": {"logits": {"batch_size": 32}}}},
        add({"logits": 3}, downstream_of_students(2), SWEEP, ABLATION, SCORED),
    ),
    "prediction analysis (analysis only)": (
        {"analysis": {"top_k": 3}},
        {"analyse_predictions": 3},
    ),
    "reproduction tolerance (the comparison only, not the speed jobs that read summary:)": (
        {"summary": {"reproduction": {"tolerance": {"score": 5.0}}}},
        {"summary_reproduction": 1},
    ),
    "latency repeats (speed and summaries only)": (
        {"summary": {"latency_repeats": 7}},
        {"speed": 9, "summary_task": 3, **STUDY},
    ),
    "one more seed of one student on one task (only that seed, and what reports seeds)": (
        {"tasks": {"sara": {"seeds": {"lstm_s": 3}}}},
        add(seeds_of(1), {"summary_task": 1, "plot_student_curves": 1}, STUDY),
    ),
    "one seed fewer (nothing trains; the tables and curves drop it)": (
        {"tasks": {"sara": {"seeds": {"bert_s": 1}}}},
        {"summary_task": 1, "plot_student_curves": 1, **STUDY},
    ),
    "extra seeds probed (their probes and the task's probing plot)": (
        {"seeds": {"probe": True}},
        {"probe_variant": 2, "plot_probing": 1, "summary_cost": 1},
    ),
    "one value of a sweep's grid (only that point)": (
        {"sweeps": {"lstm_s_lr_demo": {"grid": {"lr": [3.0e-3, 1.0e-1]}}}},
        {"distil_variant": 1, "sweep_summary": 1, "summary_cost": 1},
    ),
    "a sweep's shared settings (every point of that sweep, no other job)": (
        {"sweeps": {"lstm_s_lr_demo": {"settings": {"epochs": 5}}}},
        {**SWEEP, "summary_cost": 1},
    ),
    "one label's value of an ablation axis (only the 2 points x 2 seeds that carry it, and the summary)": (
        {"ablations": {"init_demo": {"axis": {"init": {"teacher": {"every": 1}}}}}},
        {"distil_variant": 4, "predict_variant": 4, "ablation_summary": 1, "summary_cost": 1},
    ),
    "one more seed of an ablation (each point's new seed only)": (
        {"ablations": {"init_demo": {"seeds": 3}}},
        {"distil_variant": 4, "predict_variant": 4, "ablation_summary": 1, "summary_cost": 1},
    ),
    "one loss term's weight (every point of the ablation whose settings carry it, nothing else)": (
        {"ablations": {"init_demo": {"settings": {"loss": [
            {"term": "soft_ce", "temperature": 3}, {"term": "hard_ce", "weight": 0.1, "on": "gold"},
            {"term": "hidden_mse", "weight": 0.2, "map": {2: 4}},  # 0.1 in config/demo.yaml
            {"term": "attention_mse", "weight": 0.1, "map": {2: 4}}]}}}},
        {**ABLATION, "summary_cost": 1},
    ),
    "an ablation's reference point (its summary only)": (
        {"ablations": {"init_demo": {"reference": {"init": "teacher"}}}},
        {"ablation_summary": 1},
    ),
    "the ablations' bootstrap (their summaries only)": (
        {"summary": {"ablation_bootstrap": {"samples": 500}}},
        {"ablation_summary": 1},
    ),
    "TensorBoard event files (no output changes: nothing reruns)": (
        {"tensorboard": True},
        {},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_one_config_edit_reruns_exactly_what_it_touches(demo, tmp_path, case):
    override, expected = CASES[case]
    path = tmp_path / "edit.yaml"
    path.write_text(yaml.safe_dump(override))
    assert planned_jobs(demo, "--configfile", "config/demo.yaml", str(path)) == expected


def test_editing_one_script_reruns_only_its_rule(demo):
    script = demo / "workflow/scripts/predict.py"
    original, stat = script.read_text(), script.stat()
    try:
        script.write_text(original + "\n# an edit\n")
        assert planned_jobs(demo, "--configfile", "config/demo.yaml") == {
            "predict": 9, "predict_test": 9, "predict_variant": 2 + 8, "predict_test_variant": 2,
            "analyse_predictions": 3, "summary_task": 3, "ablation_summary": 1, **STUDY}
    finally:
        script.write_text(original)
        os.utime(script, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert planned_jobs(demo, "--configfile", "config/demo.yaml") == {}

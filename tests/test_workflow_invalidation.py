"""Invalidation precision: one config edit (or one script edit) plans exactly the jobs it touches.

Each case dry-runs the completed demo with an override file and Snakemake's default rerun triggers.
"""

from __future__ import annotations

import os

import pytest
import yaml

from smk import planned_jobs

pytestmark = pytest.mark.workflow

PROBES = 10
#: What any finished job changes at the end of the study: the study-wide summary, and the cost table that reads
#: every job's benchmark file.
STUDY = {"summary_study": 1, "summary_cost": 1}


def plots_of(tasks: int) -> dict[str, int]:
    """What changed probes of `tasks` downstream tasks redo: their probing plots, the overview and the cost table."""
    return {"plot_probing": tasks, "plot_probing_overview": 1, "summary_cost": 1}


def downstream_of_students(n_students: int, tasks: int = 1) -> dict[str, int]:
    """A student's dev and test predictions, speed, 10 probes and their merge, for `n_students` (task, student)
    pairs over `tasks` downstream tasks; then those tasks' analysis, curves, plots and summaries."""
    return {"distil": n_students, "predict": n_students, "predict_test": n_students, "speed": n_students,
            "probe": PROBES * n_students, "merge_probes": n_students, "analyse_predictions": tasks,
            "plot_student_curves": tasks, "summary_task": tasks, **plots_of(tasks), **STUDY}


def downstream_of_teacher(tasks: int) -> dict[str, int]:
    """A teacher's logits (train + 2 shards), both students and all three models' predictions, speed and probes."""
    return {**downstream_of_students(2 * tasks, tasks), "teacher": tasks, "logits": 3 * tasks,
            "predict": 3 * tasks, "predict_test": 3 * tasks, "speed": 3 * tasks, "probe": PROBES * 3 * tasks,
            "merge_probes": 3 * tasks, "plot_teacher_curve": tasks}


CASES = {
    "bert_s learning rate of one task": (
        {"tasks": {"sara": {"students": {"bert_s": {"lr": 2.0e-3}}}}},
        downstream_of_students(1),
    ),
    "augmentation sentences of one task": (
        {"tasks": {"cola": {"augment": {"sentences": 200}}}},
        {"sample": 2, "logits": 2, **downstream_of_students(2)},
    ),
    "number of shards": (
        {"tasks": {"sst2": {"augment": {"shards": 3}}}},
        {"sample": 3, "logits": 3, **downstream_of_students(2)},
    ),
    "probe hidden sizes (not WordContent, probed by logistic regression)": (
        {"probe": {"grid": {"hidden": [100]}}},
        {"probe": (PROBES - 1) * 10, "merge_probes": 10, **plots_of(3)},
    ),
    "probe weight decays (every probe)": (
        {"probe": {"grid": {"weight_decay": [1.0e-3]}}},
        {"probe": PROBES * 10, "merge_probes": 10, **plots_of(3)},
    ),
    "WordContent's logistic regression (WordContent probes only)": (
        {"probe": {"word_content_logreg": False}},
        {"probe": 10, "merge_probes": 10, **plots_of(3)},
    ),
    "teacher learning rate (all tasks, not GPT-2, not the pre-trained probe)": (
        {"teacher": {"lr": 7.0e-4}},
        downstream_of_teacher(3),
    ),
    "teacher epochs of one task": (
        {"tasks": {"sara": {"teacher": {"epochs": 11}}}},
        downstream_of_teacher(1),
    ),
    "GPT-2 learning rate (not the teacher)": (
        {"gpt2": {"lr": 5.0e-4}},
        {"gpt2": 3, "sample": 6, "logits": 6, "plot_gpt2_curve": 3, **downstream_of_students(6, 3)},
    ),
    "LSTM_S embedding mode": (
        {"students": {"lstm_s": {"embedding_mode": "static"}}},
        downstream_of_students(3, 3),
    ),
    "teacher probe layers (teacher probes only)": (
        {"probe": {"layers": {"teacher": [2, 4]}}},
        {"probe": PROBES * 3, "merge_probes": 3, **plots_of(3)},
    ),
    "demo BERT pre-training (not the data, GPT-2 or word2vec)": (
        {"demo": {"bert": {"pretrain_steps": 900}}},
        {"demo_bert": 1, **downstream_of_teacher(3), "probe": PROBES * (3 * 3 + 1), "merge_probes": 3 * 3 + 1},
    ),
    "demo word2vec (LSTM_S only)": (
        {"demo": {"word2vec": {"epochs": 5}}},
        {"demo_word2vec": 1, **downstream_of_students(3, 3)},
    ),
    "logits batch size of one task": (
        {"tasks": {"cola": {"logits": {"batch_size": 32}}}},
        {"logits": 3, **downstream_of_students(2)},
    ),
    "prediction analysis (analysis only)": (
        {"analysis": {"top_k": 3}},
        {"analyse_predictions": 3},
    ),
    "latency repeats (speed and summaries only)": (
        {"summary": {"latency_repeats": 7}},
        {"speed": 9, "summary_task": 3, **STUDY},
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
            "predict": 9, "predict_test": 9, "analyse_predictions": 3, "summary_task": 3, **STUDY}
    finally:
        script.write_text(original)
        os.utime(script, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert planned_jobs(demo, "--configfile", "config/demo.yaml") == {}

"""Declared ablations (config `ablations`; kdprobe.variants, kdprobe.report.ablations): the expansion into one run
per point and seed, their names and settings, the reference point, the refusals naming the key, the paired
bootstrap over dev examples, the table, the probing deltas and the plot, on hand-made files."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kdprobe.config import validate
from kdprobe.errors import ConfigError, InputError
from kdprobe.report.ablations import (AblationRun, Bootstrap, ProbedRun, ablation_table, paired_bootstrap,
                                      probe_deltas, write_ablation_summary)
from kdprobe.variants import (ablation_variants, all_variants, check_variants, enabled_ablations, find_variant,
                              reference_point, variant_names)
from test_variants import DEMO, SCHEMA, config  # the thesis and demo configs, one reading for both files


def test_the_demo_ablation_expands_into_one_run_per_point_and_seed():
    validate(DEMO, SCHEMA)
    check_variants(DEMO, SCHEMA)
    assert set(enabled_ablations(DEMO, "cola")) == {"init_demo"} and not enabled_ablations(DEMO, "sara")
    runs = ablation_variants(DEMO, "cola", "init_demo")
    points = ["init=teacher,transfer=gpt2", "init=teacher,transfer=none", "init=scratch,transfer=gpt2",
              "init=scratch,transfer=none"]  # the first axis varies slowest; each point's seeds together
    assert [v.name for v in runs] == [f"ablations/init_demo/{p}/seed{s}" for p in points for s in (42, 43)]
    first = runs[0]
    assert first.model == "bert_s" and first.ablation == "init_demo" and first.sweep is None
    assert first.values == {"init": "teacher", "transfer": "gpt2", "seed": 42}
    assert first.settings["init"] == {"from": "teacher", "every": 2} and first.settings["transfer"] == "gpt2"
    assert [t["term"] for t in first.settings["loss"]] == ["soft_ce", "hard_ce", "hidden_mse", "attention_mse"]
    assert first.settings["loss"][1]["on"] == "gold"
    assert first.settings["heads"] == 4 and first.settings["seed"] == 42  # the ablation's settings, the seed
    assert runs[-1].settings["init"] == {"from": "random"} and runs[-1].settings["seed"] == 43
    assert all(v.settings["hidden"] == DEMO["students"]["bert_s"]["hidden"] for v in runs)
    assert [v.name for v in all_variants(DEMO, "cola") if v.ablation] == [v.name for v in runs]
    assert set(v.name for v in runs) <= set(variant_names(DEMO))
    assert find_variant(DEMO, "cola", "bert_s", runs[3].name).settings == runs[3].settings
    assert reference_point(DEMO["ablations"]["init_demo"], "init_demo") == {"init": "scratch", "transfer": "gpt2"}


def test_list_values_are_labelled_as_sweep_values_and_the_reference_defaults_to_the_first_labels():
    cfg = config(ablations={"t": {"student": "lstm_s", "tasks": ["sara"], "seeds": 3,
                                  "settings": {"seed": 7, "optimizer": "adam"},
                                  "axis": {"lr": [1.0e-3, 5.0e-4], "embedding_mode": ["static", "multichannel"]}}})
    validate(cfg, SCHEMA)
    check_variants(cfg, SCHEMA)
    runs = ablation_variants(cfg, "sara", "t")
    assert runs[0].name == "ablations/t/lr=0.001,embedding_mode=static/seed7"
    assert [v.values["seed"] for v in runs[:3]] == [7, 8, 9] and len(runs) == 2 * 2 * 3
    assert runs[0].settings["optimizer"] == "adam" and runs[-1].settings["lr"] == 5.0e-4
    assert reference_point(cfg["ablations"]["t"], "t") == {"lr": "0.001", "embedding_mode": "static"}
    assert reference_point({"axis": {"lr": [1.0e-3, 5.0e-4]}, "reference": {"lr": 5.0e-4}}, "t") == {"lr": "0.0005"}
    off = config(ablations={"t": cfg["ablations"]["t"] | {"enabled": False}})
    assert not any(v.ablation for v in all_variants(off, "sara"))


@pytest.mark.parametrize("ablation, key, message", [
    ({"student": "bert_s", "axis": {"init": [{"from": "random"}]}}, "ablations.a.axis.init.0", "needs a label"),
    ({"student": "bert_s", "axis": {"betas": [[0.9, 0.98]]}}, "ablations.a.axis.betas.0", "{label: value"),
    ({"student": "bert_s", "axis": {"rate": [1.0]}}, "ablations.a.axis.rate", "not a setting of students.bert_s"),
    ({"student": "bert_s", "axis": {"seed": [1, 2]}}, "ablations.a.axis.seed", "not an axis"),
    ({"student": "bert_s", "axis": {"lr": [1, "1"]}}, "ablations.a.axis.lr", "its own label"),
    ({"student": "bert_s", "axis": {"lr": [1.0]}, "settings": {"rho2": 1}}, "ablations.a.settings.rho2",
     "not a setting"),
    ({"student": "bert_s", "axis": {"lr": [1.0]}, "reference": {"temperature": 3}}, "ablations.a.reference.temperature",
     "not an axis"),
    ({"student": "bert_s", "axis": {"lr": [1.0, 2.0]}, "reference": {"lr": 3.0}}, "ablations.a.reference.lr",
     "unknown label 3.0"),
    ({"student": "bert_s", "axis": {"temperature": [3, -1]}}, "ablations.a",
     "point ablations/a/temperature=-1/seed42 on cola: students.bert_s.temperature"),
    ({"student": "bert_s", "axis": {"init": {"t": {"from": "teacher", "every": 2, "layers": [0, 2]}}}},
     "students.bert_s.init", "point ablations/a/init=t/seed42 on cola: with `from: teacher`, give `layers`"),
    ({"student": "bert_s", "axis": {"init": {"t": {"from": "teacher", "layers": [0, 2]}}}},
     "students.bert_s.init.layers", "point ablations/a/init=t/seed42 on cola: "),
    ({"student": "bert_s", "axis": {"lr": [1.0]}, "tasks": ["mnli"]}, "ablations.a.tasks.0", "'mnli' is not one of"),
    ({"student": "bert_s", "axis": {"lr": [1.0]}, "seeds": 0}, "ablations.a.seeds", "less than the minimum"),
    ({"student": "bert_s", "axis": {"init": {"a b": {"from": "random"}}}}, "ablations.a.axis.init", "is not valid under any"),
    ({"student": "bert_s", "axis": {"lr": [float(v) for v in range(1, 65)], "batch_size": [1, 2, 3, 4, 5]}},
     "ablations.a.axis", "320 points, more than 256"),
    ({"student": "bert_s"}, "ablations.a", "'axis' is a required property"),
])
def test_a_bad_ablation_is_an_error_naming_its_key(ablation, key, message):
    cfg = config(ablations={"a": ablation})
    with pytest.raises(ConfigError) as err:
        validate(cfg, SCHEMA)
        check_variants(cfg, SCHEMA)
    assert err.value.key == key and message in str(err.value), str(err.value)


def test_an_ablation_of_a_student_or_task_the_config_leaves_out_is_an_error():
    cfg = config(ablations={"a": {"student": "lstm_s", "axis": {"lr": [1.0]}}})
    del cfg["students"]["lstm_s"]
    with pytest.raises(ConfigError, match="unknown student 'lstm_s'") as err:
        check_variants(cfg, SCHEMA)
    assert err.value.key == "ablations.a.student"
    cfg = config(ablations={"a": {"student": "lstm_s", "tasks": ["sara"], "axis": {"lr": [1.0]}}})
    del cfg["tasks"]["sara"]
    with pytest.raises(ConfigError, match="unknown task 'sara'") as err:
        check_variants(cfg, SCHEMA)
    assert err.value.key == "ablations.a.tasks"


def test_the_demo_teacher_init_is_checked_against_the_teacher_at_start_up(tmp_path):
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    (teacher / "config.json").write_text(json.dumps({"hidden_size": 64, "intermediate_size": 128,
                                                     "num_attention_heads": 4, "num_hidden_layers": 4,
                                                     "max_position_embeddings": 256}))
    cfg = copy.deepcopy(DEMO)
    cfg["teacher"]["model"] = str(teacher)
    check_variants(cfg, SCHEMA)  # heads 4 from the ablation's settings: the teacher's widths
    del cfg["ablations"]["init_demo"]["settings"]
    with pytest.raises(ConfigError, match="point ablations/init_demo/init=teacher,transfer=gpt2/seed42 on cola"):
        check_variants(cfg, SCHEMA)


# --- the paired bootstrap and the table, on hand-made predictions ---

def test_the_paired_bootstrap_gives_zero_for_equal_points_and_the_paired_interval_otherwise():
    rng = np.random.default_rng(1)
    gold = rng.integers(0, 2, 400)
    reference = [np.where(rng.random(400) < 0.7, gold, 1 - gold) for _ in range(2)]
    better = [np.where(rng.random(400) < 0.2, gold, pred) for pred in reference]  # fixes ~20% of the mistakes
    boot = Bootstrap(samples=2000, seed=0)
    out = paired_bootstrap("sst2", gold, {"ref": reference, "same": [p.copy() for p in reference], "b": better},
                           "ref", boot)
    assert out["ref"] == (0.0, 0.0) and out["same"] == (0.0, 0.0)
    # by hand: the mean over seeds of per-example differences d_i, whose mean's 95% interval is ~ mean ± 1.96 sd/sqrt(n)
    d = np.mean([(b == gold).astype(float) - (r == gold) for b, r in zip(better, reference)], axis=0)
    half = 1.96 * d.std() / np.sqrt(len(d))
    low, high = out["b"]
    assert low > 0 and abs(low - (d.mean() - half)) < 0.01 and abs(high - (d.mean() + half)) < 0.01
    assert paired_bootstrap("sst2", gold, {"ref": reference, "b": better}, "ref", boot)["b"] == out["b"]  # seeded


def _write_run(root: Path, point: str, seed: int, gold: list[str], pred: list[str], test: float, wall: float,
               params: int = 1000) -> AblationRun:
    base = root / point.replace(",", "_") / f"seed{seed}"
    base.mkdir(parents=True)
    metrics = {"dev": {"accuracy": 0.0}, "test": {"accuracy": test}, "n_params": params,
               "n_params_without_embeddings": params // 2, "best_epoch": 1}
    (base / "metrics.json").write_text(json.dumps(metrics))
    pd.DataFrame({"sentence": [f"s{i}" for i in range(len(gold))], "gold": gold, "pred": pred}).to_csv(
        base / "dev.tsv", sep="\t", index=False)
    (base / "bench.tsv").write_text("s\th:m:s\tmax_rss\tcpu_time\n" f"{wall}\t0:00:01\t100\t{wall}\n")
    labels = dict(item.split("=") for item in point.split(","))
    return AblationRun(point, labels, seed, base / "metrics.json", base / "dev.tsv", base / "bench.tsv")


@pytest.fixture
def task_files(tmp_path):
    (tmp_path / "labels.txt").write_text("negative\npositive\n")
    gold = ["positive", "negative"] * 5
    pd.DataFrame({"sentence": [f"s{i}" for i in range(10)], "label": gold}).to_csv(tmp_path / "dev.tsv", sep="\t",
                                                                                   index=False)
    flip = {"positive": "negative", "negative": "positive"}
    wrong = lambda k: [flip[g] if i < k else g for i, g in enumerate(gold)]  # noqa: E731 - the first k wrong
    runs = [_write_run(tmp_path, "init=scratch", 1, gold, wrong(4), 0.5, 10.0),
            _write_run(tmp_path, "init=scratch", 2, gold, wrong(2), 0.7, 14.0),
            _write_run(tmp_path, "init=teacher", 1, gold, wrong(1), 0.8, 20.0),
            _write_run(tmp_path, "init=teacher", 2, gold, wrong(1), 0.9, 22.0)]
    return tmp_path, runs


def test_the_table_gives_mean_std_difference_interval_and_cost(task_files):
    root, runs = task_files
    table = ablation_table("sst2", "init", "bert_s", runs, "init=scratch", root / "labels.txt", root / "dev.tsv",
                           Bootstrap(1000, 0))
    assert list(table["point"]) == ["init=scratch", "init=teacher"] and list(table["reference"]) == [True, False]
    scratch, teacher = table.iloc[0], table.iloc[1]
    assert scratch["init"] == "scratch" and scratch["seeds"] == 2 and scratch["metric"] == "accuracy"
    assert scratch["dev_accuracy_mean"] == pytest.approx(0.7)  # (0.6 + 0.8) / 2
    assert scratch["dev_accuracy_std"] == pytest.approx(np.std([0.6, 0.8], ddof=1))
    assert teacher["dev_accuracy_mean"] == pytest.approx(0.9) and teacher["dev_accuracy_std"] == pytest.approx(0)
    assert teacher["test_accuracy_mean"] == pytest.approx(0.85) and scratch["test_accuracy_mean"] == pytest.approx(0.6)
    assert teacher["dev_score_by_seed"] == "0.900000;0.900000"
    assert teacher["delta_dev"] == pytest.approx(0.2) and scratch["delta_dev"] == 0
    # teacher beats scratch on examples 1-3 (seed 1: all 3, seed 2: example 1), never worse: the interval holds the
    # difference and starts at 0 or above (a resample missing examples 1-3, 0.7^10 = 2.8% of them, gives 0)
    assert 0 <= teacher["delta_ci_low"] < 0.2 < teacher["delta_ci_high"]
    assert scratch["delta_ci_low"] == scratch["delta_ci_high"] == 0
    assert teacher["distil_s_mean"] == pytest.approx(21.0) and teacher["params"] == 1000
    assert teacher["params_without_embeddings"] == 500 and teacher["bootstrap_samples"] == 1000


def test_predictions_of_another_dev_set_are_refused_naming_the_file(task_files):
    root, runs = task_files
    frame = pd.read_csv(runs[2].predictions, sep="\t")
    frame.loc[0, "sentence"] = "another sentence"
    frame.to_csv(runs[2].predictions, sep="\t", index=False)
    with pytest.raises(InputError, match="sentence column differs") as err:
        ablation_table("sst2", "init", "bert_s", runs, "init=scratch", root / "labels.txt", root / "dev.tsv",
                       Bootstrap(100, 0))
    assert str(runs[2].predictions) in str(err.value)


def test_a_non_finite_test_score_stops_the_summary(task_files):
    root, runs = task_files
    record = json.loads(runs[3].metrics.read_text())
    runs[3].metrics.write_text(json.dumps(record | {"test": {"accuracy": float("nan")}}))
    with pytest.raises(InputError, match="non-finite"):
        ablation_table("sst2", "init", "bert_s", runs, "init=scratch", root / "labels.txt", root / "dev.tsv",
                       Bootstrap(100, 0))


def test_the_summary_writes_the_table_and_a_plot(task_files):
    root, runs = task_files
    write_ablation_summary("sst2", "init", "bert_s", runs, "init=scratch", root / "labels.txt", root / "dev.tsv",
                           Bootstrap(200, 0), root / "out.csv", root / "out.png")
    assert len(pd.read_csv(root / "out.csv")) == 2
    assert (root / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _probe_table(path: Path, accuracies: dict[tuple[str, int, str], float]) -> ProbedRun:
    rows = [{"model": "bert_s", "probe_task": task, "layer": layer, "pooling": "mean", "classifier": classifier,
             "test_acc": acc, "test_ci_low": acc, "test_ci_high": acc, "majority_acc": 0.5, "control_acc": None,
             "selectivity": None, "selectivity_ci_low": None, "selectivity_ci_high": None, "test_acc_by_seed": acc}
            for (task, layer, classifier), acc in accuracies.items()]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_probing_deltas_are_the_best_layer_accuracy_over_seeds_minus_the_reference(tmp_path):
    def run(point, seed, length, shift):
        table = {("sentence_length", 0, "mlp"): length[0], ("sentence_length", 1, "mlp"): length[1],
                 ("bigram_shift", 0, "mlp"): shift, ("bigram_shift", 1, "linear"): 0.99}  # linear: not the main one
        return ProbedRun(point, seed, _probe_table(tmp_path / f"{point}{seed}.csv", table))

    runs = [run("a", 1, (0.6, 0.8), 0.5), run("a", 2, (0.7, 0.6), 0.6),
            run("b", 1, (0.9, 0.5), 0.55), run("b", 2, (0.5, 0.8), 0.65)]
    deltas = probe_deltas("cola", "x", runs, "a").set_index(["point", "probe_task"])
    # best layers: a 0.8, 0.7 (mean 0.75); b 0.9, 0.8 (0.85); bigram_shift: a 0.55, b 0.6
    assert deltas.loc[("a", "sentence_length"), "best_acc_mean"] == pytest.approx(0.75)
    assert deltas.loc[("b", "sentence_length"), "delta"] == pytest.approx(0.1)
    assert deltas.loc[("b", "bigram_shift"), "delta"] == pytest.approx(0.05)
    assert deltas.loc[("b", "bigram_shift"), "reference_best_acc_mean"] == pytest.approx(0.55)
    assert deltas.loc[("a", "bigram_shift"), "delta"] == 0 and bool(deltas.loc[("a", "bigram_shift"), "reference"])
    assert deltas.loc[("b", "sentence_length"), "best_acc_std"] == pytest.approx(np.std([0.9, 0.8], ddof=1))

"""Extra seeds and declared sweeps (kdprobe.variants): seeds and their names, grid points, their labels and settings,
the size multipliers, and clear errors naming the key for a bad sweep."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from kdprobe.config import deep_merge, validate
from kdprobe.errors import ConfigError
from kdprobe.variants import (all_variants, apply_multipliers, check_variants, enabled_sweeps, find_variant,
                              probe_seeds, seed_variants, seeds_of, sweep_label, sweep_variants, variant_names)

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
THESIS = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
DEMO = deep_merge(THESIS, yaml.safe_load((ROOT / "config" / "demo.yaml").read_text()))


def config(**override):
    return deep_merge(copy.deepcopy(THESIS), override)


def test_the_thesis_trains_each_model_once_and_declares_its_grids_switched_off():
    validate(THESIS, SCHEMA)
    check_variants(THESIS, SCHEMA)
    assert all(seeds_of(THESIS, task, model) == [42] for task in THESIS["tasks"] for model in ("teacher", "bert_s"))
    assert not any(all_variants(THESIS, task) for task in THESIS["tasks"]) and variant_names(THESIS) == []
    assert set(THESIS["sweeps"]) >= {"bert_s_lr", "lstm_s_lr", "bert_s_warmup", "bert_s_batch", "bert_s_embeddings",
                                     "lstm_s_embeddings", "bert_s_size", "lstm_s_size"}
    switched_on = config(sweeps={name: {"enabled": True} for name in THESIS["sweeps"]})
    check_variants(switched_on, SCHEMA)  # every grid point of every thesis grid is a valid student config
    assert len(all_variants(switched_on, "sara")) == 7 + 7 + 10 + 5 + 5 + 9 + 6 + 4 + 4
    assert [v.values["lr"] for v in sweep_variants(THESIS, "sara", "bert_s_lr")] == [5e-3, 1e-3, 5e-4, 1e-4, 5e-5,
                                                                                      1e-5, 5e-6]


def test_the_demo_runs_two_seeds_of_both_students_on_sara_and_two_learning_rates_on_cola():
    validate(DEMO, SCHEMA)
    check_variants(DEMO, SCHEMA)
    sara = all_variants(DEMO, "sara")
    assert [(v.model, v.name, v.settings["seed"]) for v in sara] == [("bert_s", "seed43", 43), ("lstm_s", "seed43", 43)]
    cola = all_variants(DEMO, "cola")
    assert [v.name for v in cola] == ["sweeps/lstm_s_lr_demo/lr=0.003", "sweeps/lstm_s_lr_demo/lr=0.03"]
    assert [v.settings["lr"] for v in cola] == [3e-3, 3e-2] and all(v.model == "lstm_s" for v in cola)
    assert all_variants(DEMO, "sst2") == [] and not probe_seeds(DEMO, "sara")


def test_seeds_count_up_from_the_models_own_seed_per_task():
    cfg = config(seeds={"teacher": 2, "lstm_s": 3, "probe": True})
    cfg["tasks"]["cola"]["seeds"] = {"lstm_s": 1}
    assert seeds_of(cfg, "sara", "lstm_s") == [42, 43, 44] and seeds_of(cfg, "cola", "lstm_s") == [42]
    assert seeds_of(cfg, "sara", "bert_s") == [42]
    teacher = seed_variants(cfg, "sara", "teacher")
    assert [v.name for v in teacher] == ["seed43"] and teacher[0].settings["lr"] == THESIS["teacher"]["lr"]
    assert probe_seeds(cfg, "sara")
    assert find_variant(cfg, "sara", "lstm_s", "seed44").settings["seed"] == 44
    with pytest.raises(ConfigError, match="no run 'seed45' of lstm_s on sara"):
        find_variant(cfg, "sara", "lstm_s", "seed45")


def test_grid_points_take_their_values_their_shared_settings_and_readable_names():
    cfg = config(sweeps={"mix": {"student": "lstm_s", "tasks": ["sara"], "settings": {"optimizer": "adam"},
                                 "grid": {"lr": [1.0e-3, 5.0e-4], "embedding_mode": ["static", "multichannel"]}}})
    check_variants(cfg, SCHEMA)
    points = sweep_variants(cfg, "sara", "mix")
    assert [v.name for v in points] == ["sweeps/mix/lr=0.001,embedding_mode=static",
                                        "sweeps/mix/lr=0.001,embedding_mode=multichannel",
                                        "sweeps/mix/lr=0.0005,embedding_mode=static",
                                        "sweeps/mix/lr=0.0005,embedding_mode=multichannel"]
    assert all(v.settings["optimizer"] == "adam" and v.sweep == "mix" for v in points)
    assert points[3].settings["embedding_mode"] == "multichannel" and points[3].settings["lr"] == 5e-4
    assert enabled_sweeps(cfg, "sara").keys() == {"mix"} and enabled_sweeps(cfg, "cola") == {}
    assert sweep_label({"betas": [0.9, 0.98], "bf16": True, "path": "a b/c"}) == "betas=0.9-0.98,bf16=true,path=a-b-c"


def test_width_and_depth_multiply_the_students_size():
    bert = apply_multipliers("bert_s", THESIS["students"]["bert_s"], width=2, depth=3)
    assert (bert["hidden"], bert["intermediate"], bert["layers"], bert["heads"]) == (408, 1500, 15, 3)
    cfg = config(sweeps={"size": {"student": "lstm_s", "grid": {"width": [1, 2]}}})
    check_variants(cfg, SCHEMA)
    one, two = sweep_variants(cfg, "cola", "size")
    assert (one.settings["hidden"], one.settings["fc"]) == (300, 400)
    assert (two.name, two.settings["hidden"], two.settings["fc"], two.settings["layers"]) == (
        "sweeps/size/width=2", 600, 800, 1)


@pytest.mark.parametrize("sweep, key, message", [
    ({"student": "gru_s", "grid": {"lr": [1]}}, "sweeps.s.student", "'gru_s' is not one of"),
    ({"student": "bert_s", "tasks": ["mnli"], "grid": {"lr": [1]}}, "sweeps.s.tasks.0", "'mnli' is not one of"),
    ({"student": "bert_s", "grid": {"learning_rate": [1]}}, "sweeps.s.grid.learning_rate", "not a setting"),
    ({"student": "bert_s", "settings": {"rho": 0.9}, "grid": {"lr": [1]}}, "sweeps.s.settings.rho", "not a setting"),
    ({"student": "bert_s", "grid": {"lr": [-1.0]}}, "sweeps.s", "grid point sweeps/s/lr=-1.0 on cola: students.bert_s.lr"),
    ({"student": "bert_s", "grid": {"embedding_mode": ["static", "frozen"]}}, "sweeps.s",
     "embedding_mode: 'frozen' is not one of"),
    ({"student": "lstm_s", "grid": {"betas": [[0.9, 0.98], [0.9, 0.98]]}}, "sweeps.s.grid.betas", "non-unique"),
    ({"student": "lstm_s", "grid": {"word2vec": ["a b.bin", "a-b.bin"]}}, "sweeps.s.grid", "share a name"),
])
def test_a_bad_sweep_is_an_error_naming_its_key(sweep, key, message):
    cfg = config(sweeps={"s": sweep})
    with pytest.raises(ConfigError) as err:
        validate(cfg, SCHEMA)
        check_variants(cfg, SCHEMA)
    assert err.value.key == key and message in str(err.value)


def test_a_sweep_of_a_student_or_task_the_config_leaves_out_is_an_error():
    cfg = config(sweeps={"s": {"student": "lstm_s", "tasks": ["sara"], "grid": {"lr": [1.0]}}})
    del cfg["students"]["lstm_s"]
    with pytest.raises(ConfigError, match="unknown student 'lstm_s'") as err:
        check_variants(cfg, SCHEMA)
    assert err.value.key == "sweeps.s.student"
    cfg = config(sweeps={"s": {"student": "lstm_s", "tasks": ["sara"], "grid": {"lr": [1.0]}}})
    del cfg["tasks"]["sara"]
    with pytest.raises(ConfigError, match="unknown task 'sara'") as err:
        check_variants(cfg, SCHEMA)
    assert err.value.key == "sweeps.s.tasks"

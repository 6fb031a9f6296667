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
    assert set(THESIS["sweeps"]) >= {"bert_s_lr", "lstm_s_lr", "bert_s_warmup", "lstm_s_warmup", "bert_s_batch",
                                     "lstm_s_batch", "bert_s_embeddings", "lstm_s_embeddings", "bert_s_size",
                                     "lstm_s_size", "bert_s_slim_sst2", "lstm_s_slim_sst2"}
    switched_on = config(sweeps={name: {"enabled": True} for name in THESIS["sweeps"]})
    check_variants(switched_on, SCHEMA)  # every grid point of every thesis grid is a valid student config
    # lr x 3, warm-up 10 + 8, batch 5 + 5, embeddings 4 + 4 on every task; the pairs and Sara's sizes on Sara
    assert len(all_variants(switched_on, "sara")) == 7 * 3 + 10 + 8 + 5 + 5 + 4 + 4 + 2 + 2 + 12 + 4
    thesis_lrs = [5e-3, 1.5e-3, 5e-4, 1.5e-4, 5e-5, 1.5e-5, 5e-6]  # tab:hparam-exploration
    for name in ("bert_s_lr", "lstm_s_lr", "bert_s_lr_scratch"):
        assert [v.values["lr"] for v in sweep_variants(THESIS, "sara", name)] == thesis_lrs
    assert [v.values["batch_size"] for v in sweep_variants(THESIS, "sara", "lstm_s_batch")] == [32, 50, 128, 256, 512]
    assert [v.values["batch_size"] for v in sweep_variants(THESIS, "sara", "bert_s_batch")] == [32, 64, 128, 256, 512]
    warmup = sweep_variants(THESIS, "sara", "lstm_s_warmup")
    assert [(v.settings["schedule"], v.settings["warmup_epochs"]) for v in warmup] == [
        (s, e) for s in ("linear", "constant") for e in (0, 5, 10, 15)]
    assert all(v.settings["optimizer"] == "adam" and v.settings["lr"] == 5e-4 for v in warmup)


def test_the_thesis_sizes_are_its_tables():
    """tab:sizes-bert and tab:sizes-lstm (latex/hparam-exploration.tex), rounded half up: every entry but LSTM_S's
    d_LSTM at W=1/8 (37.5: the thesis wrote 37)."""
    bert = THESIS["students"]["bert_s"]
    table = {"1/16": (13, 47, 1), "1/8": (26, 94, 1), "1/4": (51, 188, 1), "1/3": (68, 250, 1), "1/2": (102, 375, 2),
             1: (204, 750, 3), 2: (408, 1500, 6), 3: (612, 2250, 9), 4: (816, 3000, 12)}
    for width, dims in table.items():
        out = apply_multipliers("bert_s", bert, width=width)
        assert (out["hidden"], out["intermediate"], out["heads"]) == dims, width
    depths = {"1/4": 1, "1/3": 2, "1/2": 3, 1: 5, 2: 10, 3: 15}
    assert {d: apply_multipliers("bert_s", bert, depth=d)["layers"] for d in depths} == depths
    lstm = THESIS["students"]["lstm_s"]
    table = {"1/32": (9, 13), "1/16": (19, 25), "1/8": (38, 50), "1/4": (75, 100), "1/2": (150, 200), 1: (300, 400),
             5: (1500, 2000)}
    assert {w: (o["hidden"], o["fc"]) for w in table for o in [apply_multipliers("lstm_s", lstm, width=w)]} == table
    # a decimal is the fraction it is written as: 0.0625 is 1/16, 0.5 is 1/2
    assert apply_multipliers("bert_s", bert, width=0.0625) == apply_multipliers("bert_s", bert, width="1/16")
    assert apply_multipliers("bert_s", bert, 0.5, 0.5)["layers"] == 3


@pytest.mark.parametrize("student, width, depth, key, message", [
    ("lstm_s", "1/1000", 1, "sweeps.s.width", "width 1over1000 scales hidden 300 to 0"),
    ("bert_s", 1, 0.05, "sweeps.s.depth", "depth 0.05 scales layers 5 to 0"),
    ("bert_s", "3/2", 1, "sweeps.s.width", "width 3over2 gives hidden 306, not a multiple of its 5 heads (3 scaled)"),
    ("bert_s", 0, 1, "sweeps.s.width", "0 is not a multiplier"),
    ("bert_s", "1/0", 1, "sweeps.s.width", "'1/0' is not a multiplier"),
])
def test_a_multiplier_that_breaks_the_student_is_an_error_naming_its_key(student, width, depth, key, message):
    with pytest.raises(ConfigError) as err:
        apply_multipliers(student, THESIS["students"][student], width, depth, key="sweeps.s")
    assert err.value.key == key and message in str(err.value)


def test_points_give_per_point_settings_and_readable_names():
    cfg = config(sweeps={"big": {"student": "bert_s", "tasks": ["cola"], "settings": {"batch_size": 128},
                                 "points": [{"width": 4, "depth": 2, "lr": 4.0e-5},
                                            {"width": "1/3", "depth": 0.5, "lr": 5.0e-4}]}})
    validate(cfg, SCHEMA)
    check_variants(cfg, SCHEMA)
    big, small = sweep_variants(cfg, "cola", "big")
    assert big.name == "sweeps/big/width=4,depth=2,lr=4e-05" and small.name == "sweeps/big/width=1over3,depth=0.5,lr=0.0005"
    assert (big.settings["hidden"], big.settings["heads"], big.settings["layers"], big.settings["lr"]) == (816, 12, 10, 4e-5)
    assert (small.settings["hidden"], small.settings["intermediate"], small.settings["layers"]) == (68, 250, 3)
    assert big.settings["batch_size"] == small.settings["batch_size"] == 128
    assert big.values == {"width": 4, "depth": 2, "lr": 4e-5} and find_variant(cfg, "cola", "bert_s", small.name) == small
    both = config(sweeps={"b": {"student": "lstm_s", "grid": {"lr": [1.0]}, "points": [{"lr": 2.0}]}})
    check_variants(both, SCHEMA)
    assert [v.name for v in sweep_variants(both, "sara", "b")] == ["sweeps/b/lr=1.0", "sweeps/b/lr=2.0"]



def test_the_thesis_final_overlay_runs_chapter_5_as_the_thesis_did():
    final = deep_merge(copy.deepcopy(THESIS), yaml.safe_load((ROOT / "config" / "thesis-final.yaml").read_text()))
    validate(final, SCHEMA)
    check_variants(final, SCHEMA)
    counts = {task: {} for task in final["tasks"]}
    for task in final["tasks"]:
        for variant in all_variants(final, task):
            counts[task][variant.sweep] = counts[task].get(variant.sweep, 0) + 1
    assert counts == {
        "cola": {"bert_s_lr": 7, "bert_s_lr_scratch": 7, "lstm_s_lr": 7, "bert_s_warmup": 10, "lstm_s_warmup": 8,
                 "bert_s_batch": 5, "lstm_s_batch": 5, "bert_s_embeddings": 4, "lstm_s_embeddings": 4,
                 "bert_s_size": 12, "lstm_s_size": 25},
        "sst2": {"bert_s_embeddings_pair": 2, "lstm_s_embeddings_pair": 2, "bert_s_slim_sst2": 24,
                 "lstm_s_slim_sst2": 7},
        "sara": {"bert_s_embeddings_pair": 2, "lstm_s_embeddings_pair": 2, "bert_s_slim_sara": 12,
                 "lstm_s_slim_sara": 4}}
    assert sum(len(all_variants(final, task)) for task in final["tasks"]) == 149  # distil_variant jobs
    # CoLA's size sweeps start from the default sizes, not the final (larger) CoLA students; lrs per point
    size = {(v.values["width"], v.values["depth"]): v for v in sweep_variants(final, "cola", "bert_s_size")}
    assert (size[4, 1].settings["hidden"], size[4, 1].settings["heads"], size[4, 1].settings["lr"]) == (816, 12, 7e-5)
    assert size[1, 1].settings["hidden"] == 204 and size[4, 3].settings["layers"] == 15
    lstm = {(v.values["width"], v.values["depth"]): v.settings for v in sweep_variants(final, "cola", "lstm_s_size")}
    assert (lstm[2, 2]["hidden"], lstm[2, 2]["fc"], lstm[2, 2]["layers"]) == (600, 800, 2)
    # each CoLA step from the search's state: LSTM_S's lr step at the table's initial B=50 without decay
    lr = sweep_variants(final, "cola", "lstm_s_lr")[0].settings
    assert (lr["optimizer"], lr["batch_size"], lr["schedule"], lr["hidden"]) == ("adam", 50, "constant", 300)
    bert_lr = sweep_variants(final, "cola", "bert_s_lr")[0].settings
    assert (bert_lr["batch_size"], bert_lr["warmup_epochs"], bert_lr["embeddings"]) == (256, 10, "teacher")
    sara = {v.values["embeddings"]: v.settings for v in sweep_variants(final, "sara", "bert_s_embeddings_pair")}
    assert sara["teacher"]["embedding_mode"] == "non-static" and sara["word2vec"]["embedding_mode"] == "multichannel"


def test_the_demo_runs_two_seeds_of_both_students_on_sara_and_two_learning_rates_on_cola():
    validate(DEMO, SCHEMA)
    check_variants(DEMO, SCHEMA)
    sara = all_variants(DEMO, "sara")
    assert [(v.model, v.name, v.settings["seed"]) for v in sara] == [("bert_s", "seed43", 43), ("lstm_s", "seed43", 43)]
    cola = [v for v in all_variants(DEMO, "cola") if not v.ablation]  # its ablation: tests/test_ablations.py
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
    assert (bert["hidden"], bert["intermediate"], bert["layers"], bert["heads"]) == (408, 1500, 15, 6)
    cfg = config(sweeps={"size": {"student": "lstm_s", "grid": {"width": [1, 2]}}})
    check_variants(cfg, SCHEMA)
    one, two = sweep_variants(cfg, "cola", "size")
    assert (one.settings["hidden"], one.settings["fc"]) == (300, 400)
    assert (two.name, two.settings["hidden"], two.settings["fc"], two.settings["layers"]) == (
        "sweeps/size/width=2", 600, 800, 1)


@pytest.mark.parametrize("sweep, key, message", [
    ({"student": "bert_s"}, "sweeps.s", "is not valid under any of the given schemas"),
    ({"student": "bert_s", "points": []}, "sweeps.s.points", "should be non-empty"),
    ({"student": "bert_s", "points": [{}]}, "sweeps.s.points.0", "should be non-empty"),
    ({"student": "bert_s", "points": [{"width": "a/3"}]}, "sweeps.s.points.0.width", "is not valid under any"),
    ({"student": "bert_s", "grid": {"width": [-1]}}, "sweeps.s.grid.width.0", "is not valid under any"),
    ({"student": "bert_s", "points": [{"rate": 1.0}]}, "sweeps.s.points.0.rate", "not a setting"),
    ({"student": "bert_s", "points": [{"lr": 1.0}, {"lr": 2.0, "width": 2}]}, "sweeps.s.points.1", "differ from"),
    ({"student": "bert_s", "grid": {"lr": [1.0]}, "points": [{"width": 2}]}, "sweeps.s.points.0", "differ from"),
    ({"student": "bert_s", "points": [{"lr": 1.0}, {"lr": 1.0}]}, "sweeps.s.points", "share a name"),
    ({"student": "bert_s", "points": [{"width": "1/500"}]}, "sweeps.s.points.0.width", "scales hidden 204 to 0"),
    ({"student": "bert_s", "grid": {"width": [1.5]}}, "sweeps.s.grid.width", "not a multiple of its 5 heads"),
    ({"student": "bert_s", "grid": {"lr": [float(v) for v in range(1, 65)], "batch_size": [1, 2, 3, 4]},
      "points": [{"lr": 0.5, "batch_size": 1}]}, "sweeps.s.grid", "257 grid points, more than 256"),
    ({"student": "gru_s", "grid": {"lr": [1]}}, "sweeps.s.student", "'gru_s' is not one of"),
    ({"student": "bert_s", "tasks": ["mnli"], "grid": {"lr": [1]}}, "sweeps.s.tasks.0", "'mnli' is not one of"),
    ({"student": "bert_s", "grid": {"learning_rate": [1]}}, "sweeps.s.grid.learning_rate", "not a setting"),
    ({"student": "bert_s", "settings": {"momentum": 0.9}, "grid": {"lr": [1]}}, "sweeps.s.settings.momentum",
     "not a setting"),
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


def test_a_sweep_may_vary_a_setting_the_config_leaves_at_its_default():
    """`transfer` and `init` are absent from the thesis config; a setting is a key of the student's schema, so a
    sweep over them is accepted (and a key of no schema still refused)."""
    assert "transfer" not in THESIS["students"]["lstm_s"] and "init" not in THESIS["students"]["bert_s"]
    cfg = config(sweeps={"kinds": {"student": "lstm_s", "grid": {"transfer": ["none", "rules"]}},
                         "init": {"student": "bert_s", "settings": {"transfer": "none"},
                                  "points": [{"init": {"from": "random"}}]}})
    validate(cfg, SCHEMA)
    check_variants(cfg, SCHEMA)
    assert [v.settings["transfer"] for v in all_variants(cfg, "cola") if v.sweep == "kinds"] == ["none", "rules"]


def test_a_run_whose_loss_terms_do_not_fit_is_an_error_naming_the_point():
    """Sweep and ablation points are checked like the students' own loss: hidden terms need BERT_S."""
    terms = [{"term": "soft_ce"}, {"term": "hidden_mse", "map": {1: 4}}]
    cfg = config(sweeps={"s": {"student": "lstm_s", "tasks": ["cola"], "points": [{"loss": terms}]}})
    validate(cfg, SCHEMA)
    with pytest.raises(ConfigError) as err:
        check_variants(cfg, SCHEMA)
    assert err.value.key.startswith("students.lstm_s.loss.1") and "point sweeps/s/" in str(err.value)
    cfg = config(ablations={"a": {"student": "bert_s", "tasks": ["cola"],
                                  "axis": {"loss": {"deep": [{"term": "hidden_mse", "map": {9: 4}}]}}}})
    validate(cfg, SCHEMA)
    with pytest.raises(ConfigError) as err:
        check_variants(cfg, SCHEMA)
    assert err.value.key.startswith("students.bert_s.loss.0") and "ablations/a/loss=deep" in str(err.value)

"""The demo config end to end through Snakemake: every stage runs for real, and every final file is sane."""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from kdprobe.config import shard_sizes
from kdprobe.metrics import mcc
from kdprobe.splits import read_labels, read_split
from kdprobe.probe.senteval import load as load_probing
from smk import snakemake

pytestmark = pytest.mark.workflow

TASKS = ("cola", "sst2", "sara")
MODELS = ("teacher", "bert_s", "lstm_s")
PROBE_TASKS = (
    "sentence_length", "word_content", "tree_depth", "bigram_shift", "top_constituents",
    "past_present", "subj_number", "obj_number", "odd_man_out", "coordination_inversion",
)
HEADLINE = {"cola": "mcc", "sst2": "accuracy", "sara": "micro_f1"}


def majority(labels) -> float:
    return Counter(labels).most_common(1)[0][1] / len(labels)


def test_nothing_left_to_do(demo):
    proc = snakemake(demo, "-n", "--configfile", "config/demo.yaml")
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.parametrize("task", TASKS)
def test_data_splits_are_disjoint_and_labelled(demo, task):
    data = demo / "resources/data" / task
    labels = read_labels(data / "labels.txt")
    train, dev = read_split(data / "train.tsv"), read_split(data / "dev.tsv")
    assert set(train.label) <= set(labels) and set(dev.label) <= set(labels)
    assert not set(train.sentence) & set(dev.sentence)
    if task == "sara":  # stratified split from one file: test is its own set
        test = read_split(data / "test.tsv")
        assert len(dev) == len(test) == 100 and not set(test.sentence) & set(train.sentence)


@pytest.mark.parametrize("task", TASKS)
def test_augmentation_and_transfer_set_are_aligned(demo, task):
    sizes = shard_sizes(300, 2)
    n_train = len(read_split(demo / f"resources/data/{task}/train.tsv"))
    n_classes = len(read_labels(demo / f"resources/data/{task}/labels.txt"))
    for i, size in enumerate(sizes):
        shard = pd.read_parquet(demo / f"results/augment/{task}/shard{i}.parquet")
        transfer = pd.read_parquet(demo / f"results/transfer/{task}/shard{i}.parquet")
        # sentences empty after normalisation are dropped, and the sampling log says how many
        log = (demo / f"logs/sample/{task}/shard{i}.log").read_text()
        dropped = re.search(rf"{len(shard)} sentences; of the {size} sampled, (\d+) were empty", log)
        assert dropped and len(shard) + int(dropped.group(1)) == size
        assert len(shard) == len(transfer) >= 0.9 * size
        assert all(s and s == " ".join(s.split()) for s in shard.sentence)
        assert list(transfer.sentence) == list(shard.sentence)
        assert transfer.label.isna().all()
    train = pd.read_parquet(demo / f"results/transfer/{task}/train.parquet")
    assert len(train) == n_train and train.label.notna().all()
    assert all(len(row) == n_classes for row in train.logits)
    assert all(ids[0] != ids[-1] and len(ids) >= 2 for ids in train.input_ids)  # [CLS] ... [SEP]
    # the two shards were sampled with different seeds
    first, second = (set(pd.read_parquet(demo / f"results/augment/{task}/shard{i}.parquet").sentence) for i in (0, 1))
    assert first != second


@pytest.mark.parametrize("task", TASKS)
def test_the_transfer_summary_counts_the_gpt2_set(demo, task):
    """Every demo student distils on gpt2 (the default): its row is the training split plus the two shards; CoLA's
    ablation also trains on the training set alone (transfer: none), a row of its own."""
    table = pd.read_csv(demo / f"results/summary/transfer/{task}.csv")
    assert table["kind"].tolist() == (["gpt2", "none"] if task == "cola" else ["gpt2"])
    row = table.iloc[0]
    n_train = len(read_split(demo / f"resources/data/{task}/train.tsv"))
    if task == "cola":
        none = table.iloc[1]
        assert (none["sentences"], none["training"], none["augmented"], none["duplicates"]) == (n_train, n_train, 0, 0)
    shards = [pd.read_parquet(demo / f"results/augment/{task}/shard{i}.parquet") for i in range(2)]
    generated = [s for shard in shards for s in shard.sentence]
    assert (row["training"], row["augmented"]) == (n_train, len(generated))
    assert row["sentences"] == n_train + len(generated) and row["empty"] == 0
    assert row["duplicates"] == len(generated) - len(set(generated))


@pytest.mark.parametrize("task", TASKS)
def test_teacher_learned_and_logged_its_dev_curve(demo, task):
    dev = read_split(demo / f"resources/data/{task}/dev.tsv")
    metrics = json.loads((demo / f"results/teacher/{task}/metrics.json").read_text())
    assert metrics["dev"]["accuracy"] > majority(dev.label)
    curve = pd.read_csv(demo / f"results/teacher/{task}/curve.csv")
    assert len(curve) >= 2 and curve["step"].is_monotonic_increasing


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("student", ("bert_s", "lstm_s"))
def test_students_beat_the_majority_baseline(demo, task, student):
    dev = read_split(demo / f"resources/data/{task}/dev.tsv")
    metrics = json.loads((demo / f"results/students/{task}/{student}/metrics.json").read_text())
    assert metrics["dev"]["accuracy"] > majority(dev.label), metrics
    if task == "cola":
        assert metrics["dev"]["mcc"] > 0
    if task == "sara":
        assert metrics["dev"]["micro_f1"] == pytest.approx(metrics["dev"]["accuracy"])
        assert 0 < metrics["dev"]["macro_f1"] <= 1
    curve = pd.read_csv(demo / f"results/students/{task}/{student}/curve.csv")
    assert len(curve) == 10  # demo epochs
    assert metrics["dev"][HEADLINE[task]] == pytest.approx(curve[f"dev_{HEADLINE[task]}"].max())


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("model", MODELS)
def test_predictions_are_consistent(demo, task, model):
    labels = read_labels(demo / f"resources/data/{task}/labels.txt")
    dev = read_split(demo / f"resources/data/{task}/dev.tsv")
    pred = pd.read_csv(demo / f"results/predictions/{task}/{model}.tsv", sep="\t", keep_default_na=False,
                       dtype={"gold": str, "pred": str})
    assert list(pred.sentence) == list(dev.sentence) and list(pred.gold) == list(dev.label)
    probs = pred[[f"p_{label}" for label in labels]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(pred.confidence, probs.max(axis=1), atol=1e-6)
    assert list(pred.pred) == [labels[i] for i in probs.argmax(axis=1)]


#: The embed. baselines of config/demo.yaml (probe.embed_baseline: [sara]): each student's table before training.
EMBEDS = {"sara": ["bert_s_embed", "lstm_s_embed"]}


def _probe_tables(demo):
    yield "pretrained", "teacher", demo / "results/probe/pretrained/teacher.csv"
    for task in TASKS:
        for model in [*MODELS, *EMBEDS.get(task, [])]:
            yield task, model, demo / f"results/probe/{task}/{model}.csv"


def test_probe_tables_are_complete_and_sane(demo):
    probing = {name: load_probing(demo / f"resources/demo/probing/{name}.txt") for name in PROBE_TASKS}
    for scope, model, path in _probe_tables(demo):
        table = pd.read_csv(path)
        assert set(table.probe_task) == set(PROBE_TASKS), path
        assert table.test_acc.between(0, 1).all() and table.dev_acc.between(0, 1).all()
        for name, rows in table.groupby("probe_task"):
            (_, train_y), (_, dev_y), (_, test_y) = (probing[name][s] for s in ("train", "dev", "test"))
            top = Counter(train_y).most_common(1)[0][0]
            expected = sum(y == top for y in test_y) / len(test_y)
            assert rows.majority_acc.to_numpy() == pytest.approx(expected), (path, name)
            assert (rows.n_train == len(train_y)).all() and (rows.n_test == len(test_y)).all()
        layers = sorted(table.layer.unique())
        # demo: the teacher at E (0) and 1..4; BERT_S `all`: E, 1, 2; an embed. baseline: its table, layer 0
        expected_layers = {"teacher": [0, 1, 2, 3, 4], "bert_s": [0, 1, 2], "lstm_s": [1], "bert_s_embed": [0],
                           "lstm_s_embed": [0]}[model]
        assert layers == ([1, 4] if scope == "pretrained" else expected_layers), path
        if model == "lstm_s":
            assert set(table.pooling) == {"last", "max", "mean"}  # mean: the thesis's avg


@pytest.mark.parametrize("task", TASKS)
def test_teacher_probes_beat_majority_on_surface_and_order_tasks(demo, task):
    table = pd.read_csv(demo / f"results/probe/{task}/teacher.csv")
    for name in ("sentence_length", "word_content", "bigram_shift"):
        rows = table[table.probe_task == name]
        assert rows.test_acc.max() > rows.majority_acc.iloc[0] + 0.05, rows


def test_every_rule_log_says_what_it_read_and_wrote(demo):
    logs = [p for p in (demo / "logs").rglob("*.log") if "fetch" not in p.parts]
    assert len(logs) > 100
    for path in logs:
        text = path.read_text()
        assert "reads:" in text and "wrote:" in text and "done in" in text, path


def png_size(path) -> tuple[int, int]:
    """(width, height) in pixels from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.mark.parametrize("task", TASKS)
def test_prediction_analysis_agrees_with_the_predictions(demo, task):
    out = demo / f"results/analysis/{task}"
    preds = {m: pd.read_csv(demo / f"results/predictions/{task}/{m}.tsv", sep="\t", keep_default_na=False,
                            dtype={"gold": str, "pred": str}) for m in MODELS}
    wrong = {m: p.pred != p.gold for m, p in preds.items()}
    models = pd.read_csv(out / "models.csv").set_index("model")
    assert list(models.index) == list(MODELS) and models.ece.between(0, 1).all()
    for m in MODELS:
        assert models.loc[m, "accuracy"] == pytest.approx(1 - wrong[m].mean())
        others = pd.concat([wrong[o] for o in MODELS if o != m], axis=1).any(axis=1)
        assert models.loc[m, "unique_mistakes"] == (wrong[m] & ~others).sum()
    agreement = pd.read_csv(out / "agreement.csv")
    matrix = agreement.pivot(index="model_a", columns="model_b", values="agreement").loc[list(MODELS), list(MODELS)]
    np.testing.assert_allclose(matrix.to_numpy(), matrix.to_numpy().T)
    np.testing.assert_allclose(np.diag(matrix.to_numpy()), 1.0)
    both = agreement.set_index(["model_a", "model_b"])["both_wrong"]
    assert both[("teacher", "teacher")] == pytest.approx(1 - models.loc["teacher", "accuracy"])
    sets = pd.read_csv(out / "mistake_sets.csv").set_index("wrong_by")
    assert len(sets) == 7 and sets.sentences.sum() == len(pd.read_csv(out / "wrong.csv"))
    assert sets.loc["bert_s", "sentences"] == models.loc["bert_s", "unique_mistakes"]
    all_wrong = wrong["teacher"] & wrong["bert_s"] & wrong["lstm_s"]
    assert sets.loc["teacher+bert_s+lstm_s", "sentences"] == all_wrong.sum()
    mistakes = pd.read_csv(out / "mistakes.csv", keep_default_na=False, dtype={"gold": str, "pred": str})
    assert (mistakes.pred != mistakes.gold).all()
    for (model, which), rows in mistakes.groupby(["model", "which"]):
        assert len(rows) == min(10, wrong[model].sum())  # analysis.top_k
        assert list(rows.confidence) == sorted(rows.confidence, reverse=which == "most_confident")
    calibration = pd.read_csv(out / "calibration.csv")
    assert (calibration.groupby("model")["count"].sum() == len(preds["teacher"])).all()
    assert (out / "summary.md").read_text().startswith(f"# Prediction analysis: {task}")
    for name in ("confidence", "reliability", "agreement"):
        width, _ = png_size(out / f"{name}.png")
        assert 600 <= width <= 1400, (name, width)


def test_probing_plots_put_every_model_on_the_relative_depth_axis(demo):
    for task in TASKS:
        png_size(demo / f"results/plots/probe/{task}.png")
    png_size(demo / "results/plots/probe/overview.png")
    best = pd.read_csv(demo / "results/plots/probe/best_layers.csv")  # kdprobe.report.probing_stats.probing_summary
    embeds = sum(len(models) for models in EMBEDS.values())
    trained = best[~best.model.str.endswith("_random")]  # random-weight encoders, where probe.random_baseline asks
    # a row per classifier of every probing task (WordContent: the linear probe only, probe.word_content_logreg)
    assert len(trained) == (1 + len(TASKS) * len(MODELS) + embeds) * (len(PROBE_TASKS) * 2 - 1)
    # demo.bert.layers, students.bert_s.layers; an embed. baseline has layer 0 only (depth 0, position 0); a random
    # encoder has its architecture's
    depth = {"pretrained": 4, "teacher": 4, "bert_s": 2, "lstm_s": 1, "bert_s_embed": 0, "lstm_s_embed": 0}
    assert (best.depth == best.model.str.removesuffix("_random").map(depth)).all()
    np.testing.assert_allclose(best.position, np.where(best.depth > 0, best.layer / best.depth.clip(lower=1), 0))
    assert best.position.between(0, 1).all()
    for (scope, model, classifier), rows in best.groupby(["scope", "model", "classifier"]):
        table = pd.read_csv(demo / f"results/probe/{scope}/{'teacher' if model == 'pretrained' else model}.csv")
        top = table[table.classifier == classifier].groupby("probe_task").test_acc.max()
        np.testing.assert_allclose(rows.set_index("probe_task").test_acc.loc[top.index], top)
    # each model compared with its scope's teacher (the pre-trained one in scope pretrained), paired over seeds
    students = best[~best.model.isin(["teacher", "pretrained"])]
    assert "teacher" in set(students.reference) and set(students.reference) <= {"teacher", "pretrained"}
    assert students.reference_diff.notna().all()


@pytest.mark.parametrize("task", TASKS)
def test_training_curves_are_plotted(demo, task):
    for stage in ("teacher", "gpt2", "students"):
        width, height = png_size(demo / f"results/plots/curves/{task}/{stage}.png")
        assert 600 <= width <= 1400 and height >= 250


# ------------------------------------------------------------------------------------------- results/summary/
STAGES = ("teacher", "gpt2", "sample", "logits", "distil", "predict", "predict_test", "probe", "speed")


@pytest.mark.parametrize("task", TASKS)
def test_test_set_predictions_follow_test_tsv(demo, task):
    test = read_split(demo / f"resources/data/{task}/test.tsv")
    for model in MODELS:
        pred = pd.read_csv(demo / f"results/predictions/{task}/{model}.test.tsv", sep="\t", keep_default_na=False,
                           dtype={"gold": str, "pred": str})
        assert list(pred.sentence) == list(test.sentence) and list(pred.gold) == list(test.label)


@pytest.mark.parametrize("task", TASKS)
def test_task_summary_sets_students_beside_the_teacher(demo, task):
    table = pd.read_csv(demo / f"results/summary/{task}.csv")
    assert list(table.model) == list(MODELS) and (table.task == task).all() and (table.metric == HEADLINE[task]).all()
    teacher, students = table.iloc[0], table.iloc[1:]
    # scores from the prediction files agree with the training jobs' own dev metrics (same model, same data)
    metrics = json.loads((demo / f"results/teacher/{task}/metrics.json").read_text())
    assert teacher.dev_score == pytest.approx(metrics["dev"][HEADLINE[task]], abs=0.02)
    for row in students.itertuples(index=False):
        metrics = json.loads((demo / f"results/students/{task}/{row.model}/metrics.json").read_text())
        assert row.dev_score == pytest.approx(metrics["dev"][HEADLINE[task]], abs=0.02)
        assert row.test_score == pytest.approx(metrics["test"][HEADLINE[task]], abs=0.02)
    assert teacher.dev_share == 1.0 and teacher.test_share == 1.0
    assert students.dev_share.between(0, 1.5, inclusive="neither").all(), table
    assert students.test_share.between(0, 1.5, inclusive="neither").all(), table
    np.testing.assert_allclose(students.dev_share, students.dev_score / teacher.dev_score)
    assert bool(teacher.test_is_dev) == (task != "sara")  # GLUE test labels hidden: test.tsv repeats dev
    if task != "sara":
        np.testing.assert_allclose(table.test_score, table.dev_score)
    assert (table.n_dev == len(read_split(demo / f"resources/data/{task}/dev.tsv"))).all()
    # sizes: with and without embeddings, as ratios of the teacher's, and the weight files on disk
    assert (table.params_without_embeddings < table.params).all() and (table.disk_mb > 0).all()
    np.testing.assert_allclose(table.params_ratio, table.params / teacher.params)
    assert teacher.params_ratio == 1.0 and table.set_index("model").params_ratio["bert_s"] < 1  # 2 of 4 layers
    assert (table.disk_mb * 1e6 > table.params * 4 * 0.9).all()  # float32 weights: about 4 bytes per parameter
    # speed, measured on this CPU with the demo's settings; no GPU in the demo
    assert (table.cpu_latency_ms > 0).all() and (table.cpu_throughput > 0).all() and (table.cpu_threads >= 1).all()
    assert table.cpu_device.str.len().gt(0).all() and table.gpu_latency_ms.isna().all()
    assert (table.latency_repeats == 20).all() and (table.throughput_batch == 256).all()
    if task == "sara":
        assert {"dev_macro_f1", "test_macro_f1", "test_micro_f1"} <= set(table.columns)
    if task == "cola":
        assert {"dev_mcc", "test_mcc", "dev_accuracy"} <= set(table.columns)
    for model in MODELS:
        speed = json.loads((demo / f"results/summary/speed/{task}/{model}.json").read_text())
        assert len(speed["cpu"]["latencies_ms"]) == 20 and len(speed["cpu"]["batch_seconds"]) == 2


def test_two_seeds_of_both_students_on_sara_are_scored_and_summarised(demo):
    """config/demo.yaml: both students twice on Sara. The extra seed trains below the student's own directory, is
    scored on dev and test, and the tables give each seed and the mean and deviation; the own run stays headline."""
    seeds = pd.read_csv(demo / "results/summary/seeds/sara.csv")
    assert list(zip(seeds.model, seeds.seed, seeds.run)) == [
        ("teacher", 42, "own"), ("bert_s", 42, "own"), ("bert_s", 43, "seed43"), ("lstm_s", 42, "own"),
        ("lstm_s", 43, "seed43")]
    table = pd.read_csv(demo / "results/summary/sara.csv").set_index("model")
    for student in ("bert_s", "lstm_s"):
        own, other = seeds[seeds.model == student].itertuples(index=False)
        metrics = json.loads((demo / f"results/students/sara/{student}/seed43/metrics.json").read_text())
        assert other.dev_score == pytest.approx(metrics["dev"]["micro_f1"], abs=0.02)
        assert json.loads((demo / f"results/students/sara/{student}/seed43/model/student.json").read_text())
        assert own.dev_score == table.loc[student, "dev_score"] and table.loc[student, "seeds"] == 2
        assert table.loc[student, "dev_score_mean"] == pytest.approx((own.dev_score + other.dev_score) / 2)
        assert table.loc[student, "test_score_std"] == pytest.approx(np.std([own.test_score, other.test_score],
                                                                           ddof=1))
        log = (demo / f"logs/distil/sara/{student}/seed43.log").read_text()
        assert ", seed 43" in log  # the job's log says which seed it trained with
    assert table.loc["teacher", "seeds"] == 1 and np.isnan(table.loc["teacher", "dev_score_std"])
    for task in ("cola", "sst2"):
        assert (pd.read_csv(demo / f"results/summary/{task}.csv").seeds == 1).all()
    study = pd.read_csv(demo / "results/summary/study.csv")
    assert study[(study.task == "sara") & (study.model != "teacher")].seeds.tolist() == [2, 2]


def test_the_demo_sweep_trains_each_point_and_plots_them(demo):
    """config/demo.yaml: LSTM_S at two learning rates on CoLA, each its own run directory; the table, the dev-score
    plot and the curves figure; the configured run is the reference row."""
    table = pd.read_csv(demo / "results/sweeps/cola/lstm_s_lr_demo.csv")
    assert list(table.run) == ["configured", "sweeps/lstm_s_lr_demo/lr=0.003", "sweeps/lstm_s_lr_demo/lr=0.03"]
    assert table.lr.tolist()[1:] == [0.003, 0.03] and (table.metric == "mcc").all()
    for row in table.itertuples(index=False):
        where = "" if row.run == "configured" else f"/{row.run}"
        metrics = json.loads((demo / f"results/students/cola/lstm_s{where}/metrics.json").read_text())
        assert row.best_dev == pytest.approx(metrics["dev"]["mcc"]) and row.best_epoch == metrics["best_epoch"]
    for point in ("lr=0.003", "lr=0.03"):
        curve = pd.read_csv(demo / f"results/students/cola/lstm_s/sweeps/lstm_s_lr_demo/{point}/curve.csv")
        assert curve.lr.iloc[-1] == float(point.split("=")[1])  # the point's learning rate reached the optimiser
    for name in ("lstm_s_lr_demo.png", "lstm_s_lr_demo_curves.png"):
        width, height = png_size(demo / f"results/sweeps/cola/{name}")
        assert 600 <= width <= 1400 and height >= 300


def test_the_demo_ablation_trains_every_point_and_seed_and_compares_them_with_the_reference(demo):
    """config/demo.yaml: BERT_S on CoLA from the teacher's layers or from scratch x the GPT-2 transfer set or the
    training set alone, 2 seeds each, every point with weighted loss terms (the teacher on the fly): every run its
    own directory with its settings, the table's means, stds and differences from the runs' own files, the
    bootstrap interval around each difference, each term's curve column, and the plot."""
    table = pd.read_csv(demo / "results/ablations/cola/init_demo.csv")
    points = ["init=teacher,transfer=gpt2", "init=teacher,transfer=none", "init=scratch,transfer=gpt2",
              "init=scratch,transfer=none"]
    assert list(table.point) == points and table.reference.tolist() == [False, False, True, False]
    assert (table.seeds == 2).all() and (table.metric == "mcc").all() and (table.bootstrap_samples == 1000).all()
    assert table.init.tolist() == ["teacher", "teacher", "scratch", "scratch"] and table.transfer.tolist() == ["gpt2", "none"] * 2
    labels = read_labels(demo / "resources/data/cola/labels.txt")
    reference = table.set_index("point").loc["init=scratch,transfer=gpt2", "dev_mcc_mean"]
    sizes = pd.read_csv(demo / "results/summary/transfer/cola.csv").set_index("kind").sentences
    for row in table.itertuples(index=False):
        base = demo / f"results/students/cola/bert_s/ablations/init_demo/{row.point}"
        dev, test = [], []
        for seed in (42, 43):
            metrics = json.loads((base / f"seed{seed}/metrics.json").read_text())
            assert metrics["n_params"] == row.params
            test.append(metrics["test"]["mcc"])
            predictions = pd.read_csv(demo / f"results/predictions/cola/bert_s/ablations/init_demo/{row.point}/"
                                             f"seed{seed}.tsv", sep="\t", dtype=str, keep_default_na=False)
            gold = predictions.gold.map(labels.index).to_numpy()
            dev.append(mcc(gold, predictions.pred.map(labels.index).to_numpy()))
            assert dev[-1] == pytest.approx(metrics["dev"]["mcc"])  # the kept checkpoint's predictions
            curve = pd.read_csv(base / f"seed{seed}/curve.csv")
            assert len(curve) == 10  # the demo's 10 epochs
            terms = curve[["loss_soft_ce", "loss_hard_ce", "loss_hidden_mse", "loss_attention_mse"]]
            assert np.isfinite(terms.to_numpy()).all() and (terms > 0).all(axis=None)
            # the total is the weighted sum of the terms (each a mean per sentence since the previous row)
            weighted = terms.loss_soft_ce + 0.1 * (terms.loss_hard_ce + terms.loss_hidden_mse
                                                   + terms.loss_attention_mse)
            assert np.allclose(curve.loss, weighted, rtol=1e-4)
            # the training set alone (none) or with the GPT-2 samples: the transfer summary's count of that set
            assert metrics["transfer_size"] == sizes[row.transfer] and metrics["transfer_labelled"] == sizes["none"]
        assert row.dev_mcc_mean == pytest.approx(np.mean(dev)) and row.dev_mcc_std == pytest.approx(np.std(dev, ddof=1))
        assert row.test_mcc_mean == pytest.approx(np.mean(test))
        assert row.delta_dev == pytest.approx(row.dev_mcc_mean - reference)
        assert row.delta_ci_low <= row.delta_dev <= row.delta_ci_high and row.distil_s_mean > 0
    assert (table[table.reference][["delta_ci_low", "delta_ci_high"]] == 0).all(axis=None)
    # the two seeds are two trainings (their curves differ), the teacher's layers a different start
    curves = [pd.read_csv(demo / f"results/students/cola/bert_s/ablations/init_demo/{p}/seed{s}/curve.csv").loss.iloc[0]
              for p in points[::2] for s in (42, 43)]
    assert len(set(curves)) == 4
    width, height = png_size(demo / "results/ablations/cola/init_demo.png")
    assert 800 <= width <= 1400 and height >= 300


def test_study_table_and_plot(demo):
    study = pd.read_csv(demo / "results/summary/study.csv")
    assert len(study) == len(TASKS) * len(MODELS)
    assert set(zip(study.task, study.model)) == {(t, m) for t in TASKS for m in MODELS}
    png = (demo / "results/summary/study.png").read_bytes()
    assert png.startswith(b"\x89PNG") and int.from_bytes(png[16:20], "big") >= 800  # width in pixels


def test_cost_table_covers_every_stage_and_task(demo):
    cost = pd.read_csv(demo / "results/summary/cost.csv")
    per_task = cost[(cost.task != "all")]
    # the probing baselines are built by their own rules: Sara's (probe.embed_baseline, probe.random_baseline) and
    # the random teacher once (scope pretrained)
    baselines = {"embed_model": {"sara"}, "random_student": {"sara"}, "random_teacher": {"pretrained"}}
    assert set(per_task.stage) == set(STAGES) | set(baselines)
    for stage in STAGES:
        tasks = set(per_task[per_task.stage == stage].task)
        assert tasks == (set(TASKS) | {"pretrained"} if stage == "probe" else set(TASKS)), stage
    for stage, tasks in baselines.items():
        assert set(per_task[per_task.stage == stage].task) == tasks, stage
    stages = cost[(cost.task == "all") & (cost.stage != "total")].set_index("stage")
    # one job per model, all probing tasks; Sara's 2 embed. and 2 random baselines, the random teacher
    assert stages.loc["probe", "jobs"] == len(TASKS) * len(MODELS) + 1 + 4 + 1
    # 6 students, 2 extra seeds, 2 sweep points and 8 ablation runs; 9 models' dev predictions and 2 extra seeds'
    assert stages.loc["distil", "jobs"] == 6 + 2 + 2 + 8 and stages.loc["predict", "jobs"] == 9 + 2
    assert stages.loc["speed", "jobs"] == 9 and stages.loc["sample", "jobs"] == 6
    assert (cost.wall_s > 0).all() and (cost.max_rss_mb > 0).all() and (cost.gpu_hours == 0).all()  # the demo: CPU
    total = cost[cost.stage == "total"].iloc[0]
    assert total.jobs == stages.jobs.sum() and total.wall_s == pytest.approx(stages.wall_s.sum())
    assert (demo / "results/summary/cost.png").read_bytes().startswith(b"\x89PNG")

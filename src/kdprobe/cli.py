"""The `kdprobe` command line (console script of pyproject.toml; also `python -m kdprobe.cli`).

    kdprobe score --task cola "my heart is pounding me." "my heart is pounding."

scores the sentences with every trained model of a finished run (`results/teacher/<task>/model`,
`results/students/<task>/<student>/model`) and prints each model's prediction and confidence; without sentences it
scores the config's `analysis.score_sentences.<task>`. Models are loaded by `kdprobe.models` and truncate at the
token limit they were trained with (the teacher's `teacher.max_length` of the config; a student's own).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from kdprobe import config as kdconfig
from kdprobe.errors import ConfigError, KdprobeError
from kdprobe.logs import configure_logging
from kdprobe.registry import MODELS, TASKS

log = logging.getLogger("kdprobe.cli")

#: The config file the workflow reads first (the Snakefile's `configfile:`); `--configfile` files merge over it.
BASE_CONFIG = "config/config.yaml"


def trained_model_dir(results: str | Path, task: str, kind: str) -> Path:
    """Where the workflow keeps the trained `kind` model of `task` (workflow/rules/common.smk `model_dir`)."""
    run = Path(results) / ("teacher" if kind == "teacher" else "students") / task
    return (run if kind == "teacher" else run / kind) / "model"


def _score(args: argparse.Namespace) -> int:
    from kdprobe.io import write_csv
    from kdprobe.predict.score import Sentence, format_table, score_sentences, sentence_entries
    from kdprobe.runtime import pick_device
    from kdprobe.splits import load_labels

    config = kdconfig.read_configs([BASE_CONFIG, *args.configfile])
    if args.task not in config.get("tasks", {}):
        raise ConfigError("tasks", f"task {args.task!r} is not in the config ({', '.join(config.get('tasks', {}))})")
    labels = load_labels(args.data or Path("resources/data") / args.task)
    if args.sentences:
        sentences = [Sentence(text) for text in args.sentences]
    else:
        key = f"analysis.score_sentences.{args.task}"
        entries = config.get("analysis", {}).get("score_sentences", {}).get(args.task)
        if not entries:
            raise ConfigError(key, "no sentences given on the command line and none in the config")
        sentences = sentence_entries(entries, key, labels)
    models = {kind: trained_model_dir(args.results, args.task, kind) for kind in args.models}
    max_lengths = {kind: kdconfig.model_max_length(config, args.task, kind) for kind in args.models}
    table = score_sentences(sentences, models, labels, max_lengths, pick_device(args.device))
    sys.stdout.write(format_table(table, args.models))
    if args.output:
        write_csv(args.output, table)
        log.info("wrote %s", args.output)
    return 0


def parser() -> argparse.ArgumentParser:
    """The argument parser of `kdprobe` and its subcommands."""
    top = argparse.ArgumentParser(prog="kdprobe", description="kdprobe's command line (the workflow is Snakemake's).")
    sub = top.add_subparsers(dest="command", required=True)
    score = sub.add_parser("score", help="score sentences with every trained model of a run",
                           description="Score sentences with the trained teacher and students of a run: each "
                                       "model's predicted label and its confidence (the predicted label's "
                                       "probability).")
    score.add_argument("sentences", nargs="*", metavar="SENTENCE",
                       help="sentences to score (default: the config's analysis.score_sentences.<task>)")
    score.add_argument("--task", required=True, choices=TASKS)
    score.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS), help="default: all")
    score.add_argument("--results", default="results", help="the run's results directory (default: results)")
    score.add_argument("--data", help="the task's prepared data, for labels.txt (default: resources/data/<task>)")
    score.add_argument("--configfile", action="append", default=[], metavar="FILE",
                       help=f"a config file merged over {BASE_CONFIG}, as given to snakemake (e.g. config/demo.yaml); "
                            "repeat for several")
    score.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    score.add_argument("--output", help="also write the table to this CSV")
    score.set_defaults(run=_score)
    return top


def main(argv: list[str] | None = None) -> int:
    """Run a subcommand; 1 (with the error on stderr) on a clear error about the input or the config."""
    args = parser().parse_args(argv)
    configure_logging()
    try:
        return args.run(args)
    except (KdprobeError, FileNotFoundError) as err:
        log.error("%s", err)
        return 1


if __name__ == "__main__":
    sys.exit(main())

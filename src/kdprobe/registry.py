"""The registries of the study's closed vocabularies: its tasks and its students (torch-free, so every job can ask).

Every module that needs to know something about a task asks `TASK[name]`: its display name, the metrics reported
for it (the headline metric first, which selects checkpoints), whether its test split repeats dev (GLUE hides its
test labels), and the raw data formats it is read from. Every module that needs to know something about a student
kind asks `STUDENT[kind]`: its display name, the library module that builds it (`kdprobe.students.<kind>`), its
width and depth settings (what a sweep's `width` and `depth` multiply), its default distillation loss, the poolings
its layers can be probed with, and the embedding type that reads the word2vec file by default. Adding a task or a
student touches its own module, this file and the schema only; `tests/test_registries.py` checks the schema's
enums and defaults against these tables.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    name: str
    display: str  # in tables and plots
    metrics: tuple[str, ...]  # the metrics reported beside accuracy (always computed), the headline one first
    test_is_dev: bool  # no public test labels: test.tsv repeats dev.tsv (scores on it are dev scores)
    formats: tuple[str, ...]  # the raw formats (`tasks.<task>.data.format`) its public copies come in

    @property
    def headline(self) -> str:
        """The metric that selects the best checkpoint and is reported first."""
        return self.metrics[0]


TASK = {
    "cola": Task("cola", "CoLA", ("mcc", "accuracy"), True, ("cola",)),
    "sst2": Task("sst2", "SST-2", ("accuracy",), True, ("sst2",)),
    "sara": Task("sara", "Sara", ("micro_f1", "macro_f1"), False, ("sara_thesis", "rasa_md", "rasa_yaml", "tsv")),
}
TASKS = tuple(TASK)
#: Raw formats whose test labels are hidden upstream (GLUE): without a test file, test.tsv repeats dev.tsv.
DEV_AS_TEST_FORMATS = tuple(f for task in TASK.values() if task.test_is_dev for f in task.formats)



@dataclass(frozen=True)
class StudentKind:
    name: str
    display: str  # in tables and plots
    width_keys: tuple[str, ...]  # the settings a sweep's `width` multiplier scales
    depth_key: str  # the setting a sweep's `depth` multiplier scales (and its probe-able layer count)
    default_loss: str  # `students.<kind>.loss` when a caller gives none (the schema's default)
    default_embeddings: str  # `students.<kind>.embeddings` when a caller gives none (the schema's default)
    poolings: tuple[str, ...]  # what `probe.pooling.<kind>` may name
    heads_key: str | None = None  # attention heads, scaled with `width` too (at least 1; thesis tab:sizes-bert)

    @property
    def module(self) -> str:
        return f"kdprobe.students.{self.name}"


#: BERT models (teacher, pre-trained teacher, BERT_S) pool token states these ways; LSTM_S also has `last`.
BERT_POOLINGS = ("mean", "cls", "max")
STUDENT = {
    "bert_s": StudentKind("bert_s", "BERT_S", ("hidden", "intermediate"), "layers", "soft_ce", "random",
                          BERT_POOLINGS, heads_key="heads"),
    "lstm_s": StudentKind("lstm_s", "LSTM_S", ("hidden", "fc"), "layers", "mse", "word2vec", ("last", "max", "mean")),
}
STUDENTS = tuple(STUDENT)
#: Models whose predictions and probes the workflow produces per task.
MODELS = ("teacher",) + STUDENTS
#: The probe kind of the thesis's "embed." baseline: a student's token-embedding table before training
#: (`kdprobe.students.embed`), probed as model `<student>_embed` (`EMBED_MODELS`).
EMBED_KIND = "embed"
EMBED_MODELS = {f"{k}_embed": k for k in STUDENTS}
#: The random-encoder baselines (Zhang and Bowman 2018; `kdprobe.random_models`, `probe.random_baseline`): model name
#: -> the architecture's kind, which probes it: `<student>_random` per task, `teacher_random` once (scope
#: `pretrained`).
RANDOM_MODELS = {f"{k}_random": k for k in MODELS}
#: Every model a probe job loads: the fine-tuned teacher, the pre-trained one, the students, the embed. baseline.
PROBE_KINDS = ("teacher", "pretrained") + STUDENTS + (EMBED_KIND,)
#: The poolings of every probe-able model kind.
POOLINGS = {"teacher": BERT_POOLINGS, "pretrained": BERT_POOLINGS} | {k: s.poolings for k, s in STUDENT.items()} \
    | {EMBED_KIND: ("mean", "max")}
#: Display names of every model the reports show.
MODEL_DISPLAY = {"pretrained": "teacher (pre-trained)", "teacher": "teacher (fine-tuned)",
                 **{k: s.display for k, s in STUDENT.items()},
                 **{m: f"{STUDENT[k].display} embed. (before training)" for m, k in EMBED_MODELS.items()},
                 "teacher_random": "teacher (random)",
                 **{m: f"{STUDENT[k].display} (random)" for m, k in RANDOM_MODELS.items() if k in STUDENT},
                 "gpt2": "GPT-2"}

#: Display names of the metrics (`metrics.task_metrics` keys) and their units, for tables and axis labels.
METRIC_DISPLAY = {"accuracy": "accuracy", "mcc": "MCC", "micro_f1": "micro F1", "macro_f1": "macro F1"}
METRIC_UNITS = {"accuracy": "fraction", "mcc": "-1 to 1", "micro_f1": "fraction", "macro_f1": "fraction"}

#: Metric that selects the best checkpoint and is reported first.
HEADLINE_METRIC = {name: task.headline for name, task in TASK.items()}


def task_display(task: str) -> str:
    return TASK[task].display if task in TASK else task


def reported_metrics(task: str) -> tuple[str, ...]:
    """The metrics shown for `task`, headline first; an unknown task shows accuracy."""
    return TASK[task].metrics if task in TASK else ("accuracy",)

"""The three classification tasks of the study and their headline metrics."""

from __future__ import annotations

TASKS = ("cola", "sst2", "sara")
STUDENTS = ("bert_s", "lstm_s")
#: Models whose predictions and probes the workflow produces per task.
MODELS = ("teacher",) + STUDENTS

#: Metric that selects the best checkpoint and is reported first.
HEADLINE_METRIC = {"cola": "mcc", "sst2": "accuracy", "sara": "micro_f1"}

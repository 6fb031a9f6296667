"""Issue 21 on the demo: every probe table carries both classifiers, seed intervals, the control task and its
selectivity, and the online code; the random-weight encoders are probed at every layer like the models; the
selectivity and MDL plots are drawn (config/demo.yaml: probe.seeds 2, probe.mdl true, baselines on Sara)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from kdprobe.probe.senteval import label_index, load as load_probing
from kdprobe.probe.tables import COLUMNS, read_probe_csv

pytestmark = pytest.mark.workflow

TASKS = ("cola", "sst2", "sara")
MODELS = ("teacher", "bert_s", "lstm_s")
#: where the demo probes baselines (probe.embed_baseline, probe.random_baseline: [sara])
BASELINES = {"sara": ["bert_s_embed", "lstm_s_embed", "bert_s_random", "lstm_s_random"]}
LAYERS = {"teacher": [0, 1, 2, 3, 4], "bert_s": [0, 1, 2], "lstm_s": [1], "bert_s_embed": [0], "lstm_s_embed": [0],
          "bert_s_random": [0, 1, 2], "lstm_s_random": [1], "teacher_random": [0, 1, 2, 3, 4]}


def _tables(demo):
    yield "pretrained", "teacher", demo / "results/probe/pretrained/teacher.csv"
    yield "pretrained", "teacher_random", demo / "results/probe/pretrained/teacher_random.csv"
    for task in TASKS:
        for model in [*MODELS, *BASELINES.get(task, [])]:
            yield task, model, demo / f"results/probe/{task}/{model}.csv"


def test_every_probe_row_has_classifiers_seed_intervals_controls_and_online_code(demo):
    n_classes = {}
    for scope, model, path in _tables(demo):
        table = read_probe_csv(path)
        assert list(table.columns) == COLUMNS, path
        # probe.layers: the pre-trained teacher [1, 4]; the random teacher is probed at the teacher's layers
        layers = [1, 4] if (scope, model) == ("pretrained", "teacher") else LAYERS[model]
        assert sorted(table.layer.unique()) == layers, path
        for task, rows in table.groupby("probe_task"):
            # WordContent is probed by logistic regression only (probe.word_content_logreg), the rest by both
            expected = {"linear"} if task == "word_content" else {"mlp", "linear"}
            assert set(rows.classifier) == expected, (path, task)
            if task not in n_classes:
                n_classes[task] = len(label_index(load_probing(demo / f"resources/demo/probing/{task}.txt")))
            assert np.allclose(rows.uniform_bits, rows.n_train * math.log2(n_classes[task])), (path, task)
        assert (table.seeds == 2).all()
        for row in table.itertuples():
            test = [float(v) for v in row.test_acc_by_seed.split(";")]
            control = [float(v) for v in row.control_acc_by_seed.split(";")]
            assert len(test) == len(control) == 2
            # per-seed cells hold 6 decimals
            assert row.test_acc == pytest.approx(np.mean(test), abs=1e-6)
            assert row.control_acc == pytest.approx(np.mean(control), abs=1e-6)
            assert row.test_ci_low <= row.test_acc <= row.test_ci_high
            assert row.selectivity_ci_low <= row.selectivity <= row.selectivity_ci_high
            assert row.selectivity == pytest.approx(row.test_acc - row.control_acc)
            assert 0 < row.mdl_bits and row.compression == pytest.approx(row.uniform_bits / row.mdl_bits)


@pytest.mark.parametrize("task", TASKS)
def test_the_teacher_finds_sentence_length_beyond_its_control(demo, task):
    """The control of sentence_length is independent of length (kdprobe.probe.controls): where the teacher's probe
    finds the length, its accuracy stands well above the control's."""
    table = read_probe_csv(demo / f"results/probe/{task}/teacher.csv")
    rows = table[(table.probe_task == "sentence_length") & (table.classifier == "mlp")]
    best = rows.loc[rows.test_acc.idxmax()]
    assert best.test_acc > best.majority_acc + 0.2 and best.selectivity > 0.15, best.to_dict()


def test_random_encoders_are_probed_as_their_architecture(demo):
    """The random teacher once (scope pretrained) and the random students where probe.random_baseline asks, built
    by their own rules into results/random/, beside the models (their tables name them)."""
    assert (demo / "results/random/teacher/config.json").is_file()
    for student in ("bert_s", "lstm_s"):
        assert (demo / f"results/random/sara/{student}/student.json").is_file()
        assert not (demo / f"results/probe/cola/{student}_random.csv").exists()  # [sara] only
    assert set(pd.read_csv(demo / "results/probe/pretrained/teacher_random.csv").model) == {"teacher_random"}


@pytest.mark.parametrize("task", TASKS)
def test_selectivity_and_online_code_are_plotted(demo, task):
    for suffix in (".selectivity", ".mdl"):
        data = (demo / f"results/plots/probe/{task}{suffix}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(data[16:20], "big") >= 600

"""Task metrics against scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from kdprobe.metrics import accuracy, f1_scores, mcc, task_metrics


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n_classes", [2, 3, 57])
def test_metrics_match_scikit_learn(seed, n_classes):
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, n_classes, 300)
    pred = np.where(rng.random(300) < 0.6, gold, rng.integers(0, n_classes, 300))
    assert accuracy(gold, pred) == pytest.approx(accuracy_score(gold, pred))
    assert mcc(gold, pred) == pytest.approx(matthews_corrcoef(gold, pred))
    micro, macro = f1_scores(gold, pred)
    assert micro == pytest.approx(f1_score(gold, pred, average="micro"))
    assert macro == pytest.approx(f1_score(gold, pred, average="macro"))


def test_string_labels_work_too():
    gold = np.array(["greet", "bye", "greet", "affirm"])
    pred = np.array(["greet", "greet", "greet", "affirm"])
    assert f1_scores(gold, pred)[1] == pytest.approx(f1_score(gold, pred, average="macro"))


def test_mcc_is_zero_when_undefined():
    gold = np.array([0, 1, 0, 1])
    assert mcc(gold, np.zeros(4, dtype=int)) == 0.0 == matthews_corrcoef(gold, np.zeros(4, dtype=int))


def test_each_task_reports_its_headline_metric():
    gold, pred = np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0])
    assert set(task_metrics("cola", gold, pred)) == {"accuracy", "mcc"}
    assert set(task_metrics("sst2", gold, pred)) == {"accuracy"}
    sara = task_metrics("sara", gold, pred)
    assert set(sara) == {"accuracy", "micro_f1", "macro_f1"} and sara["micro_f1"] == sara["accuracy"]

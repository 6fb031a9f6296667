"""Prediction analysis (kdprobe.report.predictions, kdprobe.report.analysis): ECE by hand, agreement, unique and shared mistakes, top-k, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kdprobe.report.analysis import analyse
from kdprobe.report.calibration import bin_index, expected_calibration_error, reliability_table
from kdprobe.report.predictions import (
    OUTPUTS, agreement, agreement_matrix, mistake_sets, model_summary, read_predictions, top_mistakes,
    wrong_sentences,
)
from kdprobe.errors import InputError


def frame(gold, pred, confidence, sentences=None):
    n = len(gold)
    return pd.DataFrame({"sentence": sentences or [f"s{i}" for i in range(n)], "gold": gold, "pred": pred,
                         "confidence": confidence})


# gold:          a  a  b  b  a  b
#   teacher:     a  a  b  a  a  a   wrong at 3, 5
#   bert_s:      a  b  b  a  a  b   wrong at 1, 3
#   lstm_s:      b  a  b  a  b  b   wrong at 0, 3, 4
GOLD = list("aabbab")
FRAMES = {
    "teacher": frame(GOLD, list("aabaaa"), [0.9, 0.8, 0.7, 0.95, 0.6, 0.55]),
    "bert_s": frame(GOLD, list("abbaab"), [0.9, 0.65, 0.7, 0.85, 0.6, 0.8]),
    "lstm_s": frame(GOLD, list("bababb"), [0.7, 0.9, 0.6, 0.75, 0.99, 0.6]),
}


def test_ece_matches_a_hand_computed_case():
    confidence = np.array([0.95, 0.85, 0.65, 0.62, 0.55])
    correct = np.array([True, False, True, False, True])
    # 5 bins: (0.8, 1]: conf 0.9, acc 0.5, weight 2/5 -> 0.16; (0.6, 0.8]: conf 0.635, acc 0.5, 2/5 -> 0.054;
    # (0.4, 0.6]: conf 0.55, acc 1, 1/5 -> 0.09; total 0.304
    assert expected_calibration_error(confidence, correct, 5) == pytest.approx(0.304)
    table = reliability_table(confidence, correct, 5)
    assert table["count"].tolist() == [0, 0, 1, 2, 2]
    assert table["mean_confidence"].iloc[3] == pytest.approx(0.635) and table["accuracy"].iloc[4] == 0.5
    assert table["accuracy"].iloc[:2].isna().all()


def test_ece_is_zero_when_confidence_equals_accuracy_and_one_at_worst():
    confidence = np.full(10, 0.7)
    correct = np.array([True] * 7 + [False] * 3)
    assert expected_calibration_error(confidence, correct, 10) == pytest.approx(0.0)
    assert expected_calibration_error(np.ones(4), np.zeros(4, bool), 10) == pytest.approx(1.0)


def test_bins_are_right_closed_with_zero_in_the_first():
    assert bin_index(np.array([0.0, 0.2, 0.2000001, 0.6, 0.61, 1.0]), 5).tolist() == [0, 0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        bin_index(np.array([1.2]), 5)


def test_agreement_is_symmetric_with_ones_on_the_diagonal():
    table = agreement(FRAMES)
    matrix = agreement_matrix(table, "agreement")
    np.testing.assert_allclose(matrix.to_numpy(), matrix.to_numpy().T)
    np.testing.assert_allclose(np.diag(matrix.to_numpy()), 1.0)
    # teacher aabaaa vs bert_s abbaab: same at 0, 2, 3, 4
    assert matrix.loc["teacher", "bert_s"] == pytest.approx(4 / 6)
    both = agreement_matrix(table, "both_wrong")
    assert both.loc["teacher", "teacher"] == pytest.approx(2 / 6)  # the error rate
    assert both.loc["teacher", "lstm_s"] == pytest.approx(1 / 6)  # row 3 only
    overlap = agreement_matrix(table, "mistake_overlap")
    assert overlap.loc["bert_s", "lstm_s"] == pytest.approx(1 / 4)  # {3} of {0, 1, 3, 4}


def test_unique_and_shared_mistakes():
    sets = mistake_sets(FRAMES).set_index("wrong_by")["sentences"]
    assert sets["teacher"] == 1  # row 5
    assert sets["bert_s"] == 1  # row 1
    assert sets["lstm_s"] == 2  # rows 0, 4
    assert sets["teacher+bert_s+lstm_s"] == 1  # row 3
    assert sets["teacher+bert_s"] == sets["bert_s+lstm_s"] == sets["teacher+lstm_s"] == 0
    assert len(sets) == 7
    wrong = wrong_sentences(FRAMES)
    assert wrong["row"].tolist() == [1, 2, 4, 5, 6]
    assert wrong.set_index("row").loc[4, "wrong_by"] == "teacher+bert_s+lstm_s"
    assert wrong.set_index("row").loc[2, "pred_bert_s"] == "b"
    summary = model_summary(FRAMES, 10).set_index("model")
    assert summary.loc["lstm_s", "unique_mistakes"] == 2 and summary.loc["lstm_s", "mistakes"] == 3
    assert summary.loc["teacher", "accuracy"] == pytest.approx(4 / 6)
    assert summary["ece"].between(0, 1).all()


def test_top_k_mistakes_are_ordered_by_confidence():
    table = top_mistakes(FRAMES, 2)
    lstm_most = table[(table.model == "lstm_s") & (table.which == "most_confident")]
    assert lstm_most["confidence"].tolist() == [0.99, 0.75] and lstm_most["rank"].tolist() == [1, 2]
    assert lstm_most["row"].tolist() == [5, 4]
    lstm_least = table[(table.model == "lstm_s") & (table.which == "least_confident")]
    assert lstm_least["confidence"].tolist() == [0.7, 0.75]
    # a model with fewer mistakes than k lists all of them
    assert len(top_mistakes(FRAMES, 5).query("model == 'teacher' and which == 'most_confident'")) == 2
    assert (table["pred"] != table["gold"]).all()


def _write(tmp_path, frames):
    paths = {}
    for model, f in frames.items():
        paths[model] = tmp_path / f"{model}.tsv"
        f.to_csv(paths[model], sep="\t", index=False)
    return paths


def test_analyse_writes_every_output(tmp_path):
    paths = _write(tmp_path, FRAMES)
    outputs = {key: tmp_path / "out" / f"{key}.{'png' if key.endswith('plot') else 'csv'}" for key in OUTPUTS}
    outputs["summary"] = tmp_path / "out" / "summary.md"
    tables = analyse(paths, "cola", {"top_k": 3, "calibration_bins": 10, "histogram_bins": 20}, outputs)
    for key, path in outputs.items():
        assert path.stat().st_size > 0, key
    assert outputs["confidence_plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = outputs["summary"].read_text()
    assert "# Prediction analysis: cola" in text and "| lstm_s |" in text
    assert pd.read_csv(outputs["models"])["ece"].tolist() == pytest.approx(tables["models"]["ece"].tolist())
    assert len(list((tmp_path / "out").iterdir())) == len(OUTPUTS)  # no temporary files left behind


def test_prediction_files_must_share_the_dev_set(tmp_path):
    other = dict(FRAMES, bert_s=frame(list("aabbaa"), list("abbaab"), [0.9] * 6))
    with pytest.raises(InputError, match=r"bert_s\.tsv:7: .*not the same dev set"):
        read_predictions(_write(tmp_path, other))
    short = dict(FRAMES, bert_s=FRAMES["bert_s"].iloc[:4])
    with pytest.raises(InputError, match="4 rows"):
        read_predictions(_write(tmp_path, short))


def test_bad_confidence_and_missing_columns_name_the_file(tmp_path):
    bad = dict(FRAMES, teacher=FRAMES["teacher"].assign(confidence=[0.9, 1.5, 0.7, 0.9, 0.6, 0.5]))
    with pytest.raises(InputError, match=r"teacher\.tsv:3: confidence"):
        read_predictions(_write(tmp_path, bad))
    missing = dict(FRAMES, teacher=FRAMES["teacher"].drop(columns=["confidence"]))
    with pytest.raises(InputError, match=r"teacher\.tsv: missing columns \['confidence'\]"):
        read_predictions(_write(tmp_path, missing))

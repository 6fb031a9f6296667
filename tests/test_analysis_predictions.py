"""Prediction analysis (kdprobe.report.predictions, kdprobe.report.analysis): ECE by hand, agreement, unique and
shared mistakes, top-k mistakes and hits, their overlap, confidence correlation, class distribution, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kdprobe.report.analysis import analyse
from kdprobe.report.calibration import bin_index, expected_calibration_error, reliability_table
from kdprobe.report.predictions import (
    OUTPUTS, agreement, agreement_matrix, class_distribution, confidence_correlation, mistake_sets, model_summary,
    overlap, overlap_matrix, read_predictions, summary_markdown, top_predictions, wrong_sentences,
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
    table = top_predictions(FRAMES, 2, "mistakes")
    lstm_most = table[(table.model == "lstm_s") & (table.which == "most_confident")]
    assert lstm_most["confidence"].tolist() == [0.99, 0.75] and lstm_most["rank"].tolist() == [1, 2]
    assert lstm_most["row"].tolist() == [5, 4]
    lstm_least = table[(table.model == "lstm_s") & (table.which == "least_confident")]
    assert lstm_least["confidence"].tolist() == [0.7, 0.75]
    # a model with fewer mistakes than k lists all of them
    assert len(top_predictions(FRAMES, 5, "mistakes").query("model == 'teacher' and which == 'most_confident'")) == 2
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
    data = tmp_path / "data"
    data.mkdir()
    (data / "labels.txt").write_text("a\nb\n")
    for split in ("train", "dev", "test"):
        FRAMES["teacher"][["sentence", "gold"]].rename(columns={"gold": "label"}).to_csv(
            data / f"{split}.tsv", sep="\t", index=False)
    tables = analyse(paths, "cola", {"top_k": 3, "calibration_bins": 10, "histogram_bins": 20}, outputs, data)
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


def test_top_k_hits_are_correct_predictions_ordered_by_confidence():
    table = top_predictions(FRAMES, 2, "hits")
    assert (table["pred"] == table["gold"]).all()
    teacher_most = table[(table.model == "teacher") & (table.which == "most_confident")]
    assert teacher_most["row"].tolist() == [1, 2] and teacher_most["confidence"].tolist() == [0.9, 0.8]
    teacher_least = table[(table.model == "teacher") & (table.which == "least_confident")]
    assert teacher_least["confidence"].tolist() == [0.6, 0.7]
    with pytest.raises(ValueError, match="outcome"):
        top_predictions(FRAMES, 2, "guesses")


def test_overlap_is_a_share_of_the_first_models_hits_and_mistakes():
    table = overlap(FRAMES)
    assert len(table) == 9  # ordered pairs, each model with itself included
    row = table[(table.model_1 == "lstm_s") & (table.model_2 == "teacher")].iloc[0]
    # lstm_s wrong at 0, 3, 4; teacher at 3, 5: 1 of lstm_s's 3 mistakes, 2 of its 3 hits (rows 1, 2 of 1, 2, 5)
    assert (row.mistakes_1, row.mistakes_shared, row.mistakes_share) == (3, 1, pytest.approx(1 / 3))
    assert (row.hits_1, row.hits_shared, row.hits_share) == (3, 2, pytest.approx(2 / 3))
    back = table[(table.model_1 == "teacher") & (table.model_2 == "lstm_s")].iloc[0]
    assert back.mistakes_share == pytest.approx(1 / 2)  # not symmetric: a share of M1's
    matrix = overlap_matrix(table, "mistakes_share")
    assert list(matrix.index) == list(FRAMES) and np.allclose(np.diag(matrix.to_numpy()), 1.0)
    perfect = {"a": frame(GOLD, GOLD, [0.9] * 6), "b": FRAMES["teacher"]}
    assert np.isnan(overlap(perfect).query("model_1 == 'a' and model_2 == 'b'").mistakes_share.iloc[0])


def test_confidence_correlation_with_significance():
    n = 40
    x = np.linspace(0.5, 1.0, n)
    rng = np.random.default_rng(0)
    frames = {"a": frame(["a"] * n, ["a"] * n, list(x)),
              "b": frame(["a"] * n, ["a"] * n, list(np.clip(x + rng.normal(0, 0.01, n), 0, 1))),
              "c": frame(["a"] * n, ["a"] * n, list(rng.uniform(0.5, 1.0, n))),
              "d": frame(["a"] * n, ["a"] * n, [0.7] * n)}
    table = confidence_correlation(frames).set_index(["model_a", "model_b"])
    assert len(table) == 6  # unordered pairs of different models
    assert table.loc[("a", "b"), "r"] > 0.99 and table.loc[("a", "b"), "significant"]
    assert table.loc[("a", "b"), "p_value"] < 1e-10
    assert not table.loc[("a", "c"), "significant"] and table.loc[("a", "c"), "p_value"] > 0.05
    assert np.isnan(table.loc[("a", "d"), "r"]) and not table.loc[("a", "d"), "significant"]  # constant: undefined
    text = summary_markdown("cola", {"models": model_summary(frames, 5), "mistake_sets": mistake_sets(frames),
                                     "agreement": agreement(frames), "overlap": overlap(frames),
                                     "correlation": confidence_correlation(frames),
                                     "mistakes": top_predictions(frames, 3, "mistakes"),
                                     "hits": top_predictions(frames, 3, "hits")}, {"calibration_bins": 5})
    r = table.loc[("a", "b"), "r"]
    assert f"| a / b | {r:.3f}* |" in text and f"| a / c | {table.loc[('a', 'c'), 'r']:.3f} |" in text
    assert "| a / d | n/a |" in text
    assert "## Pearson correlation of the confidences (* p < 0.05)" in text and "## Most confident hits" in text


def test_average_confidence_has_its_standard_deviation():
    row = model_summary(FRAMES, 10).set_index("model").loc["teacher"]
    conf = np.array([0.9, 0.8, 0.7, 0.95, 0.6, 0.55])
    assert row["mean_confidence"] == pytest.approx(conf.mean()) and row["std_confidence"] == pytest.approx(conf.std(ddof=1))
    assert row["std_confidence_wrong"] == pytest.approx(np.array([0.95, 0.55]).std(ddof=1))
    assert row["mean_confidence_correct"] == pytest.approx(np.array([0.9, 0.8, 0.7, 0.6]).mean())


def test_class_distribution_per_split_counts_every_label_and_marks_a_repeated_split(tmp_path):
    (tmp_path / "train.tsv").write_text("sentence\tlabel\nx\ta\ny\ta\nz\tb\n")
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\nu\ta\n")
    (tmp_path / "test.tsv").write_text("sentence\tlabel\nu\ta\n")
    table = class_distribution({s: tmp_path / f"{s}.tsv" for s in ("train", "dev", "test")}, ["a", "b", "c"])
    train = table[table.split == "train"].set_index("label")
    assert train["count"].tolist() == [2, 1, 0] and train["share"].tolist() == pytest.approx([2 / 3, 1 / 3, 0])
    assert set(table[table.split == "test"]["repeats"]) == {"dev"} and set(train["repeats"]) == {""}
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\nu\tq\n")
    with pytest.raises(InputError, match="dev.tsv"):
        class_distribution({"dev": tmp_path / "dev.tsv"}, ["a", "b"])

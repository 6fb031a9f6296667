"""kdprobe.report.probing_stats on hand-computed examples: per-seed cells, intervals, paired differences over seeds,
Tenney et al.'s expected layer and the per-model summary of a probe table with seeds and controls."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from kdprobe.report.probing_stats import (SUMMARY_COLUMNS, expected_layer, interval, paired_difference,
                                          probing_summary, seed_values)

T975_2 = 4.302652729749462  # the 0.975 quantile of Student's t with 2 degrees of freedom


def test_seed_values_reads_joined_single_and_empty_cells():
    np.testing.assert_array_equal(seed_values("0.810000;0.790000;0.8"), [0.81, 0.79, 0.8])
    np.testing.assert_array_equal(seed_values(0.75), [0.75])  # pandas reads a one-seed column as floats
    assert seed_values(float("nan")).size == 0 and seed_values("").size == 0 and seed_values(None).size == 0
    with pytest.raises(ValueError, match="'0.8;x'"):
        seed_values("0.8;x")
    with pytest.raises(ValueError, match="not finite"):
        seed_values("0.8;nan")


def test_interval_is_the_t_interval_of_the_mean():
    mean, std, low, high = interval([0.7, 0.8, 0.9])
    assert mean == pytest.approx(0.8) and std == pytest.approx(0.1)
    half = T975_2 * 0.1 / math.sqrt(3)
    assert (low, high) == pytest.approx((0.8 - half, 0.8 + half))
    mean, std, low, high = interval([0.6])
    assert mean == 0.6 and all(math.isnan(v) for v in (std, low, high))
    assert interval([0.5, 0.5]) == (0.5, 0.0, 0.5, 0.5)  # no spread: the interval is the mean


def test_paired_difference_pairs_seed_i_with_seed_i():
    # differences 0.1, 0.2, 0.3: mean 0.2, sd 0.1, t = 0.2 / (0.1 / sqrt 3) = 3.4641 on 2 df: p = 0.07418
    diff, low, high, p = paired_difference([0.8, 0.9, 1.0], [0.7, 0.7, 0.7])
    assert diff == pytest.approx(0.2)
    half = T975_2 * 0.1 / math.sqrt(3)
    assert (low, high) == pytest.approx((0.2 - half, 0.2 + half))
    assert p == pytest.approx(0.07418, abs=1e-5) and not p < 0.05
    # a fourth seed of `a` has no partner: left out
    assert paired_difference([0.8, 0.9, 1.0, 0.0], [0.7, 0.7, 0.7])[0] == pytest.approx(0.2)
    diff, low, high, p = paired_difference([0.9], [0.7])  # one paired seed: no interval, no test
    assert diff == pytest.approx(0.2) and math.isnan(low) and math.isnan(high) and math.isnan(p)
    assert all(math.isnan(v) for v in paired_difference([], [0.7]))


def test_expected_layer_on_a_hand_example():
    layers, scores = [0, 1, 2, 3, 4], [0.5, 0.6, 0.8, 0.7, 0.9]
    # running maximum 0.5, 0.6, 0.8, 0.8, 0.9: d = 0.1, 0.2, 0, 0.1 at layers 1-4
    # E = (1*0.1 + 2*0.2 + 3*0 + 4*0.1) / 0.4 = 0.9 / 0.4 = 2.25
    assert expected_layer(layers, scores) == pytest.approx(2.25)
    # as given: d = 0.1, 0.2, -0.1, 0.2: E = (0.1 + 0.4 - 0.3 + 0.8) / 0.4 = 2.5
    assert expected_layer(layers, scores, cumulative=False) == pytest.approx(2.5)
    # the order of the rows does not matter; the first layer probed (here 2) is the reference
    assert expected_layer([6, 2, 4], [0.9, 0.5, 0.7]) == pytest.approx((4 * 0.2 + 6 * 0.2) / 0.4)
    # the docstring's example: as given, far outside the layers; by the running maximum, layer 1
    assert expected_layer([0, 1, 2], [0.5, 0.9, 0.51], cumulative=False) == pytest.approx(-38)
    assert expected_layer([0, 1, 2], [0.5, 0.9, 0.51]) == pytest.approx(1)
    assert math.isnan(expected_layer([0, 1, 2], [0.9, 0.8, 0.7]))  # no gain over the first layer
    assert math.isnan(expected_layer([3], [0.9]))


def _row(model, layer, acc_by_seed, control_by_seed=None, scope="cola", pooling="mean", classifier="mlp",
         depth=4, task="bigram_shift"):
    mean, _, low, high = interval(acc_by_seed)
    row = {"scope": scope, "model": model, "probe_task": task, "layer": layer, "pooling": pooling,
           "classifier": classifier, "seeds": len(acc_by_seed), "test_acc": mean, "test_ci_low": low,
           "test_ci_high": high, "majority_acc": 0.5, "depth": depth, "position": layer / depth if depth else 0.0,
           "test_acc_by_seed": ";".join(f"{v:.6f}" for v in acc_by_seed)}
    if control_by_seed is None:
        return row | {"control_acc": math.nan, "selectivity": math.nan, "selectivity_ci_low": math.nan,
                      "selectivity_ci_high": math.nan}
    sel = interval([a - c for a, c in zip(acc_by_seed, control_by_seed)])
    return row | {"control_acc": float(np.mean(control_by_seed)), "selectivity": sel[0],
                  "selectivity_ci_low": sel[2], "selectivity_ci_high": sel[3]}


def test_probing_summary_best_layer_expected_layer_and_difference_from_the_teacher():
    rows = [
        # the teacher: best at layer 2 (0.9), selectivity 0.4 there, 0.45 at layer 3
        _row("teacher", 1, [0.70, 0.70, 0.70], [0.5, 0.5, 0.5]),
        _row("teacher", 2, [0.88, 0.90, 0.92], [0.5, 0.5, 0.5]),
        _row("teacher", 3, [0.85, 0.85, 0.85], [0.4, 0.4, 0.4]),
        _row("teacher", 2, [0.60, 0.60, 0.60], [0.5, 0.5, 0.5], pooling="cls"),
        # BERT_S: 0.8 at layers 1 and 2 (ties: the lower), 0.1 under the teacher on every seed
        _row("bert_s", 1, [0.78, 0.80, 0.82], [0.6, 0.6, 0.6]),
        _row("bert_s", 2, [0.78, 0.80, 0.82], [0.7, 0.7, 0.7]),
        # a random BERT_S: 0.5 under on average, seed differences -0.38, -0.40, -0.42
        _row("bert_s_random", 1, [0.50, 0.50, 0.50], [0.5, 0.5, 0.5]),
        # the linear probe of the teacher, without seeds to pair with BERT_S's
        _row("teacher", 2, [0.75], classifier="linear"),
        _row("bert_s", 2, [0.70], classifier="linear"),
    ]
    summary = probing_summary(pd.DataFrame(rows).sample(frac=1, random_state=0))
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert list(zip(summary.model, summary.classifier)) == [("teacher", "mlp"), ("teacher", "linear"),
                                                            ("bert_s", "mlp"), ("bert_s", "linear"),
                                                            ("bert_s_random", "mlp")]
    s = summary.set_index(["model", "classifier"])
    teacher, student, random = s.loc[("teacher", "mlp")], s.loc[("bert_s", "mlp")], s.loc[("bert_s_random", "mlp")]
    assert (teacher.layer, teacher.pooling, teacher.position) == (2, "mean", 0.5)
    assert teacher.test_acc == pytest.approx(0.9) and teacher.selectivity == pytest.approx(0.4)
    assert (teacher.selectivity_layer, teacher.selectivity_best) == (3, pytest.approx(0.45))
    # mean pooling, layers 1-3: running max 0.7, 0.9, 0.9: all of the gain at layer 2
    assert teacher.expected_layer == pytest.approx(2) and teacher.expected_position == pytest.approx(0.5)
    assert teacher.reference == "teacher" and math.isnan(teacher.reference_diff) and not teacher.significant
    assert student.layer == 1 and student.reference == "teacher"
    assert student.reference_diff == pytest.approx(-0.1) and student.p_value < 1e-6 and student.significant
    assert student.selectivity_share == pytest.approx(0.2 / 0.4)
    assert random.reference_diff == pytest.approx(-0.4) and random.significant
    assert random.reference_diff_ci_low == pytest.approx(-0.4 - T975_2 * 0.02 / math.sqrt(3))
    assert random.selectivity_share == 0 and math.isnan(random.expected_layer)
    linear = s.loc[("bert_s", "linear")]
    assert linear.reference_diff == pytest.approx(-0.05) and math.isnan(linear.p_value) and not linear.significant
    assert math.isnan(linear.selectivity_share)  # no control: NaN


def test_probing_summary_references_the_pretrained_teacher_in_its_scope_and_nan_without_a_positive_one():
    rows = [_row("pretrained", 2, [0.80, 0.82, 0.84], [0.8, 0.8, 0.8], scope="pretrained"),  # selectivity 0.02
            _row("teacher_random", 2, [0.60, 0.62, 0.70], [0.5, 0.5, 0.5], scope="pretrained"),
            _row("lstm_s", 1, [0.6, 0.6, 0.6], depth=1)]  # scope cola without its teacher
    s = probing_summary(pd.DataFrame(rows)).set_index("model")
    assert s.loc["teacher_random", "reference"] == "pretrained"
    assert s.loc["teacher_random", "reference_diff"] == pytest.approx(-0.18)
    assert s.loc["teacher_random", "selectivity_share"] == pytest.approx(0.14 / 0.02)
    assert s.loc["lstm_s", "reference"] == "" and math.isnan(s.loc["lstm_s", "reference_diff"])
    rows[0] = _row("pretrained", 2, [0.80, 0.82, 0.84], [0.9, 0.9, 0.9], scope="pretrained")  # selectivity < 0
    assert math.isnan(probing_summary(pd.DataFrame(rows)).set_index("model").loc["teacher_random",
                                                                                 "selectivity_share"])

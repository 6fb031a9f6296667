"""Probing on a common depth axis (kdprobe.report.probing) and the plots of kdprobe.report: each figure's axes carry
labels with units, titles and legends, and the PNG files are written."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kdprobe.report.curves import read_curve
from kdprobe.report.predictions import agreement, calibration, model_summary
from kdprobe.report.probing import layer_position, model_depth, read_probe_table, read_probe_tables
from kdprobe.report.probing_stats import SUMMARY_COLUMNS, probing_summary
from kdprobe.errors import InputError
from kdprobe.report import curve_plots as curves, prediction_plots as predictions, probing_plots as probing
from kdprobe.report.figures import model_name, save_figure

PNG = b"\x89PNG\r\n\x1a\n"
PROBE_TASKS = ("sentence_length", "bigram_shift", "odd_man_out")
MAJORITY = {"sentence_length": 0.2, "bigram_shift": 0.5, "odd_man_out": 0.5, "tree_depth": 0.18, "word_content": 0.005}


def labelled(ax) -> bool:
    """Both axes labelled, the x and y labels each with a unit in parentheses or a count, and a title."""
    return bool(ax.get_xlabel()) and "(" in ax.get_ylabel() and bool(ax.get_title())


# ------------------------------------------------------------------------------------------------ probing
def probe_csv(path, model, layers, poolings=("mean",), acc=lambda layer: 0.5 + 0.01 * layer,
              classifiers=("mlp", "linear"), control=True, mdl=False):
    """A probe table (`kdprobe.probe.tables.COLUMNS`) of three seeds at acc - 0.01, acc, acc + 0.01 (the linear
    probe 0.05 lower), the control task at 0.2 + acc / 2 (selectivity acc / 2 - 0.2 on every seed; NaN without
    `control`), MDL compression 100 acc / 60 with `mdl`."""
    rows = []
    for task in PROBE_TASKS:
        for layer in layers:
            for pooling in poolings:
                for classifier in classifiers:
                    mean = acc(layer) - (0.05 if classifier == "linear" else 0)
                    seeds = [mean - 0.01, mean, mean + 0.01]
                    half = 4.302653 * 0.01 / 3 ** 0.5
                    gap = mean / 2 - 0.2
                    sel = {"control_acc": mean - gap, "control_std": 0.01, "selectivity": gap,
                           "selectivity_ci_low": gap - half / 2, "selectivity_ci_high": gap + half / 2,
                           "control_acc_by_seed": ";".join(f"{v - gap:.6f}" for v in seeds)} if control else {
                        "control_acc": np.nan, "control_std": np.nan, "selectivity": np.nan,
                        "selectivity_ci_low": np.nan, "selectivity_ci_high": np.nan, "control_acc_by_seed": ""}
                    rows.append({
                        "model": model, "probe_task": task, "layer": layer, "pooling": pooling,
                        "classifier": classifier, "seeds": 3, "test_acc": mean, "test_std": 0.01,
                        "test_ci_low": mean - half, "test_ci_high": mean + half, "dev_acc": 0.5, **sel,
                        "hidden": 50 if classifier == "mlp" else 0, "dropout": 0.0, "weight_decay": 1e-5,
                        "epochs": 4, "majority_acc": MAJORITY[task],
                        "n_train": 100, "n_dev": 10, "n_test": 10,
                        "test_acc_by_seed": ";".join(f"{v:.6f}" for v in seeds),
                        "mdl_bits": 60.0 / mean if mdl else np.nan, "uniform_bits": 100.0 if mdl else np.nan,
                        "compression": 100.0 * mean / 60.0 if mdl else np.nan})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture
def models(tmp_path):
    """A 24-layer teacher directory (config.json) and a 5-layer BERT_S and 1-layer LSTM_S (student.json)."""
    dirs = {}
    for name, file, spec in [("teacher", "config.json", {"num_hidden_layers": 24}),
                             ("bert_s", "student.json", {"kind": "bert_s", "layers": 5}),
                             ("lstm_s", "student.json", {"kind": "lstm_s", "layers": 1})]:
        dirs[name] = tmp_path / "models" / name
        dirs[name].mkdir(parents=True)
        (dirs[name] / file).write_text(json.dumps(spec))
    return dirs


def test_layer_position_uses_the_models_depth_not_the_probed_layers(tmp_path, models):
    assert model_depth("teacher", models["teacher"]) == 24
    assert model_depth("pretrained", models["teacher"]) == 24
    assert model_depth("bert_s", models["bert_s"]) == 5
    assert model_depth("lstm_s", models["lstm_s"]) == 1
    # the teacher probed at layers 6 and 12 only: positions are 6/24 and 12/24, not 6/12 and 12/12
    table = read_probe_table(probe_csv(tmp_path / "t.csv", "teacher", [6, 12]), "cola", 24)
    assert sorted(table["position"].unique()) == [0.25, 0.5]
    assert layer_position(0, 5) == 0 and layer_position(5, 5) == 1 and layer_position(3, 24) == 0.125
    with pytest.raises(InputError, match="layer 6 outside 0..5"):
        read_probe_table(probe_csv(tmp_path / "b.csv", "bert_s", [1, 6]), "cola", 5)
    with pytest.raises(InputError, match="student.json"):
        model_depth("bert_s", models["teacher"])
    old = pd.read_csv(probe_csv(tmp_path / "old.csv", "teacher", [6])).drop(columns=["classifier", "test_ci_low"])
    old.to_csv(tmp_path / "old.csv", index=False)  # a table of before probing with seeds and controls
    with pytest.raises(InputError, match=r"old.csv: missing columns \['classifier', 'test_ci_low'\]"):
        read_probe_table(tmp_path / "old.csv", "cola", 24)


def test_the_summary_picks_the_best_test_accuracy_lowest_layer_on_ties(tmp_path):
    table = pd.concat([
        read_probe_table(probe_csv(tmp_path / "t.csv", "teacher", [1, 2, 3, 4], acc=lambda l: [0, .6, .8, .8, .7][l]),
                         "cola", 4),
        read_probe_table(probe_csv(tmp_path / "l.csv", "lstm_s", [1], ("last", "max"), acc=lambda l: 0.55),
                         "cola", 1),
    ])
    summary = probing_summary(table)
    best = summary[summary["classifier"] == "mlp"].set_index(["model", "probe_task"])
    assert best.loc[("teacher", "bigram_shift"), "layer"] == 2  # 0.8 at layers 2 and 3: the lower
    assert best.loc[("teacher", "bigram_shift"), "position"] == 0.5
    assert best.loc[("teacher", "sentence_length"), "above_majority"] == pytest.approx(0.6)
    assert best.loc[("lstm_s", "odd_man_out"), "pooling"] == "last"  # the first pooling on ties
    assert best.loc[("lstm_s", "odd_man_out"), "reference_diff"] == pytest.approx(0.55 - 0.8)
    assert len(best) == 2 * len(PROBE_TASKS) and len(summary) == 2 * len(best)  # mlp and linear
    linear = summary[summary["classifier"] == "linear"].set_index(["model", "probe_task"])
    assert linear.loc[("teacher", "bigram_shift"), "test_acc"] == pytest.approx(0.75)


def test_the_pretrained_scope_keeps_the_random_teachers_name(tmp_path, models):
    table = read_probe_tables([("pretrained", probe_csv(tmp_path / "p.csv", "teacher", [1]), 24),
                               ("pretrained", probe_csv(tmp_path / "r.csv", "teacher_random", [1]), 24)])
    assert list(pd.unique(table["model"])) == ["pretrained", "teacher_random"]


def test_probing_plots_have_labelled_panels_a_legend_and_write_pngs(tmp_path, models):
    entries = [("pretrained", "pretrained", probe_csv(tmp_path / "p.csv", "teacher", [1, 12, 24]), models["teacher"],
                []),
               ("cola", "teacher", probe_csv(tmp_path / "t.csv", "teacher", [1, 12, 24]), models["teacher"], []),
               ("cola", "bert_s", probe_csv(tmp_path / "b.csv", "bert_s", [1, 2, 3, 4, 5]), models["bert_s"], []),
               ("cola", "lstm_s", probe_csv(tmp_path / "l.csv", "lstm_s", [1], ("last", "max")), models["lstm_s"], [])]
    table = probing.plot_task(entries, "cola", tmp_path / "cola.png")
    assert (tmp_path / "cola.png").read_bytes()[:8] == PNG
    fig = probing.probing_figure(table, "cola")
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == [t.replace("_", " ") for t in PROBE_TASKS]
    for ax in panels:
        assert ax.get_xlabel() == probing.X_LABEL and ax.get_ylabel() == probing.Y_LABEL
        xs = np.concatenate([line.get_xdata() for line in ax.get_lines() if len(line.get_xdata()) > 0])
        assert xs.min() >= 0 and xs.max() == 1.0  # every model's top layer at 1
    legend = [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    assert len(legend) == 1
    texts = {t.get_text() for t in legend[0].get_texts()}
    assert {"teacher (pre-trained)", "teacher (fine-tuned)", "BERT_S", "LSTM_S", "majority baseline (this data)",
            "pooling: mean", "pooling: last", "pooling: max"} <= texts
    # BERT_S's five layers at 0.2 .. 1.0, the teacher's at 1/24, 0.5, 1
    bert_xs = sorted({x for ax in panels[:1] for line in ax.get_lines() for x in line.get_xdata()})
    assert 0.2 in bert_xs and pytest.approx(1 / 24) in bert_xs
    # the MLP probe only (the linear one is 0.05 lower), each line with its 95% interval over seeds shaded
    ys = {round(y, 6) for line in panels[0].get_lines() for y in line.get_ydata()}
    assert 0.55 in ys and 0.5 not in ys
    assert len(panels[0].collections) == 5  # pretrained, teacher, BERT_S (mean), LSTM_S (last, max)
    assert "95% interval over probe seeds" in texts and fig._suptitle.get_text().endswith("(MLP probe)")

    best = probing.plot_overview(entries, tmp_path / "overview.png", tmp_path / "best.csv")
    assert (tmp_path / "overview.png").read_bytes()[:8] == PNG
    written = pd.read_csv(tmp_path / "best.csv")
    assert written.shape[0] == len(best) == 4 * len(PROBE_TASKS) * 2  # mlp and linear
    assert list(written.columns) == SUMMARY_COLUMNS
    heat = probing.overview_figure(best, "overview")
    ax = heat.axes[0]
    assert ax.get_xlabel() == "probing task" and ax.get_ylabel() and ax.get_title()
    assert [t.get_text() for t in ax.get_yticklabels()][:2] == ["majority baseline", "teacher (pre-trained)"]
    assert "accuracy (fraction)" in heat.axes[1].get_ylabel()  # the colour bar


def test_probing_plot_draws_the_range_over_training_seeds(tmp_path, models):
    """BERT_S trained and probed at two more seeds (`seeds.probe`): the task figure draws its lowest-to-highest
    accuracy per layer as bars; the table it returns, and so the overview, is the model's own run only."""
    seeds = [probe_csv(tmp_path / f"b{i}.csv", "bert_s", [1, 2, 3, 4, 5], acc=lambda l, i=i: 0.5 + 0.02 * l + 0.1 * i)
             for i in (1, 2)]
    entries = [("pretrained", "pretrained", probe_csv(tmp_path / "p.csv", "teacher", [1, 24]), models["teacher"], []),
               ("cola", "bert_s", probe_csv(tmp_path / "b.csv", "bert_s", [1, 2, 3, 4, 5]), models["bert_s"], seeds)]
    table = probing.plot_task(entries, "cola", tmp_path / "cola.png")
    mlp = table[(table["model"] == "bert_s") & (table["classifier"] == "mlp")]
    assert np.allclose(sorted(mlp["test_acc"].unique()), [0.5 + 0.01 * layer for layer in range(1, 6)])
    spread = probing.seed_spread(probing._table(entries, seeds=True))
    assert set(spread["model"]) == {"bert_s"} and (spread["runs"] == 3).all()
    layer5 = spread[(spread["layer"] == 5) & (spread["probe_task"] == "bigram_shift")
                    & (spread["classifier"] == "mlp")].iloc[0]
    assert layer5["low"] == pytest.approx(0.55) and layer5["high"] == pytest.approx(0.5 + 0.1 + 0.2)
    fig = probing.probing_figure(table, "cola", spread=spread)
    panel = fig.axes[0]
    assert len(panel.containers) == 1  # one set of bars: BERT_S, mean pooling, MLP
    legend = next(ax.get_legend() for ax in fig.axes if ax.get_legend())
    assert "range over training seeds (up to 3 models)" in {t.get_text() for t in legend.get_texts()}
    assert probing.seed_spread(probing._table(entries[:1], seeds=True)) is None


def _baseline_entries(tmp_path, models, mdl=False, control=True):
    """The models of a task with a random BERT_S and an embed. baseline."""
    return [("pretrained", "pretrained", probe_csv(tmp_path / "p.csv", "teacher", [0, 6, 12, 18, 24], mdl=mdl,
                                                   control=control), models["teacher"], []),
            ("pretrained", "teacher", probe_csv(tmp_path / "r.csv", "teacher_random", [0, 12, 24],
                                                acc=lambda l: 0.45, mdl=mdl, control=control), models["teacher"], []),
            ("cola", "teacher", probe_csv(tmp_path / "t.csv", "teacher", [0, 6, 12, 18, 24],
                                          acc=lambda l: 0.6 + 0.01 * l, mdl=mdl, control=control),
             models["teacher"], []),
            ("cola", "bert_s", probe_csv(tmp_path / "b.csv", "bert_s", [0, 1, 2, 3, 4, 5],
                                         acc=lambda l: 0.55 + 0.03 * l, mdl=mdl, control=control),
             models["bert_s"], []),
            ("cola", "bert_s", probe_csv(tmp_path / "br.csv", "bert_s_random", [0, 1, 2, 3, 4, 5],
                                         acc=lambda l: 0.5, mdl=mdl, control=control), models["bert_s"], []),
            ("cola", "lstm_s", probe_csv(tmp_path / "l.csv", "lstm_s", [1], ("last", "max"), mdl=mdl,
                                         control=control), models["lstm_s"], []),
            ("cola", "embed", probe_csv(tmp_path / "e.csv", "lstm_s_embed", [0], ("mean", "max"),
                                        acc=lambda l: 0.52, mdl=mdl, control=control), models["lstm_s"], [])]


def test_selectivity_plot_has_a_panel_column_per_classifier_with_intervals(tmp_path, models):
    entries = _baseline_entries(tmp_path, models)
    probing.plot_selectivity(entries, "cola", tmp_path / "selectivity.png")
    assert (tmp_path / "selectivity.png").read_bytes()[:8] == PNG
    fig = probing.classifier_figure(probing._table(entries), "selectivity",
                                    ("selectivity_ci_low", "selectivity_ci_high"), probing.SELECTIVITY_LABEL, "t")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [f"{t.replace('_', ' ')}: {c} probe" for t in PROBE_TASKS for c in ("MLP", "linear")]
    for i, ax in enumerate(fig.axes):  # the y axis shared and labelled on the left
        assert ax.get_ylabel().replace("\n", " ") == ("selectivity (accuracy points, fraction)" if i % 2 == 0 else "")
        assert ax.get_xlabel() == (probing.X_LABEL if i >= 4 else "") and ax.collections  # the intervals
    texts = {t.get_text() for t in fig.legends[0].get_texts()}
    assert {"teacher (pre-trained)", "teacher (fine-tuned)", "BERT_S", "LSTM_S", "pooling: last",
            "95% interval over probe seeds"} <= texts
    assert {model_name("teacher_random"), model_name("bert_s_random"), model_name("lstm_s_embed")} <= texts
    (tmp_path / "off").mkdir()
    no_control = _baseline_entries(tmp_path / "off", models, control=False)
    with pytest.raises(InputError, match=r"p.csv.*no selectivity values.*probe.control: true"):
        probing.plot_selectivity(no_control, "cola", tmp_path / "none.png")


def test_mdl_plot_shows_compression_and_names_a_table_without_it(tmp_path, models):
    entries = _baseline_entries(tmp_path, models, mdl=True)
    table = probing.plot_mdl(entries, "cola", tmp_path / "mdl.png")
    assert (tmp_path / "mdl.png").read_bytes()[:8] == PNG
    fig = probing.classifier_figure(table, "compression", None, probing.MDL_LABEL, "t")
    assert fig.axes[0].get_ylabel().replace("\n", " ") == "compression (uniform / online codelength)"
    assert len(fig.axes) == 2 * len(PROBE_TASKS) and fig.legends
    (tmp_path / "old").mkdir()
    stale = probe_csv(tmp_path / "old" / "b.csv", "bert_s", [1, 2, 3, 4, 5])  # probed without probe.mdl
    with pytest.raises(InputError, match=r"old/b.csv.*no compression values.*probe.mdl: true"):
        probing.plot_mdl([*entries[:3], ("cola", "bert_s", stale, models["bert_s"], [])], "cola",
                         tmp_path / "none.png")


# ------------------------------------------------------------------------------------------------ predictions
def test_prediction_plots_are_labelled(tmp_path):
    rng = np.random.default_rng(0)
    gold = rng.choice(["x", "y", "z"], 60)
    frames = {}
    for model in ("teacher", "bert_s"):
        pred = np.where(rng.random(60) < 0.7, gold, "x")
        frames[model] = pd.DataFrame({"sentence": [f"s{i}" for i in range(60)], "gold": gold, "pred": pred,
                                      "confidence": rng.uniform(0.34, 1, 60)})
    fig = predictions.confidence_figure(frames, 20, "sara")
    assert len(fig.axes) == 2 and all(ax.get_xlabel() == "confidence (probability)" for ax in fig.axes)
    assert fig.axes[0].get_ylabel() == "dev sentences (count)"
    assert [t.get_text().split(" (")[0] for t in fig.axes[0].get_legend().get_texts()] == ["correct", "wrong"]
    assert fig.axes[1].get_title().startswith("BERT_S: accuracy")
    fig = predictions.reliability_figure(calibration(frames, 10), model_summary(frames, 10), "sara")
    assert all(labelled(ax) or ax.get_ylabel() == "" for ax in fig.axes)
    assert fig.axes[0].get_ylabel() == "accuracy (fraction)" and "ECE" in fig.axes[0].get_title()
    assert {t.get_text() for t in fig.legends[0].get_texts()} == {
        "accuracy in bin", "bin's mean confidence", "perfect calibration"}
    fig = predictions.agreement_figure(agreement(frames), "sara")
    matrices = [ax for ax in fig.axes if ax.get_title()]
    assert len(matrices) == 2 and all(ax.get_xlabel() == "model" == ax.get_ylabel() for ax in matrices)
    save_figure(fig, tmp_path / "agreement.png")
    assert (tmp_path / "agreement.png").read_bytes()[:8] == PNG


# ------------------------------------------------------------------------------------------------ curves
def curve_csv(path, epochs, dev=("accuracy", "mcc")):
    epoch = np.arange(1, epochs + 1, dtype=float)
    frame = pd.DataFrame({"step": epoch * 10, "epoch": epoch, "loss": 1 / epoch, "lr": 1e-3})
    for metric in dev:
        frame[f"dev_{metric}"] = 0.5 + 0.01 * epoch
    frame.to_csv(path, index=False)
    return path


def test_curve_plots_are_labelled_with_units(tmp_path):
    fig = curves.teacher_figure(read_curve(curve_csv(tmp_path / "t.csv", 4), dev_metrics=True), "cola")
    loss_ax, dev_ax = fig.axes
    assert loss_ax.get_xlabel() == "epoch" and loss_ax.get_ylabel() == "training loss (cross-entropy, nats)"
    assert [t.get_text() for t in dev_ax.get_legend().get_texts()] == ["dev MCC (-1 to 1)", "dev accuracy (fraction)"]
    assert dev_ax.get_ylabel() == "dev score (MCC: -1 to 1; others: fraction)" and all(labelled(ax) for ax in fig.axes)
    fig = curves.gpt2_figure(read_curve(curve_csv(tmp_path / "g.csv", 3, dev=()), dev_metrics=False), "cola")
    assert fig.axes[0].get_ylabel() == "training loss (cross-entropy, nats per token)"
    assert all(labelled(ax) for ax in fig.axes)

    paths = {s: curve_csv(tmp_path / f"{s}.csv", 5) for s in ("bert_s", "lstm_s")}
    (tmp_path / "metrics.json").write_text(json.dumps({"dev": {"mcc": 0.4, "accuracy": 0.8}}))
    losses = {"bert_s": {"loss": "soft_ce", "temperature": 3.0}, "lstm_s": {"loss": "mse", "mse_reduction": "sum"}}
    curves.plot_students(paths, tmp_path / "metrics.json", "cola", losses, tmp_path / "students.png")
    assert (tmp_path / "students.png").read_bytes()[:8] == PNG
    fig = curves.students_figure({s: read_curve(p, dev_metrics=True) for s, p in paths.items()}, "cola", losses, 0.4)
    dev_ax, bert_ax, lstm_ax = fig.axes
    assert dev_ax.get_ylabel() == "dev MCC (-1 to 1)" and dev_ax.get_xlabel() == "epoch"
    assert {"BERT_S", "LSTM_S", "teacher (fine-tuned)"} <= {t.get_text() for t in dev_ax.get_legend().get_texts()}
    assert bert_ax.get_ylabel() == "soft cross-entropy x T² (T = 3; nats)"
    assert lstm_ax.get_ylabel() == "logit squared error, class sum (logit²)"
    assert all(labelled(ax) for ax in fig.axes)
    # two more seeds of BERT_S: thin lines beside its own, named once in each legend
    seeds = {"bert_s": [curve_csv(tmp_path / f"b{i}.csv", 5) for i in (1, 2)]}
    curves.plot_students(paths, tmp_path / "metrics.json", "cola", losses, tmp_path / "seeds.png", seeds)
    fig = curves.students_figure({s: read_curve(p, dev_metrics=True) for s, p in paths.items()}, "cola", losses, 0.4,
                                 {"bert_s": [read_curve(p, dev_metrics=True) for p in seeds["bert_s"]]})
    dev_ax, bert_ax, lstm_ax = fig.axes
    assert "BERT_S: 2 other seed(s)" in {t.get_text() for t in dev_ax.get_legend().get_texts()}
    assert len(bert_ax.get_lines()) == 3 and len(lstm_ax.get_lines()) == 1


def test_bad_curve_files_name_the_file(tmp_path):
    (tmp_path / "c.csv").write_text("step,epoch,loss\n1,0.5,0.7\n2,1.0,oops\n")
    with pytest.raises(InputError, match=r"c\.csv:3: column loss"):
        read_curve(tmp_path / "c.csv", dev_metrics=False)
    with pytest.raises(InputError, match=r"missing columns \['dev_<metric>'\]"):
        read_curve(curve_csv(tmp_path / "d.csv", 2, dev=()), dev_metrics=True)
    (tmp_path / "metrics.json").write_text(json.dumps({"dev": {"accuracy": 0.8}}))
    with pytest.raises(InputError, match="no dev mcc"):
        curves.plot_students({"bert_s": curve_csv(tmp_path / "b.csv", 2)}, tmp_path / "metrics.json", "cola",
                             {"bert_s": {"loss": "soft_ce", "temperature": 3.0}}, tmp_path / "s.png")
    assert not (tmp_path / "s.png").exists()


def test_student_curves_show_gradient_norms_when_the_curves_have_them(tmp_path):
    paths = {}
    for student, fall in (("bert_s", 1e-4), ("lstm_s", 1.0)):  # BERT_S's gradients die away
        frame = pd.read_csv(curve_csv(tmp_path / f"{student}.csv", 5))
        frame["grad_norm"] = 2.0 * fall ** (frame["epoch"] / 5)
        frame["grad_norm_max"] = 2 * frame["grad_norm"]
        frame.to_csv(tmp_path / f"{student}.csv", index=False)
        paths[student] = tmp_path / f"{student}.csv"
    losses = {"bert_s": {"loss": "soft_ce", "temperature": 3.0}, "lstm_s": {"loss": "mse", "mse_reduction": "sum"}}
    fig = curves.students_figure({s: read_curve(p, dev_metrics=True) for s, p in paths.items()}, "cola", losses, 0.4)
    dev_ax, bert_ax, lstm_ax, norm_ax = fig.axes
    assert norm_ax.get_yscale() == "log" and norm_ax.get_ylabel().startswith("gradient norm (L2")
    assert {t.get_text() for t in norm_ax.get_legend().get_texts()} == {
        "BERT_S: mean", "BERT_S: largest", "LSTM_S: mean", "LSTM_S: largest"}
    assert norm_ax.get_lines()[0].get_ydata()[-1] == pytest.approx(2e-4) and all(labelled(ax) for ax in fig.axes)
    curves.plot_students(paths, None, "cola", losses, tmp_path / "norms.png")
    assert (tmp_path / "norms.png").read_bytes()[:8] == PNG

"""The thesis's "embed." baseline (kdprobe.distil.build_embed_model, kdprobe.students.embed): a student's token table before training, built as
distillation builds the student, probed as kind `embed` at layer 0; and where it shows: the probe tables' model
column, `probe.embed_baseline`, the probing plots (with the published baselines of Conneau et al. 2018)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.lines import Line2D

from kdprobe.config import embed_baseline, probe_settings
from kdprobe.distil import build, build_embed_model, read_inputs
from kdprobe.errors import InputError
from kdprobe.probe import encoders
from kdprobe.students.embed import CONFIG_FILE, initial_table, load_embed_model
from kdprobe.report.probing import layer_position, model_depth
from kdprobe.report.probing_plots import probing_figure
from kdprobe.report.probing_reference import CONNEAU_2018
from kdprobe.students.testing import SECTION, make_student_task

TRAINING = {"epochs": 1, "batch_size": 8, "lr": 1e-3, "optimizer": "adam"}  # read, not used: nothing is trained
SETTINGS = {
    "bert_s": {**SECTION["bert_s"], **TRAINING, "layers": 1, "hidden": 8, "intermediate": 8, "heads": 2, "max_length": 24,
               "embeddings": "word2vec", "embedding_mode": "multichannel", "seed": 3},
    "lstm_s": {**SECTION["lstm_s"], **TRAINING, "hidden": 6, "fc": 6, "embeddings": "word2vec", "embedding_mode": "multichannel",
               "max_length": 24, "seed": 5},
}


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return make_student_task(tmp_path_factory.mktemp("embed"), n_train=40, n_dev=12, n_test=6, n_augmented=20,
                             seed=2, augment_seed=9)


@pytest.mark.parametrize("kind", ["bert_s", "lstm_s"])
def test_the_table_is_the_students_before_training_and_probes_at_layer_0(task, tmp_path, kind):
    settings = {**SETTINGS[kind], "word2vec": str(task["w2v"])}
    out = build_embed_model(kind, settings, task["transfer"], task["data"], task["teacher"], tmp_path / kind,
                            word2vec=task["w2v"])
    paths = [str(p) for p in task["transfer"]]
    data = read_inputs(paths, task["data"], need_ids=kind == "bert_s")
    student, _ = build(kind, settings, data, task["teacher"], task["w2v"], settings["seed"], paths[0])
    expected = initial_table(student)
    model = load_embed_model(out)
    assert torch.equal(model.table, expected)  # the same build and seed as distillation, before any step
    assert expected.shape[1] == 8  # multichannel: the frozen and trained copies start equal, so one table
    encoder = encoders.load_encoder("embed", str(out))
    assert (encoder.first_layer, encoder.depth) == (0, 0) and encoders.resolve_layers(encoder, "all") == [0]
    sentences = ["good movie", "a bad film indeed"]
    features = encoders.encode(encoder, sentences, [0], ["mean"], batch_size=2)[(0, "mean")]
    enc = model.encode(sentences)
    vectors = torch.nn.functional.embedding(enc["input_ids"], expected)
    mask = enc["attention_mask"].unsqueeze(-1).float()
    assert torch.allclose(features, (vectors * mask).sum(1) / mask.sum(1), atol=1e-6)
    assert model_depth("embed", out) == 0 and layer_position(0, 0) == 0


def test_a_damaged_embed_directory_is_named(task, tmp_path):
    out = build_embed_model("lstm_s", {**SETTINGS["lstm_s"], "word2vec": str(task["w2v"])}, task["transfer"],
                            task["data"], task["teacher"], tmp_path / "e", word2vec=task["w2v"])
    (out / CONFIG_FILE).write_text('{"format_version": 99}')
    with pytest.raises(InputError, match=r"embed.json.*rebuild it"):
        load_embed_model(out)
    (out / CONFIG_FILE).unlink()
    with pytest.raises(InputError, match="not an embed. baseline directory"):
        load_embed_model(out)


def test_embed_baseline_setting_and_its_probe_settings():
    config = {"probe": {"embed_baseline": ["sara"], "layers": {"bert_s": "all"}, "pooling": {"embed": ["mean"]},
                        "grid": {}, "tasks": [], "data_dir": "x", "word_content_logreg": True}}
    assert embed_baseline(config, "sara") and not embed_baseline(config, "cola")
    assert embed_baseline({"probe": {"embed_baseline": True}}, "cola")
    assert not embed_baseline({"probe": {"embed_baseline": False}}, "cola")
    settings = probe_settings(config, "embed", "tree_depth")
    assert settings["layers"] == {"embed": [0]} and settings["pooling"] == {"embed": ["mean"]}
    assert "embed_baseline" not in settings  # which tasks get a baseline changes no table


def _rows(model, layers, accuracy, task="tree_depth", depth=None):
    depth = max(layers) if depth is None else depth
    return [{"model": model, "probe_task": task, "layer": layer, "pooling": "mean", "classifier": "mlp",
             "test_acc": accuracy + 0.01 * layer, "test_ci_low": np.nan, "test_ci_high": np.nan,  # one probe seed
             "majority_acc": 0.2, "scope": "sara", "depth": depth, "position": layer_position(layer, depth)}
            for layer in layers]


def test_the_probing_figure_draws_embed_baselines_and_the_published_lines():
    table = pd.DataFrame(_rows("bert_s", [0, 1, 2], 0.4) + _rows("bert_s_embed", [0], 0.33, depth=0))
    fig = probing_figure(table, "sara")
    ax = fig.axes[0]
    flat = [tuple(line.get_ydata()) for line in ax.get_lines()]
    published = CONNEAU_2018["tree_depth"]
    for value in (published.majority, published.human, published.best, 0.2, 0.33):  # each a horizontal line
        assert (value, value) in flat, value
    assert any(len(y) == 3 for y in flat)  # BERT_S: E, 1, 2
    labels = [h.get_label() for h in fig.axes[1].get_legend().legend_handles if isinstance(h, Line2D)]
    assert "BERT_S embed. (before training)" in labels
    assert "human performance (Conneau et al. (2018), Table 2)" in labels
    assert "best model of Conneau et al. (2018), Table 2" in labels
    assert "majority baseline (this data)" in labels


def test_the_published_values_are_table_2s():
    """Conneau et al. (2018), Table 2: 10 tasks; majority 20.0 / 0.5 / 17.9 / 5.0 / 50.0; human from 81.2 to 100."""
    assert len(CONNEAU_2018) == 10
    assert [CONNEAU_2018[t].majority for t in ("sentence_length", "word_content", "tree_depth",
                                               "top_constituents", "bigram_shift")] == [0.2, 0.005, 0.179, 0.05, 0.5]
    assert np.isclose(min(p.human for p in CONNEAU_2018.values()), 0.812)
    assert CONNEAU_2018["sentence_length"].best == 0.994 and CONNEAU_2018["subj_number"].best == 0.951

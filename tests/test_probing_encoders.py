"""Probing encoders on a tiny Hugging Face BERT built here, and `probe_model` end to end."""

from __future__ import annotations

import random

import pandas as pd
import pytest
import torch

from kdprobe.errors import ConfigError
from kdprobe.probe import encoders
from kdprobe.probe.run import COLUMNS, probe_model, probe_tasks
from kdprobe.probe.tables import read_probe_csv

WORDS = "the a cat dog sat ran on under mat table quickly slowly big small red blue".split()
HIDDEN, DEPTH = 16, 2


def _sentences(n, seed=0):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 9))) for _ in range(n)]


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    """A 2-layer, 16-d BERT classifier with a WordPiece vocabulary trained on WORDS, saved like the teacher."""
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    out = tmp_path_factory.mktemp("tiny_bert")
    trainer = BertWordPieceTokenizer(lowercase=True)
    trainer.train_from_iterator(_sentences(200), vocab_size=120, min_frequency=1)
    trainer.save_model(str(out))
    tokenizer = BertTokenizerFast(vocab=str(out / "vocab.txt"))
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=HIDDEN, num_hidden_layers=DEPTH, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64, num_labels=2,
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).eval().save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def teacher(bert_dir):
    return encoders.load_encoder("teacher", str(bert_dir), "cpu")


def test_layers_and_poolings_shapes(teacher):
    assert teacher.depth == DEPTH and teacher.first_layer == 0
    sents = _sentences(11, seed=1)
    feats = encoders.encode(teacher, sents, [0, 1, 2], ["mean", "cls", "max"], batch_size=4)
    assert set(feats) == {(layer, p) for layer in (0, 1, 2) for p in ("mean", "cls", "max")}
    for x in feats.values():
        assert x.shape == (11, HIDDEN) and x.dtype == torch.float32 and torch.isfinite(x).all()


def test_features_match_the_model_and_ignore_batching(teacher):
    """Length-sorted, padded batches give each sentence the features of running it alone."""
    model, tokenizer = teacher.extra["model"], teacher.extra["tokenizer"]
    sents = _sentences(9, seed=2)
    batched = encoders.encode(teacher, sents, [1, 2], ["mean", "cls", "max"], batch_size=4)
    single = encoders.encode(teacher, sents, [1, 2], ["mean", "cls", "max"], batch_size=1)
    for key in batched:
        assert torch.allclose(batched[key], single[key], atol=1e-5), key
    i = 5
    with torch.no_grad():
        enc = tokenizer([sents[i]], return_tensors="pt")
        hidden = model(**enc, output_hidden_states=True).hidden_states[2][0]  # (T, H), special tokens included
    assert torch.allclose(batched[(2, "mean")][i], hidden.mean(0), atol=1e-5)
    assert torch.allclose(batched[(2, "cls")][i], hidden[0], atol=1e-5)
    assert torch.allclose(batched[(2, "max")][i], hidden.max(0).values, atol=1e-5)


def test_encode_halves_the_batch_when_cuda_runs_out_of_memory(teacher, monkeypatch, caplog):
    """A GPU that fits 2 sentences: the features are those of the batches that fit, and the log says so."""
    import dataclasses

    sents = _sentences(9, seed=4)
    whole = encoders.encode(teacher, sents, [1], ["mean"], batch_size=8)
    sizes = []

    def states(batch):
        sizes.append(len(batch))
        if len(batch) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 3.00 GiB")
        return teacher.states(batch)

    halved = encoders.encode(dataclasses.replace(teacher, states=states), sents, [1], ["mean"], batch_size=8)
    assert sizes == [8, 4, 2, 2, 2, 2, 1] and torch.allclose(halved[(1, "mean")], whole[(1, "mean")], atol=1e-5)
    assert "batches of 8 sentences: batches of 4 from 0 of 9" in caplog.text


def test_pretrained_kind_matches_teacher_encoder(bert_dir, teacher):
    pretrained = encoders.load_encoder("pretrained", str(bert_dir), "cpu")
    sents = _sentences(5, seed=3)
    a = encoders.encode(pretrained, sents, [0, 2], ["mean"])
    b = encoders.encode(teacher, sents, [0, 2], ["mean"])
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5)


def test_resolve_layers(teacher):
    assert encoders.resolve_layers(teacher, "all") == [0, 1, 2]  # every layer the model has, E (0) included
    assert encoders.resolve_layers(teacher, [0, 2, 2]) == [0, 2]
    with pytest.raises(ValueError, match=r"probe\.layers\.teacher.*layer 3 does not exist.*depth 2") as err:
        encoders.resolve_layers(teacher, [1, 3])
    assert isinstance(err.value, ConfigError) and err.value.key == "probe.layers.teacher"
    with pytest.raises(ValueError, match="probe.layers.teacher"):
        encoders.resolve_layers(teacher, [-1])
    with pytest.raises(ValueError, match="not an integer"):
        encoders.resolve_layers(teacher, ["1"])


def test_resolve_poolings():
    assert encoders.resolve_poolings("lstm_s", ["last", "max"]) == ["last", "max"]
    with pytest.raises(ValueError, match=r"probe\.pooling\.teacher.*'last'"):
        encoders.resolve_poolings("teacher", ["mean", "last"])
    with pytest.raises(ValueError, match=r"probe\.pooling\.lstm_s.*'cls'"):
        encoders.resolve_poolings("lstm_s", ["cls"])


def test_pool_respects_padding():
    # batch of 2, T=3, H=4 (2 forward + 2 backward dims); sentence 0 has 2 tokens, sentence 1 has 3
    states = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    states[0, 2] = 1000.0  # padding must never leak in
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert torch.equal(encoders.pool(states, mask, "mean")[0], states[0, :2].mean(0))
    assert torch.equal(encoders.pool(states, mask, "max")[0], states[0, 1])
    assert torch.equal(encoders.pool(states, mask, "cls"), states[:, 0])
    last = encoders.pool(states, mask, "last")
    assert torch.equal(last[0], torch.cat([states[0, 1, :2], states[0, 0, 2:]]))  # fwd at last token, bwd at 0
    assert torch.equal(last[1], torch.cat([states[1, 2, :2], states[1, 0, 2:]]))


def _probe_file(path, n_train=60, n_dev=30, n_test=30):
    """Label 1 when the sentence mentions 'cat': learnable from a mean of token states."""
    lines = []
    for split, n, seed in (("tr", n_train, 1), ("va", n_dev, 2), ("te", n_test, 3)):
        for s in _sentences(n, seed=seed):
            lines.append(f"{split}\t{'O' if 'cat' in s.split() else 'I'}\t{s}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


PROBE_SETTINGS = {
    "max_sentences": 0,
    "grid": {"hidden": [20], "dropout": [0.0, 0.1], "weight_decay": [1e-5]},
    "word_content_logreg": True,
    "standardise": False,
    "lr": 1e-2,
    "batch_size": 64,
    "epoch_size": 1,
    "tenacity": 3,
    "max_epoch": 15,
    "seed": 42,
    "encode_batch_size": 16,
    "classifiers": ["mlp"], "seeds": 1, "control": False, "mdl": False,
    "layers": {"teacher": [0, 2], "pretrained": "all"},
    "pooling": {"teacher": ["mean", "max"], "pretrained": ["cls"]},
}


def test_probe_model_writes_table(bert_dir, tmp_path):
    probe_file = _probe_file(tmp_path / "has_cat.txt")
    out = tmp_path / "out" / "has_cat.csv"
    table = probe_model("teacher", bert_dir, probe_file, PROBE_SETTINGS, out, "cpu")
    written = read_probe_csv(out)
    assert list(written.columns) == COLUMNS
    assert len(written) == 4
    assert list(zip(written["layer"], written["pooling"])) == [(0, "mean"), (0, "max"), (2, "mean"), (2, "max")]
    assert set(written["model"]) == {"teacher"} and set(written["probe_task"]) == {"has_cat"}
    assert (written[["n_train", "n_dev", "n_test"]] == [60, 30, 30]).all().all()
    assert written["test_acc"].between(0, 1).all() and written["hidden"].eq(20).all()
    assert written["dropout"].isin([0.0, 0.1]).all()
    labels = [line.split("\t")[1] for line in probe_file.read_text().splitlines() if line.startswith("te")]
    train = [line.split("\t")[1] for line in probe_file.read_text().splitlines() if line.startswith("tr")]
    majority = max(set(train), key=train.count)
    assert written["majority_acc"].iloc[0] == pytest.approx(labels.count(majority) / len(labels))
    pd.testing.assert_frame_equal(table.reset_index(drop=True), written, check_dtype=False)


def test_probe_model_all_layers_and_max_sentences(bert_dir, tmp_path):
    probe_file = _probe_file(tmp_path / "has_cat.txt")
    settings = dict(PROBE_SETTINGS, max_sentences=10)
    table = probe_model("pretrained", bert_dir, probe_file, settings, tmp_path / "p.csv", "cpu")
    assert list(table["layer"]) == [0, 1, 2] and list(table["pooling"]) == ["cls"] * 3
    assert (table[["n_train", "n_dev", "n_test"]] == [10, 10, 10]).all().all()


def test_probe_model_rejects_layer_beyond_depth(bert_dir, tmp_path):
    settings = dict(PROBE_SETTINGS, layers={"teacher": [1, 6, 12]})
    out = tmp_path / "x.csv"
    with pytest.raises(ValueError, match=r"probe\.layers\.teacher.*layer 6.*depth 2"):
        probe_model("teacher", bert_dir, _probe_file(tmp_path / "t.txt"), settings, out, "cpu")
    assert not out.exists()


def test_probe_model_rejects_missing_settings(bert_dir, tmp_path):
    with pytest.raises(ConfigError, match="probe.pooling.bert_s"):
        probe_model("bert_s", bert_dir, _probe_file(tmp_path / "t.txt"), PROBE_SETTINGS, tmp_path / "x.csv", "cpu")


def test_probe_tasks_reuses_the_tables_whose_settings_model_and_data_are_unchanged(bert_dir, tmp_path, caplog):
    """One job probes every task with the model loaded once; rerun after an edit that concerns one task, it reuses
    the other's saved table (the same rows) and probes that one again; a changed model recomputes both."""
    import logging
    import shutil

    model = tmp_path / "model"
    shutil.copytree(bert_dir, model)
    files = [_probe_file(tmp_path / f"{name}.txt", 20, 10, 10) for name in ("has_cat", "also_cat")]
    base = dict(PROBE_SETTINGS, layers={"teacher": [1]}, pooling={"teacher": ["mean"]})
    outs = [tmp_path / "out" / f"{name}.csv" for name in ("has_cat", "also_cat")]

    def run(settings):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="kdprobe.probe.run"):
            merged = probe_tasks("teacher", model, files, settings, outs, tmp_path / "teacher.csv", tmp_path / "state")
        return merged, [r.getMessage() for r in caplog.records if "reused" in r.getMessage()]

    first, reused = run({"has_cat": base, "also_cat": base})
    assert reused == [] and list(first.probe_task) == ["has_cat", "also_cat"] and list(first.columns) == COLUMNS
    assert read_probe_csv(tmp_path / "teacher.csv").equals(first)
    kept = read_probe_csv(outs[0])
    second, reused = run({"has_cat": base, "also_cat": dict(base, grid={"hidden": [7], "dropout": [0.0], "weight_decay": [1e-5]})})
    assert len(reused) == 1 and reused[0].startswith("has_cat:")
    assert read_probe_csv(outs[0]).equals(kept) and set(pd.read_csv(outs[1]).hidden) == {7}
    (model / "extra.txt").write_text("a changed model directory")
    _, reused = run({"has_cat": base, "also_cat": dict(base, grid={"hidden": [7], "dropout": [0.0], "weight_decay": [1e-5]})})
    assert reused == []


def test_probe_tasks_probes_again_when_rerun_with_nothing_changed(bert_dir, tmp_path, monkeypatch):
    """A job rerun with every task's settings, data, model and code those of its last complete job (forced, or its
    outputs deleted) probes every task again; a killed job's rerun reuses what it probed, even when it was forced."""
    from kdprobe.probe import run as probe_run

    files = [_probe_file(tmp_path / f"{name}.txt", 20, 10, 10) for name in ("has_cat", "also_cat")]
    settings = dict(PROBE_SETTINGS, layers={"teacher": [1]}, pooling={"teacher": ["mean"]})
    outs = [tmp_path / "out" / f"{name}.csv" for name in ("has_cat", "also_cat")]
    probed, real = [], probe_run._probe

    def counted(get_encoder, kind, probe_file, *args):
        probed.append(probe_file.stem)
        if probe_file.stem == kill_at:
            raise RuntimeError("killed")
        return real(get_encoder, kind, probe_file, *args)

    def job():
        probed.clear()
        probe_tasks("teacher", bert_dir, files, {"has_cat": settings, "also_cat": settings}, outs,
                    tmp_path / "teacher.csv", tmp_path / "state")
        return list(probed)

    monkeypatch.setattr(probe_run, "_probe", counted)
    kill_at = None
    assert job() == ["has_cat", "also_cat"]
    assert job() == ["has_cat", "also_cat"]  # nothing changed: forced, so nothing is reused
    kill_at = "also_cat"
    with pytest.raises(RuntimeError, match="killed"):
        job()  # forced, and killed after has_cat
    kill_at = None
    assert job() == ["also_cat"]  # the killed job's rerun keeps what it probed
    assert job() == ["has_cat", "also_cat"]


SNAKEFILE = """
rule probe:
    input:
        model="model",
        data=["has_cat.txt", "also_cat.txt"],
    output:
        tables=["probe/has_cat.csv", "probe/also_cat.csv"],
        merged="probe.csv",
    log:
        "probe.log",
    params:
        kind="teacher",
        name="teacher",
        model_path="model",
        settings=config["settings"],
        state=".state/probe",
    script:
        "{script}"
"""


@pytest.mark.workflow
def test_snakemake_forced_rerun_probes_again(bert_dir, tmp_path):
    """Rule `probe`'s script under Snakemake: `-f` and deleted outputs probe every task again; a settings edit that
    concerns one task reuses the other's table."""
    import shutil
    from pathlib import Path

    import yaml

    from smk import ROOT, snakemake

    shutil.copytree(bert_dir, tmp_path / "model")
    for name in ("has_cat", "also_cat"):
        _probe_file(tmp_path / f"{name}.txt", 20, 10, 10)
    (tmp_path / "Snakefile").write_text(SNAKEFILE.format(script=ROOT / "workflow" / "scripts" / "probe.py"))
    settings = dict(PROBE_SETTINGS, layers={"teacher": [1]}, pooling={"teacher": ["mean"]})

    def run(*args, also_cat=settings):
        (tmp_path / "config.yaml").write_text(yaml.safe_dump({"settings": {"has_cat": settings, "also_cat": also_cat}}))
        (tmp_path / "probe.log").unlink(missing_ok=True)
        snakemake(tmp_path, "-c1", "probe.csv", *args, "--configfile", "config.yaml")
        log = (tmp_path / "probe.log").read_text()
        return [name for name in ("has_cat", "also_cat") if f"teacher {name} layer 1 mean" in log]

    assert run() == ["has_cat", "also_cat"]
    assert run("-f") == ["has_cat", "also_cat"]
    shutil.rmtree(tmp_path / "probe")
    Path(tmp_path / "probe.csv").unlink()
    assert run() == ["has_cat", "also_cat"]
    assert run(also_cat=dict(settings, grid={"hidden": [7], "dropout": [0.0], "weight_decay": [1e-5]})) == ["also_cat"]


def test_scripts_drive_the_library(bert_dir, tmp_path):
    """workflow/scripts/probe.py, run as Snakemake would (a `snakemake` global), with the input, output and params
    names of workflow/rules/probe.smk."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    probe_files = [str(_probe_file(tmp_path / f"{name}.txt", 20, 10, 10)) for name in ("has_cat", "also_cat")]
    settings = dict(PROBE_SETTINGS, layers={"teacher": [1]}, pooling={"teacher": ["mean"]})
    job = {"root": str(root), "bert": str(bert_dir), "probe_files": probe_files, "tmp": str(tmp_path),
           "settings": {"has_cat": settings, "also_cat": settings}}
    driver = r"""
import json, runpy, sys
from snakemake.iocontainers import InputFiles, Log, OutputFiles, Params, Wildcards
job = json.loads(sys.argv[1])
t = job["tmp"]
class S:  # the attributes kdprobe.workflow.run and the script read
    pass
s = S()
s.rule, s.threads, s.config = "probe", 1, {"device": "cpu"}
s.input = InputFiles([job["bert"], *job["probe_files"]])
s.input._set_name("model", 0)
s.input._set_name("data", 1, end=3)
s.output = OutputFiles([t + "/teacher/has_cat.csv", t + "/teacher/also_cat.csv", t + "/teacher.csv"])
s.output._set_name("tables", 0, end=2)
s.output._set_name("merged", 2)
s.params = Params(fromdict={"kind": "teacher", "name": "teacher", "model_path": job["bert"],
                            "settings": job["settings"], "state": t + "/state"})
s.wildcards, s.log = Wildcards(fromdict={"scope": "sara", "model": "teacher"}), Log([t + "/probe.log"])
runpy.run_path(job["root"] + "/workflow/scripts/probe.py", init_globals={"snakemake": s})
"""
    proc = subprocess.run([sys.executable, "-c", driver, json.dumps(job)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr + (tmp_path / "probe.log").read_text()
    table = pd.read_csv(tmp_path / "teacher.csv")
    assert list(table.columns) == COLUMNS and list(table.probe_task) == ["has_cat", "also_cat"]
    assert len(pd.read_csv(tmp_path / "teacher/also_cat.csv")) == 1 and (tmp_path / "state/has_cat.pt").exists()
    assert "wrote" in (tmp_path / "probe.log").read_text()

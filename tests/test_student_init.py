"""BERT_S initialised from the teacher (`students.bert_s.init`, `kdprobe.student_init`): the copied tensors are the
teacher's bit for bit, the layer choice is the one configured, and what cannot be copied is refused naming the key,
at build time and at start-up."""

import copy
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from kdprobe import config as kdconfig
from kdprobe.errors import ConfigError
from kdprobe.student_init import spec_layers
from kdprobe.students import build_student
from kdprobe.students.testing import SECTION, make_task, make_teacher, make_transfer, synthetic_sentences

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
TEACHER_LAYERS = 4
#: the tiny teacher's widths (`make_teacher`: hidden 16, intermediate 32, 2 heads, 64 positions)
STUDENT = {**SECTION["bert_s"], "layers": 2, "hidden": 16, "intermediate": 32, "heads": 2, "dropout": 0.1,
           "max_length": 32, "embeddings": "random", "embedding_mode": "non-static", "seed": 1}


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    sentences, _ = synthetic_sentences(100, 0)
    return make_teacher(tmp_path_factory.mktemp("teacher"), sentences, layers=TEACHER_LAYERS, seed=5)


def _teacher_state(teacher_dir):
    return load_file(str(Path(teacher_dir) / "model.safetensors"))


def _build(teacher_dir, seed=0, **settings):
    torch.manual_seed(seed)
    return build_student("bert_s", {**STUDENT, **settings}, 2, {"teacher_dir": str(teacher_dir)})


def _expected(name: str, layers: list[int]) -> str:
    """The teacher's name of student parameter `name` (of `student.bert`), written out independently."""
    for channel in (".static.weight", ".tuned.weight"):
        name = name.replace(f"word_embeddings{channel}", "word_embeddings.weight")
    if name.startswith("encoder.layer."):
        k, rest = name.removeprefix("encoder.layer.").split(".", 1)
        name = f"encoder.layer.{layers[int(k)]}.{rest}"
    return f"bert.{name}"


@pytest.mark.parametrize("embeddings,mode", [("random", "non-static"), ("teacher", "non-static"),
                                             ("random", "multichannel"), ("teacher", "static")])
def test_copied_tensors_are_the_teachers_bit_for_bit(teacher, embeddings, mode):
    layers = [3, 1]
    student = _build(teacher, embeddings=embeddings, embedding_mode=mode, init={"from": "teacher", "layers": layers})
    state = _teacher_state(teacher)
    names = [name for name, _ in student.bert.named_parameters()]
    assert any(".static." in n or ".tuned." in n for n in names) == ((embeddings, mode) != ("random", "non-static"))
    for name, param in student.bert.named_parameters():
        source = state[_expected(name, layers)]
        if name.startswith("embeddings.") and source.dim() == 2:  # word rows of the tokenizer, positions 0..31
            source = source[: param.shape[0]]
        assert param.shape == source.shape and torch.equal(param.detach(), source), name
    assert student.bert.embeddings.position_embeddings.weight.shape[0] == 32  # max_length rows of the teacher's 64
    # the classifier is the student's own: not the teacher's, and what a random student of the same seed has
    assert not torch.equal(student.classifier.weight.detach(), state["classifier.weight"])
    if (embeddings, mode) == ("random", "non-static"):
        scratch = _build(teacher)
        assert torch.equal(student.classifier.weight, scratch.classifier.weight)
        assert not torch.equal(student.bert.encoder.layer[0].attention.self.query.weight,
                               scratch.bert.encoder.layer[0].attention.self.query.weight)
    assert student.config["init"] == {"from": "teacher", "layers": layers}


def test_every_picks_layers_0_n_2n(teacher, caplog):
    assert spec_layers({**STUDENT, "layers": 6, "init": {"from": "teacher", "every": 2}}) == [0, 2, 4, 6, 8, 10]
    assert spec_layers({**STUDENT, "layers": 3, "init": {"from": "teacher", "every": 1}}) == [0, 1, 2]
    assert spec_layers({**STUDENT, "init": {"from": "random"}}) is None and spec_layers(STUDENT) is None
    with caplog.at_level("INFO", logger="kdprobe.students.bert_s"):
        student = _build(teacher, init={"from": "teacher", "every": 2})
    state = _teacher_state(teacher)
    for k, layer in enumerate([0, 2]):
        ours = student.bert.encoder.layer[k].state_dict()
        assert all(torch.equal(v, state[f"bert.encoder.layer.{layer}.{n}"]) for n, v in ours.items())
    n = len(list(student.bert.parameters()))
    assert f"{n} tensors" in caplog.text and "teacher layers [0, 2] as student layers 0..1" in caplog.text


@pytest.mark.parametrize("settings,key,says", [
    ({"hidden": 32}, "students.bert_s.hidden", "hidden_size 16"),
    ({"intermediate": 64}, "students.bert_s.intermediate", "intermediate_size 32"),
    ({"heads": 4}, "students.bert_s.heads", "num_attention_heads 2"),
    ({"max_length": 100}, "students.bert_s.max_length", "max_position_embeddings 64"),
    ({"init": {"from": "teacher", "layers": [0, 4]}}, "students.bert_s.init.layers", "num_hidden_layers 4"),
    ({"init": {"from": "teacher", "every": 4}}, "students.bert_s.init.every", "num_hidden_layers 4"),
    ({"init": {"from": "teacher", "layers": [0]}}, "students.bert_s.init.layers", "of 2 layers"),
    ({"init": {"from": "teacher", "layers": [0, 1, 2]}}, "students.bert_s.init.layers", "of 2 layers"),
    ({"init": {"from": "teacher", "layers": [0, 1], "every": 1}}, "students.bert_s.init", "one of them"),
    ({"init": {"from": "teacher"}}, "students.bert_s.init", "one of them"),
    ({"init": {"from": "teacher", "layers": None, "every": None}}, "students.bert_s.init", "one of them"),
    ({"init": {"from": "scratch"}}, "students.bert_s.init.from", "not one of"),
    ({"embeddings": "word2vec"}, "students.bert_s.embeddings", "wordpieces"),
    ({"embedding_mode": "multichannel", "channel_combine": "concat"}, "students.bert_s.channel_combine", "Linear"),
])
def test_refused_at_build_naming_the_key(teacher, settings, key, says):
    settings = {"init": {"from": "teacher", "every": 1}} | settings
    with pytest.raises(ConfigError) as err:
        _build(teacher, **settings)
    assert err.value.key == key and says in str(err.value), str(err.value)


# ------------------------------------------------------------------------------------- a pre-trained BERT
@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, teacher):
    """A pre-trained BERT with the teacher's tokenizer but its own weights, saved as a bare `BertModel` (no
    `bert.` prefix, no classifier, no pooler: the masked-LM case)."""
    from transformers import AutoTokenizer, BertModel

    sentences, _ = synthetic_sentences(100, 0)
    source = make_teacher(tmp_path_factory.mktemp("other"), sentences, layers=TEACHER_LAYERS, seed=11)
    out = tmp_path_factory.mktemp("pretrained")
    BertModel.from_pretrained(str(source), add_pooling_layer=False).save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(teacher)).save_pretrained(str(out))  # as BERT-base and -large share one
    return out


def test_a_truncated_pretrained_bert_is_copied_bit_for_bit(teacher, pretrained, caplog):
    layers = [1, 3]
    with caplog.at_level("WARNING", logger="kdprobe.students.bert_s"):
        student = _build(teacher, init={"from": "pretrained", "model": str(pretrained), "layers": layers})
    state = load_file(str(pretrained / "model.safetensors"))
    assert not any(k.startswith("bert.") for k in state)
    for name, param in student.bert.named_parameters():
        if name.startswith("pooler."):
            continue
        source = state[_expected(name, layers).removeprefix("bert.")]
        source = source[: param.shape[0]] if name.startswith("embeddings.") and source.dim() == 2 else source
        assert torch.equal(param.detach(), source), name
    teacher_state = _teacher_state(teacher)  # from the pre-trained model, not from the teacher
    assert not torch.equal(student.bert.encoder.layer[0].attention.self.query.weight,
                           teacher_state["bert.encoder.layer.1.attention.self.query.weight"])
    assert "keeps its own initialisation" in caplog.text  # no pooler in a bare masked-LM checkpoint
    assert student.config["init"] == {"from": "pretrained", "layers": layers, "model": str(pretrained)}


def test_a_pretrained_bert_is_refused_naming_the_key(teacher, pretrained, tmp_path):
    from kdprobe.errors import InputError

    for init, key, says in (({"from": "pretrained", "every": 1}, "students.bert_s.init.model", "needs model"),
                            ({"from": "pretrained", "model": "bert-base-uncased", "every": 1},
                             "students.bert_s.init.model", "hub id"),
                            ({"from": "pretrained", "model": str(pretrained), "every": 2, "layers": [0, 1]},
                             "students.bert_s.init", "from: pretrained")):
        with pytest.raises(ConfigError) as err:
            _build(teacher, init=init)
        assert err.value.key == key and says in str(err.value), str(err.value)
    with pytest.raises(ConfigError) as err:  # its widths, not the teacher's, are what the copy needs
        _build(teacher, init={"from": "pretrained", "model": str(pretrained), "layers": [0, 4]})
    assert err.value.key == "students.bert_s.init.layers" and str(pretrained) in str(err.value)
    other_sentences, _ = synthetic_sentences(100, 5)
    other = make_teacher(tmp_path / "other_vocab", [s.upper() + " zq" for s in other_sentences],
                         layers=TEACHER_LAYERS, seed=2)
    with pytest.raises(InputError, match="vocabulary differs from the teacher's"):
        _build(teacher, init={"from": "pretrained", "model": str(other), "every": 1})


def test_a_pretrained_bert_is_checked_at_start_up(teacher, pretrained):
    config = _config(teacher, init={"from": "pretrained", "model": str(pretrained), "every": 2})
    kdconfig.validate(config, SCHEMA)
    kdconfig.check_student_init(config)
    with pytest.raises(ConfigError) as err:  # 0, 2, 4: beyond the pre-trained model's 4 layers
        kdconfig.check_student_init(_config(teacher, layers=3, init={"from": "pretrained", "model": str(pretrained),
                                                                     "every": 2}))
    assert err.value.key == "students.bert_s.init.every" and f"the pre-trained model {pretrained}" in str(err.value)


# ---------------------------------------------------------------------------------------------- start-up
def _config(teacher_dir, **bert_s):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["teacher"]["model"] = str(teacher_dir)
    config["students"]["bert_s"] |= {"hidden": 16, "intermediate": 32, "heads": 2, "max_length": 32, "layers": 2,
                                     "init": {"from": "teacher", "every": 2}} | bert_s
    return config


def test_refused_at_start_up_with_a_local_teacher(teacher):
    config = _config(teacher)
    kdconfig.validate(config, SCHEMA)
    kdconfig.check_student_init(config)  # widths match, layers 0 and 2 exist
    with pytest.raises(ConfigError) as err:
        kdconfig.check_student_init(_config(teacher, hidden=204, heads=3, intermediate=750))
    assert err.value.key == "students.bert_s.hidden" and "hidden_size 16" in str(err.value)
    override = _config(teacher)
    override["tasks"]["sara"]["students"] = {"bert_s": {"layers": 3}}  # 0, 2, 4: beyond the 4 layers
    with pytest.raises(ConfigError) as err:
        kdconfig.check_student_init(override)
    assert err.value.key == "students.bert_s.init.every" and "sara" in str(err.value)
    hub = _config("bert-large-uncased", hidden=204, heads=3, intermediate=750)  # not here: checked at build time
    kdconfig.check_student_init(hub)
    with pytest.raises(ConfigError) as err:  # what needs no teacher is checked all the same
        kdconfig.check_student_init(_config("bert-large-uncased", init={"from": "teacher", "layers": [0]}))
    assert err.value.key == "students.bert_s.init.layers"


def test_a_sweep_point_the_teacher_cannot_fill_is_refused(teacher):
    from kdprobe.variants import check_variants

    config = _config(teacher)
    config["sweeps"] = {"deeper": {"student": "bert_s", "tasks": ["sst2"], "grid": {"depth": [2]}}}
    with pytest.raises(ConfigError) as err:
        check_variants(config, SCHEMA)  # 4 layers: 0, 2, 4, 6 of a 4-layer teacher
    assert err.value.key == "students.bert_s.init.every" and "point sweeps/deeper/depth=2 on sst2" in str(err.value)


def test_schema_takes_the_setting():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    for init in ({"from": "random"}, {"from": "teacher", "every": 2}, {"from": "teacher", "layers": [0, 2, 4, 7, 9]}):
        kdconfig.validate(kdconfig.deep_merge(config, {"students": {"bert_s": {"init": init}}}), SCHEMA)
    for init, key in (({"every": 2}, "students.bert_s.init"), ({"from": "teacher", "every": 0},
                                                                "students.bert_s.init.every"),
                      ({"from": "teacher", "map": {}}, "students.bert_s.init.map")):
        with pytest.raises(ConfigError) as err:
            kdconfig.validate(kdconfig.deep_merge(config, {"students": {"bert_s": {"init": init}}}), SCHEMA)
        assert err.value.key == key


# ---------------------------------------------------------------------------------------------- the workflow
@pytest.fixture(scope="module")
def task(tmp_path_factory, teacher):
    root = tmp_path_factory.mktemp("task")
    splits = make_task(root / "data", n_train=40, n_dev=20, n_test=10, seed=3)
    make_transfer(root / "train.parquet", teacher, *splits["train"], seed=1)
    return {"data": root / "data", "transfer": [str(root / "train.parquet")], "root": root}


def test_the_setting_reaches_distillation(teacher, task):
    """The rule's params (`student_settings`) carry `init`, per-task overrides merged; phase 2 of `distil` builds
    a student whose layer 0 is the teacher's chosen layer; a one-epoch distillation runs from it."""
    from kdprobe.distil import build, distil, read_inputs
    from kdprobe.training import RunFiles

    config = _config(teacher)
    config["tasks"]["sst2"]["students"] = {"bert_s": {"init": {"from": "teacher", "layers": [2, 3]}}}
    settings = kdconfig.student_settings(config, "sst2", "bert_s")
    assert settings["init"] == {"from": "teacher", "every": 2, "layers": [2, 3]}  # merged key by key
    with pytest.raises(ConfigError, match="one of them"):
        kdconfig.check_student_init(config)
    config["tasks"]["sst2"]["students"] = {"bert_s": {"init": {"from": "teacher", "layers": [2, 3],
                                                                        "every": None}}}  # null clears
    kdconfig.validate(config, SCHEMA)
    assert spec_layers(kdconfig.student_settings(config, "sst2", "bert_s")) == [2, 3]
    config["tasks"]["sst2"]["students"] = {"bert_s": {"init": {"from": "random"}}}  # one task back to random
    kdconfig.check_student_init(config)
    assert spec_layers(kdconfig.student_settings(config, "sst2", "bert_s")) is None
    config["tasks"]["sst2"]["students"] = {"bert_s": {"init": {"from": "teacher", "layers": [2, 3]}}}
    config["students"]["bert_s"]["init"] = {"from": "teacher", "layers": [0, 1]}
    settings = kdconfig.student_settings(config, "sst2", "bert_s")
    assert settings["init"] == {"from": "teacher", "layers": [2, 3]}
    data = read_inputs(task["transfer"], task["data"], need_ids=True)
    student, _ = build("bert_s", settings, data, teacher, None, 7, task["transfer"][0])
    state = _teacher_state(teacher)
    assert all(torch.equal(v, state[f"bert.encoder.layer.2.{n}"])
               for n, v in student.bert.encoder.layer[0].state_dict().items())
    train = {"loss": "soft_ce", "temperature": 3.0, "optimizer": "adam", "lr": 1e-3, "betas": [0.9, 0.98],
             "batch_size": 16, "epochs": 1, "schedule": "constant", "warmup_epochs": 0, "clip_norm": 0}
    metrics = distil("bert_s", "sst2", {**settings, **train}, task["transfer"], task["data"], teacher,
                     RunFiles.in_dir(task["root"] / "student"), None, "cpu")
    assert metrics["epochs"] == 1
    saved = yaml.safe_load((task["root"] / "student" / "model" / "student.json").read_text())
    assert saved["init"] == {"from": "teacher", "layers": [2, 3]}


def test_the_embed_baseline_follows_the_init(teacher, task, tmp_path):
    """Teacher init changes the untrained student's token table (the teacher's word vectors), so `init` stays in
    rule embed_model's params (`embed_table_settings`) and the baseline's table is the teacher's."""
    from kdprobe.distil import build_embed_model
    from kdprobe.students.embed import load_embed_model

    config = _config(teacher)
    settings = kdconfig.embed_table_settings(config, "sst2", "bert_s")
    assert settings["init"] == {"from": "teacher", "every": 2}
    out = build_embed_model("bert_s", copy.deepcopy(settings), task["transfer"], task["data"], teacher,
                            tmp_path / "embed")
    table = load_file(str(out / "embeddings.safetensors"))["weight"]
    words = _teacher_state(teacher)["bert.embeddings.word_embeddings.weight"]
    assert torch.equal(table, words[: table.shape[0]])
    assert load_embed_model(out).encode(["a good movie"])["input_ids"].shape[0] == 1


@pytest.mark.workflow
def test_the_pretrained_model_is_an_input_of_distil(tmp_path):
    """Rule distil takes `init.model` as an input (its content keys the run): a directory no rule makes and that
    is not here stops the dry run naming it; with teacher init there is no such input."""
    from smk import copy_project, snakemake

    project = copy_project(tmp_path / "project")
    override = tmp_path / "init.yaml"
    override.write_text(yaml.safe_dump({"students": {"bert_s": {
        "hidden": 1024, "intermediate": 4096, "heads": 16,
        "init": {"from": "pretrained", "model": "resources/models/bert-base-uncased", "every": 2}}}}))
    proc = snakemake(project, "-n", "results/students/sara/bert_s/metrics.json", "--configfile", str(override),
                     check=False)
    assert proc.returncode != 0 and "resources/models/bert-base-uncased" in proc.stdout + proc.stderr
    assert "MissingInput" in proc.stdout + proc.stderr
    override.write_text(yaml.safe_dump({"students": {"bert_s": {
        "hidden": 1024, "intermediate": 4096, "heads": 16, "init": {"from": "teacher", "every": 2}}}}))
    snakemake(project, "-n", "results/students/sara/bert_s/metrics.json", "--configfile", str(override))

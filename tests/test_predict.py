"""Dev-set prediction tables of the teacher and the students."""

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from kdprobe.errors import ConfigError, InputError
from kdprobe.predict import write_predictions
from kdprobe.students import build_student
from kdprobe.students.testing import LABELS, make_task, make_teacher


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    splits = make_task(root / "data", n_train=60, n_dev=37, n_test=10, seed=3)
    teacher = make_teacher(root / "teacher", splits["train"][0])
    return {"root": root, "data": root / "data", "teacher": teacher, "dev": splits["dev"]}


def _check_table(frame, path, dev):
    sentences, gold = dev
    assert list(frame.columns) == ["sentence", "gold", "pred", "confidence", "p_negative", "p_positive"]
    read = pd.read_csv(path, sep="\t", keep_default_na=False)
    assert list(read.columns) == list(frame.columns)
    assert read["sentence"].tolist() == sentences and read["gold"].tolist() == gold  # dev.tsv order
    probs = read[["p_negative", "p_positive"]].to_numpy()
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert np.allclose(read["confidence"], probs.max(1), atol=1e-6)
    assert (read["pred"] == np.array(LABELS)[probs.argmax(1)]).all()
    return probs


def test_teacher_predictions_match_unbatched_model(task, tmp_path):
    out = tmp_path / "teacher.tsv"
    frame = write_predictions("teacher", task["teacher"], task["data"], out, "cpu", batch_size=8)
    probs = _check_table(frame, out, task["dev"])
    tok = AutoTokenizer.from_pretrained(str(task["teacher"]))
    model = AutoModelForSequenceClassification.from_pretrained(str(task["teacher"])).eval()
    with torch.inference_mode():
        for i in (0, 5, 36):
            one = torch.softmax(model(**tok(task["dev"][0][i], return_tensors="pt")).logits, -1)[0].numpy()
            assert np.allclose(one, probs[i], atol=1e-5)


@pytest.mark.parametrize("kind,settings,info", [
    ("bert_s", {"layers": 1, "hidden": 16, "intermediate": 16, "heads": 2, "max_length": 32}, "teacher"),
    ("lstm_s", {"hidden": 8, "fc": 8, "embeddings": "random", "embedding_dim": 6, "embedding_mode": "non-static",
                "max_length": 32, "seed": 0}, "words"),
])
def test_student_predictions_match_unbatched_model(task, tmp_path, kind, settings, info):
    vocab = {"teacher_dir": task["teacher"], "labels": LABELS}
    if info == "words":
        vocab["sentences"] = task["dev"][0][:20]  # some dev words unknown on purpose
    torch.manual_seed(0)
    student = build_student(kind, settings, 2, vocab).eval()
    student.save(tmp_path / "student")
    out = tmp_path / f"{kind}.tsv"
    frame = write_predictions(kind, tmp_path / "student", task["data"], out, "cpu", batch_size=5)
    probs = _check_table(frame, out, task["dev"])
    with torch.inference_mode():
        for i in (0, 17, 36):
            one = torch.softmax(student(**student.encode([task["dev"][0][i]])), -1)[0].numpy()
            assert np.allclose(one, probs[i], atol=1e-5)


def test_prediction_errors(task, tmp_path):
    with pytest.raises(ConfigError, match="gpt2"):
        write_predictions("gpt2", task["teacher"], task["data"], tmp_path / "x.tsv", "cpu")
    three = make_teacher(tmp_path / "t3", task["dev"][0], n_labels=3)
    with pytest.raises(InputError, match="3 classes"):
        write_predictions("teacher", three, task["data"], tmp_path / "x.tsv", "cpu")
    bad = tmp_path / "data"
    bad.mkdir()
    (bad / "labels.txt").write_text("negative\npositive\n")
    (bad / "dev.tsv").write_text("sentence\tlabel\nok\tneutral\n")
    with pytest.raises(InputError, match="dev.tsv:2"):
        write_predictions("teacher", task["teacher"], bad, tmp_path / "x.tsv", "cpu")
    assert not (tmp_path / "x.tsv").exists()


def test_workflow_script(task, tmp_path):
    import runpy
    from pathlib import Path
    from types import SimpleNamespace

    class Named(list):
        def __init__(self, **named):
            super().__init__(named.values())
            self.__dict__.update(named)

        def items(self):
            return self.__dict__.items()

    script = Path(__file__).resolve().parents[1] / "workflow" / "scripts" / "predict.py"
    out = tmp_path / "predictions" / "teacher.tsv"
    snakemake = SimpleNamespace(
        input=Named(model=str(task["teacher"]), dev=str(task["data"] / "dev.tsv")), output=Named(out=str(out)),
        params=SimpleNamespace(), wildcards=Named(task="sst2", model="teacher"),
        log=[], threads=1, config={"device": "cpu"}, rule="predict",
    )
    runpy.run_path(str(script), init_globals={"snakemake": snakemake})
    assert len(pd.read_csv(out, sep="\t")) == 37

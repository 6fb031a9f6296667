"""Dev-set prediction tables of the teacher and the students."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from kdprobe.errors import ConfigError, InputError
from kdprobe.predict.predictions import write_predictions
from kdprobe.students import build_student
from kdprobe.students.testing import LABELS, make_task, make_teacher
from kdprobe.students.testing import SECTION


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
    frame = write_predictions("teacher", task["teacher"], task["data"], out, "cpu", batch_size=8, max_length=64)
    probs = _check_table(frame, out, task["dev"])
    tok = AutoTokenizer.from_pretrained(str(task["teacher"]))
    model = AutoModelForSequenceClassification.from_pretrained(str(task["teacher"])).eval()
    with torch.inference_mode():
        for i in (0, 5, 36):
            one = torch.softmax(model(**tok(task["dev"][0][i], return_tensors="pt")).logits, -1)[0].numpy()
            assert np.allclose(one, probs[i], atol=1e-5)


@pytest.mark.parametrize("kind,settings,info", [
    ("bert_s", {**SECTION["bert_s"], "layers": 1, "hidden": 16, "intermediate": 16, "heads": 2, "max_length": 32}, "teacher"),
    ("lstm_s", {**SECTION["lstm_s"], "hidden": 8, "fc": 8, "embeddings": "random", "embedding_dim": 6, "embedding_mode": "non-static",
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


LONG = "the movie was good and the plot was great " * 6  # 54 words, each one wordpiece


def _long_and_cut(root, n_tokens: int) -> Path:
    """A dev set of LONG and of LONG cut to its first `n_tokens` words (in both orders, amid other sentences)."""
    cut = " ".join(LONG.split()[:n_tokens])
    data = root / f"long{n_tokens}"
    make_task(data, n_train=4, n_dev=4, n_test=4, seed=5)
    dev = pd.read_csv(data / "dev.tsv", sep="\t")
    rows = [(LONG, "positive"), *dev.itertuples(index=False), (cut, "positive")]
    pd.DataFrame(rows, columns=["sentence", "label"]).to_csv(data / "dev.tsv", sep="\t", index=False)
    return data


def _probs(frame):
    return frame[["p_negative", "p_positive"]].to_numpy()


def _log_odds(probs):
    """log p_positive / p_negative: the logit difference, which softmax saturation does not hide."""
    probs = np.asarray(probs, dtype=np.float64)
    return np.log(probs[..., 1]) - np.log(probs[..., 0])


def _spread(model: torch.nn.Module) -> torch.nn.Module:
    """Re-draw the untrained model's weight matrices wide, so that different inputs get clearly different outputs."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    return model


def test_teacher_predictions_truncate_at_the_training_max_length(task, tmp_path):
    data = _long_and_cut(tmp_path, 10)  # [CLS] + 10 words + [SEP] = 12 tokens
    teacher = tmp_path / "teacher"
    tok = AutoTokenizer.from_pretrained(str(task["teacher"]))
    tok.save_pretrained(str(teacher))
    _spread(AutoModelForSequenceClassification.from_pretrained(str(task["teacher"]))).save_pretrained(str(teacher))
    assert tok(LONG, truncation=True, max_length=12)["input_ids"] == tok(" ".join(LONG.split()[:10]))["input_ids"]
    probs = _probs(write_predictions("teacher", teacher, data, tmp_path / "t.tsv", "cpu", max_length=12))
    np.testing.assert_allclose(probs[0], probs[-1], rtol=1e-5)  # the long sentence = its truncation
    longer = _probs(write_predictions("teacher", teacher, data, tmp_path / "u.tsv", "cpu", max_length=64))
    assert abs(_log_odds(longer[0]) - _log_odds(probs[0])) > 1e-3  # the limit matters for this sentence
    with pytest.raises(ConfigError, match="teacher.max_length"):
        write_predictions("teacher", teacher, data, tmp_path / "v.tsv", "cpu")


@pytest.mark.parametrize("kind,settings,info,n_words", [
    ("bert_s", {**SECTION["bert_s"], "layers": 1, "hidden": 16, "intermediate": 16, "heads": 2, "max_length": 9}, "teacher", 7),
    ("lstm_s", {**SECTION["lstm_s"], "hidden": 8, "fc": 8, "embeddings": "random", "embedding_dim": 6, "embedding_mode": "non-static",
                "max_length": 7, "seed": 0}, "words", 7),
])
def test_student_predictions_truncate_at_the_training_max_length(task, tmp_path, kind, settings, info, n_words):
    data = _long_and_cut(tmp_path, n_words)  # BERT_S counts [CLS] and [SEP]; LSTM_S words only
    vocab = {"teacher_dir": task["teacher"], "labels": LABELS}
    if info == "words":
        vocab["sentences"] = [LONG]
    torch.manual_seed(0)
    student = _spread(build_student(kind, settings, 2, vocab).eval())
    student.save(tmp_path / "student")
    probs = _probs(write_predictions(kind, tmp_path / "student", data, tmp_path / "s.tsv", "cpu",
                                     max_length=settings["max_length"]))
    np.testing.assert_allclose(probs[0], probs[-1], rtol=1e-5)
    with torch.inference_mode():
        shorter = torch.softmax(student(**student.encode([LONG], settings["max_length"] - 2)), -1)[0].numpy()
    assert abs(_log_odds(shorter) - _log_odds(probs[0])) > 1e-3  # the limit matters for this sentence
    with pytest.raises(InputError, match="trained with max_length"):  # config and student disagree: stale
        write_predictions(kind, tmp_path / "student", data, tmp_path / "x.tsv", "cpu", max_length=32)


def test_prediction_errors(task, tmp_path):
    with pytest.raises(ConfigError, match="gpt2"):
        write_predictions("gpt2", task["teacher"], task["data"], tmp_path / "x.tsv", "cpu")
    three = make_teacher(tmp_path / "t3", task["dev"][0], n_labels=3)
    with pytest.raises(InputError, match="3 classes"):
        write_predictions("teacher", three, task["data"], tmp_path / "x.tsv", "cpu", max_length=64)
    bad = tmp_path / "data"
    bad.mkdir()
    (bad / "labels.txt").write_text("negative\npositive\n")
    (bad / "dev.tsv").write_text("sentence\tlabel\nok\tneutral\n")
    with pytest.raises(InputError, match="dev.tsv:2"):
        write_predictions("teacher", task["teacher"], bad, tmp_path / "x.tsv", "cpu", max_length=64)
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
        params=SimpleNamespace(max_length=64), wildcards=Named(task="sst2", model="teacher"),
        log=[], threads=1, config={"device": "cpu"}, rule="predict",
    )
    runpy.run_path(str(script), init_globals={"snakemake": snakemake})
    assert len(pd.read_csv(out, sep="\t")) == 37


def test_batched_logits_halve_the_batch_when_cuda_runs_out_of_memory(caplog):
    from kdprobe.models import batched_logits
    from kdprobe.runtime import GpuOutOfMemory

    weight = torch.randn(7, 3, generator=torch.Generator().manual_seed(0))
    sizes = []

    def forward(input_ids, attention_mask, fits=4):  # a GPU that fits 4 sentences
        sizes.append(len(input_ids))
        if len(input_ids) > fits:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
        return (weight[input_ids] * attention_mask[..., None]).sum(1)

    sequences = [[1 + i % 5] * (1 + i % 4) for i in range(21)]
    whole = batched_logits(lambda ids, mask: forward(ids, mask, fits=99), sequences, 0, 16, "cpu")
    sizes.clear()
    halved = batched_logits(forward, sequences, 0, 16, "cpu")
    assert torch.allclose(halved, whole) and sizes == [16, 8, 4, 4, 4, 4, 4, 1]
    assert "batches of 16 sentences: batches of 8 from 0 of 21" in caplog.text
    with pytest.raises(GpuOutOfMemory, match=r"batches of 1 \(sentences\)"):
        batched_logits(lambda ids, mask: forward(ids, mask, fits=0), sequences, 0, 2, "cpu")

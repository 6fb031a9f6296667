"""kdprobe.report.results_page on a small results tree that the test writes (never this machine's results)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import save_file

from kdprobe.report import results_page
from kdprobe.errors import InputError
from smk import ROOT

TEACHER = {"cola": {"mcc": 0.5, "accuracy": 0.8}, "sst2": {"accuracy": 0.9}, "sara": {"micro_f1": 0.8, "macro_f1": 0.6}}
STUDENT = {"bert_s": {"cola": {"mcc": 0.25, "accuracy": 0.7}, "sst2": {"accuracy": 0.81},
                      "sara": {"micro_f1": 0.6, "macro_f1": 0.3}},
           "lstm_s": {"cola": {"mcc": 0.1, "accuracy": 0.69}, "sst2": {"accuracy": 0.72},
                      "sara": {"micro_f1": 0.4, "macro_f1": 0.12}}}
HEADLINE = {"cola": "mcc", "sst2": "accuracy", "sara": "micro_f1"}
OVERRIDE = {"teacher": {"model": "resources/offline/models/all-MiniLM-L6-v2"},
            "augment": {"sentences": 1000, "shards": 2},
            "students": {"lstm_s": {"embeddings": "teacher"}},
            "probe": {"tasks": ["sentence_length", "bigram_shift"], "data_dir": "resources/offline/probing"},
            "offline": {"seed": 1, "gpt2": {"vocab_size": 500, "hidden": 32, "layers": 2, "heads": 2, "epochs": 1,
                                            "batch_size": 8, "lr": 1e-3, "weight_decay": 0.0, "warmup_fraction": 0.1,
                                            "max_length": 32},
                        "probing": {"source": "sst2", "sizes": {"tr": 60, "va": 30, "te": 30}}}}


def _json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _bench(path: Path, seconds: float, cpu: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                    f"{seconds}\t0:00:00\t{seconds * 10}\t1\t1\t1\t0\t0\t50\t{cpu}\n")


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "config").mkdir()
    shutil.copy(ROOT / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    (tmp_path / "config" / "run.yaml").write_text(yaml.safe_dump(OVERRIDE))
    for task in TEACHER:
        _json(tmp_path / f"results/teacher/{task}/metrics.json", {"dev": TEACHER[task], "steps": 10})
        for student, scores in STUDENT.items():
            folder = tmp_path / f"results/students/{task}/{student}"
            _json(folder / "metrics.json", {"dev": scores[task], "best_epoch": 4, "epochs": 5,
                                            "n_params": 1000 if student == "bert_s" else 2000,
                                            "n_params_without_embeddings": 600, "transfer_size": 1234})
            col = f"dev_{HEADLINE[task]}"
            top = scores[task][HEADLINE[task]]
            pd.DataFrame({"epoch": [1, 2, 3, 4, 5], "loss": [1.0] * 5,
                          col: [top - 0.4, top - 0.2, top - 0.1, top, top - 0.01]}).to_csv(folder / "curve.csv",
                                                                                             index=False)
        pd.DataFrame({"step": [5, 10], "epoch": [1.0, 2.0], "loss": [0.5, 0.4],
                      f"dev_{HEADLINE[task]}": [TEACHER[task][HEADLINE[task]] - 0.1, TEACHER[task][HEADLINE[task]]]}
                     ).to_csv(tmp_path / f"results/teacher/{task}/curve.csv", index=False)
        (tmp_path / f"results/augment/{task}").mkdir(parents=True)
        pd.DataFrame({"sentence": [f"{task} one", f"{task} two"]}).to_parquet(
            tmp_path / f"results/augment/{task}/shard0.parquet")
    # the teacher: 10x4 word embeddings + 4x4 layer weight + 4 bias = 60 parameters, 20 outside the embeddings
    model = tmp_path / "results/teacher/cola/model"
    model.mkdir(parents=True)
    save_file({"bert.embeddings.word_embeddings.weight": torch.zeros(10, 4),
               "bert.encoder.layer.0.dense.weight": torch.zeros(4, 4), "classifier.bias": torch.zeros(4)},
              str(model / "model.safetensors"))
    scopes = [("pretrained", "teacher")] + [(t, m) for t in TEACHER for m in ("teacher", "bert_s", "lstm_s")]
    for scope, model_name in scopes:
        rows = [{"model": model_name, "probe_task": pt, "layer": layer, "pooling": "mean",
                 "test_acc": 0.5 + 0.1 * layer + (0.05 if pt == "bigram_shift" else 0), "dev_acc": 0.5,
                 "hidden": 50, "dropout": 0.0, "majority_acc": 0.25 if pt == "sentence_length" else 0.5,
                 "n_train": 60, "n_dev": 30, "n_test": 30}
                for pt in ("sentence_length", "bigram_shift") for layer in (1, 2)]
        path = tmp_path / f"results/probe/{scope}/{model_name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(path, index=False)
    # training labels and dev predictions: Sara's label `a` is rare (1 training example against 4 for b, c, d)
    train_labels = {"cola": ["0", "1"], "sst2": ["0", "1"], "sara": ["a"] + ["b", "c", "d"] * 4}
    for task, labels in train_labels.items():
        folder = tmp_path / f"resources/data/{task}"
        folder.mkdir(parents=True)
        pd.DataFrame({"sentence": [f"s{i}" for i in range(len(labels))], "label": labels}).to_csv(
            folder / "train.tsv", sep="\t", index=False)
    gold = ["a", "b", "c", "d"]
    for model_name, pred in {"teacher": gold, "bert_s": ["b", "b", "c", "d"], "lstm_s": ["a", "c", "c", "d"]}.items():
        path = tmp_path / f"results/predictions/sara/{model_name}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"sentence": ["w", "x", "y", "z"], "gold": gold, "pred": pred, "confidence": 0.9}).to_csv(
            path, sep="\t", index=False)
    _bench(tmp_path / "logs/benchmarks/teacher/cola.tsv", 60, 50)
    _bench(tmp_path / "logs/benchmarks/teacher/sst2.tsv", 120, 100)
    _bench(tmp_path / "logs/benchmarks/distil/cola/bert_s.tsv", 300, 290)
    return tmp_path


def _row(page: str, start: str) -> list[str]:
    line = next(line for line in page.splitlines() if line.startswith(start))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_page_reports_scores_shares_sizes_times_and_probes(tree):
    page = results_page.render(tree, ["config/run.yaml"])
    # scores and shares of the teacher's
    assert _row(page, "| sst2 | accuracy") == ["sst2", "accuracy (headline)", "0.900", "0.810", "90%", "0.720", "80%"]
    assert _row(page, "| cola | MCC") == ["cola", "MCC (headline)", "0.500", "0.250", "50%", "0.100", "20%"]
    assert _row(page, "| sara | macro F1") == ["sara", "macro F1", "0.600", "0.300", "50%", "0.120", "20%"]
    # convergence: best epoch, last three epochs, gain over mid-training (0.9 - 0.8 for SST-2's BERT_S)
    assert _row(page, "| sst2 | BERT_S") == ["sst2", "BERT_S", "4 / 5", "0.710, 0.810, 0.800", "0.100", "1,234"]
    assert _row(page, "| sara | teacher") == ["sara", "teacher", "final / 2", "0.700, 0.800", "0.000", "10 steps"]
    assert "- cola: `cola one` | `cola two`" in page  # generated sentences shown as they are
    # parameter counts: the teacher from its safetensors header, students from their metrics
    assert _row(page, "| teacher (all-MiniLM-L6-v2)") == ["teacher (all-MiniLM-L6-v2)", "60", "20"]
    assert _row(page, "| LSTM_S") == ["LSTM_S", "2,000", "600"]
    # wall and CPU time per stage, summed over the stage's jobs, in minutes
    assert _row(page, "| teacher fine-tuning") == ["teacher fine-tuning", "2", "3.0", "2.5", "1,200"]
    assert _row(page, "| **all stages**") == ["**all stages**", "3", "8.0", "7.3", ""]
    assert "| GPT-2 fine-tuning" not in page  # no benchmark files, no row
    # rare labels (Sara only: CoLA and SST-2 have two): mean per-label F1 on `a` and on b, c, d
    assert "| cola | teacher | " not in page.split("## Rare labels")[1].split("##")[0]
    assert _row(page, "| sara | teacher | 1 (1-1)") == ["sara", "teacher", "1 (1-1)", "1.000", "3", "1.000"]
    assert _row(page, "| sara | BERT_S | 1") == ["sara", "BERT_S", "1 (1-1)", "0.000", "3", "0.889"]  # b: 2/3
    assert _row(page, "| sara | LSTM_S | 1") == ["sara", "LSTM_S", "1 (1-1)", "1.000", "3", "0.556"]  # b 0, c 2/3
    # probing: one table per probe task, majority baseline, best layer
    assert "### sentence_length" in page and "### bigram_shift" in page
    assert "Majority baseline (test): 0.250." in page
    assert _row(page, "| teacher, pre-trained")[-1] == "0.700 (layer 2)"
    # the substitutions and the command are stated
    assert "--configfile config/run.yaml" in page and "no pre-trained GPT-2 can be had offline" in page
    assert "word_content" in page and "are missing here" in page


def test_a_missing_result_is_an_error_naming_the_file(tree, capsys):
    (tree / "results/students/sara/lstm_s/metrics.json").unlink()
    with pytest.raises(InputError, match="sara/lstm_s/metrics.json"):
        results_page.render(tree, ["config/run.yaml"])
    out = tree / "page.md"
    assert results_page.main(["--root", str(tree), "--configfile", "config/run.yaml", "--out", str(out)]) == 1
    assert not out.exists() and "metrics.json" in capsys.readouterr().err


def test_main_writes_the_page(tree):
    out = tree / "docs" / "results.md"
    assert results_page.main(["--root", str(tree), "--configfile", "config/run.yaml", "--out", str(out),
                              "--note", "Made on a shared machine."]) == 0
    text = out.read_text()
    assert text.startswith("# Results: the real study at laptop scale") and "\nMade on a shared machine.\n" in text

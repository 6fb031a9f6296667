"""kdprobe.offline: the stand-ins of the offline real-data study (corpus, small GPT-2, SentEval-format probing
files built from real sentences)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from kdprobe.errors import ConfigError, InputError
from kdprobe.offline import pretrain_gpt2, write_corpus, write_probing
from kdprobe.offline.probing import length_label, probing_rows, shift_bigram
from kdprobe.probe import senteval

WORDS = "the a film movie is was good bad very not quite funny dull story plot acting and but it this".split()


def _sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 32))) for _ in range(n)]


def test_length_labels_are_sentevals_bins():
    assert [length_label(["w"] * n) for n in (4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 25, 26, 28, 29)] == [
        None, "0", "0", "1", "1", "2", "2", "3", "3", "4", "4", "5", "5", None]


def test_bigram_shift_swaps_one_adjacent_pair_of_different_words():
    rng = random.Random(3)
    words = ("a", "a", "b", "c")
    for _ in range(20):
        shifted = shift_bigram(words, rng)
        diff = [i for i in range(4) if shifted[i] != words[i]]
        assert len(diff) == 2 and diff[1] == diff[0] + 1 and sorted(shifted) == sorted(words)
    assert shift_bigram(("x", "x", "x"), rng) is None


@pytest.mark.parametrize("task", ["sentence_length", "bigram_shift"])
def test_probing_files_are_senteval_format_balanced_and_disjoint(tmp_path, task):
    sentences = _sentences(4000)
    out = tmp_path / f"{task}.txt"
    write_probing(sentences, [task], {"tr": 120, "va": 60, "te": 60}, 7, {task: out})
    data = senteval.load(out)  # the probe's own reader accepts it
    assert {split: len(data[split][0]) for split in data} == {"train": 120, "dev": 60, "test": 60}
    seen = set()
    for split, (texts, labels) in data.items():
        counts = Counter(labels)
        assert max(counts.values()) - min(counts.values()) <= 1  # balanced
        assert not seen & set(texts)  # each sentence in one split only
        seen |= set(texts)
        if task == "sentence_length":
            assert set(counts) == {"0", "1", "2", "3", "4", "5"}
            assert all(length_label(t.split()) == lab for t, lab in zip(texts, labels))
        else:
            assert set(counts) == {"O", "I"}
    originals = set(sentences)
    if task == "bigram_shift":  # `O` sentences are real sentences as written
        for split, (texts, labels) in data.items():
            assert all(t in originals for t, lab in zip(texts, labels) if lab == "O")
    assert out.read_text().split("\n")[0].split("\t")[0] == "tr"
    # deterministic in the seed
    again = tmp_path / "again.txt"
    write_probing(sentences, [task], {"tr": 120, "va": 60, "te": 60}, 7, {task: again})
    assert again.read_text() == out.read_text()


def test_probing_refuses_tasks_it_cannot_build_and_too_few_sentences(tmp_path):
    with pytest.raises(ConfigError, match="probe.tasks"):
        probing_rows("tree_depth", _sentences(100), {"tr": 10, "va": 5, "te": 5}, 1)
    with pytest.raises(ConfigError, match="offline.probing.sizes"):
        probing_rows("sentence_length", _sentences(50), {"tr": 600, "va": 60, "te": 60}, 1)
    with pytest.raises(InputError):
        write_probing([], ["bigram_shift"], {"tr": 10, "va": 5, "te": 5}, 1, {"bigram_shift": tmp_path / "b.txt"})


def _train_tsv(path, sentences):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("sentence\tlabel\n" + "".join(f"{s}\t0\n" for s in sentences))
    return path


def test_corpus_keeps_distinct_training_sentences_by_task(tmp_path):
    a = _train_tsv(tmp_path / "a/train.tsv", ["one two", "three four", "one two"])
    b = _train_tsv(tmp_path / "b/train.tsv", ["three four", "five six"])
    out = tmp_path / "corpus.tsv"
    assert write_corpus({"cola": a, "sst2": b}, out) == ["one two", "three four", "five six"]
    assert out.read_text() == "sentence\tlabel\none two\tcola\nthree four\tcola\nfive six\tsst2\n"


def test_pretrained_gpt2_loads_and_generates(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    corpus = _train_tsv(tmp_path / "corpus.tsv", _sentences(64, seed=1))
    settings = {"vocab_size": 300, "hidden": 16, "layers": 1, "heads": 2, "epochs": 2, "batch_size": 16,
                "lr": 5e-3, "weight_decay": 0.0, "warmup_fraction": 0.1, "max_length": 40}
    info = pretrain_gpt2(corpus, settings, 0, tmp_path / "gpt2", tmp_path / "curve.csv", None, "cpu")
    curve = (tmp_path / "curve.csv").read_text().splitlines()
    assert info["sentences"] == 64 and len(curve) > 2
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "gpt2")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "gpt2")
    assert model.config.n_layer == 1 and len(tokenizer) <= 300
    assert tokenizer.bos_token == tokenizer.eos_token == "<|endoftext|>"
    first, last = float(curve[1].split(",")[2]), info["final_loss"]
    assert last < first  # it learnt something
    with pytest.raises(ConfigError, match="offline.gpt2.heads"):
        pretrain_gpt2(corpus, {k: v for k, v in settings.items() if k != "heads"}, 0, tmp_path / "x",
                      tmp_path / "x.csv", None, "cpu")

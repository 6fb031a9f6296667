"""Transfer sets of other kinds (students.<student>.transfer): d-bert's d-lite, random words, fractions, the summary."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kdprobe import config as kdconfig
from kdprobe.augment.generate import generate_shard
from kdprobe.augment.random_words import random_sentences, vocabulary
from kdprobe.augment.rules import (MASK, RulesSettings, TaggedSet, dlite_try, dlite_variants, shape_tag,
                                   tag_training_set, words)
from kdprobe.distil import read_transfer
from kdprobe.errors import ConfigError
from kdprobe.report.transfer_summary import transfer_summary
from kdprobe.transfer_sets import TransferKind, parse_transfer, subset_mask, transfer_kind

TRAIN = ["The quick brown fox jumps over the lazy dog .", "I did n't like the movie at all .",
         "Book a table in Berlin for two people .", "She sings and he dances every night ."]


def _train_tsv(path, sentences=TRAIN):
    pd.DataFrame({"sentence": sentences, "label": ["a"] * len(sentences)}).to_csv(path, sep="\t", index=False)
    return path


# ------------------------------------------------------------------------------------------------ the setting
def test_transfer_values_parse_and_bad_ones_name_the_key():
    assert transfer_kind({}) == TransferKind("gpt2", 1.0)
    assert parse_transfer("none") == TransferKind("none", 1.0)
    assert parse_transfer({"kind": "rules", "fraction": 0.5}) == TransferKind("rules", 0.5)
    assert parse_transfer({"kind": "rules", "fraction": 0.5}).label == "rules@0.5"
    with pytest.raises(ConfigError, match="students.bert_s.transfer.kind"):
        parse_transfer({"kind": "wiki"}, "students.bert_s.transfer")
    with pytest.raises(ConfigError, match="students.bert_s.transfer.fraction"):
        parse_transfer({"kind": "none", "fraction": 0}, "students.bert_s.transfer")
    with pytest.raises(ConfigError, match="transfer.seed"):
        parse_transfer({"kind": "none", "seed": 3})


def test_a_fraction_is_deterministic_nested_and_independent_of_the_seed():
    parts = [("train", 1000), ("shard0", 3000), ("shard1", 3000)]
    half = subset_mask(TransferKind("gpt2", 0.5), parts)
    third = subset_mask(TransferKind("gpt2", 1 / 3), parts)
    assert half.sum() == 3500 and third.sum() == round(7000 / 3)
    assert np.array_equal(half, subset_mask(TransferKind("gpt2", 0.5), parts))
    assert not (third & ~half).any()  # a third's rows are within the half's
    # each part contributes about its share (a uniform key per row)
    assert abs(half[:1000].mean() - 0.5) < 0.06
    # another kind draws other rows; the whole set for fraction 1
    assert not np.array_equal(half[:1000], subset_mask(TransferKind("none", 0.5), [("train", 1000)]))
    assert subset_mask(TransferKind("rules", 1.0), parts).all()


def test_distil_reads_only_the_fraction_s_rows(tmp_path):
    paths = []
    for name, n in (("train", 40), ("shard0", 60)):
        table = pa.table({"sentence": [f"{name} {i}" for i in range(n)], "input_ids": [[101, 102]] * n,
                          "logits": [[0.1, 0.2]] * n, "label": [None] * n})
        pq.write_table(table, tmp_path / f"{name}.parquet")
        paths.append(tmp_path / f"{name}.parquet")
    kind = TransferKind("rules", 0.3)
    frame = read_transfer(paths, 2, need_ids=False, transfer=kind)
    expected = subset_mask(kind, [("train", 40), ("shard0", 60)])
    everything = [f"train {i}" for i in range(40)] + [f"shard0 {i}" for i in range(60)]
    assert frame["sentence"].tolist() == [s for s, k in zip(everything, expected) if k]
    assert len(read_transfer(paths, 2, need_ids=False)) == 100


# ------------------------------------------------------------------------------------------------ d-lite
def _tagged(n_words=2000, tags=("A", "B", "C")):
    """A tagged set whose words are `<tag><i>`, so a word's tag can be read off it."""
    rng = random.Random(1)
    tag_seq = [rng.choice(tags) for _ in range(n_words)]
    ws = [f"{t}{i}" for i, t in enumerate(tag_seq)]
    by_tag = {t: [w for w in ws if w.startswith(t)] for t in tags}
    return ws, tag_seq, TaggedSet([(ws, tag_seq)], by_tag, {" ".join(ws)})


def test_dlite_masks_and_swaps_at_their_probabilities_and_keeps_the_part_of_speech():
    ws, tags, tagged = _tagged()
    settings = RulesSettings(p_mask=0.1, p_pos=0.2, p_ng=0.0)
    rng = random.Random(0)
    masked = swapped = kept = 0
    for _ in range(10):
        out = dlite_try(ws, tags, tagged.by_tag, settings, rng).split(" ")
        assert len(out) == len(ws)  # no window: every position stays
        for new, old, tag in zip(out, ws, tags):
            if new == MASK:
                masked += 1
            elif new != old:
                swapped += 1
                assert new.startswith(tag)  # the swap keeps the part of speech
            else:
                kept += 1
    n = 10 * len(ws)
    assert abs(masked / n - 0.1) < 0.01
    # a swap can draw the word itself (d-bert: random.choice over the tag's words): 1 in ~660 here
    assert abs(swapped / n - 0.2) < 0.015 and abs(kept / n - 0.7) < 0.015


def test_dlite_windows_are_contiguous_n_grams_of_1_to_max_ng_words():
    ws, tags, tagged = _tagged(40)
    settings = RulesSettings(p_mask=0.0, p_pos=0.0, p_ng=0.25, max_ng=5)
    rng = random.Random(3)
    lengths = Counter()
    text = " ".join(ws)
    for _ in range(4000):
        out = dlite_try(ws, tags, tagged.by_tag, settings, rng)
        n = len(out.split(" "))
        lengths[n] += 1
        assert f" {out} " in f" {text} "  # a contiguous run of the sentence's words
    windowed = sum(c for n, c in lengths.items() if n < len(ws))
    assert abs(windowed / 4000 - 0.25) < 0.03
    assert set(lengths) == {1, 2, 3, 4, 5, len(ws)}
    # as d-bert's randrange(len - n), the last window start is never drawn
    last = " ".join(ws[-5:])
    assert all(dlite_try(ws, tags, tagged.by_tag, settings, random.Random(s)) != last for s in range(500))


def test_dlite_keeps_variants_that_are_new_and_not_wholly_replaced():
    ws, tags = ["a", "b"], ["X", "X"]
    tagged = TaggedSet([(ws, tags)], {"X": ["a", "b"]}, {"a b"})
    out = dlite_variants(ws, tags, tagged, RulesSettings(variants=200, p_mask=0.5, p_pos=0.0, p_ng=0.0),
                         random.Random(0))
    # [MASK] [MASK] replaces every word, "a b" is the training sentence: two variants remain
    assert sorted(out) == sorted(["a [MASK]", "[MASK] b"])
    assert len(set(out)) == len(out)


def test_a_sentence_shorter_than_the_window_is_kept_whole():
    tagged = TaggedSet([], {"X": ["a"]}, set())
    settings = RulesSettings(p_mask=0.0, p_pos=0.0, p_ng=1.0, max_ng=5)
    assert {dlite_try(["a", "b"], ["X", "X"], tagged.by_tag, settings, random.Random(s)) for s in range(50)} \
        >= {"a b", "a"}


def test_the_taggers_work_offline():
    tagged = tag_training_set(["I did n't like the movie ."], "textblob")
    (ws, tags), = tagged.sentences
    assert ws == ["I", "did", "n't", "like", "the", "movie", "."]
    assert tags[0] == "PRP" and tags[1] == "VBD" and tags[4] == "DT" and tags[5] == "NN"
    assert words("Don't stop.") == ["Do", "n't", "stop", "."]
    assert [shape_tag(w) for w in ["Berlin", "runs", "running", "42", ",", "quickly", "dog"]] == \
        ["CAP", "W-s", "W-ing", "NUM", "PUNCT", "W-ly", "W-"]


def test_rules_settings_are_checked_naming_the_key():
    with pytest.raises(ConfigError, match="augment.rules.p_pos"):
        RulesSettings.from_section({"p_mask": 0.6, "p_pos": 0.6})
    with pytest.raises(ConfigError, match="augment.rules.pos"):
        RulesSettings.from_section({"pos": "spacy"})
    with pytest.raises(ConfigError, match="augment.rules.window"):
        RulesSettings.from_section({"window": 3})


# ------------------------------------------------------------------------------------------------ random words
def test_random_words_follow_the_training_frequencies_and_lengths():
    vocab = vocabulary([["a", "a", "a", "b"], ["a", "c", "b", "a"], []])
    assert vocab.words == ("a", "b", "c") and np.allclose(vocab.probs, [5 / 8, 2 / 8, 1 / 8])
    assert vocab.lengths.tolist() == [4, 4]  # the empty sentence is no length
    sentences = random_sentences(vocab, 3000, np.random.default_rng(0))
    assert all(len(s.split()) == 4 for s in sentences)
    counts = Counter(w for s in sentences for w in s.split())
    assert abs(counts["a"] / 12000 - 5 / 8) < 0.015 and abs(counts["c"] / 12000 - 1 / 8) < 0.01
    with pytest.raises(ConfigError, match="transfer"):
        vocabulary([[]])


# ------------------------------------------------------------------------------------------------ shards
def _config(shards=2):
    return {"augment": {"sentences": 50, "shards": shards, "seed": 7, "chunk_size": 20,
                        "rules": {"variants": 5}, "random_words": {"sentences": 30}},
            "tasks": {"cola": {}}}


def test_shard_settings_carry_exactly_their_kind_s_settings():
    config = _config()
    rules = kdconfig.generated_shard_settings(config, "cola", "rules", 1)
    assert rules == {"seed": 8, "chunk_size": 20, "shard": 1, "shards": 2, "rules": {"variants": 5}}
    assert kdconfig.generated_shard_settings(config, "cola", "random_words", 0) == {
        "seed": 7, "chunk_size": 20, "sentences": 15}
    # GPT-2's shards do not depend on the generated kinds' sections
    assert "rules" not in kdconfig.shard_settings(config, "cola", 0)
    with pytest.raises(ConfigError, match="augment.shards"):
        kdconfig.generated_shard_settings(config, "cola", "rules", 2)


@pytest.mark.parametrize("kind", ["rules", "random_words"])
def test_shards_are_reproducible_and_resume_to_the_same_sentences(tmp_path, monkeypatch, kind):
    train = _train_tsv(tmp_path / "train.tsv")
    shards = [kdconfig.generated_shard_settings(_config(), "cola", kind, i) for i in range(2)]
    out = [generate_shard(kind, train, s, tmp_path / f"shard{i}.parquet", tmp_path / f"state{i}")
           for i, s in enumerate(shards)]
    first = pq.read_table(tmp_path / "shard0.parquet").column("sentence").to_pylist()
    assert out[0] == len(first) > 0
    if kind == "random_words":
        assert out == [15, 15]
    else:  # shard 0: the first two training sentences, five tries each, every variant new
        assert len(first) <= 10 and len(set(first)) == len(first)
        assert not set(first) & {" ".join(words(s)) for s in TRAIN}
    settings = dict(shards[0], chunk_size=5)  # rules: one training sentence a chunk; random words: 5 sentences
    generate_shard(kind, train, settings, tmp_path / "full.parquet", tmp_path / "state-full")
    full = pq.read_table(tmp_path / "full.parquet").column("sentence").to_pylist()
    # a killed job: chunk 0 written, then the job stops; the rerun resumes and gives the same shard
    from kdprobe.augment import generate as gen

    original, calls = gen.ChunkStore.write, []

    def stop_after_one(self, j, table):
        calls.append(j)
        if len(calls) > 1:
            raise RuntimeError("killed")
        original(self, j, table)

    monkeypatch.setattr(gen.ChunkStore, "write", stop_after_one)
    with pytest.raises(RuntimeError, match="killed"):
        generate_shard(kind, train, settings, tmp_path / "partial.parquet", tmp_path / "state-partial")
    monkeypatch.setattr(gen.ChunkStore, "write", original)
    assert (tmp_path / "state-partial" / "chunk00000.parquet").exists()
    generate_shard(kind, train, settings, tmp_path / "partial.parquet", tmp_path / "state-partial")
    assert pq.read_table(tmp_path / "partial.parquet").column("sentence").to_pylist() == full


# ------------------------------------------------------------------------------------------------ summary
def test_the_summary_counts_sizes_duplicates_and_empties(tmp_path):
    train = _train_tsv(tmp_path / "train.tsv", ["a b", "c d e"])
    pq.write_table(pa.table({"sentence": ["x y", "a b", "x y"]}), tmp_path / "s0.parquet")
    pq.write_table(pa.table({"sentence": [" ", "x y", "q"]}), tmp_path / "s1.parquet")
    table = transfer_summary(train, {"none": [], "rules": [tmp_path / "s0.parquet", tmp_path / "s1.parquet"]},
                             {"rules": [1.0, 0.5]})
    assert table["kind"].tolist() == ["rules", "none"]  # KINDS order
    rules, none = table.to_dict("records")
    assert (rules["sentences"], rules["training"], rules["augmented"]) == (8, 2, 6)
    # "x y" three times (2 repeats), " " once (empty), "a b" equals a training sentence
    assert rules["duplicates"] == 2 and rules["training_duplicates"] == 1 and rules["empty"] == 1
    assert rules["mean_words"] == pytest.approx((2 + 2 + 2 + 0 + 2 + 1) / 6)
    assert rules["training_mean_words"] == pytest.approx(2.5)
    assert rules["fractions"] == "1 0.5" and rules["used"] == "8 4"
    assert (none["sentences"], none["augmented"], none["duplicates"]) == (2, 0, 0)


def test_the_transfer_set_shapes_the_untrained_baselines_too():
    """LSTM_S's word vocabulary is the transfer set's words: `transfer` is no training-only setting, so the embed.
    and random baselines (rules embed_model, random_student) follow it."""
    assert "transfer" not in kdconfig.TRAINING_ONLY
    config = {"students": {"lstm_s": {"lr": 1.0, "transfer": "rules"}}, "tasks": {"cola": {}}}
    assert kdconfig.embed_table_settings(config, "cola", "lstm_s") == {"transfer": "rules"}

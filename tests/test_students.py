"""Students (BERT_S, LSTM_S), their input encodings, word2vec reading, save/load."""

import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from kdprobe.embeddings import (
    PAD,
    UNK,
    build_vocab,
    load_word2vec,
    read_vocab,
    word_tokenize,
    write_word2vec,
)
from kdprobe.errors import ConfigError, InputError
from kdprobe.students import build_student, load_student
from kdprobe.students.testing import make_teacher, make_word2vec, synthetic_sentences

THESIS_BERT_S = {"layers": 5, "hidden": 204, "intermediate": 750, "heads": 3, "dropout": 0.1, "max_length": 128}
THESIS_LSTM_S = {"hidden": 300, "fc": 400, "dropout": 0.1, "max_length": 128}
TINY_BERT_S = {"layers": 2, "hidden": 16, "intermediate": 32, "heads": 2, "dropout": 0.1, "max_length": 32,
               "embeddings": "random", "seed": 1}
TINY_LSTM_S = {"hidden": 12, "fc": 10, "dropout": 0.1, "max_length": 32, "embeddings": "random",
               "embedding_dim": 8, "embedding_mode": "multichannel", "seed": 1}
SENTENCES = ["The movie was good .", "A really dull , sad plot !", "it", "Great actor and nice story overall"]


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    sentences, _ = synthetic_sentences(100, 0)
    return make_teacher(tmp_path_factory.mktemp("teacher"), sentences)


@pytest.fixture(scope="module")
def large_teacher_dir(tmp_path_factory):
    """BERT-large-width (1024) wordpiece embeddings, one thin layer: the thesis' teacher-embedding setting."""
    sentences, _ = synthetic_sentences(100, 0)
    return make_teacher(tmp_path_factory.mktemp("teacher1024"), sentences, hidden=1024, heads=16, intermediate=8)


# ------------------------------------------------------------------------------------- tokeniser, vocab
def test_word_tokenize():
    assert word_tokenize("Don't STOP: it's 3.5 stars (really)!") == [
        "don", "'", "t", "stop", ":", "it", "'", "s", "3", ".", "5", "stars", "(", "really", ")", "!"]
    assert word_tokenize("naïve café@home #1") == ["naïve", "café", "home", "1"]
    assert word_tokenize("  ") == []


def test_build_vocab_order_and_specials():
    vocab = build_vocab(["b a a", "c b a", "[PAD]"])
    assert vocab[:2] == [PAD, UNK]
    assert vocab[2:] == ["a", "b", "c", "pad"]  # count desc, then alphabetical; '[PAD]' text is words


# ------------------------------------------------------------------------------------------- word2vec
@pytest.fixture()
def w2v_words():
    return ["the", "Good", "good", "Movie", "zebra", "plot", ",", "naïve"]


@pytest.mark.parametrize("binary", [True, False])
def test_word2vec_keeps_vocab_rows_only(tmp_path, w2v_words, binary):
    path = tmp_path / ("w2v.bin" if binary else "w2v.txt")
    vectors = make_word2vec(path, w2v_words, dim=6, binary=binary)
    vocab = [PAD, UNK, "the", "good", "movie", "plot", "naïve", "unseen"]
    m = load_word2vec(path, vocab, seed=3)
    assert m.shape == (8, 6) and m.dtype == torch.float32
    assert torch.equal(m[0], torch.zeros(6))  # PAD
    assert torch.allclose(m[2], torch.from_numpy(vectors[0]))  # the
    assert torch.allclose(m[3], torch.from_numpy(vectors[2]))  # exact 'good' wins over the earlier 'Good'
    assert torch.allclose(m[4], torch.from_numpy(vectors[3]))  # 'movie' falls back to 'Movie'
    assert torch.allclose(m[5], torch.from_numpy(vectors[5]))
    assert torch.allclose(m[6], torch.from_numpy(vectors[7]))  # UTF-8 word
    for row in (1, 7):  # UNK and an unseen word: U[-0.25, 0.25], seeded
        assert m[row].abs().max() <= 0.25 and m[row].abs().sum() > 0
    assert torch.equal(m, load_word2vec(path, vocab, seed=3))
    assert not torch.equal(m[7], load_word2vec(path, vocab, seed=4)[7])


def test_word2vec_binary_and_text_agree_and_formats_are_detected(tmp_path, w2v_words):
    vectors = np.random.default_rng(0).normal(size=(len(w2v_words), 5)).astype(np.float32)
    write_word2vec(tmp_path / "a.bin", w2v_words, vectors, binary=True)
    write_word2vec(tmp_path / "a.txt", w2v_words, vectors, binary=False)
    shutil.copy(tmp_path / "a.bin", tmp_path / "noext_binary")
    shutil.copy(tmp_path / "a.txt", tmp_path / "noext_text")
    vocab = [PAD, UNK, "the", "plot", "zebra", "x"]
    ref = load_word2vec(tmp_path / "a.bin", vocab)
    for name in ("a.txt", "noext_binary", "noext_text"):
        assert torch.allclose(load_word2vec(tmp_path / name, vocab), ref), name
    # binary written without the newline after each vector (gensim's layout)
    with open(tmp_path / "b.bin", "wb") as fh:
        fh.write(f"{len(w2v_words)} 5\n".encode())
        for w, v in zip(w2v_words, vectors):
            fh.write(w.encode() + b" " + v.tobytes())
    assert torch.allclose(load_word2vec(tmp_path / "b.bin", vocab), ref)
    # GloVe-style text without header
    lines = [w + " " + " ".join(map(str, v)) for w, v in zip(w2v_words, vectors)]
    (tmp_path / "glove.txt").write_text("\n".join(lines) + "\n")
    assert torch.allclose(load_word2vec(tmp_path / "glove.txt", vocab), ref)


def test_word2vec_errors(tmp_path, w2v_words):
    make_word2vec(tmp_path / "w.bin", w2v_words, dim=4)
    data = (tmp_path / "w.bin").read_bytes()
    (tmp_path / "cut.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="ends after"):
        load_word2vec(tmp_path / "cut.bin", [PAD, UNK, "the"])
    (tmp_path / "bad.txt").write_text("2 3\nthe 1 2 3\nplot 1 x 3\n")
    with pytest.raises(InputError, match="bad.txt:3"):
        load_word2vec(tmp_path / "bad.txt", [PAD, UNK, "the"])
    with pytest.raises(InputError, match="not found"):
        load_word2vec(tmp_path / "missing.bin", [PAD, UNK])


# ------------------------------------------------------------------------------------- parameter counts
def test_bert_s_thesis_size(teacher_dir, large_teacher_dir, capsys):
    for emb, tdir in (("random", teacher_dir), ("teacher", large_teacher_dir)):
        s = build_student("bert_s", {**THESIS_BERT_S, "embeddings": emb}, 2, {"teacher_dir": tdir})
        n = s.n_params_without_embeddings()
        with capsys.disabled():
            print(f"\nBERT_S ({emb} embeddings) parameters without embeddings: {n:,} (all: {s.n_params():,})")
        assert abs(n - 2.42e6) / 2.42e6 < 0.02
        assert n == 2_417_888
        assert len(s.bert.encoder.layer) == 5
    # teacher embeddings: the teacher's 1024-d table through a trainable projection to 204
    emb = s.bert.get_input_embeddings()
    assert emb.embedding.weight.shape[1] == 1024 and emb.projection.weight.shape == (204, 1024)
    assert emb.projection.weight.requires_grad and emb.embedding.weight.requires_grad


def test_lstm_s_thesis_size(capsys):
    sentences = ["a b c", "d e"]
    counts = {}
    for mode in ("static", "non-static", "multichannel"):
        s = build_student("lstm_s", {**THESIS_LSTM_S, "embeddings": "random", "embedding_mode": mode}, 2,
                          {"sentences": sentences})
        counts[mode] = s.n_params_without_embeddings()
    with capsys.disabled():
        print(f"\nLSTM_S parameters without embeddings (300-d inputs): {counts}")
    assert abs(counts["multichannel"] - 2.41e6) / 2.41e6 < 0.02
    assert counts == {"static": 1_686_002, "non-static": 1_686_002, "multichannel": 2_406_002}


# ---------------------------------------------------------------------------------------- behaviour
def test_bert_s_interface(teacher_dir):
    torch.manual_seed(0)
    s = build_student("bert_s", TINY_BERT_S, 3, {"teacher_dir": teacher_dir}).eval()
    assert s.kind == "bert_s"
    enc = s.encode(SENTENCES)
    assert enc["input_ids"].dtype == torch.long and enc["attention_mask"].dtype == torch.long
    lengths = enc["attention_mask"].sum(1)
    assert enc["input_ids"].shape[1] == lengths.max()
    assert (enc["input_ids"][:, 0] == s.inputs.tokenizer.cls_token_id).all()
    assert s.encode(["word " * 100])["input_ids"].shape[1] == 32  # max_length
    assert s.encode(["word " * 100], max_length=10)["input_ids"][0, -1] == s.inputs.tokenizer.sep_token_id
    logits = s(**enc)
    states = s.layer_states(**enc)
    assert logits.shape == (4, 3)
    assert len(states) == 2 and all(x.shape == (4, enc["input_ids"].shape[1], 16) for x in states)
    # padding does not change a sentence's result
    alone = s.encode(SENTENCES[2:3])
    assert torch.allclose(s(**alone)[0], logits[2], atol=1e-5)
    assert torch.allclose(s.layer_states(**alone)[-1][0], states[-1][2, : alone["input_ids"].shape[1]], atol=1e-5)
    # stored teacher ids are reused, cut keeping [SEP]
    ids = np.arange(2, 50)
    cut = s.fit_teacher_ids(ids)
    assert len(cut) == 32 and cut[-1] == s.inputs.tokenizer.sep_token_id and (cut[:31] == ids[:31]).all()


def test_lstm_s_interface_and_padding(tmp_path):
    torch.manual_seed(0)
    s = build_student("lstm_s", TINY_LSTM_S, 2, {"sentences": SENTENCES}).eval()
    enc = s.encode(SENTENCES + ["@@@"])  # nothing tokenisable -> one [UNK]
    assert enc["attention_mask"].sum(1).tolist() == [5, 7, 1, 6, 1]
    assert enc["input_ids"][4, 0] == 1
    logits = s(**enc)
    (states,) = s.layer_states(**enc)
    assert logits.shape == (5, 2) and states.shape == (5, 7, 24)
    assert (states[2, 1:] == 0).all()  # padded steps
    # final states: forward half at the last real token, backward half at position 0
    final = s._run_lstm(enc["input_ids"], enc["attention_mask"], outputs=False)
    lengths = enc["attention_mask"].sum(1)
    for i in range(5):
        assert torch.allclose(final[i, :12], states[i, lengths[i] - 1, :12], atol=1e-6)
        assert torch.allclose(final[i, 12:], states[i, 0, 12:], atol=1e-6)
    for i, sentence in enumerate(SENTENCES):
        assert torch.allclose(s(**s.encode([sentence]))[0], logits[i], atol=1e-5)


@pytest.mark.parametrize("mode,frozen,trainable", [("static", 1, 0), ("non-static", 0, 1), ("multichannel", 1, 1)])
def test_lstm_s_embedding_modes(tmp_path, mode, frozen, trainable):
    words = [PAD, UNK, "the", "good", "movie", "plot"]
    path = tmp_path / "w2v.bin"
    vectors = make_word2vec(path, ["the", "good", "movie"], dim=8)
    s = build_student("lstm_s", {**TINY_LSTM_S, "embeddings": "word2vec", "embedding_mode": mode}, 2,
                      {"words": words, "word2vec": path})
    channels = s.embed.channels()
    assert len(channels) == frozen + trainable
    assert sum(not c.weight.requires_grad for c in channels) == frozen
    for c in channels:
        assert torch.allclose(c.weight[2], torch.from_numpy(vectors[0]))
    assert s.lstm.input_size == 8 * len(channels)  # multichannel: concatenated
    before = [c.weight.detach().clone() for c in channels]
    opt = torch.optim.Adam([p for p in s.parameters() if p.requires_grad], lr=0.1)
    enc = s.encode(["the good movie", "plot"])
    s(**enc).sum().backward()
    opt.step()
    for c, b in zip(channels, before):
        assert torch.equal(c.weight, b) == (not c.weight.requires_grad)


def test_lstm_s_teacher_wordpieces(large_teacher_dir):
    s = build_student("lstm_s", {**TINY_LSTM_S, "embeddings": "teacher", "embedding_dim": 300}, 2,
                      {"teacher_dir": large_teacher_dir})
    enc = s.encode(["the good movie"])
    tok = s.inputs.tokenizer
    assert tok.cls_token_id not in enc["input_ids"][0].tolist()  # no special tokens for the LSTM
    assert s.embed.projection.weight.shape == (300, 1024) and s.lstm.input_size == 600
    assert s(**enc).shape == (1, 2)
    assert s.n_params_without_embeddings() == sum(
        p.numel() for n, p in s.named_parameters() if not n.startswith("embed."))


# ------------------------------------------------------------------------------------------ save/load
@pytest.mark.parametrize("kind,settings,source", [
    ("bert_s", TINY_BERT_S, "teacher"),
    ("bert_s", {**TINY_BERT_S, "embeddings": "teacher"}, "teacher"),
    ("lstm_s", {**TINY_LSTM_S, "embeddings": "word2vec"}, "words"),
    ("lstm_s", {**TINY_LSTM_S, "embeddings": "teacher", "embedding_mode": "non-static"}, "teacher"),
])
def test_save_load_roundtrip_is_self_contained(tmp_path, kind, settings, source):
    sentences, _ = synthetic_sentences(50, 1)
    tdir = make_teacher(tmp_path / "teacher", sentences)
    info = {"teacher_dir": tdir, "labels": ["neg", "pos"]}
    if source == "words":
        make_word2vec(tmp_path / "w2v.txt", ["the", "movie", "good"], dim=8, binary=False)
        info.update(sentences=sentences, word2vec=tmp_path / "w2v.txt")
    torch.manual_seed(0)
    s = build_student(kind, settings, 2, info).eval()
    s.save(tmp_path / "student")
    shutil.rmtree(tdir)  # the student directory must not need the teacher
    (tmp_path / "w2v.txt").unlink(missing_ok=True)
    files = {p.name for p in (tmp_path / "student").iterdir()}
    assert {"student.json", "model.safetensors"} <= files
    assert ("vocab.txt" in files) == (source == "words")
    assert ("tokenizer.json" in files) == (source == "teacher")
    assert not any(name.startswith(".") for name in files)  # no temporaries left
    loaded = load_student(tmp_path / "student", "cpu")
    assert loaded.kind == kind and not loaded.training and loaded.labels == ["neg", "pos"]
    enc, enc2 = s.encode(SENTENCES), loaded.encode(SENTENCES)
    assert torch.equal(enc["input_ids"], enc2["input_ids"])
    assert torch.equal(s(**enc), loaded(**enc2))
    for a, b in zip(s.layer_states(**enc), loaded.layer_states(**enc2)):
        assert torch.equal(a, b)
    assert set(load_file(str(tmp_path / "student" / "model.safetensors"))) == set(s.state_dict())
    assert [p.requires_grad for p in s.parameters()] == [p.requires_grad for p in loaded.parameters()]
    if source == "words":
        assert read_vocab(tmp_path / "student" / "vocab.txt") == s.inputs.words


def test_build_and_load_errors(tmp_path, teacher_dir):
    with pytest.raises(ConfigError, match="unknown student"):
        build_student("cnn_s", {}, 2, {})
    with pytest.raises(ConfigError, match="embeddings"):
        build_student("bert_s", {**TINY_BERT_S, "embeddings": "glove"}, 2, {"teacher_dir": teacher_dir})
    with pytest.raises(ConfigError, match="embedding_mode"):
        build_student("lstm_s", {**TINY_LSTM_S, "embedding_mode": "dual"}, 2, {"sentences": ["a"]})
    with pytest.raises(ConfigError, match="word2vec"):
        build_student("lstm_s", {**TINY_LSTM_S, "embeddings": "word2vec"}, 2, {"sentences": ["a"]})
    with pytest.raises(InputError, match="student.json"):
        load_student(tmp_path, "cpu")


def test_lstm_s_cpu_path_equals_packed_sequences():
    """The CPU path (no packing, backward direction reversed within each row) computes what the packed BiLSTM
    computes: final states, per-token states and gradients."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(0)
    s = build_student("lstm_s", {**TINY_LSTM_S, "dropout": 0.0}, 2, {"sentences": SENTENCES})
    enc = s.encode(SENTENCES + ["@@@"])
    ids, mask = enc["input_ids"], enc["attention_mask"]
    ids = torch.cat([ids, torch.zeros(len(ids), 3, dtype=ids.dtype)], dim=1)  # extra padding columns
    mask = torch.cat([mask, torch.zeros(len(mask), 3, dtype=mask.dtype)], dim=1)
    lengths = mask.sum(1)
    packed = pack_padded_sequence(s.embed(ids), lengths, batch_first=True, enforce_sorted=False)
    out, (h_n, _) = s.lstm(packed)
    ref_final = torch.cat([h_n[-2], h_n[-1]], dim=-1)
    ref_states = pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])[0]
    final = s._run_lstm(ids, mask, outputs=False)
    (states,) = s.layer_states(ids, mask)
    torch.testing.assert_close(final, ref_final, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(states, ref_states, atol=1e-6, rtol=1e-5)
    grads = torch.autograd.grad(final.square().sum(), [s.lstm.weight_hh_l0, s.lstm.weight_ih_l0_reverse])
    ref = torch.autograd.grad(ref_final.square().sum(), [s.lstm.weight_hh_l0, s.lstm.weight_ih_l0_reverse])
    for a, b in zip(grads, ref):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)

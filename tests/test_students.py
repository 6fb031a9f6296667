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
from kdprobe.students import build_student, load_student, reads_words
from kdprobe.students.testing import make_teacher, make_word2vec, synthetic_sentences
from kdprobe.students.testing import SECTION

THESIS_BERT_S = {**SECTION["bert_s"],
                 "layers": 5, "hidden": 204, "intermediate": 750, "heads": 3, "dropout": 0.1, "max_length": 128}
THESIS_LSTM_S = {**SECTION["lstm_s"], "hidden": 300, "fc": 400, "dropout": 0.1, "max_length": 128}
TINY_BERT_S = {**SECTION["bert_s"],
               "layers": 2, "hidden": 16, "intermediate": 32, "heads": 2, "dropout": 0.1, "max_length": 32,
               "embeddings": "random", "seed": 1}
TINY_LSTM_S = {**SECTION["lstm_s"], "hidden": 12, "fc": 10, "dropout": 0.1, "max_length": 32, "embeddings": "random",
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
def test_bert_s_thesis_size(large_teacher_dir, tmp_path, capsys):
    """2,417,888 parameters without embeddings (~2.42M), whatever the embeddings and mode: the word tables and the
    projection to the hidden size are embedding-side; 2,417,480 by the thesis's rule (`thesis_size`)."""
    make_word2vec(tmp_path / "w2v.bin", ["good", "movie"], dim=300)
    info = {"teacher_dir": large_teacher_dir, "sentences": ["a good movie", "bad"], "word2vec": tmp_path / "w2v.bin"}
    for emb in ("random", "teacher", "word2vec"):
        for mode in ("static", "non-static", "multichannel"):
            s = build_student("bert_s", {**THESIS_BERT_S, "embeddings": emb, "embedding_mode": mode}, 2, info)
            n = s.n_params_without_embeddings()
            if mode == "non-static":
                with capsys.disabled():
                    print(f"\nBERT_S ({emb} embeddings) parameters without embeddings: {n:,} (all: {s.n_params():,})")
            assert n == 2_417_888, (emb, mode)
            assert s.n_thesis_params() == 2_417_480, (emb, mode)  # the thesis's rule: embedding LayerNorm out too
            assert len(s.bert.encoder.layer) == 5
            emb_module = s.bert.get_input_embeddings()
            projected = {"random": None, "teacher": 1024, "word2vec": 300}[emb]
            if projected:  # a trainable projection of the vectors' width to 204
                assert emb_module.projection.weight.shape == (204, projected)
                assert emb_module.projection.weight.requires_grad
    assert abs(2_417_888 - 2.42e6) / 2.42e6 < 0.02


def test_lstm_s_thesis_size(capsys):
    sentences = ["a b c", "d e"]
    counts = {}
    for layers in (1, 2):
        for mode in ("static", "non-static", "multichannel"):
            settings = {**THESIS_LSTM_S, "embeddings": "random", "embedding_mode": mode, "layers": layers}
            counts[mode, layers] = build_student("lstm_s", settings, 2, {"sentences": sentences}
                                                 ).n_params_without_embeddings()
    with capsys.disabled():
        print(f"\nLSTM_S parameters without embeddings (300-d inputs; mode, layers): {counts}")
    assert abs(counts["multichannel", 1] - 2.41e6) / 2.41e6 < 0.02
    assert {m: counts[m, 1] for m in ("static", "non-static", "multichannel")} == {
        "static": 1_686_002, "non-static": 1_686_002, "multichannel": 2_406_002}
    # a second layer: 2 directions x 4 gates x 300 x (600 inputs + 300 recurrent + 2 biases)
    assert all(counts[m, 2] - counts[m, 1] == 2 * 4 * 300 * 902 for m in ("static", "non-static", "multichannel"))


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
    final = s._run_lstm(enc["input_ids"], enc["attention_mask"], per_token=False)
    lengths = enc["attention_mask"].sum(1)
    for i in range(5):
        assert torch.allclose(final[i, :12], states[i, lengths[i] - 1, :12], atol=1e-6)
        assert torch.allclose(final[i, 12:], states[i, 0, 12:], atol=1e-6)
    for i, sentence in enumerate(SENTENCES):
        assert torch.allclose(s(**s.encode([sentence]))[0], logits[i], atol=1e-5)


def input_embedding(student):
    return student.embed if student.kind == "lstm_s" else student.bert.get_input_embeddings()


@pytest.mark.parametrize("kind", ["lstm_s", "bert_s"])
@pytest.mark.parametrize("mode,frozen,trainable", [("static", 1, 0), ("non-static", 0, 1), ("multichannel", 1, 1)])
def test_word2vec_embedding_modes(tmp_path, kind, mode, frozen, trainable):
    """Both students read word2vec vectors in the three modes through the same channels: frozen tables stay as they
    are, trained ones change; LSTM_S concatenates the channels, BERT_S projects and averages them."""
    words = [PAD, UNK, "the", "good", "movie", "plot"]
    path = tmp_path / "w2v.bin"
    vectors = make_word2vec(path, ["the", "good", "movie"], dim=8)
    settings = {**(TINY_LSTM_S if kind == "lstm_s" else TINY_BERT_S), "embeddings": "word2vec", "embedding_mode": mode}
    torch.manual_seed(0)
    s = build_student(kind, settings, 2, {"words": words, "word2vec": path})
    assert reads_words(kind, settings) and s.inputs.kind == "words" and not s.reads_teacher_ids
    emb = input_embedding(s)
    channels = emb.channels()
    assert len(channels) == frozen + trainable
    assert sum(not c.weight.requires_grad for c in channels) == frozen
    the = s.inputs.index["the"]
    for c in channels:
        assert torch.allclose(c.weight[the], torch.from_numpy(vectors[0]))
    ids = torch.tensor([[the, s.inputs.index["plot"]]])
    if kind == "lstm_s":
        assert emb.projection is None and s.lstm.input_size == 8 * len(channels)  # multichannel: concatenated
        assert torch.equal(emb(ids), torch.cat([c(ids) for c in channels], dim=-1))
    else:
        assert emb.projection.weight.shape == (16, 8) and emb.out_features == 16  # to the hidden size
        torch.testing.assert_close(emb(ids), torch.stack([emb.projection(c(ids)) for c in channels]).mean(0))
    before = [c.weight.detach().clone() for c in channels]
    opt = torch.optim.Adam([p for p in s.parameters() if p.requires_grad], lr=0.1)
    enc = s.encode(["the good movie", "plot"])
    s(**enc).sum().backward()
    opt.step()
    for c, b in zip(channels, before):
        assert torch.equal(c.weight, b) == (not c.weight.requires_grad)


def test_which_students_read_words():
    """What `distil` asks before building a word vocabulary: LSTM_S unless it has teacher embeddings (its default
    is word2vec), BERT_S only with word2vec (its default is random wordpieces)."""
    assert reads_words("lstm_s", {}) and reads_words("lstm_s", {"embeddings": "random"})
    assert not reads_words("lstm_s", {"embeddings": "teacher"})
    assert reads_words("bert_s", {"embeddings": "word2vec"})
    assert not reads_words("bert_s", {}) and not reads_words("bert_s", {"embeddings": "teacher"})
    with pytest.raises(ConfigError, match="unknown student"):
        reads_words("cnn_s", {})


def test_bert_s_word_input(tmp_path):
    """BERT_S with word2vec: LSTM_S's word tokens and vocabulary, with [CLS]/[SEP] added (random vectors) and
    wrapped around each sentence; unknown words U[-0.25, 0.25]; max_length counts the markers."""
    make_word2vec(tmp_path / "w2v.txt", ["good", "movie"], dim=6, binary=False)
    settings = {**TINY_BERT_S, "embeddings": "word2vec", "max_length": 6}
    s = build_student("bert_s", settings, 2, {"sentences": SENTENCES, "word2vec": tmp_path / "w2v.txt"}).eval()
    assert s.inputs.words[:4] == [PAD, UNK, "[CLS]", "[SEP]"]
    assert s.inputs.words[4:] == build_vocab(SENTENCES)[2:]
    enc = s.encode(["The movie was good .", "@@@", "a b c d e f g"])
    cls, sep, unk = 2, 3, 1
    index = s.inputs.index
    assert enc["input_ids"].tolist() == [
        [cls, index["the"], index["movie"], index["was"], index["good"], sep],  # cut to 6 keeping [SEP]
        [cls, unk, sep, 0, 0, 0],
        [cls, index["a"], unk, unk, unk, sep],
    ]
    table = s.bert.get_input_embeddings().tuned.weight
    assert torch.equal(table[0], torch.zeros(6))
    for word in ("[CLS]", "[SEP]", "[UNK]", "the"):  # not in the word2vec file
        row = table[index[word]]
        assert row.abs().max() <= 0.25 and row.abs().sum() > 0
    assert s(**enc).shape == (3, 2) and len(s.layer_states(**enc)) == 2
    alone = s.encode(["@@@"])
    torch.testing.assert_close(s(**alone)[0], s(**enc)[1], atol=1e-5, rtol=1e-5)  # padding changes nothing


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
    ("lstm_s", {**TINY_LSTM_S, "embeddings": "word2vec", "layers": 2}, "words"),
    ("bert_s", {**TINY_BERT_S, "embeddings": "word2vec", "embedding_mode": "multichannel"}, "words"),
    ("bert_s", {**TINY_BERT_S, "embeddings": "teacher", "embedding_mode": "static"}, "teacher"),
    ("bert_s", {**TINY_BERT_S, "embedding_mode": "multichannel"}, "teacher"),
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
    with pytest.raises(ConfigError, match="embedding_mode"):
        build_student("bert_s", {**TINY_BERT_S, "embedding_mode": "dual"}, 2, {"teacher_dir": teacher_dir})
    for kind, settings in (("lstm_s", TINY_LSTM_S), ("bert_s", TINY_BERT_S)):
        with pytest.raises(ConfigError, match=rf"students\.{kind}\.word2vec"):
            build_student(kind, {**settings, "embeddings": "word2vec"}, 2, {"sentences": ["a"]})
        with pytest.raises(ConfigError, match=r"vocab_info\['words'\] or vocab_info\['sentences'\]"):
            build_student(kind, {**settings, "embeddings": "word2vec"}, 2, {"word2vec": "w2v.bin"})
    with pytest.raises(ConfigError, match=r"students\.bert_s\.max_length"):
        build_student("bert_s", {**TINY_BERT_S, "max_length": 2}, 2, {"teacher_dir": teacher_dir})
    with pytest.raises(InputError, match="student.json"):
        load_student(tmp_path, "cpu")


@pytest.mark.parametrize("layers", [1, 2])
def test_lstm_s_cpu_path_equals_packed_sequences(layers):
    """The CPU path (`bilstm`) computes what the packed `nn.LSTM` (the GPU path) computes: final states, every
    layer's per-token states, and gradients, for one and for stacked layers."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(0)
    s = build_student("lstm_s", {**TINY_LSTM_S, "layers": layers}, 2, {"sentences": SENTENCES}).double()
    assert s.lstm.num_layers == layers and s.lstm.dropout == (0.1 if layers > 1 else 0.0)
    s.eval()  # no dropout: the two paths' random masks could not be compared
    enc = s.encode(SENTENCES + ["@@@"])
    ids, mask = enc["input_ids"], enc["attention_mask"]
    ids = torch.cat([ids, torch.zeros(len(ids), 3, dtype=ids.dtype)], dim=1)  # extra padding columns
    mask = torch.cat([mask, torch.zeros(len(mask), 3, dtype=mask.dtype)], dim=1)
    lengths = mask.sum(1)
    ref_final = s._packed_final_states(ids, lengths)
    packed = pack_padded_sequence(s.embed(ids), lengths, batch_first=True, enforce_sorted=False)
    ref_states = []
    for depth in range(1, layers + 1):  # layer l's outputs: a stack of the student's first l layers
        lower = torch.nn.LSTM(s.lstm.input_size, 12, num_layers=depth, batch_first=True, bidirectional=True)
        for name in [n for n, _ in lower.named_parameters()]:
            delattr(lower, name)
            setattr(lower, name, getattr(s.lstm, name))  # the student's tensors: gradients reach them
        ref_states.append(pad_packed_sequence(lower(packed)[0], batch_first=True, total_length=ids.shape[1])[0])
    final = s._run_lstm(ids, mask, per_token=False)
    states = s.layer_states(ids, mask)
    assert len(states) == layers
    torch.testing.assert_close(final, ref_final, atol=1e-12, rtol=1e-10)
    for ours, ref in zip(states, ref_states):
        torch.testing.assert_close(ours, ref, atol=1e-12, rtol=1e-10)
    wanted = [*s.lstm.parameters(), s.embed.tuned.weight]  # every layer's weights and the trained channel
    target = torch.randn_like(final)
    grads = torch.autograd.grad((final * target).sum() + states[0].square().sum(), wanted)
    ref = torch.autograd.grad((ref_final * target).sum() + ref_states[0].square().sum(), wanted)
    for a, b in zip(grads, ref):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-8)


# ------------------------------------------------------------------------------------------- distillation
@pytest.fixture(scope="module")
def small_task(tmp_path_factory):
    """A small synthetic task, its tiny teacher, a transfer set (train + unlabelled) and a word2vec file."""
    from kdprobe.students.testing import FILLER, NEGATIVE, POSITIVE, make_task, make_transfer

    root = tmp_path_factory.mktemp("distil")
    splits = make_task(root / "data", n_train=96, n_dev=40, n_test=20, seed=2)
    teacher = make_teacher(root / "teacher", splits["train"][0])
    augmented, _ = synthetic_sentences(64, 98)
    transfer = [root / "train.parquet", root / "augmented.parquet"]
    make_transfer(transfer[0], teacher, *splits["train"], seed=1)
    make_transfer(transfer[1], teacher, augmented, [None] * len(augmented), seed=2)
    make_word2vec(root / "w2v.bin", POSITIVE + NEGATIVE + FILLER[:8], dim=8)
    return {"root": root, "data": root / "data", "teacher": teacher, "transfer": transfer, "w2v": root / "w2v.bin",
            "dev": splits["dev"]}


DISTIL = {"loss": "mse", "temperature": 1.0, "optimizer": "adam", "lr": 3e-3, "betas": [0.9, 0.98],
          "batch_size": 16, "epochs": 1, "warmup_epochs": 0, "seed": 3}


def _distil(task, kind, settings, out):
    from kdprobe.distil import distil
    from kdprobe.training import RunFiles

    return distil(kind, "sst2", settings, task["transfer"], task["data"], task["teacher"], RunFiles.in_dir(out), None,
                  "cpu", word2vec=task["w2v"])


@pytest.mark.parametrize("kind,student", [("bert_s", TINY_BERT_S), ("lstm_s", TINY_LSTM_S)])
def test_clip_norm_reaches_the_optimiser_step(small_task, tmp_path, kind, student):
    """`clip_norm` of either student: a norm above every gradient's leaves training bit for bit as without
    clipping; a norm below the gradients' changes the updates (Adam: gradients shrunk to below its eps)."""
    weights = {}
    for name, clip in (("none", 0), ("above", 1e9), ("below", 1e-9)):
        _distil(small_task, kind, {**student, **DISTIL, "clip_norm": clip}, tmp_path / name)
        weights[name] = load_file(str(tmp_path / name / "model" / "model.safetensors"))
    trained = [k for k, v in weights["none"].items() if v.dtype.is_floating_point]
    assert all(torch.equal(weights["none"][k], weights["above"][k]) for k in weights["none"])
    changed = [k for k in trained if not torch.equal(weights["none"][k], weights["below"][k])]
    assert any(".weight" in k and ("classifier" in k or k.startswith("out.")) for k in changed), changed


def test_bert_s_with_word2vec_distils_and_stands_alone(small_task, tmp_path):
    """BERT_S with word2vec multichannel embeddings through `distil`: it reads words (not the stored teacher ids),
    learns, and its directory (vocab.txt, no tokenizer) serves predictions and probing without the teacher or the
    word2vec file."""
    from kdprobe.predict.predictions import write_predictions
    from kdprobe.probe import encoders

    settings = {**TINY_BERT_S, **DISTIL, "embeddings": "word2vec", "embedding_mode": "multichannel",
                "epochs": 8, "lr": 1e-2, "clip_norm": 0}  # the tiny BERT needs ~5 epochs to start separating
    metrics = _distil(small_task, "bert_s", settings, tmp_path / "student")
    out = tmp_path / "copy"
    shutil.copytree(tmp_path / "student" / "model", out)
    files = {p.name for p in out.iterdir()}
    assert "vocab.txt" in files and "tokenizer.json" not in files
    words = read_vocab(out / "vocab.txt")
    assert words[:4] == [PAD, UNK, "[CLS]", "[SEP]"] and "superb" in words  # the transfer set's words
    dev_sentences, dev_labels = small_task["dev"]
    assert max(dev_labels.count(x) for x in set(dev_labels)) / len(dev_labels) == 0.65  # the majority class
    assert metrics["dev"]["accuracy"] >= 0.8
    student = load_student(out)
    assert student.inputs.kind == "words" and student.config["embedding_mode"] == "multichannel"
    frame = write_predictions("bert_s", out, small_task["data"], tmp_path / "pred.tsv", "cpu", batch_size=7)
    assert np.mean(frame["pred"].to_numpy() == np.array(dev_labels)) == pytest.approx(metrics["dev"]["accuracy"])
    enc = encoders.load_encoder("bert_s", str(out), "cpu")
    feats = encoders.encode(enc, dev_sentences[:5], encoders.resolve_layers(enc, "all"), ["mean"])
    assert enc.depth == 2 and all(x.shape == (5, 16) for x in feats.values())

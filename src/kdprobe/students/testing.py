"""Tiny, fast fixtures for tests of the students, distillation and predictions (no network, seconds on a CPU):
a separable synthetic sentiment task, a tiny BERT teacher with a WordPiece tokenizer trained on it, a transfer-set
parquet with synthetic teacher logits, and word2vec files in both formats."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd

from kdprobe.embeddings import word_tokenize, write_word2vec
from kdprobe.io import write_parquet, write_text, write_tsv


#: Complete `students.<kind>` architecture sections (the thesis config's values, seed 0), for tests to override:
#: the students read every key the schema requires and have no defaults of their own.
SECTION = {
    "bert_s": {"layers": 5, "hidden": 204, "intermediate": 750, "heads": 3, "embeddings": "random",
               "embedding_mode": "non-static", "dropout": 0.1, "max_length": 128, "seed": 0},
    "lstm_s": {"layers": 1, "hidden": 300, "fc": 400, "embeddings": "word2vec", "embedding_mode": "multichannel",
               "dropout": 0.1, "max_length": 128, "seed": 0},
}

POSITIVE = ["good", "great", "fine", "nice", "superb"]
NEGATIVE = ["bad", "awful", "poor", "sad", "dull"]
FILLER = ["the", "a", "movie", "film", "was", "is", "very", "plot", "actor", "story", "really", "quite", "this",
          "and", "but", "it", "seemed", "overall", ","]
LABELS = ["negative", "positive"]


def synthetic_sentences(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Sentences of 3-12 filler words with one sentiment word; the label is that word's polarity."""
    rng = random.Random(seed)
    sentences, labels = [], []
    for _ in range(n):
        label = rng.randrange(2)
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 12))]
        words.insert(rng.randint(0, len(words)), rng.choice(POSITIVE if label else NEGATIVE))
        sentence = " ".join(words)
        sentences.append(sentence[0].upper() + sentence[1:] + ("." if rng.random() < 0.5 else " !"))
        labels.append(LABELS[label])
    return sentences, labels


def make_tokenizer(sentences: list[str], out_dir: str | Path, vocab_size: int = 300):
    """A lower-casing BERT WordPiece tokenizer trained on `sentences`, saved to `out_dir`."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizer

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(sentences, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                                 show_progress=False))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    hf = BertTokenizer(tokenizer_object=tok, model_max_length=512)
    hf.save_pretrained(str(out_dir))
    return hf


def make_teacher(out_dir: str | Path, sentences: list[str], n_labels: int = 2, hidden: int = 16, layers: int = 1,
                 heads: int = 2, intermediate: int = 32, seed: int = 0) -> Path:
    """A tiny (untrained) BertForSequenceClassification and its tokenizer in `out_dir`."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok = make_tokenizer(sentences, out_dir)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=intermediate, max_position_embeddings=64, num_labels=n_labels)
    BertForSequenceClassification(config).save_pretrained(str(out_dir))
    return out_dir


def make_task(data_dir: str | Path, n_train: int = 200, n_dev: int = 60, n_test: int = 60, seed: int = 0) -> dict:
    """`train/dev/test.tsv` and `labels.txt` of the synthetic task in `data_dir`; returns the splits."""
    data_dir = Path(data_dir)
    splits = {}
    for i, (name, n) in enumerate((("train", n_train), ("dev", n_dev), ("test", n_test))):
        sentences, labels = synthetic_sentences(n, seed * 10 + i)
        write_tsv(data_dir / f"{name}.tsv", pd.DataFrame({"sentence": sentences, "label": labels}))
        splits[name] = (sentences, labels)
    write_text(data_dir / "labels.txt", "".join(f"{name}\n" for name in LABELS))
    return splits


def make_transfer(path: str | Path, teacher_dir: str | Path, sentences: list[str], labels: list[str | None],
                  margin: float = 3.0, noise: float = 0.5, seed: int = 0, max_length: int = 64) -> pd.DataFrame:
    """A transfer-set parquet: teacher-tokenizer ids and synthetic, label-consistent teacher logits."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(teacher_dir))
    ids = tok(sentences, truncation=True, max_length=max_length)["input_ids"]
    rng = np.random.default_rng(seed)
    logits = []
    for sentence, label in zip(sentences, labels):
        polarity = 1 if set(word_tokenize(sentence)) & set(POSITIVE) else 0
        vec = np.full(len(LABELS), -margin / 2, dtype=np.float32)
        vec[polarity] = margin / 2
        logits.append((vec + rng.normal(0, noise, len(LABELS))).astype(np.float32))
    frame = pd.DataFrame({
        "sentence": sentences,
        "input_ids": [np.asarray(x, dtype=np.int32) for x in ids],
        "logits": logits,
        "label": labels,
    })
    write_parquet(path, frame)
    return frame


def make_word2vec(path: str | Path, words: list[str], dim: int = 8, binary: bool = True, seed: int = 0) -> np.ndarray:
    """Random vectors for `words` in word2vec format; returns them (row i = words[i])."""
    vectors = np.random.default_rng(seed).normal(0, 0.3, (len(words), dim)).astype(np.float32)
    write_word2vec(path, words, vectors, binary=binary)
    return vectors


def make_student_task(root: str | Path, n_train: int, n_dev: int, n_test: int, n_augmented: int, seed: int,
                      augment_seed: int) -> dict:
    """Everything a student's distillation reads, under `root`: the task splits (`make_task`), a tiny teacher
    (`make_teacher`: its tokenizer is what matters), the transfer set (train + one shard of `n_augmented` unlabelled
    sentences, with `make_transfer`'s synthetic teacher logits) and a word2vec file of the task's words. Returns the
    paths and the dev labels."""
    root = Path(root)
    splits = make_task(root / "data", n_train=n_train, n_dev=n_dev, n_test=n_test, seed=seed)
    train_sentences, train_labels = splits["train"]
    teacher = make_teacher(root / "teacher", train_sentences)
    augmented, _ = synthetic_sentences(n_augmented, augment_seed)
    transfer = [root / "transfer" / "train.parquet", root / "transfer" / "shard0.parquet"]
    make_transfer(transfer[0], teacher, train_sentences, train_labels, seed=1)
    make_transfer(transfer[1], teacher, augmented, [None] * len(augmented), seed=2)
    w2v = root / "w2v.bin"
    make_word2vec(w2v, POSITIVE + NEGATIVE + FILLER[:10], dim=8)
    return {"root": root, "data": root / "data", "teacher": teacher, "transfer": transfer, "w2v": w2v,
            "dev_labels": splits["dev"][1]}

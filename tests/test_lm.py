"""GPT-2 fine-tuning on a tiny model: framing, padding labels, outputs, bit-for-bit resume."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest
import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

from kdprobe.io import write_tsv
from kdprobe.augment.gpt2 import finetune, frame_sentences
from kdprobe.batching import pad_batch
from kdprobe.training import TrainingInterrupted
from kdprobe.training import RunFiles, StopAfter, tensorboard

from test_teacher import make_sentences
from test_tensorboard import as_scalars, read_scalars

ODD = ["tab\there", 'say "hi"', "new\nline", "emoji 😀 ok", "it's ünïcode"]


def make_tiny_gpt2(path: Path, sentences: list[str] | None = None, n_positions: int = 64) -> Path:
    """A 1-layer GPT-2 with a byte-level BPE tokenizer trained on `sentences`, saved to `path`."""
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator((sentences or make_sentences(50)) + ODD, vocab_size=300, min_frequency=1,
                            special_tokens=["<|endoftext|>"], show_progress=False)
    path.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(path))
    tokenizer = GPT2Tokenizer(vocab=str(path / "vocab.json"), merges=str(path / "merges.txt"))
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=16, n_layer=1, n_head=2, n_positions=n_positions,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


SETTINGS = {"epochs": 2, "batch_size": 4, "lr": 1e-3, "weight_decay": 1e-3, "warmup_fraction": 0.1,
            "max_length": 12, "seed": 3, "save_every_steps": 4, "evals_per_epoch": 2}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    train = root / "train.tsv"
    sents = make_sentences(30, seed=5)
    write_tsv(train, pd.DataFrame({"sentence": sents, "label": ["x"] * len(sents)}))
    return make_tiny_gpt2(root / "gpt2"), train


def test_frame_sentences(setup):
    tok = AutoTokenizer.from_pretrained(setup[0])
    eos = tok.eos_token_id
    assert tok.bos_token_id == eos
    short, long = frame_sentences(tok, ["the cat", "the cat sat on the mat " * 5], max_length=12)
    assert short == [eos] + tok("the cat", add_special_tokens=False)["input_ids"] + [eos]
    assert len(long) == 13 and long[0] == eos and long[-1] != eos  # truncated: no end token


def test_finetune_outputs_and_resume(setup, tmp_path, caplog):
    model, train = setup
    full, cut = tmp_path / "full", tmp_path / "cut"
    curve = finetune(str(model), train, SETTINGS, RunFiles.in_dir(full, metrics=False), full / "state.pt", "cpu",
                     callbacks=tensorboard(full / "gpt2.tensorboard"))
    assert [r["step"] for r in curve] == [4, 8, 12, 16]  # 8 batches per epoch, 2 rows per epoch
    assert list(pd.read_csv(full / "curve.csv").columns) == ["step", "epoch", "loss", "lr", "grad_norm", "grad_norm_max"]
    assert read_scalars(full / "gpt2.tensorboard") == as_scalars(curve)
    assert not (full / "state.pt").exists()
    lm = AutoModelForCausalLM.from_pretrained(full / "model")
    assert lm.config.use_cache and AutoTokenizer.from_pretrained(full / "model").eos_token == "<|endoftext|>"

    with pytest.raises(TrainingInterrupted):  # killed at step 6: resumes from step 4
        finetune(str(model), train, SETTINGS, RunFiles.in_dir(cut, metrics=False), cut / "state.pt", "cpu",
                 callbacks=[StopAfter(6)])
    with caplog.at_level(logging.INFO):
        finetune(str(model), train, SETTINGS, RunFiles.in_dir(cut, metrics=False), cut / "state.pt", "cpu")
    assert "epoch 0, step 4" in caplog.text
    a = AutoModelForCausalLM.from_pretrained(full / "model").state_dict()
    b = AutoModelForCausalLM.from_pretrained(cut / "model").state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (full / "curve.csv").read_text() == (cut / "curve.csv").read_text()


def test_padding_is_ignored_by_the_loss(setup):
    """The loss of a padded batch equals the token-weighted loss of its rows alone."""
    model, _ = setup
    tok = AutoTokenizer.from_pretrained(model)
    lm = AutoModelForCausalLM.from_pretrained(model).eval()
    seqs = frame_sentences(tok, ["the cat sat on the mat", "a dog"], 12)
    batch = pad_batch(seqs, tok.eos_token_id)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    batch_loss = lm(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss
    per_row = [lm(input_ids=torch.tensor([s]), labels=torch.tensor([s])).loss * (len(s) - 1) for s in seqs]
    expected = sum(per_row) / sum(len(s) - 1 for s in seqs)
    assert torch.allclose(batch_loss, expected, atol=1e-5)

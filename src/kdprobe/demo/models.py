"""Tiny models for the demo, trained on the demo corpus: BERT (briefly MLM-pre-trained), GPT-2, word2vec.

The directories load with `AutoTokenizer` / `AutoModel*.from_pretrained` like the real checkpoints they stand in
for (`bert-large-uncased`, `gpt2-medium`); `word2vec.bin` loads like GoogleNews-vectors-negative300.bin.
Torch runs single-threaded here (`single_thread`): models this small gain nothing from more threads, lose a lot
to contention on a busy machine, and one thread makes the weights identical wherever they are built.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path
from typing import Sequence

import torch
from gensim.models import Word2Vec
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import BertConfig, BertForPreTraining, BertTokenizer

from kdprobe.embeddings import word_tokenize
from kdprobe.io import atomic_dir, atomic_path
from kdprobe.logs import progress
from kdprobe.runtime import single_thread
from kdprobe.schedule import linear_warmup_decay
from kdprobe.scratch_models import MAX_POSITIONS, init_gpt2

log = logging.getLogger(__name__)

BERT_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
MLM = {"batch_size": 32, "max_length": 64, "lr": 3e-3, "mask_prob": 0.15, "warmup_fraction": 0.1}


def bert_tokenizer(corpus: Sequence[str], vocab_size: int) -> BertTokenizer:
    """A lower-casing WordPiece tokenizer for `corpus` with at most `vocab_size` entries.

    The pieces are learnt by the `tokenizers` BPE trainer on BERT-normalised, BERT-pre-tokenised text; every
    piece enters the vocabulary both as word start and as `##` continuation. (The library's WordPiece trainer
    is not reproducible across processes: its `##` symbols get ids in hash order, which changes merge ties.)
    """
    bpe = Tokenizer(models.BPE(unk_token="[UNK]"))
    bpe.normalizer = normalizers.BertNormalizer(lowercase=True)
    bpe.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    n_pieces = (vocab_size - len(BERT_SPECIAL)) // 2 + len(BERT_SPECIAL)
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=n_pieces, special_tokens=BERT_SPECIAL,
                                                        show_progress=False))
    pieces = [p for p, _ in sorted(bpe.get_vocab().items(), key=lambda kv: kv[1]) if p not in BERT_SPECIAL]
    tokens = BERT_SPECIAL + pieces + [f"##{p}" for p in pieces]
    return BertTokenizer(vocab={t: i for i, t in enumerate(tokens)}, do_lower_case=True,
                         model_max_length=MAX_POSITIONS)


def mask_tokens(
    ids: torch.Tensor, tokenizer: BertTokenizer, generator: torch.Generator, prob: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: `prob` of the real tokens become targets; of those 80% [MASK], 10% random, 10% kept."""
    special = (ids == tokenizer.pad_token_id) | (ids == tokenizer.cls_token_id) | (ids == tokenizer.sep_token_id)
    draw = torch.rand(ids.shape, generator=generator)
    targets = (draw < prob) & ~special
    labels = torch.where(targets, ids, torch.full_like(ids, -100))
    roll = torch.rand(ids.shape, generator=generator)
    inputs = ids.clone()
    inputs[targets & (roll < 0.8)] = tokenizer.mask_token_id
    randomise = targets & (roll >= 0.8) & (roll < 0.9)
    inputs[randomise] = torch.randint(len(tokenizer), ids.shape, generator=generator)[randomise]
    return inputs, labels


def pretrain_mlm(model: BertForPreTraining, tokenizer: BertTokenizer, corpus: Sequence[str], steps: int,
                 seed: int) -> float:
    """Masked-LM training on random batches of `corpus` for `steps` steps; returns the mean loss of the last 10%."""
    encoded = tokenizer(list(corpus), truncation=True, max_length=MLM["max_length"])["input_ids"]
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=MLM["lr"], weight_decay=0.01)
    scheduler = linear_warmup_decay(optimizer, int(MLM["warmup_fraction"] * steps), steps)
    model.train()
    losses = []
    bar = progress(range(steps), desc="MLM pre-training", unit="step")
    for _ in bar:
        rows = torch.randint(len(encoded), (MLM["batch_size"],), generator=generator).tolist()
        batch = tokenizer.pad({"input_ids": [encoded[i] for i in rows]}, return_tensors="pt")
        inputs, labels = mask_tokens(batch["input_ids"], tokenizer, generator, MLM["mask_prob"])
        logits = model(input_ids=inputs, attention_mask=batch["attention_mask"]).prediction_logits
        loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    model.eval()
    tail = losses[-max(1, steps // 10):]
    return sum(tail) / len(tail)


def write_bert(out_dir: str | Path, corpus: Sequence[str], settings: dict, seed: int) -> dict:
    """Tokenizer, config and MLM-pre-trained `BertForPreTraining` (pooler and NSP head untrained) in `out_dir`."""
    tokenizer = bert_tokenizer(corpus, settings["vocab_size"])
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=settings["hidden"], num_hidden_layers=settings["layers"],
        num_attention_heads=settings["heads"], intermediate_size=settings["intermediate"],
        max_position_embeddings=MAX_POSITIONS, pad_token_id=tokenizer.pad_token_id,
    )
    with single_thread():
        torch.manual_seed(seed)
        model = BertForPreTraining(config)
        steps = settings["pretrain_steps"]
        loss = pretrain_mlm(model, tokenizer, corpus, steps, seed) if steps else float("nan")
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    info = {"vocab_size": len(tokenizer), "parameters": model.num_parameters(), "mlm_loss": loss}
    log.info("tiny BERT in %s: %s", out_dir, info)
    return info


def write_gpt2(out_dir: str | Path, corpus: Sequence[str], settings: dict, seed: int) -> dict:
    """Byte-level BPE tokenizer and a randomly initialised GPT-2 LM in `out_dir`."""
    model, tokenizer = init_gpt2(corpus, settings, seed)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    info = {"vocab_size": len(tokenizer), "parameters": model.num_parameters()}
    log.info("tiny GPT-2 in %s: %s", out_dir, info)
    return info


def _stable_hash(text: str) -> int:
    """gensim seeds each word's initial vector with this; Python's `hash` differs between processes."""
    return zlib.crc32(text.encode("utf-8"))


def write_word2vec(path: str | Path, corpus: Sequence[str], settings: dict, seed: int) -> dict:
    """Word2Vec (CBOW, one worker: deterministic) on the word-tokenised corpus, in word2vec binary format."""
    model = Word2Vec(
        [word_tokenize(s) for s in corpus], vector_size=settings["dim"], epochs=settings["epochs"], min_count=1,
        window=5, workers=1, seed=seed, hashfxn=_stable_hash,
    )
    with atomic_path(path) as tmp:
        model.wv.save_word2vec_format(str(tmp), binary=True)
    info = {"words": len(model.wv), "dim": model.wv.vector_size}
    log.info("word2vec %s: %s", path, info)
    return info

"""Random-word transfer sets (Krishna et al. 2020, "Thieves on Sesame Street!", their RANDOM queries):
`results/augment/{task}/random_words/shard{i}.parquet`.

A sentence is a sequence of words drawn independently by frequency, no grammar: its length is the length (in
words) of a training sentence drawn uniformly, and each word is drawn from the vocabulary with probability
proportional to its count. The vocabulary is the task's training set (NLTK's Treebank words, as
`kdprobe.augment.rules.words`), with its counts: the paper draws from WikiText-103's vocabulary instead, which
kdprobe neither ships nor downloads, and a task's own words keep the teacher on its domain's tokens (the paper's
point is that even unrelated words extract a model; here the words are related, their order is not). Training
sentences without words are not drawn as lengths, so no sentence is empty.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from kdprobe.errors import ConfigError


@dataclass(frozen=True)
class Vocabulary:
    """Words by descending count (ties alphabetically), their probabilities, and the training sentences' lengths."""

    words: tuple[str, ...]
    probs: np.ndarray
    lengths: np.ndarray


def vocabulary(tokenised: Iterable[list[str]]) -> Vocabulary:
    """The `Vocabulary` of tokenised training sentences; one without a word is a ConfigError."""
    counts: Counter[str] = Counter()
    lengths = []
    for ws in tokenised:
        counts.update(ws)
        if ws:
            lengths.append(len(ws))
    if not counts:
        raise ConfigError("students.<student>.transfer", "random_words: the training set has no words")
    words = sorted(counts, key=lambda w: (-counts[w], w))
    freq = np.array([counts[w] for w in words], dtype=np.float64)
    return Vocabulary(tuple(words), freq / freq.sum(), np.asarray(lengths, dtype=np.int64))


def random_sentences(vocab: Vocabulary, n: int, rng: np.random.Generator) -> list[str]:
    """`n` sentences of words drawn by frequency, each as long as a training sentence drawn uniformly."""
    lengths = rng.choice(vocab.lengths, size=n)
    flat = rng.choice(len(vocab.words), size=int(lengths.sum()), p=vocab.probs)
    ends = np.cumsum(lengths)
    words = vocab.words
    return [" ".join(words[i] for i in flat[end - k : end]) for k, end in zip(lengths.tolist(), ends.tolist())]

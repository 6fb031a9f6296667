"""Control tasks for SentEval's sentence-level probing tasks (Hewitt and Liang, 2019, "Designing and Interpreting
Probes with Control Tasks"), used by `probe.control` to report selectivity = task accuracy - control accuracy.

A control task gives every sentence a label that depends only on its word types, through a random map fixed by a
seed, and keeps the task's label distribution exactly in every split:

1. Every word type t (a lower-cased whitespace token) gets a value z_t ~ N(0, 1), drawn from a numpy generator
   seeded by the SHA-256 digest of (seed, t) (`type_value`): the same for every split, run and process.
2. A sentence's raw score is sum over its n tokens of z_t / sqrt(n) (`raw_score`), so its spread does not depend
   on its length. Its mean still does: in real text a few frequent types ("the", ".", ",") make up a fixed share
   of the tokens, their values are fixed by the seed, and the sum grows with sqrt(n) times their token-weighted
   mean (for some of ten seeds the raw score's rank correlation with length reached 0.34 on Zipf-like synthetic
   text and 0.43 on the demo's probing files). So the score used (`control_scores`) is the raw score's mid-rank
   percentile among all sentences of the data (all splits pooled) with the same number of tokens: uniform on
   (0, 1) for every length, which makes the control independent of length (sentence_length) while it stays a
   function of lexical content (n is itself a function of the bag of tokens). A sentence alone with its length
   gets 0.5. The same sentence gets the same score in every split.
3. Within each split the sentences are ranked by score (ties by position in the split: lengths with as many
   sentences share percentiles, but only the few ties at a block boundary matter) and cut into consecutive
   blocks whose sizes are the task's label counts in that split, lowest scores first; the blocks take the labels
   in one seeded random order of the task's label set (`label_order`, the same for every split, so a probe
   trained on the training split's control labels can be tested on the others).

So every split keeps exactly the task's label counts, and the construction never looks at the task's labels
beyond those counts. Given the data (the percentiles and block boundaries come from the other sentences), the
control label is a function of the sentence's bag of word types (and, for equal scores at a block boundary, of
its position): learnable only from lexical content, like H&L's type-level control. It is independent of the
task's label for every seed, not only on average, where the task rests on length or on what a bag of words does
not carry (word order: bigram_shift, coordination_inversion). Where the task is a function of some word types
(word_content; past_present through "was"), one seed's control is correlated with it through those types'
values (a sentence with word w moves by about z_w / sqrt(n) in the raw score), as H&L's part-of-speech control
is for one seed; over seeds the correlation averages to zero (the values and the label order are random and
symmetric).

Sentences with no tokens are rejected (`ValueError`): they have no lexical content to take a label from, and
`kdprobe.probe.senteval.load` never returns one. Empty splits and sentence/label lists of different lengths are
rejected too. Pure numpy and hashlib: no torch.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from numbers import Integral

import numpy as np

from kdprobe.probe.senteval import label_index

Data = dict[str, tuple[list[str], list[str]]]


def _generator(seed: int, key: str) -> np.random.Generator:
    """A numpy generator seeded by the SHA-256 digest of (seed, key): stable across runs and processes."""
    digest = hashlib.sha256(f"{int(seed)}\x00{key}".encode("utf-8")).digest()
    return np.random.Generator(np.random.PCG64(int.from_bytes(digest[:16], "little")))  # = default_rng's


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise ValueError(f"control task seed must be an integer, got {seed!r}")
    return int(seed)


def type_value(word_type: str, seed: int) -> float:
    """z_t ~ N(0, 1) of one word type (already lower-cased) under `seed`."""
    return _type_value(word_type, _check_seed(seed))


def _type_value(word_type: str, seed: int) -> float:
    return float(_generator(seed, "type\x00" + word_type).standard_normal())


def tokens(sentence: str) -> list[str]:
    """The word types of a sentence's tokens: its whitespace tokens, lower-cased."""
    return sentence.lower().split()


def raw_score(sentence_tokens: list[str], values: dict[str, float]) -> float:
    """Step 2's raw score: sum of the tokens' values / sqrt(number of tokens).

    The sum is `math.fsum` (correctly rounded), so it does not depend on the tokens' order to the last bit: a
    sentence and any reordering of it get the same score, and tie."""
    return math.fsum(values[t] for t in sentence_tokens) / math.sqrt(len(sentence_tokens))


def _checked(data: Data) -> dict[str, list[list[str]]]:
    """Each split's sentences as token lists; `ValueError` for an empty split, a sentence without tokens, or
    sentences and labels of different lengths."""
    if not data:
        raise ValueError("control task: no splits in the data")
    out = {}
    for split, (sentences, labels) in data.items():
        if len(sentences) != len(labels):
            raise ValueError(f"control task: split {split!r} has {len(sentences)} sentences but {len(labels)} labels")
        if not sentences:
            raise ValueError(f"control task: split {split!r} has no sentences")
        out[split] = [tokens(s) for s in sentences]
        empty = next((i for i, toks in enumerate(out[split]) if not toks), None)
        if empty is not None:
            raise ValueError(
                f"control task: sentence {empty + 1} of split {split!r} has no tokens (nothing to take a label from)"
            )
    return out


def _percentiles(scores: np.ndarray) -> np.ndarray:
    """Mid-rank percentiles (rank - 0.5) / count in (0, 1); equal scores share one."""
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    mid_rank = np.cumsum(counts) - (counts - 1) / 2.0
    return (mid_rank[inverse] - 0.5) / len(scores)


def control_scores(data: Data, seed: int) -> dict[str, np.ndarray]:
    """Every split's control scores (steps 1-2): each sentence's raw-score percentile among the sentences of its
    length, all splits pooled."""
    seed = _check_seed(seed)
    split_tokens = _checked(data)
    types = {t for toks in split_tokens.values() for s in toks for t in s}
    values = {t: _type_value(t, seed) for t in types}
    raw = np.concatenate([[raw_score(s, values) for s in toks] for toks in split_tokens.values()])
    lengths = np.concatenate([[len(s) for s in toks] for toks in split_tokens.values()])
    pooled = np.empty_like(raw)
    for n in np.unique(lengths):
        rows = lengths == n
        pooled[rows] = _percentiles(raw[rows])
    bounds = np.cumsum([0] + [len(toks) for toks in split_tokens.values()])
    return {split: pooled[lo:hi] for split, lo, hi in zip(split_tokens, bounds[:-1], bounds[1:])}


def label_order(labels, seed: int) -> list[str]:
    """The task's label set in the seeded random order its blocks take (lowest scores first).

    The set is put in `senteval.label_index` order first, so the order depends on the set and the seed only."""
    ordered = list(label_index({"all": ([], list(labels))}))
    permutation = _generator(_check_seed(seed), "label order").permutation(len(ordered))
    return [ordered[i] for i in permutation]


def assign_blocks(scores: np.ndarray, labels: list[str], order: list[str]) -> list[str]:
    """Step 3 for one split: rank by score (ties by position), cut into blocks of the split's label counts in
    `order`, lowest scores first."""
    counts = Counter(labels)
    unknown = sorted(set(counts) - set(order))
    if unknown:
        raise ValueError(f"control task: label(s) {', '.join(map(repr, unknown))} not in the label order {order}")
    ranked = np.argsort(scores, kind="stable")
    out = np.empty(len(labels), dtype=object)
    start = 0
    for label in order:
        out[ranked[start : start + counts[label]]] = label
        start += counts[label]
    return list(out)


def control_labels(data: Data, seed: int) -> dict[str, list[str]]:
    """The control task's labels of every split of `data` (`{split: (sentences, labels)}`, as
    `senteval.load` returns): the task's label strings, with the task's exact label counts in every split."""
    scores = control_scores(data, seed)
    order = label_order((label for _, labels in data.values() for label in labels), seed)
    return {split: assign_blocks(scores[split], data[split][1], order) for split in data}


def control_data(data: Data, seed: int) -> Data:
    """`data` with every split's labels replaced by the control task's (same sentences, same order)."""
    labels = control_labels(data, seed)
    return {split: (list(sentences), labels[split]) for split, (sentences, _) in data.items()}

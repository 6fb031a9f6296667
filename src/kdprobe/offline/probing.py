"""SentEval-format probing files built from real sentences, for the probing tasks that need no parser.

SentEval's files (facebookresearch/SentEval `data/probing`) cannot be downloaded offline. Two of its ten tasks are
defined by the surface of the sentence alone, so they can be rebuilt faithfully from any tokenised sentences
(here SST-2's, lower case, space-tokenised as SentEval's Moses-tokenised text is):

- `sentence_length`: the number of tokens, in SentEval's 6 bins: 0: 5-8, 1: 9-12, 2: 13-16, 3: 17-20, 4: 21-25,
  5: 26-28 (sentences outside 5-28 are not used, as in SentEval).
- `bigram_shift`: `I` when two adjacent (different) tokens were swapped, `O` for the sentence as written; each
  source sentence is used once, in one class only.

Classes are balanced within each split (tr/va/te), sentences are distinct and each is used in one split only.
The other eight tasks (word_content with its 1,000 target words, and the parse-based ones) are not built.
Each line is `split<TAB>label<TAB>sentence`, splits in the order tr, va, te, shuffled within each.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Callable, Sequence

from kdprobe.errors import ConfigError, InputError
from kdprobe.io import write_text

log = logging.getLogger(__name__)

SPLITS = ("tr", "va", "te")
MIN_WORDS, MAX_WORDS = 5, 28
#: SentEval's sentence_length bins (upper bounds, inclusive) for labels 0..5.
LENGTH_BINS = (8, 12, 16, 20, 25, 28)


def length_label(words: Sequence[str]) -> str | None:
    """SentEval's Length label of a tokenised sentence, None outside 5-28 tokens."""
    n = len(words)
    if not MIN_WORDS <= n <= MAX_WORDS:
        return None
    return str(next(i for i, top in enumerate(LENGTH_BINS) if n <= top))


def shift_bigram(words: Sequence[str], rng: random.Random) -> tuple[str, ...] | None:
    """`words` with one random pair of adjacent, different tokens swapped; None when there is no such pair."""
    pairs = [i for i in range(len(words) - 1) if words[i] != words[i + 1]]
    if not pairs:
        return None
    i = rng.choice(pairs)
    out = list(words)
    out[i], out[i + 1] = out[i + 1], out[i]
    return tuple(out)


def _length_examples(sentences: list[tuple[str, ...]], rng: random.Random) -> dict[str, list[tuple[str, ...]]]:
    by_label: dict[str, list[tuple[str, ...]]] = {str(i): [] for i in range(len(LENGTH_BINS))}
    for words in sentences:
        label = length_label(words)
        if label is not None:
            by_label[label].append(words)
    return by_label


def _bigram_examples(sentences: list[tuple[str, ...]], rng: random.Random) -> dict[str, list[tuple[str, ...]]]:
    usable = [w for w in sentences if MIN_WORDS <= len(w) <= MAX_WORDS]
    by_label: dict[str, list[tuple[str, ...]]] = {"O": [], "I": []}
    for k, words in enumerate(usable):  # alternate the classes over the shuffled sentences
        if k % 2 == 0:
            by_label["O"].append(words)
        else:
            shifted = shift_bigram(words, rng)
            if shifted is not None:
                by_label["I"].append(shifted)
    return by_label


#: The buildable tasks: sentences -> {label: candidate examples}.
BUILDABLE: dict[str, Callable[[list[tuple[str, ...]], random.Random], dict[str, list[tuple[str, ...]]]]] = {
    "sentence_length": _length_examples,
    "bigram_shift": _bigram_examples,
}


def probing_rows(task: str, sentences: Sequence[str], sizes: dict[str, int], seed: int) -> list[tuple[str, str, str]]:
    """`(split, label, sentence)` rows of `task` from `sentences`: `sizes[split]` per split, classes balanced."""
    if task not in BUILDABLE:
        raise ConfigError("probe.tasks", f"{task!r} cannot be built offline; buildable: {', '.join(BUILDABLE)}")
    rng = random.Random(f"{seed}:{task}")
    distinct = sorted({tuple(s.split()) for s in sentences})
    rng.shuffle(distinct)
    by_label = BUILDABLE[task](distinct, rng)
    labels = sorted(by_label)
    rows = []
    for split in SPLITS:
        quota = {lab: sizes[split] // len(labels) + (i < sizes[split] % len(labels)) for i, lab in enumerate(labels)}
        part = []
        for lab in labels:
            if len(by_label[lab]) < quota[lab]:
                raise ConfigError(f"offline.probing.sizes.{split}",
                                  f"{task}: label {lab} has {len(by_label[lab])} sentences left, {quota[lab]} wanted")
            part += [(split, lab, " ".join(words)) for words in by_label[lab][:quota[lab]]]
            by_label[lab] = by_label[lab][quota[lab]:]
        rng.shuffle(part)
        rows += part
    return rows


def write_probing(sentences: Sequence[str], tasks: Sequence[str], sizes: dict[str, int], seed: int,
                  out_files: dict[str, str | Path], source: str | Path = "sentences") -> None:
    """Write `out_files[task]` for each of `tasks` from `sentences` (read from `source`, named in errors)."""
    if not sentences:
        raise InputError(source, "no sentences to build probing files from")
    for task in tasks:
        rows = probing_rows(task, sentences, sizes, seed)
        write_text(out_files[task], "".join(f"{split}\t{label}\t{text}\n" for split, label, text in rows))
        counts = {split: sum(r[0] == split for r in rows) for split in SPLITS}
        log.info("probing %s: %s sentences from %s -> %s", task, counts, source, out_files[task])

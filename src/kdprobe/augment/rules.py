"""Rule-based transfer sets: d-bert's d-lite (Tang et al. 2019b), `results/augment/{task}/rules/shard{i}.parquet`.

The procedure is castorini/d-bert's `dbert/distill/run/augment_data.py` (commit 7c590fb), lines 29-93:

- every training sentence is split into words (`nltk.word_tokenize`, line 36) and tagged (`nltk.pos_tag`, line 37);
  a dictionary maps each tag to the list of every word the training set has with that tag, repeats kept, so a
  swap draws a word by its frequency under that tag (lines 33-44); the training sentences, joined by spaces, are
  the set of sentences already seen (line 45);
- each training sentence gets `variants` tries (`n_iter`, default 20, line 61). Per try, first one draw decides
  n-gram sampling (`random() < window_prob`, line 63); then per word one draw `roll`: below `p_mask` the word
  becomes `[MASK]` (lines 69-70), below `p_mask + p_pos` a word drawn from its tag's list (lines 71-72), else it
  is kept (lines 76-77). With n-gram sampling, n is drawn from 1..`max_ng` (`window_lengths`, line 81) and the
  window's start from `randrange(len - n)` (line 83: the last start is never drawn), keeping words start..start+n;
- the try's sentence (words joined by spaces, line 88) is kept when at least one word was kept unchanged and it is
  no sentence seen before (training set or an earlier variant), and it is then seen (lines 91-93).

Two points differ, both where d-bert's single-sentence script cannot run as published: its line 73 reads
`args.bert_gen_prob`, an option it never defines (the BERT-generation branch, not part of d-lite: dropped here),
and a sentence no longer than the drawn n ends that sentence's remaining tries (`break`, line 86), where d-bert's
paired-sentence script keeps the whole sentence (`augment_paired_data.py` lines 29-33: `pass`); kdprobe keeps it,
as the paired script does. The draws come from Python's `random.Random`, as d-bert's `random` module.

Part-of-speech source (`augment.rules.pos`): `textblob` (default), the Penn Treebank tagger of TextBlob (Tom de
Smedt's Pattern tagger: a lexicon with morphological and contextual rules, shipped inside the PyPI wheel, so it
works offline, on a cluster node too; NLTK's `pos_tag`, which d-bert uses, needs a data download first). The words
come from NLTK's Treebank word tokenizer (`word_tokenize(..., preserve_line=True)`: no Punkt download; TextBlob
depends on NLTK). `shape`: the fallback without a tagger, word classes by form (`shape_tag`): punctuation, number,
capitalised, and lower-case words by suffix (-ing, -ed, -ly, -s, other): coarser swaps, no lexicon.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from kdprobe.errors import ConfigError

MASK = "[MASK]"
POS_SOURCES = ("textblob", "shape")


@dataclass(frozen=True)
class RulesSettings:
    """`augment.rules`: tries per training sentence, the per-word mask and swap probabilities, the n-gram sampling
    probability and largest n, and the part-of-speech source."""

    variants: int = 20
    p_mask: float = 0.1
    p_pos: float = 0.1
    p_ng: float = 0.25
    max_ng: int = 5
    pos: str = "textblob"

    @classmethod
    def from_section(cls, section: Mapping[str, Any], key: str = "augment.rules") -> "RulesSettings":
        known = set(cls.__dataclass_fields__)
        extra = sorted(set(section) - known)
        if extra:
            raise ConfigError(f"{key}.{extra[0]}", "unknown key")
        out = cls(**{k: section[k] for k in known if section.get(k) is not None})
        for name in ("p_mask", "p_pos", "p_ng"):
            if not 0 <= getattr(out, name) <= 1:
                raise ConfigError(f"{key}.{name}", f"{getattr(out, name)}: a probability, 0 to 1")
        if out.p_mask + out.p_pos > 1:
            raise ConfigError(f"{key}.p_pos", f"p_mask + p_pos is {out.p_mask + out.p_pos}, more than 1")
        if out.variants < 1 or out.max_ng < 1:
            raise ConfigError(f"{key}.{'variants' if out.variants < 1 else 'max_ng'}", "must be at least 1")
        if out.pos not in POS_SOURCES:
            raise ConfigError(f"{key}.pos", f"{out.pos!r}; choose one of {list(POS_SOURCES)}")
        return out


def _nltk_tokenize():
    try:
        from nltk.tokenize import word_tokenize
    except ImportError:
        raise ConfigError("augment.rules.pos", "the word tokenizer needs NLTK: pip install textblob (which installs "
                                               "it)") from None
    return word_tokenize


def words(sentence: str) -> list[str]:
    """The words of `sentence` as d-bert splits them: NLTK's Treebank tokenizer (no sentence splitting)."""
    return _nltk_tokenize()(sentence, preserve_line=True)


_NUMBER = re.compile(r"^[\d.,:/-]*\d[\d.,:/-]*$")
_SUFFIXES = ("ing", "ed", "ly", "s")


def shape_tag(word: str) -> str:
    """A word class by form alone (the fallback `pos: shape`)."""
    if not any(ch.isalnum() for ch in word):
        return "PUNCT"
    if _NUMBER.match(word):
        return "NUM"
    if word[0].isupper():
        return "CAP"
    return "W-" + next((s for s in _SUFFIXES if word.lower().endswith(s) and len(word) > len(s) + 1), "")


def tagger(source: str):
    """`tag(words) -> tags` of the part-of-speech `source` (`POS_SOURCES`)."""
    if source == "shape":
        return lambda tokens: [shape_tag(w) for w in tokens]
    try:
        from textblob.en import parser
    except ImportError:
        raise ConfigError("augment.rules.pos", "pos: textblob needs TextBlob (pip install textblob), or set pos: "
                                               "shape, the word-shape fallback") from None

    def tag(tokens: Sequence[str]) -> list[str]:
        tagged = parser.find_tags(list(tokens)) if tokens else []
        if len(tagged) != len(tokens):
            raise RuntimeError(f"the tagger returned {len(tagged)} tags for {len(tokens)} words")
        return [t for _, t in tagged]

    return tag


@dataclass
class TaggedSet:
    """A training set as d-lite reads it: each sentence's words and tags, every word under its tag (repeats
    kept), and the sentences seen so far (the training sentences' words joined by spaces)."""

    sentences: list[tuple[list[str], list[str]]]
    by_tag: dict[str, list[str]]
    seen: set[str]


def tag_training_set(sentences: Iterable[str], pos: str) -> TaggedSet:
    """d-bert's first pass over the training set (`augment_data.py` lines 33-45)."""
    tag = tagger(pos)
    out, by_tag, seen = [], defaultdict(list), set()
    for sentence in sentences:
        ws = words(sentence)
        tags = tag(ws)
        for w, t in zip(ws, tags):
            by_tag[t].append(w)
        seen.add(" ".join(ws))
        out.append((ws, tags))
    return TaggedSet(out, dict(by_tag), seen)


def dlite_try(ws: Sequence[str], tags: Sequence[str], by_tag: Mapping[str, Sequence[str]], settings: RulesSettings,
              rng: random.Random) -> str | None:
    """One d-lite try on a sentence (`augment_data.py` lines 62-90): the new sentence, or None when every word was
    masked or swapped."""
    use_windowing = rng.random() < settings.p_ng
    gen_words, all_replaced = [], True
    for word, tag in zip(ws, tags):
        roll = rng.random()
        if roll < settings.p_mask:
            word = MASK
        elif roll < settings.p_mask + settings.p_pos:
            word = rng.choice(by_tag[tag])
        else:
            all_replaced = False
        gen_words.append(word)
    if use_windowing:
        window_len = rng.choice(range(1, settings.max_ng + 1))
        if len(gen_words) - window_len > 0:  # else the whole sentence (see the module's docstring)
            idx = rng.randrange(len(gen_words) - window_len)
            gen_words = gen_words[idx : idx + window_len]
    return None if all_replaced else " ".join(gen_words)


def dlite_variants(ws: Sequence[str], tags: Sequence[str], tagged: TaggedSet, settings: RulesSettings,
                   rng: random.Random) -> list[str]:
    """The new sentences of `settings.variants` tries on one sentence, each unseen before (then seen)."""
    out = []
    for _ in range(settings.variants):
        sentence = dlite_try(ws, tags, tagged.by_tag, settings, rng)
        if sentence is not None and sentence not in tagged.seen:
            tagged.seen.add(sentence)
            out.append(sentence)
    return out

"""The 10 SentEval probing tasks on grammar sentences, with labels true by construction.

Each line of `probing/{task}.txt` is `split<TAB>label<TAB>sentence` (splits `tr`/`va`/`te`, about 70/15/15,
stratified by label), as in facebookresearch/SentEval `data/probing`. Sentences are tokenised and lower case
but for the first word. Labels use SentEval's strings; where the real task depends on corpus statistics the
demo fixes its own scale:

- sentence_length: number of tokens (punctuation included) in bins of 4 from 4: label `(n - 4) // 4`, 0..5.
- word_content: which of `WORD_CONTENT` occurs; exactly one of them occurs, exactly once.
- tree_depth: depth of the generating tree (a preterminal such as `(NN dog)` has depth 1), 3..10.
- top_constituents: the labels of the root's children joined by `_`, e.g. `ADVP_NP_VP_.`.
- past_present: tense of the main clause (`PAST`/`PRES`; of the auxiliary in questions).
- subj_number / obj_number: number of the main clause's subject / direct object head (`NN`/`NNS`).
- bigram_shift: `I` when two adjacent different words (not the final punctuation) were swapped, else `O`.
- odd_man_out: `C` when a noun or verb of the main clause was replaced by one of the same form but a
  semantic class its context rules out ("the farmer ate the poem"), else `O`.
- coordination_inversion: `I` when the two clauses of `S1 , CC S2 .` were swapped, else `O`.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kdprobe.errors import ConfigError
from kdprobe.io import write_text
from kdprobe.demo.grammar import (NOUN_CLASS, NOUNS, ODD_CLASSES, PAST, PL, PRES, SG, TRANSITIVE, VERB_OF, Grammar, Tree,
                      main_start, probe_text)

log = logging.getLogger(__name__)

PROBING_TASKS = ("sentence_length", "word_content", "tree_depth", "bigram_shift", "top_constituents",
                 "past_present", "subj_number", "obj_number", "odd_man_out", "coordination_inversion")
SPLIT_SHARES = (("tr", 0.7), ("va", 0.15), ("te", 0.15))
WORD_CONTENT = ("garden", "letter", "horse", "cake", "doctor", "river", "quiet", "fresh", "wrote", "visited")
LENGTH_MIN, LENGTH_BIN, LENGTH_BINS = 4, 4, 6
DEPTHS = tuple(range(3, 11))
TOP_LABELS = {"plain": "NP_VP_.", "ADVP": "ADVP_NP_VP_.", "PP": "PP_,_NP_VP_.", "SBAR": "SBAR_,_NP_VP_.",
              "CC": "CC_NP_VP_."}
QUESTION_LABELS = ("VBD_NP_VP_.", "VBZ_NP_VP_.", "VBP_NP_VP_.")

LABELS: dict[str, tuple[str, ...]] = {
    "sentence_length": tuple(str(i) for i in range(LENGTH_BINS)),
    "word_content": WORD_CONTENT,
    "tree_depth": tuple(map(str, DEPTHS)),
    "bigram_shift": ("O", "I"),
    "top_constituents": (*TOP_LABELS.values(), *QUESTION_LABELS),
    "past_present": (PRES, PAST),
    "subj_number": (SG, PL),
    "obj_number": (SG, PL),
    "odd_man_out": ("O", "C"),
    "coordination_inversion": ("O", "I"),
}


@dataclass(frozen=True)
class ProbeExample:
    """One probing sentence: `words` as written (lower case) and the `tree` that generated it; for a shifted,
    replaced or inverted sentence, `tree` is the original (unaltered: `words == tree.leaves()`)."""

    label: str
    words: tuple[str, ...]
    tree: Tree

    @property
    def sentence(self) -> str:
        return probe_text(self.words)


def length_label(n_words: int) -> str | None:
    label = (n_words - LENGTH_MIN) // LENGTH_BIN
    return str(label) if n_words >= LENGTH_MIN and label < LENGTH_BINS else None


def top_label(tree: Tree) -> str:
    return "_".join(c.label for c in tree.children if isinstance(c, Tree))


def _plain(tree: Tree, label: str) -> ProbeExample:
    return ProbeExample(label, tuple(tree.leaves()), tree)


# One maker per task: (grammar, wanted label) -> an example, or None to try again. The label of the example is
# what it is; `wanted` only steers the generator towards classes that are still short.

def _length(g: Grammar, wanted: str) -> ProbeExample | None:
    tree, _ = g.sentence(complexity=min(1.0, (int(wanted) + g.rng.random()) / LENGTH_BINS))
    label = length_label(len(tree.leaves()))
    return _plain(tree, label) if label else None


def _word_content(g: Grammar, wanted: str) -> ProbeExample | None:
    tree, _ = g.sentence()
    found = [w for w in tree.leaves() if w in WORD_CONTENT]
    return _plain(tree, found[0]) if len(found) == 1 else None


def _depth(g: Grammar, wanted: str) -> ProbeExample | None:
    span = DEPTHS[-1] - DEPTHS[0] + 1
    tree, _ = g.sentence(complexity=min(1.0, (int(wanted) - DEPTHS[0] + g.rng.random()) / span))
    label = str(tree.depth())
    return _plain(tree, label) if label in LABELS["tree_depth"] else None


def _top(g: Grammar, wanted: str) -> ProbeExample | None:
    kind = next((k for k, lab in TOP_LABELS.items() if lab == wanted), "question")
    tree, _ = g.sentence(top=kind, complexity=g.rng.random() * 0.6)
    return _plain(tree, top_label(tree))


def _tense(g: Grammar, wanted: str) -> ProbeExample | None:
    tree, main = g.sentence(tense=wanted)
    return _plain(tree, main.tense)


def _subj_number(g: Grammar, wanted: str) -> ProbeExample | None:
    tree, main = g.sentence(subj_number=wanted)
    return _plain(tree, main.subj_number)


def _obj_number(g: Grammar, wanted: str) -> ProbeExample | None:
    tree, main = g.sentence(obj_number=wanted, transitive=True)
    return _plain(tree, main.obj_number)


def _bigram_shift(g: Grammar, wanted: str) -> ProbeExample | None:
    tree, _ = g.sentence(complexity=g.rng.random() * 0.7)
    words = tree.leaves()
    if wanted == "O":
        return _plain(tree, "O")
    pairs = [i for i in range(len(words) - 2) if words[i] != words[i + 1]]
    if not pairs:
        return None
    i = g.rng.choice(pairs)
    words[i], words[i + 1] = words[i + 1], words[i]
    return ProbeExample("I", tuple(words), tree)


def _odd_man_out(g: Grammar, wanted: str) -> ProbeExample | None:
    """Replace the main verb (by a verb taking other objects) or a main-clause noun (by another class)."""
    rng = g.rng
    tree, main = g.sentence(transitive=True, complexity=g.rng.random() * 0.7)
    if wanted == "O":
        return _plain(tree, "O")
    start = main_start(tree, main)
    span = [(start + i, tag, w) for i, (tag, w) in enumerate(main.subject.tagged() + main.vp.tagged())]
    slots = [s for s in span if s[1] in (SG, PL) or s[1].startswith("VB")]
    index, tag, word = rng.choice(slots)
    words = tree.leaves()
    if tag in (SG, PL):
        cls = rng.choice(ODD_CLASSES[NOUN_CLASS[word]])
        options = [pair[0 if tag == SG else 1] for pair in NOUNS[cls]]
        if words[index - 1] in ("a", "an"):  # keep a/an right: the article must not give the change away
            options = [w for w in options if (w[0] in "aeiou") == (word[0] in "aeiou")]
    else:
        verb = VERB_OF[word]
        options = [v.form(tag) for v in TRANSITIVE if not set(v.objects) & set(verb.objects)]
    if not options:
        return None
    words[index] = rng.choice(options)
    return ProbeExample("C", tuple(words), tree)


def _coordination(g: Grammar, wanted: str) -> ProbeExample | None:
    tree, s1, s2 = g.coordination(complexity=g.rng.random() * 0.5)
    if wanted == "O":
        return _plain(tree, "O")
    _, comma, cc, _, end = tree.children
    return ProbeExample("I", tuple(Tree("S", (s2, comma, cc, s1, end)).leaves()), tree)


MAKERS: dict[str, Callable[[Grammar, str], ProbeExample | None]] = {
    "sentence_length": _length, "word_content": _word_content, "tree_depth": _depth, "bigram_shift": _bigram_shift,
    "top_constituents": _top, "past_present": _tense, "subj_number": _subj_number, "obj_number": _obj_number,
    "odd_man_out": _odd_man_out, "coordination_inversion": _coordination,
}


def probing_examples(task: str, n: int, seed: int) -> list[tuple[str, ProbeExample]]:
    """`n` examples of `task` as `(split, example)`, classes balanced, sentences unique, deterministic in `seed`."""
    rng = random.Random(f"{seed}:probing:{task}")
    grammar = Grammar(rng)
    labels = LABELS[task]
    quota = {lab: n // len(labels) + (i < n % len(labels)) for i, lab in enumerate(labels)}
    by_label: dict[str, list[ProbeExample]] = {lab: [] for lab in labels}
    seen: set[tuple[str, ...]] = set()
    attempts = 0
    while any(len(by_label[lab]) < quota[lab] for lab in labels):
        attempts += 1
        if attempts > 1000 * max(n, 10):
            raise RuntimeError(f"probing task {task}: cannot fill the classes ({quota} wanted)")
        wanted = rng.choice([lab for lab in labels if len(by_label[lab]) < quota[lab]])
        ex = MAKERS[task](grammar, wanted)
        if ex is None or ex.label not in quota or len(by_label[ex.label]) >= quota[ex.label] or ex.words in seen:
            continue
        seen.add(ex.words)
        by_label[ex.label].append(ex)
    out: list[tuple[str, ProbeExample]] = []
    for split, share in SPLIT_SHARES:
        part = []
        for lab in labels:
            items = by_label[lab]
            k = len(items) if split == SPLIT_SHARES[-1][0] else round(quota[lab] * share)
            part += items[:k]
            by_label[lab] = items[k:]
        if not part:
            raise ConfigError("demo.probing_sentences", f"{n} sentences leave split {split} of {task} empty")
        rng.shuffle(part)
        out += [(split, ex) for ex in part]
    return out


def write_probing(out_dir: str | Path, n: int, seed: int) -> list[str]:
    """Write `out_dir/{task}.txt` for the 10 SentEval tasks, `n` sentences each; return all sentences."""
    out_dir = Path(out_dir)
    sentences = []
    for task in PROBING_TASKS:
        rows = probing_examples(task, n, seed)
        write_text(out_dir / f"{task}.txt", "".join(f"{split}\t{ex.label}\t{ex.sentence}\n" for split, ex in rows))
        sentences += [ex.sentence for _, ex in rows]
        log.info("probing %s: %d sentences, %d labels", task, len(rows), len(LABELS[task]))
    return sentences

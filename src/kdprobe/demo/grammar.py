"""A small English grammar whose sentences come with their parse trees.

The demo data (CoLA-like acceptability, probing tasks) is generated from here, so every label that depends on
structure (depth, top constituents, tense, subject/object number) can be read off the tree that produced the
sentence. Words carry coarse semantic classes (verbs select their subject and object classes), which makes
odd-man-out replacements detectable. All words are lower case; `probe_text`/`plain_text` format a sentence.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

PRES, PAST = "PRES", "PAST"
SG, PL = "NN", "NNS"
ANIMATE = ("person", "animal")

#: Nouns by semantic class, as (singular, plural).
NOUNS: dict[str, tuple[tuple[str, str], ...]] = {
    "person": (("teacher", "teachers"), ("farmer", "farmers"), ("child", "children"), ("doctor", "doctors"),
               ("student", "students"), ("artist", "artists"), ("baker", "bakers"), ("pilot", "pilots"),
               ("nurse", "nurses"), ("writer", "writers"), ("woman", "women"), ("man", "men")),
    "animal": (("dog", "dogs"), ("cat", "cats"), ("horse", "horses"), ("bird", "birds"), ("fox", "foxes"),
               ("rabbit", "rabbits"), ("goat", "goats")),
    "food": (("apple", "apples"), ("cake", "cakes"), ("sandwich", "sandwiches"), ("pie", "pies"),
             ("cookie", "cookies"), ("orange", "oranges"), ("carrot", "carrots")),
    "text": (("book", "books"), ("letter", "letters"), ("poem", "poems"), ("story", "stories"),
             ("report", "reports"), ("song", "songs")),
    "vehicle": (("car", "cars"), ("bike", "bikes"), ("truck", "trucks"), ("boat", "boats"), ("bus", "buses")),
    "place": (("park", "parks"), ("garden", "gardens"), ("kitchen", "kitchens"), ("river", "rivers"),
              ("city", "cities"), ("village", "villages"), ("market", "markets"), ("station", "stations")),
}
#: For an odd-man-out replacement: classes that make no sense where a noun of the key class stood.
ODD_CLASSES = {
    "person": ("food", "text", "vehicle"), "animal": ("text", "vehicle", "place"),
    "food": ("person", "place", "vehicle"), "text": ("animal", "food", "place"),
    "vehicle": ("food", "text", "animal"), "place": ("food", "text", "person"),
}
ADJECTIVES: dict[str, tuple[str, ...]] = {
    "person": ("young", "old", "tall", "clever", "tired", "happy"),
    "animal": ("small", "hungry", "old", "brown", "lazy"),
    "food": ("fresh", "sweet", "warm", "green"),
    "text": ("long", "short", "funny", "old"),
    "vehicle": ("red", "new", "old", "fast"),
    "place": ("quiet", "busy", "small", "large", "old"),
}
DETERMINERS = {SG: ("the", "the", "a", "this", "that", "every"), PL: ("the", "the", "these", "those", "some",
                                                                        "many", "two", "three")}
PREPOSITIONS = {"in": ("place",), "near": ("place",), "behind": ("place", "vehicle"), "with": ANIMATE}
ADVERBS = ("quietly", "loudly", "again", "happily", "slowly")
TIME_ADVERBS = ("yesterday", "today", "often", "suddenly", "later")
SUBORDINATORS = ("when", "because", "after", "before", "although")
CONJUNCTIONS = ("and", "but", "so")
#: What may precede the main clause's subject (see `Grammar.sentence`).
TOP_KINDS = ("plain", "ADVP", "PP", "SBAR", "CC", "question")


@dataclass(frozen=True)
class Verb:
    base: str
    s: str
    past: str
    subjects: tuple[str, ...]
    objects: tuple[str, ...] = ()  # empty: intransitive

    def form(self, tag: str) -> str:
        return {"VB": self.base, "VBP": self.base, "VBZ": self.s, "VBD": self.past}[tag]


VERBS = (
    Verb("eat", "eats", "ate", ANIMATE, ("food",)),
    Verb("cook", "cooks", "cooked", ("person",), ("food",)),
    Verb("bake", "bakes", "baked", ("person",), ("food",)),
    Verb("write", "writes", "wrote", ("person",), ("text",)),
    Verb("publish", "publishes", "published", ("person",), ("text",)),
    Verb("drive", "drives", "drove", ("person",), ("vehicle",)),
    Verb("repair", "repairs", "repaired", ("person",), ("vehicle",)),
    Verb("visit", "visits", "visited", ("person",), ("place", "person")),
    Verb("clean", "cleans", "cleaned", ("person",), ("place", "vehicle")),
    Verb("chase", "chases", "chased", ANIMATE, ("animal",)),
    Verb("feed", "feeds", "fed", ("person",), ("animal",)),
    Verb("help", "helps", "helped", ("person",), ("person",)),
    Verb("sleep", "sleeps", "slept", ANIMATE),
    Verb("laugh", "laughs", "laughed", ("person",)),
    Verb("sing", "sings", "sang", ANIMATE),
    Verb("run", "runs", "ran", ANIMATE),
    Verb("arrive", "arrives", "arrived", ANIMATE),
    Verb("wait", "waits", "waited", ANIMATE),
)
TRANSITIVE = tuple(v for v in VERBS if v.objects)
INTRANSITIVE = tuple(v for v in VERBS if not v.objects)

NOUN_CLASS = {form: cls for cls, pairs in NOUNS.items() for pair in pairs for form in pair}
VERB_OF = {v.form(tag): v for v in VERBS for tag in ("VB", "VBZ", "VBD")}
assert not set(NOUN_CLASS) & set(VERB_OF), "a word form is both noun and verb"


@dataclass(frozen=True)
class Tree:
    """A constituency tree; leaves are words, preterminals (e.g. `(NN dog)`) have depth 1."""

    label: str
    children: tuple["Tree | str", ...]

    def leaves(self) -> list[str]:
        return [w for tag, w in self.tagged()]

    def tagged(self) -> list[tuple[str, str]]:
        """(preterminal label, word) for every word, in order."""
        if len(self.children) == 1 and isinstance(self.children[0], str):
            return [(self.label, self.children[0])]
        return [pair for child in self.children for pair in child.tagged()]

    def depth(self) -> int:
        return 1 + max((c.depth() if isinstance(c, Tree) else 0) for c in self.children)

    def bracketed(self) -> str:
        inner = " ".join(c.bracketed() if isinstance(c, Tree) else c for c in self.children)
        return f"({self.label} {inner})"


def leaf(tag: str, word: str) -> Tree:
    return Tree(tag, (word,))


@dataclass(frozen=True)
class Clause:
    """A clause's subject NP and VP with what the labels need to know about them."""

    subject: Tree
    vp: Tree
    tense: str
    subj_number: str
    obj_number: str | None
    subj_class: str


def pronoun(noun: str, number: str, rng: random.Random) -> Tree:
    if number == PL:
        return Tree("NP", (leaf("PRP", "they"),))
    if NOUN_CLASS[noun] != "person":
        return Tree("NP", (leaf("PRP", "it"),))
    word = {"woman": "she", "man": "he"}.get(noun) or rng.choice(("he", "she"))
    return Tree("NP", (leaf("PRP", word),))


class Grammar:
    """Random sentences from `rng`; `complexity` in [0, 1] scales adjectives and PP / relative-clause embedding."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def noun_phrase(self, classes: Sequence[str], number: str, budget: int, complexity: float) -> tuple[Tree, str]:
        """An NP and its head noun's class; `budget` bounds the embedding of PPs and relative clauses."""
        rng = self.rng
        cls = rng.choice(classes)
        noun = rng.choice(NOUNS[cls])[0 if number == SG else 1]
        adjs = [rng.choice(ADJECTIVES[cls]) for _ in range(2) if rng.random() < 0.15 + 0.3 * complexity]
        adjs = list(dict.fromkeys(adjs))
        det = rng.choice(DETERMINERS[number])
        if det == "a" and (adjs[0] if adjs else noun)[0] in "aeiou":
            det = "an"
        np = Tree("NP", (leaf("DT", det), *(leaf("JJ", a) for a in adjs), leaf(number, noun)))
        if budget > 0 and rng.random() < 0.1 + 0.6 * complexity:
            relative = [v for v in VERBS if cls in v.subjects]
            if relative and rng.random() < 0.4:
                tense = rng.choice((PRES, PAST))
                vp, _ = self.verb_phrase(rng.choice(relative), _tag(tense, number), budget - 1, complexity)
                sbar = Tree("SBAR", (Tree("WHNP", (leaf("WDT", "that"),)), Tree("S", (vp,))))
                np = Tree("NP", (np, sbar))
            else:
                prep = rng.choice(tuple(PREPOSITIONS))
                inner, _ = self.noun_phrase(PREPOSITIONS[prep], rng.choice((SG, PL)), budget - 1, complexity)
                np = Tree("NP", (np, Tree("PP", (leaf("IN", prep), inner))))
        return np, cls

    def verb_phrase(
        self, verb: Verb, tag: str, budget: int, complexity: float, obj_number: str | None = None
    ) -> tuple[Tree, str | None]:
        """A VP headed by `verb` in form `tag`, and its object's number (None for intransitives)."""
        head = leaf(tag, verb.form(tag))
        if verb.objects:
            obj_number = obj_number or self.rng.choice((SG, PL))
            obj, _ = self.noun_phrase(verb.objects, obj_number, budget, complexity)
            return Tree("VP", (head, obj)), obj_number
        if self.rng.random() < 0.4:
            return Tree("VP", (head, Tree("ADVP", (leaf("RB", self.rng.choice(ADVERBS)),)))), None
        return Tree("VP", (head,)), None

    def clause(
        self,
        complexity: float,
        tense: str | None = None,
        subj_number: str | None = None,
        obj_number: str | None = None,
        transitive: bool | None = None,
        question: bool = False,
    ) -> Clause:
        """Subject and VP; in a question the VP has the base form (the auxiliary is the caller's)."""
        rng = self.rng
        budget = 1 + int(complexity * 2.5)
        verb = rng.choice(VERBS if transitive is None else TRANSITIVE if transitive else INTRANSITIVE)
        tense = tense or rng.choice((PRES, PAST))
        subj_number = subj_number or rng.choice((SG, PL))
        subject, cls = self.noun_phrase(verb.subjects, subj_number, budget, complexity)
        tag = "VB" if question else _tag(tense, subj_number)
        vp, obj_number = self.verb_phrase(verb, tag, budget, complexity, obj_number)
        return Clause(subject, vp, tense, subj_number, obj_number, cls)

    def sentence(self, top: str | None = None, complexity: float | None = None, **clause_args) -> tuple[Tree, Clause]:
        """A full sentence `(S ...)` whose main clause is returned too.

        `top` picks what precedes the subject: `plain` (nothing), `ADVP`, `PP`, `SBAR`, `CC` or `question`
        (an auxiliary: did / does / do). `clause_args` go to `clause` (tense, numbers, transitive).
        """
        rng = self.rng
        complexity = rng.random() if complexity is None else complexity
        top = top or rng.choice(TOP_KINDS)
        main = self.clause(complexity, question=top == "question", **clause_args)
        end = leaf(".", "?" if top == "question" else ".")
        if top == "question":
            aux = {PAST: ("VBD", "did"), PRES: ("VBZ", "does") if main.subj_number == SG else ("VBP", "do")}
            return Tree("S", (leaf(*aux[main.tense]), main.subject, main.vp, end)), main
        prefix: tuple[Tree, ...] = ()
        if top == "ADVP":
            prefix = (Tree("ADVP", (leaf("RB", rng.choice(TIME_ADVERBS)),)),)
        elif top == "PP":
            prep = rng.choice(("in", "near"))
            np, _ = self.noun_phrase(PREPOSITIONS[prep], rng.choice((SG, PL)), 0, complexity)
            prefix = (Tree("PP", (leaf("IN", prep), np)), leaf(",", ","))
        elif top == "SBAR":
            sub = self.clause(complexity / 2)
            prefix = (Tree("SBAR", (leaf("IN", rng.choice(SUBORDINATORS)), Tree("S", (sub.subject, sub.vp)))),
                      leaf(",", ","))
        elif top == "CC":
            prefix = (leaf("CC", rng.choice(("and", "but"))),)
        return Tree("S", (*prefix, main.subject, main.vp, end)), main

    def coordination(self, complexity: float) -> tuple[Tree, Tree, Tree]:
        """`(S S1 , CC S2 .)` and its two conjoint clauses; S2 often refers back to S1's subject."""
        rng = self.rng
        first = self.clause(complexity)
        s1 = Tree("S", (first.subject, first.vp))
        if rng.random() < 0.7:
            subject = pronoun(_head(first.subject), first.subj_number, rng)
            verb = rng.choice([v for v in VERBS if first.subj_class in v.subjects])
            vp, _ = self.verb_phrase(verb, _tag(rng.choice((PRES, PAST)), first.subj_number), 0, complexity)
        else:
            second = self.clause(complexity)
            subject, vp = second.subject, second.vp
        adverb = (Tree("ADVP", (leaf("RB", rng.choice(("then", "still", "also"))),)),) if rng.random() < 0.5 else ()
        s2 = Tree("S", (*adverb, subject, vp))
        cc = leaf("CC", rng.choice(CONJUNCTIONS))
        return Tree("S", (s1, leaf(",", ","), cc, s2, leaf(".", "."))), s1, s2


def _tag(tense: str, number: str) -> str:
    return "VBD" if tense == PAST else ("VBZ" if number == SG else "VBP")


def _head(np: Tree) -> str:
    """The head noun of an NP (the last noun of its innermost first NP)."""
    first = np.children[0]
    if isinstance(first, Tree) and first.label == "NP":
        return _head(first)
    return next(w for tag, w in reversed(np.tagged()) if tag in (SG, PL))


def main_start(tree: Tree, main: Clause) -> int:
    """Index of the first word of the main clause's subject in a tree from `Grammar.sentence`."""
    return len(tree.leaves()) - len(main.subject.leaves()) - len(main.vp.leaves()) - 1


def probe_text(words: Sequence[str]) -> str:
    """SentEval style: tokens joined by spaces, the first one capitalised."""
    words = list(words)
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])


def plain_text(words: Sequence[str]) -> str:
    """Ordinary prose: punctuation attached to the preceding word, the first word capitalised."""
    out = ""
    for w in words:
        out += w if (w in {".", ",", "?", "!"} and out) else (" " + w if out else w)
    return out[:1].upper() + out[1:]

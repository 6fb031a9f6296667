"""Raw demo data for the three classification tasks, written in the real file formats.

Nothing here comes from the real data sets; sentences are generated so that small models can learn the tasks
from a few hundred examples:
- CoLA-like acceptability: short grammar sentences (label 1) against ones with a subject-verb or
  determiner-noun agreement error or a word-order error: a noun before its determiner, the verb at the end, or
  scrambled words (label 0, mark `*`). Public CoLA format: source, label, mark, sentence.
- SST-2-like sentiment: movie-review phrases built from polar adjectives and verbs, with negation ("not dull")
  and contrast ("..., but ...": the second clause decides). GLUE format: header `sentence<TAB>label`.
- Sara-like intents: templates per intent with Rasa entity markup, in Rasa NLU markdown.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Callable

from kdprobe.data.rasa import strip_entities
from kdprobe.io import write_text
from kdprobe.demo.grammar import PL, PRES, SG, VERB_OF, Grammar, main_start, plain_text

log = logging.getLogger(__name__)

DEV_SHARE = 0.2  # of the CoLA and SST-2 sentences, written to dev.tsv


def unique(
    make: Callable[[], tuple[str, str]], n: int, what: str, seen: set[str] | None = None
) -> list[tuple[str, str]]:
    """`n` results of `make()` (sentence, label) whose sentences are new to `seen` (updated) and each other."""
    seen = set() if seen is None else seen
    out = []
    for _ in range(200 * max(n, 10)):
        if len(out) == n:
            return out
        sentence, label = make()
        if sentence not in seen:
            seen.add(sentence)
            out.append((sentence, label))
    raise RuntimeError(f"{what}: the generator cannot make {n} distinct sentences")


# ----------------------------------------------------------------------------------------------------- CoLA --

WRONG_DETERMINERS = {SG: ("these", "those", "many", "two", "several"), PL: ("a", "this", "that", "every", "one")}


def _agreement(words: list[str], tagged: list[tuple[str, str]], verb_at: int, rng: random.Random) -> bool:
    """Subject-verb agreement error on the main verb (present tense only)."""
    tag, word = tagged[verb_at]
    if tag not in ("VBZ", "VBP"):
        return False
    verb = VERB_OF[word]
    words[verb_at] = verb.base if tag == "VBZ" else verb.s
    return True


def _determiner(words: list[str], tagged: list[tuple[str, str]], verb_at: int, rng: random.Random) -> bool:
    """Determiner-noun number error in one NP."""
    spots = []
    for i, (tag, _) in enumerate(tagged):
        if tag == "DT":
            j = i + 1
            while tagged[j][0] == "JJ":
                j += 1
            if tagged[j][0] in (SG, PL):
                spots.append((i, tagged[j][0]))
    if not spots:
        return False
    i, number = rng.choice(spots)
    words[i] = rng.choice(WRONG_DETERMINERS[number])
    return True


def _word_order(words: list[str], tagged: list[tuple[str, str]], verb_at: int, rng: random.Random) -> bool:
    """A noun before its determiner ("dog the") or the main verb moved to the end of the sentence."""
    pairs = [i for i in range(len(tagged) - 1) if tagged[i][0] == "DT" and tagged[i + 1][0] in (SG, PL)]
    if pairs and rng.random() < 0.5:
        i = rng.choice(pairs)
        words[i], words[i + 1] = words[i + 1], words[i]
        return True
    if verb_at >= len(words) - 2:
        return False
    verb = words.pop(verb_at)
    words.insert(len(words) - 1, verb)
    return True


def _scramble(words: list[str], tagged: list[tuple[str, str]], verb_at: int, rng: random.Random) -> bool:
    """The words in random order (at least three moved), final punctuation kept."""
    body = words[:-1]
    for _ in range(10):
        rng.shuffle(body)
        if sum(a != b for a, b in zip(body, words)) >= 3:
            words[:-1] = body
            return True
    return False


#: Violations drawn for unacceptable sentences; scrambles twice as often: agreement errors alone are too subtle
#: for the demo's tiny teacher to learn from a few hundred sentences.
VIOLATIONS = (_agreement, _determiner, _word_order, _scramble, _scramble)


def cola_example(grammar: Grammar) -> tuple[str, str]:
    """(sentence, label): 65% grammatical (1), the rest with one violation (0); short sentences, so that the
    violations stand out."""
    rng = grammar.rng
    acceptable = rng.random() < 0.65
    violation = rng.choice(VIOLATIONS)
    while True:
        tree, main = grammar.sentence(top=rng.choice(("plain", "plain", "plain", "ADVP", "CC")),
                                      complexity=rng.random() * 0.1,
                                      tense=PRES if violation is _agreement else None)
        words, tagged = tree.leaves(), tree.tagged()
        verb_at = main_start(tree, main) + len(main.subject.leaves())
        if acceptable or violation(words, tagged, verb_at, rng):
            return plain_text(words), "1" if acceptable else "0"


def cola_lines(examples: list[tuple[str, str]], rng: random.Random) -> str:
    """Public CoLA: `source<TAB>label<TAB>mark<TAB>sentence`, mark `*` for unacceptable sentences."""
    return "".join(f"dm0{rng.randint(1, 3)}\t{label}\t{'' if label == '1' else '*'}\t{sentence}\n"
                   for sentence, label in examples)


# ---------------------------------------------------------------------------------------------------- SST-2 --

POSITIVE = ("wonderful", "charming", "brilliant", "moving", "funny", "gripping", "delightful", "beautiful",
            "smart", "touching", "warm", "clever", "fresh", "lovely")
NEGATIVE = ("dull", "tedious", "boring", "clumsy", "predictable", "awful", "lifeless", "shallow", "bland",
            "tiresome", "messy", "forgettable", "silly", "flat")
POSITIVE_VERBS = ("loved", "enjoyed", "admired", "adored", "liked")
NEGATIVE_VERBS = ("hated", "disliked", "resented", "endured", "regretted")
TOPICS = ("the film", "this movie", "the story", "the acting", "the script", "the director 's vision",
          "the cast", "the soundtrack", "the ending", "the dialogue", "its humor", "the plot", "the pacing",
          "the lead performance", "the camera work")
GENRES = ("film", "movie", "comedy", "drama", "thriller", "romance", "documentary", "sequel")
INTENSIFIERS = ("very", "truly", "remarkably", "rather", "utterly", "quite", "surprisingly", "often", "simply")
FILLERS = ("from start to finish", "in the end", "for most of its running time", "despite its length",
           "at times", "for the most part", "on the whole")


def _clause(rng: random.Random, positive: bool) -> str:
    adjs = POSITIVE if positive else NEGATIVE
    pick = rng.choice
    forms = (
        lambda: f"{pick(TOPICS)} is {pick(INTENSIFIERS)} {pick(adjs)}",
        lambda: f"{pick(TOPICS)} is not {pick(NEGATIVE if positive else POSITIVE)}",
        lambda: f"{pick(TOPICS)} is {pick(adjs)} and {pick(adjs)}",
        lambda: f"a {pick(adjs)} , {pick(adjs)} {pick(GENRES)}",
        lambda: f"i {pick(POSITIVE_VERBS if positive else NEGATIVE_VERBS)} {pick(TOPICS)}",
        lambda: f"it 's a {pick(INTENSIFIERS)} {pick(adjs)} {pick(GENRES)}",
        lambda: f"{pick(INTENSIFIERS)} {pick(adjs)}",
    )
    return pick(forms)()


def sst2_example(rng: random.Random) -> tuple[str, str]:
    """(sentence, label) of a lower-case, tokenised review phrase; label 1 positive, 0 negative."""
    positive = rng.random() < 0.55
    text = _clause(rng, positive)
    if rng.random() < 0.25:
        text = f"{_clause(rng, not positive)} , but {text}"
    if rng.random() < 0.3:
        text += f" {rng.choice(FILLERS)}"
    if rng.random() < 0.5:
        text += " ."
    return text, "1" if positive else "0"


def sst2_lines(examples: list[tuple[str, str]]) -> str:
    """GLUE SST-2: header, then `sentence <TAB>label` (GLUE's training file has that space before the tab)."""
    return "sentence\tlabel\n" + "".join(f"{sentence} \t{label}\n" for sentence, label in examples)


# ----------------------------------------------------------------------------------------------------- Sara --

#: entity slot -> (entity name, surface forms or (surface, value) pairs, markup style)
ENTITIES: dict[str, tuple[str, tuple, str]] = {
    "company": ("company", ("acme", "globex", "initech", "umbrella corp", "hooli", "vandelay industries",
                            "wonka labs", "pied piper"), "paren"),
    "job": ("job_function", ("data scientist", "developer", "product manager", "cto", "engineer", "designer",
                             "student"), "paren"),
    "email": ("email", ("anna@example.com", "bob.lee@example.org", "kim_99@example.net", "jo@demo.io",
                        "sam.r@example.com"), "paren"),
    "python": ("python_version", (("python 3", "3"), ("python 3.8", "3.8"), ("py3.9", "3.9"),
                                  ("python three", "3"), ("python 2", "2")), "value"),
    "city": ("location", ("berlin", "london", "san francisco", "paris", "lagos", "tokyo", "toronto"), "json"),
    "product": ("product", ("rasa x", "rasa open source", "rasa nlu", "rasa core"), "paren"),
}
WORDS = {
    "hi": ("hi", "hello", "hey", "good morning", "good evening", "hey there", "howdy", "hallo", "hi there", "yo"),
    "name": ("sara", "bot", "friend", "rasa", "there", "you"),
    "bye": ("bye", "goodbye", "see you", "see you later", "bye bye", "ciao", "talk to you later", "cya",
            "have a nice day", "good night"),
    "yes": ("yes", "yeah", "yep", "sure", "of course", "absolutely", "ok", "okay", "definitely", "sounds good",
            "correct", "that's right"),
    "no": ("no", "nope", "no thanks", "not really", "never", "no way", "nah", "i don't think so",
           "definitely not", "not now"),
    "thanks": ("thanks", "thank you", "thanks a lot", "many thanks", "cheers", "thx", "thank you so much",
               "much appreciated"),
    "praise": ("", "great", "cool", "awesome", "perfect", "that helps", "nice"),
    "want": ("i want to", "i would like to", "i'd like to", "can i", "please let me", "how do i", "i need to"),
    "talk": ("talk to", "speak with", "get in touch with", "contact", "reach", "book a call with"),
    "sales": ("sales", "your sales team", "someone from sales", "an account executive", "the sales people"),
    "subscribe": ("subscribe to", "sign up for", "get", "join", "receive", "register for"),
    "newsletter": ("the newsletter", "your newsletter", "the rasa newsletter", "news updates", "the mailing list"),
    "install": ("install", "set up", "download", "get started with", "deploy", "upgrade"),
    "weather": ("what's the weather", "how is the weather", "is it raining", "will it be sunny",
                "what is the temperature", "is it cold"),
    "when": ("", "today", "tomorrow", "right now", "this weekend", "tonight"),
    "built": ("who built you", "who made you", "who created you", "who is your creator", "who programmed you",
              "who owns you", "which company made you", "who designed you"),
    "tellme": ("", "tell me", "can you tell me", "i wonder", "do you know", "please tell me"),
}
INTENTS: dict[str, tuple[str, ...]] = {
    "greet": ("{hi}", "{hi} {name}", "{hi} , how are you", "{hi} {name} , nice to meet you", "{hi} again"),
    "goodbye": ("{bye}", "{bye} {name}", "ok {bye}", "{thanks} , {bye}", "i have to go , {bye}"),
    "affirm": ("{yes}", "{yes} please", "{yes} , {praise}", "{yes} i do", "oh {yes}", "{yes} that works"),
    "deny": ("{no}", "{no} , {thanks}", "{no} i don't", "{no} , not interested", "{no} that's wrong"),
    "thank": ("{thanks}", "{thanks} {name}", "{praise} {thanks}", "{thanks} for the help", "ok {thanks}"),
    "contact_sales": ("{want} {talk} {sales}", "{want} {talk} {sales} about {company}",
                      "i am a {job} at {company} and {want} {talk} {sales}", "{talk} {sales} please",
                      "i work for {company} , {want} {talk} {sales}"),
    "signup_newsletter": ("{want} {subscribe} {newsletter}", "{subscribe} {newsletter} with {email}",
                          "please {subscribe} {newsletter} , my email is {email}", "{newsletter} please",
                          "{want} {subscribe} {newsletter} using {email}"),
    "install_rasa": ("{want} {install} {product}", "{want} {install} {product} on {python}",
                     "{install} {product} with {python}", "i have {python} , {want} {install} {product}",
                     "help me {install} {product}"),
    "ask_weather": ("{weather} {when}", "{weather} in {city} {when}", "{tellme} {weather} in {city}",
                    "{tellme} {weather} {when}", "i am in {city} , {weather}"),
    "ask_builder": ("{built}", "{tellme} {built}", "{built} , {name}", "i wonder {built}",
                    "{hi} , {built}"),
}
INTENT_WEIGHTS = {"greet": 1.2, "goodbye": 0.8, "affirm": 1.3, "deny": 1.0, "thank": 0.8, "contact_sales": 1.2,
                  "signup_newsletter": 1.0, "install_rasa": 1.1, "ask_weather": 0.8, "ask_builder": 0.8}


def _markup(slot: str, rng: random.Random) -> str:
    entity, forms, style = ENTITIES[slot]
    form = rng.choice(forms)
    if style == "value":
        return f"[{form[0]}]({entity}:{form[1]})"
    if style == "json":
        return f'[{form}]{{"entity": "{entity}"}}'
    return f"[{form}]({entity})"


def sara_example(rng: random.Random, intent: str) -> str:
    """One example of `intent` with entity markup, in mixed case and punctuation like chat messages."""
    template = rng.choice(INTENTS[intent])
    slots = {slot: _markup(slot, rng) for slot in ENTITIES}
    slots.update({slot: rng.choice(words) for slot, words in WORDS.items()})
    words = template.format(**slots).split()
    text = plain_text(words) if rng.random() < 0.4 else " ".join(words).replace(" ,", ",")
    return text + rng.choice(("", "", "", "!", "?" if intent.startswith("ask") else "."))


def sara_examples(n: int, rng: random.Random) -> dict[str, list[str]]:
    """`n` distinct examples over the intents, split by `INTENT_WEIGHTS`."""
    total = sum(INTENT_WEIGHTS.values())
    sizes = {intent: int(n * w / total) for intent, w in INTENT_WEIGHTS.items()}
    for intent in list(INTENTS)[: n - sum(sizes.values())]:
        sizes[intent] += 1
    seen: set[str] = set()
    return {intent: [s for s, _ in unique(lambda: (sara_example(rng, intent), intent), size, intent, seen)]
            for intent, size in sizes.items()}


def rasa_markdown(examples: dict[str, list[str]]) -> str:
    """Rasa NLU markdown with the intents and the synonym / regex / lookup sections a real file has."""
    parts = ["<!-- demo NLU data generated by kdprobe.demo (templates, not rasa-demo) -->\n"]
    for intent, texts in examples.items():
        parts.append(f"## intent:{intent}\n" + "".join(f"- {t}\n" for t in texts))
    parts.append("## synonym:python_version\n- python three\n- py3\n")
    parts.append("## regex:email\n- [^@]+@[^@]+\\.[a-z]+\n")
    parts.append("## lookup:location\n" + "".join(f"- {c}\n" for c in ENTITIES["city"][1]))
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------- writers --

def _train_dev(examples: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    n_dev = round(len(examples) * DEV_SHARE)
    return examples[n_dev:], examples[:n_dev]


def write_raw(out_dir: str | Path, sizes: dict[str, int], seed: int) -> list[str]:
    """Write `raw/cola/{train,dev}.tsv`, `raw/sst2/{train,dev}.tsv`, `raw/sara/nlu.md`; return all sentences."""
    out_dir = Path(out_dir)
    sentences: list[str] = []

    rng = random.Random(f"{seed}:cola")
    grammar = Grammar(rng)
    cola = unique(lambda: cola_example(grammar), sizes["cola"], "cola")
    for split, part in zip(("train", "dev"), _train_dev(cola)):
        write_text(out_dir / "cola" / f"{split}.tsv", cola_lines(part, rng))
    sentences += [s for s, _ in cola]

    rng = random.Random(f"{seed}:sst2")
    sst2 = unique(lambda: sst2_example(rng), sizes["sst2"], "sst2")
    for split, part in zip(("train", "dev"), _train_dev(sst2)):
        write_text(out_dir / "sst2" / f"{split}.tsv", sst2_lines(part))
    sentences += [s for s, _ in sst2]

    sara = sara_examples(sizes["sara"], random.Random(f"{seed}:sara"))
    write_text(out_dir / "sara" / "nlu.md", rasa_markdown(sara))
    sentences += [strip_entities(s) for texts in sara.values() for s in texts]

    for task, examples in (("cola", cola), ("sst2", sst2)):
        positive = sum(label == "1" for _, label in examples)
        log.info("raw %s: %d sentences (%d labelled 1)", task, len(examples), positive)
    log.info("raw sara: %d examples, %s", sum(map(len, sara.values())), {k: len(v) for k, v in sara.items()})
    return sentences

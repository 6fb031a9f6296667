"""Demo assets: real raw formats, probing labels true by construction, loadable models, determinism."""

import re
from collections import Counter
from pathlib import Path

import pytest
import torch

from kdprobe.data.prepare import prepare_task

from kdprobe.splits import read_split
from kdprobe.demo import write_demo_assets
from kdprobe.demo.grammar import NOUN_CLASS, ODD_CLASSES, VERB_OF
from kdprobe.demo.probing import LABELS, PROBING_TASKS, WORD_CONTENT, length_label, probing_examples
from kdprobe.probe import senteval

SETTINGS = {
    "seed": 3,
    "sentences": {"cola": 60, "sst2": 60, "sara": 80},
    "probing_sentences": 80,
    "bert": {"hidden": 32, "layers": 2, "heads": 2, "intermediate": 64, "vocab_size": 400, "pretrain_steps": 5},
    "gpt2": {"hidden": 32, "layers": 1, "heads": 2, "vocab_size": 400},
    "word2vec": {"dim": 16, "epochs": 2},
}


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """The demo assets built twice from the same seed, in two directories."""
    dirs = [tmp_path_factory.mktemp(name) for name in ("demo_a", "demo_b")]
    for d in dirs:
        write_demo_assets(d, SETTINGS)
    return dirs


@pytest.fixture(scope="module")
def demo(builds):
    return builds[0]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_deterministic_bytes(builds):
    a, b = (_files(d) for d in builds)
    assert a.keys() == b.keys() and len(a) > 20
    assert [name for name in a if a[name] != b[name]] == []


def test_other_seed_other_data(tmp_path):
    from kdprobe.demo.tasks import write_raw

    write_raw(tmp_path / "a", SETTINGS["sentences"], 3)
    write_raw(tmp_path / "b", SETTINGS["sentences"], 4)
    assert (tmp_path / "a" / "cola" / "train.tsv").read_bytes() != (tmp_path / "b" / "cola" / "train.tsv").read_bytes()


def test_raw_files_in_real_formats(demo, tmp_path):
    raw = demo / "raw"
    cola_line = (raw / "cola" / "train.tsv").read_text().splitlines()[0].split("\t")
    assert len(cola_line) == 4 and cola_line[1] in "01"
    assert (raw / "sst2" / "train.tsv").read_text().startswith("sentence\tlabel\n")
    markdown = (raw / "sara" / "nlu.md").read_text()
    assert "## intent:" in markdown and re.search(r"\[[^\]]+\]\([a-z_]+(:[^)]+)?\)", markdown)
    sizes = {}
    for task, source in {
        "cola": {"format": "cola", "train": raw / "cola" / "train.tsv", "dev": raw / "cola" / "dev.tsv"},
        "sst2": {"format": "sst2", "train": raw / "sst2" / "train.tsv", "dev": raw / "sst2" / "dev.tsv"},
        "sara": {"format": "rasa_md", "train": raw / "sara" / "nlu.md", "split": {"test": 10, "dev": 10, "seed": 1}},
    }.items():
        summary = prepare_task(task, source, tmp_path / task)
        sizes[task] = sum(summary["sizes"][s] for s in ("train", "dev"))
        assert all(n > 0 for n in summary["distribution"]["train"].values())
        if task == "sara":
            assert 8 <= len(summary["labels"]) <= 12
            assert not read_split(tmp_path / task / "train.tsv").sentence.str.contains(r"\]\(").any()
    assert sizes == {"cola": 60, "sst2": 60, "sara": 70}


def test_corpus_holds_every_sentence(demo):
    corpus = (demo / "corpus.txt").read_text().splitlines()
    probing = [line.split("\t")[2] for task in PROBING_TASKS
               for line in (demo / "probing" / f"{task}.txt").read_text().splitlines()]
    assert len(corpus) == 60 + 60 + 80 + len(probing) and set(probing) <= set(corpus)


def test_probing_files_complete(demo):
    for task in PROBING_TASKS:
        path = demo / "probing" / f"{task}.txt"
        data = senteval.load(path)
        assert sum(len(s) for s, _ in data.values()) == 80
        assert len(data["train"][0]) > len(data["dev"][0]) > 0 and len(data["test"][0]) > 0
        counts = Counter(data["train"][1] + data["dev"][1] + data["test"][1])
        assert set(counts) == set(LABELS[task]) and max(counts.values()) - min(counts.values()) <= 1
        for split, (sentences, _) in data.items():
            assert len(set(sentences)) == len(sentences)


def test_labels_recomputed_from_the_sentences(demo):
    for line in (demo / "probing" / "sentence_length.txt").read_text().splitlines():
        _, label, sentence = line.split("\t")
        assert label == length_label(len(sentence.split()))
    for line in (demo / "probing" / "word_content.txt").read_text().splitlines():
        _, label, sentence = line.split("\t")
        found = [w for w in sentence.lower().split() if w in WORD_CONTENT]
        assert found == [label]


# --- labels recomputed from the bracketed trees the sentences came from -----------------------------------------

def parse(text: str):
    """`(S (NP (DT the) (NN dog)) ...)` -> nested (label, [children]) with words as strings."""
    tokens = re.findall(r"\(|\)|[^\s()]+", text)

    def node(i):
        label, children, i = tokens[i + 1], [], i + 2
        while tokens[i] != ")":
            if tokens[i] == "(":
                child, i = node(i)
            else:
                child, i = tokens[i], i + 1
            children.append(child)
        return (label, children), i + 1

    return node(0)[0]


def bracket_depth(text: str) -> int:
    depth = best = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        best = max(best, depth)
    return best


def preterminals(tree):
    label, children = tree
    if len(children) == 1 and isinstance(children[0], str):
        return [(label, children[0])]
    return [p for c in children for p in preterminals(c)]


def head_number(np) -> str:
    first = np[1][0]
    if isinstance(first, tuple) and first[0] == "NP":
        return head_number(first)
    return [tag for tag, _ in preterminals(np) if tag in ("NN", "NNS")][-1]


def examples(task):
    return [ex for _, ex in probing_examples(task, 80, SETTINGS["seed"])]


def test_probing_files_are_the_checked_examples(demo):
    for task in PROBING_TASKS:
        lines = [f"{split}\t{ex.label}\t{ex.sentence}"
                 for split, ex in probing_examples(task, 80, SETTINGS["seed"])]
        assert (demo / "probing" / f"{task}.txt").read_text().splitlines() == lines


def test_structural_labels_from_trees():
    for ex in examples("tree_depth"):
        assert list(ex.words) == ex.tree.leaves()
        assert int(ex.label) == bracket_depth(ex.tree.bracketed())
    for ex in examples("top_constituents"):
        assert ex.label == "_".join(child[0] for child in parse(ex.tree.bracketed())[1])
    for task in ("past_present", "subj_number", "obj_number"):
        for ex in examples(task):
            root = parse(ex.tree.bracketed())
            kids = root[1]
            vp = [k for k in kids if k[0] == "VP"][-1]
            subject = kids[kids.index(vp) - 1]
            tags = [k[0] for k in kids]
            aux = tags[0] if tags[0] in ("VBD", "VBZ", "VBP") else preterminals(vp)[0][0]
            truth = {
                "past_present": "PAST" if aux == "VBD" else "PRES",
                "subj_number": head_number(subject),
                "obj_number": head_number(next(k for k in vp[1] if k[0] == "NP")) if task == "obj_number" else None,
            }[task]
            assert ex.label == truth, (task, ex.tree.bracketed())


def test_altered_sentences():
    for ex in examples("bigram_shift"):
        original = ex.tree.leaves()
        diff = [i for i, (a, b) in enumerate(zip(ex.words, original)) if a != b]
        if ex.label == "O":
            assert diff == []
        else:
            i = diff[0]
            assert diff == [i, i + 1] and ex.words[i] == original[i + 1] and ex.words[i + 1] == original[i]
            assert i + 1 < len(original) - 1  # the final punctuation never moves
    for ex in examples("odd_man_out"):
        tagged = ex.tree.tagged()
        diff = [i for i, (a, (_, b)) in enumerate(zip(ex.words, tagged)) if a != b]
        if ex.label == "O":
            assert diff == []
            continue
        (i,) = diff
        tag, old = tagged[i]
        new = ex.words[i]
        if tag in ("NN", "NNS"):
            assert NOUN_CLASS[new] in ODD_CLASSES[NOUN_CLASS[old]]
        else:
            assert VERB_OF[new].form(tag) == new and not set(VERB_OF[new].objects) & set(VERB_OF[old].objects)
    for ex in examples("coordination_inversion"):
        s1, comma, cc, s2, end = ex.tree.children
        if ex.label == "O":
            assert list(ex.words) == ex.tree.leaves()
        else:
            assert list(ex.words) == s2.leaves() + [",", cc.leaves()[0]] + s1.leaves() + ["."]


def test_models_load_offline(demo):
    from gensim.models import KeyedVectors
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(demo / "models" / "bert")
    assert tok.cls_token == "[CLS]" and tok.mask_token == "[MASK]" and tok.pad_token_id == 0
    pieces = tok.tokenize("The Farmers")
    assert pieces[0] == "the" and tok.convert_tokens_to_string(pieces) == "the farmers" and "[UNK]" not in pieces
    model = AutoModelForSequenceClassification.from_pretrained(demo / "models" / "bert", num_labels=3)
    assert model.config.hidden_size == 32 and model.config.num_hidden_layers == 2
    assert model.config.vocab_size == len(tok) <= 400
    with torch.no_grad():
        assert model(**tok(["a sentence", "another one"], padding=True, return_tensors="pt")).logits.shape == (2, 3)

    gtok = AutoTokenizer.from_pretrained(demo / "models" / "gpt2")
    assert gtok.eos_token == gtok.bos_token == "<|endoftext|>" and gtok.pad_token is None
    lm = AutoModelForCausalLM.from_pretrained(demo / "models" / "gpt2")
    assert lm.config.eos_token_id == gtok.eos_token_id and lm.config.vocab_size == len(gtok)
    with torch.no_grad():
        ids = gtok("the dog slept .", return_tensors="pt")["input_ids"]
        assert lm(ids).logits.shape == (1, ids.shape[1], len(gtok))

    vectors = KeyedVectors.load_word2vec_format(str(demo / "word2vec.bin"), binary=True)
    assert vectors.vector_size == 16 and "the" in vectors and "." in vectors

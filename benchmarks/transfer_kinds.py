#!/usr/bin/env python
"""How fast each transfer-set kind is generated (issue 20 section 3): a GPT-2 sampling shard, a d-lite (`rules`)
shard and a `random_words` shard, side by side in one run, each through its job's own code
(`kdprobe.augment.sample.sample_shard`, `kdprobe.augment.generate.generate_shard`), writing its parquet shard.

    .venv/bin/python benchmarks/transfer_kinds.py                 # ~1 min here
    .venv/bin/python benchmarks/transfer_kinds.py --repeats 5 --train 480

Inputs: a training set of `--train` real English sentences (the Lee corpus that ships with gensim's tests,
`bench_models.english_sentences`: a real vocabulary for the tagger and the random words; the demo's CoLA has 480);
GPT-2 at the demo's size (config/demo.yaml `demo.gpt2`: 2 layers, hidden 64, 4 heads, the demo corpus's BPE
tokenizer), randomly initialised and length-shaped (`bench_models.length_shaped_gpt2`: samples end after 5-30
tokens mostly, as a fine-tuned one's do), sampled with the demo's `augment` settings on the CPU. The rules shard is
the whole training set (one shard: every job tags the whole training set anyway), `augment.rules` of
config/config.yaml (20 tries per sentence); random words `--random` sentences.

Each repeat runs the three once, in an order rotated from repeat to repeat; a kind's rate is the median over
repeats, its ratio the median of per-repeat ratios to GPT-2's. One CPU thread (a `generate` job asks for one; the
sampler's lanes follow torch's threads). The thesis-size estimate divides the thesis's sentence counts by these
rates: for rules and random words a CPU job's real cost (their time grows with the words per sentence: the Lee
sentences are longer than CoLA's or SST-2's, so it is an upper bound); for gpt2 only the demo model's, not GPT-2
medium's on a GPU (docs/performance.md measures that). Not part of the test suite: it measures, it does not check.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench_env import STARTED  # first: Hugging Face offline, src/ on the import path

os.environ.setdefault("TQDM_DISABLE", "1")

import pandas as pd  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import torch  # noqa: E402

from bench_common import THESIS, command_line, config, fmt, log, md_row, md_table, median, now, software  # noqa: E402
from bench_models import demo_corpus, english_sentences, length_shaped_gpt2  # noqa: E402
from kdprobe.augment.generate import generate_shard  # noqa: E402
from kdprobe.augment.sample import sample_shard  # noqa: E402
from kdprobe.scratch_models import gpt2_tokenizer  # noqa: E402

DEMO = config("demo")
KINDS = ("gpt2", "rules", "random_words")
#: The thesis's training sets (GLUE CoLA and SST-2 train) and augmentation size (augment.sentences)
THESIS_TRAIN = {"cola": 8551, "sst2": 67349}


def setup(work: Path, n_train: int, n_gpt2: int, n_random: int) -> dict:
    """The training split, the demo-size GPT-2 and each kind's job: {kind: (function, what it is asked for)}."""
    train = english_sentences(n_train, seed=1)
    train_tsv = work / "train.tsv"
    pd.DataFrame({"sentence": train, "label": "a"}).to_csv(train_tsv, sep="\t", index=False)
    demo = DEMO["demo"]["gpt2"]
    tokenizer = gpt2_tokenizer(demo_corpus(work / "demo"), demo["vocab_size"])
    augment = {**THESIS["augment"], **DEMO["augment"]}
    model = length_shaped_gpt2(tokenizer, max_length=augment["max_length"], layers=demo["layers"],
                               hidden=demo["hidden"], heads=demo["heads"])
    model.save_pretrained(work / "gpt2")
    tokenizer.save_pretrained(work / "gpt2")
    sampling = {k: v for k, v in augment.items() if k not in ("sentences", "shards", "seed", "rules", "random_words")}
    rules = {"seed": 0, "chunk_size": augment["chunk_size"], "shard": 0, "shards": 1, "rules": THESIS["augment"]["rules"]}
    random_words = {"seed": 0, "chunk_size": augment["chunk_size"], "sentences": n_random}
    tries = n_train * int(THESIS["augment"]["rules"]["variants"])
    return {
        "train_words": sum(len(s.split()) for s in train) / len(train),
        "jobs": {
            "gpt2": (lambda out, state: sample_shard(work / "gpt2", n_gpt2, 0, sampling, out, state, "cpu"), n_gpt2),
            "rules": (lambda out, state: generate_shard("rules", train_tsv, rules, out, state), tries),
            "random_words": (lambda out, state: generate_shard("random_words", train_tsv, random_words, out, state),
                             n_random),
        },
    }


def measure(work: Path, jobs: dict, repeats: int) -> dict:
    """Seconds and sentences written of every kind in every repeat (order rotated)."""
    res = {kind: {"s": [], "sentences": [], "asked": jobs[kind][1], "words": []} for kind in KINDS}
    for r in range(repeats):
        order = list(KINDS[r % len(KINDS):] + KINDS[: r % len(KINDS)])
        for kind in order:
            out, state = work / f"{kind}-{r}.parquet", work / f"state-{kind}-{r}"
            start = time.perf_counter()
            n = jobs[kind][0](out, state)
            res[kind]["s"].append(time.perf_counter() - start)
            res[kind]["sentences"].append(n)
            sentences = pq.read_table(out).column("sentence").to_pylist()
            res[kind]["words"].append(sum(len(s.split()) for s in sentences) / max(1, len(sentences)))
            log(f"repeat {r + 1}/{repeats}: {kind} {n} sentences in {res[kind]['s'][-1]:.2f} s")
    return res


def rows(res: dict) -> list[dict]:
    out = []
    for kind in KINDS:
        r = res[kind]
        rates = [n / s for n, s in zip(r["sentences"], r["s"])]
        ratios = [(n / s) / (g / t) for n, s, g, t in zip(r["sentences"], r["s"], res["gpt2"]["sentences"],
                                                          res["gpt2"]["s"])]
        out.append({"kind": kind, "s": median(r["s"]), "asked": r["asked"], "sentences": median(r["sentences"]),
                    "rate": median(rates), "ratio": median(ratios), "words": median(r["words"]),
                    "asked_rate": median([r["asked"] / s for s in r["s"]])})
    return out


def estimates(table: list[dict]) -> list[str]:
    """Thesis-size hours per kind and task (one CPU thread; gpt2: the demo model's rate)."""
    by = {r["kind"]: r for r in table}
    n_aug = int(THESIS["augment"]["sentences"])
    variants = int(THESIS["augment"]["rules"]["variants"])
    lines = []
    for task, n_train in THESIS_TRAIN.items():
        tries = n_train * variants
        lines.append(
            f"- {task} ({n_train:,} training sentences): rules {tries:,} tries -> "
            f"{fmt(tries / by['rules']['asked_rate'] / 60, 2)} min; random_words {n_aug:,} sentences -> "
            f"{fmt(n_aug / by['random_words']['rate'] / 60, 2)} min; gpt2 {n_aug:,} sentences with the demo's "
            f"GPT-2 -> {fmt(n_aug / by['gpt2']['rate'] / 60, 2)} min (GPT-2 medium: docs/performance.md)")
    return lines


def render(res: dict, meta: dict, argv: list[str]) -> str:
    table = rows(res)
    lines = [f"Measured by `{command_line('transfer_kinds.py', argv)}` on {meta['date']} (order rotated between "
             f"repeats, median of {meta['repeats']}; {meta['cpus']} CPUs, 1 torch thread, load average "
             f"{meta['load']}; Python {meta['software']['python']}, torch {meta['software']['torch']}). Training "
             f"set: {meta['train']} Lee-corpus sentences, {meta['train_words']:.1f} words on average.", ""]
    lines += md_table(["kind", "asked for", "sentences written", "seconds", "sentences/s", "ratio to gpt2",
                       "words per sentence"],
                      [md_row(r["kind"], f"{r['asked']:,}" + (" tries" if r["kind"] == "rules" else ""),
                              f"{r['sentences']:,.0f}", fmt(r["s"]), f"{r['rate']:,.0f}", f"{r['ratio']:.1f}x",
                              f"{r['words']:.1f}") for r in table])
    lines += ["", "Thesis-size estimate (one CPU thread; 800k sentences, 20 x the training set for rules):", ""]
    lines += estimates(table)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train", type=int, default=480, help="training sentences (the demo's CoLA: 480)")
    parser.add_argument("--gpt2", type=int, default=2000, help="GPT-2 sentences sampled")
    parser.add_argument("--random", type=int, default=50000, help="random-word sentences")
    args = parser.parse_args(argv)
    if min(args.repeats, args.train, args.gpt2, args.random) < 1:
        parser.error("every count must be >= 1")
    torch.set_num_threads(1)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        setup_ = setup(work, args.train, args.gpt2, args.random)
        res = measure(work, setup_["jobs"], args.repeats)
    meta = {"date": now(), "cpus": os.cpu_count(), "software": software(), "repeats": args.repeats,
            "train": args.train, "train_words": setup_["train_words"],
            "load": f"{load} before, {' '.join(f'{x:.2f}' for x in os.getloadavg())} after"}
    print(render(res, meta, argv))
    log(f"done in {time.perf_counter() - STARTED:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

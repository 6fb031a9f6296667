#!/usr/bin/env python
"""What issue 21's additions to probing cost: the probe work of one (layer, pooling) with the linear probe, three
seeds, a control task and the online code (MDL), each relative to the thesis-era baseline (SentEval's MLP grid, one
seed, no control), and the naive way (one `fit_grid` per seed x label set) that `fit_grids`' one stack replaces.

    .venv/bin/python benchmarks/probe_controls.py                  # demo and thesis-like sizes (~2 min here)
    .venv/bin/python benchmarks/probe_controls.py --sizes demo --repeats 5

Sizes: `demo` is config/demo.yaml's probe section merged over config/config.yaml's, on features of the demo BERT's
hidden size and the demo's probing splits (`demo.probing_sentences` split as `kdprobe.demo.probing` splits them);
`thesis` is config/config.yaml's probe section (its 36-setting grid) on features of BERT-large's width, with fewer
sentences and passes than SentEval's (`THESIS_LIKE`: the cost of a pass is linear in the sentences, so the ratios
carry over better than the seconds). Features are synthetic and fixed by `--seed`: Gaussian, labels a noisy
non-linear function of them, so dev accuracy plateaus and early stopping stops training as on real features. The
control labels are a second such function with the task's label counts: learnable and independent of the task, as
`controls.control_labels` is (which needs sentences; synthetic features have none).

Each repeat times every piece of work once, in an order rotated from repeat to repeat (so background load hits
them alike); a variant's time is the sum of its pieces in that repeat, its ratio the median over repeats of its
time over that repeat's baseline. Probes train on one thread (`train_probes` does so on a CPU). Not part of the test
suite: it measures, it does not check.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable

from bench_env import STARTED  # first: Hugging Face offline, src/ on the import path

os.environ.setdefault("TQDM_DISABLE", "1")  # the probes' progress bars (kdprobe.logs.progress) off

import torch  # noqa: E402

from bench_common import (THESIS, command_line, config, fmt, load_average, log, md_row, md_table,  # noqa: E402
                          median, now, software)
from kdprobe.config import deep_merge  # noqa: E402
from kdprobe.demo.probing import SPLIT_SHARES  # noqa: E402
from kdprobe.probe.classifier import fit_grid, fit_grids  # noqa: E402
from kdprobe.probe.mdl import probe_codelength  # noqa: E402

DEMO = config("demo")
#: The thesis-like size: SentEval's probing splits are 100,000 / 10,000 / 10,000 sentences and its probes train up
#: to 204 passes in rounds of 4 with tenacity 5; one pass of the 36-setting MLP stack over 4,000 sentences of
#: width 1024 took 4.4 s on a 2-core CPU, and a repeat of every piece here costs ~130 baseline passes, so: 500
#: sentences (dev and test a quarter of that), rounds of 1 pass, tenacity 1, at most 4 passes.
THESIS_LIKE = {"train": 500, "dev": 125, "test": 125, "probe": {"epoch_size": 1, "tenacity": 1, "max_epoch": 3}}
#: Repeats per size unless --repeats says otherwise (a thesis-like repeat takes about a minute on 2 cores).
REPEATS = {"demo": 5, "thesis": 2}
N_CLASSES = 2  # most SentEval tasks (WordContent's 1000 classes make its linear probe's output layer wider)
LABEL_NOISE = 0.5  # of the label function's spread: the best dev accuracy stays well below 1
SEEDS = (42, 43, 44)  # probe.seed and probe.seeds: 3 of config/config.yaml
CLASSIFIERS = ("mlp", "linear")


@dataclass
class Size:
    name: str
    dim: int
    splits: dict[str, int]  # sentences per split: train, dev, test
    settings: dict  # the `probe` config section
    note: str


def demo_splits() -> dict[str, int]:
    """The demo's probing splits: `demo.probing_sentences` per task, classes balanced, shared as SPLIT_SHARES
    (the last split takes the rest), for a two-class task."""
    n = int(DEMO["demo"]["probing_sentences"])
    per_class = [n // N_CLASSES + (i < n % N_CLASSES) for i in range(N_CLASSES)]
    counts = {split: sum(round(q * share) for q in per_class) for split, share in SPLIT_SHARES[:-1]}
    counts[SPLIT_SHARES[-1][0]] = n - sum(counts.values())
    return {"train": counts["tr"], "dev": counts["va"], "test": counts["te"]}


def sizes() -> dict[str, Size]:
    demo = deep_merge(THESIS["probe"], DEMO["probe"])
    thesis = deep_merge(THESIS["probe"], THESIS_LIKE["probe"])
    return {
        "demo": Size("demo", int(DEMO["demo"]["bert"]["hidden"]), demo_splits(), demo,
                     "config/demo.yaml's probe section over config/config.yaml's"),
        "thesis": Size("thesis", 1024, {k: THESIS_LIKE[k] for k in ("train", "dev", "test")}, thesis,
                       "config/config.yaml's probe section; epoch_size 1, tenacity 1, max_epoch 3 (thesis: 4, 5, 200)"),
    }


# ------------------------------------------------------------------------------------------------------ data
def label_function(dim: int, g: torch.Generator) -> Callable[[torch.Tensor], torch.Tensor]:
    """A random non-linear score of features (a one-hidden-layer tanh network), about unit spread."""
    a = torch.randn(dim, 16, generator=g) / dim**0.5
    b = torch.randn(16, generator=g) / 4.0
    return lambda x: torch.tanh(2.0 * x @ a) @ b


def synthetic(size: Size, seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Features (N, dim) and labels (2, N) per split: the task's, and a control with the same label counts."""
    g = torch.Generator().manual_seed(seed)
    n = size.splits
    x = torch.randn(sum(n.values()), size.dim, generator=g)
    label_sets = []
    for _ in range(2):  # the task, then the control
        score = label_function(size.dim, g)(x)
        score = score / score.std() + LABEL_NOISE * torch.randn(len(x), generator=g)
        label_sets.append((score > score.median()).long())  # two balanced classes
    y = torch.stack(label_sets)
    out, start = {}, 0
    for split, count in n.items():
        out[split] = (x[start : start + count], y[:, start : start + count])
        start += count
    return out


# --------------------------------------------------------------------------------------------------- pieces
def pieces(data: dict, settings: dict) -> dict[str, Callable[[], dict]]:
    """Every piece of work the variants are made of, by name: each returns what it trained (stack passes)."""
    task = {split: (x, y[0]) for split, (x, y) in data.items()}
    both = {split: (x, y) for split, (x, y) in data.items()}
    chosen = {c: fit_grid(task["train"], task["dev"], task["test"], settings, N_CLASSES, classifier=c)
              for c in CLASSIFIERS}  # not timed: the first seed's choice, for MDL (as probe.run does); warms up

    def stacked(classifier: str, seeds: tuple[int, ...], parts: dict) -> Callable[[], dict]:
        def run():
            results = fit_grids(parts["train"], parts["dev"], parts["test"], settings, N_CLASSES,
                                classifier=classifier, seeds=list(seeds))
            return {"passes": max(e["epochs"] for per_set in results for r in per_set for e in r.grid),
                    "acc": [per_set[0].test_acc for per_set in results]}  # first seed: task (, control)
        return run

    def online_code(classifier: str) -> Callable[[], dict]:
        first = chosen[classifier]

        def run():
            code = probe_codelength(*task["train"], *task["dev"], N_CLASSES, first.hidden, first.dropout,
                                    first.weight_decay, settings, SEEDS[0])
            return {"passes": None, "acc": code.compression}
        return run

    def naive():
        passes = []
        for classifier in CLASSIFIERS:
            for seed in SEEDS:
                for label_set in range(2):
                    parts = [(x, y[label_set]) for x, y in (both["train"], both["dev"], both["test"])]
                    result = fit_grid(*parts, {**settings, "seed": seed}, N_CLASSES, classifier=classifier)
                    passes.append(max(e["epochs"] for e in result.grid))
        return {"passes": sum(passes), "acc": None}

    out = {}
    for c in CLASSIFIERS:
        out[f"{c} 1 seed"] = stacked(c, SEEDS[:1], task)
        out[f"{c} 3 seeds"] = stacked(c, SEEDS, task)
        out[f"{c} 3 seeds x 2 label sets"] = stacked(c, SEEDS, both)
        out[f"{c} MDL"] = online_code(c)
    out["naive: 12 fit_grid calls"] = naive
    return out


#: Each variant: its label, what it adds, and the pieces it is the sum of.
VARIANTS = (
    ("a", "baseline: MLP grid, 1 seed, no control", ("mlp 1 seed",)),
    ("b", "+ linear probe", ("mlp 1 seed", "linear 1 seed")),
    ("c", "+ 3 seeds (both probes)", ("mlp 3 seeds", "linear 3 seeds")),
    ("d", "+ control (3 seeds x 2 label sets, both probes)",
     ("mlp 3 seeds x 2 label sets", "linear 3 seeds x 2 label sets")),
    ("e", "+ MDL (d, and the online code per probe)",
     ("mlp 3 seeds x 2 label sets", "linear 3 seeds x 2 label sets", "mlp MDL", "linear MDL")),
    ("f", "naive (d)'s work: one fit_grid per probe x seed x label set", ("naive: 12 fit_grid calls",)),
)


def measure(size: Size, repeats: int, seed: int) -> dict:
    """Seconds of every piece in every repeat (rotated order) and what each piece trained."""
    log(f"{size.name}: dim {size.dim}, splits {size.splits}")
    work = pieces(synthetic(size, seed), size.settings)
    names = list(work)
    times: dict[str, list[float]] = {name: [] for name in names}
    info: dict[str, dict] = {}
    for r in range(repeats):
        shift = (r * len(names)) // repeats
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            info[name] = work[name]()
            times[name].append(time.perf_counter() - start)
            log(f"{size.name} repeat {r + 1}/{repeats}: {name} {times[name][-1]:.2f} s")
    return {"times": times, "info": info, "repeats": repeats}


# ----------------------------------------------------------------------------------------------------- page
def per_repeat(res: dict) -> dict[str, list[float]]:
    """Each variant's seconds in each repeat: the sum of its pieces' times in that repeat."""
    times = res["times"]
    repeats = len(next(iter(times.values())))
    return {key: [sum(times[p][r] for p in parts) for r in range(repeats)] for key, _, parts in VARIANTS}


def paired(xs: list[float], ys: list[float]) -> float:
    """Median over repeats of x / y."""
    return median([x / y for x, y in zip(xs, ys)])


def variant_rows(res: dict) -> list[dict]:
    """Each variant's median seconds, median per-repeat ratio to the baseline and stack passes."""
    times = per_repeat(res)
    rows = []
    for key, what, parts in VARIANTS:
        passes = [res["info"][p]["passes"] for p in parts if res["info"][p]["passes"] is not None]
        rows.append({"key": key, "what": what, "s": median(times[key]), "ratio": paired(times[key], times["a"]),
                     "passes": " + ".join(str(p) for p in passes)})
    return rows


def size_section(size: Size, res: dict, budget_per_probe: float | None) -> list[str]:
    rows = variant_rows(res)
    s = size.splits
    lines = [f"### {size.name}: features of width {size.dim}, {s['train']:,} / {s['dev']:,} / {s['test']:,} "
             f"sentences (train / dev / test), {N_CLASSES} classes, median of {res['repeats']} repeats", "",
             f"Probe settings: {size.note}; grid hidden {size.settings['grid']['hidden']} x dropout "
             f"{size.settings['grid']['dropout']} x weight decay {size.settings['grid']['weight_decay']}, lr "
             f"{size.settings['lr']}, epoch_size {size.settings['epoch_size']}, tenacity "
             f"{size.settings['tenacity']}, max_epoch {size.settings['max_epoch']}, standardise "
             f"{size.settings['standardise']}.", ""]
    lines += md_table(["variant", "work", "seconds (median)", "ratio to (a)", "passes trained (per stack)"],
                      [md_row(r["key"], r["what"], fmt(r["s"]), f"{r['ratio']:.2f}x", r["passes"] or "")
                       for r in rows])
    by_key = {r["key"]: r for r in rows}
    times = per_repeat(res)
    saving = paired(times["f"], times["d"])
    lines += ["", f"- stacking saves: the naive way (f) takes **{saving:.2f}x** the time of one stack per probe (d) "
              f"(median of per-repeat ratios)."]
    base = by_key["a"]
    lines.append(f"- baseline (a): {fmt(base['s'])} s for {base['passes']} passes of the stack, "
                 f"{fmt(base['s'] / int(base['passes']))} s per pass over {s['train']:,} sentences.")
    acc = {c: res["info"][f"{c} 3 seeds x 2 label sets"]["acc"] for c in CLASSIFIERS}
    lines.append("- test accuracy, seed 42 (task / control): " + "; ".join(
        f"{c} {a[0]:.3f} / {a[1]:.3f}" for c, a in acc.items()) + " (majority 0.5).")
    if budget_per_probe is not None:
        lines += ["", "Thesis-size estimate per variant (ratio x a thesis-size baseline that was NOT measured here: "
                  "the absolute time must come from a real run on the probe rule's GPU). With 60 (layer, task) "
                  f"probes in one job of {budget_per_probe * 60:,.0f} min, the variant fits if one baseline probe "
                  "takes at most:", ""]
        lines += [f"- ({r['key']}) {r['ratio']:.2f}x baseline: fits if the baseline is <= "
                  f"{budget_per_probe / r['ratio']:.1f} min per (layer, task)" for r in rows]
    return lines


def render(res: dict, argv: list[str]) -> str:
    budget = float(THESIS["resources"]["probe"]["runtime"]) / 60  # minutes per (layer, task): 6 layers x 10 tasks
    lines = [f"Measured by `{command_line('probe_controls.py', argv)}` on {res['date']} "
             f"(order of the pieces rotated between repeats; {res['cpus']} CPUs, load average {res['load']}; "
             f"Python {res['software']['python']}, torch {res['software']['torch']}).", ""]
    for name, size_res in res["sizes"].items():
        lines += [*size_section(sizes()[name], size_res, budget if name == "thesis" else None), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="demo,thesis", help="comma-separated: demo, thesis")
    parser.add_argument("--repeats", type=int, help="per size (default: demo 5, thesis 2)")
    parser.add_argument("--seed", type=int, default=0, help="of the synthetic features and labels")
    args = parser.parse_args(argv)
    known = sizes()
    wanted = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in known]
    if unknown or not wanted or (args.repeats is not None and args.repeats < 1):
        parser.error(f"--sizes from {', '.join(known)} (got {args.sizes!r}); --repeats >= 1")
    res = {"date": now(), "cpus": os.cpu_count(), "software": software(), "sizes": {},
           "load_before": load_average()}
    for name in wanted:
        res["sizes"][name] = measure(known[name], args.repeats or REPEATS[name], args.seed)
    res["load"] = f"{res['load_before']} before, {load_average()} after"
    print(render(res, argv))
    log(f"done in {time.perf_counter() - STARTED:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python
"""What issue 20's distillation terms cost: one BERT_S epoch (`training.fit` on `distil.DistilLoss`, built by
`distil.read_inputs`, `distil.build` and `distil.training_setup` as the distil job builds it) with the logits only
against the same epoch with each new term (hidden states, attention maps: the teacher on the fly; gold labels), and
a student initialised from the teacher's layers.

    .venv/bin/python benchmarks/distil_terms.py                   # demo and thesis-like sizes (~7 min on 2 cores)
    .venv/bin/python benchmarks/distil_terms.py --sizes demo --repeats 5

Sizes: `demo` is config/demo.yaml's BERT_S (2 layers, hidden 64, 2 heads, batch 32) and a teacher of the demo
BERT's shape (4 layers, hidden 64, 4 heads), on 900 sentences (600 labelled, 300 augmented: the demo's
`demo.sentences` and `augment.sentences`); `thesis` is config/config.yaml's BERT_S (5 layers, hidden 204, 3 heads)
and a teacher of BERT-large's shape (24 layers, hidden 1024, 16 heads), on a batch of the thesis's 128 sentences
with teacher embeddings (256 from scratch), two batches only, since a CPU runs BERT-large slowly: the ratios are what carries
over, per batch. The teachers have random weights (their cost is their shape's) and a WordPiece vocabulary of the
synthetic sentences (`kdprobe.students.testing`); the teacher-init student (e) has the teacher's widths (as
teacher init requires) and half its layers (`every: 2`), with the logits loss. Each repeat builds every variant
afresh and times one epoch of each (after one untimed epoch of (a)), in an order rotated from repeat to repeat; a variant's ratio is the median over
repeats of its time over that repeat's (a). Writes `docs/distil_terms.json` (or `--json`), from which
`benchmarks/run.py` renders the page's "Distillation terms" section (`render`). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench_env import ROOT, STARTED  # first: Hugging Face offline, src/ on the import path

os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402

from bench_common import (THESIS, command_line, config, fmt, load_average, log, md_row, md_table,  # noqa: E402
                          median, now, software)
from kdprobe.distil import build, read_inputs, training_setup  # noqa: E402
from kdprobe.settings import LossSettings, OptimizerSettings, TrainSettings  # noqa: E402
from kdprobe.students.testing import make_task, make_teacher, make_transfer, synthetic_sentences  # noqa: E402
from kdprobe.training import Resume, fit  # noqa: E402

DEMO = config("demo")
JSON = ROOT / "docs" / "distil_terms.json"
REPEATS = {"demo": 5, "thesis": 3}


@dataclass
class Size:
    name: str
    teacher: dict  # make_teacher's shape
    student: dict  # the students.bert_s section
    labelled: int
    augmented: int
    note: str


def sizes() -> dict[str, Size]:
    demo_bert = DEMO["demo"]["bert"]
    demo_student = {**THESIS["students"]["bert_s"], **DEMO["students"]["bert_s"]}
    return {
        "demo": Size("demo", {"hidden": demo_bert["hidden"], "layers": demo_bert["layers"], "heads": demo_bert["heads"],
                              "intermediate": demo_bert["intermediate"]}, demo_student, 600, 300,
                     "config/demo.yaml's BERT_S; a teacher of the demo BERT's shape"),
        "thesis": Size("thesis", {"hidden": 1024, "layers": 24, "heads": 16, "intermediate": 4096},
                       {**THESIS["students"]["bert_s"], "batch_size": 128, "max_length": 64}, 192, 64,
                       "config/config.yaml's BERT_S, batch 128, max_length 64 (the test teachers' positions; the sentences are shorter); a teacher of BERT-large's shape"),
    }


def variants(size: Size) -> dict[str, tuple[str, dict]]:
    """Each variant: what it adds, and its students.bert_s section."""
    s, t = size.student, size.teacher
    top = {s["layers"]: t["layers"]}
    soft = {"term": "soft_ce"}
    return {
        "a": ("logits only (soft_ce, the string form)", {**s, "loss": "soft_ce"}),
        "b": (f"+ hidden_mse, map {top}, projection linear",
              {**s, "loss": [soft, {"term": "hidden_mse", "map": top}]}),
        "c": (f"+ attention_mse, map {top}, heads average",
              {**s, "loss": [soft, {"term": "attention_mse", "map": top, "heads": "average"}]}),
        "d": ("+ hard_ce on gold", {**s, "loss": [soft, {"term": "hard_ce", "on": "gold"}]}),
        "e": (f"teacher-layer init (every: 2; the teacher's widths: hidden {t['hidden']}, {t['heads']} heads)",
              {**s, "loss": "soft_ce", "hidden": t["hidden"], "intermediate": t["intermediate"], "heads": t["heads"],
               "layers": t["layers"] // 2, "init": {"from": "teacher", "every": 2}}),
    }


def make_inputs(size: Size, root: Path) -> dict[str, Path]:
    """The task splits, the teacher and the transfer set (`labelled` training rows, `augmented` unlabelled ones)."""
    splits = make_task(root / "data", n_train=size.labelled, n_dev=20, n_test=20, seed=3)
    sentences, labels = splits["train"]
    teacher = make_teacher(root / "teacher", sentences, seed=1, **size.teacher)
    augmented, _ = synthetic_sentences(size.augmented, 11)
    transfer = root / "transfer.parquet"
    make_transfer(transfer, teacher, sentences + augmented, labels + [None] * len(augmented), seed=2)
    return {"data": root / "data", "teacher": teacher, "transfer": transfer}


def one_epoch(settings: dict, paths: dict[str, Path]) -> dict:
    """Build the student and the loss as `distil` does (the build timed apart), then time one epoch of `fit`."""
    section = "students.bert_s"
    loss = LossSettings.from_section(settings, section, "soft_ce")
    training = TrainSettings.from_section({**settings, "epochs": 1, "warmup_epochs": 0}, section)
    data = read_inputs([str(paths["transfer"])], paths["data"], need_ids=True,
                       need_gold=any(t.kind == "hard_ce" for t in loss.terms))
    start = time.perf_counter()
    model, ids = build("bert_s", settings, data, paths["teacher"], None, training.seed, str(paths["transfer"]))
    trained, batches, callbacks = training_setup(model, ids, data, loss, settings, paths["teacher"], training,
                                                 torch.device("cpu"))
    built = time.perf_counter() - start
    optimizer = OptimizerSettings.from_section(settings, section).build(trained)
    gc.collect()  # the previous variant's teacher (1.2 GB at thesis size) is not freed inside the timed epoch
    start = time.perf_counter()
    result = fit(trained, batches, optimizer, training, device="cpu", resume=Resume(None, settings),
                 callbacks=callbacks, desc="bench")
    return {"s": time.perf_counter() - start, "build_s": built, "steps": result.steps,
            "tokens": int(ids.train.lengths.sum()), "sentences": len(ids.train)}


def measure(size: Size, repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_inputs(size, Path(tmp))
        work = variants(size)
        names = list(work)
        one_epoch(work["a"][1], paths)  # not timed: the first epoch of a process pays one-off set-up
        runs: dict[str, list[dict]] = {name: [] for name in names}
        for r in range(repeats):
            shift = (r * len(names)) // repeats
            for name in names[shift:] + names[:shift]:
                runs[name].append(one_epoch(work[name][1], paths))
                log(f"{size.name} repeat {r + 1}/{repeats}: ({name}) {runs[name][-1]['s']:.2f} s")
    shape = ("layers", "hidden", "heads", "batch_size")
    return {"runs": runs, "what": {k: v[0] for k, v in work.items()}, "repeats": repeats, "teacher": size.teacher,
            "student": {k: size.student[k] for k in shape}, "labelled": size.labelled, "note": size.note}


# ----------------------------------------------------------------------------------------------------- page
def size_section(name: str, res: dict) -> list[str]:
    """One size's table, from its raw numbers alone."""
    runs = res["runs"]
    base = [x["s"] for x in runs["a"]]
    first = runs["a"][0]
    t, s = res["teacher"], res["student"]
    lines = [f"### {name}: BERT_S {s['layers']} layers, hidden {s['hidden']}, {s['heads']} heads, batch "
             f"{s['batch_size']}; teacher {t['layers']} layers, hidden {t['hidden']}, {t['heads']} heads; "
             f"{first['sentences']:,} sentences ({res['labelled']:,} labelled), {first['tokens']:,} tokens, "
             f"{first['steps']} steps; median of {res['repeats']} repeats", "", f"Settings: {res['note']}.", ""]
    rows = []
    for key, what in res["what"].items():
        times = [x["s"] for x in runs[key]]
        ratio = median([x / y for x, y in zip(times, base)])
        rows.append(md_row(f"({key})", what, fmt(median(times)), f"{ratio:.2f}x", f"{min(times) / min(base):.2f}x",
                           ", ".join(fmt(x) for x in times), fmt(median([x["build_s"] for x in runs[key]]))))
    return lines + md_table(["variant", "loss / student", "epoch seconds (median)", "ratio to (a)",
                             "ratio of the fastest epochs", "epoch seconds per repeat (in run order)",
                             "build seconds (student, teacher, init)"], rows) + [""]


def render(res: dict) -> list[str]:
    """The "Distillation terms" section of docs/performance.md from this benchmark's raw numbers."""
    lines = ["## Distillation terms",
             f"Measured by `{res['command']}` on {res['date']} ({res['cpus']} CPUs, load average {res['load']}; "
             f"Python {res['software']['python']}, torch {res['software']['torch']}): one BERT_S epoch "
             "(`training.fit` on `distil.DistilLoss`, built by `distil.training_setup`) per variant, side by side in "
             "one run, the order rotated between repeats; ratios are medians of per-repeat ratios to (a), and of the "
             "fastest epoch of each variant (noise on a shared machine only adds time, so the fastest is the "
             "cleanest estimate of the work).", ""]
    for name, size_res in res["sizes"].items():
        lines += size_section(name, size_res)
    lines += ["- (b) and (c) run the teacher on the fly: one forward pass of its layers up to the deepest mapped one "
              "per batch, under no_grad (no second pass, no per-example loop); their ratio is that pass's cost "
              "against the student's forward and backward. (d) adds only a cross-entropy; (e)'s epoch is that of a "
              "student of the teacher's widths (the copy is in its build seconds). On a machine shared with other jobs "
              "an epoch can run several times slower than its neighbours (the per-repeat column shows it): the "
              "fastest-epoch ratio is then the cleaner one.",
              *thesis_estimate(res)]
    return lines


def fastest_ratio(size_res: dict, key: str) -> float:
    return min(x["s"] for x in size_res["runs"][key]) / min(x["s"] for x in size_res["runs"]["a"])


def thesis_estimate(res: dict) -> list[str]:
    """The thesis-size estimate of an epoch with a teacher term: the count of operations, and this run's ratios."""
    thesis = res["sizes"].get("thesis")
    ratios = [fastest_ratio(thesis, key) for key in ("b", "c")] if thesis else []
    measured = (f" (this run's fastest thesis-like epochs: {ratios[0]:.0f}x with hidden_mse, {ratios[1]:.0f}x with "
                "attention_mse)") if ratios else ""
    span = f"{min(ratios + [42]):.0f}-{max(ratios + [42]):.0f}" if ratios else "about 42"
    return ["- Thesis-size estimate: a BERT-large forward pass costs about 2 x 302M floating-point operations per "
            "token (24 layers of 12.6M weights), a BERT_S training step about 6 x 2.42M (forward and backward of its "
            f"non-embedding weights): about 42x{measured}. So at thesis size an epoch with a hidden or attention "
            f"term mapped to the teacher's last layer costs some {span} logits-only epochs: one teacher pass over the "
            "transfer set (800,000 sentences) per epoch, what the logits stage pays once, paid every epoch (60 in "
            "the thesis). A map to a lower teacher layer runs only the layers up to it. Caching the states instead "
            "would need 419 GB per hidden layer of BERT-large (docs/configuration.md, \"Loss terms\").", ""]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="demo,thesis", help="comma-separated: demo, thesis")
    parser.add_argument("--repeats", type=int, help="per size (default: demo 5, thesis 2)")
    parser.add_argument("--json", type=Path, default=JSON, help="the raw numbers (default docs/distil_terms.json)")
    args = parser.parse_args(argv)
    known = sizes()
    wanted = [s.strip() for s in args.sizes.split(",") if s.strip()]
    if any(s not in known for s in wanted) or not wanted or (args.repeats is not None and args.repeats < 1):
        parser.error(f"--sizes from {', '.join(known)} (got {args.sizes!r}); --repeats >= 1")
    torch.manual_seed(0)
    res = {"date": now(), "cpus": os.cpu_count(), "software": software(), "sizes": {},
           "command": command_line("distil_terms.py", argv), "load_before": load_average()}
    for name in wanted:
        res["sizes"][name] = measure(known[name], args.repeats or REPEATS[name])
    res["load"] = f"{res['load_before']} before, {load_average()} after"
    args.json.write_text(json.dumps(res, indent=1))
    print("\n".join(render(res)))
    log(f"wrote {args.json}; done in {time.perf_counter() - STARTED:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

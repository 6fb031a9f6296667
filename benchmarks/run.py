#!/usr/bin/env python
"""kdprobe's heavy steps measured side by side, in one process, against what a researcher would write today
(`peers.py`: Hugging Face `generate`, a `DataCollatorWithPadding` loop, plain PyTorch / Hugging Face students) and
against the thesis' way of doing them (`anchors.py`, the floor).

    .venv/bin/python benchmarks/run.py                 # everything, including a demo run in a temp copy (~15 min+)
    .venv/bin/python benchmarks/run.py --demo-run DIR  # take the demo's wall time and rule times from a finished run
    .venv/bin/python benchmarks/run.py --quick         # smaller sizes, fewer repeats, no demo run (~5 min)
    .venv/bin/python benchmarks/run.py --from-json docs/performance.json   # the page again from a run's raw numbers

Every measurement is repeated (`--repeats`) with kdprobe's way and the anchor's way alternating, and medians are
reported; the machine's dense fp32 matmul throughput is measured in the same run (before every section) as the
yardstick for effective FLOP/s. Measures into `docs/performance.json` (or `--json`), renders `docs/performance.md`
(or `--out`) from it and prints the page. Not part of the test suite: it measures, it does not check correctness
(the tests do).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_env import ROOT  # noqa: E402  (first: Hugging Face offline, src/ on the import path)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import anchors  # noqa: E402
import distil_terms as distil_terms_bench  # noqa: E402
import bench_models as bm  # noqa: E402
import peers  # noqa: E402
from bench_common import (THESIS, command_line, config, fmt, load_average, log, md_row, md_table, median,  # noqa: E402
                          now, paired_ratio, shown, software, software_line, thesis_student, typed_student)
from kdprobe import batching as kd_batching  # noqa: E402
import kdprobe.transfer as kd_transfer  # noqa: E402
from kdprobe import runtime  # noqa: E402
import kdprobe.augment.sample as kd_sampling  # noqa: E402
from kdprobe.augment.memory import sampling_batch_size  # noqa: E402
from kdprobe.distil import DistilLoss  # noqa: E402
from kdprobe.losses import distillation_loss  # noqa: E402
from kdprobe.schedule import linear_warmup_decay  # noqa: E402
from kdprobe.students import build_student  # noqa: E402
from kdprobe.training import OptimStep  # noqa: E402

DEMO = config("demo")
SIZES = {
    # sample_rows: kdprobe's sampling batch (augment.memory.CPU_SAMPLING_BATCH); dbert_steps: d-bert steps timed;
    # generate_batches: batches of DBERT_BUFFER rows that kdprobe and `generate` sample at that batch;
    # generate_rows: whether `generate` also runs one batch of sample_rows rows
    "full": dict(sample_rows=1024, dbert_steps=6, generate_batches=3, generate_rows=True, logit_sents=1024,
                 bert_s_sents=1024, lstm_s_sents=1000, repeats=3),
    "quick": dict(sample_rows=512, dbert_steps=3, generate_batches=2, generate_rows=False, logit_sents=512,
                  bert_s_sents=512, lstm_s_sents=400, repeats=3),
}
SECTIONS = ("sampling", "logits", "students", "workflow", "memory")
MAX_LENGTH = 128
#: d-bert's buffer of partial texts: the batch at which kdprobe, `generate` and d-bert are compared
DBERT_BUFFER = 128
#: Batch sizes here, for kdprobe and the anchor alike. Length grouping pads little once there are many batches;
#: with the thesis' batch sizes (logits 512, BERT_S 256) and the thousands of sentences a benchmark can afford,
#: one batch would hold the whole length tail. 800k sentences per task make many batches at any batch size.
LOGITS_BATCH = 64
STUDENT_BATCH = {"bert_s": 32, "lstm_s": 50}
TARGETS = {
    "sampling_speedup": 8.0, "sampling_peak_fraction": 0.40, "logits_speedup": 3.0, "student_speedup": 3.0,
    "dry_run_s": 10.0, "memory_growth": 1.5, "demo_s": 480.0,
    # against what a researcher would write today (issue 13), at the same batch and threads
    "sampling_vs_generate": 2.0, "logits_vs_dynamic": 1.5, "student_vs_plain": 1.5,
}
PERCENTILES = (5, 25, 50, 75, 95, 99, 100)


def percentiles(lengths: np.ndarray) -> dict:
    return {f"p{q}": float(np.percentile(lengths, q)) for q in PERCENTILES}


def speedup(ours_s: list[float], theirs_s: list[float]) -> float:
    """Median over the repeats of their time over ours, each pair measured side by side."""
    return median([theirs / ours for ours, theirs in zip(ours_s, theirs_s)])


# ------------------------------------------------------------------------------------------------ yardstick
def matmul_flops(n: int = 2048, repeats: int = 5) -> float:
    """Dense fp32 matmul FLOP/s of this machine on all torch threads (median of `repeats`): the better of one
    n x n matmul on torch's threads and one single-threaded matmul per thread side by side. On an idle machine the
    two agree; on a shared one the second is not stalled by descheduled threads, so the yardstick stays high."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    one = 2 * n**3 / median(times)
    lanes = runtime.Lanes(torch.get_num_threads())
    if lanes.n == 1:
        return one
    pairs = [(torch.randn(n, n), torch.randn(n, n)) for _ in range(lanes.n)]
    lanes.map(lambda i: pairs[i][0] @ pairs[i][1], range(lanes.n))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        lanes.map(lambda i: pairs[i][0] @ pairs[i][1], range(lanes.n))
        times.append(time.perf_counter() - t)
    lanes.close()
    return max(one, lanes.n * 2 * n**3 / median(times))


class Peak:
    """Matmul FLOP/s measured before every section; the median over the run is the yardstick."""

    def __init__(self):
        self.samples: list[float] = []

    def measure(self) -> float:
        self.samples.append(matmul_flops())
        return self.samples[-1]

    @property
    def value(self) -> float:
        return median(self.samples)


# ------------------------------------------------------------------------------------------- models, data
@dataclass
class Inputs:
    """The run's models (GPT-2 in memory; both saved under `work`), fast tokenizers and sentences."""
    gpt2: torch.nn.Module
    gpt2_tok: Any
    bert_tok: Any
    bert_dir: Path
    sentences: list[str]
    work: Path


def build_inputs(tmp: Path, sizes: dict, res: dict) -> Inputs:
    """The benchmark's models and sentences (`bench_models`), saved under `tmp/work`; their sizes go into `res`."""
    from transformers import AutoTokenizer

    log("building models and sentences")
    corpus = bm.demo_corpus(tmp / "demo")
    bert_tok, gpt2_tok = bm.demo_tokenizers(corpus)
    gpt2 = bm.length_shaped_gpt2(gpt2_tok)
    bert = bm.random_bert(bert_tok)
    work = tmp / "work"
    gpt2.save_pretrained(work / "gpt2")
    gpt2_tok.save_pretrained(work / "gpt2")
    bert.save_pretrained(work / "bert")
    bert_tok.save_pretrained(work / "bert")
    res["vocab"] = {"gpt2": len(gpt2_tok), "bert": len(bert_tok)}
    res["gpt2_params"] = bm.param_count(gpt2.transformer, skip=("wte", "wpe")) + gpt2.lm_head.weight.numel()
    sentences = bm.realistic_sentences(corpus, max(sizes["logit_sents"], sizes["bert_s_sents"], sizes["lstm_s_sents"]),
                                       seed=1)
    (work / "sentences.json").write_text(json.dumps(bm.realistic_sentences(corpus, 600, seed=2)))
    return Inputs(gpt2, AutoTokenizer.from_pretrained(work / "gpt2"), AutoTokenizer.from_pretrained(work / "bert"),
                  work / "bert", sentences, work)


# ------------------------------------------------------------------------------------------------- sampling
def sample_run(gpt2, seqs: list[list[int]], elapsed: float, peak: float) -> dict:
    """Rates of one sampling run: sentences, sampled tokens (one per row per step, the end token included) and their
    effective FLOPs (`bench_models.sampled_flops`)."""
    return {"s": elapsed, "sentences": len(seqs), "tokens": sum(min(len(s) + 1, MAX_LENGTH) for s in seqs),
            "flops": bm.sampled_flops(gpt2, seqs, MAX_LENGTH), "peak": peak,
            "mean_length": float(np.mean([len(x) for x in seqs]))}


def rates(runs: list[dict]) -> dict:
    """Medians over the repeats of one way of sampling, with its share of the matmul peak measured before each."""
    return {
        "sentences_per_s": median([x["sentences"] / x["s"] for x in runs]),
        "tokens_per_s": median([x["tokens"] / x["s"] for x in runs]),
        "flops_per_s": median([x["flops"] / x["s"] for x in runs]),
        "peak_fraction": median([x["flops"] / x["s"] / x["peak"] for x in runs]),
        "mean_length": median([x.get("mean_length", float("nan")) for x in runs]),
        "row_steps_per_token": median([x.get("row_steps", x["tokens"]) / x["tokens"] for x in runs]),
    }


def ratio(runs: dict, a: str, b: str) -> float:
    """Median over the repeats of a's tokens/s over b's, each pair measured side by side."""
    return paired_ratio(runs[a], runs[b], "tokens")


def dbert_run(gpt2, tok, samples: list[str], steps: int, repeat: int, peak: float) -> dict:
    """d-bert's sampler at its steady state (a buffer of `DBERT_BUFFER` texts drawn from `samples`), `steps` steps
    timed one by one after one warm-up step."""
    sampler = anchors.DbertSampler(gpt2, tok, max_len=MAX_LENGTH, max_size=DBERT_BUFFER, seed=200 + repeat)
    sampler.start_stationary(samples, np.random.default_rng(300 + repeat))
    sampler.step()  # warm-up
    widths, finished, flops, tokens, elapsed = [], 0, 0.0, 0, 0.0
    for _ in range(steps):
        contexts = [len(sampler.tokenizer.encode(x, add_special_tokens=False)) + 1 for x in sampler.buffer]
        contexts += [1] * (sampler.max_size - len(contexts))  # rows the step refills start at the start token
        t = time.perf_counter()
        done, width = sampler.step()  # only the step itself is timed
        elapsed += time.perf_counter() - t
        flops += sum(bm.gpt2_flops_per_token(gpt2, c) for c in contexts)
        tokens += sampler.max_size
        finished += len(done)
        widths.append(width)
    return {"s": elapsed, "sentences": finished, "tokens": tokens, "flops": flops, "peak": peak,
            "width": median(widths)}


def bench_sampling(gpt2, tok, sizes, peak: Peak) -> dict:
    """kdprobe at its CPU batch and at d-bert's, Hugging Face `generate` at both, d-bert's sampler at its own."""
    eos = tok.eos_token_id
    rows, small, repeats = sizes["sample_rows"], DBERT_BUFFER, sizes["repeats"]
    settings = {"max_length": MAX_LENGTH, "temperature": 1.0, "top_k": 0}
    # as `sample_shard` runs a shard: one lane per thread, each lane a batch of `batch` rows at a time with a decoder
    # it keeps (one set of lanes per batch size, as one job has); the first call (not timed) makes the decoders
    lanes = {batch: kd_sampling.Lanes(torch.get_num_threads()) for batch in (rows, small)}
    n_lanes = lanes[rows].n
    n_small = small * sizes["generate_batches"]

    def kdprobe(batch, n, seed):
        return kd_sampling.sample_rows(gpt2, n, seed=seed, chunk=0, bos=eos, eos=eos, max_length=MAX_LENGTH,
                                       batch_size=batch, device=torch.device("cpu"), settings=settings,
                                       lanes=lanes[batch], temperature=settings["temperature"],
                                       top_k=settings["top_k"])

    def generate(batch, n, seed, max_new_tokens=MAX_LENGTH):
        return peers.hf_generate(gpt2, n, batch, bos=eos, eos=eos, max_new_tokens=max_new_tokens,
                                 temperature=settings["temperature"], top_k=settings["top_k"], device="cpu", seed=seed)

    def timed(name, fn, batch, *args):
        t = time.perf_counter()
        seqs = fn(batch, *args)
        runs[name].append(sample_run(gpt2, seqs, time.perf_counter() - t, peak.samples[-1]))
        x = runs[name][-1]
        if name.startswith("generate"):  # row-steps run: a batch runs as long as its longest row
            parts = [seqs[i : i + batch] for i in range(0, len(seqs), batch)]
            x["row_steps"] = sum(len(p) * max(min(len(q) + 1, MAX_LENGTH) for q in p) for p in parts)
        log(f"sampling {name} {len(runs[name])}/{repeats}: {x['sentences'] / x['s']:.1f} sent/s, "
            f"{x['tokens'] / x['s']:.0f} tok/s, {x['flops'] / x['s'] / 1e9:.0f} GFLOP/s "
            f"(matmul {peak.samples[-1] / 1e9:.0f}), mean {x['mean_length']:.1f} tokens")
        return seqs

    kdprobe(rows, rows * n_lanes, 99)
    kdprobe(small, small * n_lanes, 99)
    generate(small, 4, 99, max_new_tokens=4)
    runs = {"kdprobe": [], "dbert": [], "kdprobe_small": [], "generate_small": [], "generate": []}
    samples = []
    for r in range(repeats):
        peak.measure()
        samples += timed("kdprobe", kdprobe, rows, rows * n_lanes, 100 + r)
        x = dbert_run(gpt2, tok, samples, sizes["dbert_steps"], r, peak.samples[-1])
        runs["dbert"].append(x)
        log(f"sampling d-bert {r + 1}/{repeats}: {x['sentences'] / x['s']:.2f} sent/s, {x['tokens'] / x['s']:.0f} "
            f"tok/s, width {x['width']:.0f}")
        timed("kdprobe_small", kdprobe, small, n_small, 400 + r)
        timed("generate_small", generate, small, n_small, 400 + r)
        if sizes["generate_rows"]:
            timed("generate", generate, rows, rows, 500 + r)  # one batch: a rate, like the others
    for lane in lanes.values():
        lane.close()
    lengths = np.array([len(s) for s in samples])
    out = {name: rates(x) for name, x in runs.items() if x}
    out |= {"rows": rows, "small": small, "lanes": n_lanes, "n_small": n_small, "threads": torch.get_num_threads(),
            # side by side: each run against the one of the other way in the same repeat
            "speedup": ratio(runs, "kdprobe", "dbert"),
            "vs_generate_small": ratio(runs, "kdprobe_small", "generate_small"),
            "cache_effect": ratio(runs, "generate_small", "dbert"),
            "batch_effect": ratio(runs, "kdprobe", "kdprobe_small"),
            "peak_fraction": out["kdprobe"]["peak_fraction"],
            "runs": runs, "dbert_width": median([x["width"] for x in runs["dbert"]]),
            "lengths": percentiles(lengths), "mean_length": float(lengths.mean())}
    if runs["generate"]:
        out["vs_generate"] = ratio(runs, "kdprobe", "generate")
        out["generate_batch_effect"] = ratio(runs, "generate", "generate_small")
    return out


# --------------------------------------------------------------------------------------------------- logits
def padded_positions(lengths: np.ndarray, batches: list[np.ndarray]) -> int:
    """Positions the model runs when each batch is padded to its longest sentence."""
    return int(sum(len(b) * lengths[b].max() for b in batches if len(b)))


def bench_logits(bert_dir: Path, bert_tok, sentences: list[str], sizes, peak: Peak, tmp: Path) -> dict:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    batch = LOGITS_BATCH
    settings = {"batch_size": batch, "max_length": MAX_LENGTH}
    model = AutoModelForSequenceClassification.from_pretrained(bert_dir).eval()
    n = len(sentences)
    kd, an, peer = [], [], []
    for r in range(sizes["repeats"]):
        peak.measure()
        t = time.perf_counter()
        kd_transfer.write_transfer(bert_dir, sentences, None, settings, tmp / f"logits{r}.parquet", "cpu")
        kd.append(time.perf_counter() - t)
        # today's way, loading tokenizer and model as write_transfer does
        t = time.perf_counter()
        peers.dynamic_padding_logits(AutoModelForSequenceClassification.from_pretrained(bert_dir),
                                     AutoTokenizer.from_pretrained(bert_dir), sentences, batch, MAX_LENGTH, "cpu")
        peer.append(time.perf_counter() - t)
        t = time.perf_counter()
        anchors.padded_logits(model, bert_tok, sentences, batch, MAX_LENGTH)
        an.append(time.perf_counter() - t)
        log(f"logits {r + 1}: kdprobe {n / kd[-1]:.1f} sent/s, dynamic padding {n / peer[-1]:.1f} sent/s, "
            f"padded to 128 {n / an[-1]:.1f} sent/s")
    lengths = np.array([len(x) for x in bert_tok(sentences, truncation=True, max_length=MAX_LENGTH)["input_ids"]])
    # positions each way runs: kdprobe sorts by length within each streamed chunk, the peer pads input-order batches
    sorted_batches = []
    for start in range(0, n, kd_transfer.STREAM_BATCHES * batch):
        part = np.arange(start, min(n, start + kd_transfer.STREAM_BATCHES * batch))
        part = part[np.argsort(-lengths[part], kind="stable")]
        sorted_batches += [part[i : i + batch] for i in range(0, len(part), batch)]
    plain = [np.arange(i, min(n, i + batch)) for i in range(0, n, batch)]
    return {"kdprobe": n / median(kd), "anchor": n / median(an), "peer": n / median(peer), "batch": batch, "n": n,
            "speedup": speedup(kd, an), "vs_peer": speedup(kd, peer),
            "runs": {"kdprobe_s": kd, "anchor_s": an, "peer_s": peer},
            "positions": {"tokens": int(lengths.sum()), "kdprobe": padded_positions(lengths, sorted_batches),
                          "peer": padded_positions(lengths, plain), "anchor": n * MAX_LENGTH},
            "lengths": percentiles(lengths), "mean_length": float(np.mean(lengths))}


# ------------------------------------------------------------------------------------------------- students
def bench_student(kind: str, bert_dir: Path, sentences: list[str], sizes, peak: Peak, threads: int) -> dict:
    settings = thesis_student(kind)
    loss_settings, optimizer_settings, training = typed_student(kind, settings)
    n_classes = 2
    teacher_logits = torch.randn(len(sentences), n_classes, generator=torch.Generator().manual_seed(5))
    vocab_info = {"teacher_dir": str(bert_dir), "sentences": sentences}
    batch_size = STUDENT_BATCH[kind]

    def fresh():
        torch.manual_seed(0)
        model = build_student(kind, settings, n_classes, vocab_info)
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        return model, params, optimizer_settings.build(model)

    def loss_fn(student_logits, target):
        return distillation_loss(loss_settings.name, student_logits, target, loss_settings.temperature,
                                 loss_settings.mse_reduction)

    kd, an, peer = [], [], []
    for r in range(sizes["repeats"]):
        peak.measure()
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        # kdprobe: tokenised once (outside the epoch, as distil does before its first epoch), length-grouped batches
        model, params, optimizer = fresh()
        if model.reads_teacher_ids:
            ids = kd_batching.PackedIds([model.fit_teacher_ids(np.asarray(x)) for x in
                                       model.inputs.tokenizer(sentences, truncation=True,
                                                              max_length=MAX_LENGTH)["input_ids"]])
        else:
            ids = kd_batching.PackedIds([np.asarray(x, np.int32) for x in model.tokenize(sentences)])
        batches = kd_batching.epoch_batches(ids.lengths, batch_size, seed=r, epoch=0)
        flops = bm.student_epoch_flops(model, ids.lengths)
        distinct = sum(len(np.unique(np.concatenate(ids.batch(idx)))) for idx in batches) / ids.lengths.sum()
        scheduler = linear_warmup_decay(optimizer, 0, len(batches))
        step = OptimStep(optimizer, scheduler, params, float(settings["clip_norm"]))
        loss = DistilLoss(model, ids, teacher_logits, loss_settings, torch.device("cpu"), training.numerics)
        t = time.perf_counter()
        for idx in batches:
            step(loss, idx)
        kd.append(time.perf_counter() - t)
        # today's way: the same architecture as a plain PyTorch / Hugging Face model, tokenised once beforehand (the
        # same ids), a shuffled DataLoader padding each batch to its longest; same loss, optimiser, batch size
        if kind == "lstm_s":
            peer_model = peers.lstm_model(model.inputs.vocab_size, n_classes, settings, model.pad_id, "cpu")
            peer_ids = [ids[i] for i in range(len(ids))]
        else:
            peer_model = peers.bert_model(model.inputs.vocab_size, n_classes, settings, model.pad_id, "cpu")
            peer_ids = peers.tokenize(model.inputs.tokenizer, sentences, MAX_LENGTH)
        peer_optimizer = optimizer_settings.build(peer_model)
        t = time.perf_counter()
        if kind == "lstm_s":
            peers.lstm_epoch(peer_model, peer_optimizer, peer_ids, teacher_logits, batch_size, loss_fn,
                             clip_norm=float(settings["clip_norm"]), seed=r, device="cpu", pad_id=model.pad_id)
        else:
            peers.bert_epoch(peer_model, peer_optimizer, model.inputs.tokenizer, peer_ids, teacher_logits, batch_size,
                             loss_fn, clip_norm=float(settings["clip_norm"]), seed=r, device="cpu")
        peer.append(time.perf_counter() - t)
        # the thesis: tokenise and pad to 128 on the fly, every batch of every epoch
        model, params, optimizer = fresh()
        t = time.perf_counter()
        anchors.on_the_fly_epoch(model, optimizer, sentences, teacher_logits, batch_size, settings["loss"],
                                 float(settings["temperature"]), float(settings["clip_norm"]), seed=r,
                                 max_length=MAX_LENGTH)
        an.append(time.perf_counter() - t)
        torch.set_num_threads(before)
        log(f"{kind} {r + 1}: kdprobe {len(sentences) / kd[-1]:.1f} sent/s, plain loop {len(sentences) / peer[-1]:.1f} "
            f"sent/s, on the fly {len(sentences) / an[-1]:.1f} sent/s")
    shuffled = np.random.default_rng(0).permutation(len(ids))
    plain = [shuffled[i : i + batch_size] for i in range(0, len(ids), batch_size)]
    return {"kdprobe": len(sentences) / median(kd), "anchor": len(sentences) / median(an),
            "peer": len(sentences) / median(peer), "n": len(sentences),
            "flops_per_s": {"kdprobe": flops / median(kd), "anchor": flops / median(an), "peer": flops / median(peer)},
            "batch": batch_size, "threads": threads, "speedup": speedup(kd, an), "vs_peer": speedup(kd, peer),
            "positions": {"tokens": int(ids.lengths.sum()), "kdprobe": padded_positions(ids.lengths, batches),
                          "peer": padded_positions(ids.lengths, plain)},
            "vocab": model.inputs.vocab_size, "mean_tokens": float(ids.lengths.mean()),
            "distinct_share": float(distinct),
            "runs": {"kdprobe_s": kd, "anchor_s": an, "peer_s": peer}}


def bench_students(inputs: Inputs, sizes, peak: Peak, threads: int) -> dict:
    """Both students on the demo-grammar sentences, and LSTM_S on real English."""
    out = {}
    for kind, key in (("bert_s", "bert_s_sents"), ("lstm_s", "lstm_s_sents")):
        log(kind)
        out[kind] = bench_student(kind, inputs.bert_dir, inputs.sentences[: sizes[key]], sizes, peak, threads)
    log("lstm_s on real English")
    english = bm.english_sentences(sizes["lstm_s_sents"], seed=1)
    out["lstm_s_english"] = bench_student("lstm_s", inputs.bert_dir, english, sizes, peak, threads)
    return out


# ------------------------------------------------------------------------------------------------- workflow
def copy_project(dest: Path) -> Path:
    """The project's tracked and untracked-but-not-ignored files (no results, no .venv) in `dest`."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split("\n")
    for rel in filter(None, files):
        src = ROOT / rel
        if rel.startswith(("benchmarks/", "docs/")) or not src.is_file():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)
    return dest


def snakemake_bin() -> str:
    exe = Path(sys.executable).with_name("snakemake")
    return str(exe) if exe.exists() else "snakemake"


def slurm_status() -> dict:
    """Whether SLURM client tools are here and whether their controller answers (Snakemake's SLURM plugin asks
    `scontrol show config` at every start; with the tools installed and no controller that waits ~9 s)."""
    if shutil.which("scontrol") is None:
        return {"client_tools": False}
    t = time.perf_counter()
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
        answer = (ping.stdout + ping.stderr).strip()
    except subprocess.TimeoutExpired:
        answer = "timeout"
    ping_s = time.perf_counter() - t
    t = time.perf_counter()
    try:
        subprocess.run(["scontrol", "show", "config"], capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        pass
    return {"client_tools": True, "controller": answer, "up": "UP" in answer, "ping_s": ping_s,
            "show_config_s": time.perf_counter() - t}


def bench_dry_run(tmp: Path, repeats: int) -> dict:
    project = copy_project(tmp / "dry")
    times, cpu, jobs = [], [], None
    for _ in range(repeats):
        t = time.perf_counter()
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run([snakemake_bin(), "-n", "--quiet", "rules"], cwd=project, capture_output=True,
                              text=True)
        times.append(time.perf_counter() - t)
        now_used = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(now_used.ru_utime + now_used.ru_stime - used.ru_utime - used.ru_stime)
        if proc.returncode != 0:
            raise RuntimeError(f"dry run failed:\n{proc.stdout}\n{proc.stderr}")
        total = re.search(r"^total\s+(\d+)", proc.stdout + proc.stderr, re.M)
        jobs = int(total.group(1)) if total else jobs
    log(f"dry run: {median(times):.2f} s, {jobs} jobs")
    return {"s": median(times), "all_s": times, "cpu_s": median(cpu), "jobs": jobs}


def run_demo(tmp: Path, cores: int) -> Path:
    project = copy_project(tmp / "demo")
    log(f"demo run in {project} (--cores {cores}) ...")
    t = time.perf_counter()
    proc = subprocess.run([snakemake_bin(), "--profile", "profiles/local", "--configfile", "config/demo.yaml",
                           "--cores", str(cores)], cwd=project, capture_output=True, text=True)
    (project / "benchmark-demo.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"demo run failed; see {project / 'benchmark-demo.log'}")
    (project / "benchmark-demo-wall.txt").write_text(f"{time.perf_counter() - t}\n")
    return project


_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
#: where a run's Snakemake `benchmark:` files are, one `<rule>/...tsv` each
RULE_BENCHMARKS = Path("logs") / "benchmarks"


def job_times(lines: list[str]) -> tuple[dt.datetime, dt.datetime, list[tuple[dt.datetime, dt.datetime]]]:
    """From a Snakemake log: its start, its last time stamp, and the (start, end) of every job that finished."""
    start = re.search(r"Date: (\S+ \S+)", "\n".join(lines[:20]))
    t0 = dt.datetime.strptime(start.group(1), "%Y-%m-%d %H:%M:%S") if start else None
    stamp, begun, ended, last = None, {}, {}, None
    for line in lines:
        m = _STAMP.match(line.strip())
        if m:
            stamp = last = dt.datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
            continue
        m = re.match(r"\s*jobid: (\d+)", line)
        if m and stamp is not None and m.group(1) not in begun:
            begun[m.group(1)] = stamp
        m = re.match(r"Finished jobid: (\d+)|Finished job (\d+)\.", line)
        if m:
            ended[m.group(1) or m.group(2)] = stamp
    return t0 or min(begun.values()), last, sorted((begun[j], ended[j]) for j in ended if j in begun)


def busy_seconds(intervals: list[tuple[dt.datetime, dt.datetime]]) -> float:
    """Seconds during which at least one of the (sorted) intervals was running."""
    busy, cur_s, cur_e = 0.0, None, None
    for s, e in intervals:
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                busy += (cur_e - cur_s).total_seconds()
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        busy += (cur_e - cur_s).total_seconds()
    return busy


def rule_seconds(run_dir: Path) -> dict[str, float]:
    """Per rule, the sum of its jobs' own times (column `s` of its benchmark files)."""
    rule_s = {}
    for tsv in (run_dir / RULE_BENCHMARKS).rglob("*.tsv"):
        rows = tsv.read_text().splitlines()
        if len(rows) >= 2:
            rule = tsv.relative_to(run_dir / RULE_BENCHMARKS).parts[0]
            rule_s[rule] = rule_s.get(rule, 0.0) + float(rows[1].split("\t")[0])
    return rule_s


def demo_overhead(run_dir: Path) -> dict:
    """Wall time of a demo run (its newest Snakemake log of a run that finished jobs: dry runs are skipped), the sum
    of its rules' own times (`logs/benchmarks/**.tsv`, column `s`), and the time no job was running (from the log's
    job start and finish stamps)."""
    logs = [path for path in sorted((run_dir / ".snakemake" / "log").glob("*.snakemake.log"))
            if "steps (100%) done" in path.read_text()]
    if not logs:
        raise RuntimeError(f"no Snakemake log of a completed run in {run_dir}/.snakemake/log")
    t0, last, intervals = job_times(logs[-1].read_text().splitlines())
    wall_file, command_file = run_dir / "benchmark-demo-wall.txt", run_dir / "benchmark-demo-command.txt"
    wall = float(wall_file.read_text()) if wall_file.exists() else (last - t0).total_seconds()
    command = command_file.read_text().strip() if command_file.exists() else None
    rule_s = rule_seconds(run_dir)
    job_s = sum((e - s).total_seconds() for s, e in intervals)
    return {"dir": shown(run_dir), "command": command, "wall_s": wall, "jobs": len(intervals),
            "rule_s": sum(rule_s.values()),
            "rule_s_by_rule": rule_s, "job_s": job_s, "idle_s": max(0.0, wall - busy_seconds(intervals)),
            "concurrency": job_s / wall if wall else float("nan")}


# --------------------------------------------------------------------------------------------------- memory
def child_main(args) -> None:
    """Run one stage at a given size in this (fresh) process and print its peak RSS."""
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    n = args.child_n
    t = time.perf_counter()
    if args.child == "sample":
        aug = DEMO["augment"]
        settings = {"max_length": aug["max_length"], "batch_size": aug["batch_size"],
                    "chunk_size": aug["chunk_size"], "temperature": 1.0, "top_k": 0}
        kd_sampling.sample_shard(work / "gpt2", n, 1, settings, work / f"shard{n}.parquet", work / f"chunks{n}", "cpu")
    else:
        sentences = json.loads((work / "sentences.json").read_text())
        reps = -(-n // len(sentences))
        kd_transfer.write_transfer(work / "bert", (sentences * reps)[:n], None, dict(DEMO["logits"]),
                                 work / f"logits{n}.parquet", "cpu")
    # VmHWM: this process image's peak RSS (ru_maxrss would include the parent's, inherited through fork/exec)
    status = Path("/proc/self/status").read_text()
    hwm = re.search(r"VmHWM:\s+(\d+) kB", status)
    peak_kib = int(hwm.group(1)) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"stage": args.child, "n": n, "peak_rss_mb": peak_kib / 1024, "s": time.perf_counter() - t}))


def bench_memory(work: Path, threads: int = 1) -> dict:
    """Peak RSS of `sample_shard` and `write_transfer` (demo settings, the benchmark's models) at the demo's size and
    10x it, each in a fresh process (one thread: memory does not depend on it, and the demo's rules use one)."""
    aug = DEMO["augment"]
    demo_shard = aug["sentences"] // aug["shards"]
    demo_logits = 600  # the demo's largest transfer part (a task's training set) is about this size
    out = {}
    for stage, n in (("sample", demo_shard), ("logits", demo_logits)):
        for scale in (1, 10):
            proc = subprocess.run([sys.executable, __file__, "--child", stage, "--child-n", str(n * scale),
                                   "--work", str(work), "--threads", str(threads)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"memory child {stage} x{scale} failed:\n{proc.stderr[-3000:]}")
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            out[f"{stage}_x{scale}"] = result
            log(f"memory {stage} x{scale} ({n * scale} sentences): peak RSS {result['peak_rss_mb']:.0f} MB")
    return out


# ---------------------------------------------------------------------------------------------- GPU figures
GPU = {"H100 SXM": {"bw": 3.35e12, "bf16": 989e12}, "H200": {"bw": 4.8e12, "bf16": 989e12}}
THESIS_MODELS = {
    # layers, hidden, intermediate, vocab
    "BERT-large": (24, 1024, 4096, 30522),
    "GPT-2 medium": (24, 1024, 4096, 50257),
}
#: assumptions of the estimates (stated in the document)
MEAN_TOKENS = 20  # tokens per sentence on average (CoLA and Sara are shorter, SST-2 about that)
STEP_OVERHEAD_S = {"decode": 2e-3, "bert_s": 6e-3, "lstm_s": 4e-3}  # launch/Python floor per step, no CUDA graphs
UTILISATION = {"decode": 0.5, "logits": 0.4, "bert_s": 0.15, "lstm_s": 0.1}  # of dense bf16 peak when compute-bound


def transformer_weights(layers: int, hidden: int, inter: int) -> int:
    return layers * (4 * hidden * hidden + 2 * hidden * inter + 9 * hidden + inter)


def gpu_estimates() -> dict:
    """Back-of-envelope figures for the thesis sizes on one H100/H200-class GPU (see the document's GPU section)."""
    aug = THESIS["augment"]
    sentences = aug["sentences"]
    gpt_w = transformer_weights(*THESIS_MODELS["GPT-2 medium"][:3]) + 1024 * THESIS_MODELS["GPT-2 medium"][3]
    bert_w = transformer_weights(*THESIS_MODELS["BERT-large"][:3])
    s, lstm = THESIS["students"]["bert_s"], THESIS["students"]["lstm_s"]
    bert_s_w = transformer_weights(s["layers"], s["hidden"], s["intermediate"])
    lstm_w = 2 * 4 * lstm["hidden"] * (2 * 300 + lstm["hidden"] + 2)  # BiLSTM on 2 x 300-d channels
    attn = lambda layers, hidden, c: 4 * c * hidden * layers  # noqa: E731
    wordpieces = MEAN_TOKENS + 2
    rows = {
        "sampling: GPT-2 medium decode (fwd)": {
            "weights": gpt_w, "flops": 2 * gpt_w + attn(24, 1024, MEAN_TOKENS / 2),
            "tokens": sentences * (MEAN_TOKENS + 1), "kind": "decode"},
        "teacher logits: BERT-large (fwd)": {
            "weights": bert_w, "flops": 2 * bert_w + attn(24, 1024, wordpieces),
            "tokens": sentences * wordpieces, "kind": "logits"},
        f"BERT_S, {s['epochs']} epochs (fwd+bwd)": {
            "weights": bert_s_w, "flops": 6 * bert_s_w + 3 * attn(s["layers"], s["hidden"], wordpieces),
            "tokens": sentences * wordpieces * s["epochs"], "kind": "bert_s",
            "steps": s["epochs"] * sentences / s["batch_size"]},
        f"LSTM_S, {lstm['epochs']} epochs (fwd+bwd)": {
            "weights": lstm_w, "flops": 6 * lstm_w, "tokens": sentences * MEAN_TOKENS * lstm["epochs"],
            "kind": "lstm_s", "steps": lstm["epochs"] * sentences / lstm["batch_size"]},
    }
    auto = sampling_batch_size(int(0.9 * 80e9), layers=24, hidden=1024, vocab=50257,
                                       max_length=aug["max_length"])
    rows["sampling: GPT-2 medium decode (fwd)"]["steps"] = -(-sentences // auto) * aug["max_length"]
    peak = GPU["H100 SXM"]["bf16"]
    for row in rows.values():
        row["compute_s"] = row["flops"] * row["tokens"] / (UTILISATION[row["kind"]] * peak)
        row["overhead_s"] = row.get("steps", 0) * STEP_OVERHEAD_S.get(row["kind"], 0)
        row["estimate_s"] = max(row["compute_s"], row["overhead_s"])
    # decoding: each step reads all bf16 weights once and every row's KV cache (at the mean context)
    kv_per_pos = 2 * 24 * 1024 * 2
    decode = {}
    sample_tokens = rows["sampling: GPT-2 medium decode (fwd)"]["tokens"]
    for gpu, spec in GPU.items():
        for batch in (256, auto):
            t_bw = (gpt_w * 2 + batch * MEAN_TOKENS / 2 * kv_per_pos) / spec["bw"]
            t_fl = batch * rows["sampling: GPT-2 medium decode (fwd)"]["flops"] / (UTILISATION["decode"] * spec["bf16"])
            step = max(t_bw, t_fl, STEP_OVERHEAD_S["decode"])
            decode[f"{gpu}, batch {batch}"] = {"bw_step_ms": t_bw * 1e3, "flop_step_ms": t_fl * 1e3,
                                                "overhead_ms": STEP_OVERHEAD_S["decode"] * 1e3,
                                                "tokens_per_s": batch / step,
                                                "task_min": sample_tokens / (batch / step) / 60}
    return {"rows": rows, "decode": decode, "auto_batch": auto}


# ----------------------------------------------------------------------------------------------------- page
def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def render(res: dict, quick: bool, cores: int) -> str:
    """The page of a run's raw numbers (`res`, as its JSON holds them); `quick` and `cores` as that run was given."""
    return "\n".join([*page_head(res, quick), *machine_section(res), *models_section(res), *results_section(res),
                      *sampling_section(res), *logits_section(res), *students_section(res),
                      *workflow_section(res, cores), *memory_section(res), *targets_section(res), *gpu_section(res),
                      *distil_terms_section(), *reproduce_section(res)])


def distil_terms_section() -> list[str]:
    """`benchmarks/distil_terms.py`'s section (its own run, its own raw numbers: `docs/distil_terms.json`), when that
    file is there: this page is rewritten whole, so the section is rendered from that file each time."""
    path = distil_terms_bench.JSON
    return distil_terms_bench.render(json.loads(path.read_text())) if path.exists() else []


def page_head(res: dict, quick: bool) -> list[str]:
    return ["# Performance", "",
            f"Measured by `benchmarks/run.py` on {res['date']} ({'quick sizes' if quick else 'full sizes'}, "
            f"median of {res['sizes']['repeats']} repeats, kdprobe, the peer and the floor alternating).", ""]


def machine_section(res: dict) -> list[str]:
    m, peak = res["machine"], res["peak_flops"]
    return [
        "## Machine",
        f"- CPU: {m['cpu']}, {m['cores']} cores ({', '.join(m['isa'])}), {m['mem_gb']:.0f} GB; torch threads "
        f"{m['threads']}; Linux {m['kernel']}"
        + (f". Fewer threads than cores (`--threads {m['threads']}`): on a machine shared with other work, "
           "torch's multi-threaded ops wait for descheduled threads at every op; every side of every comparison "
           "ran on the same threads." if m["threads"] < m["cores"] else ""),
        software_line(m),
        "- dense fp32 matmul (2048^2, torch.matmul; "
        + (f"the better of one product on {m['threads']} threads and {m['threads']} single-threaded products side "
           "by side" if m["threads"] > 1 else "one thread") + "), measured before every section: median "
        f"**{fmt(peak / 1e9)} GFLOP/s** (range {fmt(min(res['peak_samples']) / 1e9)}-"
        f"{fmt(max(res['peak_samples']) / 1e9)})",
        f"- load average before / after: {res['load_before']} / {res['load_after']} (other processes share this "
        "machine; ratios measured side by side are what count)",
        "",
    ]


def length_mix(lengths: dict) -> str:
    return "/".join(fmt(lengths[k]) for k in ("p5", "p50", "p95", "p99", "p100"))


def models_section(res: dict) -> list[str]:
    s, lg, st = res["sampling"], res["logits"], res["students"]
    students = THESIS["students"]
    return [
        "## Models and data",
        f"- GPT-2 and BERT of {bm.LAYERS} layers, hidden {bm.HIDDEN}, {bm.HEADS} heads, intermediate "
        f"{bm.INTERMEDIATE}, randomly initialised, with the demo's tokenizers (vocabularies of "
        f"{res['vocab']['gpt2']} and {res['vocab']['bert']}); GPT-2 has {fmt(res['gpt2_params'] / 1e6)}M weights "
        "without embeddings (LM head included). Its end-token log-odds are set per position (`bench_models.py`), "
        f"so its samples have a realistic length mix: tokens per sample p5/p50/p95/p99/max = "
        + length_mix(s["lengths"]) + f", mean {s['mean_length']:.1f}.",
        "- Sentences for logits and students: demo corpus sentences, 8% of them several joined (2 + a geometric "
        "number, at most 12); BERT "
        "wordpieces p5/p50/p95/p99/max = " + length_mix(lg["lengths"]) + f", mean {lg['mean_length']:.1f}.",
        f"- Students: the thesis architectures (`config/config.yaml`): BERT_S {students['bert_s']['layers']} "
        f"x {students['bert_s']['hidden']} (batch {st['bert_s']['batch']}), LSTM_S BiLSTM "
        f"{students['lstm_s']['hidden']} on 2 x 300-d word channels (batch {st['lstm_s']['batch']}, "
        "random vectors in place of word2vec).",
        "",
    ]


def comparison(step: str, other: str, what: str, ours: float, theirs: float, ratio: float | None = None) -> str:
    """A row of the results table: kdprobe's rate beside the other side's, and their ratio (default: of these)."""
    ratio = ratio if ratio is not None else (ours / theirs if theirs else float("nan"))
    return md_row(step, other, what, fmt(ours), fmt(theirs), f"{fmt(ratio)}x")


def comparison_rows(res: dict) -> list[str]:
    s, lg, st = res["sampling"], res["logits"], res["students"]
    kd, db, ks, gs = s["kdprobe"], s["dbert"], s["kdprobe_small"], s["generate_small"]
    B, R = s["small"], s["rows"]
    ours_big, ours_small = f"sampling, batch {R} x {s['lanes']} lane(s)", f"sampling, batch {B} x {s['lanes']} lane(s)"
    dbert_way = f"d-bert's sampler, batch {B}, no cache (floor)"
    rows = [comparison(ours_big, dbert_way, "sentences/s", kd["sentences_per_s"], db["sentences_per_s"]),
            comparison(ours_big, dbert_way, "tokens/s", kd["tokens_per_s"], db["tokens_per_s"], s["speedup"]),
            comparison(ours_small, f"HF `generate`, batch {B}", "tokens/s", ks["tokens_per_s"], gs["tokens_per_s"],
                       s["vs_generate_small"])]
    if "generate" in s:
        rows.append(comparison(ours_big, f"HF `generate`, batch {R}", "tokens/s", kd["tokens_per_s"],
                               s["generate"]["tokens_per_s"], s["vs_generate"]))
    rows += [comparison("teacher logits", "`DataCollatorWithPadding` + `DataLoader` loop", "sentences/s",
                        lg["kdprobe"], lg["peer"], lg["vs_peer"]),
             comparison("teacher logits", "pad to 128 (floor)", "sentences/s", lg["kdprobe"], lg["anchor"],
                        lg["speedup"])]
    for key, name, peer_name in (("bert_s", "BERT_S epoch", "HF `BertForSequenceClassification` + collator"),
                                 ("lstm_s", "LSTM_S epoch", "`nn.LSTM` on packed sequences + `DataLoader`"),
                                 ("lstm_s_english", "LSTM_S epoch, real English",
                                  "`nn.LSTM` on packed sequences + `DataLoader`")):
        x = st[key]
        rows += [comparison(name, peer_name, "sentences/s", x["kdprobe"], x["peer"], x["vs_peer"]),
                 comparison(name, "tokenise and pad to 128 on the fly (floor)", "sentences/s", x["kdprobe"],
                            x["anchor"], x["speedup"])]
    for kind, name in (("bert_s", "BERT_S"), ("lstm_s", "LSTM_S")):
        f = st[kind]["flops_per_s"]
        rows.append(comparison(f"{name} epoch", "plain-PyTorch peer (as above)", "useful GFLOP/s",
                               f["kdprobe"] / 1e9, f["peer"] / 1e9))
    return rows


def results_section(res: dict) -> list[str]:
    s = res["sampling"]
    return [
        "## Results",
        "Each step is measured against what a researcher would write today (the *peer*, `benchmarks/peers.py`) and "
        "against the thesis-era code (the *floor*, `benchmarks/anchors.py`), on the same model, sentences, batch size "
        f"and {s['threads']} torch thread(s) (kdprobe as {s['lanes']} single-threaded lane(s), the others on torch's "
        "own threads). Rates are medians over the repeats; ratios are medians of the ratios of each kdprobe run to "
        "the other side's run next to it (both under the same load), so they need not equal the ratio of the "
        "medians.",
        "",
        *md_table(("step (kdprobe)", "compared with", "measure", "kdprobe", "other", "ratio"), comparison_rows(res)),
        "",
    ]


def sampling_rows(s: dict) -> list[str]:
    """The ways of sampling side by side: rates, effective FLOP/s, share of the matmul peak, sample lengths."""
    rows, B, R = [], s["small"], s["rows"]
    for key, name, batch in (("dbert", "d-bert's sampler (no cache)", B), ("generate_small", "HF `generate`", B),
                             ("kdprobe_small", "kdprobe", B), ("generate", "HF `generate`", R),
                             ("kdprobe", "kdprobe (its CPU batch)", R)):
        if key in s:
            x = s[key]
            rows.append(md_row(name, str(batch), fmt(x["tokens_per_s"]), fmt(x["flops_per_s"] / 1e9),
                               f"{100 * x['peak_fraction']:.1f}%", "" if key == "dbert" else f"{x['mean_length']:.1f}"))
    return rows


def sampling_effects(s: dict) -> list[str]:
    """The floor's ratio taken apart: the cache effect, kdprobe's own speed-up and the batch effect."""
    B, R = s["small"], s["rows"]
    return [
        f"- **cache effect** (HF `generate` / d-bert, both at batch {B}): **{s['cache_effect']:.1f}x**.",
        f"- **kdprobe's own speed-up at equal batch** (kdprobe / `generate`): **{s['vs_generate_small']:.2f}x** at "
        f"batch {B}" + (f", **{s['vs_generate']:.2f}x** at batch {R}." if "vs_generate" in s else "."),
        f"- **batch effect** (kdprobe at batch {R} / kdprobe at batch {B}): **{s['batch_effect']:.2f}x**"
        + (f" (for `generate`: {s['generate_batch_effect']:.2f}x)." if "generate_batch_effect" in s else "."),
        f"- the floor's single ratio (kdprobe at batch {R} / d-bert at batch {B}, {s['speedup']:.0f}x) is about the "
        f"product of the three: cache {s['cache_effect']:.1f}x x kdprobe's own {s['vs_generate_small']:.2f}x x "
        f"batch {s['batch_effect']:.2f}x = "
        f"{s['cache_effect'] * s['vs_generate_small'] * s['batch_effect']:.0f}x.",
    ]


def sampling_section(res: dict) -> list[str]:
    s = res["sampling"]
    B, R = s["small"], s["rows"]
    return [
        "### Sampling: the cache effect and the batch effect, separately",
        "Tokens are sampled tokens (one per row per step, the end token included); effective FLOPs count 2 x "
        "weights (LM head included) + attention (4 x context x hidden per layer) per sampled token, the same count "
        "for every way (d-bert executes far more, `generate` somewhat more: it keeps finished rows in the batch). "
        "Share = effective FLOP/s over the matmul FLOP/s measured just before (same threads).",
        "",
        *md_table(("way", "batch", "tokens/s", "effective GFLOP/s", "share of matmul peak",
                   "mean tokens per sample"), sampling_rows(s)),
        "",
        *sampling_effects(s),
        "",
        f"- kdprobe: `augment.sample.sample_rows` as `sample_shard` runs it: batches of {R} (and of {B}) rows, one "
        f"batch per lane ({s['lanes']} lane(s), `runtime.Lanes`), each lane keeping its `Gpt2Decoder` (preallocated "
        f"KV cache, finished rows dropped at once); {s['rows'] * s['lanes']} and {s['n_small']} samples per repeat, "
        f"max {MAX_LENGTH} tokens, temperature 1, top-k off, first call (not timed) makes the decoders.",
        f"- HF `generate` (`peers.hf_generate`): `model.generate(do_sample=True, use_cache=True, top_k=0, "
        f"temperature=1.0, max_new_tokens={MAX_LENGTH}, eos_token_id=pad_token_id=end)` on the same "
        f"`GPT2LMHeadModel`, prompts of the start token alone, batches of {B} ({s['n_small']} samples per repeat)"
        + (f" and one batch of {R}" if "generate" in s else "")
        + "; a batch runs until its last row ends (finished rows stay in it, padded): it runs "
        f"{s['generate_small']['row_steps_per_token']:.1f} row-steps per sampled token at batch {B}"
        + (f", {s['generate']['row_steps_per_token']:.1f} at batch {R}" if "generate" in s else "")
        + " (kdprobe: 1).",
        f"- d-bert (`anchors.DbertSampler`): buffer of {B} texts, each step re-encodes and re-runs the whole padded "
        f"batch with no cache, one `multinomial` draw per row; timed over {res['sizes']['dbert_steps']} steps from "
        f"its steady state (median padded width {s['dbert_width']:.0f}).",
        "",
    ]


def logits_section(res: dict) -> list[str]:
    lg = res["logits"]
    pos = lg["positions"]
    return [
        "### Teacher logits",
        f"- kdprobe: `transfer.write_transfer` (load tokenizer and model, tokenise, length-sorted batches of "
        f"{lg['batch']} within chunks of {kd_transfer.STREAM_BATCHES} batches, each padded to its longest, run side by "
        "side on one lane per thread (`runtime.Lanes`), parquet written).",
        f"- peer (`peers.dynamic_padding_logits`): load tokenizer and model (`from_pretrained`), tokenise all "
        f"sentences once (truncated to {MAX_LENGTH}), `DataLoader(batch_size={lg['batch']}, shuffle=False, "
        "collate_fn=DataCollatorWithPadding(tokenizer))`, `model.eval()`, `torch.no_grad()`, logits to numpy in "
        "input order; nothing written.",
        f"- floor (`anchors.padded_logits`): each batch of {lg['batch']} tokenised and padded to {MAX_LENGTH} "
        "(model already loaded).",
        f"- positions run for {lg['n']} sentences of {pos['tokens']:,} wordpieces: kdprobe "
        f"{pos['kdprobe']:,} ({pos['kdprobe'] / pos['tokens']:.2f}x the "
        f"tokens), peer {pos['peer']:,} ({pos['peer'] / pos['tokens']:.2f}x), "
        f"floor {pos['anchor']:,} ({pos['anchor'] / pos['tokens']:.2f}x).",
        "",
    ]


def students_section(res: dict) -> list[str]:
    st = res["students"]
    en, pos = st["lstm_s_english"], st["bert_s"]["positions"]
    return [
        "### Students",
        f"- kdprobe: one epoch of `training.OptimStep` on `distil.DistilLoss` over `batching.epoch_batches` "
        f"(length-grouped shuffled batches; ids tokenised once beforehand, as `distil` does; not timed); "
        f"{st['bert_s']['n']} (BERT_S, batch {st['bert_s']['batch']}) and {st['lstm_s']['n']} (LSTM_S, batch "
        f"{st['lstm_s']['batch']}) sentences, {st['bert_s']['threads']} torch thread(s) for every side "
        "(`--student-threads`).",
        "- peers: the same architecture, loss (`losses.distillation_loss`: soft CE at T = 3 for BERT_S, summed MSE "
        "for LSTM_S), optimiser (`settings.OptimizerSettings`: Adam 5e-4 (0.9, 0.98) / Adadelta 1.0, rho 0.95), "
        "gradient clipping, batch size and token ids, trained from a shuffled `DataLoader` that pads each batch to "
        "its longest (ids made beforehand, not timed). BERT_S: Hugging Face `BertForSequenceClassification` of "
        "BERT_S's size (`peers.bert_model`) with `DataCollatorWithPadding` (`peers.bert_epoch`); LSTM_S: "
        "`peers.PackedBiLSTM` (frozen + trained 300-d embeddings concatenated, `nn.LSTM(600, 300, "
        "bidirectional=True)` on `pack_padded_sequence(enforce_sorted=False)`, FC 400, ReLU, dropout, linear) with "
        "a `pad_sequence` collate_fn (`peers.lstm_epoch`).",
        f"- padding: BERT_S positions run per epoch: kdprobe {pos['kdprobe']:,}, peer "
        f"{pos['peer']:,} (shuffled batches) for {pos['tokens']:,} "
        "tokens; the LSTMs skip padding either way (packed).",
        "- floor (`anchors.on_the_fly_epoch`): shuffled batches tokenised and padded to "
        f"{MAX_LENGTH} on the fly, every epoch; BERT_S over all {MAX_LENGTH} positions, LSTM_S as d-bert's BiRNN "
        "(sorted, packed, `nn.LSTM`).",
        "- kdprobe's LSTM_S runs `students.bilstm` on the CPU (packed, both directions in one product per step, a "
        "hand-written backward pass that skips the frozen channel's input gradient; the same numbers as `nn.LSTM`, "
        "`tests/test_bilstm.py`). `bilstm` runs the input side (input projections, input-weight and input "
        "gradients) once per distinct word of a batch, not per token, so its speed depends on how often words "
        f"repeat within a batch: in the demo-grammar sentences ({st['lstm_s']['vocab']} words, "
        f"{st['lstm_s']['mean_tokens']:.1f} tokens per sentence) the distinct words of a batch are "
        f"{100 * st['lstm_s']['distinct_share']:.0f}% of its tokens. Useful FLOPs count the work per token, so "
        "kdprobe's LSTM_S share of the matmul peak is not an efficiency figure. The rows *real English* repeat the "
        f"LSTM_S epoch on {en['n']} sentences of news (`bench_models.english_sentences`: the Lee corpus shipped "
        f"with gensim; {en['vocab']} words, {en['mean_tokens']:.1f} tokens per sentence, distinct words "
        f"{100 * en['distinct_share']:.0f}% of a batch's tokens): what to expect on real text. They are not "
        "targets.",
        "",
    ]


def slurm_line(slurm: dict) -> str:
    if not slurm.get("client_tools"):
        return "SLURM client tools: not installed (no start-up cost)."
    if slurm.get("up"):
        return (f"SLURM client tools installed, controller up (`scontrol show config` "
                f"{slurm['show_config_s']:.2f} s): no start-up penalty.")
    return (f"**SLURM client tools installed but the controller does not answer** (`scontrol show config` "
            f"took {slurm['show_config_s']:.1f} s): every `snakemake` start pays about that much; start "
            "the controller, or take `scontrol` off the PATH when not using SLURM.")


def demo_line(demo: dict | None, cores: int) -> str:
    if not demo:
        return ("- demo run: not measured in this run (`--quick` or `--no-demo`; give `--demo-run DIR` to read "
                "a finished run, or run without either to run one).")
    return (
        f"- demo run ({demo['jobs']} jobs, `--cores {cores}`): **{demo['wall_s']:.0f} s** wall; the rules' "
        f"own times (`{RULE_BENCHMARKS}/<rule>/...tsv`) sum to {demo['rule_s']:.0f} s, jobs as Snakemake saw them to "
        f"{demo['job_s']:.0f} s (mean concurrency {demo['concurrency']:.2f} of {cores}); no job was "
        f"running for {demo['idle_s']:.0f} s (DAG building, start-up, scheduling). Per rule: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in sorted(demo["rule_s_by_rule"].items(), key=lambda kv: -kv[1]))
        + f". Run directory: `{demo['dir']}`."
        + (f" Measured as: `{demo['command']}` (the wall time is that command's)." if demo.get("command") else ""))


def workflow_section(res: dict, cores: int) -> list[str]:
    dry = res["dry_run"]
    return [
        "## Workflow",
        f"- dry run of the thesis config, all tasks (`snakemake -n` in a copy of the project, {dry['jobs']} jobs): "
        f"**{dry['s']:.1f} s** (runs: {', '.join(f'{x:.1f}' for x in dry['all_s'])} s).",
        f"- {slurm_line(res['slurm'])}",
        demo_line(res.get("demo"), cores),
        "",
    ]


def memory_section(res: dict) -> list[str]:
    mem, rows = res["memory"], []
    for stage, name in (("sample", "sampling (`sample_shard`, demo settings)"),
                        ("logits", "teacher logits (`write_transfer`, demo settings)")):
        a, b = mem[f"{stage}_x1"], mem[f"{stage}_x10"]
        rows.append(md_row(name, f"{a['peak_rss_mb']:.0f} MB ({a['n']} sentences)",
                           f"{b['peak_rss_mb']:.0f} MB ({b['n']})", f"{b['peak_rss_mb'] / a['peak_rss_mb']:.2f}x"))
    return [
        "## Memory (separate processes, peak RSS)",
        *md_table(("stage", "demo scale", "10x", "growth"), rows),
        "",
        "Both stream: sampling writes resumable chunks (demo: 100 sentences) and concatenates them row group by "
        f"row group; logits tokenise, run and write {kd_transfer.STREAM_BATCHES} batches at a time (demo: "
        f"{kd_transfer.STREAM_BATCHES * DEMO['logits']['batch_size']} sentences). Neither holds a whole-shard tensor; "
        "what remains is the model, torch itself and one batch's activations.",
        "",
    ]


def speed_targets(res: dict) -> list[tuple[str, str, bool]]:
    """(target, measured, met) of the speed targets: against the peers, then against the floor."""
    s, lg, st, peak = res["sampling"], res["logits"], res["students"], res["peak_flops"]
    out = [(f"sampling >= 2x HF `generate` at the same batch ({batch}; tokens/s)", f"{s[key]:.2f}x",
            s[key] >= TARGETS["sampling_vs_generate"])
           for key, batch in (("vs_generate_small", s["small"]), ("vs_generate", s["rows"])) if key in s]
    out.append(("teacher logits >= 1.5x the dynamic-padding loop", f"{lg['vs_peer']:.2f}x",
                lg["vs_peer"] >= TARGETS["logits_vs_dynamic"]))
    for kind, name, peer_name in (("bert_s", "BERT_S", "HF BERT with dynamic padding"),
                                  ("lstm_s", "LSTM_S", "`nn.LSTM` on packed sequences")):
        r = st[kind]["vs_peer"]
        out.append((f"{name} epoch >= 1.5x {peer_name}", f"{r:.2f}x", r >= TARGETS["student_vs_plain"]))
    out += [("sampling >= 8x d-bert's way (tokens/s; kdprobe at its batch, d-bert at its own)",
             f"{s['speedup']:.1f}x", s["speedup"] >= TARGETS["sampling_speedup"]),
            (f"sampling >= 40% of measured matmul FLOP/s ({fmt(peak / 1e9)} GFLOP/s)",
             f"{100 * s['peak_fraction']:.0f}%", s["peak_fraction"] >= TARGETS["sampling_peak_fraction"]),
            ("teacher logits >= 3x pad-to-128", f"{lg['speedup']:.1f}x", lg["speedup"] >= TARGETS["logits_speedup"])]
    for kind, name in (("bert_s", "BERT_S"), ("lstm_s", "LSTM_S")):
        r, f = st[kind]["speedup"], st[kind]["flops_per_s"]
        out.append((f"{name} epoch >= 3x tokenise-on-the-fly",
                    f"{r:.1f}x (useful FLOP/s: kdprobe {100 * f['kdprobe'] / peak:.0f}%, anchor "
                    f"{100 * f['anchor'] / peak:.0f}% of matmul peak)", r >= TARGETS["student_speedup"]))
    return out


def workflow_targets(res: dict) -> list[tuple[str, str, bool]]:
    """(target, measured, met) of the dry run, the demo (when measured) and memory growth."""
    dry, demo, mem = res["dry_run"], res.get("demo"), res["memory"]
    out = [(f"dry run of the thesis DAG ({dry['jobs']} jobs) <= 10 s", f"{dry['s']:.1f} s",
            dry["s"] <= TARGETS["dry_run_s"])]
    if demo:
        out.append((f"the demo ({demo['jobs']} jobs, 2 cores) <= 8 min"
                    + (", from a fresh clone (`make demo`)" if demo.get("command") else ""),
                    f"{demo['wall_s']:.0f} s", demo["wall_s"] <= TARGETS["demo_s"]))
    for stage in ("sample", "logits"):
        a, b = mem[f"{stage}_x1"]["peak_rss_mb"], mem[f"{stage}_x10"]["peak_rss_mb"]
        out.append((f"peak RSS of {'sampling' if stage == 'sample' else 'logits'} at 10x <= 1.5x demo scale",
                    f"{b / a:.2f}x ({a:.0f} -> {b:.0f} MB)", b / a <= TARGETS["memory_growth"]))
    return out


def sampling_misses(s: dict) -> list[str]:
    notes = []
    for key, batch, kd_key, peer_key in (("vs_generate_small", s["small"], "kdprobe_small", "generate_small"),
                                         ("vs_generate", s["rows"], "kdprobe", "generate")):
        if key in s and s[key] < TARGETS["sampling_vs_generate"]:
            notes.append(
                f"- **Missed: sampling vs `generate` at batch {batch} ({s[key]:.2f}x).** In useful FLOPs kdprobe "
                f"reaches {100 * s[kd_key]['peak_fraction']:.0f}% and `generate` "
                f"{100 * s[peer_key]['peak_fraction']:.0f}% of the measured matmul peak; `generate` runs "
                f"{s[peer_key]['row_steps_per_token']:.1f} row-steps per sampled token (kdprobe 1).")
    return notes


def logits_misses(lg: dict) -> list[str]:
    if lg["vs_peer"] >= TARGETS["logits_vs_dynamic"]:
        return []
    pos = lg["positions"]
    padding = pos["peer"] / pos["kdprobe"]
    return [
        f"- **Missed: teacher logits vs the dynamic-padding loop ({lg['vs_peer']:.2f}x).** The peer runs "
        f"{padding:.2f}x the positions kdprobe runs ({pos['peer']:,} vs {pos['kdprobe']:,}); per position kdprobe "
        f"is {lg['vs_peer'] / padding:.2f}x as fast. Length sorting can save no more than the padding the peer "
        "runs."]


def dry_run_misses(res: dict) -> list[str]:
    dry, slurm = res.get("dry_run"), res.get("slurm", {})
    if not (dry and dry["s"] > TARGETS["dry_run_s"] and "cpu_s" in dry):
        return []
    stalled = slurm.get("client_tools") and not slurm.get("up")
    return [
        f"- **Missed: dry run ({dry['s']:.1f} s).** Snakemake used {dry['cpu_s']:.1f} s of CPU time (user + "
        f"system) in those {dry['s']:.1f} s of wall time"
        + (f"; `scontrol show config`, which Snakemake's SLURM plugin asks at every start, took "
           f"{slurm['show_config_s']:.1f} s here with no SLURM controller answering (see Workflow)."
           if stalled else f" (load average before the run: {res['load_before']}).")]


def student_misses(st: dict) -> list[str]:
    notes = []
    for kind, name in (("bert_s", "BERT_S"), ("lstm_s", "LSTM_S")):
        x = st[kind]
        if x["speedup"] < TARGETS["student_speedup"]:
            notes.append(
                f"- **Missed: {name} epoch vs tokenise-on-the-fly ({x['speedup']:.2f}x).** The floor runs at "
                f"{x['anchor'] / x['peer']:.2f}x the speed of the plain-PyTorch peer, which tokenises once and pads "
                "per batch"
                + (": with packed sequences neither LSTM works on padding, so tokenising every batch and padding "
                   "to 128 cost the floor little" if kind == "lstm_s" else "")
                + f". What kdprobe gains over the floor is mostly what it gains over the peer ({x['vs_peer']:.2f}x).")
        if x["vs_peer"] < TARGETS["student_vs_plain"]:
            pos = x["positions"]
            notes.append(
                f"- **Missed: {name} epoch vs its plain-PyTorch peer ({x['vs_peer']:.2f}x).** Positions per epoch: "
                f"kdprobe {pos['kdprobe']:,}, peer {pos['peer']:,} for {pos['tokens']:,} tokens"
                + (" (both LSTMs skip padding: packed sequences)" if kind == "lstm_s" else "")
                + f"; useful FLOP/s kdprobe {x['flops_per_s']['kdprobe'] / 1e9:.1f} G, peer "
                f"{x['flops_per_s']['peer'] / 1e9:.1f} G.")
    return notes


def miss_notes(res: dict) -> list[str]:
    """For each missed target, the measurements that bound it in this run (none when all pass)."""
    return [*sampling_misses(res["sampling"]), *logits_misses(res["logits"]), *dry_run_misses(res),
            *student_misses(res["students"])]


def targets_section(res: dict) -> list[str]:
    notes = miss_notes(res)
    return [
        "## Targets (this CPU, medians)",
        *md_table(("target", "measured", "result"),
                  [md_row(t, v, verdict(ok)) for t, v, ok in speed_targets(res) + workflow_targets(res)]),
        "",
        *(notes + [""] if notes else []),
    ]


def gpu_section(res: dict) -> list[str]:
    gpu = res["gpu"]
    rows = [md_row(name, f"{r['weights'] / 1e6:.1f}M", f"{r['flops'] / 1e6:.0f} M", f"{r['tokens'] / 1e6:,.0f} M",
                   f"{r['compute_s'] / 60:.1f} min", f"{r['overhead_s'] / 60:.1f} min",
                   f"**{r['estimate_s'] / 60:.0f} min**") for name, r in gpu["rows"].items()]
    decode = [md_row(k, f"{v['bw_step_ms']:.2f} ms", f"{v['flop_step_ms']:.2f} ms", f"{v['overhead_ms']:.0f} ms",
                     f"{v['tokens_per_s']:,.0f}", f"{v['task_min']:.1f} min") for k, v in gpu["decode"].items()]
    return [
        "## Expected GPU figures for the thesis sizes (ESTIMATES, not measured)",
        "No GPU was available for these measurements. The figures below are arithmetic on model sizes and "
        "published H100/H200 specifications; treat them as estimates until `benchmarks/run.py` (or the workflow) "
        "has been run on a GPU.",
        "",
        f"Assumed: {MEAN_TOKENS} tokens per sentence on average (CoLA and Sara are shorter, SST-2 about that), "
        f"{THESIS['augment']['sentences']:,} sampled sentences per task and the thesis' epochs and batch sizes, bf16, "
        f"one GPU; utilisation of the dense bf16 peak ({GPU['H100 SXM']['bf16'] / 1e12:.0f} TFLOP/s) when "
        "compute-bound: " + ", ".join(f"{k} {v:.0%}" for k, v in UTILISATION.items())
        + "; a floor per optimiser or decode step for kernel launches and Python (no CUDA graphs): "
        + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in STEP_OVERHEAD_S.items()) + ".",
        "",
        *md_table(("work (one task)", "weights (no embeddings)", "FLOPs per token", "tokens", "compute-bound",
                   "step floor", "estimate"), rows),
        "",
        "Decoding GPT-2 medium, per step: memory-bound time (all bf16 weights read once plus every row's KV cache "
        "at the mean context), compute-bound time, and the launch floor; the step takes the largest:",
        "",
        *md_table(("GPU, batch", "memory-bound", "compute-bound", "floor", "tokens/s", "one task's sampling"), decode),
        "",
        f"Batch {gpu['auto_batch']} is what `augment.memory.sampling_batch_size` picks from ~72 GB free (bf16 KV cache for "
        f"{THESIS['augment']['max_length'] + 1} positions). At the thesis' batch of 256 a step is bound by launches "
        "and weight reads; at a few thousand rows it is compute-bound, where the GPU is efficient. The thesis needed "
        "~17 h on 4 GPUs to sample one task with d-bert's sampler, over an hour on 4 GPUs for teacher logits and "
        "15-26 h per BERT_S distillation; these estimates say minutes on one GPU (the students are bound by "
        "per-step overheads: bigger batches or CUDA graphs would cut them further).",
        "",
        "GPU paths (all in `kdprobe.runtime`, tested on CPU with CUDA mocked): bf16 autocast on bf16-capable GPUs "
        "(opt-in everywhere with `bf16: true`; sampling and logits run fp32 by default, as the thesis did), "
        "`torch.inference_mode` for "
        "sampling and logits, length-grouped batches everywhere, pinned host memory with non-blocking copies, optional "
        "`torch.compile` (`compile: true` in a section), and a sampling batch size from free GPU memory when "
        "`augment.batch_size` is `auto` (or absent).",
        "",
    ]


def reproduce_section(res: dict) -> list[str]:
    return [
        "## Reproduce",
        "```bash",
        "make setup                                     # once: .venv",
        ".venv/bin/python benchmarks/run.py            # full run, demo included; writes docs/performance.md",
        ".venv/bin/python benchmarks/run.py --demo-run /path/to/finished/demo   # reuse a demo run",
        ".venv/bin/python benchmarks/run.py --quick    # smaller sizes, no demo run",
        ".venv/bin/python benchmarks/run.py --threads 1 --no-demo   # on a shared machine: one thread a side, no demo",
        ".venv/bin/python benchmarks/run.py --from-json docs/performance.json   # rewrite this page from raw numbers",
        ".venv/bin/python benchmarks/distil_terms.py   # the distillation terms (docs/distil_terms.json), then --from-json",
        "```",
        f"This run: `{res['command']}` ({res['elapsed_s'] / 60:.1f} min). Raw numbers: `{res['json']}`.",
        "",
    ]


# ------------------------------------------------------------------------------------------------------ main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes; no demo run unless --demo-run")
    parser.add_argument("--demo-run", type=Path, help="a finished demo run directory to read instead of running one")
    parser.add_argument("--no-demo", action="store_true", help="skip the demo overhead measurement")
    parser.add_argument("--repeats", type=int, help="repetitions per measurement (default 3)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--student-threads", type=int,
                        help="torch threads for the student epochs (default: --threads; on a machine shared with "
                             "other work, 1 avoids measuring OpenMP barrier stalls)")
    parser.add_argument("--cores", type=int, default=2, help="--cores of the demo run")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument("--json", type=Path, help="raw results (default: next to --out, .json)")
    parser.add_argument("--only", help=f"comma-separated sections ({','.join(SECTIONS)})")
    parser.add_argument("--from-json", type=Path,
                        help="write the page from an earlier run's raw numbers (its .json; give that run's --quick "
                             "and --cores) without measuring")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def machine() -> dict:
    """This CPU (model, cores, vector extensions), the software, torch's threads, the kernel and the memory."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
               platform.processor())
    flags = next((line for line in cpuinfo if line.startswith("flags")), "")
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f" {f}" in flags]
    return {"cpu": cpu, "cores": os.cpu_count(), "isa": isa, **software(),
            "threads": torch.get_num_threads(), "kernel": platform.release(),
            "mem_gb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9}


def write_raw(path: Path, res: dict) -> None:
    """The run's raw numbers, which the page is rendered from."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=1, default=str))


def measure(args: argparse.Namespace, sizes: dict, only: set[str] | None, command: str) -> dict:
    """The raw numbers of every section asked for (all without `--only`), in the order the page reads them."""
    def want(section):
        return only is None or section in only

    res = {"date": now(), "machine": machine(), "sizes": sizes, "load_before": load_average(),
           "command": command}
    peak = Peak()
    with tempfile.TemporaryDirectory(prefix="kdprobe-bench-") as tmp_name:
        tmp = Path(tmp_name)
        inputs = build_inputs(tmp, sizes, res)
        if want("sampling"):
            log("sampling")
            res["sampling"] = bench_sampling(inputs.gpt2, inputs.gpt2_tok, sizes, peak)
        if want("logits"):
            log("teacher logits")
            res["logits"] = bench_logits(inputs.bert_dir, inputs.bert_tok, inputs.sentences[: sizes["logit_sents"]],
                                         sizes, peak, tmp)
        if want("students"):
            res["students"] = bench_students(inputs, sizes, peak, args.student_threads or args.threads)
        res["peak_flops"] = peak.value if peak.samples else matmul_flops()
        res["peak_samples"] = list(peak.samples) or [res["peak_flops"]]
        if want("workflow"):
            log("workflow")
            res["slurm"] = slurm_status()
            res["dry_run"] = bench_dry_run(tmp, sizes["repeats"])
            if args.demo_run:
                res["demo"] = demo_overhead(args.demo_run)
            elif not (args.quick or args.no_demo):
                res["demo"] = demo_overhead(run_demo(tmp, args.cores))
        if want("memory"):
            log("memory")
            res["memory"] = bench_memory(inputs.work)
        res["gpu"] = gpu_estimates()
    res["load_after"] = load_average()
    return res


def rerender(args: argparse.Namespace) -> None:
    """The page again from `--from-json`; with `--demo-run`, that run's demo section first replaces the JSON's."""
    res = json.loads(args.from_json.read_text())
    if args.demo_run:
        res["demo"] = demo_overhead(args.demo_run)
        write_raw(args.from_json, res)
    args.out.write_text(render(res, args.quick, args.cores))
    log(f"wrote {args.out} from {args.from_json}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    if args.from_json:
        return rerender(args)
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    sizes = dict(SIZES["quick" if args.quick else "full"])
    if args.repeats:
        sizes["repeats"] = args.repeats
    only = set(args.only.split(",")) if args.only else None
    res = measure(args, sizes, only, command_line("run.py", sys.argv[1:] if argv is None else argv))
    res["elapsed_s"] = time.perf_counter() - started
    json_path = args.json or args.out.with_suffix(".json")
    res["json"] = shown(json_path)
    write_raw(json_path, res)
    if only is None:
        text = render(res, args.quick, args.cores)
        args.out.write_text(text)
        print(text)
        log(f"wrote {args.out} and {json_path}")
    else:
        print(json.dumps({k: res[k] for k in res if k in {"sampling", "logits", "students", "dry_run", "demo",
                                                           "memory", "peak_flops", "slurm"}}, indent=1,
                         default=str))
    log(f"done in {res['elapsed_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""kdprobe's heavy steps measured against the thesis' way of doing them, side by side, in one process.

    .venv/bin/python benchmarks/run.py                 # everything, including a demo run in a temp copy (~15 min+)
    .venv/bin/python benchmarks/run.py --demo-run DIR  # take the demo's wall time and rule times from a finished run
    .venv/bin/python benchmarks/run.py --quick         # smaller sizes, fewer repeats, no demo run (~5 min)

Every measurement is repeated (`--repeats`) with kdprobe's way and the anchor's way alternating, and medians are
reported; the machine's dense fp32 matmul throughput is measured in the same run (before every section) as the
yardstick for effective FLOP/s. Writes `docs/performance.md` (or `--out`) and prints the table. Not part of the
test suite: it measures, it does not check correctness (the tests do).
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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
import yaml  # noqa: E402

import anchors  # noqa: E402
import bench_models as bm  # noqa: E402
from kdprobe import batching as kd_batching  # noqa: E402
from kdprobe import distil as kd_distil  # noqa: E402
from kdprobe import logits as kd_logits  # noqa: E402
from kdprobe import runtime  # noqa: E402
from kdprobe import sampling as kd_sampling  # noqa: E402
from kdprobe.schedule import linear_warmup_decay  # noqa: E402
from kdprobe.students import build_student  # noqa: E402
from kdprobe.training import OptimStep  # noqa: E402

THESIS = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
DEMO = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
SIZES = {
    #          sample rows, d-bert steps, logits sents, BERT_S sents, LSTM_S sents, repeats
    "full": dict(sample_rows=1024, dbert_steps=6, logit_sents=1024, bert_s_sents=1024, lstm_s_sents=1000, repeats=3),
    "quick": dict(sample_rows=512, dbert_steps=3, logit_sents=512, bert_s_sents=512, lstm_s_sents=400, repeats=3),
}
MAX_LENGTH = 128
#: Batch sizes here, for kdprobe and the anchor alike. Length grouping pads little once there are many batches;
#: with the thesis' batch sizes (logits 512, BERT_S 256) and the thousands of sentences a benchmark can afford,
#: one batch would hold the whole length tail. 800k sentences per task make many batches at any batch size.
LOGITS_BATCH = 64
STUDENT_BATCH = {"bert_s": 32, "lstm_s": 50}
TARGETS = {
    "sampling_speedup": 8.0, "sampling_peak_fraction": 0.40, "logits_speedup": 3.0, "student_speedup": 3.0,
    "dry_run_s": 10.0, "memory_growth": 1.5,
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def median(xs):
    return float(statistics.median(xs))


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


# ------------------------------------------------------------------------------------------------- sampling
def bench_sampling(gpt2, tok, sizes, peak: Peak) -> dict:
    eos = tok.eos_token_id
    rows, repeats = sizes["sample_rows"], sizes["repeats"]
    settings = {"max_length": MAX_LENGTH, "temperature": 1.0, "top_k": 0}
    kd_runs, db_runs, samples = [], [], []
    # as `sample_shard` runs a shard: one lane per thread, each lane a batch of `rows` at a time with a decoder it
    # keeps; the first call (not timed) makes the decoders
    lanes = kd_sampling.Lanes(torch.get_num_threads())
    n = rows * lanes.n

    def kdprobe(seed):
        return kd_sampling.sample_rows(gpt2, n, seed=seed, chunk=0, bos=eos, eos=eos, max_length=MAX_LENGTH,
                                       batch_size=rows, device=torch.device("cpu"), settings=settings, lanes=lanes)

    kdprobe(99)
    for r in range(repeats):
        peak.measure()
        t = time.perf_counter()
        seqs = kdprobe(100 + r)
        elapsed = time.perf_counter() - t
        steps = [min(len(s) + 1, MAX_LENGTH) for s in seqs]  # forward steps per row (the end token included)
        flops = sum(bm.gpt2_flops_per_token(gpt2, 0) * k + 4.0 * gpt2.config.n_embd * gpt2.config.n_layer
                    * k * (k + 1) / 2 for k in steps)
        kd_runs.append({"s": elapsed, "sentences": n, "tokens": sum(steps), "flops": flops,
                        "peak": peak.samples[-1]})
        samples += seqs
        log(f"sampling kdprobe {r + 1}/{repeats}: {n / elapsed:.1f} sent/s, {sum(steps) / elapsed:.0f} tok/s, "
            f"{flops / elapsed / 1e9:.0f} GFLOP/s (matmul {peak.samples[-1] / 1e9:.0f})")

        sampler = anchors.DbertSampler(gpt2, tok, max_len=MAX_LENGTH, seed=200 + r)
        sampler.start_stationary(samples, np.random.default_rng(300 + r))
        sampler.step()  # warm-up
        widths, finished, flops, tokens, elapsed = [], 0, 0.0, 0, 0.0
        for _ in range(sizes["dbert_steps"]):
            contexts = [len(sampler.tokenizer.encode(x, add_special_tokens=False)) + 1 for x in sampler.buffer]
            contexts += [1] * (sampler.max_size - len(contexts))  # rows the step refills start at the start token
            t = time.perf_counter()
            done, width = sampler.step()  # only the step itself is timed
            elapsed += time.perf_counter() - t
            flops += sum(bm.gpt2_flops_per_token(gpt2, c) for c in contexts)
            tokens += sampler.max_size
            finished += len(done)
            widths.append(width)
        db_runs.append({"s": elapsed, "sentences": finished, "tokens": tokens, "flops": flops,
                        "width": median(widths)})
        log(f"sampling d-bert {r + 1}/{repeats}: {finished / elapsed:.2f} sent/s, {tokens / elapsed:.0f} tok/s, "
            f"width {median(widths):.0f}")
    lengths = np.array([len(s) for s in samples])

    def summary(runs):
        return {
            "sentences_per_s": median([x["sentences"] / x["s"] for x in runs]),
            "tokens_per_s": median([x["tokens"] / x["s"] for x in runs]),
            "flops_per_s": median([x["flops"] / x["s"] for x in runs]),
        }

    lanes.close()
    out = {"kdprobe": summary(kd_runs), "dbert": summary(db_runs), "rows": rows, "lanes": lanes.n,
           # side by side: each kdprobe run against the d-bert run right after it, and against the matmul
           # throughput measured right before it
           "speedup": median([(k["tokens"] / k["s"]) / (d["tokens"] / d["s"]) for k, d in zip(kd_runs, db_runs)]),
           "peak_fraction": median([k["flops"] / k["s"] / k["peak"] for k in kd_runs]),
           "runs": {"kdprobe": kd_runs, "dbert": db_runs},
           "dbert_width": median([x["width"] for x in db_runs]),
           "lengths": {f"p{q}": float(np.percentile(lengths, q)) for q in (5, 25, 50, 75, 95, 99, 100)},
           "mean_length": float(lengths.mean())}
    return out


# --------------------------------------------------------------------------------------------------- logits
def bench_logits(bert_dir: Path, bert_tok, sentences: list[str], sizes, peak: Peak, tmp: Path) -> dict:
    from transformers import AutoModelForSequenceClassification

    batch = LOGITS_BATCH
    settings = {"batch_size": batch, "max_length": MAX_LENGTH}
    model = AutoModelForSequenceClassification.from_pretrained(bert_dir).eval()
    n = len(sentences)
    kd, an = [], []
    for r in range(sizes["repeats"]):
        peak.measure()
        t = time.perf_counter()
        kd_logits.write_transfer(bert_dir, sentences, None, settings, tmp / f"logits{r}.parquet", "cpu")
        kd.append(time.perf_counter() - t)
        t = time.perf_counter()
        anchors.padded_logits(model, bert_tok, sentences, batch, MAX_LENGTH)
        an.append(time.perf_counter() - t)
        log(f"logits {r + 1}: kdprobe {n / kd[-1]:.1f} sent/s, padded to 128 {n / an[-1]:.1f} sent/s")
    lengths = [len(x) for x in bert_tok(sentences, truncation=True, max_length=MAX_LENGTH)["input_ids"]]
    return {"kdprobe": n / median(kd), "anchor": n / median(an), "batch": batch, "n": n,
            "speedup": median([a / k for k, a in zip(kd, an)]), "runs": {"kdprobe_s": kd, "anchor_s": an},
            "lengths": {f"p{q}": float(np.percentile(lengths, q)) for q in (5, 25, 50, 75, 95, 99, 100)},
            "mean_length": float(np.mean(lengths))}


# ------------------------------------------------------------------------------------------------- students
def student_settings(kind: str) -> dict:
    settings = dict(THESIS["students"][kind])
    if kind == "lstm_s":
        settings["embeddings"] = "random"  # word2vec's shape (300-d words) without the GoogleNews file
    return settings


def bench_student(kind: str, bert_dir: Path, sentences: list[str], sizes, peak: Peak, threads: int) -> dict:
    settings = student_settings(kind)
    n_classes = 2
    teacher_logits = torch.randn(len(sentences), n_classes, generator=torch.Generator().manual_seed(5))
    vocab_info = {"teacher_dir": str(bert_dir), "sentences": sentences}
    batch_size = STUDENT_BATCH[kind]

    def fresh():
        torch.manual_seed(0)
        model = build_student(kind, settings, n_classes, vocab_info)
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        return model, params, kd_distil.make_optimizer(settings, params, kind)

    kd, an = [], []
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
        loss = kd_distil.DistilLoss(model, ids, teacher_logits, settings["loss"], float(settings["temperature"]),
                                    str(settings.get("mse_reduction", "sum")), torch.device("cpu"), settings)
        t = time.perf_counter()
        for idx in batches:
            step(loss(idx))
        kd.append(time.perf_counter() - t)
        # the thesis: tokenise and pad to 128 on the fly, every batch of every epoch
        model, params, optimizer = fresh()
        t = time.perf_counter()
        anchors.on_the_fly_epoch(model, optimizer, sentences, teacher_logits, batch_size, settings["loss"],
                                 float(settings["temperature"]), float(settings["clip_norm"]), seed=r,
                                 max_length=MAX_LENGTH)
        an.append(time.perf_counter() - t)
        torch.set_num_threads(before)
        log(f"{kind} {r + 1}: kdprobe {len(sentences) / kd[-1]:.1f} sent/s, "
            f"on the fly {len(sentences) / an[-1]:.1f} sent/s")
    return {"kdprobe": len(sentences) / median(kd), "anchor": len(sentences) / median(an), "n": len(sentences),
            "flops_per_s": {"kdprobe": flops / median(kd), "anchor": flops / median(an)},
            "batch": batch_size, "threads": threads, "speedup": median([a / k for k, a in zip(kd, an)]),
            "vocab": model.inputs.vocab_size, "mean_tokens": float(ids.lengths.mean()),
            "distinct_share": float(distinct),
            "runs": {"kdprobe_s": kd, "anchor_s": an}}


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
    times, jobs = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        proc = subprocess.run([snakemake_bin(), "-n", "--quiet", "rules"], cwd=project, capture_output=True,
                              text=True)
        times.append(time.perf_counter() - t)
        if proc.returncode != 0:
            raise RuntimeError(f"dry run failed:\n{proc.stdout}\n{proc.stderr}")
        total = re.search(r"^total\s+(\d+)", proc.stdout + proc.stderr, re.M)
        jobs = int(total.group(1)) if total else jobs
    log(f"dry run: {median(times):.2f} s, {jobs} jobs")
    return {"s": median(times), "all_s": times, "jobs": jobs}


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


def demo_overhead(run_dir: Path) -> dict:
    """Wall time of a demo run (its newest Snakemake log of a run that finished jobs: dry runs are skipped), the sum
    of its rules' own times (`benchmarks/**.tsv`, column `s`), and the time no job was running (from the log's job
    start and finish stamps)."""
    logs = [log for log in sorted((run_dir / ".snakemake" / "log").glob("*.snakemake.log"))
            if "steps (100%) done" in log.read_text()]
    if not logs:
        raise RuntimeError(f"no Snakemake log of a completed run in {run_dir}/.snakemake/log")
    lines = logs[-1].read_text().splitlines()
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
    t0 = t0 or min(begun.values())
    wall_file = run_dir / "benchmark-demo-wall.txt"
    wall = float(wall_file.read_text()) if wall_file.exists() else (last - t0).total_seconds()
    intervals = sorted((begun[j], ended[j]) for j in ended if j in begun)
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
    rule_s = {}
    for tsv in (run_dir / "benchmarks").rglob("*.tsv"):
        rows = tsv.read_text().splitlines()
        if len(rows) >= 2:
            rule = tsv.relative_to(run_dir / "benchmarks").parts[0]
            rule_s[rule] = rule_s.get(rule, 0.0) + float(rows[1].split("\t")[0])
    job_s = sum((e - s).total_seconds() for s, e in intervals)
    return {"dir": str(run_dir), "wall_s": wall, "jobs": len(intervals), "rule_s": sum(rule_s.values()),
            "rule_s_by_rule": rule_s, "job_s": job_s, "idle_s": max(0.0, wall - busy),
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
        kd_logits.write_transfer(work / "bert", (sentences * reps)[:n], None, dict(DEMO["logits"]),
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
    auto = runtime.sampling_batch_size(int(0.9 * 80e9), layers=24, hidden=1024, vocab=50257,
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


# --------------------------------------------------------------------------------------------------- report
def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f" {f}" in flags]
    return {"cpu": cpu, "cores": os.cpu_count(), "isa": isa, "python": platform.python_version(),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "threads": torch.get_num_threads(), "kernel": platform.release(),
            "mem_gb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9}


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def fmt(x: float, digits: int = 3) -> str:
    if x != x:
        return "n/a"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def report(res: dict, args) -> str:
    m, peak = res["machine"], res["peak_flops"]
    s, lg, st = res["sampling"], res["logits"], res["students"]
    kd, db = s["kdprobe"], s["dbert"]
    frac = s["peak_fraction"]
    rows = []
    targets = []

    def row(step, what, ours, theirs, unit, ratio=None):
        ratio = ratio if ratio is not None else (ours / theirs if theirs else float("nan"))
        unit = f" {unit}" if unit else ""
        rows.append(f"| {step} | {what} | {fmt(ours)}{unit} | {fmt(theirs)}{unit} | {fmt(ratio)}x |")

    row("sampling", "sentences/s", kd["sentences_per_s"], db["sentences_per_s"], "")
    row("sampling", "tokens/s", kd["tokens_per_s"], db["tokens_per_s"], "", s["speedup"])
    row("sampling", "effective GFLOP/s", kd["flops_per_s"] / 1e9, db["flops_per_s"] / 1e9, "")
    row("teacher logits", "sentences/s", lg["kdprobe"], lg["anchor"], "", lg["speedup"])
    row("BERT_S epoch", "sentences/s", st["bert_s"]["kdprobe"], st["bert_s"]["anchor"], "", st["bert_s"]["speedup"])
    row("LSTM_S epoch", "sentences/s", st["lstm_s"]["kdprobe"], st["lstm_s"]["anchor"], "", st["lstm_s"]["speedup"])
    en = st["lstm_s_english"]
    row("LSTM_S epoch, real English", "sentences/s", en["kdprobe"], en["anchor"], "", en["speedup"])
    for kind, name in (("bert_s", "BERT_S"), ("lstm_s", "LSTM_S")):
        f = st[kind]["flops_per_s"]
        row(f"{name} epoch", "useful GFLOP/s", f["kdprobe"] / 1e9, f["anchor"] / 1e9, "")
    speed = s["speedup"]
    targets.append(("sampling >= 8x d-bert's way (tokens/s)", f"{speed:.1f}x", speed >= TARGETS["sampling_speedup"]))
    targets.append((f"sampling >= 40% of measured matmul FLOP/s ({fmt(peak / 1e9)} GFLOP/s)",
                    f"{100 * frac:.0f}%", frac >= TARGETS["sampling_peak_fraction"]))
    r = lg["speedup"]
    targets.append(("teacher logits >= 3x pad-to-128", f"{r:.1f}x", r >= TARGETS["logits_speedup"]))
    for kind, name in (("bert_s", "BERT_S"), ("lstm_s", "LSTM_S")):
        r, f = st[kind]["speedup"], st[kind]["flops_per_s"]
        targets.append((f"{name} epoch >= 3x tokenise-on-the-fly",
                        f"{r:.1f}x (useful FLOP/s: kdprobe {100 * f['kdprobe'] / peak:.0f}%, anchor "
                        f"{100 * f['anchor'] / peak:.0f}% of matmul peak)", r >= TARGETS["student_speedup"]))
    dry = res["dry_run"]
    targets.append((f"dry run of the thesis DAG ({dry['jobs']} jobs) <= 10 s", f"{dry['s']:.1f} s",
                    dry["s"] <= TARGETS["dry_run_s"]))
    mem = res["memory"]
    for stage in ("sample", "logits"):
        g = mem[f"{stage}_x10"]["peak_rss_mb"] / mem[f"{stage}_x1"]["peak_rss_mb"]
        targets.append((f"peak RSS of {'sampling' if stage == 'sample' else 'logits'} at 10x <= 1.5x demo scale",
                        f"{g:.2f}x ({mem[f'{stage}_x1']['peak_rss_mb']:.0f} -> "
                        f"{mem[f'{stage}_x10']['peak_rss_mb']:.0f} MB)", g <= TARGETS["memory_growth"]))

    slurm = res["slurm"]
    if not slurm.get("client_tools"):
        slurm_line = "SLURM client tools: not installed (no start-up cost)."
    elif slurm.get("up"):
        slurm_line = (f"SLURM client tools installed, controller up (`scontrol show config` "
                      f"{slurm['show_config_s']:.2f} s): no start-up penalty.")
    else:
        slurm_line = (f"**SLURM client tools installed but the controller does not answer** (`scontrol show config` "
                      f"took {slurm['show_config_s']:.1f} s): every `snakemake` start pays about that much; start "
                      "the controller, or take `scontrol` off the PATH when not using SLURM.")
    demo = res.get("demo")
    if demo:
        demo_lines = [
            f"- demo run ({demo['jobs']} jobs, `--cores {args.cores}`): **{demo['wall_s']:.0f} s** wall; the rules' "
            f"own times (`benchmarks/<rule>/...tsv`) sum to {demo['rule_s']:.0f} s, jobs as Snakemake saw them to "
            f"{demo['job_s']:.0f} s (mean concurrency {demo['concurrency']:.2f} of {args.cores}); no job was "
            f"running for {demo['idle_s']:.0f} s (DAG building, start-up, scheduling). Per rule: "
            + ", ".join(f"{k} {v:.0f} s" for k, v in sorted(demo["rule_s_by_rule"].items(), key=lambda kv: -kv[1]))
            + f". Run directory: `{demo['dir']}`."
        ]
    else:
        demo_lines = ["- demo run: not measured (give `--demo-run DIR` or run without `--quick`)."]

    gpu = res["gpu"]
    lines = [
        "# Performance",
        "",
        f"Measured by `benchmarks/run.py` on {res['date']} ({'quick sizes' if args.quick else 'full sizes'}, "
        f"median of {res['sizes']['repeats']} repeats, kdprobe and the anchor alternating).",
        "",
        "## Machine",
        f"- CPU: {m['cpu']}, {m['cores']} cores ({', '.join(m['isa'])}), {m['mem_gb']:.0f} GB; torch threads "
        f"{m['threads']}; Linux {m['kernel']}",
        f"- Python {m['python']}, torch {m['torch']}, transformers {m['transformers']}",
        f"- dense fp32 matmul (2048^2, torch.matmul; the better of one product on {m['threads']} threads and "
        f"{m['threads']} single-threaded products side by side), measured before every section: median "
        f"**{fmt(peak / 1e9)} GFLOP/s** (range {fmt(min(res['peak_samples']) / 1e9)}-"
        f"{fmt(max(res['peak_samples']) / 1e9)})",
        f"- load average before / after: {res['load_before']} / {res['load_after']} (other processes share this "
        "machine; ratios measured side by side are what count)",
        "",
        "## Models and data",
        f"- GPT-2 and BERT of {bm.LAYERS} layers, hidden {bm.HIDDEN}, {bm.HEADS} heads, intermediate "
        f"{bm.INTERMEDIATE}, randomly initialised, with the demo's tokenizers (vocabularies of "
        f"{res['vocab']['gpt2']} and {res['vocab']['bert']}); GPT-2 has {fmt(res['gpt2_params'] / 1e6)}M weights "
        "without embeddings (LM head included). Its end-token log-odds are set per position (`bench_models.py`), "
        f"so its samples have a realistic length mix: tokens per sample p5/p50/p95/p99/max = "
        + "/".join(fmt(s["lengths"][k]) for k in ("p5", "p50", "p95", "p99", "p100"))
        + f", mean {s['mean_length']:.1f}.",
        "- Sentences for logits and students: demo corpus sentences, 8% of them several joined (2 + a geometric "
        "number, at most 12); BERT "
        "wordpieces p5/p50/p95/p99/max = " + "/".join(fmt(lg["lengths"][k]) for k in ("p5", "p50", "p95", "p99", "p100"))
        + f", mean {lg['mean_length']:.1f}.",
        f"- Students: the thesis architectures (`config/config.yaml`): BERT_S {THESIS['students']['bert_s']['layers']} "
        f"x {THESIS['students']['bert_s']['hidden']} (batch {st['bert_s']['batch']}), LSTM_S BiLSTM "
        f"{THESIS['students']['lstm_s']['hidden']} on 2 x 300-d word channels (batch {st['lstm_s']['batch']}, "
        "random vectors in place of word2vec).",
        "",
        "## Results",
        "Rates are medians over the repeats; ratios are medians of the ratios of each kdprobe run to the anchor run "
        "next to it (both under the same load), so they need not equal the ratio of the medians.",
        "",
        "| step | measure | kdprobe | thesis way (anchor) | ratio |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
        f"- sampling: kdprobe `sampling.sample_rows` ({s['lanes']} lanes of {s['rows']} rows, max {MAX_LENGTH} "
        "tokens, as `sample_shard` runs them) vs d-bert's "
        f"sampler (`anchors.DbertSampler`: buffer of 128, whole padded batch re-run every step, no cache; timed over "
        f"{res['sizes']['dbert_steps']} steps from its steady state, median padded width {s['dbert_width']:.0f}). "
        "Tokens = sampled tokens (one per row per step, the end token included); effective FLOPs = 2 x weights "
        "(LM head included) + attention (4 x context x hidden per layer) per sampled token, the same count for both "
        f"(d-bert executes far more). kdprobe reaches **{100 * frac:.0f}%** of the measured matmul FLOP/s.",
        f"- teacher logits: `logits.write_transfer` (tokenise, length-sorted batches of {lg['batch']} padded to their "
        "longest, run side by side on one lane per core (`runtime.Lanes`), parquet written; model loading included) "
        f"vs `anchors.padded_logits` (each batch of {lg['batch']} tokenised and padded to {MAX_LENGTH}, one process "
        f"on torch's own threads, as the thesis ran it); {lg['n']} sentences.",
        f"- students: one epoch of `training.OptimStep` on `distil.DistilLoss` over `batching.epoch_batches` (ids "
        f"tokenised once beforehand, "
        f"as `distil` does) vs `anchors.on_the_fly_epoch` (shuffled batches tokenised and padded to {MAX_LENGTH} on "
        f"the fly); same model, loss and optimiser; {st['bert_s']['n']} (BERT_S) and {st['lstm_s']['n']} (LSTM_S) "
        f"sentences, {st['bert_s']['threads']} torch thread(s) for both (`--student-threads`). The anchor runs "
        "BERT_S over all 128 positions (Hugging Face BERT with an attention mask) and LSTM_S as d-bert's BiRNN does "
        "(sorted, packed sequences through `nn.LSTM`: no work on padding, but on a CPU autograd adds a zero-filled "
        "gradient of the whole input projection at every time step); kdprobe's LSTM_S runs `students.bilstm` on the "
        "CPU (packed too, both directions in one product per step, a hand-written backward pass that skips the "
        "frozen channel's input gradient; the same numbers as `nn.LSTM`, `tests/test_bilstm.py`). `bilstm` runs "
        "the input side (input projections, input-weight and input gradients) once per distinct word of a batch, "
        "not per token, so its speed depends on how often words repeat within a batch: in the demo-grammar "
        f"sentences ({st['lstm_s']['vocab']} words, {st['lstm_s']['mean_tokens']:.1f} tokens per sentence) the "
        f"distinct words of a batch are {100 * st['lstm_s']['distinct_share']:.0f}% of its tokens. Useful FLOPs "
        "count the work per token, so kdprobe's LSTM_S share of the matmul peak is not an efficiency figure. The "
        f"row *real English* repeats the LSTM_S epoch on {en['n']} sentences of news (`bench_models.english_"
        f"sentences`: the Lee corpus shipped with gensim; {en['vocab']} words, {en['mean_tokens']:.1f} tokens per "
        f"sentence, distinct words {100 * en['distinct_share']:.0f}% of a batch's tokens): what to expect on real "
        "text. It is not one of the targets.",
        "",
        "## Workflow",
        f"- dry run of the thesis config, all tasks (`snakemake -n` in a copy of the project, {dry['jobs']} jobs): "
        f"**{dry['s']:.1f} s** (runs: {', '.join(f'{x:.1f}' for x in dry['all_s'])} s).",
        f"- {slurm_line}",
        *demo_lines,
        "",
        "## Memory (separate processes, peak RSS)",
        "| stage | demo scale | 10x | growth |",
        "| --- | --- | --- | --- |",
    ]
    for stage, name in (("sample", "sampling (`sample_shard`, demo settings)"),
                        ("logits", "teacher logits (`write_transfer`, demo settings)")):
        a, b = mem[f"{stage}_x1"], mem[f"{stage}_x10"]
        lines.append(f"| {name} | {a['peak_rss_mb']:.0f} MB ({a['n']} sentences) | {b['peak_rss_mb']:.0f} MB "
                     f"({b['n']}) | {b['peak_rss_mb'] / a['peak_rss_mb']:.2f}x |")
    lines += [
        "",
        "Both stream: sampling writes resumable chunks (demo: 100 sentences) and concatenates them row group by "
        f"row group; logits tokenise, run and write {kd_logits.STREAM_BATCHES} batches at a time (demo: "
        f"{kd_logits.STREAM_BATCHES * DEMO['logits']['batch_size']} sentences). Neither holds a whole-shard tensor; "
        "what remains is the model, torch itself and one batch's activations.",
        "",
        "## Targets (this CPU, medians)",
        "| target | measured | result |",
        "| --- | --- | --- |",
        *[f"| {t} | {v} | {verdict(ok)} |" for t, v, ok in targets],
        "",
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
        "| work (one task) | weights (no embeddings) | FLOPs per token | tokens | compute-bound | step floor | "
        "estimate |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in gpu["rows"].items():
        lines.append(f"| {name} | {r['weights'] / 1e6:.1f}M | {r['flops'] / 1e6:.0f} M | {r['tokens'] / 1e6:,.0f} M | "
                     f"{r['compute_s'] / 60:.1f} min | {r['overhead_s'] / 60:.1f} min | "
                     f"**{r['estimate_s'] / 60:.0f} min** |")
    lines += [
        "",
        "Decoding GPT-2 medium, per step: memory-bound time (all bf16 weights read once plus every row's KV cache "
        "at the mean context), compute-bound time, and the launch floor; the step takes the largest:",
        "",
        "| GPU, batch | memory-bound | compute-bound | floor | tokens/s | one task's sampling |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for k, v in gpu["decode"].items():
        lines.append(f"| {k} | {v['bw_step_ms']:.2f} ms | {v['flop_step_ms']:.2f} ms | {v['overhead_ms']:.0f} ms | "
                     f"{v['tokens_per_s']:,.0f} | {v['task_min']:.1f} min |")
    lines += [
        "",
        f"Batch {gpu['auto_batch']} is what `runtime.sampling_batch_size` picks from ~72 GB free (bf16 KV cache for "
        f"{THESIS['augment']['max_length'] + 1} positions). At the thesis' batch of 256 a step is bound by launches "
        "and weight reads; at a few thousand rows it is compute-bound, where the GPU is efficient. The thesis needed "
        "~17 h on 4 GPUs to sample one task with d-bert's sampler, over an hour on 4 GPUs for teacher logits and "
        "15-26 h per BERT_S distillation; these estimates say minutes on one GPU (the students are bound by "
        "per-step overheads: bigger batches or CUDA graphs would cut them further).",
        "",
        "GPU paths (all in `kdprobe.runtime`, tested on CPU with CUDA mocked): bf16 autocast on bf16-capable GPUs "
        "(default on for sampling and logits, opt-in with `bf16: true` for training), `torch.inference_mode` for "
        "sampling and logits, length-grouped batches everywhere, pinned host memory with non-blocking copies, optional "
        "`torch.compile` (`compile: true` in a section), and a sampling batch size from free GPU memory when "
        "`augment.batch_size` is `auto` (or absent).",
        "",
        "## Reproduce",
        "```bash",
        "make setup                                     # once: .venv",
        ".venv/bin/python benchmarks/run.py            # full run, demo included; writes docs/performance.md",
        ".venv/bin/python benchmarks/run.py --demo-run /path/to/finished/demo   # reuse a demo run",
        ".venv/bin/python benchmarks/run.py --quick    # smaller sizes, no demo run",
        "```",
        f"This run: `{res['command']}` ({res['elapsed_s'] / 60:.1f} min). Raw numbers: `{res['json']}`.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
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
    parser.add_argument("--only", help="comma-separated sections (sampling,logits,students,workflow,memory)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_main(args)

    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    sizes = dict(SIZES["quick" if args.quick else "full"])
    if args.repeats:
        sizes["repeats"] = args.repeats
    only = set(args.only.split(",")) if args.only else None
    res = {"date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "machine": machine(), "sizes": sizes,
           "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
           "command": " ".join([".venv/bin/python", *sys.argv])}
    peak = Peak()
    with tempfile.TemporaryDirectory(prefix="kdprobe-bench-") as tmp_name:
        tmp = Path(tmp_name)
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
        from transformers import AutoTokenizer

        gpt2_fast = AutoTokenizer.from_pretrained(work / "gpt2")
        bert_fast = AutoTokenizer.from_pretrained(work / "bert")
        sentences = bm.realistic_sentences(corpus, max(sizes["logit_sents"], sizes["bert_s_sents"],
                                                       sizes["lstm_s_sents"]), seed=1)
        (work / "sentences.json").write_text(json.dumps(bm.realistic_sentences(corpus, 600, seed=2)))

        def want(section):
            return only is None or section in only

        if want("sampling"):
            log("sampling")
            res["sampling"] = bench_sampling(gpt2, gpt2_fast, sizes, peak)
        if want("logits"):
            log("teacher logits")
            res["logits"] = bench_logits(work / "bert", bert_fast, sentences[: sizes["logit_sents"]], sizes, peak,
                                         tmp)
        if want("students"):
            res["students"] = {}
            for kind, key in (("bert_s", "bert_s_sents"), ("lstm_s", "lstm_s_sents")):
                log(kind)
                res["students"][kind] = bench_student(kind, work / "bert", sentences[: sizes[key]], sizes, peak,
                                                      args.student_threads or args.threads)
            log("lstm_s on real English")
            res["students"]["lstm_s_english"] = bench_student(
                "lstm_s", work / "bert", bm.english_sentences(sizes["lstm_s_sents"], seed=1), sizes, peak,
                args.student_threads or args.threads)
        res["peak_flops"], res["peak_samples"] = peak.value if peak.samples else matmul_flops(), list(peak.samples)
        if not peak.samples:
            res["peak_samples"] = [res["peak_flops"]]
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
            res["memory"] = bench_memory(work)
        res["gpu"] = gpu_estimates()
    res["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    res["elapsed_s"] = time.perf_counter() - started
    json_path = args.json or args.out.with_suffix(".json")
    res["json"] = str(json_path.relative_to(ROOT)) if json_path.is_relative_to(ROOT) else str(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(res, indent=1, default=str))
    if only is None:
        text = report(res, args)
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

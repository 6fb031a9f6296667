#!/usr/bin/env python
"""kdprobe on one GPU at the thesis sizes: its speed beside what a researcher would use today, and the correctness
of its GPU paths, in one run of under 8 minutes on one H100/H200-class GPU.

    .venv/bin/python benchmarks/gpu_check.py                                  # on a GPU: docs/gpu.md, docs/gpu.json
    .venv/bin/python benchmarks/gpu_check.py --cpu-smoke --out /tmp/smoke.md  # every code path, tiny, on the CPU

Models: GPT-2 medium and BERT-large configurations (24 layers, hidden 1024, 16 heads), randomly initialised by
`bench_models` (nothing is downloaded; GPT-2 with the benchmark's realistic length mix), with the demo's scratch
tokenizers; the students as config/config.yaml defines them (LSTM_S on random word vectors in place of word2vec).

Speed, kdprobe beside `peers.py` on the same model, sentences, batch size and precision, alternating, medians of
`repeats` runs after one untimed run each, peak GPU memory of each side (`torch.cuda.max_memory_allocated`):
sampling (`augment.sample.sample_rows` against `generate`) at `augment.batch_size` and at the automatic batch size
(`augment.memory.resolve_sampling_batch`), teacher logits (`models.infer_logits` against a `DataCollatorWithPadding`
loop; `transfer.write_transfer` end to end on its own), and a BERT_S and an LSTM_S epoch slice (`training.fit` on
`distil.DistilLoss` against Hugging Face BERT and a packed `nn.LSTM` loop).

Checks, each with an explicit bound (`BOUNDS`), run first: bf16 against fp32 next-token distributions of the
sampler's decoder, and the fp32 decoder against the model's own forward; bf16 against fp32 teacher logits; LSTM_S
through cuDNN against the CPU kernel (`students.bilstm`) on the same weights and batch, outputs and gradients; one
resumable training step of each student saved and restored bit-exactly, and resumed against uninterrupted training.

Exits non-zero without a GPU (it never runs in CI), when a check fails, when a section raises, or when the time
budget (`--budget-s`) ran out before every section ran. `--cpu-smoke` runs every code path (peers and checks
included) at tiny sizes on the CPU in under a minute, writes only to the `--out` it must be given, and labels its
page as a smoke run: its figures test this script and measure nothing (`tests/test_gpu_check.py`). The raw numbers
go to a JSON file beside the page (`docs/gpu.json`), which is rendered from them.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from bench_env import ROOT, STARTED  # noqa: E402  (first: Hugging Face offline, src/ on the path, the budget's clock)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import bench_models as bm  # noqa: E402
import peers  # noqa: E402
from bench_common import (THESIS, cell, command_line, fmt, log, md_row, md_table, median, now,  # noqa: E402
                          paired_ratio, shown, software, software_line, thesis_student, typed_student)
import kdprobe.transfer as kd_transfer  # noqa: E402
from kdprobe import runtime  # noqa: E402
import kdprobe.augment.sample as kd_sampling  # noqa: E402
from kdprobe.augment.memory import resolve_sampling_batch  # noqa: E402
from kdprobe.batching import PackedIds  # noqa: E402
from kdprobe.distil import DistilLoss  # noqa: E402
from kdprobe.io import write_json, write_text  # noqa: E402
from kdprobe.losses import distillation_loss  # noqa: E402
from kdprobe.models import infer_logits  # noqa: E402
from kdprobe.students import build_student  # noqa: E402
from kdprobe.students.testing import synthetic_sentences  # noqa: E402
from kdprobe.training import Batches, EpochEnd, Resume, fit  # noqa: E402

DEFAULT_OUT = ROOT / "docs" / "gpu.md"
BUDGET_S = 480
N_CLASSES = 2
SIZES = {
    # the thesis sizes on one GPU; student slices at the thesis batch sizes (None: config/config.yaml's)
    "gpu": dict(gpt2=dict(layers=24, hidden=1024, heads=16, vocab=50257),
                bert=dict(layers=24, hidden=1024, heads=16, intermediate=4096, vocab=30522),
                corpus="demo", max_length=128, configured_batch=None, configured_batches=2, auto_rows=None,
                logits_batch=None, logit_sents=16384, bert_s_steps=100, lstm_s_steps=200, student_batch=None, repeats=2,
                check_rows=64, check_sents=1024, matmul=8192, students={}),
    # every code path in seconds: tiny models (vocabularies larger than the tokenizers', as at the thesis sizes),
    # short samples, small batches
    "smoke": dict(gpt2=dict(layers=2, hidden=64, heads=4, vocab=1024),
                  bert=dict(layers=2, hidden=64, heads=4, intermediate=128, vocab=512),
                  corpus="synthetic", max_length=24, configured_batch=16, configured_batches=2, auto_rows=48,
                  logits_batch=32, logit_sents=128, bert_s_steps=3, lstm_s_steps=3, student_batch=16, repeats=1,
                  check_rows=8, check_sents=64, matmul=256,
                  students={"bert_s": dict(layers=2, hidden=32, intermediate=64, heads=2),
                            "lstm_s": dict(hidden=32, fc=32, embedding_dim=16)}),
}
#: Pass bounds of the checks. At these sizes on a CPU (bf16 matmuls accumulating in fp32, as a GPU's do), bf16
#: against fp32 measured: total variation max 0.0056, mean 0.0034 (4 rows x 48 positions); teacher logits max
#: |diff| 0.019 and mean 0.0064 of the largest |logit| (256 sentences); the fp32 decoder 5e-7 from the model.
BOUNDS = {
    "sampling_tv_max": 0.05,        # total variation, bf16 vs fp32 next-token distribution, worst row and position
    "sampling_tv_mean": 0.02,       # ... mean over rows and positions
    "decoder_rel": 1e-4,            # fp32 decoder vs the model's forward: max |diff| / max |logit|
    "logits_max_rel": 0.08,         # bf16 vs fp32 teacher logits: max |diff| / max |fp32 logit|
    "logits_mean_rel": 0.02,        # ... mean |diff| / max |fp32 logit|
    "logits_argmax": 1.0,           # argmax agreement on the sentences whose fp32 margin is > 2 x max |diff|
    "lstm_rel_ieee": 1e-4,          # cuDNN (IEEE fp32) vs CPU kernel: max |diff| / max |value|, outputs and gradients
    "lstm_rel_default": 2e-2,       # ... with cuDNN's default fp32 precision for RNNs (TF32 on Ampere and later)
    "resume_rel": 1e-2,             # resumed vs uninterrupted weights (L2), relative to how far training moved
                                    # them, when the kernels are not deterministic run to run (else: bit for bit)
}


# ------------------------------------------------------------------------------------------------ the device
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def release(device: torch.device) -> None:
    """Hand cached blocks back, so the next measurement (and the automatic batch size) sees the free memory."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device: torch.device) -> float | None:
    """Peak allocated GPU memory (MiB) since the last `reset_peak`; None on a CPU."""
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def matmul_peak(device: torch.device, n: int) -> dict:
    """Dense matmul throughput of the device, the yardstick for effective FLOP/s: bf16 on a GPU, fp32 on a CPU."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    sync(device)
    t = time.perf_counter()
    for _ in range(30):
        a @ b
    sync(device)
    elapsed = time.perf_counter() - t
    return {"dtype": str(dtype).removeprefix("torch."), "n": n, "flops_per_s": 30 * 2 * n**3 / elapsed}


@contextlib.contextmanager
def cpu_bf16(device: torch.device):
    """bf16 autocast where kdprobe's own (`runtime.autocast`) does not reach: on a CPU, which kdprobe runs in fp32,
    so that a smoke run compares real bf16 arithmetic too. On a GPU, kdprobe's own autocast applies."""
    with torch.autocast("cpu", dtype=torch.bfloat16) if device.type == "cpu" else contextlib.nullcontext():
        yield


@contextlib.contextmanager
def rnn_fp32_precision(value: str | None):
    """cuDNN's fp32 precision for RNNs inside the block ('ieee' or 'tf32'; None: leave it as it is)."""
    rnn = getattr(torch.backends.cudnn, "rnn", None)
    if value is None or rnn is None or not hasattr(rnn, "fp32_precision"):
        yield
        return
    before = rnn.fp32_precision
    rnn.fp32_precision = value
    try:
        yield
    finally:
        rnn.fp32_precision = before


def default_rnn_precision() -> str:
    rnn = getattr(torch.backends.cudnn, "rnn", None)
    return str(getattr(rnn, "fp32_precision", "tf32" if torch.backends.cudnn.allow_tf32 else "ieee"))


def alternate(device: torch.device, repeats: int, runs: dict[str, Callable[[int], Callable[[], dict]]]) -> dict:
    """Time each of `runs` side by side: `runs[name](r)` prepares run r (untimed) and returns the call to time,
    which returns its counts (sentences, tokens, ...). One untimed call each first, then `repeats` rounds with the
    names in turn. Per name: the timed runs (`s` and counts) and the peak GPU memory (MiB) of its calls; a side
    that runs out of GPU memory is recorded as such (`oom`) and not run again."""
    out = {name: {"runs": [], "peak_mib": None, "oom": None} for name in runs}
    for r in range(-1, repeats):
        for name, make in runs.items():
            if out[name]["oom"]:
                continue
            release(device)
            go = make(r)
            reset_peak(device)
            sync(device)
            t = time.perf_counter()
            try:
                counts = go()
            except torch.cuda.OutOfMemoryError as err:
                out[name]["oom"] = str(err).splitlines()[0]
                log(f"  {name}: out of GPU memory ({out[name]['oom']})")
                del go
                release(device)
                continue
            sync(device)
            elapsed = time.perf_counter() - t
            peak = peak_mib(device)
            if peak is not None:
                out[name]["peak_mib"] = max(out[name]["peak_mib"] or 0.0, peak)
            if r >= 0:
                out[name]["runs"].append({"s": elapsed, **counts})
            log(f"  {name} {'warm-up' if r < 0 else f'{r + 1}/{repeats}'}: {elapsed:.2f} s, "
                + ", ".join(f"{v / elapsed:,.1f} {k}/s" for k, v in counts.items() if k in ("sentences", "tokens")))
    for name, side in out.items():
        for unit in ("sentences", "tokens", "flops"):
            if side["runs"] and unit in side["runs"][0]:
                side[f"{unit}_per_s"] = median([x[unit] / x["s"] for x in side["runs"]])
    return out


def ratio(result: dict, ours: str, peer: str, unit: str = "sentences") -> float | None:
    """Median over rounds of ours/peer throughput (each pair ran one after the other); None if a side has no runs."""
    return paired_ratio(result[ours]["runs"], result[peer]["runs"], unit)


# ---------------------------------------------------------------------------------------------- models, data
@dataclass
class Setup:
    gpt2: torch.nn.Module
    gpt2_tok: Any
    bert: torch.nn.Module
    bert_tok: Any
    bert_dir: Path
    sentences: list[str]
    tmp: Path


def build(sizes: dict, device: torch.device, tmp: Path) -> Setup:
    """The models (on the CPU; sections move them), tokenizers and sentences of the run."""
    if sizes["corpus"] == "demo":
        corpus = bm.demo_corpus(tmp / "demo")
    else:
        corpus, _ = synthetic_sentences(2000, seed=0)
    bert_tok, gpt2_tok = bm.demo_tokenizers(corpus)
    log(f"tokenizers: BERT WordPiece {len(bert_tok)}, GPT-2 byte-level BPE {len(gpt2_tok)} entries")
    gpt2 = bm.length_shaped_gpt2(gpt2_tok, max_length=sizes["max_length"], device=device, **sizes["gpt2"]).cpu()
    bert = bm.random_bert(bert_tok, n_classes=N_CLASSES, **sizes["bert"])
    bert_dir = tmp / "bert"
    bert.save_pretrained(bert_dir)
    bert_tok.save_pretrained(bert_dir)
    student_sents = max(sizes[f"{k}_steps"] * student_batch(k, sizes) for k in ("bert_s", "lstm_s"))
    sentences = bm.realistic_sentences(corpus, max(sizes["logit_sents"], sizes["check_sents"], student_sents), seed=1)
    log(f"models: GPT-2 {describe(gpt2)}, BERT {describe(bert)}; {len(sentences)} sentences")
    return Setup(gpt2, gpt2_tok, bert, bert_tok, bert_dir, sentences, tmp)


def describe(model: torch.nn.Module) -> str:
    c = model.config
    return (f"{c.num_hidden_layers} x {c.hidden_size}, {c.num_attention_heads} heads, vocabulary {c.vocab_size:,}, "
            f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M weights")


def student_batch(kind: str, sizes: dict) -> int:
    return int(sizes["student_batch"] or THESIS["students"][kind]["batch_size"])


def student_settings(kind: str, sizes: dict) -> dict:
    """The thesis student section at the run's batch size (a smoke run shrinks the model too)."""
    return thesis_student(kind, batch_size=student_batch(kind, sizes), **sizes["students"].get(kind, {}))


def student_ids(model, sentences: list[str], bert_tok) -> PackedIds:
    """The student's input ids, tokenised once as `distil` does: BERT_S the teacher's ids, LSTM_S its words."""
    if model.reads_teacher_ids:
        ids = bert_tok(sentences, truncation=True, max_length=model.max_length)["input_ids"]
        return PackedIds([model.fit_teacher_ids(np.asarray(x)) for x in ids])
    return PackedIds([np.asarray(x, np.int32) for x in model.tokenize(sentences)])


def sampling_settings(sizes: dict) -> dict:
    aug = THESIS["augment"]
    return {"max_length": sizes["max_length"], "temperature": float(aug["temperature"]), "top_k": int(aug["top_k"])}


# ---------------------------------------------------------------------------------------------------- checks
def check(name: str, measured: str, bound: str, ok: bool, **values) -> dict:
    return {"name": name, "measured": measured, "bound": bound, "pass": bool(ok), "values": values}


def rel(diff: float, scale: float) -> float:
    return diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf"))


def check_sampling(gpt2, eos: int, settings: dict, rows: int, device: torch.device) -> list[dict]:
    """The sampler's GPT-2 decoder in bf16 and in fp32, fed the same tokens (drawn by `augment.sample.next_tokens` from
    the fp32 logits, every position to `max_length`, past an end token too): total variation between their full
    next-token distributions (the thesis samples from them: temperature 1, no top-k); and the fp32 decoder against
    the model's own forward over the whole sequences."""
    max_length, temperature, top_k = settings["max_length"], settings["temperature"], settings["top_k"]
    kd_dtype = runtime.autocast_dtype(device, settings, kind="inference")
    model = gpt2.to(device)  # outside inference mode: the weights stay ordinary tensors for the later sections
    with torch.inference_mode():
        decoders = [kd_sampling.Gpt2Decoder(model, rows, max_length, device, dtype)
                    for dtype in (torch.float32, torch.bfloat16)]
        generator = torch.Generator(device=device).manual_seed(0)
        feed = torch.full((rows,), eos, dtype=torch.long, device=device)
        fed, fp32_logits, tv = [], [], []
        for _ in range(max_length):
            full, half = (d.step(feed) for d in decoders)
            p, q = (torch.softmax(x.float(), dim=-1) for x in (full, half))
            tv.append(0.5 * (p - q).abs().sum(-1))
            fed.append(feed)
            fp32_logits.append(full)
            feed = kd_sampling.next_tokens(full, temperature, top_k, generator)
        tv = torch.stack(tv)
        reference = model(input_ids=torch.stack(fed, 1)).logits.float()
        decoder_err = float((torch.stack(fp32_logits, 1) - reference).abs().max())
        scale = float(reference.abs().max())
        del decoders, reference, fp32_logits
    gpt2.cpu()
    tv_max, tv_mean = float(tv.max()), float(tv.mean())
    worst = int(tv.max(dim=1).values.argmax())
    where = "kdprobe samples in bf16 here" if kd_dtype == torch.bfloat16 else (
        "kdprobe samples in fp32 on this device; bf16 forced for the comparison")
    return [
        check("sampling: bf16 vs fp32 next-token distributions",
              f"total variation max {tv_max:.2e} (position {worst}), mean {tv_mean:.2e}; {rows} rows x "
              f"{max_length} positions; {where}",
              f"max <= {BOUNDS['sampling_tv_max']}, mean <= {BOUNDS['sampling_tv_mean']}",
              tv_max <= BOUNDS["sampling_tv_max"] and tv_mean <= BOUNDS["sampling_tv_mean"],
              tv_max=tv_max, tv_mean=tv_mean, worst_position=worst, kdprobe_dtype=str(kd_dtype)),
        check("sampling: fp32 decoder vs the model's forward",
              f"max |logit diff| {decoder_err:.2e} = {rel(decoder_err, scale):.2e} of max |logit| {scale:.3g}",
              f"<= {BOUNDS['decoder_rel']:g} of max |logit|", rel(decoder_err, scale) <= BOUNDS["decoder_rel"],
              max_abs=decoder_err, scale=scale),
    ]


def check_logits(bert, tok, sentences: list[str], batch: int, max_length: int, device: torch.device) -> list[dict]:
    """`models.infer_logits` with bf16 autocast (`logits.bf16: true`, an opt-in) against fp32, same sentences."""
    ids = tok(sentences, truncation=True, max_length=max_length)["input_ids"]
    model = bert.to(device)
    full = infer_logits(model, ids, batch, tok.pad_token_id, device, {"bf16": False})
    with cpu_bf16(device):  # one lane: the autocast context is the calling thread's
        half = infer_logits(model, ids, batch, tok.pad_token_id, device, {"bf16": True}, lanes=runtime.Lanes(1))
    bert.cpu()
    diff = np.abs(half - full)
    max_abs, mean_abs = float(diff.max()), float(diff.mean())
    top2 = np.sort(full, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 2 * max_abs  # argmax cannot flip within the measured error elsewhere
    agree_all = float((full.argmax(1) == half.argmax(1)).mean())
    agree_clear = float((full.argmax(1) == half.argmax(1))[clear].mean()) if clear.any() else 1.0
    scale = float(np.abs(full).max())
    max_rel, mean_rel = rel(max_abs, scale), rel(mean_abs, scale)
    return [check(
        "teacher logits: bf16 vs fp32",
        f"max |diff| {max_abs:.2e}, mean {mean_abs:.2e} ({max_rel:.2e} and {mean_rel:.2e} of max |logit| "
        f"{scale:.3g}); argmax agreement {agree_all:.4f} of {len(ids)} sentences, {agree_clear:.4f} of the "
        f"{int(clear.sum())} whose fp32 margin exceeds 2 x max |diff|",
        f"max <= {BOUNDS['logits_max_rel']}, mean <= {BOUNDS['logits_mean_rel']} of max |logit|; agreement "
        f">= {BOUNDS['logits_argmax']} where the margin is clear",
        max_rel <= BOUNDS["logits_max_rel"] and mean_rel <= BOUNDS["logits_mean_rel"]
        and agree_clear >= BOUNDS["logits_argmax"],
        max_abs=max_abs, mean_abs=mean_abs, scale=scale, max_rel=max_rel, mean_rel=mean_rel,
        argmax_agreement=agree_all, argmax_agreement_clear=agree_clear, clear=int(clear.sum()), sentences=len(ids))]


def lstm_device_logits(model, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """LSTM_S logits as training runs them on `input_ids`' device: on a GPU `forward` itself (packed sequences
    through `nn.LSTM`, i.e. cuDNN); on a CPU, which `forward` sends to `bilstm`, the same packed `nn.LSTM` route
    (`_packed_final_states`) as a stand-in, so that a smoke run compares two implementations as well."""
    if input_ids.device.type == "cuda":
        return model(input_ids, mask)
    final = model._packed_final_states(input_ids, mask.sum(dim=1).clamp_min(1))
    return model.out(model.dropout(torch.relu(model.fc(final))))


def lstm_pass(model, batch: dict, weights: torch.Tensor, forward) -> tuple[torch.Tensor, dict]:
    """Logits and the gradients of sum(logits * weights) for every trainable parameter, on the CPU."""
    device = next(model.parameters()).device
    model.zero_grad(set_to_none=True)
    out = forward(model, batch["input_ids"].to(device), batch["attention_mask"].to(device))
    (out * weights.to(device)).sum().backward()
    return out.detach().cpu(), {n: p.grad.detach().cpu() for n, p in model.named_parameters() if p.requires_grad}


def check_lstm(sentences: list[str], sizes: dict, device: torch.device) -> list[dict]:
    """LSTM_S on the device (cuDNN on a GPU) against the CPU kernel (`students.bilstm`, which `forward` runs on a
    CPU), the same weights and batch: logits and every trainable parameter's gradient. In training mode (cuDNN's
    backward needs it) with the head's dropout off, so both sides compute the same function."""
    settings = student_settings("lstm_s", sizes)
    batch_sents = sentences[: int(settings["batch_size"])]
    runtime.set_seed(0)
    cpu_model = build_student("lstm_s", settings, N_CLASSES, {"sentences": sentences})
    batch = cpu_model.encode(batch_sents)
    weights = torch.randn(len(batch_sents), N_CLASSES, generator=torch.Generator().manual_seed(1))
    dev_model = copy.deepcopy(cpu_model).to(device)
    for model in (cpu_model, dev_model):
        model.train()
        model.dropout.eval()
    ref_out, ref_grads = lstm_pass(cpu_model, batch, weights, lambda m, i, a: m(i, a))
    default = default_rnn_precision()
    results = []
    for label, precision, bound in (("IEEE fp32", "ieee", BOUNDS["lstm_rel_ieee"]),
                                    (f"cuDNN's default fp32 precision ({default}"
                                     + ("" if device.type == "cuda" else "; no effect on a CPU") + ")", None,
                                     BOUNDS["lstm_rel_default"])):
        with rnn_fp32_precision(precision if device.type == "cuda" else None):
            out, grads = lstm_pass(dev_model, batch, weights, lstm_device_logits)
        out_rel = rel(float((out - ref_out).abs().max()), float(ref_out.abs().max()))
        grad_rel = {n: rel(float((g - ref_grads[n]).abs().max()), float(ref_grads[n].abs().max()))
                    for n, g in grads.items()}
        worst = max(grad_rel, key=grad_rel.get)
        side = "cuDNN" if device.type == "cuda" else "packed nn.LSTM on the CPU (stand-in for cuDNN)"
        results.append(check(
            f"LSTM_S: {side}, {label}, vs the CPU kernel",
            f"logits {out_rel:.2e}, gradients up to {grad_rel[worst]:.2e} ({worst}) of their max |value|; batch "
            f"of {len(batch_sents)}, up to {int(batch['attention_mask'].sum(1).max())} tokens",
            f"<= {bound:g}", out_rel <= bound and grad_rel[worst] <= bound,
            logits_rel=out_rel, grad_rel=grad_rel, precision=precision or default))
    return results


def to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return copy.deepcopy(obj)


def identical(a, b) -> bool:
    """Bit for bit the same (nested dicts and lists of tensors and plain values)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
                and a.shape == b.shape and torch.equal(a.cpu(), b.cpu()))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(identical(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b))
    return a == b


def distance(a: dict, b: dict) -> float:
    """L2 norm of the difference of two state dicts' float tensors."""
    return float(sum(float((a[k].double() - b[k].double()).square().sum()) for k in a if a[k].is_floating_point())
                 ** 0.5)


class _Stop(Exception):
    pass


def resume_verdict(exact: bool, deterministic: bool, rel_diff: float) -> tuple[bool, str]:
    """Whether resumed training passes: bit for bit where the kernels are deterministic run to run (two identical
    runs agree bit for bit), else within `BOUNDS['resume_rel']` of the training step."""
    if exact:
        return True, "resumed = uninterrupted, bit for bit"
    if deterministic:
        return False, "the kernels are deterministic here, yet resumed != uninterrupted: a resume bug"
    ok = rel_diff <= BOUNDS["resume_rel"]
    return ok, ("not bit-exact: the kernels are not deterministic run to run (two identical runs differ), so the "
                f"resumed run can only be as close as the kernels allow; difference {rel_diff:.2e} of the step")


def check_resume(kind: str, setup: Setup, sizes: dict, device: torch.device) -> list[dict]:
    """One training step saved and restored: `training.fit` over 2 epochs of one batch (one optimiser step
    each), as `distil` drives it. An interrupted run stops after epoch 1's state is saved; the state file must
    hold bit for bit the model, optimiser and RNG states of that moment. Resumed from it, the run must end where
    an uninterrupted one ends (see `resume_verdict`); each is run twice to tell nondeterministic kernels apart."""
    settings = {**student_settings(kind, sizes), "epochs": 2, "save_every_steps": 0}
    sentences = setup.sentences[: int(settings["batch_size"])]
    teacher_logits = torch.randn(len(sentences), N_CLASSES, generator=torch.Generator().manual_seed(2))
    loss_settings, optimizer_settings, training = typed_student(kind, settings)
    state_path = setup.tmp / f"resume-{kind}" / "state.pt"
    state_path.parent.mkdir(parents=True, exist_ok=True)
    captured: dict[str, Any] = {}

    def run(path: Path | None, interrupt: bool = False) -> dict:
        runtime.set_seed(0)
        model = build_student(kind, settings, N_CLASSES, {"teacher_dir": str(setup.bert_dir), "sentences": sentences})
        ids = student_ids(model, sentences, setup.bert_tok)
        model.to(device)
        captured.setdefault("initial", to_cpu(model.state_dict()))
        optimizer = optimizer_settings.build(model)
        loss = DistilLoss(model, ids, teacher_logits, loss_settings, device, training.numerics)

        def stop(epoch, row):
            if interrupt:
                captured.update(model=to_cpu(model.state_dict()), optimizer=to_cpu(optimizer.state_dict()),
                                rng=to_cpu(runtime.rng_state()))
                raise _Stop

        try:
            fit(model, Batches(ids.lengths, loss), optimizer, training, device=device,
                resume=Resume(path, settings, identity={"kind": kind}), callbacks=[EpochEnd(stop)],
                desc=f"resume check {kind}")
        except _Stop:
            pass
        return to_cpu(model.state_dict())

    uninterrupted = [run(None), run(None)]
    state_path.unlink(missing_ok=True)
    run(state_path, interrupt=True)
    saved = torch.load(state_path, map_location="cpu", weights_only=True)
    restored = all(identical(saved[k], captured[k]) for k in ("model", "optimizer", "rng"))
    resumed = []
    for i in range(2):  # each from its own copy of step 1's state (a resumed run saves over it)
        copy_path = state_path.with_suffix(f".{i}.pt")
        shutil.copyfile(state_path, copy_path)
        resumed.append(run(copy_path))
    exact = identical(resumed[0], uninterrupted[0])
    deterministic = identical(*uninterrupted) and identical(*resumed)
    step = distance(uninterrupted[0], captured["initial"])
    rel_diff = rel(distance(resumed[0], uninterrupted[0]), step)
    noise = rel(max(distance(*uninterrupted), distance(*resumed)), step)
    ok, verdict = resume_verdict(exact, deterministic, rel_diff)
    name = kind.upper()
    return [
        check(f"{name}: training state saved and restored", "model, optimiser and RNG states in the state file "
              + ("equal" if restored else "DIFFER from") + " those in memory when it was saved",
              "bit for bit", restored),
        check(f"{name}: one step resumed vs uninterrupted", f"{verdict}; two identical runs differ by {noise:.2e}",
              f"bit for bit where the kernels are deterministic, else <= {BOUNDS['resume_rel']} of the step", ok,
              exact=exact, deterministic=deterministic, rel_diff=rel_diff, run_to_run=noise),
    ]


def run_checks(s: Setup, sizes: dict, device: torch.device) -> dict:
    settings = sampling_settings(sizes)
    out: dict[str, Any] = {"checks": [], "peak_mib": {}}
    parts = [
        ("sampling", lambda: check_sampling(s.gpt2, s.gpt2_tok.eos_token_id, settings, sizes["check_rows"], device)),
        ("logits", lambda: check_logits(s.bert, s.bert_tok, s.sentences[: sizes["check_sents"]],
                                        logits_batch(sizes), THESIS["logits"]["max_length"], device)),
        ("lstm_s", lambda: check_lstm(s.sentences, sizes, device)),
        ("resume bert_s", lambda: check_resume("bert_s", s, sizes, device)),
        ("resume lstm_s", lambda: check_resume("lstm_s", s, sizes, device)),
    ]
    for name, part in parts:
        log(f"check {name}")
        release(device)
        reset_peak(device)
        try:
            results = part()
        except Exception as err:  # reported as a failed check; the other checks still run
            log(traceback.format_exc())
            results = [check(f"{name}: raised", f"`{type(err).__name__}: {err}`", "runs", False)]
        out["peak_mib"][name] = peak_mib(device)
        for c in results:
            log(f"  {'PASS' if c['pass'] else 'FAIL'} {c['name']}: {c['measured']}")
        out["checks"] += results
    return out


# ----------------------------------------------------------------------------------------------------- speed
def bench_sampling(s: Setup, sizes: dict, device: torch.device, peak: dict) -> dict:
    settings = sampling_settings(sizes)
    max_length, eos = settings["max_length"], s.gpt2_tok.eos_token_id
    dtype = runtime.autocast_dtype(device, settings, kind="inference")
    model = s.gpt2.to(device)
    cfg = model.config
    configured = int(sizes["configured_batch"] or THESIS["augment"]["batch_size"])
    release(device)
    auto = resolve_sampling_batch({**settings, "batch_size": "auto"}, device, layers=cfg.n_layer, hidden=cfg.n_embd,
                                  vocab=cfg.vocab_size, max_length=max_length,
                                  value_bytes=2 if dtype is not None else 4)
    free = runtime.free_memory(device)
    peer_model = copy.deepcopy(model).to(dtype) if dtype is not None else model  # generate in kdprobe's precision
    out = {"dtype": str(dtype or torch.float32).removeprefix("torch."), "configured": configured, "auto": auto,
           "free_gib": free / 2**30 if free is not None else None, "batches": {}}

    def counts(samples):
        return {"sentences": len(samples), "tokens": sum(min(len(x) + 1, max_length) for x in samples),
                "flops": bm.sampled_flops(model, samples, max_length)}

    for label, batch, n in (("configured", configured, configured * sizes["configured_batches"]),
                            ("auto", auto, min(auto, sizes["auto_rows"] or auto))):
        log(f"sampling, {label} batch {batch}: {n} rows")
        result = alternate(device, sizes["repeats"], {
            "kdprobe": lambda r: lambda: counts(kd_sampling.sample_rows(
                model, n, seed=100 + r, chunk=0, bos=eos, eos=eos, max_length=max_length, batch_size=batch,
                temperature=settings["temperature"], top_k=settings["top_k"], device=device, settings=settings)),
            "generate": lambda r: lambda: counts(peers.hf_generate(
                peer_model, n, batch, bos=eos, eos=eos, max_new_tokens=max_length,
                temperature=settings["temperature"], top_k=settings["top_k"], device=device, seed=200 + r)),
        })
        result.update(batch=batch, rows=n, ratio=ratio(result, "kdprobe", "generate", "tokens"),
                      peak_fraction=(result["kdprobe"].get("flops_per_s", 0.0) / peak["flops_per_s"]))
        out["batches"][label] = result
    s.gpt2.cpu()
    a, c = out["batches"]["auto"]["kdprobe"], out["batches"]["configured"]["kdprobe"]
    out["batch_effect"] = a["tokens_per_s"] / c["tokens_per_s"] if a["runs"] and c["runs"] else None
    return out


def logits_batch(sizes: dict) -> int:
    return int(sizes["logits_batch"] or THESIS["logits"]["batch_size"])


def bench_logits(s: Setup, sizes: dict, device: torch.device) -> dict:
    settings = {"batch_size": logits_batch(sizes), "max_length": int(THESIS["logits"]["max_length"])}
    batch, max_length, tok = settings["batch_size"], settings["max_length"], s.bert_tok
    sentences = s.sentences[: sizes["logit_sents"]]
    model = s.bert.to(device)

    def kdprobe(r):
        def go():  # what `write_transfer` does with a chunk, without the files: tokenise, length-sorted batches
            ids = tok(sentences, truncation=True, max_length=max_length, return_attention_mask=False,
                      return_token_type_ids=False)["input_ids"]
            infer_logits(model, ids, batch, tok.pad_token_id, device, settings)
            return {"sentences": len(ids), "tokens": sum(map(len, ids))}
        return go

    def peer(r):
        def go():
            with runtime.autocast(device, settings, kind="inference"):  # kdprobe's precision (the settings' own)
                out = peers.dynamic_padding_logits(model, tok, sentences, batch, max_length, device)
            return {"sentences": len(out)}
        return go

    def end_to_end(r):  # as the workflow's logits job: model read from disk, tokenised, run, parquet written
        def go():
            n = kd_transfer.write_transfer(s.bert_dir, sentences, None, settings, s.tmp / f"transfer{r}.parquet",
                                         device)
            return {"sentences": n}
        return go

    log(f"logits: {len(sentences)} sentences, batch {batch}")
    result = alternate(device, sizes["repeats"], {"kdprobe": kdprobe, "collator": peer})
    result["ratio"] = ratio(result, "kdprobe", "collator")
    result["write_transfer"] = alternate(device, sizes["repeats"], {"write_transfer": end_to_end})["write_transfer"]
    result.update(batch=batch, sentences=len(sentences),
                  dtype=str(runtime.autocast_dtype(device, settings, kind="inference") or "torch.float32")
                  .removeprefix("torch."))
    s.bert.cpu()
    return result


def bench_student(kind: str, s: Setup, sizes: dict, device: torch.device) -> dict:
    settings = student_settings(kind, sizes)
    batch = int(settings["batch_size"])
    sentences = s.sentences[: batch * sizes[f"{kind}_steps"]]
    teacher_logits = torch.randn(len(sentences), N_CLASSES, generator=torch.Generator().manual_seed(5))
    loss_settings, optimizer_settings, _ = typed_student(kind, settings)
    clip = float(settings.get("clip_norm") or 0.0)
    vocab_info = {"teacher_dir": str(s.bert_dir), "sentences": sentences}
    runtime.set_seed(0)
    template = build_student(kind, settings, N_CLASSES, vocab_info)
    ids = student_ids(template, sentences, s.bert_tok)
    features = peers.tokenize(s.bert_tok, sentences, int(settings["max_length"])) if kind == "bert_s" else None

    def loss_fn(student_logits, target):
        return distillation_loss(loss_settings.name, student_logits, target, loss_settings.temperature,
                                 loss_settings.mse_reduction)

    def kdprobe(r):
        model = copy.deepcopy(template).to(device)
        optimizer = optimizer_settings.build(model)
        training = typed_student(kind, {**settings, "epochs": 1, "seed": 100 + r})[2]
        loss = DistilLoss(model, ids, teacher_logits, loss_settings, device, training.numerics)

        def go():  # one epoch of `training.fit` on the slice, as `distil` trains (no dev evaluation)
            result = fit(model, Batches(ids.lengths, loss), optimizer, training, device=device,
                         resume=Resume(None, settings), desc=kind)
            return {"sentences": len(sentences), "steps": result.steps}
        return go

    def peer(r):
        if kind == "lstm_s":
            model = peers.lstm_model(template.inputs.vocab_size, N_CLASSES, settings, template.pad_id, device,
                                     seed=200 + r)
        else:
            model = peers.bert_model(len(s.bert_tok), N_CLASSES, settings, s.bert_tok.pad_token_id, device,
                                     seed=200 + r)
        optimizer = optimizer_settings.build(model)

        def go():
            if kind == "lstm_s":
                peers.lstm_epoch(model, optimizer, [ids[i] for i in range(len(ids))], teacher_logits, batch, loss_fn,
                                 clip_norm=clip, seed=200 + r, device=device, pad_id=template.pad_id)
            else:
                peers.bert_epoch(model, optimizer, s.bert_tok, features, teacher_logits, batch, loss_fn,
                                 clip_norm=clip, seed=200 + r, device=device)
            return {"sentences": len(sentences)}
        return go

    peer_name = "packed nn.LSTM" if kind == "lstm_s" else "HF BERT"
    log(f"{kind}: {len(sentences)} sentences, batch {batch}, {sizes[f'{kind}_steps']} steps")
    result = alternate(device, sizes["repeats"], {"kdprobe": kdprobe, peer_name: peer})
    result.update(ratio=ratio(result, "kdprobe", peer_name), peer=peer_name, batch=batch, sentences=len(sentences),
                  steps=sizes[f"{kind}_steps"], mean_tokens=float(ids.lengths.mean()))
    return result


def bench_students(s: Setup, sizes: dict, device: torch.device) -> dict:
    return {kind: bench_student(kind, s, sizes, device) for kind in ("bert_s", "lstm_s")}


# --------------------------------------------------------------------------------------------------- machine
def machine(device: torch.device) -> dict:
    info = {**software(), "cpu_cores": os.cpu_count(), "host": platform.node()}
    if device.type != "cuda":
        return {**info, "device": "CPU (smoke run)"}
    p = torch.cuda.get_device_properties(device)
    try:
        driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        driver = "unknown"
    return {**info, "device": p.name, "gpu_memory_gib": p.total_memory / 2**30, "capability": f"{p.major}.{p.minor}",
            "sms": p.multi_processor_count, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "driver": driver, "rnn_fp32_precision": default_rnn_precision(),
            "matmul_fp32_precision": str(torch.get_float32_matmul_precision())}


# ------------------------------------------------------------------------------------------------------ page
def mib(x: float | None) -> str:
    return "n/a (CPU)" if x is None else f"{x / 1024:.1f} GiB"


def render(res: dict) -> str:
    """The page of a run's raw numbers (`res`, as its JSON holds them)."""
    return "\n".join([*page_head(res), *machine_section(res), *models_section(res), *correctness_section(res),
                      *speed_section(res), *check_memory_section(res), *not_measured_section(res),
                      "", "## Reproduce", "```bash",
                      ".venv/bin/python benchmarks/gpu_check.py   # one GPU, under 8 minutes", "```", ""])


def status(res: dict) -> str:
    if res["passed"]:
        return "every check passed"
    if not res["complete"]:
        return "INCOMPLETE: " + "; ".join([f"{k} raised" for k in res["errors"]]
                                          + [f"{k} skipped (time budget)" for k in res["skipped"]])
    return "A CHECK FAILED"


def page_head(res: dict) -> list[str]:
    smoke = ["**SMOKE RUN** (`--cpu-smoke`): tiny models on the CPU, to test `benchmarks/gpu_check.py` itself. "
             "Its figures measure nothing; `docs/gpu.md` comes from a run on a GPU.", ""]
    return ["# GPU check", "", *(smoke if res["smoke"] else []),
            f"Run by `benchmarks/gpu_check.py` on {res['date']} (`{res['command']}`): {res['elapsed_s'] / 60:.1f} min "
            f"against a budget of {res['budget_s'] / 60:.0f} min; **{status(res)}**. Raw numbers: `{res['json']}`.",
            ""]


def machine_section(res: dict) -> list[str]:
    m, matmul = res["machine"], res["matmul"]
    gpu = (f", {m['gpu_memory_gib']:.0f} GiB, compute capability {m['capability']}, {m['sms']} SMs; CUDA {m['cuda']}, "
           f"cuDNN {m['cudnn']}, driver {m['driver']}; cuDNN RNN fp32 precision {m['rnn_fp32_precision']}, matmul "
           f"fp32 precision {m['matmul_fp32_precision']}" if "capability" in m else "")
    return ["## Machine",
            f"- {m['device']}{gpu}; {m['cpu_cores']} CPU cores",
            software_line(m),
            f"- dense {matmul['dtype']} matmul ({matmul['n']}^2): {fmt(matmul['flops_per_s'] / 1e12)} TFLOP/s, the "
            "yardstick for the sampler's share of the peak",
            ""]


def models_section(res: dict) -> list[str]:
    models = res["models"]
    return [
        "## Models and data",
        f"- GPT-2: {models['gpt2']}; the benchmark's length mix (`bench_models.length_shaped_gpt2`). BERT: "
        f"{models['bert']}, 2 classes. Random weights built from these configurations; nothing downloaded.",
        f"- Tokenizers: the demo's scratch tokenizers (WordPiece {models['bert_vocab']}, byte-level BPE "
        f"{models['gpt2_vocab']} entries); the models keep the real vocabulary sizes, so the embedding "
        "tables, GPT-2's LM head and the sampling softmax are full size (sampled ids beyond the tokenizer are never "
        "decoded).",
        f"- Sentences: {models['corpus']}, 8% of them several joined (`bench_models.realistic_sentences`).",
        "- Students: the thesis sections of config/config.yaml (LSTM_S on random word vectors in place of "
        "word2vec)" + "".join(f"; {k.upper()} shrunk to {v}" for k, v in res["sizes"]["students"].items())
        + "; training in fp32 as configured (`bf16` is off for training by default).",
        "",
    ]


def correctness_section(res: dict) -> list[str]:
    checks = res["sections"].get("checks", {}).get("checks", [])
    rows = [md_row(cell(c["name"]), cell(c["measured"]), cell(c["bound"]), "PASS" if c["pass"] else "**FAIL**")
            for c in checks]
    return [
        "## Correctness (on this device, in this run)",
        *md_table(("check", "measured", "bound", "result"), rows),
        "",
        "- Sampling: `augment.sample.Gpt2Decoder` (the sampler's GPT-2 path) in fp32 and in bf16 (`augment.bf16: true`, an "
        "opt-in on a bf16 GPU), fed the same tokens drawn from the fp32 distribution at every position up to `max_length`; "
        "total variation = half the L1 distance between the two full next-token distributions (softmax of the "
        "logits: the thesis samples at temperature 1 without top-k). The fp32 decoder is compared with "
        "`GPT2LMHeadModel`'s own forward over the whole sequences.",
        "- Teacher logits: `models.infer_logits` with `bf16: true` and `false` on the same sentences. A random "
        "BERT's logits are small and close together, so argmax agreement is counted where the fp32 margin exceeds "
        "twice the largest difference measured (elsewhere a flip says nothing about a fine-tuned teacher).",
        "- LSTM_S: `LstmStudent` on the device (on a GPU `forward` runs packed sequences through `nn.LSTM`, i.e. "
        "cuDNN) against a CPU copy with the same weights (`forward` there runs `students.bilstm`); logits and the "
        "gradient of every trainable parameter, relative to that tensor's largest value; with cuDNN in IEEE fp32 "
        "and with its default RNN precision (TF32 on Ampere and later, which training then uses).",
        "- Resume: `training.fit` as `distil` drives it, 2 epochs of one batch; the state file after epoch 1 "
        "against the states in memory, then a run resumed from it against an uninterrupted one. Each is run twice: "
        "where two identical runs differ, the GPU's kernels are not deterministic and bit-exactness is out of "
        "reach (the table says so), and the bound is relative to the size of the training step.",
        "",
    ]


def speed_row(step: str, result: dict, peer: str, unit: str, what: str) -> str:
    """A row of the speed table: kdprobe's and the peer's rates, their ratio and each side's peak memory."""
    ours, theirs = result["kdprobe"], result[peer]

    def rate(side):
        return "out of memory" if side["oom"] else fmt(side.get(f"{unit}_per_s"))

    return md_row(step, what, rate(ours), f"{rate(theirs)} ({peer})",
                  f"{fmt(result['ratio'])}x" if result["ratio"] else "n/a",
                  f"{mib(ours['peak_mib'])} / {mib(theirs['peak_mib'])}")


def speed_rows(res: dict) -> list[str]:
    rows, sections = [], res["sections"]
    if sections.get("sampling"):
        for label in ("configured", "auto"):
            b = sections["sampling"]["batches"][label]
            rows.append(speed_row(f"sampling, {label} batch ({b['batch']})", b, "generate", "tokens", "tokens/s"))
    if sections.get("logits"):
        lg = sections["logits"]
        rows.append(speed_row(f"teacher logits (batch {lg['batch']})", lg, "collator", "sentences", "sentences/s"))
    for kind, st in sections.get("students", {}).items():
        rows.append(speed_row(f"{kind.upper()} epoch slice (batch {st['batch']}, {st['steps']} steps)", st,
                              st["peer"], "sentences", "sentences/s"))
    return rows


def sampling_note(sampling: dict, max_length: int) -> str:
    conf, auto = sampling["batches"]["configured"], sampling["batches"]["auto"]
    return (
        f"- Sampling: `augment.sample.sample_rows` ({sampling['dtype']}, the GPT-2 decoder with its preallocated "
        f"cache, finished rows dropped at once) vs `peers.hf_generate` (`generate(do_sample=True, "
        f"use_cache=True)` on a {sampling['dtype']} copy of the model; finished rows stay in the batch), "
        f"max {max_length} tokens, temperature and top-k of `augment`. Configured batch = "
        f"`augment.batch_size` ({conf['batch']}, {conf['rows']} rows); automatic = what "
        f"`augment.memory.resolve_sampling_batch` picks with `batch_size: auto` "
        + (f"from {sampling['free_gib']:.0f} GiB free " if sampling["free_gib"] else "on a CPU ")
        + f"({auto['batch']}; {auto['rows']} rows). Tokens = sampled tokens, the end token included. Batch effect "
        f"(kdprobe, automatic over configured): {fmt(sampling['batch_effect'])}x. Share of the matmul yardstick "
        f"(effective FLOPs, `bench_models.gpt2_flops_per_token`): {100 * conf['peak_fraction']:.0f}% at the "
        f"configured batch, {100 * auto['peak_fraction']:.0f}% at the automatic one.")


def logits_note(lg: dict) -> str:
    e2e = lg["write_transfer"]
    return (
        f"- Teacher logits: {lg['sentences']:,} sentences, batch {lg['batch']}, {lg['dtype']}: tokenise, then "
        "`models.infer_logits` (length-sorted batches padded to their longest) vs `peers.dynamic_padding_logits` "
        "(`DataCollatorWithPadding`, input order, same autocast). End to end, `transfer.write_transfer` (model "
        f"read from disk, tokenise, run, parquet written) ran at {fmt(e2e.get('sentences_per_s'))} sentences/s "
        f"(peak {mib(e2e['peak_mib'])}).")


def students_note(students: dict) -> str:
    return (
        "- Students: one epoch of `training.fit` on `distil.DistilLoss` (ids tokenised once, length-grouped "
        "batches) over the slice vs `peers.bert_epoch` (Hugging Face BERT of BERT_S's size, "
        "`DataCollatorWithPadding`) and `peers.lstm_epoch` (plain `nn.LSTM` on packed sequences, a `DataLoader` "
        "padding per batch); the same loss and optimiser. Mean tokens per sentence: "
        + ", ".join(f"{k.upper()} {v['mean_tokens']:.1f}" for k, v in students.items()) + ".")


def one_task(res: dict) -> list[str]:
    """Each step's time for one task of the thesis at kdprobe's measured rates (extrapolated, not measured)."""
    n = int(THESIS["augment"]["sentences"])
    steps = []
    sampling = res["sections"].get("sampling")
    if sampling and sampling["batches"]["auto"]["kdprobe"]["runs"]:
        steps.append(("sampling, automatic batch", sampling["batches"]["auto"]["kdprobe"]["sentences_per_s"], 1))
    if res["sections"].get("logits", {}).get("kdprobe", {}).get("runs"):
        steps.append(("teacher logits", res["sections"]["logits"]["kdprobe"]["sentences_per_s"], 1))
    for kind, st in res["sections"].get("students", {}).items():
        if st["kdprobe"]["runs"]:
            steps.append((f"{kind.upper()}, {THESIS['students'][kind]['epochs']} epochs",
                          st["kdprobe"]["sentences_per_s"], int(THESIS["students"][kind]["epochs"])))
    if not steps:
        return []
    return ["", f"What these rates mean for one task of the thesis ({n:,} augmented sentences; extrapolated from the "
                "rates above, with these sentences' lengths, not measured): "
            + "; ".join(f"{name} {epochs * n / rate / 60:,.1f} min" for name, rate, epochs in steps) + "."]


def speed_section(res: dict) -> list[str]:
    sections = res["sections"]
    notes = [*([sampling_note(sections["sampling"], res["sizes"]["max_length"])] if sections.get("sampling") else []),
             *([logits_note(sections["logits"])] if sections.get("logits") else []),
             *([students_note(sections["students"])] if sections.get("students") else [])]
    return [
        "## Speed (kdprobe beside what a researcher would write today; same model, sentences, batch, precision)",
        f"Medians of {res['sizes']['repeats']} run(s) each after one untimed run, kdprobe and the peer alternating; "
        "the ratio is the median of each kdprobe run over the peer run next to it. Peak memory: "
        "`torch.cuda.max_memory_allocated` over each side's runs.",
        "",
        *md_table(("step", "unit", "kdprobe", "peer", "ratio", "peak memory kdprobe / peer"), speed_rows(res)),
        "",
        *notes,
        *one_task(res),
    ]


def check_memory_section(res: dict) -> list[str]:
    peaks = res["sections"].get("checks", {}).get("peak_mib", {})
    return ["", "## Peak GPU memory per check",
            *md_table(("check", "peak"), [md_row(k, mib(v)) for k, v in peaks.items()])]


def not_measured_section(res: dict) -> list[str]:
    if not (res["errors"] or res["skipped"]):
        return []
    return ["", "## Not measured",
            *[f"- {k}: raised `{v.strip().splitlines()[-1]}`" for k, v in res["errors"].items()],
            *[f"- {k}: skipped, the time budget was spent" for k in res["skipped"]]]


# ------------------------------------------------------------------------------------------------------ main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="tiny sizes on the CPU, to test this script (needs --out; never writes docs/gpu.md)")
    parser.add_argument("--out", type=Path, help=f"the page (default {DEFAULT_OUT.relative_to(ROOT)}); the raw "
                                                 "numbers go beside it (.json)")
    parser.add_argument("--budget-s", type=float, default=BUDGET_S,
                        help="no section starts after this many seconds (default %(default)s)")
    args = parser.parse_args(argv)
    if args.cpu_smoke and (args.out is None or args.out.resolve() == DEFAULT_OUT.resolve()):
        parser.error("--cpu-smoke writes only to an --out path given explicitly, never docs/gpu.md")
    return args


def measure(res: dict, sizes: dict, device: torch.device, budget_s: float, json_path: Path) -> None:
    """Every section into `res` in turn, the JSON rewritten after each: a section that raises is recorded and the
    others still run; one that would start after `budget_s` is skipped."""
    with tempfile.TemporaryDirectory(prefix="kdprobe-gpu-check-") as tmp:
        setup = build(sizes, device, Path(tmp))
        res["matmul"] = matmul_peak(device, sizes["matmul"])
        res["models"] = {"gpt2": describe(setup.gpt2), "bert": describe(setup.bert), "gpt2_vocab": len(setup.gpt2_tok),
                         "bert_vocab": len(setup.bert_tok),
                         "corpus": "demo corpus (`bench_models.demo_corpus`)" if sizes["corpus"] == "demo"
                         else "synthetic sentences (`students.testing.synthetic_sentences`)"}
        sections = [
            ("checks", lambda: run_checks(setup, sizes, device)),
            ("sampling", lambda: bench_sampling(setup, sizes, device, res["matmul"])),
            ("logits", lambda: bench_logits(setup, sizes, device)),
            ("students", lambda: bench_students(setup, sizes, device)),
        ]
        for name, section in sections:
            if time.perf_counter() - STARTED > budget_s:
                log(f"{name}: skipped, {budget_s:.0f} s spent")
                res["skipped"].append(name)
                continue
            log(f"section {name}")
            try:
                res["sections"][name] = section()
            except Exception:  # a section that fails is reported; the others still run
                res["errors"][name] = traceback.format_exc()
                log(f"{name} raised:\n{res['errors'][name]}")
            release(device)
            write_json(json_path, {**res, "complete": False, "elapsed_s": time.perf_counter() - STARTED})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.cpu_smoke and not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU is available (torch.cuda.is_available() is False). This check measures "
              "kdprobe on a GPU and never runs in CI: run it on a machine with an H100/H200-class GPU, or test its "
              "logic with --cpu-smoke --out PATH.", file=sys.stderr)
        return 1
    device = torch.device("cpu" if args.cpu_smoke else "cuda")
    runtime.configure_cuda(device)  # the numerics of a kdprobe GPU job (config `cuda` defaults: TF32 on)
    if args.cpu_smoke:
        torch.set_num_threads(1)  # tiny models run fastest on one thread (no OpenMP waits on a busy machine)
    sizes = SIZES["smoke" if args.cpu_smoke else "gpu"]
    out = args.out or DEFAULT_OUT
    json_path = out.with_suffix(".json")
    res: dict[str, Any] = {
        "smoke": args.cpu_smoke, "date": now(), "budget_s": args.budget_s,
        "command": command_line("gpu_check.py", sys.argv[1:] if argv is None else argv), "json": shown(json_path),
        "sizes": sizes, "bounds": BOUNDS, "machine": machine(device), "sections": {}, "errors": {}, "skipped": [],
    }
    log(f"{res['machine']['device']}: {'smoke run' if args.cpu_smoke else 'thesis sizes'}, budget "
        f"{args.budget_s:.0f} s; writing {out} and {json_path}")
    measure(res, sizes, device, args.budget_s, json_path)
    checks = res["sections"].get("checks", {}).get("checks", [])
    res["elapsed_s"] = time.perf_counter() - STARTED
    res["complete"] = not res["errors"] and not res["skipped"]
    res["passed"] = res["complete"] and all(c["pass"] for c in checks)
    write_json(json_path, res)
    write_text(out, render(res))
    log(f"wrote {out} and {json_path}: {'all checks passed' if res['passed'] else 'NOT PASSED'} "
        f"({res['elapsed_s'] / 60:.1f} min)")
    return 0 if res["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

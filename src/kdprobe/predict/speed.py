"""Size and speed of a trained model, measured on the machine that runs the job (never estimated).

`measure_model(kind, model_dir, data_dir, out_path, device, settings, max_length=)` loads the teacher or
a student, counts its parameters (with and without the input embeddings) and the bytes of its weight files, and
times its forward pass on the task's dev sentences, tokenised beforehand (tokenisation is not timed), under
`torch.inference_mode()`:
- latency: `warmup` untimed single-sentence forwards, then `latency_repeats` timed ones, each on the next dev
  sentence (cycling through the set); the median, in milliseconds;
- throughput: one untimed batch, then `throughput_batches` timed batches of `throughput_batch` dev sentences in
  dev order (cycled when the set is smaller), padded to each batch's longest; sentences per second.
Always on the CPU (with the job's torch threads), and on the GPU too when the job's device is one. It writes a JSON
object: `model, params, params_without_embeddings, disk_bytes`, the settings, and per device (`cpu`, `gpu`
or null) `device_name, threads` (torch's CPU threads), `latency_ms, throughput, latency_repeats, throughput_batch,
throughput_batches` and the raw `latencies_ms`, `batch_seconds`.

Settings (`summary` section): `latency_repeats`, `throughput_batch`, `throughput_batches`, `warmup`.
"""

from __future__ import annotations

import logging
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from kdprobe.batching import pad_batch
from kdprobe.errors import ConfigError, InputError
from kdprobe.io import write_json
from kdprobe.logs import progress
from kdprobe.models import load_classifier
from kdprobe.registry import MODELS
from kdprobe.splits import load_labels, load_split

log = logging.getLogger(__name__)

#: Files of a model directory that hold its weights (what "size on disk" counts).
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".ckpt")
SETTINGS = ("latency_repeats", "throughput_batch", "throughput_batches", "warmup")

Forward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def check_settings(settings: dict) -> dict[str, int]:
    """The timing settings as ints; a missing one or one below its minimum is a ConfigError naming the key."""
    minimum = {"latency_repeats": 1, "throughput_batch": 1, "throughput_batches": 1, "warmup": 0}
    out = {}
    for key in SETTINGS:
        if key not in settings:
            raise ConfigError(f"summary.{key}", "missing")
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum[key]:
            raise ConfigError(f"summary.{key}", f"must be an integer >= {minimum[key]}, got {value!r}")
        out[key] = value
    return out


def weight_bytes(model_dir: str | Path) -> int:
    """Bytes of the weight files (`WEIGHT_SUFFIXES`) directly in `model_dir`; none there is an InputError."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise InputError(model_dir, "model directory not found")
    files = [p for p in model_dir.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)]
    if not files:
        raise InputError(model_dir, f"no weight file ({', '.join(WEIGHT_SUFFIXES)}) in the model directory")
    return sum(p.stat().st_size for p in files)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_forward(forward: Forward, sequences: Sequence[Sequence[int]], pad_id: int, device: torch.device | str,
                 latency_repeats: int, throughput_batch: int, throughput_batches: int, warmup: int,
                 desc: str | None = None) -> dict[str, Any]:
    """Median single-sentence latency (ms) and batched throughput (sentences/s) of `forward` on `device`.

    `sequences`: token id lists (at least one), used in order and cycled. Returns `latency_ms`, `throughput`,
    `latency_repeats`, `throughput_batch`, `throughput_batches` and the raw `latencies_ms`, `batch_seconds`."""
    if not sequences:
        raise ValueError("timing needs at least one sentence")
    device = torch.device(device)
    n = len(sequences)

    def batch(start: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        enc = pad_batch([sequences[(start + i) % n] for i in range(size)], pad_id)
        return enc["input_ids"].to(device), enc["attention_mask"].to(device)

    latencies, seconds = [], []
    bar = progress(total=warmup + latency_repeats + 1 + throughput_batches, desc=desc, unit="forward",
                   disable=desc is None)
    with torch.inference_mode():
        for i in range(warmup + latency_repeats):
            ids, mask = batch(i, 1)
            _sync(device)
            start = time.perf_counter()
            forward(ids, mask)
            _sync(device)
            if i >= warmup:
                latencies.append((time.perf_counter() - start) * 1000.0)
            bar.update(1)
        for b in range(throughput_batches + 1):  # the first batch warms up the batched shapes, untimed
            ids, mask = batch(b * throughput_batch, throughput_batch)
            _sync(device)
            start = time.perf_counter()
            forward(ids, mask)
            _sync(device)
            if b:
                seconds.append(time.perf_counter() - start)
            bar.update(1)
    bar.close()
    return {
        "latency_ms": statistics.median(latencies),
        "throughput": throughput_batch * throughput_batches / sum(seconds),
        "latency_repeats": latency_repeats,
        "throughput_batch": throughput_batch,
        "throughput_batches": throughput_batches,
        "latencies_ms": latencies,
        "batch_seconds": seconds,
    }


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()


def timing_devices(device: torch.device | str) -> list[torch.device]:
    """Where a model is timed: always the CPU, and `device` too when it is a GPU."""
    device = torch.device(device)
    return [torch.device("cpu")] + ([device] if device.type == "cuda" else [])


def measure_model(kind: str, model_dir: str | Path, data_dir: str | Path, out_path: str | Path,
                  device: torch.device | str, settings: dict, max_length: int | None = None) -> dict[str, Any]:
    """Measure model `kind` (teacher | bert_s | lstm_s) in `model_dir` on `data_dir/dev.tsv`; write and return the
    JSON record (module docstring). The CPU is always timed; `device`, when a GPU, too."""
    if kind not in MODELS:
        raise ConfigError("model", f"unknown model kind {kind!r}; choose one of {list(MODELS)}")
    timing = check_settings(settings)
    model_dir, data_dir, device = Path(model_dir), Path(data_dir), torch.device(device)
    sentences, _ = load_split(data_dir, "dev", load_labels(data_dir))
    if not sentences:
        raise InputError(data_dir / "dev.tsv", "no dev sentences to time the model on")
    log.info("read %d dev sentences from %s; model %s from %s", len(sentences), data_dir, kind, model_dir)
    disk = weight_bytes(model_dir)
    loaded = load_classifier(kind, model_dir, max_length)
    ids = loaded.tokenize(sentences)
    total, without = loaded.counts()
    log.info("%s: %d parameters, %d without embeddings, %.1f MB of weight files", kind, total, without, disk / 1e6)
    record: dict[str, Any] = {
        "model": kind, "params": total, "params_without_embeddings": without, "disk_bytes": disk,
        "settings": timing, "cpu": None, "gpu": None,
    }
    for target in timing_devices(device):
        loaded.to(target)
        result = time_forward(loaded.forward, ids, loaded.pad_id, target, desc=f"{kind} on {target}",
                              **timing)
        slot = "gpu" if target.type == "cuda" else "cpu"
        record[slot] = {"device_name": device_name(target), "threads": torch.get_num_threads(), **result}
        log.info("%s on %s (%s, %d torch threads): latency %.2f ms (median of %d), throughput %.1f sentences/s "
                 "(batches of %d)", kind, target, record[slot]["device_name"], torch.get_num_threads(),
                 result["latency_ms"], timing["latency_repeats"], result["throughput"], timing["throughput_batch"])
    write_json(out_path, record)
    log.info("wrote %s", out_path)
    return record

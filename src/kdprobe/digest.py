"""Content digests of the inputs a resumable job depends on, and what differs between two such records.

Resumable training state (`checkpoint.ResumeState`) and chunked outputs (`chunks.ChunkStore`) record the sha256 of
every file they were made from, so a rerun after an input changed in place (a retrained teacher writes new logits
with the same sentences and lengths; a model copied with its old modification times) starts afresh instead of
silently continuing from stale work. Files are read in 1 MiB blocks (a 1.6 GB word2vec file costs a few seconds,
once per job start); a directory stands for every file below it, in sorted order of relative path.

They record the code too (`code_record`): kdprobe's version, the digest of each module involved (every shared
module and the job's stages) and the versions of the packages it computes with, so a state or table saved before
a code fix or an upgrade is never taken for one of the code now running.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import logging
import sys
import time
from pathlib import Path
from typing import Any, Mapping

from kdprobe.errors import InputError

log = logging.getLogger(__name__)

BLOCK = 1 << 20

#: kdprobe's stage modules and packages (docs/internals.md's stage table, and the stand-ins `demo` and `offline`,
#: which use stages): a saved state's code record leaves out the stages its job never imported.
STAGES = ("fetch", "data", "teacher", "augment", "transfer", "distil", "predict", "probe", "report", "demo", "offline")

#: The packages besides kdprobe whose code computes its numbers (pyproject.toml's dependencies less the workflow,
#: plotting and progress ones); an upgrade of any of them invalidates every saved state.
COMPUTE_PACKAGES = ("torch", "transformers", "tokenizers", "safetensors", "numpy", "pandas", "pyarrow", "scikit-learn",
                    "gensim")


def file_sha256(path: str | Path) -> str:
    """sha256 (hex) of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p: p.relative_to(path).as_posix())
    raise InputError(path, "input not found")


def content_digests(inputs: Mapping[str, str | Path]) -> dict[str, str]:
    """`{name: sha256}` of every input: a file under its label, each file below a directory as `label/relative
    path`. Labels, not paths, name the inputs, so moving them (or reading a copy in a temporary directory) keeps
    the digests. Logs how much was hashed and how long it took."""
    start = time.perf_counter()
    out: dict[str, str] = {}
    n_bytes = 0
    for label, path in inputs.items():
        path = Path(path)
        for f in _files(path):
            out[label if f == path else f"{label}/{f.relative_to(path).as_posix()}"] = file_sha256(f)
            n_bytes += f.stat().st_size
    log.info("hashed %d input files (%.1f MB) in %.1f s: %s", len(out), n_bytes / 1e6, time.perf_counter() - start,
             ", ".join(f"{label} ({path})" for label, path in inputs.items()))
    return out


@functools.cache
def code_record() -> dict[str, Any]:
    """The code a saved state is made by: kdprobe's version, the sha256 of each module involved (`code_modules` of
    the stages this process imported) and the versions of `COMPUTE_PACKAGES` (None where one is not installed).
    Computed once per process."""
    import kdprobe

    loaded = {name.split(".")[1] for name in sys.modules if name.startswith("kdprobe.")}
    versions = {}
    for name in COMPUTE_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {"kdprobe": kdprobe.__version__, "packages": versions, "modules": code_modules(loaded & set(STAGES))}


def code_modules(stages: set[str]) -> dict[str, str]:
    """`{path below kdprobe/: sha256}` of every shared module and of the modules of `stages`: all the code a job
    of those stages can run, as a stage imports no other (tests/test_layout.py), so a log can name the module
    that changed."""
    import kdprobe

    root = Path(kdprobe.__file__).parent
    out = {}
    for path in sorted(root.rglob("*.py"), key=lambda p: p.relative_to(root).as_posix()):
        name = path.relative_to(root).as_posix()
        top = name.split("/")[0].removesuffix(".py")
        if top not in STAGES or top in stages:
            out[name] = file_sha256(path)
    return out


def model_files(model: str | Path) -> Path | None:
    """The directory whose files a model setting stands for: the local directory itself, or a hub id's snapshot in
    the Hugging Face cache (None when it is not cached: the model's name is then all that identifies it)."""
    if Path(model).exists():
        return Path(model)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(str(model), local_files_only=True))
    except Exception:  # not cached, or not a hub id: nothing on disk to hash
        log.info("model %s: no local files to hash; its name alone identifies it", model)
        return None


def differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested records (dicts compared key by key)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            name = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                out.append(name)
            else:
                out += differences(old[key], new[key], name)
        return out
    return [] if old == new else [prefix or "<record>"]


def what_changed(old: Any, new: Any, limit: int = 10) -> str:
    """`differences(old, new)` for a log line (the first `limit`); `old` None: no record of what it was made from."""
    if old is None:
        return "everything (no record of what it was made from)"
    changed = differences(old, new)
    return ", ".join(changed[:limit]) + (f" and {len(changed) - limit} more" if len(changed) > limit else "")

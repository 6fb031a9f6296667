"""Fetching `Source` specs (`kdprobe.fetch.spec`): files and archives by URL or local path, verified and extracted;
Hugging Face model directories as snapshots at a pinned revision, safetensors weights only."""

from __future__ import annotations

import fnmatch
import logging
import re
import shutil
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Iterable

from kdprobe.errors import ConfigError
from kdprobe.fetch.archive import extract as extract_archive
from kdprobe.fetch.download import FetchError, copy_verified, download, sha256_file, verify_file
from kdprobe.fetch.spec import COMMIT, DEFAULT_CACHE_DIR, Source, concrete, parse_sources

log = logging.getLogger("kdprobe.fetch")

#: What a model snapshot keeps: config, tokenizer files and safetensors weights. No pickles (*.bin, *.pt, *.ckpt).
MODEL_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "*.safetensors",
    "model.safetensors.index.json",
)
PICKLE_FILES = ("*.bin", "*.pt", "*.pth", "*.pkl", "*.pickle", "*.ckpt")
SOURCE_RECORD = ".kdprobe-source.json"


def _hf_snapshot(repo_id: str, *, revision: str | None, local_dir: Path, allow_patterns: list[str]) -> None:
    from huggingface_hub import snapshot_download

    snapshot_download(repo_id, revision=revision, local_dir=local_dir, allow_patterns=allow_patterns)


def resolve_revision(repo_id: str, revision: str | None) -> str:
    """The commit that `revision` (a branch, tag or commit; None: main) of Hugging Face repository `repo_id` is."""
    from huggingface_hub import HfApi

    return HfApi().model_info(repo_id, revision=revision or "main").sha


def _matches(rel: str, patterns: Iterable[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in patterns)


def _check_model_dir(directory: Path, origin: str) -> list[dict]:
    """config.json and at least one *.safetensors, no pickled weights; return [{file, bytes, sha256}]."""
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != SOURCE_RECORD)
    rels = [p.relative_to(directory).as_posix() for p in files]
    pickles = [r for r in rels if _matches(r, PICKLE_FILES)]
    if pickles:
        raise FetchError(f"{origin}: pickled weights {pickles} are not accepted (safetensors only)")
    if "config.json" not in rels:
        raise FetchError(f"{origin}: no config.json (not a Hugging Face model directory?)")
    if not any(r.endswith(".safetensors") for r in rels):
        raise FetchError(
            f"{origin}: no *.safetensors weights; pickled weights are not accepted. Convert them once "
            "(`AutoModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)`) and point at that."
        )
    return [{"file": r, "bytes": p.stat().st_size, "sha256": sha256_file(p)} for r, p in zip(rels, files)]


def snapshot_model(
    repo_id: str,
    out_dir: str | Path,
    revision: str | None = None,
    allow_patterns: Iterable[str] = MODEL_FILES,
    *,
    snapshot_fn: Callable[..., Any] | None = None,
    resolve_fn: Callable[[str, str | None], str] | None = None,
) -> Path:
    """Snapshot a Hugging Face model repository into `out_dir` (atomically): config, tokenizer, safetensors.

    `revision` should be a commit hash; a branch or tag is resolved to its commit first (with a warning) so all
    files come from one commit, which is recorded in `out_dir/.kdprobe-source.json` with every file's sha256.
    """
    from kdprobe.io import atomic_dir, write_json  # lazily: kdprobe.io imports pandas

    patterns = list(allow_patterns)
    resolved = revision
    if not (revision and COMMIT.match(revision)):
        resolved = (resolve_fn or resolve_revision)(repo_id, revision)
        log.warning(
            "%s: revision %r is not a commit hash; it resolves to %s today. Pin `revision: %s` for a reproducible "
            "fetch.", repo_id, revision or "main", resolved, resolved,
        )
    log.info("snapshotting %s@%s into %s (files: %s)", repo_id, resolved, out_dir, ", ".join(patterns))
    with atomic_dir(out_dir) as tmp:
        try:
            (snapshot_fn or _hf_snapshot)(repo_id, revision=resolved, local_dir=tmp, allow_patterns=patterns)
        except FetchError:
            raise
        except Exception as exc:  # huggingface_hub raises many types; say which repo and revision failed
            raise FetchError(f"{repo_id}@{resolved}: snapshot failed: {exc}") from exc
        shutil.rmtree(tmp / ".cache", ignore_errors=True)  # huggingface_hub's local_dir bookkeeping
        files = _check_model_dir(tmp, f"{repo_id}@{resolved}")
        write_json(tmp / SOURCE_RECORD, {"repo": repo_id, "revision": revision, "commit": resolved, "files": files})
    log.info("wrote %s (%d files)", out_dir, len(files))
    return Path(out_dir)


def copy_model_dir(src_dir: str | Path, out_dir: str | Path, allow_patterns: Iterable[str] = MODEL_FILES) -> Path:
    """Air-gapped counterpart of `snapshot_model`: copy a local model directory with the same file filter."""
    from kdprobe.io import atomic_dir, write_json

    src_dir = Path(src_dir)
    if not src_dir.is_dir():
        raise FetchError(f"{src_dir}: no such directory (configured as a local model)")
    patterns = list(allow_patterns)
    with atomic_dir(out_dir) as tmp:
        for path in sorted(src_dir.rglob("*")):
            rel = path.relative_to(src_dir).as_posix()
            if path.is_file() and not rel.startswith(".") and _matches(rel, patterns):
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, tmp / rel)
        files = _check_model_dir(tmp, str(src_dir))
        write_json(tmp / SOURCE_RECORD, {"path": str(src_dir.resolve()), "files": files})
    log.info("copied %s -> %s (%d files)", src_dir, out_dir, len(files))
    return Path(out_dir)


# ----------------------------------------------------------------------------------------------- fetching


def _archive_name(url: str) -> str:
    name = urllib.parse.unquote(Path(urllib.parse.urlparse(url).path).name)
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "archive"


def fetch_source(
    src: Source,
    cache_dir: str | Path = DEFAULT_CACHE_DIR,
    *,
    retries: int = 4,
    backoff: float = 2.0,
    snapshot_fn: Callable[..., Any] | None = None,
    resolve_fn: Callable[[str, str | None], str] | None = None,
) -> list[Path]:
    """Fetch one concrete source (see `concrete`) into its output paths; return them.

    Archives are downloaded to `cache_dir/<key>/<file name>` (kept, with their `.sha256` sidecar, so a later run
    verifies instead of downloading again) and the configured members copied atomically onto their outputs.
    """
    from kdprobe.io import atomic_path

    if src.names:
        raise ValueError(f"{src.key}: expand `names` first (fetch_source takes one concrete source)")
    if src.kind == "model":
        if src.repo:
            return [snapshot_model(src.repo, src.output, src.revision, snapshot_fn=snapshot_fn, resolve_fn=resolve_fn)]
        return [copy_model_dir(src.path, src.output)]

    if src.kind == "file":
        if src.url:
            download(src.url, src.output, src.sha256, retries=retries, backoff=backoff, git_blob=src.git_blob)
        else:
            copy_verified(src.path, src.output, src.sha256, src.git_blob)
        return [Path(src.output)]

    # archive
    cache = Path(cache_dir) / re.sub(r"[^A-Za-z0-9_.-]", "_", src.key)
    if src.url:
        archive = cache / _archive_name(src.url)
        download(src.url, archive, src.sha256, retries=retries, backoff=backoff, git_blob=src.git_blob)
    else:
        archive = Path(src.path)
        if not archive.is_file():
            raise FetchError(f"{archive}: no such file (configured as a local source)")
        if src.sha256 or src.git_blob:
            verify_file(archive, src.sha256, src.git_blob)
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".members.", dir=cache))
    try:
        extract_archive(archive, staging / "x", members=list(src.extract))
        written = []
        for member, out in src.extract.items():
            staged = staging.joinpath("x", *[p for p in member.replace("\\", "/").split("/") if p not in ("", ".")])
            if not staged.is_file():
                raise FetchError(f"{archive}: member {member!r} is a directory, not a file")
            with atomic_path(out) as tmp:
                shutil.copyfile(staged, tmp)
            log.info("%s:%s -> %s", archive.name, member, out)
            written.append(Path(out))
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def outputs_present(src: Source) -> bool:
    return all(Path(p).exists() for p in src.outputs())


def fetch_all(
    sources: dict | None,
    keys: Iterable[str] | None = None,
    cache_dir: str | Path = DEFAULT_CACHE_DIR,
    force: bool = False,
    **kwargs,
) -> list[Path]:
    """Fetch every configured source (or those named in `keys`), skipping ones whose outputs exist unless
    `force`; for a machine with internet outside Snakemake (`python workflow/scripts/fetch.py`)."""
    parsed = parse_sources(sources)
    wanted = set(keys) if keys else None
    if wanted:
        missing = sorted(wanted - {s.key for s in parsed})
        if missing:
            raise ConfigError(f"sources.*.{missing[0]}", "no such source")
    written: list[Path] = []
    for src in concrete(s for s in parsed if wanted is None or s.key in wanted):
        if not force and outputs_present(src):
            log.info("%s: %s already present; skipping (force to fetch again)", src.key, ", ".join(src.outputs()))
            continue
        written += fetch_source(src, cache_dir, **kwargs)
    return written

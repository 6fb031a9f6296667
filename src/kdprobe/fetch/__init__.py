"""Fetching the study's data and models once, safely, for offline compute nodes.

- `download(url, dest, sha256=None, retries=4, backoff=2.0, git_blob=None)`: streamed, retried with exponential
  back-off (a dropped transfer resumes: Range + If-Range), verified (pinned sha256, or trust on first use through
  the `dest + '.sha256'` sidecar; a pinned git blob id too), atomically renamed.
- `extract(archive, dest_dir, members=None)`: zip and tar(.gz) without absolute paths, `..`, links or devices.
- `parse_sources(config['sources'])` (`spec`: the `sources:` config section, see the comments above it in
  config/config.yaml), `fetch_source(source)`, `fetch_all(...)` (`fetcher`).
- `snapshot_model(repo_id, out_dir, revision)`: a Hugging Face model directory, safetensors weights only.
- `preflight`: every source a run would fetch answers and its pin holds, without downloading (`make preflight`).
- `command`: the fetch rules' job (`from_snakemake`) and the command line (`main`) of workflow/scripts/fetch.py.
"""

from kdprobe.fetch.archive import UnsafeArchiveError, archive_format, extract
from kdprobe.fetch.fetcher import MODEL_FILES, copy_model_dir, fetch_all, fetch_source, snapshot_model
from kdprobe.fetch.spec import DEFAULT_CACHE_DIR, Source, concrete, parse_sources
from kdprobe.fetch.download import (
    ChecksumError,
    FetchError,
    copy_verified,
    download,
    git_blob_id,
    read_sidecar,
    sha256_file,
    sidecar_path,
    verify_file,
)

__all__ = [
    "ChecksumError",
    "DEFAULT_CACHE_DIR",
    "FetchError",
    "MODEL_FILES",
    "Source",
    "UnsafeArchiveError",
    "archive_format",
    "concrete",
    "copy_model_dir",
    "copy_verified",
    "download",
    "extract",
    "fetch_all",
    "fetch_source",
    "git_blob_id",
    "parse_sources",
    "read_sidecar",
    "sha256_file",
    "sidecar_path",
    "snapshot_model",
    "verify_file",
]

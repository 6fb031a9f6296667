"""HTTP(S) downloads that either land complete and verified under their final name or not at all.

`download(url, dest, sha256=None)` streams to a temporary file beside `dest`, hashing as it goes, retries with
exponential back-off on what is worth retrying (connection errors and time-outs, HTTP 5xx and 429, transfers
shorter than their Content-Length), checks the digest and only then renames the file onto `dest`.

Checksums, pinned or trusted on first use
-----------------------------------------
With `sha256` given (pinned), the download must match it. Either way the digest observed is written to the sidecar
`dest + '.sha256'` (`<hex>  <file name>` as `sha256sum` writes it, then a `# source: <url>` line). A later call for
the same URL with no pin treats the recorded digest as the expected one: if `dest` is still there and matches, it
is reused without downloading; a re-download must match it too, so content that changed upstream is an error,
not a silent change of the study's inputs (trust on first use, as ssh does with host keys). To accept new
upstream content, delete the sidecar (or pin the new digest). A sidecar recorded for another URL does not apply.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import tempfile
import time
import urllib.error
import urllib.request
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Callable

from kdprobe.errors import KdprobeError
from kdprobe.logs import progress

log = logging.getLogger("kdprobe.fetch")

USER_AGENT = "kdprobe-fetch/0.1 (+urllib)"
CHUNK = 1 << 20
SIDECAR_SUFFIX = ".sha256"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class FetchError(KdprobeError):
    """A source could not be fetched (HTTP error, retries exhausted, missing file or member)."""


class ChecksumError(FetchError):
    """Content whose SHA-256 differs from the pinned or recorded one."""


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def normalise_sha256(value: str | None, what: str = "sha256") -> str | None:
    """Lower-case hex digest, or None for no pin; anything but 64 hex digits is an error."""
    if value is None or value == "":
        return None
    digest = str(value).strip().lower()
    if digest.startswith("sha256:"):
        digest = digest[len("sha256:"):]
    if not _HEX64.match(digest):
        raise FetchError(f"{what}: {value!r} is not a SHA-256 hex digest (64 hex digits)")
    return digest


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def sidecar_path(dest: str | Path) -> Path:
    dest = Path(dest)
    return dest.with_name(dest.name + SIDECAR_SUFFIX)


def read_sidecar(dest: str | Path, url: str | None = None) -> str | None:
    """Digest recorded beside `dest`, or None (no sidecar, unreadable, or recorded for another URL)."""
    side = sidecar_path(dest)
    try:
        lines = side.read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    if not lines or not lines[0].split():
        return None
    digest = lines[0].split()[0].lower()
    if not _HEX64.match(digest):
        log.warning("%s: not a sha256 sidecar; ignoring it", side)
        return None
    recorded_url = next((ln[len("# source: "):].strip() for ln in lines[1:] if ln.startswith("# source: ")), None)
    if url is not None and recorded_url is not None and recorded_url != url:
        log.info("%s was recorded for %s, not %s; it does not apply", side, recorded_url, url)
        return None
    return digest


def write_sidecar(dest: str | Path, digest: str, source: str | None = None) -> Path:
    dest = Path(dest)
    side = sidecar_path(dest)
    text = f"{digest}  {dest.name}\n" + (f"# source: {source}\n" if source else "")
    fd, tmp = tempfile.mkstemp(prefix=f".{side.name}.", suffix=".tmp", dir=side.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, side)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return side


def _retry_after(headers) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _fetch_once(url: str, tmp: Path, timeout: float, headers: dict[str, str], desc: str) -> tuple[str, int]:
    """One attempt: stream `url` into `tmp`; return (sha256, bytes). Raises _Retryable or FetchError."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **headers})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        retry_after = _retry_after(err.headers)
        err.close()
        if err.code == 429 or 500 <= err.code < 600:
            raise _Retryable(f"HTTP {err.code} {err.reason}", retry_after) from None
        raise FetchError(f"{url}: HTTP {err.code} {err.reason} (not retried)") from None
    except urllib.error.URLError as err:
        if isinstance(err.reason, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise FetchError(f"{url}: {err.reason}") from None
        raise _Retryable(f"connection failed: {err.reason}") from None
    except ValueError as err:  # unknown URL type and the like
        raise FetchError(f"{url}: {err}") from None
    except (OSError, http.client.HTTPException) as err:
        raise _Retryable(f"connection failed: {err!r}") from None

    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.strip().isdigit() else None
        digest = hashlib.sha256()
        received = 0
        with open(tmp, "wb") as out, progress(
            total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc
        ) as bar:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (OSError, http.client.HTTPException) as err:
                    raise _Retryable(f"connection lost after {received} bytes: {err!r}") from None
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
    if total is not None and received != total:
        raise _Retryable(f"truncated transfer: {received} of {total} bytes (Content-Length)")
    return digest.hexdigest(), received


def download(
    url: str,
    dest: str | Path,
    sha256: str | None = None,
    retries: int = 4,
    backoff: float = 2.0,
    *,
    max_backoff: float = 120.0,
    timeout: float = 60.0,
    headers: dict[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Download `url` to `dest` atomically; return its SHA-256 (hex).

    Retries up to `retries` times after the first attempt, waiting `backoff * 2**i` seconds (capped at
    `max_backoff`, or longer if the server sends Retry-After) on connection errors, HTTP 5xx/429 and truncated
    transfers; other HTTP errors (404, 403, ...) fail at once. `sha256` pins the expected digest; without it the
    sidecar's recorded digest is expected (trust on first use, see the module docstring). A mismatch raises
    ChecksumError and leaves nothing under `dest` (a stale copy there that fails the check is removed too).
    """
    dest = Path(dest)
    pinned = normalise_sha256(sha256, f"sha256 for {url}")
    recorded = read_sidecar(dest, url)
    if pinned and recorded and pinned != recorded:
        log.warning("%s: pinned sha256 %s differs from the recorded %s; the pin wins", dest, pinned, recorded)
    expected = pinned or recorded

    if dest.is_file() and expected:
        if sha256_file(dest) == expected:
            log.info("%s already present and verified (sha256 %s); not downloading", dest, expected)
            if recorded != expected:
                write_sidecar(dest, expected, url)
            return expected
        log.warning("%s does not match sha256 %s; removing it and downloading again", dest, expected)
        dest.unlink()

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        attempt = 0
        while True:
            log.info("downloading %s -> %s (attempt %d of %d)", url, dest, attempt + 1, retries + 1)
            try:
                digest, size = _fetch_once(url, tmp, timeout, headers or {}, dest.name)
                break
            except _Retryable as err:
                if attempt >= retries:
                    raise FetchError(f"{url}: giving up after {attempt + 1} attempts; last error: {err}") from None
                delay = min(max_backoff, backoff * 2**attempt)
                if err.retry_after is not None:
                    delay = min(max_backoff, max(delay, err.retry_after))
                log.warning("%s: %s; retrying in %.1f s", url, err, delay)
                sleep(delay)
                attempt += 1
        if expected and digest != expected:
            origin = "pinned" if pinned else f"recorded in {sidecar_path(dest)} on first download"
            hint = (
                "check the pin"
                if pinned
                else "the upstream content changed; delete the sidecar to accept it, or pin the digest you trust"
            )
            raise ChecksumError(f"{url}: sha256 {digest} does not match the {origin} {expected}; {hint}")
        os.replace(tmp, dest)
        write_sidecar(dest, digest, url)
        log.info("wrote %s (%d bytes, sha256 %s%s)", dest, size, digest, "" if expected else ", recorded on first use")
        return digest
    finally:
        tmp.unlink(missing_ok=True)


def copy_verified(src: str | Path, dest: str | Path, sha256: str | None = None) -> str:
    """Copy a local file onto `dest` atomically, verifying `sha256` if given; return the digest.

    The air-gapped counterpart of `download`: no sidecar is written (the source is the user's own file).
    """
    src, dest = Path(src), Path(dest)
    if not src.is_file():
        raise FetchError(f"{src}: no such file (configured as a local source)")
    pinned = normalise_sha256(sha256, f"sha256 for {src}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(name)
    try:
        h = hashlib.sha256()
        with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
            for block in iter(lambda: fin.read(CHUNK), b""):
                h.update(block)
                fout.write(block)
            fout.flush()
            os.fsync(fout.fileno())
        digest = h.hexdigest()
        if pinned and digest != pinned:
            raise ChecksumError(f"{src}: sha256 {digest} does not match the pinned {pinned}")
        os.replace(tmp, dest)
        log.info("copied %s -> %s (sha256 %s)", src, dest, digest)
        return digest
    finally:
        tmp.unlink(missing_ok=True)


def verify_file(path: str | Path, sha256: str) -> str:
    """Raise ChecksumError unless `path` has SHA-256 `sha256`; return the digest."""
    expected = normalise_sha256(sha256, f"sha256 for {path}")
    digest = sha256_file(path)
    if expected and digest != expected:
        raise ChecksumError(f"{path}: sha256 {digest} does not match the pinned {expected}")
    return digest

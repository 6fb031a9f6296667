"""HTTP(S) downloads that either land complete and verified under their final name or not at all.

`download(url, dest, sha256=None)` streams to a temporary file beside `dest`, hashing as it goes, retries with
exponential back-off on what is worth retrying (connection errors and time-outs, HTTP 5xx and 429, transfers
shorter than their Content-Length), checks the digest and only then renames the file onto `dest`.

A retry after a dropped connection resumes: it asks for the missing bytes only (`Range: bytes=<received>-`) with
`If-Range: <validator>` (the strong ETag, else the Last-Modified date, of the response the bytes came from), so the
server sends the rest only if the file is still the same one (206) and the whole new file otherwise (200, written
from byte 0). A response without a validator is never resumed; a 206 that does not start where the partial file
ends, or a 416, starts again from byte 0. The bytes live in `.<file>.part` (locked while a process downloads;
`.<file>.part.json` records URL and validator), kept when a run gives up with bytes it can resume from, so the
next run asks for the rest. The 1.6 GB word2vec archive is what this is for.

`git_blob` pins a file by its git blob id (sha1 of `blob <size>\0` + content, what `git ls-tree` lists), for files
served from a git repository at a pinned commit that publishes no sha256 (SentEval's probing data).

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

import fcntl
import hashlib
import http.client
import json
import logging
import os
import re
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
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
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_CONTENT_RANGE = re.compile(r"^bytes (?P<start>\d+)-(?P<end>\d+)/(?P<total>\d+|\*)$")


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


def normalise_git_blob(value: str | None, what: str = "git_blob") -> str | None:
    """Lower-case git blob id (40 hex digits), or None for no pin."""
    if value is None or value == "":
        return None
    blob = str(value).strip().lower()
    if not _HEX40.match(blob):
        raise FetchError(f"{what}: {value!r} is not a git blob id (40 hex digits, as `git ls-tree` lists them)")
    return blob


def git_blob_id(path: str | Path) -> str:
    """The git blob id of a file: sha1 of `blob <size>\\0` followed by its content."""
    h = hashlib.sha1(b"blob %d\0" % os.path.getsize(path))
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def check_git_blob(path: str | Path, expected: str | None, origin: str) -> None:
    """Raise ChecksumError unless `path` has git blob id `expected` (None: nothing to check)."""
    if expected is None:
        return
    actual = git_blob_id(path)
    if actual != expected:
        raise ChecksumError(f"{origin}: git blob id {actual} does not match the pinned {expected}")


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


@dataclass
class _Partial:
    """The bytes a download holds so far, in `.<file>.part` beside its destination, so that a retry asks for the
    rest only; `.<file>.part.json` records the URL and validator they came with, so a later run resumes too."""

    path: Path
    url: str
    received: int = 0
    total: int | None = None  # the whole file's length, when the server said
    validator: str | None = None  # strong ETag, else Last-Modified, of the response the bytes came from
    digest: "hashlib._Hash" = field(default_factory=hashlib.sha256)
    lock: int = -1  # descriptor holding an exclusive flock on `path` while this process downloads

    @property
    def state(self) -> Path:
        return self.path.with_name(self.path.name + ".json")

    @classmethod
    def open(cls, dest: Path, url: str) -> "_Partial":
        """The partial download of `dest`, locked; holding what an earlier run left for the same URL."""
        part = cls(dest.with_name(f".{dest.name}.part"), url)
        part.lock = os.open(part.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(part.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(part.lock)
            raise FetchError(f"{dest}: another process is downloading it (it holds the lock on {part.path})") from None
        try:
            saved = json.loads(part.state.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            saved = {}
        size = os.fstat(part.lock).st_size
        if size and saved.get("url") == url and saved.get("validator"):
            part.received, part.validator = size, saved["validator"]
            with open(part.path, "rb") as fh:
                for block in iter(lambda: fh.read(CHUNK), b""):
                    part.digest.update(block)
            log.info("%s: an earlier run left %d bytes in %s; resuming after them", url, size, part.path)
        return part

    def restart(self) -> None:
        self.received, self.total, self.validator, self.digest = 0, None, None, hashlib.sha256()

    def remember(self) -> None:
        """Record the URL and validator the bytes come with (before any arrive), for a later run to resume."""
        tmp = self.state.with_name(self.state.name + ".tmp")
        tmp.write_text(json.dumps({"url": self.url, "validator": self.validator}) + "\n", encoding="utf-8")
        os.replace(tmp, self.state)

    def range_headers(self) -> dict[str, str]:
        """Range + If-Range for the missing bytes; none when there is nothing to resume or no validator."""
        if not (self.received and self.validator):
            return {}
        return {"Range": f"bytes={self.received}-", "If-Range": self.validator}

    def close(self) -> None:
        """Release the lock, keeping the partial file and its record only when a later run can resume from them."""
        try:
            if self.range_headers() and self.path.exists():
                log.warning("kept the %d bytes received in %s: the next run resumes after them", self.received,
                            self.path)
            else:
                self.path.unlink(missing_ok=True)
                self.state.unlink(missing_ok=True)
        finally:
            os.close(self.lock)


def _validator(headers) -> str | None:
    """What If-Range may name: a strong ETag (weak ones are not allowed there), else Last-Modified."""
    etag = (headers.get("ETag") or "").strip()
    if etag and not etag.startswith("W/"):
        return etag
    return (headers.get("Last-Modified") or "").strip() or None


def _start(response, part: _Partial, url: str) -> int:
    """Where the body of `response` goes in the file: `part.received` for a 206 that continues the partial file;
    0 (after `part.restart()`) for a 200, the whole file. Sets `part.total` and, for a 200, `part.validator`."""
    length = response.headers.get("Content-Length")
    length = int(length) if length and length.strip().isdigit() else None
    if response.status != 206:
        if part.received and part.validator:  # a resume was asked for
            log.info("%s: the server sent the whole file (changed, or no range support); from byte 0 again", url)
        part.restart()
        part.total, part.validator = length, _validator(response.headers)
        if part.validator:
            part.remember()
        return 0
    content_range = (response.headers.get("Content-Range") or "").strip()
    match = _CONTENT_RANGE.match(content_range)
    if not match or int(match["start"]) != part.received:
        part.restart()
        raise _Retryable(f"HTTP 206 with Content-Range {content_range!r} does not continue the partial file")
    part.total = int(match["total"]) if match["total"] != "*" else None
    if part.total is None and length is not None:
        part.total = part.received + length
    log.info("%s: resuming at byte %d of %s", url, part.received, part.total or "?")
    return part.received


def _fetch_once(url: str, part: _Partial, timeout: float, headers: dict[str, str], desc: str) -> tuple[str, int]:
    """One attempt: stream `url` into `part.path` (the missing bytes, when it can resume); return (sha256, bytes).
    Raises _Retryable or FetchError."""
    resume = part.range_headers()
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **headers, **resume})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        retry_after = _retry_after(err.headers)
        err.close()
        if err.code == 416 and resume:
            part.restart()
            raise _Retryable("HTTP 416: the partial file does not fit the remote one; starting again") from None
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
        start = _start(response, part, url)
        with open(part.path, "ab" if start else "wb") as out, progress(
            total=part.total, initial=start, unit="B", unit_scale=True, unit_divisor=1024, desc=desc
        ) as bar:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (OSError, http.client.HTTPException) as err:
                    raise _Retryable(f"connection lost after {part.received} bytes: {err!r}") from None
                if not chunk:
                    break
                out.write(chunk)
                part.digest.update(chunk)
                part.received += len(chunk)
                bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
    if part.total is not None and part.received != part.total:
        raise _Retryable(f"truncated transfer: {part.received} of {part.total} bytes (Content-Length)")
    return part.digest.hexdigest(), part.received


def _matches_pins(path: Path, expected: str, git_blob: str | None) -> bool:
    """Whether a file already there has the expected sha256 (and git blob id, when pinned)."""
    return sha256_file(path) == expected and (git_blob is None or git_blob_id(path) == git_blob)


def _fetch_with_retries(
    url: str, dest: Path, part: _Partial, *, retries: int, backoff: float, max_backoff: float, timeout: float,
    headers: dict[str, str], sleep: Callable[[float], None],
) -> tuple[str, int]:
    """`_fetch_once` until it succeeds, retrying what is worth retrying; the partial file carries over. `retries`
    bounds the failed attempts in a row that added nothing the next one can resume from: one that did starts the
    count (and the back-off) afresh, so a long download over a flaky link gets there."""
    tries = failures = 0
    while True:
        tries += 1
        log.info("downloading %s -> %s (attempt %d)", url, dest, tries)
        held = part.received
        try:
            return _fetch_once(url, part, timeout, headers, dest.name)
        except _Retryable as err:
            progressed = bool(part.range_headers()) and part.received > held
            failures = 0 if progressed else failures + 1
            if failures > retries:
                raise FetchError(f"{url}: giving up after {tries} attempts; last error: {err}") from None
            delay = min(max_backoff, backoff * 2 ** max(failures - 1, 0))
            if err.retry_after is not None:
                delay = min(max_backoff, max(delay, err.retry_after))
            kept = f"; resuming after the {part.received} bytes received" if part.range_headers() else ""
            log.warning("%s: %s%s; retrying in %.1f s", url, err, kept, delay)
            sleep(delay)


def download(
    url: str,
    dest: str | Path,
    sha256: str | None = None,
    retries: int = 4,
    backoff: float = 2.0,
    *,
    git_blob: str | None = None,
    max_backoff: float = 120.0,
    timeout: float = 60.0,
    headers: dict[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Download `url` to `dest` atomically; return its SHA-256 (hex).

    Retries up to `retries` times after the first attempt, waiting `backoff * 2**i` seconds (capped at
    `max_backoff`, or longer if the server sends Retry-After) on connection errors, HTTP 5xx/429 and truncated
    transfers, resuming where the dropped transfer ended (see the module docstring; an attempt that added resumable
    bytes resets the count); other HTTP errors (404, 403, ...) fail at once. `sha256` pins the expected digest; without it the sidecar's recorded digest is
    expected (trust on first use, see the module docstring); `git_blob` pins the git blob id too. A mismatch
    raises ChecksumError and leaves nothing under `dest` (a stale copy there that fails the check is removed too).
    """
    dest = Path(dest)
    pinned = normalise_sha256(sha256, f"sha256 for {url}")
    blob = normalise_git_blob(git_blob, f"git_blob for {url}")
    recorded = read_sidecar(dest, url)
    if pinned and recorded and pinned != recorded:
        log.warning("%s: pinned sha256 %s differs from the recorded %s; the pin wins", dest, pinned, recorded)
    expected = pinned or recorded

    if dest.is_file() and expected:
        if _matches_pins(dest, expected, blob):
            log.info("%s already present and verified (sha256 %s); not downloading", dest, expected)
            if recorded != expected:
                write_sidecar(dest, expected, url)
            return expected
        log.warning("%s does not match sha256 %s%s; removing it and downloading again", dest, expected,
                    f" / git blob {blob}" if blob else "")
        dest.unlink()

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _Partial.open(dest, url)
    try:
        digest, size = _fetch_with_retries(
            url, dest, part, retries=retries, backoff=backoff, max_backoff=max_backoff, timeout=timeout,
            headers=headers or {}, sleep=sleep,
        )
        part.restart()  # complete: whether it passes the checks or not, nothing is left to resume
        if expected and digest != expected:
            origin = "pinned" if pinned else f"recorded in {sidecar_path(dest)} on first download"
            hint = (
                "check the pin"
                if pinned
                else "the upstream content changed; delete the sidecar to accept it, or pin the digest you trust"
            )
            raise ChecksumError(f"{url}: sha256 {digest} does not match the {origin} {expected}; {hint}")
        check_git_blob(part.path, blob, url)
        os.replace(part.path, dest)
        write_sidecar(dest, digest, url)
        log.info("wrote %s (%d bytes, sha256 %s%s)", dest, size, digest, "" if expected else ", recorded on first use")
        return digest
    finally:
        part.close()


def copy_verified(src: str | Path, dest: str | Path, sha256: str | None = None, git_blob: str | None = None) -> str:
    """Copy a local file onto `dest` atomically, verifying `sha256` and `git_blob` if given; return the digest.

    The air-gapped counterpart of `download`: no sidecar is written (the source is the user's own file).
    """
    src, dest = Path(src), Path(dest)
    if not src.is_file():
        raise FetchError(f"{src}: no such file (configured as a local source)")
    pinned = normalise_sha256(sha256, f"sha256 for {src}")
    blob = normalise_git_blob(git_blob, f"git_blob for {src}")
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
        check_git_blob(tmp, blob, str(src))
        os.replace(tmp, dest)
        log.info("copied %s -> %s (sha256 %s)", src, dest, digest)
        return digest
    finally:
        tmp.unlink(missing_ok=True)


def verify_file(path: str | Path, sha256: str | None, git_blob: str | None = None) -> str:
    """Raise ChecksumError unless `path` has SHA-256 `sha256` (and git blob id `git_blob`); return the digest."""
    expected = normalise_sha256(sha256, f"sha256 for {path}")
    digest = sha256_file(path)
    if expected and digest != expected:
        raise ChecksumError(f"{path}: sha256 {digest} does not match the pinned {expected}")
    check_git_blob(path, normalise_git_blob(git_blob, f"git_blob for {path}"), str(path))
    return digest

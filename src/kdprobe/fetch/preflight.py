"""Pre-flight of the sources, for the login node (`make preflight`): each source that a run would fetch answers,
and its pin holds as far as it can be checked without the body, before any job is submitted.

- a URL (`sources.data.*.url`): a HEAD request (a one-byte ranged GET where the server refuses HEAD) answers 2xx;
  its size is reported. A sha256 or git blob pin needs the body: the fetch job checks it.
- a Hugging Face model (`repo` + `revision`): the revision exists in the repository and, when it is a commit hash,
  resolves to itself (a wrong or unknown hash is the error that would stop every GPT-2 and student job).
- a local `path`: the file exists and matches its sha256 / git blob pins (read here: it is on this machine).
- a source whose outputs are present already is not fetched by the run, so it is reported and not checked.

Command line: `python -m kdprobe.fetch.preflight CONFIG...` (merged as Snakemake merges --configfile); exit 1
when any source fails, after a line for each.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Callable

from kdprobe.config import read_configs
from kdprobe.errors import KdprobeError
from kdprobe.fetch.download import USER_AGENT, FetchError, verify_file
from kdprobe.fetch.fetcher import outputs_present, resolve_revision
from kdprobe.fetch.spec import COMMIT, Source, concrete, parse_sources


@dataclass(frozen=True)
class Check:
    """What the pre-flight found for one source (one name of a source with `names`)."""

    key: str
    origin: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.key}: {self.origin}: {self.detail}"


def check_url(url: str, timeout: float = 30.0) -> str:
    """`url` answers 2xx to HEAD (or to a one-byte ranged GET where HEAD is refused); its size, as a phrase."""
    for method, headers in (("HEAD", {}), ("GET", {"Range": "bytes=0-0"})):
        request = urllib.request.Request(url, method=method, headers={"User-Agent": USER_AGENT, **headers})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                size = response.headers.get("Content-Length")
                if method == "GET":  # Content-Range: bytes 0-0/<total>
                    size = (response.headers.get("Content-Range") or "/").rsplit("/", 1)[1] or None
                return f"HTTP {response.status}" + (f", {int(size):,} bytes" if size and size.isdigit() else "")
        except urllib.error.HTTPError as err:
            if method == "HEAD" and err.code in (403, 405, 501):  # HEAD refused: try a ranged GET
                continue
            raise FetchError(f"{url}: HTTP {err.code} {err.reason}") from None
        except (urllib.error.URLError, OSError) as err:
            raise FetchError(f"{url}: unreachable ({getattr(err, 'reason', err)})") from None
    raise FetchError(f"{url}: refused both HEAD and a ranged GET")


def check_model(repo: str, revision: str | None, resolve_fn: Callable[[str, str | None], str] = resolve_revision) -> str:
    """The revision exists in the Hugging Face repository `repo` (a commit hash resolves to itself)."""
    try:
        commit = resolve_fn(repo, revision)
    except Exception as exc:  # huggingface_hub raises many types (RevisionNotFoundError, ...): say which failed
        raise FetchError(f"{repo}@{revision or 'main'}: {type(exc).__name__}: {exc}") from None
    if revision and COMMIT.match(revision) and commit != revision:
        raise FetchError(f"{repo}@{revision}: the pinned revision resolves to {commit}")
    if not (revision and COMMIT.match(revision)):
        return f"revision {revision or 'main'} resolves to {commit} today (pin `revision: {commit}`)"
    return f"revision {revision} exists"


def check_source(src: Source, resolve_fn: Callable[[str, str | None], str] = resolve_revision) -> str:
    """What `check_url` / `check_model` / `verify_file` find for one concrete source; a FetchError when it fails."""
    if src.path:
        verify_file(src.path, src.sha256, src.git_blob)
        return "present, pins match" if (src.sha256 or src.git_blob) else "present (no pin)"
    if src.url:
        return check_url(src.url)
    return check_model(src.repo, src.revision, resolve_fn)


def check_sources(sources: dict | None, resolve_fn: Callable[[str, str | None], str] = resolve_revision) -> list[Check]:
    """A Check for every concrete source of the config section `sources` (present outputs are not checked)."""
    checks = []
    for src in concrete(parse_sources(sources)):
        key = f"sources.{src.section}.{src.key}"
        if outputs_present(src):
            checks.append(Check(key, src.origin, True, f"present ({', '.join(src.outputs())}): not fetched"))
            continue
        try:
            checks.append(Check(key, src.origin, True, check_source(src, resolve_fn)))
        except KdprobeError as err:
            checks.append(Check(key, src.origin, False, str(err)))
    return checks


def main(argv: list[str] | None = None) -> int:
    """`python -m kdprobe.fetch.preflight CONFIG...`: a line per source; exit 1 when any fails."""
    config = read_configs(argv if argv is not None else sys.argv[1:])
    try:
        checks = check_sources(config.get("sources"))
    except KdprobeError as err:  # a bad `sources:` entry
        print(f"preflight: {err}", file=sys.stderr)
        return 1
    for check in checks:
        print(f"preflight: {check.line()}", file=sys.stdout if check.ok else sys.stderr)
    failed = [check.key for check in checks if not check.ok]
    print(f"preflight: {len(checks) - len(failed)} of {len(checks)} sources ok"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

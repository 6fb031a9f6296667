"""Downloads, safe extraction and the `sources:` section, against a local HTTP server on 127.0.0.1 only."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from kdprobe.errors import ConfigError
from kdprobe.fetch import (
    ChecksumError,
    FetchError,
    Source,
    UnsafeArchiveError,
    concrete,
    copy_model_dir,
    download,
    extract,
    fetch_all,
    fetch_source,
    git_blob_id,
    parse_sources,
    read_sidecar,
    sidecar_path,
    snapshot_model,
)

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------- local server


class _Handler(BaseHTTPRequestHandler):
    timeout = 10  # a stuck client cannot hold a handler thread forever

    def do_GET(self):  # noqa: N802 (http.server API)
        server = self.server
        with server.lock:
            server.hits[self.path] = server.hits.get(self.path, 0) + 1
            server.requests.setdefault(self.path, []).append(dict(self.headers))
            script = server.routes.get(self.path)
            if not script:
                status, body, opts = 404, b"not found", {}
            else:
                status, body, opts = script.pop(0) if len(script) > 1 else script[0]
        headers = dict(opts.get("headers", {}))
        if self.command == "HEAD" and opts.get("no_head"):  # a server that refuses HEAD
            status, body = 405, b""
        if opts.get("ranges") and status == 200:
            status, body = self._range(body, headers)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        sent = b"" if self.command == "HEAD" else body[: opts.get("truncate", len(body))]
        self.wfile.write(sent)
        self.wfile.flush()
        with server.lock:
            server.sent[self.path] = server.sent.get(self.path, 0) + len(sent)
        self.close_connection = True

    do_HEAD = do_GET  # noqa: N815 (http.server API): the same headers, no body

    def _range(self, body: bytes, headers: dict) -> tuple[int, bytes]:
        """A server that supports `Range: bytes=N-` with `If-Range` (RFC 9110): the rest of `body` (206) when
        If-Range names the current ETag or Last-Modified, the whole body (200) otherwise."""
        wanted, if_range = self.headers.get("Range"), self.headers.get("If-Range")
        if not wanted or if_range not in (headers.get("ETag"), headers.get("Last-Modified")):
            return 200, body
        start = int(wanted.removeprefix("bytes=").removesuffix("-"))
        if start >= len(body):
            return 416, b""
        headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
        return 206, body[start:]

    def log_message(self, *args):  # keep pytest output clean
        pass


class LocalServer:
    """ThreadingHTTPServer on an ephemeral 127.0.0.1 port; `serve(path, *responses)` scripts a route: each
    request takes the next (status, body, options) response, the last one repeats."""

    def __init__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.routes, self.httpd.hits, self.httpd.lock = {}, {}, threading.Lock()
        self.httpd.requests, self.httpd.sent = {}, {}  # per path: request headers; body bytes sent
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def serve(self, path: str, *responses) -> str:
        with self.httpd.lock:
            self.httpd.routes[path] = [r if len(r) == 3 else (*r, {}) for r in responses]
        return self.url(path)

    def hits(self, path: str) -> int:
        return self.httpd.hits.get(path, 0)

    def requests(self, path: str) -> list[dict]:
        return self.httpd.requests.get(path, [])

    def sent(self, path: str) -> int:
        return self.httpd.sent.get(path, 0)


@pytest.fixture
def server(monkeypatch):
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    srv = LocalServer()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()
        srv.thread.join(timeout=5)


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


# --------------------------------------------------------------------------------------------- archives


def make_zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def make_tar(entries: dict[str, bytes], mode: str = "w:gz", extra=()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for info in extra:
            tf.addfile(info)
    return buf.getvalue()


GLUE_LIKE = {"CoLA/train.tsv": b"gj04\t1\t\tOur friends won't buy this analysis.\n", "CoLA/dev.tsv": b"d\t0\t*\tx y.\n"}


# --------------------------------------------------------------------------------------------- download


def test_download_success_records_sidecar_and_reuses(server, tmp_path):
    body = b"hello world\n" * 1000
    url = server.serve("/data.txt", (200, body))
    dest = tmp_path / "out" / "data.txt"
    digest = download(url, dest)
    assert digest == sha(body) and dest.read_bytes() == body
    side = sidecar_path(dest).read_text().splitlines()
    assert side[0] == f"{sha(body)}  data.txt" and side[1] == f"# source: {url}"
    assert read_sidecar(dest, url) == sha(body) and read_sidecar(dest, url + "?other") is None
    assert download(url, dest) == sha(body)  # present and verified: no second request
    assert server.hits("/data.txt") == 1
    assert leftovers(dest.parent) == []


def test_pinned_checksum_mismatch_leaves_nothing(server, tmp_path):
    url = server.serve("/a.txt", (200, b"actual content"))
    dest = tmp_path / "a.txt"
    with pytest.raises(ChecksumError, match="does not match the pinned"):
        download(url, dest, sha256="0" * 64)
    assert not dest.exists() and not sidecar_path(dest).exists()
    assert leftovers(tmp_path) == []
    assert download(url, dest, sha256=sha(b"actual content")) == sha(b"actual content")
    dest.write_bytes(b"corrupted")  # a damaged copy under the final name is replaced, or removed on failure
    assert download(url, dest) == sha(b"actual content") and dest.read_bytes() == b"actual content"
    dest.write_bytes(b"corrupted")
    with pytest.raises(ChecksumError):
        download(url, dest, sha256="1" * 64)
    assert not dest.exists()


def test_trust_on_first_use_detects_upstream_change(server, tmp_path):
    url = server.serve("/nlu.md", (200, b"## intent:greet\n- hi\n"))
    dest = tmp_path / "nlu.md"
    first = download(url, dest)
    dest.unlink()  # as Snakemake does before it re-runs a job
    server.serve("/nlu.md", (200, b"## intent:greet\n- hi\n- hello\n"))
    with pytest.raises(ChecksumError, match="recorded in .*upstream content changed"):
        download(url, dest)
    assert not dest.exists() and read_sidecar(dest, url) == first
    sidecar_path(dest).unlink()  # accept the new content
    assert download(url, dest) == sha(b"## intent:greet\n- hi\n- hello\n")


def test_truncated_transfer_is_retried(server, tmp_path):
    body = bytes(range(256)) * 400
    url = server.serve("/t.bin", (200, body, {"truncate": 1000}), (200, body))
    sleeps = Sleeps()
    assert download(url, tmp_path / "t.bin", backoff=0.5, sleep=sleeps) == sha(body)
    assert server.hits("/t.bin") == 2 and sleeps == [0.5]
    assert (tmp_path / "t.bin").read_bytes() == body


def test_persistently_truncated_transfer_fails_cleanly(server, tmp_path):
    url = server.serve("/t.bin", (200, b"x" * 5000, {"truncate": 100}))
    sleeps = Sleeps()
    with pytest.raises(FetchError, match=r"giving up after 3 attempts.*truncated transfer: 100 of 5000"):
        download(url, tmp_path / "t.bin", retries=2, backoff=1.0, sleep=sleeps)
    assert server.hits("/t.bin") == 3 and sleeps == [1.0, 2.0]
    assert not (tmp_path / "t.bin").exists() and leftovers(tmp_path) == []


def test_server_errors_then_success(server, tmp_path):
    url = server.serve("/s.txt", (500, b"oops"), (500, b"oops"), (200, b"finally"))
    sleeps = Sleeps()
    assert download(url, tmp_path / "s.txt", backoff=0.25, sleep=sleeps) == sha(b"finally")
    assert server.hits("/s.txt") == 3 and sleeps == [0.25, 0.5]


def test_429_honours_retry_after_within_the_cap(server, tmp_path):
    url = server.serve("/r.txt", (429, b"slow down", {"headers": {"Retry-After": "7"}}), (200, b"ok"))
    sleeps = Sleeps()
    download(url, tmp_path / "r.txt", backoff=0.1, max_backoff=5.0, sleep=sleeps)
    assert sleeps == [5.0]


def test_404_fails_at_once(server, tmp_path):
    url = server.url("/missing.zip")
    sleeps = Sleeps()
    with pytest.raises(FetchError, match=r"missing\.zip: HTTP 404 .*not retried"):
        download(url, tmp_path / "m.zip", sleep=sleeps)
    assert server.hits("/missing.zip") == 1 and sleeps == []
    assert list(tmp_path.iterdir()) == []


def test_connection_refused_is_retried_then_fails(tmp_path):
    import socket

    with socket.socket() as sock:  # a port nobody listens on once the socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps = Sleeps()
    with pytest.raises(FetchError, match="giving up after 2 attempts.*connection failed"):
        download(f"http://127.0.0.1:{port}/x", tmp_path / "x", retries=1, sleep=sleeps, timeout=5)
    assert sleeps == [2.0]


# A stand-in for the 1.6 GB word2vec archive: several read chunks long, so a drop lands mid-stream as it would.
W2V = bytes(range(256)) * 9000
W2V_HEADERS = {"ETag": '"w2v-1"', "Last-Modified": "Tue, 01 Mar 2016 00:00:00 GMT"}


def test_dropped_download_resumes_with_range_and_if_range(server, tmp_path):
    drop = len(W2V) // 3
    url = server.serve("/GoogleNews-vectors-negative300.bin.gz",
                       (200, W2V, {"headers": W2V_HEADERS, "ranges": True, "truncate": drop}),
                       (200, W2V, {"headers": W2V_HEADERS, "ranges": True}))
    sources = {"data": {"word2vec": {"url": url, "sha256": sha(W2V),
                                     "output": str(tmp_path / "embeddings/GoogleNews-vectors-negative300.bin.gz")}}}
    [out] = fetch_all(sources, backoff=0)
    assert out.read_bytes() == W2V
    first, second = server.requests("/GoogleNews-vectors-negative300.bin.gz")
    assert "Range" not in first
    assert second["Range"] == f"bytes={drop}-" and second["If-Range"] == '"w2v-1"'
    assert server.sent("/GoogleNews-vectors-negative300.bin.gz") == len(W2V)  # no byte sent twice
    assert leftovers(out.parent) == []


def test_drops_that_make_progress_do_not_use_up_the_retries(server, tmp_path):
    third = len(W2V) // 3
    opts = {"headers": W2V_HEADERS, "ranges": True}
    # each response stops a third further into the file (the handler truncates the 206 body it sends)
    url = server.serve("/flaky.bin", (200, W2V, {**opts, "truncate": third}), (200, W2V, {**opts, "truncate": third}),
                       (200, W2V, opts))
    sleeps = Sleeps()
    assert download(url, tmp_path / "flaky.bin", sha256=sha(W2V), retries=1, backoff=1.0, sleep=sleeps) == sha(W2V)
    assert [r.get("Range") for r in server.requests("/flaky.bin")] == [None, f"bytes={third}-", f"bytes={2 * third}-"]
    assert sleeps == [1.0, 1.0] and server.sent("/flaky.bin") == len(W2V)
    assert leftovers(tmp_path) == []


def test_a_later_run_resumes_what_a_failed_one_left(server, tmp_path):
    third, opts = len(W2V) // 3, {"headers": W2V_HEADERS, "ranges": True}
    url = server.serve("/stuck.bin", (200, W2V, {**opts, "truncate": third}), (500, b"down", {}))
    dest = tmp_path / "GoogleNews-vectors-negative300.bin.gz"
    with pytest.raises(FetchError, match="giving up after 3 attempts.*HTTP 500"):
        download(url, dest, sha256=sha(W2V), retries=1, backoff=1.0, sleep=Sleeps())
    assert not dest.exists()
    assert leftovers(tmp_path) == [f".{dest.name}.part", f".{dest.name}.part.json"]  # hidden: never an output
    server.serve("/stuck.bin", (200, W2V, opts))  # the network is back: the next run asks for the rest only
    assert download(url, dest, sha256=sha(W2V), backoff=0) == sha(W2V) and dest.read_bytes() == W2V
    assert server.requests("/stuck.bin")[-1]["Range"] == f"bytes={third}-"
    assert server.sent("/stuck.bin") == len(W2V) + 2 * len(b"down") and leftovers(tmp_path) == []
    other = server.serve("/other.bin", (200, W2V, opts))  # what was left for another URL is not resumed
    (tmp_path / ".o.part").write_bytes(b"x" * 10)
    (tmp_path / ".o.part.json").write_text(f'{{"url": "{url}", "validator": "\\"w2v-1\\""}}')
    assert download(other, tmp_path / "o", backoff=0) == sha(W2V) and "Range" not in server.requests("/other.bin")[0]


def test_a_download_in_progress_is_not_joined(server, tmp_path):
    import fcntl

    url = server.serve("/busy.bin", (200, b"data"))
    with open(tmp_path / ".busy.bin.part", "wb") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as another process's download holds it
        with pytest.raises(FetchError, match="another process is downloading it"):
            download(url, tmp_path / "busy.bin")
    assert server.hits("/busy.bin") == 0
    assert download(url, tmp_path / "busy.bin") == sha(b"data")


def test_resume_of_a_changed_file_starts_again(server, tmp_path):
    changed = W2V[::-1]
    url = server.serve("/w2v.bin.gz",
                       (200, W2V, {"headers": W2V_HEADERS, "ranges": True, "truncate": 5000}),
                       (200, changed, {"headers": {"ETag": '"w2v-2"'}, "ranges": True}))
    assert download(url, tmp_path / "w2v.bin.gz", sha256=sha(changed), backoff=0, sleep=Sleeps()) == sha(changed)
    assert (tmp_path / "w2v.bin.gz").read_bytes() == changed  # the new file whole, nothing of the old one
    assert server.requests("/w2v.bin.gz")[1]["If-Range"] == '"w2v-1"'


def test_resume_uses_last_modified_for_a_weak_etag_and_never_resumes_without_a_validator(server, tmp_path):
    weak = {"ETag": 'W/"w2v"', "Last-Modified": "Tue, 01 Mar 2016 00:00:00 GMT"}
    url = server.serve("/weak.bin", (200, W2V, {"headers": weak, "ranges": True, "truncate": 7000}),
                       (200, W2V, {"headers": weak, "ranges": True}))
    download(url, tmp_path / "weak.bin", backoff=0, sleep=Sleeps())
    assert server.requests("/weak.bin")[1]["If-Range"] == weak["Last-Modified"]
    url = server.serve("/bare.bin", (200, W2V, {"ranges": True, "truncate": 7000}), (200, W2V, {"ranges": True}))
    assert download(url, tmp_path / "bare.bin", backoff=0, sleep=Sleeps()) == sha(W2V)
    assert "Range" not in server.requests("/bare.bin")[1] and server.sent("/bare.bin") == 7000 + len(W2V)


def test_resume_that_does_not_fit_starts_from_byte_zero(server, tmp_path):
    elsewhere = {**W2V_HEADERS, "Content-Range": f"bytes 10-{len(W2V) - 1}/{len(W2V)}"}
    url = server.serve("/odd.bin", (200, W2V, {"headers": W2V_HEADERS, "truncate": 3000}),
                       (206, W2V[10:], {"headers": elsewhere}),  # not where the partial file ends
                       (200, W2V, {"headers": W2V_HEADERS}))
    assert download(url, tmp_path / "odd.bin", backoff=0, sleep=Sleeps()) == sha(W2V)
    assert (tmp_path / "odd.bin").read_bytes() == W2V
    assert "Range" not in server.requests("/odd.bin")[2]
    url = server.serve("/gone.bin", (200, W2V, {"headers": W2V_HEADERS, "truncate": 3000}),
                       (416, b"", {}), (200, W2V, {"headers": W2V_HEADERS}))
    assert download(url, tmp_path / "gone.bin", backoff=0, sleep=Sleeps()) == sha(W2V)
    assert [("Range" in r) for r in server.requests("/gone.bin")] == [False, True, False]


def git_blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_git_blob_id_is_what_git_computes(tmp_path):
    import shutil
    import subprocess

    path = tmp_path / "tree_depth.txt"
    path.write_bytes(b"tr\t5\ta b c .\n" * 100)
    assert git_blob_id(path) == git_blob(path.read_bytes())
    if shutil.which("git"):
        assert git_blob_id(path) == subprocess.run(["git", "hash-object", str(path)], capture_output=True,
                                                   text=True, check=True).stdout.strip()


def test_git_blob_pin_is_checked_before_the_file_lands(server, tmp_path):
    body = b"tr\tPRES\tit works .\n"
    url = server.serve("/past_present.txt", (200, body))
    dest = tmp_path / "past_present.txt"
    with pytest.raises(ChecksumError, match=f"git blob id {git_blob(body)} does not match the pinned {'a' * 40}"):
        download(url, dest, git_blob="a" * 40)
    assert not dest.exists() and leftovers(tmp_path) == []
    assert download(url, dest, git_blob=git_blob(body)) == sha(body)
    assert download(url, dest, git_blob=git_blob(body)) == sha(body) and server.hits("/past_present.txt") == 2
    local = Source("probing", "data", path=str(dest), git_blob="b" * 40, output=str(tmp_path / "copy.txt"))
    with pytest.raises(ChecksumError, match="git blob id"):
        fetch_source(local)
    assert not (tmp_path / "copy.txt").exists()


# --------------------------------------------------------------------------------------------- extraction


@pytest.mark.parametrize("kind", ["zip", "tar.gz", "tar"])
def test_extract_archives(tmp_path, kind):
    data = make_zip(GLUE_LIKE) if kind == "zip" else make_tar(GLUE_LIKE, "w:gz" if kind == "tar.gz" else "w")
    archive = tmp_path / f"CoLA.{kind}"
    archive.write_bytes(data)
    paths = extract(archive, tmp_path / "all")
    assert sorted(p.relative_to(tmp_path / "all").as_posix() for p in paths) == sorted(GLUE_LIKE)
    one = extract(archive, tmp_path / "one", members=["CoLA/dev.tsv"])
    assert one == [tmp_path / "one" / "CoLA" / "dev.tsv"] and one[0].read_bytes() == GLUE_LIKE["CoLA/dev.tsv"]
    assert len(extract(archive, tmp_path / "dir", members=["CoLA"])) == 2  # a directory member: all below it
    with pytest.raises(FetchError, match="no member 'CoLA/test.tsv'"):
        extract(archive, tmp_path / "none", members=["CoLA/test.tsv"])
    assert not (tmp_path / "none").exists() and leftovers(tmp_path) == []


def _link(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def _device(name):
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    return info


def _zip_symlink(name, target):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo(name)
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, target)
    return buf.getvalue()


def _crafted(tmp_path: Path) -> dict[str, bytes]:
    outside = tmp_path / "outside.txt"
    return {
        "tar-dotdot": make_tar({"ok.txt": b"fine", "../outside.txt": b"pwned"}),
        "tar-nested-dotdot": make_tar({"a/../../outside.txt": b"pwned"}),
        "tar-absolute": make_tar({str(outside): b"pwned"}),
        "tar-symlink-out": make_tar({"ok.txt": b"fine"}, extra=[_link("link", str(tmp_path))]),
        "tar-symlink-in": make_tar({"ok.txt": b"fine"}, extra=[_link("alias.txt", "ok.txt")]),
        "tar-hardlink": make_tar({"ok.txt": b"fine"}, extra=[_link("hard", "../outside.txt", tarfile.LNKTYPE)]),
        "tar-device": make_tar({"ok.txt": b"fine"}, extra=[_device("dev/null")]),
        "zip-dotdot": make_zip({"ok.txt": b"fine", "../outside.txt": b"pwned"}),
        "zip-absolute": make_zip({str(outside): b"pwned"}),
        "zip-backslash": make_zip({"..\\outside.txt": b"pwned"}),
        "zip-symlink": _zip_symlink("link", str(tmp_path)),
    }


@pytest.mark.parametrize(
    "case, reason",
    [
        ("tar-dotdot", "'..' path component"),
        ("tar-nested-dotdot", "'..' path component"),
        ("tar-absolute", "absolute path"),
        ("tar-symlink-out", "symlink"),
        ("tar-symlink-in", "symlink"),  # all links are refused, even harmless ones
        ("tar-hardlink", "hardlink"),
        ("tar-device", "device file"),
        ("zip-dotdot", "'..' path component"),
        ("zip-absolute", "absolute path"),
        ("zip-backslash", "'..' path component"),
        ("zip-symlink", "symlink"),
    ],
)
def test_crafted_archives_are_refused(tmp_path, case, reason):
    work = tmp_path / "work"
    work.mkdir()
    archive = work / "evil.bin"
    archive.write_bytes(_crafted(tmp_path)[case])
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(UnsafeArchiveError, match="refusing unsafe member") as info:
        extract(archive, work / "dest")
    assert reason in info.value.reason
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing extracted anywhere, no temp dirs left
    assert not (tmp_path / "outside.txt").exists()


def test_non_archive_is_an_error(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"<html>not a zip</html>")
    with pytest.raises(FetchError, match="neither a zip nor a tar"):
        extract(tmp_path / "x.zip", tmp_path / "d")


# --------------------------------------------------------------------------------------------- sources


def test_thesis_config_sources_cover_the_paths_the_config_reads():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    sources = parse_sources(config["sources"])
    jobs = concrete(sources)
    produced = {p for s in jobs for p in s.outputs()}
    for task, entry in config["tasks"].items():
        for split in ("train", "dev", "test"):
            if split in entry["data"]:
                assert entry["data"][split] in produced, (task, split)
    for name in config["probe"]["tasks"]:
        assert f"{config['probe']['data_dir']}/{name}.txt" in produced
    models = {s.key: s for s in sources if s.kind == "model"}
    assert set(models) == {"bert-large-uncased", "gpt2-medium"}
    for src in models.values():
        assert len(src.revision) == 40 and src.output == f"resources/models/{src.key}"
    pinned = [s.url for s in jobs if s.url and "githubusercontent" in s.url]
    assert pinned and all(len(u.split("/")[5]) == 40 for u in pinned)  # a commit, not a branch


def test_thesis_config_pins_every_download():
    """Every file the thesis config downloads has a sha256 or git blob pin (no trust on first use left)."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    jobs = [s for s in concrete(parse_sources(config["sources"])) if s.url]
    assert {s.key for s in jobs} == {"cola", "sst2", "sara", "probing", "word2vec"}
    unpinned = [(s.key, s.url) for s in jobs if not (s.sha256 or s.git_blob)]
    assert unpinned == []


@pytest.mark.parametrize(
    "entry, key",
    [
        ({"url": "http://x/a", "path": "/a", "output": "o"}, "sources.data.bad"),
        ({"url": "http://x/a"}, "sources.data.bad"),
        ({"url": "http://x/a", "output": "o", "mirror": "y"}, "sources.data.bad.mirror"),
        ({"url": "http://x/a", "output": "o", "sha256": "abc"}, "sources.data.bad.sha256"),
        ({"url": "http://x/{name}", "output": "o", "names": ["a"]}, "sources.data.bad.output"),
        ({"url": "http://x/a", "output": "o/{name}", "names": ["a"]}, "sources.data.bad.url"),
        ({"url": "http://x/a", "output": "o/{x}"}, "sources.data.bad.output"),
        ({"url": "http://x/a", "output": "o", "git_blob": "abc"}, "sources.data.bad.git_blob"),
        ({"url": "http://x/a", "output": "o", "git_blob": {"a": "0" * 40}}, "sources.data.bad.git_blob"),
        ({"url": "http://x/{name}", "output": "o/{name}", "names": ["a"], "git_blob": {"b": "0" * 40}},
         "sources.data.bad.git_blob.b"),
    ],
)
def test_bad_source_entries_name_the_key(entry, key):
    with pytest.raises(ConfigError) as info:
        parse_sources({"data": {"bad": entry}})
    assert info.value.key == key


def test_duplicate_outputs_are_refused():
    with pytest.raises(ConfigError, match="also produced by"):
        parse_sources({"data": {"a": {"url": "http://x/a", "output": "r/x.txt"},
                                "b": {"path": "/b", "output": "r/./x.txt"}}})


def test_fetch_sources_through_the_server(server, tmp_path):
    zip_bytes = make_zip({**GLUE_LIKE, "__MACOSX/._junk": b"", "CoLA/original/raw.tsv": b"r"})
    tgz_bytes = make_tar({"SST-2/train.tsv": b"sentence\tlabel\ngood\t1\n", "SST-2/dev.tsv": b"sentence\tlabel\n"})
    probe = {n: f"tr\tX\t{n} sentence .\n".encode() for n in ("tree_depth", "past_present")}
    server.serve("/glue/CoLA.zip", (200, zip_bytes))
    server.serve("/glue/SST-2.tar.gz", (200, tgz_bytes))
    for n, body in probe.items():
        server.serve(f"/probing/{n}.txt", (200, body))
    raw = tmp_path / "resources"
    config = {
        "data": {
            "cola": {"url": server.url("/glue/CoLA.zip"), "sha256": sha(zip_bytes),
                     "extract": {"CoLA/train.tsv": f"{raw}/raw/cola/train.tsv",
                                 "CoLA/dev.tsv": f"{raw}/raw/cola/dev.tsv"}},
            "sst2": {"url": server.url("/glue/SST-2.tar.gz"),
                     "extract": {"SST-2/train.tsv": f"{raw}/raw/sst2/train.tsv"}},
            "probing": {"url": server.url("/probing/{name}.txt"), "names": list(probe),
                        "sha256": {"tree_depth": sha(probe["tree_depth"])}, "output": f"{raw}/probing/{{name}}.txt",
                        "git_blob": {n: git_blob(body) for n, body in probe.items()}},
        }
    }
    cache = tmp_path / "downloads"
    written = fetch_all(config, cache_dir=cache, backoff=0)
    assert len(written) == 5
    assert (raw / "raw/cola/dev.tsv").read_bytes() == GLUE_LIKE["CoLA/dev.tsv"]
    assert (raw / "raw/sst2/train.tsv").read_bytes().startswith(b"sentence\tlabel")
    assert (raw / "probing/past_present.txt").read_bytes() == probe["past_present"]
    assert read_sidecar(cache / "cola" / "CoLA.zip") == sha(zip_bytes)
    assert not (raw / "raw/cola/CoLA").exists() and not list((raw / "raw/cola").glob(".*"))
    # outputs lost: the archive is re-verified from the cache, not downloaded again
    (raw / "raw/cola/train.tsv").unlink()
    fetch_all(config, keys=["cola"], cache_dir=cache)
    assert server.hits("/glue/CoLA.zip") == 1 and (raw / "raw/cola/train.tsv").exists()
    assert fetch_all(config, cache_dir=cache) == []  # everything present


def test_command_line_fetches_from_a_config(server, tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("fetch_script", ROOT / "workflow/scripts/fetch.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    body = b"## intent:greet\n- hi\n"
    url = server.serve("/nlu.md", (200, body))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"sources": {"data": {
        "sara": {"url": url, "output": "resources/raw/sara/nlu.md"},
        "gone": {"url": server.url("/gone.txt"), "output": "resources/gone.txt"},
    }}}))
    monkeypatch.chdir(tmp_path)
    assert script.main(["--config", str(config), "sara"]) == 0
    assert (tmp_path / "resources/raw/sara/nlu.md").read_bytes() == body
    assert script.main(["--config", str(config), "sara"]) == 0 and server.hits("/nlu.md") == 1  # present: skipped
    assert script.main(["--config", str(config), "gone"]) == 1  # 404: a clear error, exit status 1


def test_local_path_sources_are_copied_and_verified(tmp_path):
    src_file = tmp_path / "nlu.md"
    src_file.write_bytes(b"## intent:greet\n- hi\n")
    archive = tmp_path / "CoLA.zip"
    archive.write_bytes(make_zip(GLUE_LIKE))
    good = Source("sara", "data", path=str(src_file), sha256=sha(src_file.read_bytes()),
                  output=str(tmp_path / "o/nlu.md"))
    assert fetch_source(good) == [tmp_path / "o/nlu.md"]
    assert not sidecar_path(tmp_path / "o/nlu.md").exists()  # the user's file: verified, nothing recorded
    with pytest.raises(ChecksumError):
        fetch_source(Source("sara", "data", path=str(src_file), sha256="1" * 64, output=str(tmp_path / "p/nlu.md")))
    assert not (tmp_path / "p/nlu.md").exists()
    cola = Source("cola", "data", path=str(archive), extract={"CoLA/train.tsv": str(tmp_path / "c/train.tsv")})
    fetch_source(cola, cache_dir=tmp_path / "cache")
    assert (tmp_path / "c/train.tsv").read_bytes() == GLUE_LIKE["CoLA/train.tsv"]


# --------------------------------------------------------------------------------------------- models


def _fake_snapshot(files: dict[str, bytes], calls: list):
    def snapshot(repo_id, *, revision, local_dir, allow_patterns):
        calls.append((repo_id, revision, list(allow_patterns)))
        for name, data in files.items():
            (Path(local_dir) / name).parent.mkdir(parents=True, exist_ok=True)
            (Path(local_dir) / name).write_bytes(data)
        (Path(local_dir) / ".cache/huggingface").mkdir(parents=True)

    return snapshot


MODEL = {"config.json": b"{}", "model.safetensors": b"weights", "tokenizer.json": b"{}", "vocab.txt": b"[PAD]\n"}


def test_snapshot_model_keeps_safetensors_and_records_the_commit(tmp_path):
    calls: list = []
    out = tmp_path / "models/bert"
    commit = "6da4b6a26a1877e173fca3225479512db81a5e5b"
    snapshot_model("google-bert/bert-large-uncased", out, commit, snapshot_fn=_fake_snapshot(MODEL, calls))
    (repo, revision, patterns), = calls
    assert revision == commit and "*.safetensors" in patterns
    assert not any(p.endswith((".bin", ".pt", ".ckpt", ".h5", ".msgpack")) or p == "*" for p in patterns)
    record = yaml.safe_load((out / ".kdprobe-source.json").read_text())
    assert record["commit"] == commit and {f["file"] for f in record["files"]} == set(MODEL)
    assert not (out / ".cache").exists()


def test_snapshot_model_resolves_a_branch_and_refuses_pickles(tmp_path):
    calls: list = []
    snapshot_model("gpt2-medium", tmp_path / "g", "main", snapshot_fn=_fake_snapshot(MODEL, calls),
                   resolve_fn=lambda repo, rev: "f" * 40)
    assert calls[0][1] == "f" * 40
    pickled = {"config.json": b"{}", "pytorch_model.bin": b"pickle"}
    with pytest.raises(FetchError, match="pickled weights"):
        snapshot_model("x/y", tmp_path / "p", "a" * 40, snapshot_fn=_fake_snapshot(pickled, []))
    assert not (tmp_path / "p").exists() and leftovers(tmp_path) == []


def test_real_hub_call_fails_cleanly_offline(tmp_path):
    # conftest sets HF_HUB_OFFLINE=1: this exercises the huggingface_hub call itself without any network
    with pytest.raises(FetchError, match="snapshot failed"):
        snapshot_model("google-bert/bert-large-uncased", tmp_path / "m", "6da4b6a26a1877e173fca3225479512db81a5e5b")
    assert list(tmp_path.iterdir()) == []


def test_copy_model_dir_filters_files(tmp_path):
    src = tmp_path / "local"
    src.mkdir()
    for name, data in {**MODEL, "pytorch_model.bin": b"pickle", "README.md": b"hi"}.items():
        (src / name).write_bytes(data)
    out = copy_model_dir(src, tmp_path / "models/m")
    assert sorted(p.name for p in out.iterdir()) == sorted([*MODEL, ".kdprobe-source.json"])
    (src / "model.safetensors").unlink()
    with pytest.raises(FetchError, match="no \\*.safetensors"):
        copy_model_dir(src, tmp_path / "models/n")


# --------------------------------------------------------------------------------------------- Snakemake


@pytest.mark.workflow
def test_fetch_rules_run_under_snakemake(server, tmp_path):
    import subprocess
    import sys

    zip_bytes = make_zip(GLUE_LIKE)
    server.serve("/CoLA.zip", (200, zip_bytes))
    server.serve("/p/tree_depth.txt", (200, b"tr\t5\ta b c .\n"))
    local_model = tmp_path / "local_model"
    local_model.mkdir()
    for name, data in MODEL.items():
        (local_model / name).write_bytes(data)
    config = {
        "resources": {"default": {"threads": 1, "mem_mb": 1000, "runtime": 10}},
        "sources": {
            "data": {
                "cola": {"url": server.url("/CoLA.zip"), "sha256": sha(zip_bytes),
                         "extract": {"CoLA/train.tsv": "resources/raw/cola/train.tsv",
                                     "CoLA/dev.tsv": "resources/raw/cola/dev.tsv"}},
                "probing": {"url": server.url("/p/{name}.txt"), "names": ["tree_depth", "past_present"],
                            "output": "resources/probing/{name}.txt",
                            "git_blob": {"tree_depth": git_blob(b"tr\t5\ta b c .\n")}},
            },
            "models": {
                "bert-large-uncased": {"path": str(local_model), "output": "resources/models/bert-large-uncased"}
            },
        },
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "Snakefile").write_text(
        "def rule_resources(name, stage=None):\n    return {'mem_mb': 1000, 'runtime': 10}\n\n"
        "def rule_threads(name, stage=None):\n    return 1\n\n"
        f"include: {str(ROOT / 'workflow/rules/fetch.smk')!r}\n"
    )
    targets = ["resources/raw/cola/dev.tsv", "resources/probing/tree_depth.txt", "resources/models/bert-large-uncased"]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("snakemake")), *targets, "--cores", "3", "--configfile", "config.yaml"],
        cwd=tmp_path, env=env, text=True, capture_output=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "resources/raw/cola/train.tsv").read_bytes() == GLUE_LIKE["CoLA/train.tsv"]
    assert (tmp_path / "resources/probing/tree_depth.txt").exists()
    assert not (tmp_path / "resources/probing/past_present.txt").exists()  # only what was asked for
    assert (tmp_path / "resources/models/bert-large-uncased/model.safetensors").exists()
    assert "fetching cola" in (tmp_path / "logs/fetch/cola.log").read_text()
    assert (tmp_path / "logs/fetch/probing/tree_depth.log").exists()
    assert server.hits("/CoLA.zip") == 1

"""kdprobe.fetch.preflight against the loopback server of tests/test_fetch.py (fixture `server`, via conftest):
each source a run would fetch answers without its body being downloaded, model revisions resolve to themselves,
local pins hold, and the thesis config's sources all pass when the server serves them."""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from kdprobe.fetch import preflight

ROOT = Path(__file__).resolve().parents[1]
BODY = b"sentence\tlabel\n" * 1000


def same(repo: str, revision: str | None) -> str:
    """A Hugging Face that knows every revision it is asked for."""
    return revision or "0" * 40


def test_a_url_answers_and_nothing_is_downloaded(server, tmp_path):
    url = server.serve("/CoLA.zip", (200, BODY))
    sources = {"data": {"cola": {"url": url, "sha256": hashlib.sha256(BODY).hexdigest(),
                                 "output": str(tmp_path / "cola.zip")}}}
    [check] = preflight.check_sources(sources, same)
    assert check.ok and check.key == "sources.data.cola" and f"{len(BODY):,} bytes" in check.detail
    assert server.hits("/CoLA.zip") == 1 and server.sent("/CoLA.zip") == 0  # a HEAD request: no body


def test_a_server_that_refuses_head_gets_a_one_byte_get(server, tmp_path):
    url = server.serve("/w2v.bin.gz", (200, BODY, {"no_head": True}))
    [check] = preflight.check_sources({"data": {"w2v": {"url": url, "output": str(tmp_path / "w2v")}}}, same)
    assert check.ok and "HTTP 200" in check.detail, check
    assert [r.get("Range") for r in server.requests("/w2v.bin.gz")] == [None, "bytes=0-0"]


def test_a_missing_url_fails_naming_it_and_main_exits_1(server, tmp_path, capsys):
    gone = server.url("/gone.zip")
    ok = server.serve("/ok.txt", (200, b"x"))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"sources": {"data": {
        "gone": {"url": gone, "output": str(tmp_path / "gone.zip")},
        "ok": {"url": ok, "output": str(tmp_path / "ok.txt")},
    }}}))
    assert preflight.main([str(config)]) == 1
    out = capsys.readouterr()
    assert f"FAIL sources.data.gone: {gone}: {gone}: HTTP 404" in out.err
    assert "ok   sources.data.ok" in out.out and "1 of 2 sources ok; failed: sources.data.gone" in out.out


def test_model_revisions_must_exist_and_resolve_to_themselves():
    pinned = "6dcaa7a952f72f9298047fd5137cd6e4f05f41da"
    models = {"models": {"gpt2-medium": {"repo": "openai-community/gpt2-medium", "revision": pinned,
                                         "output": "resources/models/gpt2-medium-absent"}}}
    assert preflight.check_sources(models, same)[0].ok

    class RevisionNotFoundError(Exception):  # huggingface_hub's, without the HTTP response it needs
        pass

    def unknown(repo, revision):
        raise RevisionNotFoundError(f"404 Client Error: Revision Not Found for url: .../{repo}/revision/{revision}")

    [check] = preflight.check_sources(models, unknown)
    assert not check.ok and "openai-community/gpt2-medium@6dcaa7a9" in check.detail
    assert "RevisionNotFoundError" in check.detail
    [moved] = preflight.check_sources(models, lambda repo, revision: "1" * 40)
    assert not moved.ok and f"resolves to {'1' * 40}" in moved.detail


def test_present_outputs_are_not_checked_and_local_pins_are(server, tmp_path):
    present = tmp_path / "present.txt"
    present.write_bytes(b"here")
    local = tmp_path / "nlu.md"
    local.write_bytes(b"## intent:greet\n- hi\n")
    sources = {"data": {
        "present": {"url": server.url("/never"), "output": str(present)},
        "local": {"path": str(local), "sha256": "0" * 64, "output": str(tmp_path / "out.md")},
    }}
    checks = {check.key: check for check in preflight.check_sources(sources, same)}
    assert checks["sources.data.present"].ok and server.hits("/never") == 0
    assert not checks["sources.data.local"].ok and str(local) in checks["sources.data.local"].detail


def test_the_thesis_configs_sources_pass_against_a_server_that_has_them(server, tmp_path):
    sources = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["sources"]
    for section in sources.values():
        for entry in section.values():
            entry.update({k: str(tmp_path / v) for k, v in entry.items() if k == "output"})
            if "extract" in entry:
                entry["extract"] = {m: str(tmp_path / out) for m, out in entry["extract"].items()}
            if "url" in entry:  # the same path on the loopback server
                entry["url"] = server.url(urlsplit(entry["url"]).path)
                names = entry.get("names") or [None]
                for name in names:
                    served = urlsplit(entry["url"].replace("{name}", name or "")).path
                    server.serve(served, (200, b"data"))
    checks = preflight.check_sources(sources, same)
    assert checks and all(check.ok for check in checks), [c.line() for c in checks if not c.ok]
    keys = {check.key for check in checks}
    assert {"sources.data.cola", "sources.data.word2vec", "sources.models.gpt2-medium"} <= keys

"""kdprobe.fetch.preflight against the loopback server of tests/test_fetch.py (fixture `server`, via conftest):
each source a run would fetch answers without its body being downloaded, model revisions resolve to themselves,
local pins hold, and the thesis config's sources all pass when the server serves them; and `make preflight` of
the thesis config on the local SLURM test cluster."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import smk
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


def _served_overlay(server, sources: dict) -> dict:
    """`sources` of an overlay that points every URL of the thesis config at the loopback server, which serves a
    small file in its place, pinned by that file's sha256 and git blob ids where the thesis config pins them; and
    a Hugging Face stand-in (HF_ENDPOINT) that knows each pinned model revision."""
    overlay: dict = {"data": {}, "models": {}}
    for key, entry in sources["data"].items():
        names = entry.get("names") or [None]
        bodies = {name: f"{key} {name} served by the test\n".encode() * 50 for name in names}
        path = urlsplit(entry["url"]).path
        for name, body in bodies.items():
            server.serve(path.replace("{name}", name or ""), (200, body))
        pins: dict = {"url": server.url(path)}
        for pin, digest in (("sha256", lambda b: hashlib.sha256(b).hexdigest()),
                            ("git_blob", lambda b: hashlib.sha1(b"blob %d\0" % len(b) + b).hexdigest())):
            if entry.get(pin):
                pins[pin] = ({name: digest(body) for name, body in bodies.items()} if entry.get("names")
                             else digest(bodies[None]))
        overlay["data"][key] = pins
    for key, entry in sources["models"].items():
        body = json.dumps({"id": entry["repo"], "sha": entry["revision"]}).encode()
        server.serve(f"/api/models/{entry['repo']}/revision/{entry['revision']}", (200, body))
    return overlay


def _make_preflight(work: Path, overlay: Path, hf_endpoint: str, *args: str) -> subprocess.CompletedProcess:
    """`make preflight` in a copy of the project, with this test run's python (no venv set-up) and a Hugging Face
    at `hf_endpoint`."""
    stamp = work / ".venv-stamp"
    stamp.touch()
    env = {k: v for k, v in smk.env().items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env["HF_ENDPOINT"] = hf_endpoint
    command = ["make", "--no-print-directory", "preflight", f"BIN={Path(sys.executable).parent}",
               f"STAMP={stamp}", f"CONFIGS={overlay}", f"PREFLIGHT_DIR={work / 'logs' / 'preflight'}", *args]
    return subprocess.run(command, cwd=work, env=env, text=True, capture_output=True, timeout=600)


@pytest.mark.slurm
def test_make_preflight_of_the_thesis_config_on_slurm_against_a_loopback_server(
        slurm_cluster, server, tmp_path):
    """The issue's "done when": the thesis config's sources (served with pins that match), partitions and dry run
    pass on the local SLURM cluster; the GPU job then fails on this CPU-only torch, naming the partition and why."""
    work = smk.copy_project(tmp_path / "project")
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy2(ROOT / name, work / name)
    sources = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["sources"]
    overlay = tmp_path / "site.yaml"
    overlay.write_text(yaml.safe_dump({
        "sources": _served_overlay(server, sources),
        "resources": {"gpu_jobs": {"slurm_partition": "debug"}, "cpu_jobs": {"slurm_partition": "debug"}}}))
    hf = server.url("").rstrip("/")

    passed = _make_preflight(work, overlay, hf, "GPU_CHECK=0")
    out = passed.stdout + passed.stderr
    assert passed.returncode == 0, out
    assert ("preflight: the configured partitions exist: resources.cpu_jobs.slurm_partition: debug; "
            "resources.gpu_jobs.slurm_partition: debug") in out
    n = sum(len(entry.get("names") or [None]) for entry in sources["data"].values()) + len(sources["models"])
    assert f"preflight: {n} of {n} sources ok" in out
    for entry in sources["models"].values():
        assert f"revision {entry['revision']} exists" in out
    plan = (work / "logs" / "preflight" / "dry-run.txt").read_text()
    assert "This was a dry-run" in plan and "rule teacher:" in plan and "slurm_partition=debug" in plan
    assert "preflight: GPU check skipped (GPU_CHECK=0)" in out

    failed = _make_preflight(work, overlay, hf)
    out = failed.stdout + failed.stderr
    assert failed.returncode != 0, out
    assert f"preflight: {n} of {n} sources ok" in out and "This was a dry-run" in out
    assert "FAIL GPU job " in out and "on partition debug (--gpus=1), for rules " in out
    for rule in ("teacher", "gpt2", "sample", "logits", "distil", "probe"):
        assert rule in out.split("for rules ", 1)[1].split(":", 1)[0], out
    assert "CUDA is not available" in out and "a CPU-only build of torch" in out
    assert "0 of 1 GPU requests ok; failed: partition debug (--gpus=1)" in out

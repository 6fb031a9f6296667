"""The benchmark pages are rendered from their raw numbers alone: `benchmarks/run.py` renders the checked-in
`docs/performance.json` (and that run with its optional parts missing), and the helpers both scripts use are defined
once, in `benchmarks/bench_common.py`."""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


@pytest.fixture(scope="module")
def run():
    if str(BENCHMARKS) not in sys.path:  # as when it runs as a script: benchmarks/ on the path (bench_env)
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location("benchmarks_run", BENCHMARKS / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def raw() -> dict:
    return json.loads((ROOT / "docs" / "performance.json").read_text())


def assert_tables_even(page: str) -> None:
    """Every markdown table row has as many cells as its header."""
    for block in page.split("\n\n"):
        rows = [line for line in block.splitlines() if line.startswith("|")]
        assert len({len(re.findall(r"(?<!\\)\|", line)) for line in rows}) <= 1, block


def test_performance_page_renders_from_its_json(run, raw):
    page = run.render(copy.deepcopy(raw), quick=False, cores=2)
    headings = [line for line in page.splitlines() if line.startswith("#")]
    assert headings == [line for line in (ROOT / "docs" / "performance.md").read_text().splitlines()
                        if line.startswith("#")]
    assert_tables_even(page)
    assert page.endswith(f"Raw numbers: `{raw['json']}`.\n")


def test_performance_page_without_the_optional_measurements(run, raw):
    res = copy.deepcopy(raw)
    for key in ("generate", "vs_generate", "generate_batch_effect"):
        res["sampling"].pop(key)
    res.pop("demo")
    page = run.render(res, quick=True, cores=2)
    assert "(quick sizes," in page and "- demo run: not measured in this run" in page
    assert "HF `generate`, batch 1024" not in page and "at the same batch (1024;" not in page
    assert_tables_even(page)


def test_shared_helpers_are_defined_once():
    shared = {node.name for node in ast.parse((BENCHMARKS / "bench_common.py").read_text()).body
              if isinstance(node, ast.FunctionDef)}
    again = [f"{path.name}: {node.name}" for path in sorted(BENCHMARKS.glob("*.py")) if path.name != "bench_common.py"
             for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.FunctionDef)
             and node.name in shared]
    assert not again, f"defined in bench_common.py and again in {again}"


def test_pages_name_no_path_of_the_machine(run, tmp_path):
    """A run directory or output outside the checkout is named `<elsewhere>/<name>`, one inside it relative to it."""
    import bench_common

    assert bench_common.shown(tmp_path / "fresh") == "<elsewhere>/fresh"
    assert bench_common.shown(ROOT / "docs" / "performance.md") == "docs/performance.md"
    line = bench_common.command_line("run.py", ["--demo-run", str(tmp_path / "fresh"), "--quick"])
    assert line == ".venv/bin/python benchmarks/run.py --demo-run <elsewhere>/fresh --quick"

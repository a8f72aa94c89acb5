"""The documentation site, in a real browser: Debian's chromium, driven by Selenium through chromium-driver.

The site is the one ``sphinx-build`` wrote (``.ci/run`` builds it strictly first): the folder named by
``MINICNN_DOCS_SITE``, else ``docs/_build/html``. It is served on localhost by ``http.server`` in a
thread. The tests skip, saying why, without Selenium (the ``docs`` extra), without chromium and
chromium-driver (``apt-get install chromium chromium-driver``), or without a built site.

Screenshots go to ``MINICNN_DOCS_SCREENSHOTS`` if it is set (CI keeps them beside the built site),
else to pytest's temporary folder.
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import os
import re
import shutil
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

pytest.importorskip("selenium", reason="Selenium is in the docs extra: pip install -e '.[docs]'")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(os.environ.get("MINICNN_DOCS_SITE", ROOT / "docs" / "_build" / "html"))
BACKPROP = "backprop.html"
NOTEBOOK = "notebooks/01_one_training_step_by_hand.html"
TYPESET = """
const done = arguments[arguments.length - 1];
if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    MathJax.startup.promise.then(() => done(true), () => done(false));
} else {
    done(null);
}
"""
"""Waits for MathJax to finish typesetting; true when it did, null on a page without mathematics."""
VISIBLE_TEXT = """
const copy = document.querySelector("article").cloneNode(true);
copy.querySelectorAll("pre, code, script, style").forEach(node => node.remove());
return copy.textContent;
"""
"""The text of the article, without code (where a ``$`` or a backslash may be meant literally)."""


class _Anchors(html.parser.HTMLParser):
    """The ``id`` and ``name`` attributes of a page: the anchors a link's fragment may point at."""

    def __init__(self) -> None:
        super().__init__()
        self.anchors: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.anchors.update(value for name, value in attrs if name in ("id", "name") and value)


@pytest.fixture(scope="module")
def site_url() -> Iterator[str]:
    if not (SITE / "index.html").is_file():
        pytest.skip(f"no built site in {SITE}: sphinx-build -W --keep-going -n -b html docs {SITE}")
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002  (http.server's name)
        pass


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("no chromium or chromedriver on PATH: apt-get install chromium chromium-driver")
    with tempfile.TemporaryDirectory(prefix="minicnn-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for argument in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,1400"]:
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        chrome = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))
        try:
            yield chrome
        finally:
            chrome.quit()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("MINICNN_DOCS_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def pages() -> list[str]:
    """Every HTML page of the site, relative to its root (none when the site is not built)."""
    if not SITE.is_dir():
        return []
    return sorted(str(page.relative_to(SITE)) for page in SITE.rglob("*.html")
                  if page.relative_to(SITE).parts[0] not in ("_static", "_sources"))


def load(browser: webdriver.Chrome, url: str) -> bool | None:
    """Open ``url``, wait for MathJax if the page has mathematics (True when it typeset, None when the page
    has none), and drop the browser log the load left."""
    browser.get(url)
    return browser.execute_async_script(TYPESET)


def severe_console_messages(browser: webdriver.Chrome) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def test_every_page_of_docs_is_on_the_site(site_url):
    """Each Markdown page and notebook of docs/ has its page, and the home page is the README."""
    sources = [*(ROOT / "docs").glob("*.md"), *(ROOT / "docs" / "notebooks").glob("*.ipynb")]
    built = set(pages())
    missing = [str(source.relative_to(ROOT)) for source in sources
               if str(source.relative_to(ROOT / "docs").with_suffix(".html")) not in built]
    assert not missing, f"pages of docs/ with no page on the site: {missing}"
    assert "A first look" in (SITE / "index.html").read_text(encoding="utf-8")


def test_api_reference_has_a_page_per_public_module(site_url):
    """Generated from the docstrings: a page for each module of minicnn (not the private ones, not the
    exercises' stubs), on which its classes and functions are documented."""
    package = ROOT / "minicnn"
    modules = [".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
               for path in package.rglob("*.py")
               if "stubs" not in path.parts and (path.name == "__init__.py" or not path.name.startswith("_"))]
    assert len(modules) > 50
    missing = [module for module in modules if not (SITE / "_api" / f"{module}.html").is_file()]
    assert not missing, f"modules without a page in the API reference: {missing}"
    for module, name in [("minicnn.layers.dense", "Dense"), ("minicnn.gradcheck.layer", "check_layer"),
                         ("minicnn.optimizers", "Adam"), ("minicnn.kernels.im2col", "col2im_reference")]:
        page = (SITE / "_api" / f"{module}.html").read_text(encoding="utf-8")
        assert f'id="{module}.{name}"' in page, f"{module}.{name} is not documented on its page"


def test_every_page_loads_without_console_errors_and_its_mathematics_typeset(site_url, browser):
    """No page logs an error in the console (a missing script, font, image or a JavaScript exception), and
    on every page the mathematics is typeset by MathJax: no raw ``$$``, ``\\frac``, ``\\(`` left in the text,
    no TeX error, every math element rendered."""
    failures, typeset_pages = [], 0
    assert len(pages()) > 20, pages()
    for page in pages():
        typeset = load(browser, site_url + page)
        if errors := severe_console_messages(browser):
            failures.append(f"{page}: console errors {errors}")
        if typeset is False:
            failures.append(f"{page}: MathJax failed to start")
        text = browser.execute_script(VISIBLE_TEXT)
        raw = [mark for mark in ("$$", "\\frac", "\\(", "\\[", "\\sum", "\\partial", "\\_") if mark in text]
        if raw:
            failures.append(f"{page}: raw TeX in the text: {raw}")
        untypeset = browser.execute_script(
            "return [...document.querySelectorAll('.math')].filter(m => !m.querySelector('mjx-container'))"
            ".map(m => m.textContent.slice(0, 80))")
        if untypeset:
            failures.append(f"{page}: math not typeset: {untypeset[:3]}")
        if tex_errors := browser.execute_script(
                "return [...document.querySelectorAll('mjx-merror')]"
                ".map(e => e.getAttribute('data-mjx-error') || e.textContent)"):
            failures.append(f"{page}: TeX errors: {tex_errors[:3]}")
        typeset_pages += typeset is True
    assert not failures, "\n".join(failures)
    assert typeset_pages >= 1


def test_backprop_derivations_are_typeset_mathematics(site_url, browser):
    """Each ``$$...$$`` block and each ``$...$`` of docs/backprop.md is a typeset formula on its page."""
    source = re.sub(r"^```.*?^```", "", (ROOT / "docs" / "backprop.md").read_text(encoding="utf-8"),
                    flags=re.MULTILINE | re.DOTALL)  # without code blocks, where a $ is a $
    displays = len(re.findall(r"^\$\$$", source, re.MULTILINE)) // 2
    prose = re.sub(r"`[^`\n]*`", "", re.sub(r"^\$\$$.*?^\$\$$", "", source, flags=re.MULTILINE | re.DOTALL))
    inlines = len(re.findall(r"(?<![$\\])\$[^$\n]+\$", prose))
    assert displays >= 30 and inlines >= 90, (displays, inlines)
    assert load(browser, site_url + BACKPROP) is True
    display = browser.find_elements(By.CSS_SELECTOR, "div.math mjx-container")
    inline = browser.find_elements(By.CSS_SELECTOR, "span.math mjx-container")
    assert (len(display), len(inline)) == (displays, inlines)


def test_every_internal_link_resolves(site_url, browser):
    """Every same-site link of every page answers 200, and its #fragment names an element of the target."""
    targets: dict[str, set[str]] = {}
    for page in pages():
        browser.get(site_url + page)
        for href in browser.execute_script("return [...document.querySelectorAll('a[href]')]"
                                           ".map(a => a.href)"):
            url, _, fragment = href.partition("#")
            if url.startswith(site_url):
                targets.setdefault(url, set()).add(urllib.parse.unquote(fragment))
    assert len(targets) > 20, sorted(targets)
    failures = []
    for url, fragments in sorted(targets.items()):
        try:
            with urllib.request.urlopen(url) as response:
                body = response.read().decode("utf-8", errors="replace")
        except urllib.error.HTTPError as error:
            failures.append(f"{url}: HTTP {error.code}")
            continue
        anchors = _Anchors()
        anchors.feed(body)
        missing = sorted(fragments - {""} - anchors.anchors)
        failures += [f"{url}#{fragment}: no such anchor" for fragment in missing]
    assert not failures, "\n".join(failures)


def test_search_finds_col2im(site_url, browser):
    """Typed into the sidebar's search box: the results list the derivations of backprop.md."""
    browser.get(site_url + "index.html")
    box = browser.find_element(By.CSS_SELECTOR, "input[name='q']")
    box.send_keys("col2im", Keys.ENTER)
    WebDriverWait(browser, 30).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, "#search-results ul.search li"))
    results = [link.get_attribute("href")
               for link in browser.find_elements(By.CSS_SELECTOR, "#search-results ul.search li a")]
    assert any(BACKPROP in result for result in results), results
    assert not severe_console_messages(browser)


@pytest.mark.parametrize("page", ["index.html", BACKPROP + "#dense", NOTEBOOK])
def test_screenshot_is_not_blank(site_url, browser, screenshots, page):
    """A screenshot of the page (of backprop.md, its derivation of Dense) shows something: more than a few
    percent of its pixels differ from the background, with real contrast among them."""
    load(browser, site_url + page)
    address, _, fragment = page.partition("#")
    if fragment:  # scrolled to once MathJax has typeset (the browser scrolled before, then the page grew)
        browser.execute_async_script("const [id, done] = arguments; setTimeout(() => {"
                                     " document.getElementById(id).scrollIntoView();"
                                     " setTimeout(done, 200); }, 300)", fragment)
    path = screenshots / (address.replace("/", "_").removesuffix(".html") + ".png")
    assert browser.save_screenshot(str(path)), path
    pixels = matplotlib.image.imread(path)[..., :3]
    background = np.median(pixels.reshape(-1, 3), axis=0)
    differs = np.abs(pixels - background).max(axis=-1) > 0.1
    assert differs.mean() > 0.03, f"{path}: {differs.mean():.1%} of the pixels differ from the background"
    assert pixels.std() > 0.05, f"{path}: pixel standard deviation {pixels.std():.3f}"

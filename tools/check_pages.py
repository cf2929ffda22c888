"""Open every page of the built book in headless Chromium, as a reader would, and check it.

Usage (after ``jupyter-book build .``)::

    .venv/bin/python tools/check_pages.py                 # check _build/html, screenshots
    .venv/bin/python tools/check_pages.py --self-test     # show that each check fires

Each page is loaded from disk (no network) with its scripts run (``--virtual-time-budget``),
after MathJax has typeset it; a small script injected into a temporary copy of the page
measures it and writes a JSON report into the DOM, which ``--dump-dom`` returns. A page fails
on

* **raw TeX**: a ``$``, ``\\(``, ``\\[``, ``\\begin{`` or a TeX command left in the text of
  the article (code and outputs excluded), a math element that MathJax did not typeset (no
  ``mjx-container`` inside), or a MathJax error (``mjx-merror``);
* **console errors**: uncaught exceptions (Chromium's ``--enable-logging=stderr`` log and a
  ``window`` error listener), ``console.error`` calls, resources (scripts, images, styles)
  that failed to load, fonts that failed to load (MathJax's fonts included);
* **stderr blocks**: an executed cell's stderr output or traceback shown in the page, or a
  machine path (``/home/``, ``/tmp/``, ``/work/``, ``site-packages``) in a cell output;
* **wide content**: an element of the article (code, output, table, figure, display math)
  whose content is wider than its box (a scroll bar or clipping) or that sticks out of the
  page column.

It also saves a screenshot of each whole page under ``_build/screenshots/`` and prints, per
page, how far the figures are scaled down from their pixel size (text in a figure shown at
half its size is hard to read), for review; the scale does not fail a page.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORT_ID = "page-check-report"
#: window size of the check (a laptop screen): the page column is what the theme gives it
WINDOW = (1400, 900)
#: problems of one kind listed per page (the rest are counted)
MAX_SHOWN = 8
#: tallest screenshot in pixels (longer pages are cut there)
MAX_SCREENSHOT_HEIGHT = 30000

# Installed at the top of <head>, before any script of the page: records console.error
# calls, uncaught errors and resources that failed to load.
EARLY_SCRIPT = """<script>
window.__pageCheck = {errors: []};
(function () {
  const record = (kind, text) => window.__pageCheck.errors.push(kind + ": " + text);
  const original = console.error.bind(console);
  console.error = function (...args) {
    record("console.error", args.map(String).join(" "));
    original(...args);
  };
  window.addEventListener("error", (event) => {
    const t = event.target;
    if (t && t !== window && (t.src || t.href)) {
      record("failed to load", t.src || t.href);
    } else {
      record("uncaught", event.message);
    }
  }, true);
  window.addEventListener("unhandledrejection",
    (event) => record("unhandled rejection", String(event.reason)));
})();
</script>"""

# Run after the page loaded and MathJax typeset it; appends the JSON report to the body.
LATE_SCRIPT = r"""<script>
(function () {
  const SKIP = "pre, code, script, style, textarea, mjx-container, .highlight, "
    + ".cell_output, .output, .math, .MathJax, mjx-assistive-mml, #REPORT_ID";
  const RAW_TEX = /\$[^$\s]|\\\(|\\\)|\\\[|\\\]|\\begin\{|\\(frac|sqrt|mathrm|left|right|alpha|tau|rho|sigma|epsilon|phi|langle)\b/;
  const PATHS = /(\/home\/|\/tmp\/|\/work\/|\/root\/|site-packages|[A-Z]:\\Users\\)/;
  function describe(el) {
    let text = el.tagName.toLowerCase();
    if (el.id) text += "#" + el.id;
    if (el.className && typeof el.className === "string") {
      text += "." + el.className.trim().split(/\s+/).slice(0, 3).join(".");
    }
    const section = el.closest("section[id]");
    if (section) text += " in section #" + section.id;
    return text;
  }
  async function check() {
    try { await measure(); } catch (e) {
      const pre = document.createElement("div");
    pre.hidden = true;
      pre.id = "REPORT_ID";
      pre.textContent = JSON.stringify({failed: String(e && e.stack || e)});
      document.body.appendChild(pre);
    }
  }
  async function measure() {
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      try { await MathJax.startup.promise; } catch (e) {
        window.__pageCheck.errors.push("MathJax: " + e);
      }
    }
    if (document.fonts && document.fonts.ready) { await document.fonts.ready; }
    const article = document.querySelector("article.bd-article") || document.body;
    const report = {rawTex: [], untypeset: 0, mathErrors: [], mathElements: 0,
                    typeset: 0, stderr: [], paths: [], wide: [], images: [],
                    errors: window.__pageCheck.errors, fontErrors: [],
                    height: document.documentElement.scrollHeight};
    // raw TeX in the text of the article
    const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.parentElement || node.parentElement.closest(SKIP)) continue;
      const match = node.textContent.match(RAW_TEX);
      if (match) {
        const i = match.index;
        report.rawTex.push(node.textContent.slice(Math.max(0, i - 30), i + 40).trim()
                           + "  [" + describe(node.parentElement) + "]");
      }
    }
    // math that MathJax should have typeset
    for (const el of article.querySelectorAll("span.math, div.math")) {
      report.mathElements += 1;
      if (el.querySelector("mjx-container")) { report.typeset += 1; }
      else { report.untypeset += 1;
             report.rawTex.push("not typeset: " + el.textContent.slice(0, 60)); }
    }
    for (const el of article.querySelectorAll("mjx-merror")) {
      report.mathErrors.push(el.getAttribute("data-mjx-error") || el.textContent.slice(0, 60));
    }
    // stderr blocks, tracebacks and machine paths in outputs
    for (const el of article.querySelectorAll(".output.stderr, .output.traceback, "
                                              + ".stderr, .traceback")) {
      report.stderr.push(el.textContent.trim().slice(0, 120) + "  [" + describe(el) + "]");
    }
    for (const el of article.querySelectorAll(".cell_output, .output")) {
      const match = el.textContent.match(PATHS);
      if (match) {
        const i = match.index;
        report.paths.push(el.textContent.slice(Math.max(0, i - 40), i + 60).trim());
      }
    }
    // content wider than its box or than the page column
    const column = article.getBoundingClientRect();
    const boxes = article.querySelectorAll("pre, table, img, svg, div.math, mjx-container, "
      + ".cell_output > *, .output, div.highlight, .MathJax, p, figure, .admonition");
    for (const el of boxes) {
      if (el.closest("mjx-assistive-mml")) continue;
      const box = el.getBoundingClientRect();
      if (box.width === 0 && box.height === 0) continue;   // folded away
      const overflow = el.scrollWidth - el.clientWidth;
      const style = getComputedStyle(el);
      const inline = style.display.startsWith("inline")
        || (el.tagName === "MJX-CONTAINER" && el.getAttribute("display") !== "true");
      if (overflow > 2 && !inline && el.clientWidth > 0) {
        report.wide.push(describe(el) + ": content " + el.scrollWidth + " px in a box of "
                         + el.clientWidth + " px");
      } else if (box.right > column.right + 2 || box.left < column.left - 2) {
        report.wide.push(describe(el) + ": " + Math.round(box.left - column.left) + ".."
                         + Math.round(box.right - column.left) + " px, column "
                         + Math.round(column.width) + " px");
      }
    }
    if (article.scrollWidth > article.clientWidth + 2) {
      report.wide.push("the article itself: " + article.scrollWidth + " px in "
                       + article.clientWidth + " px");
    }
    // figures: loaded, and how much they are scaled down
    for (const img of article.querySelectorAll("img")) {
      if (!img.complete || img.naturalWidth === 0) {
        report.errors.push("image not shown: " + img.getAttribute("src").slice(0, 80));
        continue;
      }
      const box = img.getBoundingClientRect();
      if (box.width > 0) report.images.push(box.width / img.naturalWidth);
    }
    if (document.fonts) {
      document.fonts.forEach((font) => {
        if (font.status === "error") report.fontErrors.push(font.family);
      });
    }
    const pre = document.createElement("div");
    pre.hidden = true;
    pre.id = "REPORT_ID";
    pre.textContent = JSON.stringify(report);
    document.body.appendChild(pre);
  }
  window.addEventListener("load", () => setTimeout(check, 200));
})();
</script>""".replace("REPORT_ID", REPORT_ID)

REPORT_RE = re.compile(rf'<div [^>]*id="{REPORT_ID}"[^>]*>(.*?)</div>', re.S)
UNCAUGHT_RE = re.compile(r':CONSOLE[^\]]*\] "(Uncaught[^"]*)"')


@dataclass
class PageResult:
    page: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    screenshot: Path | None = None


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("check_pages: no chromium found (Debian: apt-get install -y chromium)")


def run_chromium(binary: str, url: str, *extra: str, budget_ms: int = 20000,
                 timeout: float = 180.0) -> subprocess.CompletedProcess:
    profile = tempfile.mkdtemp(prefix="check-pages-profile-")
    try:
        return subprocess.run(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--no-first-run", "--disable-extensions", "--mute-audio",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
             f"--virtual-time-budget={budget_ms}", *extra, url],
            capture_output=True, text=True, timeout=timeout, check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def instrumented_copy(page: Path) -> Path:
    """A copy of ``page`` beside it (so relative links resolve) with the check scripts."""
    html = page.read_text(encoding="utf-8")
    head = re.search(r"<head[^>]*>", html, re.I)
    html = (html[:head.end()] + EARLY_SCRIPT + html[head.end():]) if head else EARLY_SCRIPT + html
    index = html.lower().rfind("</body>")
    html = html[:index] + LATE_SCRIPT + html[index:] if index >= 0 else html + LATE_SCRIPT
    copy = page.with_name(f".page-check-{page.name}")
    copy.write_text(html, encoding="utf-8")
    return copy


def check_page(binary: str, page: Path, html_root: Path,
               screenshot_dir: Path | None) -> PageResult:
    name = page.relative_to(html_root).as_posix()
    result = PageResult(name)
    copy = instrumented_copy(page)
    try:
        run = run_chromium(binary, copy.as_uri(), "--dump-dom",
                           f"--window-size={WINDOW[0]},{WINDOW[1]}")
    except subprocess.TimeoutExpired:
        result.problems.append("chromium timed out")
        return result
    finally:
        copy.unlink(missing_ok=True)
    match = REPORT_RE.search(run.stdout)
    if not match:
        result.problems.append("no report: the page's scripts did not finish "
                               f"(chromium exit {run.returncode})")
        return result
    report = json.loads(_unescape(match.group(1)))
    if "failed" in report:
        result.problems.append(f"the check script failed: {report['failed']}")
        return result
    errors = list(report["errors"])
    for message in UNCAUGHT_RE.findall(run.stderr):
        if not any(message.removeprefix("Uncaught ") in e for e in errors):
            errors.append("uncaught: " + message)
    result.problems += [f"console error: {e}" for e in errors]
    result.problems += [f"font failed to load: {f}" for f in sorted(set(report["fontErrors"]))]
    result.problems += [f"raw TeX: {t}" for t in report["rawTex"]]
    result.problems += [f"MathJax error: {t}" for t in report["mathErrors"]]
    result.problems += [f"stderr block: {t}" for t in report["stderr"]]
    result.problems += [f"machine path in an output: {t}" for t in report["paths"]]
    result.problems += [f"wider than the page: {t}" for t in report["wide"]]
    result.notes.append(f"math typeset {report['typeset']}/{report['mathElements']}")
    if report["images"]:
        scales = report["images"]
        result.notes.append(f"{len(scales)} figures, smallest shown at "
                            f"{100 * min(scales):.0f} % of its pixel size")
    if screenshot_dir is not None:
        height = min(int(report["height"]) + 40, MAX_SCREENSHOT_HEIGHT)
        target = screenshot_dir / (name.removesuffix(".html").replace("/", "__") + ".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            run_chromium(binary, page.as_uri(), f"--screenshot={target}",
                         f"--window-size={WINDOW[0]},{height}")
            result.screenshot = target if target.is_file() else None
        except subprocess.TimeoutExpired:
            pass
        if result.screenshot is None:
            result.problems.append("no screenshot written")
    return result


def _unescape(text: str) -> str:
    return (text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
            .replace("&#39;", "'").replace("&amp;", "&"))


def pages_of(html_root: Path) -> list[Path]:
    """Every HTML page of the build, less redirects and Sphinx's internal folders."""
    pages = []
    for page in sorted(html_root.rglob("*.html")):
        parts = page.relative_to(html_root).parts
        if parts[0] in ("_static", "_sources", "_images") or page.name.startswith("."):
            continue
        head = page.read_text(encoding="utf-8", errors="replace")[:2000]
        if 'http-equiv="Refresh"' in head and "<article" not in head:
            continue   # the root index.html only redirects to the first page
        pages.append(page)
    return pages


def check_book(html_root: Path, screenshot_dir: Path | None, jobs: int) -> list[PageResult]:
    binary = chromium_binary()
    pages = pages_of(html_root)
    if not pages:
        sys.exit(f"check_pages: no HTML pages under {html_root}")
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda p: check_page(binary, p, html_root, screenshot_dir),
                             pages))


def print_results(results: list[PageResult]) -> int:
    failed = 0
    for r in results:
        status = "FAIL" if r.problems else "ok"
        failed += bool(r.problems)
        print(f"{status:4}  {r.page}  ({'; '.join(r.notes)})")
        shown: dict[str, int] = {}
        for problem in r.problems:
            kind = problem.split(":")[0]
            shown[kind] = shown.get(kind, 0) + 1
            if shown[kind] <= MAX_SHOWN:
                print(f"        - {problem}")
        for kind, count in shown.items():
            if count > MAX_SHOWN:
                print(f"        - ... and {count - MAX_SHOWN} more of kind '{kind}'")
    print(f"check_pages: {len(results) - failed} of {len(results)} pages pass")
    return failed


# --------------------------------------------------------------------------------------------
# Self-test: a built page with one planted problem of each kind must fail on each.
# --------------------------------------------------------------------------------------------

def _after_article(snippet: str):
    def plant(html: str) -> str:
        marker = re.search(r"<article[^>]*>", html)
        return html[:marker.end()] + snippet + html[marker.end():]
    return plant


def _without_mathjax(html: str) -> str:
    """The page as it was with MathJax from a CDN and no network: the script fails to load."""
    return re.sub(r'src="[^"]*mathjax/[^"?]*\.js(\?[^"]*)?"',
                  'src="../_static/no-such-mathjax.js"', html)


#: (the problem the check must report, how it is planted into a built page)
PLANTS = [
    ("raw TeX", _after_article("<p>The energy is $E = mc^2$, in plain text.</p>")),
    ("raw TeX", _without_mathjax),
    ("console error", _without_mathjax),
    ("console error", _after_article("<script>console.error('planted error');</script>")),
    ("console error", _after_article("<script>const PLANTED = 1;</script>"
                                     "<script>const PLANTED = 2;</script>")),
    ("stderr block", _after_article(
        '<div class="cell_output docutils container"><div class="output stderr">'
        "<pre>planted warning on stderr</pre></div></div>")),
    ("machine path", _after_article(
        '<div class="cell_output docutils container"><div class="output stream">'
        "<pre>/home/someone/project/data.csv</pre></div></div>")),
    ("wider than the page", _after_article(
        '<div class="cell_output docutils container"><div class="output text_plain">'
        "<pre>" + "x" * 400 + "</pre></div></div>")),
    ("wider than the page", _after_article(
        '<table class="dataframe"><tr>' + "<td>0.123456</td>" * 40 + "</tr></table>")),
]


def self_test(html_root: Path) -> int:
    """Plant each problem into a copy of a built page; the check must catch each one and
    pass the unplanted copy."""
    binary = chromium_binary()
    base = next((p for p in pages_of(html_root) if "/notebooks/" in p.as_posix()), None)
    base = base or pages_of(html_root)[0]
    html = base.read_text(encoding="utf-8")
    failures = 0
    clean = check_page(binary, base, html_root, None)
    print(f"self-test: unplanted {base.name}: "
          f"{'passes' if not clean.problems else 'FAILS: ' + '; '.join(clean.problems)}")
    for kind, plant in PLANTS:
        planted_html = plant(html)
        if planted_html == html:
            failures += 1
            print(f"self-test: planted {kind:20} NOT PLANTED (the page has changed shape)")
            continue
        planted = base.with_name(f".planted-{base.name}")
        planted.write_text(planted_html, encoding="utf-8")
        try:
            result = check_page(binary, planted, html_root, None)
        finally:
            planted.unlink(missing_ok=True)
        caught = [p for p in result.problems if p.startswith(kind) and p not in clean.problems]
        failures += not caught
        print(f"self-test: planted {kind:20} "
              f"{'caught: ' + caught[0][:110] if caught else 'NOT CAUGHT'}")
    print(f"self-test: {len(PLANTS) - failures} of {len(PLANTS)} planted problems caught")
    return failures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html",
                        help="the built book (default: _build/html)")
    parser.add_argument("--screenshots", type=Path, default=ROOT / "_build" / "screenshots",
                        help="where the screenshots go (default: _build/screenshots)")
    parser.add_argument("--no-screenshots", action="store_true")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="pages checked at once")
    parser.add_argument("--self-test", action="store_true",
                        help="plant a problem of each kind into a built page and check that "
                             "each is caught")
    args = parser.parse_args(argv)
    args.html = args.html.resolve()
    if args.self_test:
        return 1 if self_test(args.html) else 0
    screenshots = None if args.no_screenshots else args.screenshots.resolve()
    results = check_book(args.html, screenshots, args.jobs)
    failed = print_results(results)
    if screenshots is not None:
        print(f"check_pages: screenshots in {screenshots}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

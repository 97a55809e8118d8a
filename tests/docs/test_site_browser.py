"""The built site as a reader sees it: served on localhost, opened in headless Chromium driven by Playwright (as
``tests/analysis/test_analysis_browser.py`` does; ``.ci/install-browser`` installs Debian's Chromium).

From the first page, the navigation must reach every page of the nav; on every page there must be no console
error, no failed request, no request to another host, and every image must have loaded. One full-page
screenshot per section (the first page of each) is kept in ``tmp/artefacts/docs-site/`` (or under
``$RNNKIT_ARTEFACTS``), printed at the end of the test run. Skips, saying why, without Chromium or Playwright.
"""
from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

from docs_site import ROOT, SUMMARY, nav_pages, page_url


@pytest.fixture
def served(built_site):
    """The built site over HTTP on 127.0.0.1 (a free port), for the length of the test."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Quiet, directory=str(built_site.path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _artefacts() -> Path:
    base = Path(os.environ.get("RNNKIT_ARTEFACTS") or ROOT / "tmp" / "artefacts")
    folder = base / "docs-site"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def test_the_site_in_headless_chromium(browser, served):
    pages = nav_pages()
    expected = {urljoin(served, page_url(path)) for _, path in pages}
    host = urlparse(served).netloc
    problems: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("console", lambda m: problems.append(f"{page.url}: console {m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"{page.url}: page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"{page.url}: request failed: {r.url}"))

    def only_this_site(route):
        url = urlparse(route.request.url)
        if url.scheme == "data" or url.netloc == host:
            route.continue_()
        else:
            problems.append(f"{page.url}: asked another host for {route.request.url}")
            route.abort()
    page.route("**/*", only_this_site)

    # The navigation, from the first page, reaches every page of the nav.
    page.goto(served)
    page.wait_for_load_state("networkidle")
    links = page.eval_on_selector_all("nav.md-nav--primary a.md-nav__link[href]", "els => els.map(e => e.href)")
    reachable = {link.split("#")[0] for link in links}
    assert expected <= reachable, f"not reachable from the navigation: {sorted(expected - reachable)}"

    shots = _artefacts()
    shot_sections: set[str] = set()
    for section, path in pages:
        url = urljoin(served, page_url(path))
        response = page.goto(url)
        assert response is not None and response.ok, f"{url}: HTTP {response and response.status}"
        page.wait_for_load_state("networkidle")
        page.wait_for_function("Array.from(document.images).every(img => img.complete)", timeout=20_000)
        broken = page.eval_on_selector_all("img", "els => els.filter(e => !(e.naturalWidth > 0))"
                                                  ".map(e => e.alt || e.src.slice(0, 80))")
        assert broken == [], f"{url}: images that did not load: {broken}"
        assert page.locator("article h1").count() == 1, f"{url}: no page title"
        if section not in shot_sections:
            shot_sections.add(section)
            name = (section or "home").lower().replace(" ", "-").replace("/", "-")
            page.screenshot(path=str(shots / f"{len(shot_sections):02d}-{name}.png"), full_page=True)

    assert problems == [], "\n".join(problems)
    saved = sorted(shots.glob("*.png"))
    assert len(saved) == len({section for section, _ in pages})
    assert all(p.read_bytes().startswith(b"\x89PNG") and p.stat().st_size > 10_000 for p in saved)
    SUMMARY.append(f"documentation site: {len(pages)} pages checked in Chromium; screenshots in {shots}")

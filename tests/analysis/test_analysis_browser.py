"""The report in a real headless browser: Debian's Chromium driven by Playwright (``.ci/install-browser``).

Skips, saying why, where Chromium or the ``playwright`` package is missing. Playwright never downloads a browser
here: it starts the system's Chromium through ``executable_path``. Set ``RNNKIT_CHROMIUM`` to use another binary.
"""
from __future__ import annotations

import numpy as np

from rnnkit.analysis.report import ReportOptions, build_report, read_report_data


def _backgrounds(page, n: int) -> list[str]:
    return page.eval_on_selector_all("#text span[data-i]",
                                     f"els => els.slice(0, {n}).map(e => e.style.backgroundColor)")


def _rgb(css: str) -> tuple[int, int, int]:
    return tuple(int(v) for v in css[css.index("(") + 1:css.index(")")].split(","))


def test_report_in_headless_chromium(browser, lm_run, tmp_path):
    run, text_file = lm_run
    out = build_report(run, text_file.read_text()[:400], tmp_path / "report.html", ReportOptions(max_tokens=300))
    data = read_report_data(out.read_text(encoding="utf-8"))

    page = browser.new_page(viewport={"width": 1100, "height": 1300})
    problems, outside = [], []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))

    def only_the_file(route):
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_file)
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=15_000)

    assert page.locator("#text span[data-i]").count() == 300
    n_layers = len(data["layers"])
    assert page.locator("#layer option").count() == n_layers

    # Pick layer 1, unit 0 and check the colours follow the data: red for positive, blue for negative.
    page.select_option("#layer", "0")
    page.select_option("#unit", "0")
    values = data["layers"][0]["values"]
    before = _backgrounds(page, 300)
    for i in (int(np.argmax(values[:, 0])), int(np.argmin(values[:, 0]))):
        r, g, b = _rgb(before[i])
        v = values[i, 0]
        if abs(v) > 0.1:
            assert (r > b) == (v > 0), (i, v, before[i])
    # The unit picker changes the colouring (to a unit whose values differ).
    other = next(u for u in range(1, data["layers"][0]["units"])
                 if np.abs(values[:, u] - values[:, 0]).max() > 0.2)
    page.select_option("#unit", str(other))
    after = _backgrounds(page, 300)
    assert after != before
    assert page.text_content("#current") == f"{data['layers'][0]['name']}, unit {other}"
    page.click("#next")
    assert page.input_value("#unit") == str(other + 1)

    # The layer picker refills the units and repaints.
    page.select_option("#layer", str(n_layers - 1))
    assert page.locator("#unit option").count() == data["layers"][-1]["units"]

    # Hover: the unit's value and the next-token predictions.
    page.hover("#text span[data-i='5']")
    tip = page.locator("#tip")
    assert tip.is_visible() and "next token" in tip.text_content()

    # The most correlated units: clicking one colours the text by it.
    page.select_option("#feature", 'inside "..."')
    first = data["correlated"]['inside "..."'][0]
    page.click("#correlated li:first-child button")
    assert page.text_content("#current") == f"{data['layers'][first['layer']]['name']}, unit {first['unit']}"

    assert page.locator("#curves svg polyline").count() >= 1
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 10_000
    assert outside == [], f"the page asked the network for {outside}"
    assert problems == []

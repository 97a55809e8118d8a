"""Fixtures shared by every test folder: ``browser``, headless Chromium driven by Playwright for the report's and
the documentation site's browser tests (Debian's Chromium, ``.ci/install-browser``; ``RNNKIT_CHROMIUM`` picks
another binary). Playwright never downloads a browser here; without Chromium or the package the tests skip,
saying why."""
from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
                  "--disable-default-apps", "--disable-extensions"]


def _chromium() -> str:
    path = os.environ.get("RNNKIT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path or not os.access(path, os.X_OK):
        pytest.skip("no Chromium found (install Debian's chromium: .ci/install-browser, or set RNNKIT_CHROMIUM)")
    return path


@pytest.fixture
def browser():
    path = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="the Python package 'playwright' is not installed (pip install -e '.[dev]')")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()

"""The lecture companion site, built once per test session into a temporary folder (``mkdocs build --strict``).

Building runs every page's code (markdown-exec), so it takes about as long as ``docs/``'s own tests (which run
the same code blocks through Sybil). The build's time and where the browser test leaves its screenshots are
printed at the end of the test run.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from docs_site import ROOT, SUMMARY, BuiltSite


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> BuiltSite:
    try:
        import mkdocs  # noqa: F401
    except ImportError:
        pytest.fail("the documentation tests need the 'docs' extra: pip install -e '.[dev,docs]' (make test does)")
    site = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    seconds = time.monotonic() - started
    log = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"mkdocs build --strict failed after {seconds:.0f} s:\n{log[-8000:]}", pytrace=False)
    SUMMARY.append(f"documentation site: mkdocs build --strict took {seconds:.0f} s")
    return BuiltSite(site, seconds, log)


def pytest_terminal_summary(terminalreporter):
    for line in SUMMARY:
        terminalreporter.write_line(line)

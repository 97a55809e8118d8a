"""Shared by the documentation-site tests: where the site's sources are, its nav and its URLs."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUMMARY: list[str] = []         # lines printed at the end of the test run (conftest.pytest_terminal_summary)


@dataclass
class BuiltSite:
    path: Path
    seconds: float
    log: str


def nav_pages() -> list[tuple[str, str]]:
    """(section title, docs-relative Markdown path) of every page in mkdocs.yml's nav, in order."""
    from mkdocs.config import load_config
    config = load_config(str(ROOT / "mkdocs.yml"))
    pages: list[tuple[str, str]] = []

    def walk(items, section):
        for item in items:
            if isinstance(item, str):
                pages.append((section, item))
                continue
            for title, value in item.items():
                if isinstance(value, list):
                    walk(value, title)
                else:
                    pages.append((section or title, value))
    walk(config["nav"], "")
    return pages


def page_url(markdown_path: str) -> str:
    """The site-relative URL of a page (``use_directory_urls``): ``lecture/bptt.md`` -> ``lecture/bptt/``."""
    stem = markdown_path[:-len(".md")]
    if stem == "index":
        return ""
    return (stem[:-len("index")] if stem.endswith("/index") else stem + "/")

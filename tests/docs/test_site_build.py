"""The built site holds what the pages promise: every page of the nav, the figures their code makes, a CLI
reference that matches the program's parsers, BENCHMARKS.md's tables; and the sources keep the rules the pages'
tests rely on (docs/conftest.py runs the code blocks themselves)."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from docs_site import ROOT, nav_pages, page_url

DOCS = ROOT / "docs"
FENCE = re.compile(r"^(`{3,})([^\n]*)\n(.*?)^\1\s*$", re.S | re.M)


def _sources() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "_support" not in p.parts)


def _html(site, markdown_path: str) -> str:
    return (site.path / page_url(markdown_path) / "index.html").read_text(encoding="utf-8")


def test_every_page_is_in_the_nav_and_built(built_site):
    listed = [path for _, path in nav_pages()]
    on_disk = [str(p.relative_to(DOCS)) for p in _sources()]
    assert sorted(listed) == sorted(on_disk), "every page in docs/ belongs in mkdocs.yml's nav, and only those"
    for path in listed:
        html = _html(built_site, path)
        assert "<article" in html and "Traceback (most recent call last)" not in html, path


def test_each_plt_show_puts_a_figure_on_its_page(built_site):
    """The pages end figures with plt.show() (docs/_support/companion_backend.py turns it into an <img>): a
    figure that silently went missing (another backend, a swallowed error) fails here."""
    for source in _sources():
        shows = sum(block.count("plt.show()") for _, info, block in FENCE.findall(source.read_text())
                    if 'exec="on"' in info)
        html = _html(built_site, str(source.relative_to(DOCS)))
        figures = re.findall(r'<img class="companion-figure" alt="[^"]+" src="data:image/png;base64,', html)
        assert len(figures) == shows, f"{source.name}: {shows} plt.show() calls, {len(figures)} figures"


def test_the_lecture_pages_have_a_figure_each(built_site):
    for section, path in nav_pages():
        if section == "The lecture":
            assert 'class="companion-figure"' in _html(built_site, path), path


def test_the_cli_reference_is_the_parsers(built_site):
    from rnnkit.cli.main import make_parser
    html = _html(built_site, "howto/cli.md")

    def leaves(parser, path):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield path, parser
            return
        for name, sub in subs[0].choices.items():
            yield from leaves(sub, path + [name])

    found = list(leaves(make_parser(), ["rnnkit"]))
    assert len(found) >= 10
    for path, parser in found:
        assert f'id="{"-".join(path)}"' in html, f"no section for {' '.join(path)}"
        for action in parser._actions:
            for flag in action.option_strings:
                assert flag in html, f"{' '.join(path)}: {flag} missing from the CLI reference"


def test_the_benchmarks_page_has_every_table_of_benchmarks_md(built_site):
    text = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    tables = len(re.findall(r"^[ \t]*\|[-:| ]+\|\s*$", text, re.M))          # indented too (in a list)
    html = _html(built_site, "benchmarks.md")
    assert tables > 0 and html.count("<table>") == tables
    for heading in re.findall(r"^#+ (.+)$", text, re.M):
        assert heading.split("(")[0].strip() in html, heading


def test_api_reference_pages_render_docstrings(built_site):
    for name in ("rnnkit.LSTM", "rnnkit.GRUCell", "rnnkit.engine.run_direction", "rnnkit.cells.spec",
                 "rnnkit.decoding.beam", "rnnkit.models.seq2seq"):
        assert any(name in _html(built_site, path) for section, path in nav_pages() if section == "API reference"), name


def test_code_lines_fit_the_page():
    """Code blocks are read on the page: no line wider than the content column (100 characters)."""
    for source in _sources():
        for _, info, block in FENCE.findall(source.read_text()):
            for line in block.splitlines():
                if info.strip().split(" ")[0] in ("python", "bash"):
                    assert len(line) <= 100, f"{source.name}: {len(line)} characters: {line[:60]}..."


def test_readme_first_screen_links_the_site():
    first_screen = "\n".join((ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:25])
    assert "](docs/index.md)" in first_screen and "make docs" in first_screen

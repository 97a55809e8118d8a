"""MkDocs hooks of the lecture companion (``hooks:`` in mkdocs.yml).

* The pages' figures: ``plt.show()`` in a page's code prints the figure into the page
  (:mod:`companion_backend`, found on ``sys.path`` from here).
* The pages' code runs on one torch thread (their models are tiny; on a busy 2-core machine two threads run
  them 10-50 times slower).
* Mathematics: pages write TeX between ``$...$`` / ``$$...$$`` (pymdownx.arithmatex, generic output); it is
  turned into MathML here, at build time, so the pages need no script and no network to show equations.
* The benchmarks page includes ``BENCHMARKS.md``; the repository files that it links to (``benchmarks/results/...``)
  become files of the site at the same relative place, so its links work and ``--strict`` checks them.
"""
from __future__ import annotations

import html
import os
import re
import sys
from pathlib import Path

SUPPORT = Path(__file__).resolve().parent
ROOT = SUPPORT.parent.parent
BACKEND = "module://companion_backend"
os.environ["MPLBACKEND"] = BACKEND

LINK = re.compile(r"\]\(([^)#\s]+)\)")


def on_config(config, **kwargs):
    # companion_backend and griffe_rst are imported by name. (Not at import time: MkDocs takes the hook's own
    # folder off sys.path again once the hook is loaded.)
    if str(SUPPORT) not in sys.path:
        sys.path.insert(0, str(SUPPORT))
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].switch_backend(BACKEND)
    return config


def on_pre_build(config, **kwargs):
    # The pages train tiny models: one thread is as fast, and on a busy machine far faster than two.
    import torch
    torch.set_num_threads(1)


def linked_repository_files(markdown: str) -> list[str]:
    """Relative links of a Markdown file at the repository's root that name files of the repository."""
    found = []
    for target in LINK.findall(markdown):
        if "://" in target or target.startswith(("/", "mailto:")):
            continue
        if (ROOT / target).is_file() and target not in found:
            found.append(target)
    return found


def on_files(files, config, **kwargs):
    from mkdocs.structure.files import File
    for target in linked_repository_files((ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")):
        if files.get_file_from_path(target) is None:
            files.append(File.generated(config, target, abs_src_path=str(ROOT / target)))
    return files


MATH = re.compile(r'<(span|div) class="arithmatex">\\[(\[](.*?)\\[)\]]</\1>', re.S)


def _mathml(match: re.Match) -> str:
    from latex2mathml.converter import convert
    tex = html.unescape(match.group(2)).strip()
    return convert(tex, display="block" if match.group(1) == "div" else "inline")


def on_page_content(content, page, config, files, **kwargs):
    return MATH.sub(_mathml, content)

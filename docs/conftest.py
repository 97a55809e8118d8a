"""Every code block of every page runs under pytest, through Sybil (``make test`` collects ``docs/``).

What runs, per fenced block's info string:

* ``python ...`` — Python, in one namespace per page (markdown-exec's ``session``, which every executed block of
  a page names, gives the build the same sharing). Figures go through ``plt.show()`` to
  ``docs/_support/companion_backend.py``, as in the build.
* ``bash`` — each command line is run: ``rnnkit ...`` in this process (``rnnkit.cli.main.main``), with the
  small sizes of :data:`TINY` appended to the training and sampling commands, so that the page's own commands
  finish in a second. Any other command fails the test, unless the block is marked on the page as not run here
  with ``<!-- skip: next "why" -->`` (Sybil's skip directive, invisible on the site).
* a data block with a file name, ``text title="train.tsv"``, is written to that file: the commands after it
  read exactly the example the page shows.

Each page runs in a fresh temporary folder, so nothing it writes lands in the repository.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

try:
    from sybil import Region, Sybil
    from sybil.evaluators.python import PythonEvaluator
    from sybil.parsers.markdown import SkipParser
    from sybil.parsers.markdown.lexers import RawFencedCodeBlockLexer
except ImportError as error:          # the docs extra is missing: say how to get it rather than skip quietly
    raise ImportError("the documentation tests need the 'docs' extra: pip install -e '.[docs]' "
                      "(make test installs it)") from error

SUPPORT = Path(__file__).resolve().parent / "_support"
sys.path.insert(0, str(SUPPORT))
BACKEND = "module://companion_backend"

# Appended to the documented commands (argparse: the last value of an option wins). Sizes only: the command,
# its data and its other options are the page's.
_TRAIN = ["--epochs", "1", "--max-steps", "3", "--hidden-size", "16", "--embed-size", "8", "--layers", "1",
          "--batch-size", "4", "--device", "cpu", "--threads", "1", "--quiet"]
TINY: dict[tuple[str, ...], list[str]] = {
    ("train", "lm"): _TRAIN + ["--bptt", "16", "--eval-batch-size", "2"],
    ("train", "classify"): _TRAIN + ["--eval-batch-size", "4"],
    ("train", "seq2seq"): _TRAIN + ["--eval-batch-size", "4", "--eval-beam", "1"],
    ("train", "caption"): _TRAIN + ["--widths", "8,8", "--image-size", "32", "--beam", "1"],
    ("sample",): ["--length", "40"],
}

FENCE_INFO = re.compile(r"(?P<info>[^\n]*)$\n", re.MULTILINE)
ATTRIBUTE = re.compile(r'(\w+)="([^"]*)"')
SHELL = ("bash", "sh", "console", "shell")
DATA = ("text", "tsv", "csv", "json", "jsonl")


def _command_lines(source: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, blank lines dropped."""
    return [line for line in source.replace("\\\n", " ").splitlines() if line.strip()]


def run_rnnkit(argv: list[str]) -> None:
    from rnnkit.cli.main import main
    tiny = next((extra for prefix, extra in TINY.items() if tuple(argv[:len(prefix)]) == prefix), [])
    code = main(argv + tiny)
    assert code == 0, f"`rnnkit {shlex.join(argv)}` (with {shlex.join(tiny) or 'nothing'} appended) exited {code}"


def evaluate_shell(example) -> None:
    for line in _command_lines(example.parsed):
        argv = shlex.split(line, comments=True)
        if not argv:
            continue
        if argv[0] != "rnnkit":
            raise AssertionError(f"line {example.line}: `{line.strip()}` is not run by the documentation tests; "
                                 f"mark its block with <!-- skip: next \"why\" --> if it can't run here")
        run_rnnkit(argv[1:])


def evaluate_python(attributes: dict[str, str]):
    python = PythonEvaluator()

    def evaluate(example) -> None:
        if attributes.get("exec") and not attributes.get("session"):
            raise AssertionError(f"line {example.line}: an executed block needs session=\"...\" so that the built "
                                 f"page shares its names between blocks as this test does")
        python(example)
    return evaluate


def write_file(name: str):
    def evaluate(example) -> None:
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Path(name).write_text(str(example.parsed), encoding="utf-8")
    return evaluate


class FencedBlocks:
    """Sybil parser: every fenced block, dispatched on its language and attributes (see the module)."""

    def __init__(self) -> None:
        self.lexer = RawFencedCodeBlockLexer(info_pattern=FENCE_INFO, mapping={"info": "info", "source": "source"})

    def __call__(self, document):
        for region in self.lexer(document):
            info = region.lexemes["info"].strip()
            language = info.split(" ", 1)[0].lstrip("{.").rstrip("}")
            attributes = dict(ATTRIBUTE.findall(info))
            if language == "python":
                evaluator = evaluate_python(attributes)
            elif language in SHELL:
                evaluator = evaluate_shell
            elif language in DATA and "title" in attributes:
                evaluator = write_file(attributes["title"])
            else:
                continue
            yield Region(region.start, region.end, region.lexemes["source"], evaluator)


def setup(namespace: dict) -> None:
    """A fresh folder to run in; the figure backend; one torch thread, as the build has (docs/_support/mkdocs_hooks.py:
    the pages' models are tiny, and on a busy 2-core machine two threads run them 10-50 times slower)."""
    import matplotlib.pyplot as plt
    import torch
    namespace["__docs_state__"] = {"cwd": os.getcwd(), "tmp": tempfile.mkdtemp(prefix="rnnkit-docs-"),
                                   "backend": plt.get_backend(), "threads": torch.get_num_threads()}
    os.chdir(namespace["__docs_state__"]["tmp"])
    plt.switch_backend(BACKEND)
    torch.set_num_threads(1)


def teardown(namespace: dict) -> None:
    import matplotlib.pyplot as plt
    import torch
    state = namespace["__docs_state__"]
    torch.set_num_threads(state["threads"])
    plt.close("all")
    plt.switch_backend(state["backend"])
    os.chdir(state["cwd"])
    shutil.rmtree(state["tmp"], ignore_errors=True)


pytest_collect_file = Sybil(
    parsers=[FencedBlocks(), SkipParser()],
    patterns=["*.md"],
    setup=setup,
    teardown=teardown,
).pytest()

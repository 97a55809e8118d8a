"""A plot's file name is checked as it is parsed (:class:`rnnkit.cli.ranges.FigurePath`): a suffix matplotlib
doesn't write (``attn.html``) failed after the work (``translate --attention-plot`` after translating,
``gradients --out`` after measuring). Parsing only: nothing runs."""
from __future__ import annotations

import pytest

from rnnkit.cli.ranges import figure_formats, figure_path

from test_cli_option_ranges import _refused

FORMATS = "(.png, .pdf, .svg, .jpg, .eps, ...)"


@pytest.mark.parametrize("argv, flag, command", [
    (["translate", "RUN", "the cat", "--attention-plot"], "--attention-plot", "translate"),
    (["gradients", "--cell", "rnn", "--out"], "--out", "gradients"),
])
@pytest.mark.parametrize("name", ["attn.html", "attn.v2", "plot.png.txt"])
def test_a_suffix_matplotlib_does_not_write_is_one_line(argv, flag, command, name, tmp_path, capsys):
    line = _refused(capsys, tmp_path, argv + [str(tmp_path / name)])
    assert line == (f"rnnkit {command}: error: {flag} must be a file name ending in an image format matplotlib "
                    f"writes {FORMATS}, got {tmp_path / name}")


def test_the_formats_matplotlib_writes_pass():
    assert figure_formats()[:5] == ["png", "pdf", "svg", "jpg", "eps"]
    for name in ("a.png", "a.PDF", "a.svg", "a.jpeg", "a.tiff", "plot", "runs/x.y/plot"):
        assert figure_path(name) == name
    assert figure_path.text == ("a file name ending in .png, .pdf, .svg or another image format matplotlib writes "
                                "(none: PNG)")

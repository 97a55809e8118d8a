"""A Matplotlib backend for the lecture companion: ``plt.show()`` puts each open figure on the page.

The pages' code ends its figures with ``plt.show()``, as it would on a reader's machine. Building the site
(``docs/_support/mkdocs_hooks.py`` sets ``MPLBACKEND=module://companion_backend``) and testing the pages
(``docs/conftest.py``) select this backend, whose ``show`` prints every open figure as an ``<img>`` holding the
PNG (a data URI) and closes it. markdown-exec captures what a code block prints through the ``print`` it gives
the block's globals, so ``show`` prints with the ``print`` of the code block that called it.
"""
from __future__ import annotations

import base64
import builtins
import html
import io
import sys

from matplotlib._pylab_helpers import Gcf
from matplotlib.backend_bases import FigureManagerBase
from matplotlib.backends.backend_agg import FigureCanvasAgg

FigureCanvas = FigureCanvasAgg
FigureManager = FigureManagerBase

DPI = 110


def _caller_print():
    """The ``print`` of the nearest calling code block (markdown-exec's, which writes into the page), or the
    built-in one (pytest and everything else)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename.startswith("<code block"):
            return frame.f_globals.get("print", builtins.print)
        frame = frame.f_back
    return builtins.print


def _alt(fig) -> str:
    """The figure's alt text: its suptitle, else its axes' titles, else a generic word."""
    if fig._suptitle is not None and fig._suptitle.get_text():
        return fig._suptitle.get_text()
    return "; ".join(ax.get_title() for ax in fig.axes if ax.get_title()) or "figure"


def figure_html(fig) -> str:
    """One figure as an ``<img>`` with its PNG inline."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f'<img class="companion-figure" alt="{html.escape(_alt(fig))}" '
            f'src="data:image/png;base64,{data}">')


def show(*args, **kwargs) -> None:
    """Print every open figure as an ``<img>`` (blank lines around, so Markdown keeps it one block), close it."""
    out = _caller_print()
    for manager in Gcf.get_all_fig_managers():
        out(f"\n{figure_html(manager.canvas.figure)}\n")
    Gcf.destroy_all()

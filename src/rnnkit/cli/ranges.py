"""The documented range of every option value, checked where the command line is parsed.

Each checker is an argparse ``type=``: it parses the text and refuses a value out of its range with
``must be <range>, got <value>``, which the parser (:class:`Parser`) prints as one line naming the option::

    rnnkit train lm: error: --clip must be a finite number >= 0 (0 turns clipping off), got -1

An integer is never above :data:`INT_MAX` (2**31 - 1), the largest that every consumer (torch's sizes and thread
counts, the C++ loop's ints) takes: a range without an upper bound has that one, named in the refusal of a larger
value (``--beam must be an integer in [1, 2147483647], got 99999999999``) but not in ``--help``.

``check(value)`` applies the same range to a value that is already parsed (a preset's, or one read back from a
run's ``options.json``: :func:`rnnkit.cli.options.validate_options`), and ``text`` is the range in words, which
``--help`` shows after each option (:func:`document_ranges`). A new numeric option takes one of these as its
type; tests/cli/test_cli_option_ranges.py fails for one that doesn't.
"""
from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

__all__ = ["Checked", "Range", "PathText", "FigurePath", "IntList", "YesNo", "Parser", "document_ranges", "integer",
           "number", "optional", "INT_MAX", "positive_int", "non_negative_int", "positive_float", "non_negative_float",
           "finite_float", "probability", "dropout_rate", "open_probability", "unit_interval_open", "seed_int",
           "thread_count", "out_path", "figure_path", "yes_no"]

INT_MAX = 2**31 - 1        # the largest integer an option takes: torch and the C++ loop overflow past it


def _shown(value: Any, typed: bool) -> str:
    """A value as an error message shows it: typed text as typed (quoted when blank or spaced); a value from a
    preset or a file as Python writes it (strings quoted), None as none."""
    if typed and isinstance(value, str):
        return value if value and not any(c.isspace() for c in value) else repr(value)
    return "none" if value is None else repr(value)


class Checked:
    """Base of the checkers: ``text`` (the range in words), ``__call__(text)`` for argparse, ``check(value)``."""

    text: str = ""
    allows_none: bool = False

    @property
    def __name__(self) -> str:            # argparse names a type by it in some messages
        return type(self).__name__

    def refuse(self, value: Any, typed: bool = False) -> argparse.ArgumentTypeError:
        """The error for ``value``: ``must be <range>, got <value>``; ``typed``: as typed on the command line."""
        return argparse.ArgumentTypeError(f"must be {self.text}, got {_shown(value, typed)}")

    def __call__(self, text: str) -> Any:
        raise NotImplementedError

    def check(self, value: Any) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Range(Checked):
    """An integer or a finite number within ``low``..``high`` (each bound closed unless ``*_open``).

    ``none`` (what leaving the value out means, e.g. "no limit") lets ``none`` be typed for it, and ``0`` too
    when ``zero_is_none``; both parse to None. ``note`` says what a special value in the range means."""

    kind: type = int
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    note: str = ""
    none: str = ""
    zero_is_none: bool = False

    @property
    def allows_none(self) -> bool:           # type: ignore[override]
        return bool(self.none)

    @property
    def text(self) -> str:                   # type: ignore[override]
        return self._words(self.high)

    @property
    def _top(self) -> float | None:
        """The upper bound checked: ``high``, or :data:`INT_MAX` for an integer without one."""
        return INT_MAX if self.high is None and self.kind is int else self.high

    def _words(self, hi: float | None) -> str:
        """The range in words, with ``hi`` as its upper bound."""
        what = "an integer" if self.kind is int else "a finite number" if self.low is None or hi is None \
            else "a number"
        lo = self.low
        def fmt(v):
            return f"{v:g}" if isinstance(v, float) else str(v)
        if lo is not None and hi is not None:
            words = f"{what} in {'(' if self.low_open else '['}{fmt(lo)}, {fmt(hi)}{')' if self.high_open else ']'}"
        elif lo is not None:
            words = f"{what} {'>' if self.low_open else '>='} {fmt(lo)}"
        elif hi is not None:
            words = f"{what} {'<' if self.high_open else '<='} {fmt(hi)}"
        else:
            words = what
        if self.note:
            words += f" ({self.note})"
        if self.none:
            words += f", or {'0 or ' if self.zero_is_none else ''}none for {self.none}"
        return words

    def __call__(self, text: str) -> Any:
        s = text.strip()
        if self.none and s.lower() == "none":
            return None
        try:
            value = int(s) if self.kind is int else float(s)
        except ValueError:
            raise self.refuse(text, typed=True) from None
        if self.zero_is_none and value == 0:
            return None
        if not self._fits(value):
            raise self._out_of_range(value, text, typed=True)
        return value

    def check(self, value: Any) -> Any:
        if value is None and self.none:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.refuse(value)
        if self.kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise self.refuse(value)
            value = int(value)
        else:
            value = float(value)
        if self.zero_is_none and value == 0:
            return None
        if not self._fits(value):
            raise self._out_of_range(value, value)
        return value

    def _fits(self, value: float) -> bool:
        if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):   # (an int may be too big
            return False                                                               # for a float)
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        top = self._top
        if top is not None and (value > top or (self.high_open and value == self.high)):
            return False
        return True

    def _out_of_range(self, value: float, shown: Any, typed: bool = False) -> argparse.ArgumentTypeError:
        """The refusal of ``value``, a number outside the range; one above the integers' cap is told the range
        with the cap (``--help`` leaves it out)."""
        if self.high is None and self.kind is int and value > INT_MAX:
            return argparse.ArgumentTypeError(f"must be {self._words(INT_MAX)}, got {_shown(shown, typed)}")
        return self.refuse(shown, typed)

    def with_note(self, note: str) -> "Range":
        return replace(self, note=note)


def integer(low: int | None = None, high: int | None = None, note: str = "") -> Range:
    return Range(int, low, high, note=note)


def number(low: float | None = None, high: float | None = None, *, low_open: bool = False,
           high_open: bool = False, note: str = "") -> Range:
    """A finite float (NaN and infinities are never in range)."""
    return Range(float, low, high, low_open, high_open, note)


def optional(r: Range, meaning: str, zero: bool = False) -> Range:
    """``r``, or ``none`` (and ``0`` with ``zero``) for ``meaning``: the option left out."""
    return replace(r, none=meaning, zero_is_none=zero)


positive_int = integer(1)
non_negative_int = integer(0)
positive_float = number(0, low_open=True)
non_negative_float = number(0)
finite_float = number()
probability = number(0, 1)                             # [0, 1]
dropout_rate = number(0, 1, high_open=True)            # [0, 1): a rate of 1 drops everything
zoneout_rate = dropout_rate.with_note("1 would keep h_0 for ever")   # [0, 1)
open_probability = number(0, 1, low_open=True, high_open=True)    # (0, 1)
unit_interval_open = number(0, 1, low_open=True)       # (0, 1]: top-p
seed_int = integer(0, 2**32 - 1)                       # NumPy's seeds
thread_count = integer(1, 1024)                        # more threads than this abort inside OpenMP


@dataclass(frozen=True)
class PathText(Checked):
    """A file or folder name: not empty, not blank (``--out ""`` would write into the current folder)."""

    as_path: bool = False
    text: str = "a non-empty file or folder name"

    def __call__(self, text: str) -> Any:
        if not text.strip():
            raise self.refuse(text, typed=True)
        return Path(text) if self.as_path else text

    def check(self, value: Any) -> Any:
        if not isinstance(value, (str, Path)) or not str(value).strip():
            raise self.refuse(value)
        return Path(value) if self.as_path else str(value)


out_path = PathText()


def figure_formats() -> list[str]:
    """The file formats matplotlib writes, by their suffixes: the common ones first (png, pdf, svg, jpg, eps),
    then the others alphabetically."""
    from matplotlib.backend_bases import FigureCanvasBase
    common = ("png", "pdf", "svg", "jpg", "eps")
    return sorted(FigureCanvasBase.get_supported_filetypes(),
                  key=lambda f: (common.index(f) if f in common else len(common), f))


@dataclass(frozen=True)
class FigurePath(PathText):
    """A plot to write: a file name whose suffix is a format matplotlib writes, or none (a PNG; what
    :func:`rnnkit.training.plots.save_figure` does). Checked as it is parsed, so that a name matplotlib would
    refuse after the work is refused before it; matplotlib is imported only then, not for ``--help``."""

    text: str = "a file name ending in .png, .pdf, .svg or another image format matplotlib writes (none: PNG)"

    def __call__(self, text: str) -> Any:
        path = super().__call__(text)
        suffix = Path(text).suffix.lstrip(".").lower()
        formats = figure_formats() if suffix else []
        if suffix and suffix not in formats:
            shown = ", ".join(f".{f}" for f in formats[:5]) + (", ..." if len(formats) > 5 else "")
            raise argparse.ArgumentTypeError(f"must be a file name ending in an image format matplotlib writes "
                                             f"({shown}), got {_shown(text, True)}")
        return path


figure_path = FigurePath()


@dataclass(frozen=True)
class IntList(Checked):
    """Comma-separated integers, each at least ``low``: ``32,64,128``."""

    low: int = 1

    @property
    def text(self) -> str:                   # type: ignore[override]
        return f"comma-separated integers, each >= {self.low}"

    def __call__(self, text: str) -> list[int]:
        try:
            values = [int(v) for v in text.replace(" ", "").split(",") if v]
        except ValueError:
            raise self.refuse(text, typed=True) from None
        if not values or min(values) < self.low:
            raise self.refuse(text, typed=True)
        if max(values) > INT_MAX:
            raise self._too_big(text, typed=True)
        return values

    def check(self, value: Any) -> list[int]:
        if (not isinstance(value, (list, tuple)) or not value
                or any(isinstance(v, bool) or not isinstance(v, int) or v < self.low for v in value)):
            raise self.refuse(value)
        if max(value) > INT_MAX:
            raise self._too_big(value)
        return list(value)

    def _too_big(self, value: Any, typed: bool = False) -> argparse.ArgumentTypeError:
        """The refusal of a list with an integer above :data:`INT_MAX`, naming the cap."""
        return argparse.ArgumentTypeError(f"must be comma-separated integers, each in [{self.low}, {INT_MAX}], "
                                          f"got {_shown(value, typed)}")


@dataclass(frozen=True)
class YesNo(Checked):
    """yes/no (also true/false, on/off, 1/0)."""

    text: str = "yes or no"

    def __call__(self, text: str) -> bool:
        value = text.strip().lower()
        if value in ("yes", "true", "1", "on"):
            return True
        if value in ("no", "false", "0", "off"):
            return False
        raise self.refuse(text, typed=True)

    def check(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        raise self.refuse(value)


yes_no = YesNo()

_RANGE_ERROR = re.compile(r"argument (?P<flags>[^:]+): (?P<problem>must be .*)", re.S)


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """A command's description as its docstring lays it out, and each option's default (once: not where its help
    says it already)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        return text if "(default:" in text else super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """rnnkit's argument parser: a value out of its range is one line, ``PROG: error: --opt must be ..., got
    X``, exit code 2 (other usage errors keep argparse's form: the usage, then the error). A description taken
    from a module's docstring is shown without its reStructuredText markup."""

    def __init__(self, *args, **kwargs) -> None:
        if kwargs.get("description"):
            kwargs["description"] = plain_text(kwargs["description"])
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        from ..training.distributed import main_process
        if not main_process():                     # under torchrun every rank meets it: rank 0 says it once
            self.exit(2)
        m = _RANGE_ERROR.fullmatch(message)
        if m:
            flag = max(m.group("flags").split("/"), key=len)         # -k/--top-k: --top-k
            self.exit(2, f"{self.prog}: error: {flag} {m.group('problem')}\n")
        super().error(message)


def plain_text(docstring: str) -> str:
    """A docstring as a terminal shows it: ``:mod:`rnnkit.bench``` -> rnnkit.bench, ````x```` -> x,
    ``Examples::`` -> ``Examples:``."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", docstring)
    return re.sub(r"::$", ":", text.replace("``", ""), flags=re.M)


def _with_range(help_text: str, rng: str, add_default: bool) -> str:
    shown = f" [range: {rng}]".replace("%", "%%")
    if add_default:                       # ArgumentDefaultsHelpFormatter would put the default after the range
        help_text += " (default: %(default)s)"
    return help_text + shown


def document_ranges(parser: argparse.ArgumentParser) -> None:
    """Add each range-checked option's range to its ``--help`` text, after the default, in every sub-command."""
    defaults_shown = issubclass(parser.formatter_class, argparse.ArgumentDefaultsHelpFormatter)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                document_ranges(sub)
        elif isinstance(action.type, Checked) and action.help and "[range: " not in action.help:
            add_default = defaults_shown and "%(default)" not in action.help and "(default:" not in action.help
            action.help = _with_range(action.help, action.type.text, add_default)

"""A Griffe extension: rnnkit's docstrings are written in reStructuredText habits; mkdocstrings renders Markdown.

Three rewrites, so that the API reference reads as the source does:

* ``G*H`` in prose stays a product (the ``*`` escaped, not read as emphasis);
* roles (``:func:`run_bptt```, ``:class:`~rnnkit.cells.spec.Recurrence```) become code spans;
* a paragraph ending in ``::`` (a literal block follows) ends in ``:`` (Markdown already shows the indented
  block after it as code);
* simple tables (rows between ``====  ====`` borders) become Markdown: a table when they have a header row, else
  a list with one item per row (its first column in front, the others after a dash).

The source is not changed; only the text mkdocstrings renders.

It also lets Griffe see a folder of modules without ``__init__.py`` inside a package (``rnnkit/models``): Griffe
skips such folders (PEP 420 namespaces belong at the top), Python imports them.
"""
from __future__ import annotations

import re
from pathlib import Path

import griffe

CODE = re.compile(r"(``.+?``|`[^`]+`)")
ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|obj|exc|const|ref|term):`~?\.?([^`]+)`")
BORDER = re.compile(r"^\s*=+(\s+=+)+\s*$")


def _role(match: re.Match) -> str:
    target = match.group(1)
    if match.group(0).split("`")[1].startswith("~"):
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


def _escape_stars(line: str) -> str:
    """``G*H`` in prose is a product, not the start of emphasis: escape a ``*`` between word characters outside
    code spans (lines indented four spaces or more are literal blocks, left alone)."""
    if line.startswith("    "):
        return line
    parts = CODE.split(line)
    return "".join(part if k % 2 else re.sub(r"(?<=[\w)])\*(?=[\w(])", r"\*", part)
                   for k, part in enumerate(parts))


def rewrite(text: str) -> str:
    text = ROLE.sub(_role, text)
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if BORDER.match(line):
            j = i + 1
            while j < len(lines) and not (BORDER.match(lines[j]) and (j + 1 == len(lines) or not lines[j + 1].strip())):
                j += 1
            out += simple_table(lines[i:j + 1])
            i = j + 1
            continue
        stripped = line.rstrip()
        if stripped.endswith("::"):
            line = stripped[:-2].rstrip() + (":" if stripped[:-2].strip() else "")
        out.append(_escape_stars(line))
        i += 1
    return "\n".join(out)


def simple_table(block: list[str]) -> list[str]:
    """An RST simple table (its border lines included) as Markdown lines."""
    border = block[0]
    spans = [(m.start(), m.end()) for m in re.finditer(r"=+", border)]
    indent = border[: spans[0][0]]
    borders = [k for k, line in enumerate(block) if BORDER.match(line)]
    header_end = borders[1] if len(borders) > 2 else None
    rows: list[list[str]] = []
    header: list[list[str]] = []
    for k, line in enumerate(block):
        if k in borders:
            continue
        cells = [line[start:(spans[c + 1][0] if c + 1 < len(spans) else None)].strip()
                 for c, (start, _) in enumerate(spans)]
        target = header if header_end is not None and k < header_end else rows
        if target and not cells[0]:                      # a continuation line: more text for the row above
            target[-1] = [f"{old} {new}".strip() for old, new in zip(target[-1], cells)]
        elif any(cells):
            target.append(cells)
    if header:
        out = [indent + "| " + " | ".join(header[0]) + " |", indent + "|" + "---|" * len(spans)]
        out += [indent + "| " + " | ".join(row) + " |" for row in rows]
        return [""] + out + [""]
    return [""] + [indent + f"- {row[0]}: " + " — ".join(c for c in row[1:] if c) for row in rows] + [""]


class RstDocstrings(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value)

    def on_module_members(self, *, mod: griffe.Module, **kwargs) -> None:
        if mod.parent is not None or not mod.is_package:
            return
        for folder in sorted(Path(mod.filepath).parent.iterdir()):
            if (folder.is_dir() and not (folder / "__init__.py").exists() and any(folder.glob("*.py"))
                    and folder.name not in mod.members):
                mod.set_member(folder.name, griffe.Module(folder.name, filepath=[folder], parent=mod))

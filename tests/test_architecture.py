"""The import structure of src/rnnkit: data -> models(layers(engine(cells))) -> tasks(training, decoding) -> cli.

Every module is parsed with ``ast``; every import counts (absolute or relative, at the top, inside a function or
under ``TYPE_CHECKING``). A package may import only the packages :data:`MAY_IMPORT` lists for it; there is no
cycle between packages, nor between files (a package ``__init__`` re-exporting its own modules excepted).
"""
from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = SRC / "rnnkit"

_MODELS = {"cells", "engine", "layers", "models", "data"}
_TASKS = _MODELS | {"training", "decoding", "tasks"}
MAY_IMPORT: dict[str, set[str]] = {     # package -> the packages below it (its own modules are always fine)
    "cells": set(),                     # one step of each cell, and its description
    "reference": set(),                 # NumPy from the lecture: stands alone
    "data": set(),
    "engine": {"cells"},
    "layers": {"cells", "engine"},
    "models": _MODELS - {"models"},
    "training": {"data"},               # the loop knows no model and no task
    "decoding": _MODELS,
    "tasks": _TASKS - {"tasks"},
    "analysis": _TASKS | {"reference"},
    "bench": _TASKS,
    "export": _TASKS - {"decoding"},    # a trained run as ONNX / torch.export files
    "cli": _TASKS | {"analysis", "bench", "reference", "rnnkit", "export"},
    "rnnkit": {"cells", "layers"},      # the package's own __init__: the public classes
}


@dataclass(frozen=True)
class Import:
    source: str                          # the importing module, e.g. rnnkit.bench.cpu
    target: str                          # the imported module, e.g. rnnkit.engine.fused
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path.relative_to(SRC.parent)}:{self.line} imports {self.target}"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package(module: str) -> str:
    """``rnnkit.engine.fused`` -> ``engine``; the root package ``rnnkit`` -> ``rnnkit``; ``rnnkit.__main__``
    (``python -m rnnkit``) -> ``cli``."""
    if module == "rnnkit.__main__":
        return "cli"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


FILES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _known(name: str) -> str | None:
    """The longest prefix of ``name`` that is a module of rnnkit (``pkg.mod.Class`` -> ``pkg.mod``)."""
    while name:
        if name in FILES:
            return name
        name = name.rpartition(".")[0]
    return None


def _targets(node: ast.AST, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        here = module.split(".") if is_package else module.split(".")[:-1]
        here = here[: len(here) - (node.level - 1)]
        base = ".".join(here + ([base] if base else []))
    names = [f"{base}.{a.name}" for a in node.names]
    modules = [n for n in names if n in FILES]          # "from . import fused": the module rnnkit.engine.fused
    return modules + ([base] if len(modules) < len(names) else [])     # "from .x import y": from rnnkit...x


def _imports() -> list[Import]:
    found = []
    for module, path in FILES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            for name in _targets(node, module, path.name == "__init__.py"):
                target = _known(name) if name.startswith("rnnkit") else None
                if target is not None and target != module:
                    found.append(Import(module, target, path, node.lineno))
    return found


IMPORTS = _imports()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _explain(cycle: list[str], imports: list[Import], key) -> str:
    members = set(cycle)
    lines = [f"  {i}" for i in imports if key(i.source) in members and key(i.target) in members
             and key(i.source) != key(i.target)]
    return " <-> ".join(cycle) + ":\n" + "\n".join(lines)


def test_the_graph_sees_every_kind_of_import():
    """Guards the parser: relative, absolute, in-function and package-level imports are all found."""
    pairs = {(i.source, i.target) for i in IMPORTS}
    assert ("rnnkit.engine.sequence", "rnnkit.engine.ops") in pairs             # from .ops import run_bptt
    assert ("rnnkit", "rnnkit.layers") in pairs                                   # from .layers import GRU, ...
    assert ("rnnkit.cli.bench", "rnnkit.bench.report") in pairs                  # inside a function
    assert len(FILES) > 50 and len(IMPORTS) > 100


def test_every_package_is_placed_in_the_layering():
    unknown = sorted({package(m) for m in FILES} - set(MAY_IMPORT))
    assert unknown == [], f"packages missing from MAY_IMPORT in {__file__}: {unknown}"


def test_engine_and_cells_import_nothing_above_them():
    wrong = [str(i) for i in IMPORTS if package(i.source) in ("cells", "engine")
             and package(i.target) not in MAY_IMPORT[package(i.source)] | {package(i.source)}]
    assert wrong == [], "the engine imports nothing above cells/, cells/ nothing at all:\n" + "\n".join(wrong)


def test_analysis_does_not_import_the_cli():
    wrong = [str(i) for i in IMPORTS if package(i.source) == "analysis" and package(i.target) == "cli"]
    assert wrong == [], "analysis/ imports from cli/:\n" + "\n".join(wrong)


def test_nothing_imports_the_cli():
    wrong = [str(i) for i in IMPORTS if package(i.target) == "cli" and package(i.source) != "cli"]
    assert wrong == [], "only cli/ imports cli/:\n" + "\n".join(wrong)


def test_nothing_below_imports_above():
    wrong = [f"{i} ({package(i.source)} may import {sorted(MAY_IMPORT.get(package(i.source), ()))})"
             for i in IMPORTS if package(i.source) != package(i.target)
             and package(i.target) not in MAY_IMPORT.get(package(i.source), set())]
    assert wrong == [], "imports against data -> models(layers(engine(cells))) -> tasks(training, decoding) " \
                        "-> cli:\n" + "\n".join(wrong)


def test_no_package_cycle():
    graph: dict[str, set[str]] = defaultdict(set)
    for i in IMPORTS:
        if package(i.source) != package(i.target):
            graph[package(i.source)].add(package(i.target))
    cycles = _cycles(graph)
    assert cycles == [], "package cycles:\n" + "\n".join(_explain(c, IMPORTS, package) for c in cycles)


def test_no_file_cycle():
    """A module importing its own package's ``__init__`` (which re-exports the package's modules) is no cycle."""
    kept = [i for i in IMPORTS if not i.source.startswith(i.target + ".")]
    graph: dict[str, set[str]] = defaultdict(set)
    for i in kept:
        graph[i.source].add(i.target)
    cycles = _cycles(graph)
    assert cycles == [], "file cycles:\n" + "\n".join(_explain(c, kept, lambda m: m) for c in cycles)


# ------------------------------------------------------------------------------------------- cell names

CELL_STRINGS = {"lstm", "gru", "gru-torch", "gru_reset_after", "rnn", "rnn-relu", "rnn_tanh", "rnn_relu"}


def _cell_strings(node: ast.AST) -> bool:
    """A cell-name literal, or a tuple/list/set holding one."""
    if isinstance(node, ast.Constant):
        return node.value in CELL_STRINGS
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_cell_strings(e) for e in node.elts)
    return False


def _cell_name_tests(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn))
                                                 for op in node.ops):
            operands = [node.left, *node.comparators]
            if any(map(_cell_strings, operands)) and not all(isinstance(o, ast.Constant) for o in operands):
                lines.append(node.lineno)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "startswith" and node.args and _cell_strings(node.args[0])):
            lines.append(node.lineno)
    return lines


def test_the_cell_name_check_sees_each_form():
    tree = ast.parse("a == 'lstm'\n'gru' != b\nc in ('rnn', 'x')\nd.startswith('rnn_')\nd.startswith('gru')\n"
                     "e == 'lstmx'\n'lstm' == 'lstm'\n")
    assert _cell_name_tests(tree) == [1, 2, 3, 5]


def test_no_cell_name_string_tests_outside_cells_and_the_cli():
    """Past argument parsing a cell is its :class:`~rnnkit.cells.spec.Recurrence`, never a string."""
    found = []
    for module, path in FILES.items():
        if package(module) in ("cells", "cli"):
            continue
        source = path.read_text(encoding="utf-8")
        for line in _cell_name_tests(ast.parse(source)):
            found.append(f"{path.relative_to(SRC.parent)}:{line}: {source.splitlines()[line - 1].strip()}")
    assert found == [], f"{len(found)} cell names compared as strings:\n" + "\n".join(found)

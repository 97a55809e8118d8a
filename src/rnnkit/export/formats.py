"""Writing a :class:`~.programs.Program` as an ONNX file or a torch.export ``.pt2`` file, and running it back.

* ``onnx``: ``torch.onnx.export(dynamo=True)`` with rnnkit's operator translated by :mod:`.onnx_ops` (opset 18);
  inputs and outputs carry the program's port names, dynamic dimensions their letters (``N``, ``T``, ``S``).
* ``pt2``: :func:`torch.export.export` saved with :func:`torch.export.save`. It keeps ``rnnkit::recurrence`` as
  one node per layer direction, so loading it needs ``import rnnkit`` first (which registers the operator).

:func:`run_file` runs a written file on given inputs (onnxruntime for ONNX), which is how an export checks itself.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor

from ..layers import MinimalLayer, RecurrentLayer
from .errors import (INSTALL_HINT, MINIMAL_MESSAGE, REGULARISER_MESSAGE, ExportError, OnnxNotSupported,
                     ProjectionNotSupported)
from .programs import Program

FORMATS = ("onnx", "pt2")
OPSET = 18

@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The exporters' progress lines, warnings and log messages kept off the terminal."""
    names = ("torch.onnx", "torch.export", "torch._export", "torch.fx", "torch._dynamo", "onnxscript", "onnx_ir")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def onnx_unsupported(module: torch.nn.Module) -> str | None:
    """Why ``module`` can't become ONNX, or None: ONNX's LSTM has no projection (``proj_size``), and its recurrent
    operators have no layer norm or zoneout (weight drop and the dropouts are off in evaluation: those export)."""
    refusal = _onnx_refusal(module)
    return None if refusal is None else str(refusal)


def _onnx_refusal(module: torch.nn.Module, whole_sequences: bool = False) -> OnnxNotSupported | None:
    """``whole_sequences``: the program runs its layers over a sequence of dynamic length (not one step)."""
    if whole_sequences and any(isinstance(m, MinimalLayer) for m in module.modules()):
        return OnnxNotSupported(MINIMAL_MESSAGE)
    layers = [m for m in module.modules() if isinstance(m, RecurrentLayer)]
    if any(m.proj_size for m in layers):
        return ProjectionNotSupported()
    options = [name for name, on in (("layer norm", any(m.options.layer_norm for m in layers)),
                                     ("zoneout", any(m.options.zoneout_h or m.options.zoneout_c for m in layers)))
               if on]
    return OnnxNotSupported(REGULARISER_MESSAGE.format(options=" or ".join(options))) if options else None


def _require_onnx() -> None:
    missing = []
    for name in ("onnx", "onnxscript"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ExportError(f"ONNX export needs the {' and '.join(missing)} package(s): {INSTALL_HINT}")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"


def _root_cause(e: BaseException) -> BaseException:
    """The innermost exception of a chain (the ONNX exporter wraps the translator's own errors)."""
    seen = set()
    while (e.__cause__ or e.__context__) is not None and id(e) not in seen:
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return e


def export_program(program: Program, fmt: str, path: str | os.PathLike, sizes: dict[str, int],
                   seed: int = 0) -> None:
    """Write ``program`` to ``path`` as ``fmt``, traced on inputs of ``sizes`` with dynamic batch and lengths."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    args = program.make_inputs(sizes, torch.Generator().manual_seed(seed))
    dynamic = program.dynamic_shapes()
    path = Path(path)
    if fmt == "onnx":
        sequences = any(d in ("T", "S") for port in program.inputs for d in port.shape)
        refusal = _onnx_refusal(program.module, whole_sequences=sequences)
        if refusal is not None:                    # (what the model lacks first: installing onnx wouldn't help)
            raise refusal
        _require_onnx()
        from .onnx_ops import translation_table
        try:
            with quiet(), torch.no_grad():
                onnx_program = torch.onnx.export(
                    program.module, args, dynamo=True, verbose=False, opset_version=OPSET,
                    input_names=[p.name for p in program.inputs], output_names=[p.name for p in program.outputs],
                    dynamic_shapes=dynamic, custom_translation_table=translation_table(), optimize=True)
                onnx_program.save(str(path))
        except Exception as e:       # the exporters raise many types; one line says which and why
            cause = _root_cause(e)
            if isinstance(cause, ProjectionNotSupported):
                raise ProjectionNotSupported() from None
            raise ExportError(f"the {program.name} program could not be exported to ONNX ({_first_line(cause)})") \
                from e
        return
    try:
        with quiet(), torch.no_grad():
            exported = torch.export.export(program.module, args, dynamic_shapes=dynamic)
            torch.export.save(exported, str(path))
    except Exception as e:
        raise ExportError(f"the {program.name} program could not be exported with torch.export "
                          f"({_first_line(_root_cause(e))})") from e


def run_file(fmt: str, path: str | os.PathLike, program: Program, inputs: tuple[Tensor, ...]) -> list[Tensor]:
    """The outputs of the written file on ``inputs``: onnxruntime for ONNX, ``torch.export.load`` for pt2."""
    if fmt == "onnx":
        import onnxruntime
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {p.name: t.numpy() for p, t in zip(program.inputs, inputs)}
        return [torch.from_numpy(a) for a in session.run([p.name for p in program.outputs], feed)]
    with quiet():
        module = torch.export.load(str(path)).module()
    with torch.no_grad():
        return list(module(*inputs))


def compare(program: Program, fmt: str, path: str | os.PathLike, sizes: dict[str, int], seed: int = 1) -> float:
    """The largest difference between the written file and the program itself on new inputs of ``sizes``."""
    inputs = program.make_inputs(sizes, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected = program.module(*inputs)
    got = run_file(fmt, path, program, inputs)
    worst = 0.0
    for port, e, g in zip(program.outputs, expected, got):
        if tuple(e.shape) != tuple(g.shape):
            raise ExportError(f"the exported {program.name} program gives {port.name} of shape {tuple(g.shape)}, "
                              f"rnnkit {tuple(e.shape)}")
        if e.dtype.is_floating_point:
            worst = max(worst, float((e - g.to(e.dtype)).abs().max()) if e.numel() else 0.0)
        elif not torch.equal(e, g.to(e.dtype)):
            raise ExportError(f"the exported {program.name} program gives another {port.name} than rnnkit")
    return worst

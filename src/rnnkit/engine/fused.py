"""The compiled engine: the whole time loop, forward and backward, in C++ (``csrc/``), same contract as ``bptt``.
(This is ``engine="compiled"``; on a GPU, ``engine="cuda-graph"`` runs :mod:`rnnkit.engine.graphed`.)

Python pays ~9 µs per operation per step; this loop pays none: each step is the recurrent matmul(s) (oneDNN for
big float32 products, MKL's packed GEMM with the weight packed once per sequence for the rest, ATen for float64;
``csrc/gemm.h``) and one fused, vectorized pass over the gates (``csrc/cells.cpp``). The input projection and the
weight gradients are one matmul each per window of steps. It saves exactly what :mod:`rnnkit.engine.bptt` saves
(the LSTM ``6·N·H·T`` floats) and, with ``checkpoint_every=k``, only the states plus the LSTM cell every ``k``
steps, recomputing each window's gates in the backward. The backward never writes the saved tensors, so
``retain_graph`` and ``gradcheck`` work.

The extension is built on first use with :func:`torch.utils.cpp_extension.load` into ``$RNNKIT_BUILD_DIR`` (or
torch's extension cache), about a minute once, then loaded from the cache in milliseconds; ``rnnkit build``
(:func:`build`) builds ahead. Importing rnnkit compiles nothing.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import platform
import shutil
import sys
import threading
import time
from pathlib import Path

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..cells.spec import Recurrence

_CSRC = Path(__file__).with_name("csrc")
_SOURCES = ("engine.cpp", "cells.cpp", "stepper.cpp")
_DTYPES = (torch.float32, torch.float64)
_KERNELS = ("rnn_tanh", "rnn_relu", "lstm", "gru", "gru_reset_after")     # csrc/cells.cpp's Mode
_BUILD_FAILED = "the C++ extension could not be built"
_INFERENCE_ROWS = 2048              # rows (steps x N) per window when no backward will run
_lock = threading.Lock()
_state: dict = {"module": None, "error": None}


def _flags() -> list[str]:
    """-O3, OpenMP for the row loops, no FP traps/errno (as torch builds; lets the gate loops vectorize), and
    AVX2/FMA, or AVX-512 with 512-bit loops, only where torch detected them on this CPU (the cache key includes
    the flags). On a Zen 4 the AVX-512 build's LSTM training step was ~4% faster at (200, 4, 128) and even
    elsewhere (``benchmarks/engine_ab.py --variant-flags``: both builds in one process)."""
    flags = ["-O3", "-fopenmp", "-fno-trapping-math", "-fno-math-errno"]
    capability = torch.backends.cpu.get_cpu_capability()
    if platform.machine().lower() in ("x86_64", "amd64") and capability in ("AVX2", "AVX512"):
        flags += ["-mavx2", "-mfma"]
        if capability == "AVX512":                 # ATen's AVX512 means F, BW, VL and DQ are all there
            flags += ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mprefer-vector-width=512"]
    return flags


def _name(flags: list[str]) -> str:
    """A module name that changes with the sources, flags, compiler and torch: a stale build is never loaded."""
    h = hashlib.sha256(" ".join([torch.__version__, os.environ.get("CXX", "c++"), *flags]).encode())
    for f in sorted(_CSRC.iterdir()):
        h.update(f.name.encode() + f.read_bytes())
    return f"rnnkit_fused_{h.hexdigest()[:12]}"


def _build_dir(name: str) -> str:
    root = os.environ.get("RNNKIT_BUILD_DIR")
    if root:
        path = os.path.join(os.path.expanduser(root), name)
        os.makedirs(path, exist_ok=True)
        return path
    from torch.utils.cpp_extension import _get_build_directory
    return _get_build_directory(name, verbose=False)


def _short(err: BaseException) -> str:
    """The first compiler error line of a failed build, or the exception's first line."""
    text = str(err)
    lines = [ln.strip() for ln in text.splitlines() if "error" in ln.lower() and ln.strip()]
    line = lines[1] if len(lines) > 1 and lines[0].startswith("Error building") else (lines or [text])[0]
    return f"{type(err).__name__}: {line[:300]}"


def _compile(verbose: bool):
    """The extension module: imported straight from the cache when built, else built under :func:`_build_lock`."""
    from torch.utils import cpp_extension
    flags = _flags()
    name = _name(flags)
    build_dir = _build_dir(name)
    library = os.path.join(build_dir, f"{name}.so")
    if os.path.exists(library):
        try:
            return _import_built(name, library)
        except ImportError:                        # a half-written library from a killed build: build again
            pass
    cxx = os.environ.get("CXX", "c++")
    if shutil.which(cxx) is None:
        raise RuntimeError(f"no C++ compiler found ({cxx!r} is not on PATH; install g++ or set CXX)")
    if not cpp_extension.is_ninja_available():
        raise RuntimeError("ninja is not installed (pip install ninja)")
    with _build_lock(build_dir):
        if os.path.exists(library):
            try:
                return _import_built(name, library)   # another process built it while we waited
            except ImportError:
                os.remove(library)
        stale = os.path.join(build_dir, "lock")       # torch's own lock, left by a build that was killed:
        if os.path.exists(stale):                     # nobody else builds while we hold ours, so it is stale
            os.remove(stale)
        print(f"rnnkit: compiling the C++ engine once (about a minute) into {build_dir} ...",
              file=sys.stderr, flush=True)
        started = time.monotonic()
        module = cpp_extension.load(name, [str(_CSRC / s) for s in _SOURCES], extra_cflags=flags,
                                    extra_ldflags=["-fopenmp"], build_directory=build_dir, verbose=verbose)
        print(f"rnnkit: C++ engine built in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        return module


def _import_built(name: str, library: str):
    """Import an already-built extension from its file (no compiler, no ninja, no torch build lock)."""
    spec = importlib.util.spec_from_file_location(name, library)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        raise ImportError(f"{library}: {err}") from err
    return module


@contextlib.contextmanager
def _build_lock(build_dir: str):
    """One builder per build folder across processes: an ``flock`` the kernel releases when its holder dies, so
    a killed build never blocks the next one. A live builder is waited for, with a message, up to
    ``$RNNKIT_BUILD_WAIT`` seconds (default 600)."""
    try:
        import fcntl
    except ImportError:                            # no flock (Windows): torch's own lock only
        yield
        return
    path = os.path.join(build_dir, "rnnkit-build.lock")
    limit = float(os.environ.get("RNNKIT_BUILD_WAIT", "600"))
    with open(path, "a+") as handle:
        started, next_message = time.monotonic(), 0.0
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - started
                if waited >= next_message:
                    next_message += 30
                    print(f"rnnkit: waiting for another process that is building the C++ engine "
                          f"(lock {path})", file=sys.stderr, flush=True)
                if waited > limit:
                    raise RuntimeError(f"another process has held the build lock {path} for {limit:.0f} s; "
                                       f"if no rnnkit build is running, delete that folder") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _module(verbose: bool = False):
    """The loaded extension, building it on first use; ``None`` (and the error remembered) if it can't be built."""
    if _state["module"] is None and _state["error"] is None:
        with _lock:
            if _state["module"] is None and _state["error"] is None:
                try:
                    _state["module"] = _compile(verbose)
                except Exception as err:           # no compiler, no ninja, a compile or load error
                    _state["error"] = _short(err)
    return _state["module"]


def build(verbose: bool = False) -> str:
    """Build (or load from the cache) the extension now and return its path; ``RuntimeError`` saying why if not."""
    module = _module(verbose)
    if module is None:
        raise RuntimeError(f"rnnkit: the compiled engine is unavailable: {_BUILD_FAILED}: {_state['error']}")
    return module.__file__


def unavailable_reason(cell: Recurrence, x: Tensor) -> str | None:
    """Why the compiled loop can't run ``cell`` on ``x``, or ``None`` when it can (may build on first use)."""
    if cell.kernel not in _KERNELS:
        return f"the compiled loop has no kernel for {cell.description}"
    if x.device.type != "cpu":
        return f"the compiled loop runs on the CPU only, not on {x.device.type}"
    if x.dtype not in _DTYPES:
        return f"the compiled engine has no {x.dtype} kernels (float32 and float64 only)"
    if _module() is None:
        return f"{_BUILD_FAILED}: {_state['error']}"
    return None


def warn_on_fallback(reason: str) -> bool:
    """``auto`` warns (once) when the build failed, not for inputs the engine never serves (dtype, device)."""
    return reason.startswith(_BUILD_FAILED)


class Fused(torch.autograd.Function):
    """The C++ forward and backward loops as one autograd node (contract: :mod:`rnnkit.engine.bptt`)."""

    @staticmethod
    def forward(ctx, cell, mask, checkpoint, x, h0, c0, w_ih, w_hh, b_ih, b_hh):
        store = checkpoint <= 0
        hs, c_T, cs, gates, hw_n = _module().forward(cell.kernel, x, h0, c0, w_ih, w_hh, b_ih, b_hh, mask,
                                                     checkpoint, store)
        ctx.cell = cell
        ctx.window = 0 if store else checkpoint
        ctx.save_for_backward(x, hs, cs, gates, hw_n, w_ih, w_hh, b_ih, b_hh, mask)
        h_seq = hs[1:]
        return (h_seq, c_T) if cell.has_cell_state else h_seq

    @staticmethod
    @once_differentiable
    def backward(ctx, dY, dc_T=None):
        x, hs, cs, gates, hw_n, w_ih, w_hh, b_ih, b_hh, mask = ctx.saved_tensors
        if dY is None:                                  # only C_T was used
            dY = hs.new_zeros(()).expand(hs.shape[0] - 1, *hs.shape[1:])
        dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh = _module().backward(
            ctx.cell.kernel, x, hs, cs, gates, hw_n, w_ih, w_hh, b_ih, b_hh, mask, dY, dc_T,
            ctx.needs_input_grad[3], ctx.window)
        return None, None, None, dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh


def run_fused(cell: Recurrence, x: Tensor, h0: Tensor, c0: Tensor | None, weights: tuple, mask: Tensor | None,
              checkpoint_every: int | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
    """Run ``cell`` over ``x`` in the compiled loop; same arguments and results as ``bptt.run_bptt``.

    ``checkpoint_every=k`` keeps only the states (and the LSTM cell every ``k`` steps) and recomputes each
    window of ``k`` steps in the backward: memory ``~N·H·T`` instead of ``6·N·H·T`` for about a third more time.
    Without autograd nothing is saved and the loop runs through window-sized buffers.
    """
    w_ih, w_hh, b_ih, b_hh = weights
    c0 = c0 if cell.has_cell_state else None
    x = x.contiguous()
    mask = None if mask is None else mask.contiguous()
    inputs = (x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs):
        if checkpoint_every is not None and checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be a positive number of steps, got {checkpoint_every}")
        out = Fused.apply(cell, mask, checkpoint_every or 0, *inputs)
        h_seq, c_T = out if cell.has_cell_state else (out, None)
    else:
        window = max(1, _INFERENCE_ROWS // max(1, x.shape[1]))
        hs, c_T, *_ = _module().forward(cell.kernel, x, h0, c0, w_ih, w_hh, b_ih, b_hh, mask, window, False)
        h_seq = hs[1:]
    return h_seq, h_seq[-1], c_T


def make_stepper(cell: Recurrence, layer_weights: list[list[Tensor | None]], batch: int):
    """The compiled generation step for a stack: ``.step(x (N, I), h (L, N, H), c or None) -> [h', c']``.

    ``layer_weights`` holds each layer's ``[w_ih, w_hh, b_ih, b_hh]``; their packed copies are made here, so the
    stepper serves these weights as they are now (see :mod:`rnnkit.layers.stepping`).
    """
    return _module().Stepper(cell.kernel, [[None if w is None else w.detach() for w in ws] for ws in layer_weights], batch)

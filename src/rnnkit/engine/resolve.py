"""The one place that decides which backend runs a recurrence, for whole sequences and for single steps.

Names say what runs:

=============  =====================================================================================
``auto``       the fastest that can serve: ``compiled`` on the CPU, ``torch`` on a GPU where torch.nn
               has the cell (``cuda-graph`` for the lecture's GRU and for recurrent dropout, zoneout and
               layer norm, which cuDNN lacks), ``python`` where neither can serve
``compiled``   the C++ time loop with hand-written BPTT (:mod:`.fused`), CPU only
``cuda-graph`` the Python loop's kernels captured once in CUDA graphs and replayed (:mod:`.graphed`), GPU only
``python``     the time loop in Python with hand-written BPTT (:mod:`.bptt`), every device
``autograd``   a plain autograd loop over the cell's step function (:mod:`.reference`): slow, obviously right
``torch``      torch.nn's own kernel (cuDNN on a GPU, oneDNN for the LSTM on a CPU), for cells it has
=============  =====================================================================================

An explicit request that cannot be met raises an error that says why; ``auto`` falls back quietly (with a
one-time warning when the C++ build failed). The old names still work and warn once: ``fused`` (``compiled`` on
the CPU, ``cuda-graph`` on a GPU) and ``reference`` (``autograd``). Under ``torch.func`` transforms ``auto`` is
``autograd``.
"""
from __future__ import annotations

import warnings

import torch
from torch import Tensor

from ..cells.spec import Recurrence

ENGINES = ("auto", "compiled", "cuda-graph", "python", "autograd", "torch")
_ALIASES = {"fused": "'compiled' on the CPU, 'cuda-graph' on a GPU", "reference": "'autograd'"}
ENGINE_CHOICES = ENGINES + tuple(_ALIASES)      # what layers and the CLI accept
_warned: set[str] = set()


def check_engine(engine: str) -> str:
    """``engine`` if it is a known name (an old name warns once, saying its new name); ``ValueError`` if not."""
    if engine not in ENGINE_CHOICES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine in _ALIASES and engine not in _warned:
        _warned.add(engine)
        warnings.warn(f"rnnkit: engine={engine!r} is an old name; use {_ALIASES[engine]}",
                      FutureWarning, stacklevel=3)
    return engine


def _device_fast_path(x: Tensor, cell: Recurrence) -> tuple[str, str | None]:
    """The device's own fast loop (``compiled`` on the CPU, ``cuda-graph`` on a GPU) and why it can't serve."""
    from . import fused, graphed
    if x.is_cuda:
        return "cuda-graph", graphed.unavailable_reason(x)
    return "compiled", fused.unavailable_reason(cell, x)


def _require(name: str, reason: str | None) -> str:
    if reason is not None:
        raise RuntimeError(f"engine={name!r} cannot run here: {reason}. Use engine='auto' or 'python'.")
    return name


def _fallback(reason: str) -> str:
    from . import fused
    if reason not in _warned and fused.warn_on_fallback(reason):
        _warned.add(reason)
        warnings.warn(f"rnnkit: the compiled engine is unavailable ({reason.rstrip('.')}); using the Python BPTT loop",
                      RuntimeWarning, stacklevel=5)
    return "python"


def _under_functorch(engine: str) -> str:
    """``torch.func`` transforms (``grad``, ``vmap``, ``jacrev``, ...) wrap tensors the hand-written BPTT can't
    read: ``auto`` runs the plain autograd loop there, which every transform handles; an explicit choice says so."""
    if engine in ("auto", "autograd", "reference"):
        return "autograd"
    raise RuntimeError(f"engine={engine!r} can't run under torch.func transforms (grad, vmap, ...): its "
                       f"hand-written BPTT reads raw tensors; use engine='auto' or 'autograd' there")


# What each backend runs of the layers' regularisers (rnnkit.layers.regularisers): every rnnkit loop has them all
# (the cuda-graph engine replays the Python loops); torch.nn's kernel takes the parameters it is given, so it runs
# weight drop (the dropped weight_hh), but no mask inside its loop or between its layers. With a projection the
# hand-written loops keep only weight_drop and variational_dropout, which change only the tensors passed in
# (missing).
REGULARISERS = frozenset({"weight_drop", "variational_dropout", "recurrent_dropout", "zoneout", "layer_norm"})
_INPUT_ONLY = frozenset({"weight_drop", "variational_dropout"})
_HAND_WRITTEN = ("python", "compiled", "cuda-graph")        # their loops have no masks with a projection
SUPPORTS: dict[str, frozenset[str]] = {**dict.fromkeys(("autograd", *_HAND_WRITTEN), REGULARISERS),
                                       "torch": frozenset({"weight_drop"})}   # the dropped weight_hh passed in


def missing(backend: str, needs: frozenset[str], projected: bool = False) -> frozenset[str]:
    """The regularisers in ``needs`` that ``backend`` cannot run (the hand-written loops have no masks with a
    projection)."""
    have = SUPPORTS[backend]
    if projected and backend in _HAND_WRITTEN:
        have = _INPUT_ONLY
    return frozenset(needs) - have


def resolve_engine(engine: str, cell: Recurrence, x: Tensor, *, projected: bool = False,
                   needs: frozenset[str] = frozenset()) -> str:
    """The backend that runs ``cell`` over a whole sequence ``x``: one of :data:`ENGINES` but ``auto``.
    ``projected``: an LSTM with ``proj_size`` (a fifth weight, ``weight_hr``). ``needs``: the regularisers that
    are active (:data:`REGULARISERS`); ``auto`` goes to the fastest backend that has them all (on a GPU the
    CUDA-graph loop, then the Python loop, else the autograd loop), an explicit engine that lacks one raises,
    naming it."""
    chosen = _resolve_plain(engine, cell, x)
    lacking = missing(chosen, needs, projected)
    if not lacking:
        return chosen
    if engine == "auto":
        return _with_regularisers(cell, x, needs, projected)
    auto = resolve_engine("auto", cell, x, projected=projected, needs=needs)
    what = ", ".join(sorted(lacking))
    raise RuntimeError(f"engine={engine!r} cannot run here: the {chosen!r} engine has no {what} "
                       f"kernel{' with proj_size' if projected and chosen in _HAND_WRITTEN else ''}. "
                       f"Use engine='auto' (here it picks {auto!r}) or 'autograd'.")


def _with_regularisers(cell: Recurrence, x: Tensor, needs: frozenset[str], projected: bool) -> str:
    """``auto``'s backend where its first choice lacks one of ``needs``: on a GPU the CUDA-graph loop where it can
    serve (not while a call is traced), else the Python loop, else the autograd loop."""
    if x.is_cuda and _device_fast_path(x, cell)[1] is None and not missing("cuda-graph", needs, projected):
        return "cuda-graph"
    return "python" if not missing("python", needs, projected) else "autograd"


def check_torch_kernel(cell: Recurrence) -> None:
    """``ValueError`` where torch.nn's kernels (``engine="torch"``) don't compute ``cell``."""
    if cell.torch_class is None:
        raise ValueError(f"engine='torch' runs torch.nn's kernels, which don't compute {cell.description}; "
                         f"use another engine")


def _resolve_plain(engine: str, cell: Recurrence, x: Tensor) -> str:
    check_engine(engine)
    if torch._C._are_functorch_transforms_active():
        return _under_functorch(engine)
    if engine in ("python", "autograd", "reference"):
        return "autograd" if engine == "reference" else engine
    if engine == "torch":
        check_torch_kernel(cell)
        return "torch"
    if engine == "auto" and x.is_cuda and cell.torch_class is not None:
        return "torch"
    fast, reason = _device_fast_path(x, cell)
    if engine == "compiled" and x.is_cuda:
        raise RuntimeError("engine='compiled' is the CPU's C++ loop; on a GPU use 'cuda-graph', 'torch' or 'auto'")
    if engine == "cuda-graph" and not x.is_cuda:
        raise RuntimeError(f"engine='cuda-graph' replays CUDA graphs and needs a GPU tensor, not "
                           f"{x.device.type}; use 'compiled' or 'auto'")
    if engine in ("compiled", "cuda-graph", "fused"):
        return _require(fast, reason)
    return fast if reason is None else _fallback(reason)


def resolve_step_engine(engine: str, cell: Recurrence, x: Tensor, replayable: bool, *,
                        needs: frozenset[str] = frozenset()) -> str:
    """The backend for one step of a stack: ``compiled`` (the C++ stepper), ``cuda-graph`` (a captured step) or
    ``python`` (the cell equations, autograd-aware). ``replayable``: nothing needs gradients and no dropout runs.
    torch.nn has no one-step kernel, so ``torch`` steps in Python; so do ``python`` and ``autograd``.
    ``needs``: active regularisers; the steppers have none but the input-only ones, the cell equations all, so
    with one of the others every engine steps in the cell equations (an explicit ``compiled`` too: it names the
    time loop, which has them; QA: ``rnnkit sample`` of a run trained with ``--engine compiled --layer-norm``
    failed)."""
    check_engine(engine)
    if frozenset(needs) - _INPUT_ONLY:
        return "python"
    if not replayable or engine not in ("auto", "compiled", "cuda-graph", "fused") \
            or x.device.type not in ("cpu", "cuda") or torch.compiler.is_compiling() or torch.jit.is_tracing():
        return "python"                    # (compile, export and trace record the cell equations' operations)
    fast, reason = _device_fast_path(x, cell)
    if engine in ("compiled", "cuda-graph") and fast != engine:
        return "python"
    if reason is not None and engine != "auto":
        raise RuntimeError(f"engine={engine!r} is unavailable for step: {reason}")
    return fast if reason is None else "python"

"""``rnnkit.MinGRU`` and ``rnnkit.MinLSTM``: recurrent layers a parallel scan trains (Feng et al. 2024).

The lecture lists as the first drawback of RNNs that they are *harder to parallelize because of their sequential
nature*: ``h_t`` needs ``h_{t-1}`` inside a nonlinearity, so step t waits for step t-1. Take ``h_{t-1}`` out of
the gates and what is left is linear in ``h``::

    h_t = a_t * h_{t-1} + b_t          (a_t, b_t from x_t alone)

Every ``a_t, b_t`` comes from one matmul over all steps, and the recurrence itself is a scan
(:mod:`rnnkit.engine.scan`); only generation (:meth:`step`) runs step by step. The cells, in the lecture's
notation (row vectors, ``U = weight_ih.T`` in gate blocks, no recurrent ``W``), see :mod:`rnnkit.cells.minimal`::

    MinGRU                                       MinLSTM
    z_t  = σ(x_t U_z + b_z)                      f_t  = σ(x_t U_f + b_f),   i_t = σ(x_t U_i + b_i)
    h~_t = x_t U_h + b_h                         f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t)
    h_t  = (1 - z_t) * h_{t-1} + z_t * h~_t      h~_t = x_t U_h + b_h
                                                 h_t  = f'_t * h_{t-1} + i'_t * h~_t

``z`` is the lecture's update gate (``torch.nn.GRU`` calls ``1 - z`` its ``z``). The MinLSTM keeps no cell state
and no output gate: its state is ``h``, as the MinGRU's. ``log_space=True`` is the paper's log-space version:
``h~_t = g(x_t U_h + b_h)`` with the positive activation ``g(x) = x + 1/2`` (x >= 0), ``σ(x)`` (x < 0), so that
``b_t > 0`` and a positive state stays positive, and ``scan="log"`` can run the whole recurrence on logarithms as
Heinsen (2023) does: ``log h_t = a*_t + log(h_0 + Σ_{s<=t} exp(log b_s - a*_s))``, ``a*_t = Σ_{s<=t} log a_s``
(``log a = -softplus(k_z)``, ``log b = -softplus(-k_z) + log g(p)`` for the MinGRU). The other scans compute the
same numbers linearly (a sequential scan with ``0 < a < 1`` is stable as it is).

Parameters as ``torch.nn`` names them: ``weight_ih_l{k}`` (G*H, in) and ``bias_ih_l{k}`` (G*H,), suffix
``_reverse``; gate blocks ``z, h`` (G = 2) and ``f, i, h`` (G = 3). There is no ``weight_hh``: nothing multiplies
``h_{t-1}`` by a matrix. Initialisation as PyTorch's recurrent layers: uniform in ``±1/sqrt(H)``.

``scan=`` picks the implementation, the same numbers: ``"auto"`` (the compiled C++ pass on the CPU, else torch
operators; plain operators where the call is traced: compile, export, jit.trace, torch.func), ``"compiled"``,
``"torch"`` (a chunked scan in torch operators, also on a GPU), ``"log"`` (the log-space scan in torch operators;
needs ``log_space=True``) or ``"autograd"`` (step by step in plain operators: higher-order gradients).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from ..cells.base import autocast_enabled
from ..cells.minimal import GATES, minimal_step
from ..cells.spec import MIN_GRU, MIN_LSTM
from ..engine.scan import SCANS, resolve_scan, run_minimal
from .checks import (InputError, InputTypeError, check_dropout, check_input, check_lengths, check_positive_int,
                     check_state, graph_zero, warn_unused_dropout)


class MinimalLayer(nn.Module):
    """Shared body of :class:`MinGRU` and :class:`MinLSTM`: stacked, bidirectional, ``batch_first``, lengths."""

    kind: str = ""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 log_space: bool = False, scan: str = "auto", device=None, dtype=None, **unknown) -> None:
        super().__init__()
        if unknown:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument {sorted(unknown)[0]!r}")
        check_positive_int("input_size", input_size)
        check_positive_int("hidden_size", hidden_size)
        check_positive_int("num_layers", num_layers)
        check_dropout(dropout)
        warn_unused_dropout(dropout, num_layers)     # as torch.nn's (and rnnkit's) recurrent layers warn
        if scan not in SCANS:
            raise ValueError(f"scan must be one of {SCANS}, got {scan!r}")
        if scan == "log" and not log_space:
            raise ValueError("scan='log' needs log_space=True (h~ = g(x U_h + b_h) > 0: logarithms of b_t)")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.log_space, self.scan = bidirectional, bool(log_space), scan
        gh = GATES[self.kind] * hidden_size
        kw = {"device": device, "dtype": dtype}
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else hidden_size * self.num_directions
            for suffix in self._suffixes():
                setattr(self, f"weight_ih_l{layer}{suffix}", nn.Parameter(torch.empty(gh, layer_in, **kw)))
                if bias:
                    setattr(self, f"bias_ih_l{layer}{suffix}", nn.Parameter(torch.empty(gh, **kw)))
        self.reset_parameters()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def gates(self) -> int:
        return GATES[self.kind]

    def _suffixes(self) -> tuple[str, ...]:
        return ("", "_reverse")[: self.num_directions]

    def reset_parameters(self) -> None:
        """PyTorch's default for recurrent layers: every parameter uniform in ``(-1/sqrt(H), 1/sqrt(H))``."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def layer_weights(self, layer: int, direction: int) -> tuple[Tensor, Tensor | None]:
        """``(weight_ih, bias_ih or None)`` of one layer and direction (0 forward, 1 reverse)."""
        s = f"l{layer}{self._suffixes()[direction]}"
        return getattr(self, f"weight_ih_{s}"), (getattr(self, f"bias_ih_{s}") if self.bias else None)

    def resolved_scan(self, x: Tensor) -> str:
        """The scan implementation that runs on ``x`` (``auto`` resolved)."""
        return resolve_scan(self.scan, x)

    # ------------------------------------------------------------------ forward

    def forward(self, input: Tensor, hx: Tensor | None = None,
                lengths: Tensor | Sequence[int] | None = None) -> tuple[Tensor, Tensor]:
        """Run the stack. ``input`` (T, N, I), (N, T, I) with ``batch_first``, or (T, I) unbatched; ``hx``
        (layers*D, N, H) or None (zeros); ``lengths`` (N,) the valid steps of each padded sequence.

        Returns ``(output, h_n)`` as ``torch.nn.GRU`` does: ``output`` (T, N, D*H), zero past each sequence's end;
        ``h_n`` (layers*D, N, H), each sequence's state at its last valid step (for the reverse direction, the
        state after reading the sequence back to its first step).
        """
        name = type(self).__name__
        if isinstance(input, Tensor) and autocast_enabled(input.device.type):
            with torch.autocast(input.device.type, enabled=False):     # the scan runs in the parameters' dtype
                dtype = self.weight_ih_l0.dtype
                return self.forward(input.to(dtype), hx if hx is None else hx.to(dtype), lengths)
        if isinstance(input, PackedSequence):
            raise InputTypeError(f"{name} takes a padded tensor and lengths=, not a PackedSequence "
                                 f"(torch.nn.utils.rnn.pad_packed_sequence gives both)")
        if not isinstance(input, Tensor):
            raise InputTypeError(f"{name} expects a Tensor input, got {type(input).__name__}")
        x, unbatched = input, False
        if isinstance(x, Tensor) and x.dim() == 2:
            x, unbatched = x.unsqueeze(1), True
        elif self.batch_first and isinstance(x, Tensor) and x.dim() == 3:
            x = x.transpose(0, 1)
        like = self.weight_ih_l0
        check_input(name, x, self.input_size, like, tuple(input.shape) if isinstance(input, Tensor) else None)
        T, N = x.shape[0], x.shape[1]
        if lengths is not None:
            lengths = check_lengths(name, lengths, N, T, x.device)
            if N > 0 and not torch.compiler.is_compiling() and int(lengths.min()) == T:
                lengths = None                                   # nothing is padded
        h0 = self._initial_state(hx, x, unbatched)
        if N == 0:                                               # an empty batch: empty outputs, as torch.nn
            return self._empty(x, h0, unbatched)
        h_n = []
        layer_input = x.contiguous()
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                weight, bias = self.layer_weights(layer, direction)
                out, h = run_minimal(self.kind, layer_input, h0[layer * self.num_directions + direction], weight,
                                     bias, lengths=lengths, reverse=direction == 1, scan=self.scan,
                                     positive=self.log_space)
                outputs.append(out)
                h_n.append(h)
            layer_input = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        output, state = layer_input, torch.stack(h_n)
        if unbatched:
            return output.squeeze(1), state.squeeze(1)
        return (output.transpose(0, 1) if self.batch_first else output), state

    def _empty(self, x: Tensor, h0: Tensor, unbatched: bool) -> tuple[Tensor, Tensor]:
        """The outputs of a batch of no sequences: (T, 0, D*H) and ``h0`` (layers*D, 0, H)."""
        zero = graph_zero(x, self)                   # (in autograd's graph, as torch.nn's outputs are)
        output, h0 = x.new_zeros(x.shape[0], 0, self.num_directions * self.hidden_size) + zero, h0 + zero
        if unbatched:
            return output.squeeze(1), h0.squeeze(1)
        return (output.transpose(0, 1) if self.batch_first else output), h0

    def _initial_state(self, hx: Tensor | None, x: Tensor, unbatched: bool) -> Tensor:
        """``h0`` (layers*D, N, H); zeros when ``hx`` is None."""
        name = type(self).__name__
        shape = (self.num_layers * self.num_directions, x.shape[1], self.hidden_size)
        if hx is None:
            return x.new_zeros(shape)
        if isinstance(hx, (tuple, list)):
            raise ValueError(f"{name}: hx must be one Tensor h_0 (the state is h alone), got a sequence of "
                             f"{len(hx)}")
        if unbatched and isinstance(hx, Tensor):
            if hx.dim() != 2:
                raise ValueError(f"{name}: for unbatched 2-D input, h_0 must be 2-D ({shape[0]}, "
                                 f"{self.hidden_size}), got shape {tuple(hx.shape)}")
            hx = hx.unsqueeze(1)
        check_state(name, hx, shape, x, "h_0")
        return hx

    # ------------------------------------------------------------------ one step at a time

    def step(self, x: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Every layer one step ahead: ``x`` (N, I) -> the last layer's output (N, H) and the new state
        (layers, N, H); the same numbers as :meth:`forward` on a one-step sequence (dropout between layers in
        training, as there)."""
        name = type(self).__name__
        if self.bidirectional:
            raise ValueError(f"{name}.step: a bidirectional layer can't run one step at a time (its reverse "
                             f"direction reads the sequence from the end)")
        if not isinstance(x, Tensor):
            raise InputTypeError(f"{name}.step expects a Tensor x (N, {self.input_size}), got {type(x).__name__}")
        if x.dim() != 2 or x.shape[1] != self.input_size:
            raise InputError(f"{name}.step: x must be (N, {self.input_size}), got shape {tuple(x.shape)}")
        if autocast_enabled(x.device.type):                # as forward: the parameters' dtype, autocast off
            with torch.autocast(x.device.type, enabled=False):
                dtype = self.weight_ih_l0.dtype
                return self.step(x.to(dtype), hx if hx is None else hx.to(dtype))
        check_input(f"{name}.step", x.unsqueeze(0), self.input_size, self.weight_ih_l0, tuple(x.shape))
        h0 = self._initial_state(hx, x.unsqueeze(0), unbatched=False)
        states, inp = [], x
        for layer in range(self.num_layers):
            weight, bias = self.layer_weights(layer, 0)
            h = minimal_step(self.kind, inp, h0[layer], weight, bias, self.log_space)
            states.append(h)
            inp = h
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                inp = F.dropout(inp, self.dropout, training=True)
        return states[-1], torch.stack(states)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        for flag, default in (("bias", True), ("batch_first", False), ("dropout", 0.0), ("bidirectional", False),
                              ("log_space", False), ("scan", "auto")):
            if getattr(self, flag) != default:
                s += f", {flag}={getattr(self, flag)!r}"
        return s


class MinGRU(MinimalLayer):
    """minGRU layer (Feng et al. 2024): ``z_t = σ(x_t U_z + b_z)``, ``h~_t = x_t U_h + b_h`` (``g(·)`` with
    ``log_space=True``), ``h_t = (1 - z_t) * h_{t-1} + z_t * h~_t``; trained with a scan over all steps.
    ``weight_ih_l{k}`` is (2H, in): blocks ``z, h``. See the module docstring."""

    kind = "mingru"
    cell = MIN_GRU


class MinLSTM(MinimalLayer):
    """minLSTM layer (Feng et al. 2024): ``f_t = σ(x_t U_f + b_f)``, ``i_t = σ(x_t U_i + b_i)``,
    ``f'_t = f_t / (f_t + i_t)``, ``i'_t = i_t / (f_t + i_t)``, ``h~_t = x_t U_h + b_h`` (``g(·)`` with
    ``log_space=True``), ``h_t = f'_t * h_{t-1} + i'_t * h~_t``; no cell state, no output gate.
    ``weight_ih_l{k}`` is (3H, in): blocks ``f, i, h``. See the module docstring."""

    kind = "minlstm"
    cell = MIN_LSTM

"""``rnnkit.RNN``, ``rnnkit.LSTM``, ``rnnkit.GRU``: the constructor, parameters and results of ``torch.nn``'s.

A layer stacks engine runs: each layer and direction is one :func:`rnnkit.engine.run_direction` call, the
directions' outputs are concatenated, dropout sits between layers. Parameters carry ``torch.nn``'s names and
shapes (``weight_ih_l{k}`` (G*H, in), ``weight_hh_l{k}`` (G*H, H), ``bias_ih_l{k}``, ``bias_hh_l{k}``, suffix
``_reverse``), so ``state_dict`` moves between rnnkit and ``torch.nn`` unchanged.

Keyword-only regularisers (``variational_dropout``, ``weight_drop``, ``recurrent_dropout``, ``zoneout``,
``layer_norm``; all off by default) are described, with the order their masks are drawn in, in
:mod:`rnnkit.layers.regularisers`; the cells' docstrings give the modified equations.
"""
from __future__ import annotations

import math
import warnings
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from ..cells.base import autocast_enabled
from ..cells.lstm import set_forget_bias
from ..cells.spec import GRU as GRU_CELL, GRU_TORCH, LSTM as LSTM_CELL, RNN_RELU, RNN_TANH, Recurrence, recurrence
from ..engine import check_engine, check_torch_kernel, resolve_engine, run_direction
from .checks import (InputError, check_dropout, check_input, check_lengths, check_no_projection, check_positive_int,
                     check_state, graph_zero, warn_unused_dropout)
from .regularisers import NAMES as REGULARISER_NAMES, Draw, Options, add_layer_norm, is_layer_norm, reset_layer_norm
from .stepping import autocast_off, step_stack
from .torch_interop import TorchInterop

State = Tensor | tuple[Tensor, Tensor]


class RecurrentLayer(TorchInterop, nn.Module):
    """Shared body of the three layers; each subclass builds one of its ``recurrences`` (``self.cell``)."""

    recurrences: tuple[Recurrence, ...] = ()
    options: Options = Options()        # the regularisers (instances set theirs; layers pickled before them: none)

    def __init__(self, cell: Recurrence, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None, *, engine: str = "auto", **regularisers) -> None:
        super().__init__()
        unknown = sorted(set(regularisers) - set(REGULARISER_NAMES))
        if unknown:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument {unknown[0]!r}")
        self.options = Options.parse(cell.has_cell_state, **regularisers)   # see layers/regularisers.py
        check_positive_int("input_size", input_size)
        check_positive_int("hidden_size", hidden_size)
        check_positive_int("num_layers", num_layers)
        check_dropout(dropout)
        check_engine(engine)
        if not isinstance(proj_size, int) or isinstance(proj_size, bool) or not 0 <= proj_size < hidden_size:
            raise ValueError(f"proj_size must be an integer in [0, hidden_size={hidden_size}), got {proj_size!r}")
        warn_unused_dropout(dropout, num_layers)
        if self.options.variational_dropout > 0 and num_layers == 1:
            warnings.warn(f"variational_dropout masks the input of every layer after the first, so it expects "
                          f"num_layers greater than 1, but got variational_dropout="
                          f"{self.options.variational_dropout} and num_layers=1: it does nothing here",
                          UserWarning, stacklevel=3)
        if self.options.variational_dropout > 0 and dropout > 0:
            warnings.warn(f"variational_dropout replaces dropout between layers: dropout={dropout} is not used",
                          UserWarning, stacklevel=3)
        if engine == "torch":
            check_torch_kernel(cell)
        self.cell = cell
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        self.engine = engine
        self.checkpoint_every: int | None = None   # k: keep states every k steps, recompute in the backward
        gh = cell.gates * hidden_size
        out = self.output_size
        kw = {"device": device, "dtype": dtype}
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else out * self.num_directions
            for suffix in self._suffixes():
                setattr(self, f"weight_ih_l{layer}{suffix}", nn.Parameter(torch.empty(gh, layer_in, **kw)))
                setattr(self, f"weight_hh_l{layer}{suffix}", nn.Parameter(torch.empty(gh, out, **kw)))
                if bias:
                    setattr(self, f"bias_ih_l{layer}{suffix}", nn.Parameter(torch.empty(gh, **kw)))
                    setattr(self, f"bias_hh_l{layer}{suffix}", nn.Parameter(torch.empty(gh, **kw)))
                if proj_size:
                    setattr(self, f"weight_hr_l{layer}{suffix}", nn.Parameter(torch.empty(proj_size, hidden_size,
                                                                                          **kw)))
        if self.options.layer_norm:
            add_layer_norm(self, device, dtype)                     # after torch.nn's weights: their order holds
        self.reset_parameters()

    @property
    def output_size(self) -> int:
        """The size of ``h``: ``proj_size`` when the LSTM projects its state, else ``hidden_size``."""
        return self.proj_size or self.hidden_size

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _suffixes(self) -> tuple[str, ...]:
        return ("", "_reverse")[: self.num_directions]

    def reset_parameters(self) -> None:
        """PyTorch's default: every parameter uniform in ``(-1/sqrt(H), 1/sqrt(H))``; layer-norm gains 1, biases 0."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for name, p in self.named_parameters():
            if not is_layer_norm(name):
                nn.init.uniform_(p, -bound, bound)
        reset_layer_norm(self)

    def layer_weights(self, layer: int, direction: int) -> tuple[Tensor | None, ...]:
        """``(weight_ih, weight_hh, bias_ih, bias_hh)`` of one layer and direction (0 forward, 1 reverse), and
        ``weight_hr`` fifth when the LSTM projects its state (``proj_size``)."""
        s = f"l{layer}{self._suffixes()[direction]}"
        def get(name):
            return getattr(self, f"{name}_{s}") if self.bias or name.startswith("weight") else None
        weights = (get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"))
        return weights + (get("weight_hr"),) if self.proj_size else weights

    # ------------------------------------------------------------------ forward

    def forward(self, input: Tensor | PackedSequence, hx: State | None = None,
                lengths: Tensor | Sequence[int] | None = None):
        """Run the stack. ``input`` (T, N, I), or (N, T, I) with ``batch_first``, or (T, I) unbatched, or a
        ``PackedSequence``; ``hx`` as ``torch.nn``; ``lengths`` (N,) the valid steps of each sequence.

        Returns ``(output, h_n)`` — ``(output, (h_n, c_n))`` for the LSTM — as ``torch.nn`` does: ``output``
        (T, N, D*H) (zero past each sequence's end) or a ``PackedSequence``, states (layers*D, N, H).
        """
        name = type(self).__name__
        packed = isinstance(input, PackedSequence)
        unbatched = False
        if packed:
            if lengths is not None:
                raise InputError(f"{name}: pass lengths or a PackedSequence, not both")
            sorted_idx, unsorted_idx = input.sorted_indices, input.unsorted_indices
            x, lengths = pad_packed_sequence(input)
        else:
            x = input
            if isinstance(x, Tensor) and x.dim() == 2:
                unbatched = True
                x = x.unsqueeze(1)
            elif self.batch_first and isinstance(x, Tensor) and x.dim() == 3:
                x = x.transpose(0, 1)
        like = self.weight_ih_l0
        x, hx = self.under_autocast(x, hx)
        check_input(name, x, self.input_size, like, tuple(input.shape) if isinstance(input, Tensor) else None)
        T, N = x.shape[0], x.shape[1]
        if lengths is not None:
            lengths = check_lengths(name, lengths, N, T, x.device)
        h0, c0 = self._initial_state(hx, x, unbatched)
        backend = resolve_engine(self.engine, self.cell, x, projected=bool(self.proj_size),
                                 needs=self.options.active(self.training))
        if N == 0:                                   # an empty batch: empty outputs, the states as given (torch.nn)
            zero = graph_zero(x, self)
            output = x.new_zeros(T, 0, self.num_directions * self.output_size) + zero
            state = self.cell.pack(h0 + zero, None if c0 is None else c0 + zero)
        elif backend == "torch":
            if self.checkpoint_every is not None:
                raise ValueError(f"{name}: checkpoint_every needs rnnkit's compiled engine; torch.nn's kernels "
                                 f"run this input (engine={self.engine!r} on {x.device.type})")
            output, state = self._run_torch(x, h0, c0, lengths)
        else:
            with autocast_off(x.device.type):                       # rnnkit's loops run in the parameters' dtype
                output, state = self._run_engine(x, h0, c0, lengths, backend)

        if packed:
            data = pack_padded_sequence(output.index_select(1, sorted_idx) if sorted_idx is not None else output,
                                        lengths.cpu()[sorted_idx] if sorted_idx is not None else lengths.cpu())
            return PackedSequence(data.data, data.batch_sizes, sorted_idx, unsorted_idx), state
        if unbatched:
            output = output.squeeze(1)
            state = tuple(s.squeeze(1) for s in state) if isinstance(state, tuple) else state.squeeze(1)
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, state

    def _run_engine(self, x: Tensor, h0: Tensor, c0: Tensor | None, lengths: Tensor | None, backend: str):
        """Each layer and direction through rnnkit's engine (``backend``, resolved); outputs concatenated,
        dropout between layers."""
        h_n, c_n = [], []
        layer_input = x
        draw = None if self.options == Options() else Draw(self, x, x.shape[0])   # masks: regularisers.py's order
        for layer in range(self.num_layers):
            outputs = []
            if draw is not None:
                dropped = draw.layer_input(layer, layer_input)       # variational dropout, shared over time
                layer_input = layer_input if dropped is None else dropped
            for direction in range(self.num_directions):
                k = layer * self.num_directions + direction
                weights, reg = draw.direction(layer, direction, x.shape[1]) if draw is not None \
                    else (self.layer_weights(layer, direction), None)
                out, h, c = run_direction(self.cell, layer_input, h0[k], None if c0 is None else c0[k],
                                          weights, lengths=lengths,
                                          reverse=direction == 1, engine=backend,
                                          checkpoint_every=self.checkpoint_every, reg=reg)
                outputs.append(out)
                h_n.append(h)
                c_n.append(c)
            layer_input = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1 \
                    and not self.options.variational_dropout:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        return layer_input, self.cell.pack(torch.stack(h_n), torch.stack(c_n) if c0 is not None else None)

    def step(self, x: Tensor, hx: State | None = None) -> tuple[Tensor, State]:
        """Every layer one time step ahead: ``x`` (N, I) → the last layer's output (N, H) and the new state,
        as ``forward`` on a one-step sequence; one compiled call where it can (:mod:`rnnkit.layers.stepping`)."""
        return step_stack(self, x, hx)

    def under_autocast(self, x, hx: State | None):
        """Under autocast, ``x`` and ``hx`` in the parameters' dtype: rnnkit's engines run the recurrence there
        with autocast off (torch.nn's kernels, ``engine="torch"``, follow autocast's own rules); autocast casts
        around the layer. (A captioner's bf16 initial state from a Linear meets float32 word vectors.)"""
        if not isinstance(x, Tensor) or not autocast_enabled(x.device.type):
            return x, hx
        dtype = self.weight_ih_l0.dtype
        if isinstance(hx, (tuple, list)):
            hx = tuple(h.to(dtype) if isinstance(h, Tensor) else h for h in hx)
        elif isinstance(hx, Tensor):
            hx = hx.to(dtype)
        return x.to(dtype), hx

    def _initial_state(self, hx: State | None, x: Tensor, unbatched: bool) -> tuple[Tensor, Tensor | None]:
        """``(h0, c0)``, (layers*D, N, output_size) and (layers*D, N, hidden_size); zeros when ``hx`` is None (the
        lecture's ``h_0 = 0``)."""
        name = type(self).__name__
        shapes = [(self.num_layers * self.num_directions, x.shape[1], size)
                  for size in (self.output_size, self.hidden_size)]
        paired = self.cell.has_cell_state
        if hx is None:
            return x.new_zeros(shapes[0]), (x.new_zeros(shapes[1]) if paired else None)
        if paired:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                got = f"a sequence of {len(hx)}" if isinstance(hx, (tuple, list)) else type(hx).__name__
                raise InputError(f"{name}: hx must be a tuple (h_0, c_0), got {got}")
            states = list(hx)
        else:
            if isinstance(hx, (tuple, list)):
                raise InputError(f"{name}: hx must be one Tensor h_0, got a sequence of {len(hx)}")
            states = [hx]
        if unbatched:
            for what, s, shape in zip(("h_0", "c_0"), states, shapes):
                if isinstance(s, Tensor) and s.dim() != 2:
                    raise InputError(f"{name}: for unbatched 2-D input, {what} must be 2-D "
                                     f"({shape[0]}, {shape[2]}), got shape {tuple(s.shape)}")
            states = [s.unsqueeze(1) if isinstance(s, Tensor) else s for s in states]
        for what, s, shape in zip(("h_0", "c_0"), states, shapes):
            check_state(name, s, shape, x, what)
        return states[0], (states[1] if paired else None)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        for flag, default in (("bias", True), ("batch_first", False), ("dropout", 0.0), ("bidirectional", False),
                              ("proj_size", 0)):
            if getattr(self, flag) != default:
                s += f", {flag}={getattr(self, flag)}"
        options = self.options.describe()
        return s + (f", {options}" if options else "") + f", engine={self.engine!r}"

    def to_torch(self) -> nn.Module:
        if self.options.layer_norm or self.options.zoneout_h or self.options.zoneout_c:
            raise ValueError("torch.nn's layers have no layer norm or zoneout, which change this layer's numbers "
                             "in evaluation too; to_torch() would compute something else")
        dropped = sorted(self.options.active(True) - self.options.active(False))
        if dropped:
            warnings.warn(f"to_torch(): torch.nn's layers have no {', '.join(dropped)}; the copy computes this "
                          f"layer's evaluation exactly, but trains without them", UserWarning, stacklevel=2)
        return super().to_torch()


class RNN(RecurrentLayer):
    """Elman RNN layer, ``torch.nn.RNN``'s interface (``nonlinearity='tanh'|'relu'``); see :class:`rnnkit.RNNCell`."""

    recurrences = (RNN_TANH, RNN_RELU)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, *, engine: str = "auto", **regularisers) -> None:
        cell = next((r for r in self.recurrences if r.layer_kwargs["nonlinearity"] == nonlinearity), None)
        if cell is None:
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        check_no_projection(regularisers)
        self.nonlinearity = nonlinearity
        super().__init__(cell, input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype, engine=engine, **regularisers)

    @classmethod
    def _kwargs_from_torch(cls, module: nn.Module) -> dict:
        return {**super()._kwargs_from_torch(module), "nonlinearity": module.nonlinearity}

    def extra_repr(self) -> str:
        return super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"


class LSTM(RecurrentLayer):
    """LSTM layer, ``torch.nn.LSTM``'s interface; see :class:`rnnkit.LSTMCell` for the equations.

    ``forget_bias`` (e.g. 1.0) sets the forget gate's bias at initialisation (``bias_ih``'s forget block, with
    ``bias_hh``'s zeroed), as Jozefowicz et al. 2015 recommend; the default keeps PyTorch's initialisation.
    """

    recurrences = (LSTM_CELL,)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device=None, dtype=None, *, engine: str = "auto", forget_bias: float | None = None,
                 **regularisers) -> None:
        self.forget_bias = forget_bias
        super().__init__(LSTM_CELL, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, device, dtype, engine=engine, **regularisers)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.forget_bias is not None:
            self.set_forget_bias(self.forget_bias)

    def set_forget_bias(self, value: float) -> None:
        """Give every forget gate the total bias ``value`` (no-op without biases)."""
        if not self.bias:
            return
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                _, _, b_ih, b_hh = self.layer_weights(layer, direction)[:4]
                set_forget_bias(b_ih, b_hh, value, self.cell.gates, self.cell.forget_gate)


class GRU(RecurrentLayer):
    """GRU layer, ``torch.nn.GRU``'s interface plus ``reset_after``; see :class:`rnnkit.GRUCell`.

    ``reset_after=False`` (default) is the lecture's GRU (Cho et al. 2014, reset before the recurrent matmul);
    ``reset_after=True`` is PyTorch/cuDNN's and the only form that converts to ``torch.nn.GRU``.
    """

    recurrences = (GRU_CELL, GRU_TORCH)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None, *, reset_after: bool = False, engine: str = "auto", **regularisers) -> None:
        check_no_projection(regularisers)
        self.reset_after = bool(reset_after)
        super().__init__(GRU_TORCH if reset_after else GRU_CELL, input_size, hidden_size, num_layers, bias,
                         batch_first, dropout, bidirectional, 0, device, dtype, engine=engine, **regularisers)

    def to_torch(self) -> nn.Module:
        if not self.reset_after:
            raise ValueError("torch.nn.GRU computes the reset-after GRU; this layer is the lecture's "
                             "(reset_after=False), whose weights mean something else. Use reset_after=True.")
        return super().to_torch()

    @classmethod
    def _kwargs_from_torch(cls, module: nn.Module) -> dict:
        return {**super()._kwargs_from_torch(module), "reset_after": True}

    def extra_repr(self) -> str:
        return super().extra_repr() + f", reset_after={self.reset_after}"


def make_layer(cell: Recurrence | str, input_size: int, hidden_size: int, **kwargs) -> nn.Module:
    """The rnnkit layer of ``cell`` (a :class:`~rnnkit.cells.spec.Recurrence` or its name), built with its
    ``layer_kwargs`` and ``kwargs`` (``num_layers``, ``dropout``, ``engine``, ...). ``forget_bias`` applies only
    to cells that have a forget gate and is dropped for the others. The minimal cells (``mingru``, ``minlstm``)
    build :class:`~rnnkit.layers.minimal.MinGRU`/``MinLSTM``, which run a parallel scan: ``engine`` (for the time
    loops) must then be ``auto``, and the regularisers of the sequential layers don't apply."""
    cell = recurrence(cell)
    if cell.forget_gate is None:
        kwargs.pop("forget_bias", None)
    if cell.scanned:
        from .minimal import MinGRU, MinLSTM
        engine = kwargs.pop("engine", "auto")
        if engine != "auto":
            raise ValueError(f"engine={engine!r} chooses among the time loops of the sequential cells; "
                             f"{cell.name} runs a parallel scan (use engine='auto')")
        extra = sorted(k for k, v in kwargs.items() if k not in _SCANNED_KWARGS and v not in (None, 0, 0.0, False))
        if extra:
            raise ValueError(f"{cell.name} does not take {', '.join(extra)}")
        layer_class = next(c for c in (MinGRU, MinLSTM) if c.kind == cell.kernel)
        return layer_class(input_size, hidden_size, **{k: v for k, v in kwargs.items() if k in _SCANNED_KWARGS})
    layer_class = next(c for c in (RNN, LSTM, GRU) if cell in c.recurrences)
    return layer_class(input_size, hidden_size, **cell.layer_kwargs, **kwargs)


_SCANNED_KWARGS = ("num_layers", "bias", "batch_first", "dropout", "bidirectional", "device", "dtype")

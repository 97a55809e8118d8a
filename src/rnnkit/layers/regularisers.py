"""The layers' regularisers and layer norm: options, parameters, and the masks in one documented order.

Options (keyword-only on ``rnnkit.RNN``, ``LSTM``, ``GRU``; all off by default, and ``p = 0`` is exactly the
plain layer, nothing drawn)::

    variational_dropout=p   one mask per sequence and input unit, shared over time, on the input of every layer
                            after the first (Gal & Ghahramani 2016; AWD-LSTM's locked dropout); replaces the
                            layer's ``dropout`` (a fresh mask every step) there when set
    weight_drop=p           DropConnect on weight_hh of each layer and direction, one mask per forward call; the
                            dropped weight is what the engine receives, so the gradient reaches the raw weight
                            and state_dict keeps torch.nn's names (Wan et al. 2013; Merity et al. 2017); on the
                            CPU it is made straight from the mask's key (:mod:`rnnkit.engine.weight_drop`)
    recurrent_dropout=p     one mask per sequence and hidden unit, shared over all steps, on h_{t-1} before the
                            recurrent matmul, scaled 1/(1-p) (Gal & Ghahramani 2016)
    zoneout=p or (p_h, p_c) training: each unit keeps its previous value with probability p at each step
                            (the LSTM's h and C separately); evaluation: p * prev + (1 - p) * new (Krueger 2016)
    layer_norm=True         LN of x_t U and of h_{t-1} W, each per gate block with its own gain and bias, before
                            the sum; and of C^_t before the tanh for the LSTM (Ba et al. 2016; haste). Parameters
                            ``ln_ih_weight_l{k}``, ``ln_ih_bias_l{k}``, ``ln_hh_weight_l{k}``, ``ln_hh_bias_l{k}``
                            (G*H,) and, for the LSTM, ``ln_c_weight_l{k}``, ``ln_c_bias_l{k}`` (H,), suffix
                            ``_reverse``; gains start at 1, biases at 0

The order the masks are drawn in (training mode only; each mask is keyed by one draw of torch's default generator
of the input's device and its bits come from a counter-based hash, :mod:`rnnkit.engine.masks`; each dropout mask
is ``Bernoulli(1 - p) / (1 - p)``, each zoneout mask ``Bernoulli(p)``, 1 = keep the previous value), so that with
the same seed every engine sees the same masks::

    for each layer k = 0 .. L-1:
        if k > 0 and variational_dropout:  the input mask (N, D*P)          D directions, P = the state's size
        for each direction (forward, then reverse):
            if weight_drop:        the mask of weight_hh (G*H, P)
            if recurrent_dropout:  the mask of h_{t-1} (N, P)
            if zoneout:            the mask of h (T, N, P), then for the LSTM the mask of C (T, N, H);
                                   step t is the direction's own t-th step (the reverse direction's first
                                   step reads the last input)

``layer.step`` in training draws the same kinds per call, for that one step, in the same order (the input mask
of layer k, then weight_hh's, h's and, per step, the zoneout masks). ``eval()`` turns every stochastic part off:
no dropout of any kind, zoneout's expectation, layer norm as in training.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..cells.extras import Regularisation
from ..engine import masks
from ..engine.weight_drop import drop_weight

NAMES = ("variational_dropout", "weight_drop", "recurrent_dropout", "zoneout", "layer_norm")


def _probability(name: str, value) -> float:
    if not (isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 <= value < 1):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Options:
    """A layer's regularisers, checked."""

    variational_dropout: float = 0.0
    weight_drop: float = 0.0
    recurrent_dropout: float = 0.0
    zoneout_h: float = 0.0
    zoneout_c: float = 0.0
    layer_norm: bool = False

    @classmethod
    def parse(cls, has_cell_state: bool, variational_dropout=0.0, weight_drop=0.0, recurrent_dropout=0.0,
              zoneout=0.0, layer_norm=False) -> "Options":
        if isinstance(zoneout, (tuple, list)):
            if not has_cell_state or len(zoneout) != 2:
                pair = ", or a pair (p_h, p_c)" if has_cell_state else " (a pair (p_h, p_c) is for the LSTM's h and C)"
                raise ValueError(f"zoneout must be a number in [0, 1){pair}, got {zoneout!r}")
            zh, zc = (_probability("zoneout", z) for z in zoneout)       # (1 would keep h_0 for ever)
        else:
            zh = _probability("zoneout", zoneout)
            zc = zh if has_cell_state else 0.0
        if not isinstance(layer_norm, bool):
            raise ValueError(f"layer_norm must be True or False, got {layer_norm!r}")
        return cls(_probability("variational_dropout", variational_dropout), _probability("weight_drop", weight_drop),
                   _probability("recurrent_dropout", recurrent_dropout), zh, zc, layer_norm)

    def active(self, training: bool) -> frozenset[str]:
        """The regularisers that change this forward's numbers (what an engine must run)."""
        on = {"zoneout": self.zoneout_h > 0 or self.zoneout_c > 0, "layer_norm": self.layer_norm}
        if training:
            on.update(variational_dropout=self.variational_dropout > 0, weight_drop=self.weight_drop > 0,
                      recurrent_dropout=self.recurrent_dropout > 0)
        return frozenset(k for k, v in on.items() if v)

    def describe(self) -> str:
        parts = [f"{k}={getattr(self, k)}" for k in ("variational_dropout", "weight_drop", "recurrent_dropout")
                 if getattr(self, k)]
        if self.zoneout_h or self.zoneout_c:
            same = self.zoneout_h == self.zoneout_c
            parts.append(f"zoneout={self.zoneout_h if same else (self.zoneout_h, self.zoneout_c)}")
        if self.layer_norm:
            parts.append("layer_norm=True")
        return ", ".join(parts)


LN_NAMES = ("ln_ih_weight", "ln_ih_bias", "ln_hh_weight", "ln_hh_bias", "ln_c_weight", "ln_c_bias")


def add_layer_norm(layer: nn.Module, device=None, dtype=None) -> None:
    """Register the layer norm's gains and biases (after every torch.nn weight, so their order is untouched)."""
    gh = layer.cell.gates * layer.hidden_size
    names = LN_NAMES if layer.cell.has_cell_state else LN_NAMES[:4]
    for k in range(layer.num_layers):
        for suffix in layer._suffixes():
            for name in names:
                size = layer.hidden_size if name.startswith("ln_c") else gh
                setattr(layer, f"{name}_l{k}{suffix}", nn.Parameter(torch.empty(size, device=device, dtype=dtype)))
    reset_layer_norm(layer)


def is_layer_norm(name: str) -> bool:
    return name.startswith("ln_")


@torch.no_grad()
def reset_layer_norm(layer: nn.Module) -> None:
    for name, p in layer.named_parameters(recurse=False):
        if is_layer_norm(name):
            p.fill_(1.0 if "_weight" in name else 0.0)


def layer_norm_params(layer: nn.Module, k: int, direction: int) -> tuple[Tensor, ...] | None:
    if not layer.options.layer_norm:
        return None
    s = f"l{k}{layer._suffixes()[direction]}"
    names = LN_NAMES if layer.cell.has_cell_state else LN_NAMES[:4]
    return tuple(getattr(layer, f"{n}_{s}") for n in names) + ((None, None) if not layer.cell.has_cell_state else ())


def bernoulli(shape, p: float, like: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """1 with probability ``p`` (resolved to 2^-32), else 0, on ``like``'s device, in ``dtype`` (default ``like``'s;
    zoneout's masks are bool: a byte per unit kept for the backward). One draw of torch's default generator keys
    the mask, a counter-based hash gives its bits (:mod:`rnnkit.engine.masks`)."""
    return masks.bernoulli(shape, p, like.device, dtype or like.dtype)


dropout_mask = masks.dropout                                         # 0 with probability p, else 1/(1-p)


class Draw:
    """The masks of one forward call, drawn in the documented order as the layer asks for them."""

    def __init__(self, layer: nn.Module, like: Tensor, steps: int) -> None:
        self.layer, self.o, self.like, self.steps = layer, layer.options, like, steps
        self.training = layer.training

    def layer_input(self, k: int, x: Tensor) -> Tensor | None:
        """The input of layer ``k`` with its variational-dropout mask, or ``None`` when that isn't set here."""
        if k == 0 or not self.training or self.o.variational_dropout <= 0:
            return None
        return x * dropout_mask((x.shape[1], x.shape[2]), self.o.variational_dropout, x)

    def direction(self, k: int, direction: int, batch: int) -> tuple[tuple, Regularisation | None]:
        """The weights this direction runs with (weight_hh dropped) and its :class:`Regularisation`."""
        layer, o = self.layer, self.o
        weights = list(layer.layer_weights(k, direction))
        P, H = layer.output_size, layer.hidden_size
        if self.training and o.weight_drop > 0:
            weights[1] = drop_weight(weights[1], o.weight_drop)
        h_mask = zh = zc = None
        if self.training and o.recurrent_dropout > 0:
            h_mask = dropout_mask((batch, P), o.recurrent_dropout, self.like)
        T = self.steps
        if o.zoneout_h > 0:
            zh = bernoulli((T, batch, P), o.zoneout_h, self.like, torch.bool) if self.training else \
                self.like.new_full((T, batch, P), o.zoneout_h)
        if o.zoneout_c > 0:
            zc = bernoulli((T, batch, H), o.zoneout_c, self.like, torch.bool) if self.training else \
                self.like.new_full((T, batch, H), o.zoneout_c)
        reg = Regularisation(h_mask, zh, zc, layer_norm_params(layer, k, direction))
        return tuple(weights), (None if reg.empty else reg)

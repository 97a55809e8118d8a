"""Gradient flow through time: how much the last output depends on each earlier step.

For inputs ``x_0 .. x_{T-1}`` and states ``h_0 .. h_{T-1}`` (``h_t`` after reading ``x_t``), the last step's
output ``y_T = readout(h_{T-1})`` and a scalar loss ``L_T = loss(y_T)``:

* ``‖∂L_T/∂h_t‖`` — the gradient backpropagation through time carries back to step ``t``
  (the total derivative: every path from ``h_t`` through the recurrence to ``L_T``), per layer;
* ``‖∂y_T/∂x_t‖_F`` — the Frobenius norm of the Jacobian of the last output with respect to input ``t``.

Both are reported against the distance ``k = T-1-t`` (0: the last step). For a tanh RNN they fall
geometrically with ``k`` (the product of ``k`` Jacobians ``diag(1-h²) W`` with ‖W‖ < 1: vanishing), with
large recurrent weights they can grow instead (exploding). Freshly initialised gated cells fade too (an LSTM's
forget gates start near σ(0) = 0.5), but their additive state path lets training keep the gradient alive
(forget gates near 1), which a tanh RNN can only do by growing ``W`` toward the exploding regime.

How it is measured: the network is stepped one time step at a time (``step(x_t, state) -> state``), so every
``h_t`` is a tensor of the graph, and one ``torch.autograd.grad`` call gives the gradient of each (the model's
parameters' ``.grad`` are left alone). The Jacobian norm comes from
one backward pass over a batch in which each sequence is repeated once per probe vector ``v_k`` (rows
``v_k^T J``): one-hot probes give the exact Frobenius norm, for wide outputs Gaussian probes give an unbiased
estimate of its square (``E‖J^T v‖² = ‖J‖_F²``, Hutchinson).

:func:`linear_rnn_closed_form` gives both norms of a linear RNN ``h_t = W h_{t-1} + U x_t`` from powers of
``W``: ``∂L_T/∂h_t = (W^T)^k u`` and ``∂h_T/∂x_t = W^k U``; the tests hold the measurement to it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .steppers import State, Stepper, cell_stepper, layer_stepper

# --------------------------------------------------------------------------------------------- result

@dataclass
class GradientFlow:
    """Norms per input step ``t`` (index 0 = the first step); ``distance[t] = T-1-t``.

    ``dL_dh`` maps a layer's name (``"layer 1"``, ...; the last is the top) to the mean over the batch of
    ``‖∂L_T/∂h_t‖``; ``dy_dx`` is the mean of ``‖∂y_T/∂x_t‖_F`` (``None`` when not measured).
    """

    dL_dh: dict[str, np.ndarray]
    dy_dx: np.ndarray | None
    label: str = ""
    info: dict = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return len(next(iter(self.dL_dh.values())))

    @property
    def distance(self) -> np.ndarray:
        return np.arange(self.steps)[::-1].copy()

    def at_distance(self, k: int, name: str | None = None) -> float:
        """``‖∂L_T/∂h_{T-1-k}‖`` of layer ``name`` (default: the top layer)."""
        values = self.dL_dh[name or self.top]
        return float(values[self.steps - 1 - k])

    @property
    def top(self) -> str:
        return list(self.dL_dh)[-1]

    def to_dict(self) -> dict:
        return {"label": self.label, "info": self.info, "distance": self.distance.tolist(),
                "dL_dh": {k: v.tolist() for k, v in self.dL_dh.items()},
                "dy_dx": None if self.dy_dx is None else self.dy_dx.tolist()}


# --------------------------------------------------------------------------------------------- steppers

class LinearRNNCell(nn.Module):
    """``h_t = W h_{t-1} + U x_t + b`` with no nonlinearity (``torch.nn.RNNCell``'s parameter names).

    Not a model anyone trains: the one recurrence whose gradients have a closed form, for tests and plots.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        bound = 1.0 / math.sqrt(hidden_size)
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size).uniform_(-bound, bound))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size).uniform_(-bound, bound))
        self.bias_ih = nn.Parameter(torch.zeros(hidden_size)) if bias else None
        self.bias_hh = nn.Parameter(torch.zeros(hidden_size)) if bias else None

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        return F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh)


# --------------------------------------------------------------------------------------------- measurement

def gradient_flow(stepper: Stepper, x: Tensor, readout: Callable[[State], Tensor] | None = None,
                  loss: Callable[[Tensor], Tensor] | None = None, *, jacobian: bool = True,
                  max_probes: int = 64, seed: int = 0, label: str = "") -> GradientFlow:
    """Norms of ``∂L_T/∂h_t`` (per layer) and ``∂y_T/∂x_t`` for every step of ``x`` (T, N, I).

    ``readout(state) -> y`` (N, O) is the network's output at the last step (default: the top layer's ``h``);
    ``loss(y) -> (N,)`` one scalar per sequence (default: ``y · u`` with a fixed random unit vector ``u``).
    Sequences in the batch are independent; each norm is the mean over them. ``jacobian=False`` skips
    ``∂y/∂x``; outputs wider than ``max_probes`` use that many Gaussian probes (an estimate, see the module).
    """
    if x.dim() != 3:
        raise ValueError(f"x must be (T, N, I), got shape {tuple(x.shape)}")
    T, N, _ = x.shape
    step, init, hidden = stepper.step, stepper.init, stepper.hidden
    if readout is None:
        def readout(state: State) -> Tensor:
            return list(hidden(state).values())[-1]
    gen = torch.Generator().manual_seed(seed)
    with torch.enable_grad():
        # ∂L_T/∂h_t: run once, keeping every state; autograd.grad gives the gradient of each (and leaves the
        # parameters' .grad alone).
        state = init(N, x)
        kept: list[State] = []
        for t in range(T):
            state = step(x[t], state)
            kept.append(state)
        y = readout(state)
        if loss is None:
            u = torch.randn(y.shape[1], generator=gen).to(y)
            per_seq = y @ (u / u.norm())
        else:
            per_seq = loss(y)
        if per_seq.shape != (N,):
            raise ValueError(f"loss must give one value per sequence, shape ({N},), got {tuple(per_seq.shape)}")
        flat = [t for s in kept for t in _tensors(s)]
        wanted = [t for t in flat if t.requires_grad]
        if not per_seq.requires_grad:
            raise ValueError("the loss does not depend on anything that requires a gradient")
        got = dict(zip(map(id, wanted), torch.autograd.grad(per_seq.sum(), wanted, allow_unused=True)))
    norms: dict[str, list[float]] = {}
    for s in kept:
        grads = tuple(g if (g := got.get(id(t))) is not None else torch.zeros_like(t) for t in _tensors(s))
        named = hidden(grads if isinstance(s, tuple) else grads[0])    # the state's split, applied to its gradient
        for name, g in named.items():
            norms.setdefault(name, []).append(float(g.reshape(N, -1).norm(dim=1).mean()))
    dL_dh = {name: np.array(v) for name, v in norms.items()}
    dy_dx = _jacobian_norms(stepper, readout, x, max_probes, gen) if jacobian else None
    return GradientFlow(dL_dh, dy_dx, label, {"steps": T, "batch": N})


def _tensors(state: State) -> tuple[Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


def _jacobian_norms(stepper: Stepper, readout, x: Tensor, max_probes: int, gen: torch.Generator) -> np.ndarray:
    """Mean over the batch of ``‖∂y_T/∂x_t‖_F`` for every t, with one backward pass over repeated sequences."""
    T, N, I = x.shape
    with torch.no_grad():
        out_dim = readout(stepper.run_all(x[:1, :1])).shape[1]
    exact = out_dim <= max_probes
    K = out_dim if exact else max_probes
    # One-hot probes (the same for every sequence), or Gaussian ones drawn afresh for each sequence.
    probes = torch.eye(out_dim).expand(N, K, out_dim) if exact else torch.randn(N, K, out_dim, generator=gen)
    probes = probes.to(x)
    xr = x.unsqueeze(2).expand(T, N, K, I).reshape(T, N * K, I).detach().clone().requires_grad_(True)
    with torch.enable_grad():
        y = readout(stepper.run_all(xr)).reshape(N, K, out_dim)
        (grad,) = torch.autograd.grad((y * probes).sum(), xr)
    g2 = grad.reshape(T, N, K, I).pow(2).sum(dim=3)       # ‖v_k^T ∂y/∂x_t‖² per (t, n, k)
    fro2 = g2.sum(dim=2) if exact else g2.mean(dim=2)        # ‖J‖_F² (exact) or its Hutchinson estimate
    return fro2.sqrt().mean(dim=1).detach().cpu().double().numpy()


def model_gradient_flow(module: nn.Module, x: Tensor, **kwargs) -> GradientFlow:
    """:func:`gradient_flow` of a cell or a stacked layer (chosen by whether it has ``num_layers``)."""
    stepper = layer_stepper(module) if hasattr(module, "num_layers") else cell_stepper(module)
    return gradient_flow(stepper, x, **kwargs)


def lm_gradient_flow(model: nn.Module, ids: Tensor, *, jacobian: bool = True, max_probes: int = 64,
                     seed: int = 0) -> GradientFlow:
    """Gradient flow of a language model on one token sequence ``ids`` (T+1,): the inputs are the embeddings of
    ``ids[:-1]``, ``y_T`` the logits after the last of them and ``L_T`` the cross-entropy of the true next token
    ``ids[-1]``; ``x_t`` is the embedding vector of token ``t``."""
    if ids.dim() != 1 or len(ids) < 2:
        raise ValueError("need a sequence of at least two tokens (inputs and the token to predict)")
    was_training = model.training
    model.eval()
    try:
        emb = model.embedding(ids[:-1].unsqueeze(1)).detach()          # (T, 1, E)
        target = ids[-1:]
        stepper = layer_stepper(model.rnn)

        def readout(state: State) -> Tensor:
            return model.decoder(list(stepper.hidden(state).values())[-1])       # the top layer's h

        def loss(logits: Tensor) -> Tensor:
            return F.cross_entropy(logits, target.expand(logits.shape[0]), reduction="none")

        flow = gradient_flow(stepper, emb, readout, loss, jacobian=jacobian, max_probes=max_probes,
                             seed=seed)
    finally:
        model.train(was_training)
    return flow


# --------------------------------------------------------------------------------------------- closed form

def linear_rnn_closed_form(weight_hh, weight_ih, steps: int, u) -> tuple[np.ndarray, np.ndarray]:
    """Both norms of the linear RNN ``h_t = W h_{t-1} + U x_t`` (``W = weight_hh``, ``U = weight_ih``) with
    ``L_T = u · h_{T-1}``, from powers of ``W`` in float64, indexed like :class:`GradientFlow` (t = 0..T-1):

        ∂L_T/∂h_t   = (W^T)^{T-1-t} u            ‖·‖₂
        ∂h_{T-1}/∂x_t = W^{T-1-t} U               ‖·‖_F
    """
    W = np.asarray(weight_hh, dtype=np.float64)
    U = np.asarray(weight_ih, dtype=np.float64)
    u = np.asarray(u, dtype=np.float64)
    dL, dy = np.zeros(steps), np.zeros(steps)
    P = np.eye(W.shape[0])                       # W^k, k = 0, 1, ...
    for k in range(steps):
        t = steps - 1 - k
        dL[t] = np.linalg.norm(P.T @ u)
        dy[t] = np.linalg.norm(P @ U)
        P = W @ P
    return dL, dy


# --------------------------------------------------------------------------------------------- fresh cells

def fresh_layer(cell: str, input_size: int, hidden_size: int, *, num_layers: int = 1, recurrent_scale: float = 1.0,
                engine: str = "auto", seed: int = 0, forget_bias: float | None = None) -> nn.Module:
    """A freshly initialised rnnkit layer (PyTorch's initialisation), ``weight_hh`` multiplied by
    ``recurrent_scale`` (> 1 pushes a tanh RNN toward exploding gradients); ``forget_bias`` for an LSTM."""
    from ..layers import make_layer
    torch.manual_seed(seed)
    layer = make_layer(cell, input_size, hidden_size, num_layers=num_layers, engine=engine, forget_bias=forget_bias)
    if recurrent_scale != 1.0:
        with torch.no_grad():
            for name, p in layer.named_parameters():
                if name.startswith("weight_hh"):
                    p.mul_(recurrent_scale)
    return layer


def fresh_cell_flows(cells: list[str], *, steps: int = 100, input_size: int = 8, hidden_size: int = 64,
                     batch: int = 8, num_layers: int = 1, recurrent_scale: float = 1.0, seed: int = 0,
                     engine: str = "auto", jacobian: bool = True, forget_bias: float | None = None
                     ) -> list[GradientFlow]:
    """Gradient flow of freshly initialised cells on the same standard-normal inputs (T, batch, input_size)."""
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(steps, batch, input_size, generator=gen)
    flows = []
    for cell in cells:
        layer = fresh_layer(cell, input_size, hidden_size, num_layers=num_layers, recurrent_scale=recurrent_scale,
                            engine=engine, seed=seed, forget_bias=forget_bias)
        flow = model_gradient_flow(layer, x, jacobian=jacobian, seed=seed)
        flow.label = cell
        flow.info.update(cell=cell, hidden_size=hidden_size, input_size=input_size, recurrent_scale=recurrent_scale)
        flows.append(flow)
    return flows

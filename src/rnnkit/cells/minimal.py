"""The minimal GRU and LSTM of Feng et al. 2024 ("Were RNNs All We Needed?"), one time step, in plain PyTorch.

Take ``h_{t-1}`` out of every gate and the update becomes a *linear* recurrence in ``h``::

    h_t = a_t * h_{t-1} + b_t          a_t, b_t computed from x_t alone

which a scan can run over all steps at once (:mod:`rnnkit.engine.scan`); only generation stays step by step.
Row vectors as in the lecture, ``U = weight_ih.T`` split into column blocks, no recurrent weights ``W``::

    minGRU   (gates z, h; G = 2)               minLSTM  (gates f, i, h; G = 3)
    z_t  = σ(x_t U_z + b_z)                     f_t  = σ(x_t U_f + b_f)
    h~_t = φ(x_t U_h + b_h)                     i_t  = σ(x_t U_i + b_i)
    h_t  = (1 - z_t) * h_{t-1} + z_t * h~_t     f'_t = f_t / (f_t + i_t),   i'_t = i_t / (f_t + i_t) = 1 - f'_t
                                                h~_t = φ(x_t U_h + b_h)
    a_t = 1 - z_t,  b_t = z_t * h~_t            h_t  = f'_t * h_{t-1} + i'_t * h~_t
                                                a_t = f'_t,  b_t = i'_t * h~_t

``z`` is the lecture's update gate (``h_t = (1 - z) h_{t-1} + z h~``), not ``torch.nn.GRU``'s (which is ``1 - z``).
The minLSTM has no output gate and no separate cell: its state is ``h`` alone. ``φ`` is the identity, or, in the
paper's *log-space* version, the positive activation ``g`` (``log_space=True``)::

    g(x) = x + 1/2  (x >= 0),   σ(x)  (x < 0)          continuous, increasing, > 0, linear growth

so that every ``b_t > 0`` and a positive state stays positive: the whole recurrence can then be run on logarithms
(Heinsen 2023), ``log h_t = a*_t + log(h_0 + Σ_{s<=t} exp(log b_s - a*_s))`` with ``a*_t = Σ_{s<=t} log a_s``,
one ``cumsum`` and one ``logcumsumexp``. In logs the gates are softplus terms::

    minGRU:   log a = -softplus(k_z),   log b = -softplus(-k_z) + log g(p)
    minLSTM:  d = softplus(-k_i) - softplus(-k_f) = log f - log i,
              log a = -softplus(-d),    log b = -softplus(d) + log g(p)

(``log f' = log f - log(f + i) = -softplus(log i - log f)``, Feng et al.'s appendix.)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

GATES = {"mingru": 2, "minlstm": 3}


def positive_activation(x: Tensor) -> Tensor:
    """``g(x) = x + 1/2`` for ``x >= 0``, ``σ(x)`` below: positive, continuous, the identity's slope for large x."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_positive_activation(x: Tensor) -> Tensor:
    """``log g(x)`` without computing ``g``: ``log(x + 1/2)`` or ``-softplus(-x)`` (= ``log σ(x)``)."""
    return torch.where(x >= 0, torch.log(x.clamp(min=0) + 0.5), -F.softplus(-x))


def coefficients(kind: str, gates: Tensor, positive: bool = False) -> tuple[Tensor, Tensor]:
    """``(a, b)`` of ``h_t = a * h_{t-1} + b`` from the gate pre-activations ``gates`` (..., G*H) (bias added)."""
    if kind == "mingru":
        k, p = gates.chunk(2, dim=-1)
        z = torch.sigmoid(k)                                   # z_t = σ(x_t U_z + b_z)
        h_tilde = positive_activation(p) if positive else p    # h~_t = φ(x_t U_h + b_h)
        return 1 - z, z * h_tilde                              # a = 1 - z, b = z h~
    if kind == "minlstm":
        kf, ki, p = gates.chunk(3, dim=-1)
        a = torch.sigmoid(F.softplus(-ki) - F.softplus(-kf))  # f' = f / (f + i) = σ(log f - log i)
        h_tilde = positive_activation(p) if positive else p
        return a, (1 - a) * h_tilde                            # b = i' h~,  i' = 1 - f'
    raise ValueError(f"unknown minimal cell {kind!r}; expected one of {tuple(GATES)}")


def log_coefficients(kind: str, gates: Tensor) -> tuple[Tensor, Tensor]:
    """``(log a, log b)`` of the log-space version (``φ = g``), from the pre-activations (..., G*H)."""
    if kind == "mingru":
        k, p = gates.chunk(2, dim=-1)
        return -F.softplus(k), -F.softplus(-k) + log_positive_activation(p)      # log(1 - z), log z + log g(p)
    if kind == "minlstm":
        kf, ki, p = gates.chunk(3, dim=-1)
        d = F.softplus(-ki) - F.softplus(-kf)                                    # log f - log i
        return -F.softplus(-d), -F.softplus(d) + log_positive_activation(p)      # log f', log i' + log g(p)
    raise ValueError(f"unknown minimal cell {kind!r}; expected one of {tuple(GATES)}")


def minimal_step(kind: str, x: Tensor, h: Tensor, weight_ih: Tensor, bias_ih: Tensor | None = None,
                 positive: bool = False) -> Tensor:
    """One step: ``x`` (N, I), ``h`` (N, H) -> ``h_t`` (N, H). The same numbers as the scan over one step."""
    a, b = coefficients(kind, F.linear(x, weight_ih, bias_ih), positive)
    return torch.addcmul(b, a, h)                              # h_t = a_t * h_{t-1} + b_t


def min_gru_step(x: Tensor, h: Tensor, weight_ih: Tensor, bias_ih: Tensor | None = None,
                 positive: bool = False) -> Tensor:
    """minGRU, one step (see the module docstring)."""
    return minimal_step("mingru", x, h, weight_ih, bias_ih, positive)


def min_lstm_step(x: Tensor, h: Tensor, weight_ih: Tensor, bias_ih: Tensor | None = None,
                  positive: bool = False) -> Tensor:
    """minLSTM, one step (see the module docstring)."""
    return minimal_step("minlstm", x, h, weight_ih, bias_ih, positive)

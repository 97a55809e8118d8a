"""What every cell shares: torch.nn-style parameters, PyTorch's initialisation, input checks."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class CellBase(nn.Module):
    """One recurrent step with the parameters of ``torch.nn.*Cell``.

    ``weight_ih`` (G*H, I) is the lecture's ``U`` transposed, ``weight_hh`` (G*H, H) is ``W`` transposed,
    so ``x_t U + h_{t-1} W`` is ``x_t @ weight_ih.T + h_{t-1} @ weight_hh.T``. ``G`` is the number of gates.
    """

    gates: int = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        kw = {"device": device, "dtype": dtype}
        gh = self.gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(gh, input_size, **kw))
        self.weight_hh = nn.Parameter(torch.empty(gh, hidden_size, **kw))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(gh, **kw))
            self.bias_hh = nn.Parameter(torch.empty(gh, **kw))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: every parameter uniform in ``(-1/sqrt(H), 1/sqrt(H))``."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def weights(self) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """``(weight_ih, weight_hh, bias_ih, bias_hh)``, the order every step function takes."""
        return self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh

    def zero_state(self, batch: int, like: Tensor) -> Tensor:
        """``h_0 = 0`` for a batch, with the dtype and device of ``like``."""
        return like.new_zeros(batch, self.hidden_size)

    def _check_input(self, x: Tensor) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"{type(self).__name__} expects a Tensor input, got {type(x).__name__}")
        if x.dim() != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"{type(self).__name__} expects input of shape (batch, {self.input_size}), "
                             f"got {tuple(x.shape)}")
        like = self.weight_ih
        if not x.dtype.is_floating_point:
            raise TypeError(f"{type(self).__name__}: input dtype {x.dtype} is not floating point; convert it with "
                            f".to({like.dtype}) (token ids go through an nn.Embedding first)")
        if x.dtype != like.dtype and not autocast_enabled(x.device.type):
            raise TypeError(f"{type(self).__name__}: input dtype {x.dtype} does not match the parameters' dtype "
                            f"{like.dtype}; convert one with .to({like.dtype}) or cell.to({x.dtype})")

    def _check_state(self, h: Tensor, x: Tensor, name: str = "h") -> None:
        expected = (x.shape[0], self.hidden_size)
        if not isinstance(h, Tensor) or tuple(h.shape) != expected:
            got = tuple(h.shape) if isinstance(h, Tensor) else type(h).__name__
            raise ValueError(f"{type(self).__name__}: state {name} must have shape {expected}, got {got}")
        if h.dtype != x.dtype and not autocast_enabled(x.device.type):
            raise TypeError(f"{type(self).__name__}: state {name} dtype {h.dtype} does not match the input's "
                            f"dtype {x.dtype}")

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


def autocast_enabled(device_type: str) -> bool:
    """Whether autocast is on for this device type (False for types autocast doesn't know, such as meta); where
    it is, it casts the matmuls' operands itself, so dtypes may differ."""
    try:
        return torch.is_autocast_enabled(device_type)
    except (TypeError, RuntimeError):
        return False


def linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``x @ weight.T + bias``: the lecture's ``x U + b`` with ``U = weight.T``."""
    return torch.nn.functional.linear(x, weight, bias)

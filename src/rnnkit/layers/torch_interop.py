"""What makes an rnnkit layer a drop-in for ``torch.nn.RNN/LSTM/GRU``: torch.nn's kernel as a backend, conversion
both ways, torch's flat-weight attributes, and copies and pickles that never carry caches.

Caches (the compiled stepper, CUDA-graph captures, the torch.nn twin that shares the parameters) live in the
module's ``__dict__`` under names starting with ``_cache_``; they are rebuilt on demand and left out of
``copy.deepcopy``, ``pickle`` and ``torch.save(model)``.
"""
from __future__ import annotations

from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..engine.weight_drop import drop_weight

CACHE_PREFIX = "_cache_"


class TorchInterop:
    """Mixin for :class:`rnnkit.layers.recurrent.RecurrentLayer`."""

    # ------------------------------------------------------------------ torch.nn's attributes

    @property
    def _flat_weights_names(self) -> list[str]:
        """Weight names in torch.nn's order: per layer, per direction, ``w_ih, w_hh[, b_ih, b_hh][, w_hr]``."""
        kinds = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if self.bias else ()) + \
            (("weight_hr",) if self.proj_size else ())
        return [f"{kind}_l{layer}{suffix}" for layer in range(self.num_layers) for suffix in self._suffixes()
                for kind in kinds]

    @property
    def _flat_weights(self) -> list[Tensor]:
        """The weights as the engines read them (``getattr``: a parametrized or pruned weight's current value)."""
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def _all_weights(self) -> list[list[str]]:
        per = len(self._flat_weights_names) // (self.num_layers * self.num_directions)
        names = self._flat_weights_names
        return [names[i:i + per] for i in range(0, len(names), per)]

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        """As ``torch.nn``: one list of parameters per layer and direction."""
        return [[getattr(self, n) for n in group] for group in self._all_weights]

    def flatten_parameters(self) -> None:
        """A no-op kept for code written for ``torch.nn`` (cuDNN's one-buffer weight layout): rnnkit's engines read
        the parameters as they are, and ``engine="torch"`` shares them with torch.nn's module."""

    # ------------------------------------------------------------------ quantization

    @property
    def qconfig(self):
        raise AttributeError("qconfig")            # never set: see the setter

    @qconfig.setter
    def qconfig(self, value) -> None:
        """``torch.ao.quantization`` sets this on the modules it means to swap; it has no int8 kernel for
        rnnkit's layers and would leave them in float without a word, so say so and name the way that works."""
        if value is not None:
            raise ValueError(f"torch.ao.quantization has no quantized form of rnnkit.{type(self).__name__}; "
                             f"convert the layer with .to_torch() (torch.nn.{type(self).__name__}, same weights) "
                             f"and quantize that")

    # ------------------------------------------------------------------ copies and pickles

    def __getstate__(self) -> dict:
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__.copy()
        return {k: v for k, v in state.items() if not k.startswith(CACHE_PREFIX)}

    # ------------------------------------------------------------------ torch.nn's kernel as a backend

    def _run_torch(self, x: Tensor, h0: Tensor, c0: Tensor | None, lengths: Tensor | None):
        """The whole stack in one call to torch.nn's kernel (cuDNN on a GPU, oneDNN for the LSTM on a CPU),
        sharing this layer's parameters (no copy); with ``weight_drop`` in training, the dropped ``weight_hh``."""
        twin = self._torch_twin()
        twin.train(self.training)
        hx = (h0, c0) if c0 is not None else h0
        # weights that aren't plain parameters (torch.nn.utils.parametrize, prune) go in as their current values
        derived = {n: getattr(self, n) for n in self._flat_weights_names if n not in self._parameters}
        if self.training and self.options.weight_drop > 0:      # DropConnect: dropped weight_hh go in as tensors,
            for k in range(self.num_layers):                      # drawn in the other engines' order
                for suffix in self._suffixes():
                    name = f"weight_hh_l{k}{suffix}"
                    derived[name] = drop_weight(getattr(self, name), self.options.weight_drop)
        def run(*args):
            return functional_call(twin, derived, args) if derived else twin(*args)
        if lengths is None:
            return run(x, hx)
        packed = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
        out, state = run(packed, hx)
        return pad_packed_sequence(out, total_length=x.shape[0])[0], state

    def _torch_twin(self) -> nn.Module:
        """A ``torch.nn`` module whose parameters are this layer's own Parameter objects (kept off the module
        tree so it never appears in ``state_dict``); rebuilt when parameters were replaced or moved."""
        twin = self.__dict__.get(CACHE_PREFIX + "twin")
        names = [n for n in self._flat_weights_names if n in self._parameters]
        if twin is None or any(getattr(twin, n) is not self._parameters[n] for n in names):
            twin = self.cell.torch_class(**{**self._torch_kwargs(), "batch_first": False}, device="meta")
            for n in names:
                setattr(twin, n, self._parameters[n])
            twin._apply(lambda t: t)               # refresh torch.nn's flat-weight views
            self.__dict__[CACHE_PREFIX + "twin"] = twin
        return twin

    # ------------------------------------------------------------------ conversion

    def _torch_kwargs(self) -> dict:
        extra = {"proj_size": self.proj_size} if self.proj_size else {}
        return dict(input_size=self.input_size, hidden_size=self.hidden_size, num_layers=self.num_layers,
                    bias=self.bias, batch_first=self.batch_first, dropout=self.dropout,
                    bidirectional=self.bidirectional, **self.cell.torch_kwargs, **extra)

    def to_torch(self) -> nn.Module:
        """The equivalent ``torch.nn`` module with these weights (a copy)."""
        if self.cell.torch_class is None:
            raise ValueError(f"{type(self).__name__}: torch.nn's layers don't compute {self.cell.description}, so "
                             f"there is no torch.nn module with these weights")
        p = self.weight_ih_l0
        module = self.cell.torch_class(**self._torch_kwargs(), device=p.device, dtype=p.dtype)
        module.load_state_dict(self.state_dict(), strict=True)
        return module

    @classmethod
    def _kwargs_from_torch(cls, module: nn.Module) -> dict:
        torch_class = next(r.torch_class for r in cls.recurrences if r.torch_class is not None)
        if not isinstance(module, torch_class):
            raise TypeError(f"{cls.__name__}.from_torch expects a torch.nn.{torch_class.__name__}, "
                            f"got {type(module).__name__}")
        extra = {"proj_size": module.proj_size} if getattr(module, "proj_size", 0) else {}
        return dict(input_size=module.input_size, hidden_size=module.hidden_size, num_layers=module.num_layers,
                    bias=module.bias, batch_first=module.batch_first, dropout=module.dropout,
                    bidirectional=module.bidirectional, **extra)

    @classmethod
    def from_torch(cls, module: nn.Module, engine: str = "auto"):
        """An rnnkit layer with the configuration and a copy of the weights of a ``torch.nn`` module."""
        p = next(module.parameters())
        layer = cls(**cls._kwargs_from_torch(module), engine=engine, device=p.device, dtype=p.dtype)
        layer.load_state_dict(module.state_dict(), strict=True)
        return layer

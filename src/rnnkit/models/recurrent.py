"""The recurrent layer of a model, built from the cell's description, and the cell-specific initialisation."""
from __future__ import annotations

import torch

from ..cells.lstm import set_forget_bias
from ..cells.spec import Recurrence, recurrence
from ..layers import RecurrentLayer, make_layer


def make_recurrent(cell: Recurrence | str, input_size: int, hidden_size: int, num_layers: int = 1,
                   dropout: float = 0.0, bidirectional: bool = False, engine: str = "auto",
                   forget_bias: float | None = None, batch_first: bool = False, **regularisers) -> RecurrentLayer:
    """A stacked rnnkit layer of ``cell``; dropout between layers only (none for one layer). ``forget_bias``
    applies to cells with a forget gate (:func:`init_forget_bias`) and is ignored for the others. ``regularisers``:
    the layer's keyword-only options (``weight_drop=``, ``zoneout=``, ...; :mod:`rnnkit.layers.regularisers`)."""
    cell = recurrence(cell)
    layer = make_layer(cell, input_size, hidden_size, num_layers=num_layers,
                       dropout=dropout if num_layers > 1 else 0.0, bidirectional=bidirectional, engine=engine,
                       batch_first=batch_first, **regularisers)
    if forget_bias is not None:
        init_forget_bias(layer, forget_bias)
    return layer


@torch.no_grad()
def init_forget_bias(layer: RecurrentLayer, value: float) -> None:
    """Give every forget gate of ``layer`` the total bias ``value`` (its ``bias_ih`` block set, ``bias_hh``'s
    zeroed, as Jozefowicz et al. 2015); nothing for cells without a forget gate or layers without biases."""
    cell = layer.cell
    if cell.forget_gate is None or not layer.bias:
        return
    for k in range(layer.num_layers):
        for direction in range(layer.num_directions):
            _, _, bias_ih, bias_hh = layer.layer_weights(k, direction)
            set_forget_bias(bias_ih, bias_hh, value, cell.gates, cell.forget_gate)

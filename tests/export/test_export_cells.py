"""ONNX round trip of rnnkit's operator for every cell: ONNX's own RNN/LSTM/GRU (gate orders, the lecture's GRU as
``linear_before_reset=0``, lengths as ``sequence_lens``, the reverse direction) equal rnnkit's outputs; an LSTM with
a projection, layer norm or zoneout refuses ONNX in one line and exports as pt2; weight drop and the dropouts,
off in evaluation, export to ONNX."""
from __future__ import annotations

import pytest
import torch

from rnnkit.cells.spec import RECURRENCES
from rnnkit.export import OnnxNotSupported, ProjectionNotSupported, export_program, run_file
from rnnkit.export.programs import Port, Program, ProgramModule
from rnnkit.layers import make_layer

from export_helpers import assert_close, needs_onnx


class Layers(ProgramModule):
    """Every cell's layer over the same padded batch: its outputs and final states."""

    def run(self, x):
        out = {}
        for cell, layer in zip(RECURRENCES, self.model):
            y, state = layer(x["x"], lengths=x["lengths"])
            h, c = cell.unpack(state)
            out.update({f"{cell.kernel}_y": y, f"{cell.kernel}_h": h, f"{cell.kernel}_c": c})
        return out


def _program(layers, cells) -> Program:
    inputs = [Port("x", torch.float32, ("T", "N", 4)), Port("lengths", torch.int64, ("N",))]
    outputs = []
    for cell, layer in zip(cells, layers):
        D, H = 2 if layer.bidirectional else 1, layer.hidden_size
        outputs += [Port(f"{cell.kernel}_y", torch.float32, ("T", "N", D * layer.output_size)),
                    Port(f"{cell.kernel}_h", torch.float32, (layer.num_layers * D, "N", layer.output_size))]
        if cell.has_cell_state:
            outputs.append(Port(f"{cell.kernel}_c", torch.float32, (layer.num_layers * D, "N", H)))

    def make_inputs(sizes, g):
        n, t = sizes["N"], sizes["T"]
        lengths = torch.randint(1, t + 1, (n,), generator=g)
        lengths[0] = t
        return torch.randn(t, n, 4, generator=g), lengths
    return Program("layers", Layers(torch.nn.ModuleList(layers), inputs, outputs), inputs, outputs, make_inputs)


@needs_onnx
def test_every_cell_round_trips_through_onnx(tmp_path):
    _round_trip(tmp_path)


@needs_onnx
def test_the_regularisers_that_evaluation_turns_off_export_to_onnx(tmp_path):
    _round_trip(tmp_path, num_layers=2, weight_drop=0.5, recurrent_dropout=0.3, variational_dropout=0.2)


def _round_trip(tmp_path, num_layers=1, **options):
    """Every cell's layer (both directions) exported to ONNX equals the layer on two new batches."""
    torch.manual_seed(0)
    layers = [make_layer(cell, 4, 5, num_layers=num_layers, bidirectional=True, engine="python", **options).eval()
              for cell in RECURRENCES]
    program = _program(layers, RECURRENCES)
    export_program(program, "onnx", tmp_path / "layers.onnx", {"N": 3, "T": 7})
    for layer in layers:
        layer.engine = "auto"                         # the reference: the layers as users run them
    import onnx
    ops = {n.op_type for n in onnx.load(str(tmp_path / "layers.onnx")).graph.node}
    assert {"RNN", "LSTM", "GRU"} <= ops and not any("rnnkit" in o for o in ops)
    g = torch.Generator().manual_seed(1)
    for sizes in ({"N": 1, "T": 4}, {"N": 5, "T": 11}):
        inputs = program.make_inputs(sizes, g)
        got = run_file("onnx", tmp_path / "layers.onnx", program, inputs)
        with torch.no_grad():
            for cell, layer in zip(RECURRENCES, layers):
                y, state = layer(inputs[0], lengths=inputs[1])
                h, c = cell.unpack(state)
                named = dict(zip(program.module.output_names, got))
                assert_close(named[f"{cell.kernel}_y"], y, cell.name)
                assert_close(named[f"{cell.kernel}_h"], h, cell.name)
                if c is not None:
                    assert_close(named[f"{cell.kernel}_c"], c, cell.name)


def _projected():
    torch.manual_seed(0)
    cells = [c for c in RECURRENCES if c.has_cell_state]
    layer = make_layer(cells[0], 4, 6, num_layers=1, proj_size=3, engine="python").eval()
    return layer, _program([layer], cells)


@needs_onnx
def test_an_lstm_with_projection_refuses_onnx_in_one_line(tmp_path):
    _, program = _projected()
    with pytest.raises(ProjectionNotSupported, match=r"no projection.*--format pt2") as info:
        export_program(program, "onnx", tmp_path / "p.onnx", {"N": 3, "T": 7})
    assert "\n" not in str(info.value)
    assert not (tmp_path / "p.onnx").exists()


def test_an_lstm_with_projection_exports_as_pt2(tmp_path):
    layer, program = _projected()
    export_program(program, "pt2", tmp_path / "p.pt2", {"N": 3, "T": 7})
    inputs = program.make_inputs({"N": 2, "T": 5}, torch.Generator().manual_seed(3))
    y, (h, c) = layer(inputs[0], lengths=inputs[1])
    got = run_file("pt2", tmp_path / "p.pt2", program, inputs)
    for g_, e in zip(got, (y, h, c)):
        assert_close(g_, e.detach())


@needs_onnx
@pytest.mark.parametrize("options, named", [(dict(layer_norm=True), "layer norm"), (dict(zoneout=0.1), "zoneout"),
                                            (dict(layer_norm=True, zoneout=0.1), "layer norm or zoneout")])
def test_layer_norm_and_zoneout_refuse_onnx_in_one_line_and_export_as_pt2(tmp_path, options, named):
    torch.manual_seed(0)
    layers = [make_layer(cell, 4, 5, bidirectional=True, engine="python", **options).eval() for cell in RECURRENCES]
    program = _program(layers, RECURRENCES)
    with pytest.raises(OnnxNotSupported, match=rf"no {named}, which change.*--format pt2") as info:
        export_program(program, "onnx", tmp_path / "r.onnx", {"N": 3, "T": 7})
    assert "\n" not in str(info.value) and not (tmp_path / "r.onnx").exists()
    export_program(program, "pt2", tmp_path / "r.pt2", {"N": 3, "T": 7})
    inputs = program.make_inputs({"N": 2, "T": 5}, torch.Generator().manual_seed(3))
    got = dict(zip(program.module.output_names, run_file("pt2", tmp_path / "r.pt2", program, inputs)))
    with torch.no_grad():
        for cell, layer in zip(RECURRENCES, layers):
            y, state = layer(inputs[0], lengths=inputs[1])
            assert_close(got[f"{cell.kernel}_y"], y, cell.name)
            assert_close(got[f"{cell.kernel}_h"], cell.unpack(state)[0], cell.name)


@needs_onnx
def test_every_kernel_has_one_row_in_the_onnx_table():
    from rnnkit.export.onnx_ops import ONNX_KERNELS
    assert set(ONNX_KERNELS) == {cell.kernel for cell in RECURRENCES}
    for cell in RECURRENCES:
        row = ONNX_KERNELS[cell.kernel]
        assert sorted(row.gate_order) == list(range(cell.gates)) and row.has_cell_state == cell.has_cell_state

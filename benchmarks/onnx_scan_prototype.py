"""Can a layer-normalised, zoneout LSTM become ONNX through torch's ``scan``? A prototype, not rnnkit's exporter.

ONNX's LSTM operator has neither layer norm nor zoneout, so ``rnnkit export`` refuses those models for ONNX (pt2
keeps them). This runs rnnkit's own cell equations (``lstm_step`` with a Regularisation: layer norm, zoneout's
evaluation expectation, lengths held) inside ``torch._higher_order_ops.scan`` and exports that with
``torch.onnx.export(dynamo=True)``, then compares onnxruntime with eager on a new batch. With only the length
dynamic it works; with the batch dynamic too (as ``rnnkit export`` promises) torch 2.13's exporter fails on the
scan node:

    python benchmarks/onnx_scan_prototype.py            # dynamic length: prints the largest difference
    python benchmarks/onnx_scan_prototype.py --batch    # dynamic length and batch: prints the exporter's error
"""
import sys
import warnings

import numpy as np
import torch
from torch._higher_order_ops.scan import scan

from rnnkit.cells.extras import Regularisation
from rnnkit.cells.spec import recurrence

I, H = 4, 6


class ScannedLSTM(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = torch.nn.ParameterList([torch.randn(4 * H, I, generator=g) * 0.3,
                                         torch.randn(4 * H, H, generator=g) * 0.3,
                                         torch.randn(4 * H, generator=g) * 0.1, torch.randn(4 * H, generator=g) * 0.1])
        self.ln = torch.nn.ParameterList([torch.rand(4 * H, generator=g) + 0.5, torch.randn(4 * H, generator=g) * 0.1,
                                          torch.rand(4 * H, generator=g) + 0.5, torch.randn(4 * H, generator=g) * 0.1,
                                          torch.rand(H, generator=g) + 0.5, torch.randn(H, generator=g) * 0.1])
        self.cell = recurrence("lstm")

    def forward(self, x, lengths):
        w, ln, cell = tuple(self.w), tuple(self.ln), self.cell
        T, N = x.shape[0], x.shape[1]
        valid = (torch.arange(T).unsqueeze(1) < lengths.unsqueeze(0)).unsqueeze(2)
        zh, zc = torch.full((T, N, H), 0.1), torch.full((T, N, H), 0.05)   # zoneout's evaluation expectation

        def step(carry, xs):
            h, c = carry
            x_t, m_t, zh_t, zc_t = xs
            hn, cn = cell.step(x_t, cell.pack(h, c), *w, reg=Regularisation(zoneout_h=zh_t, zoneout_c=zc_t, ln=ln))
            hn, cn = torch.where(m_t, hn, h), torch.where(m_t, cn, c)       # past a sequence's end: held
            return (hn, cn), hn.clone()

        (h_T, c_T), ys = scan(step, (x.new_zeros(N, H), x.new_zeros(N, H)), (x, valid, zh, zc))
        return ys * valid, h_T, c_T


def main(dynamic_batch: bool) -> None:
    warnings.simplefilter("ignore")
    model = ScannedLSTM()
    x, lengths = torch.randn(7, 3, I), torch.tensor([7, 4, 2])
    T, N = torch.export.Dim("T", min=2), torch.export.Dim("N", min=2)
    shapes = ({0: T, 1: N}, {0: N}) if dynamic_batch else ({0: T}, None)
    try:
        program = torch.onnx.export(model, (x, lengths), dynamo=True, dynamic_shapes=shapes, optimize=True)
    except Exception as e:
        cause = e
        while cause.__cause__ is not None:
            cause = cause.__cause__
        print(f"export failed: {type(cause).__name__}: {str(cause).splitlines()[0]}")
        return
    import onnxruntime
    program.save("/tmp/onnx_scan_prototype.onnx")
    session = onnxruntime.InferenceSession("/tmp/onnx_scan_prototype.onnx")
    n = 5 if dynamic_batch else 3
    x2, l2 = torch.randn(11, n, I), torch.randint(1, 12, (n,))
    got = session.run(None, {session.get_inputs()[0].name: x2.numpy(), session.get_inputs()[1].name: l2.numpy()})
    with torch.no_grad():
        want = model(x2, l2)[0].numpy()
    print(f"onnxruntime against eager, a batch of {n} x 11 steps: largest difference {np.abs(got[0] - want).max():.1e}")


if __name__ == "__main__":
    main("--batch" in sys.argv[1:])

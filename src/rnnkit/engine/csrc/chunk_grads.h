// rnnkit fused engine: the backward's fold of one chunk of steps into the weights' and the input's gradients, after
// the chunk's steps (engine.cpp's backward_impl); layer norm's part in layer_norm_grads.h.
#pragma once

#include <ATen/ops/mul.h>

#include <vector>

#include "buffer_pool.h"
#include "layer_norm_grads.h"

namespace rnnkit {

// Folds one chunk's gate gradients (rows = W*N) into dx, dW and db, and the projected LSTM's dh_t into dR, and
// layer norm's (`first`: the chunk that starts dW).
// With recurrent dropout W multiplied h_{t-1} * m, so dW takes H_prev * m; under layer norm the recurrent product's
// gradient dA (not dG) goes into dW.
template <typename S>
void accumulate(const Ctx<S>& c, const Weights& w, const at::Tensor& x, const at::Tensor& hs, int64_t t0,
                int64_t W, std::vector<at::Tensor>& g, bool has_bias, bool first, const at::Tensor& h_mask) {
  at::Tensor &dw_hh = g[4], &db_ih = g[5], &db_hh = g[6];
  const int64_t rows = W * c.N, H = c.H;
  const at::Tensor dG = c.dG.view({rows, c.GH});
  const at::Tensor dP = c.normed() ? c.dA.view({rows, c.GH}) : dG;  // the gradient w.r.t. the recurrent product
  at::Tensor h_prev = hs.narrow(0, t0, W);
  if (h_mask.defined()) {
    at::Tensor dropped = fresh(h_prev.sizes(), h_prev.options());
    h_prev = at::mul_out(dropped, h_prev, h_mask);
  }
  h_prev = h_prev.view({rows, c.P});
  if (c.projected)                                                            // dR^T += dH^T (o * tanh C)
    gemm_once(g[7], c.d_proj.view({rows, c.P}).t(), c.cell_out.reshape({rows, H}), !first);
  if (has_bias && !c.normed()) db_ih.add_(dG.sum(0));          // (layer norm: the steps sum it, fold_input_layer_norm)
  if (c.normed()) accumulate_layer_norm(c, rows, g);
  if (!is_gru(c.mode) || (c.normed() && c.mode == Mode::kGruResetAfter)) {
    gemm_once(dw_hh, dP.t(), h_prev, !first);                                   // dW^T += dG^T H_prev
  } else if (c.mode == Mode::kGru) {   // W_n's gradient uses Cho's r*h (aux); blocks made contiguous first: given a
    // transposed view of a column block, oneDNN copies it itself, transposing, on one thread; a row copy is cheaper
    gemm_once(dw_hh.narrow(0, 0, 2 * H), dP.narrow(1, 0, 2 * H).contiguous().t(), h_prev, !first);
    gemm_once(dw_hh.narrow(0, 2 * H, H), dP.narrow(1, 2 * H, H).contiguous().t(), c.aux.view({rows, H}), !first);
  }
  if (c.mode == Mode::kGruResetAfter) {       // the PyTorch GRU's W_n and b_hn take d(h W_n + b_hn) (aux)
    const at::Tensor aux = c.aux.view({rows, H});
    const at::Tensor dG_rz = dG.narrow(1, 0, 2 * H).contiguous();
    if (!c.normed()) {                                                          // (with layer norm: above)
      gemm_once(dw_hh.narrow(0, 0, 2 * H), dG_rz.t(), h_prev, !first);
      gemm_once(dw_hh.narrow(0, 2 * H, H), aux.t(), h_prev, !first);
    }
    if (has_bias) {
      db_hh.narrow(0, 0, 2 * H).add_(dG_rz.sum(0));
      db_hh.narrow(0, 2 * H, H).add_(aux.sum(0));
    }
  }
  // The input's part: under layer norm the gradient w.r.t. the raw x_t U, from the steps.
  at::Tensor dX = dG;
  if (c.normed()) {
    fold_input_layer_norm(c, g);
    dX = c.dX.view({rows, c.GH});
  }
  const int64_t I = x.size(2);
  if (g[0].defined()) gemm_once(g[0].narrow(0, t0, W).view({rows, I}), dX, w.w_ih, false);  // dX = dG U^T
  gemm_once(g[3], dX.t(), x.narrow(0, t0, W).reshape({rows, I}), !first);   // dU^T += dG^T X
}

}  // namespace rnnkit

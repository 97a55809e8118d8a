// rnnkit fused engine: layer norm's per-chunk backward passes, after a chunk's steps (engine.cpp's accumulate): the
// gains' and biases' gradients and the gradient w.r.t. the raw x_t U. The per-step parts (LN(h W) and the LSTM's
// LN(C^_t)) run in the cells' step loops (cells_*.cpp); the layout of the saved values is fused.h's.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "buffer_pool.h"
#include "step_common.h"

namespace rnnkit {

// dg[j] += sum_r dy[r, j] xh[r, j] and db[j] += sum_r dy[r, j] over `rows` rows of `cols` columns (leading dimensions
// ldy, ldx): columns split over threads, sums in double, no temporaries (fresh buffers cost page faults per call).
template <typename S>
void gain_grads(const S* dy, int64_t ldy, const S* xh, int64_t ldx, int64_t rows, int64_t cols, S* dg, S* db) {
  at::parallel_for(0, cols, 64, [&](int64_t j0, int64_t j1) {
    std::vector<double> acc(2 * (j1 - j0), 0.0);
    double* ag = acc.data();
    double* ab = ag + (j1 - j0);
    for (int64_t r = 0; r < rows; ++r) {
      const S* d = dy + r * ldy + j0;
      const S* x = xh + r * ldx + j0;
#pragma omp simd
      for (int64_t j = 0; j < j1 - j0; ++j) ag[j] += double(d[j]) * double(x[j]), ab[j] += double(d[j]);
    }
    for (int64_t j = 0; j < j1 - j0; ++j) dg[j0 + j] += S(ag[j]), db[j0 + j] += S(ab[j]);
  });
}

// The gains' and biases' gradients that don't come from dG: the PyTorch GRU's recurrent product (r, z from dG; its
// n block from d(h W_n + b_hn), in aux) and the LSTM's C^_t (from dlnc). The rest: input_layer_norm_backward.
template <typename S>
void accumulate_layer_norm(const Ctx<S>& c, int64_t rows, std::vector<at::Tensor>& g) {
  const int64_t H = c.H, GH = c.GH, NW = c.NW;
  const S* dG = Ctx<S>::ptr(c.dG);
  const S* xh = Ctx<S>::ptr(c.norm);
  const auto p = [&](int k) { return Ctx<S>::ptr(g[k]); };
  if (c.mode == Mode::kGruResetAfter) {                                                 // h W: r, z | n
    gain_grads(dG, GH, xh, NW, rows, 2 * H, p(10), p(11));
    gain_grads(Ctx<S>::ptr(c.aux), H, xh + 2 * H, NW, rows, H, p(10) + 2 * H, p(11) + 2 * H);
  }
  if (c.mode == Mode::kLstm) gain_grads(Ctx<S>::ptr(c.dlnc), H, xh + GH, NW, rows, H, p(12), p(13));  // C^_t
}

// One pass over a chunk's dG, after dW has taken dA: the gradient w.r.t. the raw x_t U through LN, row by row, into
// `out` (rows, GH; dA, in place), and the gains' and biases' gradients of LN(x_t U) and, where its upstream
// gradient is dG too (not the PyTorch GRU), of LN(h W): dg += dG * xh, db += dG summed over rows; that sum is also
// the cell's own bias gradient (g[5], where the layer has biases). Reading dG once for all of them saves three
// passes over it and the input's normalised values. The rows go in blocks of a fixed size,
// each summing in S, the blocks added in order in double: the same bits with any number of threads.
template <typename S>
void input_layer_norm_backward(const Ctx<S>& c, int64_t rows, S* out, std::vector<at::Tensor>& g) {
  constexpr int64_t kBlockRows = 64;
  const S* dG = Ctx<S>::ptr(c.dG);
  const S* xh_in = Ctx<S>::ptr(c.norm_in);
  const S* xh_rec = Ctx<S>::ptr(c.norm);
  const S* rs = Ctx<S>::ptr(c.rstd_in);
  const int64_t G = c.G, GH = c.GH, NW = c.NW;
  const bool recurrent = c.mode != Mode::kGruResetAfter;
  const int64_t blocks = (rows + kBlockRows - 1) / kBlockRows, width = recurrent ? 3 * GH : 2 * GH;
  // per block: [dG x_in | dG | dG x_rec], summed in S (64 rows: float keeps the SIMD width, and its error is
  // that of a 64-term sum), the blocks added in double
  const at::Tensor sums_t = fresh_zeros({blocks * width}, c.zero.options());
  S* sums = Ctx<S>::ptr(sums_t);
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      S* gin = sums + b * width;
      S* bias = gin + GH;
      S* grec = bias + GH;
      for (int64_t r = b * kBlockRows; r < std::min(rows, (b + 1) * kBlockRows); ++r) {
        const S* d = dG + r * GH;
        const S* x = xh_in + r * GH;
        const S* xr = xh_rec + r * NW;
        steps::ln_row_backward(d, x, c.ln_ig, rs + r * G, out + r * GH, G, c.H);
#pragma omp simd
        for (int64_t j = 0; j < GH; ++j) gin[j] += d[j] * x[j], bias[j] += d[j];
        if (recurrent) {
#pragma omp simd
          for (int64_t j = 0; j < GH; ++j) grec[j] += d[j] * xr[j];
        }
      }
    }
  });
  S* dg_in = Ctx<S>::ptr(g[8]);
  S* db_in = Ctx<S>::ptr(g[9]);
  S* dg_rec = Ctx<S>::ptr(g[10]);
  S* db_rec = Ctx<S>::ptr(g[11]);
  S* db_cell = g[5].defined() ? Ctx<S>::ptr(g[5]) : nullptr;               // b_ih (and b_hh where they share it)
  for (int64_t j = 0; j < GH; ++j) {
    double gi = 0, bi = 0, gr = 0;
    for (int64_t b = 0; b < blocks; ++b) {
      const S* block = sums + b * width;
      gi += block[j], bi += block[GH + j];
      if (recurrent) gr += block[2 * GH + j];
    }
    dg_in[j] += S(gi), db_in[j] += S(bi);
    if (db_cell) db_cell[j] += S(bi);
    if (recurrent) dg_rec[j] += S(gr), db_rec[j] += S(bi);
  }
}

}  // namespace rnnkit

// rnnkit fused engine: layer norm's per-chunk backward, after a chunk's steps (chunk_grads.h's accumulate): the gains'
// and biases' gradients. The per-row parts (LN(h W)'s, LN(x_t U)'s and the LSTM's LN(C^_t)'s input gradients, and
// the sums of ln_input_backward) run in the cells' step loops (cells_*.cpp); the layouts are fused.h's.
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
// n block from d(h W_n + b_hn), in aux) and the LSTM's C^_t (from dlnc). The rest: fold_input_layer_norm.
template <typename S>
void accumulate_layer_norm(const Ctx<S>& c, int64_t rows, std::vector<at::Tensor>& g) {
  const int64_t H = c.H, GH = c.GH;
  const S* dG = Ctx<S>::ptr(c.dG);
  const S* xh = Ctx<S>::ptr(c.norm);
  const auto p = [&](int k) { return Ctx<S>::ptr(g[k]); };
  if (c.mode == Mode::kGruResetAfter) {                                                 // h W: r, z | n
    gain_grads(dG, GH, xh, GH, rows, 2 * H, p(10), p(11));
    gain_grads(Ctx<S>::ptr(c.aux), H, xh + 2 * H, GH, rows, H, p(10) + 2 * H, p(11) + 2 * H);
  }
  if (c.mode == Mode::kLstm) gain_grads(Ctx<S>::ptr(c.dlnc), H, Ctx<S>::ptr(c.c_hat), H, rows, H, p(12), p(13));
}

// The chunk's sums from the steps (ln_input_backward), folded in sequence order and in double into the gradients of
// LN(x_t U)'s gain and bias, of LN(h W)'s gain and bias where its upstream gradient is dG (not the PyTorch GRU),
// and of the cell's bias (g[5], where the layer has biases: the same sum of dG); then zeroed for the next chunk.
template <typename S>
void fold_input_layer_norm(const Ctx<S>& c, std::vector<at::Tensor>& g) {
  const int64_t GH = c.GH;
  const S* sums = Ctx<S>::ptr(c.ln_sums);
  std::vector<double> total(3 * GH, 0.0);                   // [dG x_in | dG | dG x_rec]
  for (int64_t n = 0; n < c.N; ++n) {
    const S* s = sums + n * 3 * GH;
    for (int64_t j = 0; j < 3 * GH; ++j) total[j] += s[j];
  }
  const bool recurrent = c.mode != Mode::kGruResetAfter;
  S* dg_in = Ctx<S>::ptr(g[8]);
  S* db_in = Ctx<S>::ptr(g[9]);
  S* dg_rec = Ctx<S>::ptr(g[10]);
  S* db_rec = Ctx<S>::ptr(g[11]);
  S* db_cell = g[5].defined() ? Ctx<S>::ptr(g[5]) : nullptr;               // b_ih (and b_hh where they share it)
  for (int64_t j = 0; j < GH; ++j) {
    const S gi = S(total[j]), bi = S(total[GH + j]);
    dg_in[j] += gi, db_in[j] += bi;
    if (db_cell) db_cell[j] += bi;
    if (recurrent) dg_rec[j] += S(total[2 * GH + j]), db_rec[j] += bi;
  }
  c.ln_sums.zero_();
}

}  // namespace rnnkit
